//! sed — Shortest Expected Delay (kernel ip_vs_sed.c): like wlc with overhead
//! `activeconns + 1` (inactive connections ignored). Picks scan or read the tree of `least.rs`.

use crate::common::Dests;
use crate::least::{LeastSched, Metric, Rule};
use crate::load::TOUCHED_ACTIVE;
use crate::Scheduler;

/// sed's rule: compare (active + 1)/weight.
pub(crate) struct Sed;

impl Rule for Sed {
    /// (active connections plus the one being scheduled, weight).
    type Key = (u64, u64);
    const READS: u8 = TOUCHED_ACTIVE;

    #[inline(always)]
    fn key(weight: u32, active: u32, _inactive: u32) -> (u64, u64) {
        (active as u64 + 1, weight as u64)
    }

    /// `x` replaces the current least `y` when `oh(y) * w(x) > oh(x) * w(y)`.
    #[inline(always)]
    fn beats((xoh, xw): (u64, u64), (yoh, yw): (u64, u64)) -> bool {
        yoh as u128 * xw as u128 > xoh as u128 * yw as u128
    }
}

pub(crate) fn build(dests: &Dests) -> Box<dyn Scheduler> {
    LeastSched::boxed("sed", Metric::Sed, dests)
}
