//! lc — Least-Connection (kernel ip_vs_lc.c): the available destination with the least
//! overhead `(activeconns << 8) + inactconns`; ties go to the earlier one in list order.
//! Picks scan or read the tree of `least.rs`.

use crate::common::Dests;
use crate::least::{overhead, LeastSched, Metric, Rule};
use crate::Scheduler;

/// lc's rule: compare overheads.
pub(crate) struct Lc;

impl Rule for Lc {
    type Key = u64;

    #[inline(always)]
    fn key(_weight: u32, active: u32, inactive: u32) -> u64 {
        overhead(active, inactive)
    }

    /// `x` (later in the list) replaces `y` only with a strictly smaller overhead.
    #[inline(always)]
    fn beats(x: u64, y: u64) -> bool {
        x < y
    }
}

pub(crate) fn build(dests: &Dests) -> Box<dyn Scheduler> {
    LeastSched::boxed("lc", Metric::Lc, dests)
}
