//! wlc — Weighted Least-Connection (kernel ip_vs_wlc.c, ipvsadm's default): minimise
//! overhead/weight, compared without division as `loh * w_dest > doh * w_least` (128-bit
//! products, no overflow) (strict, so ties keep the earlier destination). Picks scan or read the
//! tree of `least.rs`.

use crate::common::Dests;
use crate::least::{overhead, LeastSched, Metric, Rule};
use crate::Scheduler;

/// wlc's rule: compare overhead/weight.
pub(crate) struct Wlc;

impl Rule for Wlc {
    /// (overhead, weight).
    type Key = (u64, u64);

    #[inline(always)]
    fn key(weight: u32, active: u32, inactive: u32) -> (u64, u64) {
        (overhead(active, inactive), weight as u64)
    }

    /// `x` replaces the current least `y` when `oh(y) * w(x) > oh(x) * w(y)`.
    #[inline(always)]
    fn beats((xoh, xw): (u64, u64), (yoh, yw): (u64, u64)) -> bool {
        yoh as u128 * xw as u128 > xoh as u128 * yw as u128
    }
}

pub(crate) fn build(dests: &Dests) -> Box<dyn Scheduler> {
    LeastSched::boxed("wlc", Metric::Wlc, dests)
}
