//! wlc — Weighted Least-Connection (kernel ip_vs_wlc.c, ipvsadm's default): minimise
//! overhead/weight, compared without division as `loh * w_dest > doh * w_least` (128-bit products, no overflow)
//! (strict, so ties keep the earlier destination). Picks are O(1) through `least.rs`.

use crate::common::Dests;
use crate::least::{Cand, LeastSched, Metric};
use crate::Scheduler;

/// `x` replaces the current least `y` when `oh(y) * w(x) > oh(x) * w(y)`.
#[inline]
pub(crate) fn beats(x: Cand, y: Cand) -> bool {
    y.overhead() as u128 * x.weight as u128 > x.overhead() as u128 * y.weight as u128
}

pub(crate) fn build(dests: &Dests) -> Box<dyn Scheduler> {
    LeastSched::boxed("wlc", Metric::Wlc, dests)
}
