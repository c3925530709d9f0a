//! rr — Round-Robin (kernel ip_vs_rr.c).
//!
//! The cursor remembers the last chosen destination (or the list head); a pick walks forward
//! from it, wrapping, to the first available destination, the cursor itself checked last. The
//! cursor is one atomic shared by all workers: one CAS per new connection, so the sequence is
//! global as in the kernel. Across rebuilds the cursor stays on the same destination (the
//! kernel's list pointer does not move on add/edit); when that destination was deleted it moves
//! to the destination before it in the old list (kernel ip_vs_rr_del_dest), or the head.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::common::{Dests, NONE};
use crate::{FlowInfo, Scheduler};

pub(crate) struct RoundRobin {
    dests: Dests,
    /// Index of the last chosen destination, NONE = at the list head.
    cursor: AtomicU32,
}

pub(crate) fn build(dests: Dests, prev: Option<&dyn Scheduler>) -> Box<dyn Scheduler> {
    let prev = prev
        .and_then(|p| p.as_any())
        .and_then(|a| a.downcast_ref::<RoundRobin>());
    let cursor = prev.map_or(NONE, |p| {
        carry_cursor(&p.dests, p.cursor.load(Relaxed), &dests)
    });
    Box::new(RoundRobin {
        dests,
        cursor: AtomicU32::new(cursor),
    })
}

/// The old cursor's destination in the new list, else the nearest surviving one before it.
fn carry_cursor(old: &Dests, cursor: u32, new: &Dests) -> u32 {
    if cursor == NONE || cursor as usize >= old.len() {
        return NONE;
    }
    (0..=cursor as usize)
        .rev()
        .find_map(|i| new.position(&old.keys[i]))
        .map_or(NONE, |i| i as u32)
}

impl RoundRobin {
    /// First available destination after `last` (wrapping; `last` itself checked last).
    #[inline]
    fn next_available(&self, last: u32, n: usize) -> Option<usize> {
        let mut i = if last == NONE || last as usize + 1 >= n {
            0
        } else {
            last as usize + 1
        };
        for _ in 0..n {
            if self.dests.available(i) {
                return Some(i);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        None
    }
}

impl Scheduler for RoundRobin {
    fn name(&self) -> &'static str {
        "rr"
    }

    fn schedule(&self, _flow: &FlowInfo) -> Option<usize> {
        let n = self.dests.len();
        let mut last = self.cursor.load(Relaxed);
        loop {
            let hit = self.next_available(last, n)?;
            match self
                .cursor
                .compare_exchange_weak(last, hit as u32, Relaxed, Relaxed)
            {
                Ok(_) => return Some(hit),
                Err(now) => last = now,
            }
        }
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
