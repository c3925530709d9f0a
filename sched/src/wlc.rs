//! wlc — Weighted Least-Connection (kernel ip_vs_wlc.c, ipvsadm's default): minimise
//! overhead/weight, compared without division as `loh * w_dest > doh * w_least` in 64 bits
//! (strict, so ties keep the earlier destination). Picks are O(1) through `least.rs`.

use crate::common::Dests;
use crate::least::{Cand, LeastSched, Metric};
use crate::Scheduler;

/// `x` replaces the current least `y` when `oh(y) * w(x) > oh(x) * w(y)`.
#[inline]
pub(crate) fn beats(x: Cand, y: Cand) -> bool {
    y.overhead() * x.weight as u64 > x.overhead() * y.weight as u64
}

pub(crate) fn build(dests: &Dests) -> Box<dyn Scheduler> {
    LeastSched::boxed("wlc", Metric::Wlc, dests)
}
