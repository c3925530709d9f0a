//! The connection table's key index: one open-addressing array of `u64` slots shared by the
//! inbound and the reply keys, linear probing, backward-shift deletion.
//!
//! A slot holds `tag << 32 | entry` where `tag` is the top 32 bits of the key's hash and
//! `entry` the slab index; [`EMPTY`] marks a free slot. A key's home slot is derived from its
//! tag alone (multiply-shift onto the slot count), so deletion can move entries back towards
//! their home without reading the slab, and lookups never meet tombstones however long the
//! table churns. The array has four slots per connection: two keys at most per connection
//! (NAT) keep the load at or below one half, where a hit takes about 1.5 probes and a miss
//! about 2.5, nearly always within one cache line (8 slots).
//!
//! Why not hashbrown (it was used before): its buckets are not addressable from outside, so
//! a burst of lookups could not prefetch them, and each lookup touched a control-byte group
//! and a separate bucket array (two cache misses at 1M entries, before the entry itself).
//! Measured with the bench's NAT 64 B scenario, see the commit that introduced this file.

use crate::dpdk::mem::{prefetch, HugeArray};

/// A free slot (no entry index is `u32::MAX`, see `timer::NIL`).
pub(super) const EMPTY: u64 = u64::MAX;

/// Slots per entry of capacity: two keys per entry at most, load at most one half.
pub(super) const SLOTS_PER_ENTRY: usize = 4;

/// The index. Callers guarantee that at most half of the slots are ever used, so every probe
/// sequence reaches an empty slot.
pub(super) struct FlowIndex {
    slots: HugeArray<u64>,
    /// `slots.len()` as u64 (the multiply-shift operand).
    n: u64,
    used: usize,
}

/// The tag of a hash: its top 32 bits (the low ones are what the multiply mixed least).
#[inline(always)]
fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

impl FlowIndex {
    /// An index for `capacity` entries (at least 8 slots).
    pub(super) fn new(capacity: usize) -> Self {
        let n = capacity.saturating_mul(SLOTS_PER_ENTRY).max(8);
        assert!(
            n <= u32::MAX as usize,
            "connection index of {n} slots too large"
        );
        FlowIndex {
            slots: HugeArray::new(n, EMPTY),
            n: n as u64,
            used: 0,
        }
    }

    /// Home slot of a tag: `tag * n / 2^32`.
    #[inline(always)]
    fn home(&self, tag: u32) -> usize {
        ((u64::from(tag) * self.n) >> 32) as usize
    }

    #[inline(always)]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// Keys held.
    pub(super) fn len(&self) -> usize {
        self.used
    }

    /// Bytes allocated.
    pub(super) fn memory_bytes(&self) -> usize {
        self.slots.allocated_bytes()
    }

    /// Starts loading the home slot of `hash`.
    #[inline(always)]
    pub(super) fn prefetch(&self, hash: u64) {
        prefetch(&self.slots[self.home(tag(hash))]);
    }

