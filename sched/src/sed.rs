//! sed — Shortest Expected Delay (kernel ip_vs_sed.c): like wlc with overhead
//! `activeconns + 1` (inactive connections ignored). Picks are O(1) through `least.rs`.

use crate::common::Dests;
use crate::least::{Cand, LeastSched, Metric};
use crate::Scheduler;

/// The sed overhead: active connections plus the one being scheduled.
#[inline]
pub(crate) fn overhead(c: Cand) -> u64 {
    c.active as u64 + 1
}

/// `x` replaces the current least `y` when `oh(y) * w(x) > oh(x) * w(y)`.
#[inline]
pub(crate) fn beats(x: Cand, y: Cand) -> bool {
    overhead(y) as u128 * x.weight as u128 > overhead(x) as u128 * y.weight as u128
}

pub(crate) fn build(dests: &Dests) -> Box<dyn Scheduler> {
    LeastSched::boxed("sed", Metric::Sed, dests)
}
