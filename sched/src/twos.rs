//! twos — Weighted Power of Two Choices (kernel ip_vs_twos.c).
//!
//! T = sum of available weights + 1; r1, r2 = rand % T; walking the available destinations and
//! subtracting their weights, the first with r <= 0 is choice 1 (resp. 2); choice 2 wins when
//! `w2 * oh1 > w1 * oh2` (128-bit here, the kernel's int products can overflow). Like the kernel
//! this is O(n) per pick (two walks). Random numbers come from a per-thread wyrand generator:
//! no shared state, no lock.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use crate::common::Dests;
use crate::{FlowInfo, Scheduler};

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// wyrand step on the calling thread's state (seeded from std's random hasher keys once).
fn next_u32() -> u32 {
    RNG.with(|s| {
        let mut x = s.get();
        if x == 0 {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(s as *const _ as usize);
            x = h.finish() | 1;
        }
        x = x.wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = (x as u128).wrapping_mul((x ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) as u64 ^ t as u64) as u32
    })
}

pub(crate) struct TwoChoices {
    dests: Dests,
}

pub(crate) fn build(dests: Dests) -> Box<dyn Scheduler> {
    Box::new(TwoChoices { dests })
}

impl TwoChoices {
    /// The kernel's pick given the two random numbers (already reduced mod T).
    pub(crate) fn pick_with(&self, mut r1: i64, mut r2: i64) -> Option<usize> {
        let d = &self.dests;
        let (mut c1, mut c2) = (None, None);
        for i in (0..d.len()).filter(|&i| d.available(i)) {
            let w = d.weights[i] as i64;
            r1 -= w;
            r2 -= w;
            if r1 <= 0 && c1.is_none() {
                c1 = Some(i);
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some(i);
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        let (c1, c2) = (c1?, c2?);
        let (w1, w2) = (d.weights[c1] as u128, d.weights[c2] as u128);
        Some(
            if w2 * d.overhead(c1) as u128 > w1 * d.overhead(c2) as u128 {
                c2
            } else {
                c1
            },
        )
    }

    /// T = sum of available weights + 1, or None when nothing is available.
    pub(crate) fn total(&self) -> Option<u64> {
        let d = &self.dests;
        let sum: u64 = (0..d.len())
            .filter(|&i| d.available(i))
            .map(|i| d.weights[i] as u64)
            .sum();
        (sum > 0).then_some(sum + 1)
    }
}

impl Scheduler for TwoChoices {
    fn name(&self) -> &'static str {
        "twos"
    }

    fn schedule(&self, _flow: &FlowInfo) -> Option<usize> {
        let t = self.total()?;
        let r1 = (next_u32() as u64 % t) as i64;
        let r2 = (next_u32() as u64 % t) as i64;
        self.pick_with(r1, r2)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
