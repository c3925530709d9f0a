//! NAT reply keys on their way into the index: a small FIFO of (entry, reply-key hash).
//!
//! A new NAT connection's reply key depends on the destination the scheduler just chose, so
//! no burst stage could prefetch its index slot, and in a big table that slot is a cache miss
//! (about 160 ns per SYN measured, more than half of a SYN's cost at 2 M connections).
//! [`ConnTable::insert_first`](super::ConnTable::insert_first) therefore prefetches the slot
//! and parks the key here; it goes into the index when [`PENDING`] newer ones have arrived
//! (by then its slot is in the cache), or when the table needs its index complete (timers,
//! removal). Lookups by reply key look here first, newest first, so a parked key is found as
//! if it were indexed.

/// Reply keys parked at most: enough inserts to cover a memory access, few enough that a
/// reply lookup's scan of the parked hashes stays a handful of compares.
pub(super) const PENDING: usize = 8;

/// The FIFO. Entries are slab indices; a hash is the reply key's full index hash.
#[derive(Debug)]
pub(super) struct PendingReplies {
    hash: [u64; PENDING],
    entry: [u32; PENDING],
    /// Position of the oldest.
    head: usize,
    len: usize,
}

impl PendingReplies {
    /// An empty FIFO.
    pub(super) const fn new() -> Self {
        PendingReplies {
            hash: [0; PENDING],
            entry: [0; PENDING],
            head: 0,
            len: 0,
        }
    }

    /// Number of parked keys.
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is parked (the common test before a scan).
    #[inline(always)]
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Parks `entry` under `hash`; the caller first takes the oldest out when full.
    #[inline(always)]
    pub(super) fn push(&mut self, hash: u64, entry: u32) {
        debug_assert!(self.len < PENDING, "pending reply keys overflow");
        let at = (self.head + self.len) % PENDING;
        self.hash[at] = hash;
        self.entry[at] = entry;
        self.len += 1;
    }

    /// Takes out the oldest parked key.
    #[inline(always)]
    pub(super) fn pop_oldest(&mut self) -> Option<(u64, u32)> {
        if self.len == 0 {
            return None;
        }
        let at = self.head;
        self.head = (self.head + 1) % PENDING;
        self.len -= 1;
        Some((self.hash[at], self.entry[at]))
    }

    /// The newest parked entry with hash `hash` for which `is_it` holds.
    #[inline(always)]
    pub(super) fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        // Nearly every lookup finds nothing here: compare all eight hashes at once (stale
        // ones beyond `len` too, which only sends a lookup on to the ordered scan), without
        // branches, so that this compiles to a couple of vector compares.
        if !self.hash.iter().fold(false, |any, &h| any | (h == hash)) {
            return None;
        }
        (0..self.len).rev().find_map(|k| {
            let at = (self.head + k) % PENDING;
            (self.hash[at] == hash && is_it(self.entry[at])).then_some(self.entry[at])
        })
    }

    /// Every parked (hash, entry), oldest first (slow path: checks).
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        (0..self.len).map(|k| {
            let at = (self.head + k) % PENDING;
            (self.hash[at], self.entry[at])
        })
    }

    /// Forgets everything (the table was cleared).
    pub(super) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_wraparound_and_newest_first_find() {
        let mut p = PendingReplies::new();
        assert_eq!(p.pop_oldest(), None);
        // Wrap the ring a few times.
        for round in 0..3u32 {
            for e in 0..PENDING as u32 {
                p.push(u64::from(e % 3), round * 100 + e);
            }
            assert_eq!(p.len(), PENDING);
            // Hash 1 is held by entries 1, 4, 7: the newest first, filtered by `is_it`.
            assert_eq!(p.find(1, |_| true), Some(round * 100 + 7));
            assert_eq!(p.find(1, |e| e % 100 != 7), Some(round * 100 + 4));
            assert_eq!(p.find(9, |_| true), None);
            let all: Vec<u32> = p.iter().map(|(_, e)| e).collect();
            assert_eq!(
                all,
                (0..PENDING as u32)
                    .map(|e| round * 100 + e)
                    .collect::<Vec<_>>()
            );
            for e in 0..3u32 {
                assert_eq!(p.pop_oldest(), Some((u64::from(e % 3), round * 100 + e)));
            }
            // Three out, three new in at the wrapped end; the rest drains in order.
            for e in 0..3u32 {
                p.push(50, round * 100 + 50 + e);
            }
            let order: Vec<u32> = std::iter::from_fn(|| p.pop_oldest().map(|(_, e)| e)).collect();
            let mut want: Vec<u32> = (3..PENDING as u32).map(|e| round * 100 + e).collect();
            want.extend((0..3u32).map(|e| round * 100 + 50 + e));
            assert_eq!(order, want);
            assert!(p.is_empty());
        }
        p.push(1, 1);
        p.clear();
        assert!(p.is_empty());
        assert_eq!(p.find(1, |_| true), None);
    }
}
