//! sh — Source Hashing (kernel ip_vs_sh.c).
//!
//! 256 buckets filled in list order, cycling through the list until all are filled; each
//! destination takes `weight` consecutive buckets per visit (weight 0 still takes one). A
//! flow's bucket is `(offset + hash_32(port + fold(saddr), 8)) & 255` with offset 0, where
//! port is the client's source port with sh-port (flag-2), else 0. Without sh-fallback (flag-1)
//! a quiesced or OVERLOADed destination gives no result; with it the kernel's probe runs:
//! offsets 0..255, roffset = (offset + ihash) % 256, bucket (roffset + hash) & 255; an empty
//! bucket ends the probe.

use crate::common::{addr_fold, hash_32, Dests, NONE};
use crate::{FlowInfo, Scheduler};

const SH_TAB_BITS: u32 = 8;
const SH_TAB_SIZE: usize = 1 << SH_TAB_BITS;
const SH_TAB_MASK: u32 = SH_TAB_SIZE as u32 - 1;

pub(crate) struct SourceHash {
    dests: Dests,
    buckets: Box<[u32; SH_TAB_SIZE]>,
    fallback: bool,
    use_port: bool,
}

/// The kernel's ip_vs_sh_reassign layout for these weights.
pub(crate) fn layout(weights: &[u32]) -> Box<[u32; SH_TAB_SIZE]> {
    let mut b = Box::new([NONE; SH_TAB_SIZE]);
    if weights.is_empty() {
        return b;
    }
    let (mut p, mut count) = (0usize, 0u32);
    for slot in b.iter_mut() {
        *slot = p as u32;
        count += 1;
        if count >= weights[p] {
            p = (p + 1) % weights.len();
            count = 0;
        }
    }
    b
}

pub(crate) fn build(dests: Dests, fallback: bool, use_port: bool) -> Box<dyn Scheduler> {
    Box::new(SourceHash {
        buckets: layout(&dests.weights),
        dests,
        fallback,
        use_port,
    })
}

impl SourceHash {
    /// hash_32(port + fold(saddr), 8): the bucket before any offset.
    #[inline]
    fn hash(&self, flow: &FlowInfo) -> u32 {
        let port = if self.use_port { flow.sport as u32 } else { 0 };
        hash_32(port.wrapping_add(addr_fold(&flow.saddr)), SH_TAB_BITS)
    }

    /// The bucket table (destination index per bucket).
    pub(crate) fn buckets(&self) -> &[u32] {
        &self.buckets[..]
    }
}

impl Scheduler for SourceHash {
    fn name(&self) -> &'static str {
        "sh"
    }

    #[inline]
    fn schedule(&self, flow: &FlowInfo) -> Option<usize> {
        let ihash = self.hash(flow);
        let d = self.buckets[ihash as usize];
        if d == NONE {
            return None;
        }
        if self.dests.available(d as usize) {
            return Some(d as usize);
        }
        if !self.fallback {
            return None;
        }
        for offset in 0..SH_TAB_SIZE as u32 {
            let roffset = (offset + ihash) & SH_TAB_MASK;
            let d = self.buckets[((roffset + ihash) & SH_TAB_MASK) as usize];
            if d == NONE {
                return None;
            }
            if self.dests.available(d as usize) {
                return Some(d as usize);
            }
        }
        None
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
