//! The lblc/lblcr cache: destination IP -> destination (lblc) or destination set (lblcr).
//!
//! The kernel keeps 1024 hash chains (bucket = hash_32(fold(daddr), 10)) and a GC timer. Here
//! each of the 1024 buckets is a fixed set of 16 slots (16K entries, the kernel's GC threshold)
//! of three atomics, so lookups take no lock and inserts never allocate:
//! - `key`: 0 = empty, else a fingerprint of the address (IPv4 exact, IPv6 a 63-bit hash);
//! - `data`: the destination index (lblc) or up to 4 16-bit member indices (lblcr);
//! - `times`: last use << 32 | last modification, seconds since the table's epoch.
//!
//! Writers replace a slot as key = 0, data, times, key = fingerprint; readers check the key
//! before and after reading data (a seqlock without the lock), so a reader never takes one
//! address's data for another's. Two writers racing on one slot can at worst pair a key with
//! the other's destination: a wrong but valid, re-checked destination (locality only).
//! Entries unused for 24 h (the kernel's lblc/lblcr_expiration) count as absent; when a
//! bucket is full the least recently used slot is replaced (the kernel instead lets chains grow
//! and its GC drops entries idle for 6 min once over 16K entries).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Instant;

use crate::common::{addr_fold, hash_32};

const TAB_BITS: u32 = 10;
const WAYS: usize = 16;
/// Entries unused this long are gone (kernel DEFAULT_EXPIRATION, 24 h).
pub(crate) const EXPIRATION_SECS: u32 = 24 * 60 * 60;

#[derive(Default)]
pub(crate) struct Slot {
    key: AtomicU64,
    data: AtomicU64,
    times: AtomicU64,
}

/// A found entry: its slot and what was read from it.
pub(crate) struct Hit<'a> {
    pub slot: &'a Slot,
    pub data: u64,
    pub lastmod: u32,
}

pub(crate) struct LocalityTable {
    slots: Box<[Slot]>,
    epoch: Instant,
}

fn fingerprint(addr: &IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => (1 << 32) | u32::from(*a) as u64,
        IpAddr::V6(a) => {
            let v = u128::from(*a);
            let h = ((v as u64) ^ ((v >> 64) as u64).rotate_left(29))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h | (1 << 63)
        }
    }
}

impl LocalityTable {
    /// An empty table; `epoch` of a previous table keeps carried entries' times meaningful.
    pub fn new(epoch: Option<Instant>) -> Self {
        LocalityTable {
            slots: (0..(WAYS << TAB_BITS)).map(|_| Slot::default()).collect(),
            epoch: epoch.unwrap_or_else(Instant::now),
        }
    }

    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Seconds since the epoch (saturating; 136 years of range).
    pub fn now(&self) -> u32 {
        self.epoch.elapsed().as_secs().min(u32::MAX as u64) as u32
    }

    fn bucket(&self, addr: &IpAddr) -> &[Slot] {
        let b = hash_32(addr_fold(addr), TAB_BITS) as usize;
        &self.slots[b * WAYS..(b + 1) * WAYS]
    }

    /// The live entry for `addr`, with its last use refreshed to `now`.
    pub fn find(&self, addr: &IpAddr, now: u32) -> Option<Hit<'_>> {
        let fp = fingerprint(addr);
        for slot in self.bucket(addr) {
            if slot.key.load(SeqCst) != fp {
                continue;
            }
            let data = slot.data.load(SeqCst);
            let times = slot.times.load(SeqCst);
            if slot.key.load(SeqCst) != fp {
                continue;
            }
            let lastuse = (times >> 32) as u32;
            if now.saturating_sub(lastuse) >= EXPIRATION_SECS {
                return None;
            }
            if lastuse != now {
                let new = ((now as u64) << 32) | (times & 0xFFFF_FFFF);
                let _ = slot.times.compare_exchange(times, new, SeqCst, SeqCst);
            }
            return Some(Hit {
                slot,
                data,
                lastmod: times as u32,
            });
        }
        None
    }

    /// Store `data` for `addr` (new entry, or replacing the existing one's data).
    pub fn insert(&self, addr: &IpAddr, data: u64, now: u32) {
        let fp = fingerprint(addr);
        let bucket = self.bucket(addr);
        let victim = bucket
            .iter()
            .find(|s| s.key.load(SeqCst) == fp)
            .or_else(|| bucket.iter().find(|s| s.key.load(SeqCst) == 0))
            .unwrap_or_else(|| {
                bucket
                    .iter()
                    .min_by_key(|s| (s.times.load(SeqCst) >> 32) as u32)
                    .unwrap_or(&bucket[0])
            });
        victim.key.store(0, SeqCst);
        victim.data.store(data, SeqCst);
        victim
            .times
            .store(((now as u64) << 32) | now as u64, SeqCst);
        victim.key.store(fp, SeqCst);
    }

    /// Replace a found entry's data if nobody changed it meanwhile; bumps its modification
    /// time. Best effort, like the kernel's GFP_ATOMIC cache updates.
    pub fn update(&self, hit: &Hit, data: u64, now: u32) -> bool {
        if hit
            .slot
            .data
            .compare_exchange(hit.data, data, SeqCst, SeqCst)
            .is_err()
        {
            return false;
        }
        let _ = hit
            .slot
            .times
            .fetch_update(SeqCst, SeqCst, |t| Some((t & !0xFFFF_FFFF) | now as u64));
        true
    }

    /// Every live entry as (address fingerprint, data, times): for carrying over on rebuild.
    pub fn copy_from(&self, old: &LocalityTable, mut remap: impl FnMut(u64) -> Option<u64>) {
        for (new, old) in self.slots.iter().zip(old.slots.iter()) {
            let key = old.key.load(SeqCst);
            if key == 0 {
                continue;
            }
            if let Some(data) = remap(old.data.load(SeqCst)) {
                new.data.store(data, SeqCst);
                new.times.store(old.times.load(SeqCst), SeqCst);
                new.key.store(key, SeqCst);
            }
        }
    }
}
