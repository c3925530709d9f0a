//! lc — Least-Connection (kernel ip_vs_lc.c): the available destination with the least
//! overhead `(activeconns << 8) + inactconns`; ties go to the earlier one in list order.
//! Picks are O(1) through the tree in `least.rs`.

use crate::common::Dests;
use crate::least::{Cand, LeastSched, Metric};
use crate::Scheduler;

/// `x` (later in the list) replaces `y` only with a strictly smaller overhead.
#[inline]
pub(crate) fn beats(x: Cand, y: Cand) -> bool {
    x.overhead() < y.overhead()
}

pub(crate) fn build(dests: &Dests) -> Box<dyn Scheduler> {
    LeastSched::boxed("lc", Metric::Lc, dests)
}
