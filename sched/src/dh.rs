//! dh — Destination Hashing (kernel ip_vs_dh.c).
//!
//! 256 buckets filled one destination each in list order, cycling through the list until all
//! are filled (weights ignored). A flow's bucket is `hash_32(fold(daddr), 8)`; if that
//! destination is quiesced (weight 0) or OVERLOADed there is no result (no fallback).

use crate::common::{addr_fold, hash_32, Dests, NONE};
use crate::{FlowInfo, Scheduler};

/// log2 of the bucket count.
pub(crate) const DH_TAB_BITS: u32 = 8;
const DH_TAB_SIZE: usize = 1 << DH_TAB_BITS;

pub(crate) struct DestHash {
    dests: Dests,
    buckets: Box<[u32; DH_TAB_SIZE]>,
}

/// The bucket layout: bucket i holds destination i mod n (NONE when there is none).
pub(crate) fn layout(n: usize) -> Box<[u32; DH_TAB_SIZE]> {
    let mut b = Box::new([NONE; DH_TAB_SIZE]);
    if n > 0 {
        for (i, slot) in b.iter_mut().enumerate() {
            *slot = (i % n) as u32;
        }
    }
    b
}

pub(crate) fn build(dests: Dests) -> Box<dyn Scheduler> {
    Box::new(DestHash {
        buckets: layout(dests.len()),
        dests,
    })
}

impl DestHash {
    /// The bucket table (destination index per bucket).
    pub(crate) fn buckets(&self) -> &[u32] {
        &self.buckets[..]
    }
}

impl Scheduler for DestHash {
    fn name(&self) -> &'static str {
        "dh"
    }

    #[inline]
    fn schedule(&self, flow: &FlowInfo) -> Option<usize> {
        let d = self.buckets[hash_32(addr_fold(&flow.daddr), DH_TAB_BITS) as usize];
        (d != NONE && self.dests.available(d as usize)).then_some(d as usize)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
