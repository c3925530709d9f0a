//! nq — Never Queue (kernel ip_vs_nq.c): the first available destination with no active
//! connection, else the sed choice. Picks are O(1) through `least.rs`.

use crate::common::Dests;
use crate::least::{Cand, LeastSched, Metric};
use crate::Scheduler;

/// An idle earlier destination is never beaten; an idle later one beats a busy earlier one;
/// between busy ones, sed's rule.
#[inline]
pub(crate) fn beats(x: Cand, y: Cand) -> bool {
    if y.active == 0 {
        false
    } else if x.active == 0 {
        true
    } else {
        crate::sed::beats(x, y)
    }
}

pub(crate) fn build(dests: &Dests) -> Box<dyn Scheduler> {
    LeastSched::boxed("nq", Metric::Nq, dests)
}