    /// The first entry whose slot tag matches `hash` (a candidate to prefetch), if any; reads
    /// only the index.
    #[inline(always)]
    pub(super) fn first_candidate(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// The entry of the first slot with the tag of `hash` for which `is_it(entry)` holds.
    #[inline(always)]
    pub(super) fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        let mut i = self.home(t);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if (s >> 32) as u32 == t && is_it(s as u32) {
                return Some(s as u32);
            }
            i = self.next(i);
        }
    }

    /// Walks the probe run of `hash`: `Err(slot)` of the first slot with its tag whose entry
    /// satisfies `is_dup`, else `Ok(slot)` of the empty slot that ends the run.
    #[inline(always)]
    fn walk(&self, hash: u64, mut is_dup: impl FnMut(u32) -> bool) -> Result<usize, usize> {
        let t = tag(hash);
        let mut i = self.home(t);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return Ok(i);
            }
            if (s >> 32) as u32 == t && is_dup(s as u32) {
                return Err(i);
            }
            i = self.next(i);
        }
    }

    /// Adds `entry` under `hash` unless a slot with the tag of `hash` names an entry for which
    /// `is_dup` holds (then nothing changes and the duplicate comes back): one walk of the
    /// probe run, where a lookup followed by an insertion would walk it twice.
    #[inline]
    pub(super) fn insert_unique(
        &mut self,
        hash: u64,
        entry: u32,
        is_dup: impl FnMut(u32) -> bool,
    ) -> Result<(), u32> {
        debug_assert!(self.used < self.slots.len() / 2, "index over half full");
        match self.walk(hash, is_dup) {
            Ok(i) => {
                self.slots[i] = u64::from(tag(hash)) << 32 | u64::from(entry);
                self.used += 1;
                Ok(())
            }
            Err(i) => Err(self.slots[i] as u32),
        }
    }

    /// Adds `entry` under `hash`, or, where a slot with the tag of `hash` names an entry for
    /// which `is_dup` holds, makes that slot name `entry` and returns the entry it named.
    /// One walk.
    #[inline]
    pub(super) fn insert_or_replace(
        &mut self,
        hash: u64,
        entry: u32,
        is_dup: impl FnMut(u32) -> bool,
    ) -> Option<u32> {
        let word = u64::from(tag(hash)) << 32 | u64::from(entry);
        match self.walk(hash, is_dup) {
            Ok(i) => {
                debug_assert!(self.used < self.slots.len() / 2, "index over half full");
                self.slots[i] = word;
                self.used += 1;
                None
            }
            Err(i) => {
                let old = self.slots[i] as u32;
                self.slots[i] = word;
                Some(old)
            }
        }
    }

    /// Removes the slot of `entry` under `hash`; false if there is none.
    pub(super) fn remove(&mut self, hash: u64, entry: u32) -> bool {
        let t = tag(hash);
        let want = u64::from(t) << 32 | u64::from(entry);
        let mut i = self.home(t);
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return false;
            }
            if s == want {
                break;
            }
            i = self.next(i);
        }
        // Backward shift: move later slots of the same run into the hole when the hole lies
        // on their probe path (between their home and where they sit).
        let n = self.slots.len();
        let dist = |from: usize, to: usize| if to >= from { to - from } else { to + n - from };
        let mut hole = i;
        let mut j = self.next(i);
        loop {
            let s = self.slots[j];
            if s == EMPTY {
                break;
            }
            let home = self.home((s >> 32) as u32);
            if dist(home, j) >= dist(hole, j) {
                self.slots[hole] = s;
                hole = j;
            }
            j = self.next(j);
        }
        self.slots[hole] = EMPTY;
        self.used -= 1;
        true
    }

    /// Removes every key.
    pub(super) fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.used = 0;
    }

    /// Every (slot, probe distance from home) that is in use (slow; consistency checks):
    /// `Err` if a slot sits after an empty one on its probe path.
    pub(super) fn check(&self) -> Result<(), String> {
        let n = self.slots.len();
        let mut count = 0;
        for (j, &s) in self.slots.iter().enumerate() {
            if s == EMPTY {
                continue;
            }
            count += 1;
            let mut i = self.home((s >> 32) as u32);
            while i != j {
                if self.slots[i] == EMPTY {
                    return Err(format!("slot {j} unreachable: empty slot {i} on its path"));
                }
                i = (i + 1) % n;
            }
        }
        if count != self.used {
            return Err(format!("{count} slots used, {} counted", self.used));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash with tag `k`: in a small table every small tag has home slot 0.
    fn colliding(k: u64) -> u64 {
        k << 32
    }

    /// Adds a key known to be new.
    fn add(ix: &mut FlowIndex, hash: u64, entry: u32) {
        ix.insert_unique(hash, entry, |_| false).unwrap();
    }

    #[test]
    fn insert_unique_refuses_a_duplicate_and_changes_nothing() {
        let mut ix = FlowIndex::new(4); // 16 slots
        for e in 0..3u32 {
            add(&mut ix, colliding(1), e);
        }
        add(&mut ix, colliding(2), 3);
        // Entry 1 is "the same key": found on the walk, nothing inserted.
        let mut asked = Vec::new();
        let r = ix.insert_unique(colliding(1), 9, |e| {
            asked.push(e);
            e == 1
        });
        assert_eq!(r, Err(1));
        // Only slots with the same tag are asked about, in probe order.
        assert_eq!(asked, [0, 1]);
        assert_eq!(ix.len(), 4);
        assert_eq!(ix.find(colliding(1), |e| e == 9), None);
        ix.check().unwrap();
        // No duplicate: every same-tag slot asked, then inserted at the end of the run.
        let mut asked = Vec::new();
        ix.insert_unique(colliding(1), 9, |e| {
            asked.push(e);
            false
        })
        .unwrap();
        assert_eq!(asked, [0, 1, 2]);
        assert_eq!(ix.slots[4], colliding(1) | 9);
        assert_eq!(ix.find(colliding(1), |e| e == 9), Some(9));
        ix.check().unwrap();
    }

    #[test]
    fn insert_or_replace_takes_over_the_duplicate_slot() {
        let mut ix = FlowIndex::new(4); // 16 slots
        add(&mut ix, colliding(1), 0);
        add(&mut ix, colliding(1), 1);
        add(&mut ix, colliding(2), 2);
        assert_eq!(ix.insert_or_replace(colliding(1), 7, |e| e == 1), Some(1));
        // Same slot, same count: 1 is gone, 7 sits where it was.
        assert_eq!(ix.len(), 3);
        assert_eq!(ix.slots[1], colliding(1) | 7);
        assert_eq!(ix.find(colliding(1), |e| e == 1), None);
        assert_eq!(ix.find(colliding(1), |e| e == 7), Some(7));
        assert_eq!(ix.insert_or_replace(colliding(1), 8, |_| false), None);
        assert_eq!(ix.len(), 4);
        assert_eq!(ix.slots[3], colliding(1) | 8);
        ix.check().unwrap();
    }

    #[test]
    fn insert_find_remove_with_collisions_and_wraparound() {
        let mut ix = FlowIndex::new(4); // 16 slots
        assert_eq!(ix.slots.len(), 16);
        // Tags near the top map to the last slots: their runs wrap around to slot 0.
        let top = |k: u64| (u64::from(u32::MAX) - k) << 32;
        for e in 0..4u32 {
            add(&mut ix, top(u64::from(e % 2)), e);
        }
        for e in 4..8u32 {
            add(&mut ix, colliding(1), e);
        }
        ix.check().unwrap();
        assert_eq!(ix.len(), 8);
        for e in 0..4u32 {
            assert_eq!(ix.find(top(u64::from(e % 2)), |x| x == e), Some(e));
        }
        for e in 4..8u32 {
            assert_eq!(ix.find(colliding(1), |x| x == e), Some(e));
        }
        assert_eq!(ix.first_candidate(colliding(1)), Some(4));
        assert_eq!(ix.find(colliding(2), |_| true), None);
        // Remove from the middle of runs: everything else stays reachable.
        assert!(ix.remove(top(1), 1));
        assert!(ix.remove(colliding(1), 5));
        assert!(!ix.remove(colliding(1), 5));
        ix.check().unwrap();
        assert_eq!(ix.len(), 6);
        for e in [0u32, 2, 3] {
            assert_eq!(ix.find(top(u64::from(e % 2)), |x| x == e), Some(e));
        }
        for e in [4u32, 6, 7] {
            assert_eq!(ix.find(colliding(1), |x| x == e), Some(e));
        }
        assert_eq!(ix.find(top(1), |x| x == 1), None);
        ix.clear();
        assert_eq!(ix.len(), 0);
        assert_eq!(ix.find(colliding(1), |_| true), None);
    }

    #[test]
    fn random_churn_matches_a_model() {
        let mut ix = FlowIndex::new(64); // 256 slots, at most 128 keys
        let mut model: Vec<(u64, u32)> = Vec::new();
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..20_000u32 {
            let r = rnd();
            if model.len() < 128 && (r % 3 != 0 || model.is_empty()) {
                // Few distinct tags: long runs and many equal tags.
                let h = (rnd() % 40) << 58 | (rnd() % 3) << 32;
                add(&mut ix, h, step);
                model.push((h, step));
            } else {
                let k = (r as usize / 3) % model.len();
                let (h, e) = model.swap_remove(k);
                assert!(ix.remove(h, e));
            }
            if step % 97 == 0 {
                ix.check().unwrap();
                for &(h, e) in &model {
                    assert_eq!(ix.find(h, |x| x == e), Some(e), "step {step}");
                }
            }
        }
        assert_eq!(ix.len(), model.len());
    }
}
