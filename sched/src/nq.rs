//! nq — Never Queue (kernel ip_vs_nq.c): the first available destination with no active
//! connection, else the sed choice. Picks scan or read the tree of `least.rs`.

use crate::common::Dests;
use crate::least::{LeastSched, Metric, Rule};
use crate::sed::Sed;
use crate::Scheduler;

/// nq's rule: idle first, else sed's.
pub(crate) struct Nq;

impl Rule for Nq {
    /// sed's key; idle when its overhead (active + 1) is 1.
    type Key = (u64, u64);
    const FIRST_IDLE: bool = true;
    const READS: u8 = Sed::READS;

    #[inline(always)]
    fn key(weight: u32, active: u32, inactive: u32) -> (u64, u64) {
        Sed::key(weight, active, inactive)
    }

    /// An idle earlier destination is never beaten; an idle later one beats a busy earlier
    /// one; between busy ones, sed's rule.
    #[inline(always)]
    fn beats(x: (u64, u64), y: (u64, u64)) -> bool {
        if Self::idle(y) {
            false
        } else if Self::idle(x) {
            true
        } else {
            Sed::beats(x, y)
        }
    }

    #[inline(always)]
    fn idle((oh, _): (u64, u64)) -> bool {
        oh == 1
    }
}

pub(crate) fn build(dests: &Dests) -> Box<dyn Scheduler> {
    LeastSched::boxed("nq", Metric::Nq, dests)
}
