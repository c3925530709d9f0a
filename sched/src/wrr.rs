//! wrr — Weighted Round-Robin (kernel ip_vs_wrr.c), with the kernel's exact sequence.
//!
//! di = gcd of the positive weights (1 if none), mw = max weight - (di - 1), cw starts at mw.
//! A pick scans forward from the last chosen destination for an available one with
//! weight >= cw; at the list end cw -= di, and when cw <= 0 it wraps to mw. The kernel's
//! termination rules (`last_pass`, `restarted`, `stop`) are kept, so "all overloaded" ends the
//! same way and leaves the same state. On every rebuild (the kernel's add/del/edit) the
//! position resets to the head and cw follows the kernel's rule: cw = mw if cw > mw or cw == 0,
//! else if di > 1, cw = (cw / di) * di + 1. A rebuild with an identical destination list
//! (same order, weights, thresholds: another service changed) keeps the state as it is.
//!
//! Speed: the "next destination with weight >= cw" step is a descent in a static max-tree over
//! the weights (O(log n), O(1) when the next destination qualifies) instead of the kernel's
//! walk. State (position, cw) is one atomic word: one CAS per new connection.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::common::{gcd_positive, Dests, NONE};
use crate::{FlowInfo, Scheduler};

pub(crate) struct WeightedRoundRobin {
    dests: Dests,
    /// Max-tree over the weights, heap layout, leaves at `size..2*size` (padding 0).
    maxw: Box<[u32]>,
    size: usize,
    di: i64,
    mw: i64,
    /// (last chosen index or NONE for the head) << 32 | cw.
    state: AtomicU64,
}

fn pack(cl: u32, cw: i64) -> u64 {
    ((cl as u64) << 32) | cw as u32 as u64
}

pub(crate) fn build(dests: Dests, prev: Option<&dyn Scheduler>) -> Box<dyn Scheduler> {
    let di = gcd_positive(dests.weights.iter().copied()).max(1) as i64;
    let maxw = dests.weights.iter().copied().max().unwrap_or(0) as i64;
    let mw = maxw - (di - 1);
    let prev = prev
        .and_then(|p| p.as_any())
        .and_then(|a| a.downcast_ref::<WeightedRoundRobin>());
    let prev_state = prev.map(|p| p.state.load(Relaxed));
    let unchanged = prev.is_some_and(|p| p.dests.same_config(&dests));
    let cw = match prev_state.map(|s| (s as u32) as i64) {
        Some(cw) if cw > mw || cw == 0 => mw,
        Some(cw) if di > 1 => (cw / di) * di + 1,
        Some(cw) => cw,
        None => mw,
    };
    let size = dests.len().next_power_of_two().max(1);
    let mut tree = vec![0u32; 2 * size];
    tree[size..size + dests.len()].copy_from_slice(&dests.weights);
    for i in (1..size).rev() {
        tree[i] = tree[2 * i].max(tree[2 * i + 1]);
    }
    Box::new(WeightedRoundRobin {
        dests,
        maxw: tree.into_boxed_slice(),
        size,
        di,
        mw,
        // A rebuild that did not touch this service (nothing for the kernel to call
        // dest_changed about) keeps the exact position.
        state: AtomicU64::new(match prev_state {
            Some(st) if unchanged => st,
            _ => pack(NONE, cw),
        }),
    })
}

impl WeightedRoundRobin {
    /// First index >= `start` whose weight is >= `cw` (static weights only).
    #[inline]
    fn next_at_least(&self, start: usize, cw: u32) -> Option<usize> {
        if start >= self.dests.len() {
            return None;
        }
        if self.dests.weights[start] >= cw {
            return Some(start);
        }
        let mut i = start + self.size;
        loop {
            if self.maxw[i] >= cw {
                while i < self.size {
                    i *= 2;
                    if self.maxw[i] < cw {
                        i += 1;
                    }
                }
                return Some(i - self.size);
            }
            // Go to the next subtree to the right: climb while a right child.
            while i & 1 == 1 {
                i >>= 1;
            }
            if i == 0 {
                return None;
            }
            i += 1;
        }
    }

    /// The kernel's ip_vs_wrr_schedule from state (cl, cw): (choice, new cl, new cw).
    fn scan(&self, cl: u32, mut cw: i64) -> (Option<usize>, u32, i64) {
        let last = cl;
        let mut dest = cl;
        let (mut stop, mut last_pass, mut restarted) = (None, false, false);
        loop {
            let mut i = if dest == NONE { 0 } else { dest as usize + 1 };
            loop {
                let found = self.next_at_least(i, cw as u32);
                let end = found.unwrap_or(self.dests.len());
                if let Some(s) = stop.filter(|&s| s >= i && s < end) {
                    return (None, s as u32, cw);
                }
                let Some(f) = found else { break };
                if !self.dests.loads[f].is_overloaded() {
                    return (Some(f), f as u32, cw);
                }
                if stop == Some(f) {
                    return (None, f as u32, cw);
                }
                i = f + 1;
            }
            dest = NONE;
            cw -= self.di;
            if cw <= 0 {
                cw = self.mw;
                if last_pass || last == NONE {
                    return (None, NONE, cw);
                }
                restarted = true;
            }
            last_pass = cw <= self.di;
            if last_pass && restarted && last != NONE {
                stop = Some(last as usize);
            }
        }
    }
}

impl Scheduler for WeightedRoundRobin {
    fn name(&self) -> &'static str {
        "wrr"
    }

    fn schedule(&self, _flow: &FlowInfo) -> Option<usize> {
        if self.mw == 0 {
            return None;
        }
        let mut s = self.state.load(Relaxed);
        loop {
            let (hit, cl, cw) = self.scan((s >> 32) as u32, (s as u32) as i64);
            let new = pack(cl, cw);
            if new == s {
                return hit;
            }
            match self.state.compare_exchange_weak(s, new, Relaxed, Relaxed) {
                Ok(_) => return hit,
                Err(now) => s = now,
            }
        }
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
