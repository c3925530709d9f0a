//! [`DestLoad`]: the live connection counts and OVERLOAD flag of one destination.
//!
//! Shared by all workers through an `Arc`; every field is a relaxed atomic on one cache line, so
//! a bind by worker A is seen by worker B's next pick modulo cache coherence (nanoseconds), with
//! no ordering promised between the fields. Active and inactive counts share one 64-bit word, so
//! a bind, an unbind or a state change is one atomic operation and a reader sees both counts of
//! the same moment. Counters never wrap below zero: an unbind without a bind saturates at 0
//! instead. (Above, they are bounded by the connection table: 2^32 connections on one
//! destination would carry inactive into active.)
//!
//! The least-connection family (lc, wlc, sed, nq, and lblc/lblcr's fallback) keeps a tournament
//! tree over the destinations of services with more than 64 of them; a count or flag change of
//! such a destination pushes the change into the tree currently linked to it, when that tree's
//! rule reads what changed (see `least.rs`). Otherwise a change costs one atomic operation and
//! one load (`tree_id` is 0).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::least::TreeLeaf;

/// Live load of one destination shared by all workers: relaxed atomics, one cache line.
///
/// IPVS terms: `activeconns`, `inactconns`, `persistconns`, `IP_VS_DEST_F_OVERLOAD`,
/// `u_threshold`/`l_threshold`, `last_weight`.
#[repr(align(64))]
#[derive(Default)]
pub struct DestLoad {
    /// `active << 32 | inactive`: one atomic per change, both counts read together.
    conns: AtomicU64,
    persist: AtomicU32,
    overloaded: AtomicBool,
    upper: AtomicU32,
    lower: AtomicU32,
    last_weight: AtomicU32,
    /// Id of the least-connection tree linked below (0 = none); only grows while linked.
    pub(crate) tree_id: AtomicU64,
    /// The least-connection tree leaf to refresh on every change.
    pub(crate) link: ArcSwapOption<TreeLeaf>,
}

impl fmt::Debug for DestLoad {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DestLoad")
            .field("active", &self.active())
            .field("inactive", &self.inactive())
            .field("persistent", &self.persistent())
            .field("overloaded", &self.is_overloaded())
            .field("u_threshold", &self.upper.load(Relaxed))
            .field("l_threshold", &self.lower.load(Relaxed))
            .finish()
    }
}

/// One active connection in [`DestLoad::conns`].
const ACTIVE: u64 = 1 << 32;
/// One inactive connection in [`DestLoad::conns`].
const INACTIVE: u64 = 1;

/// What a change touched, so a linked tree whose rule ignores it skips its walk: the active
/// count or the OVERLOAD flag (every rule reads them)...
pub(crate) const TOUCHED_ACTIVE: u8 = 1;
/// ...or the inactive count (lc and wlc read it, sed and nq do not). Templates touch neither.
pub(crate) const TOUCHED_INACTIVE: u8 = 2;

/// (active, inactive) of a `conns` word.
#[inline]
fn split(conns: u64) -> (u32, u32) {
    ((conns >> 32) as u32, conns as u32)
}

/// active + inactive of a `conns` word (templates are not counted for thresholds).
#[inline]
fn total(conns: u64) -> u64 {
    (conns >> 32) + (conns & 0xFFFF_FFFF)
}

/// Take one connection off a `conns` word, saturating at 0 (a stray unbind must not turn into
/// four billion connections).
#[inline]
fn minus(conns: u64, one: u64) -> u64 {
    let half = if one == ACTIVE {
        conns >> 32
    } else {
        conns & 0xFFFF_FFFF
    };
    if half == 0 {
        conns
    } else {
        conns - one
    }
}

fn dec(counter: &AtomicU32) {
    // Saturating, as `minus`.
    let _ = counter.fetch_update(Relaxed, Relaxed, |v| v.checked_sub(1));
}

impl DestLoad {
    /// A destination with no connections and no thresholds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the thresholds (`-x` upper, `-y` lower; 0 = none), as control does on `-a`/`-e`.
    /// Like the kernel's edit, OVERLOAD is cleared when the new upper threshold is 0 or larger
    /// than the old one.
    pub fn set_thresholds(&self, upper: u32, lower: u32) {
        let old = self.upper.swap(upper, Relaxed);
        self.lower.store(lower, Relaxed);
        if (upper == 0 || upper > old) && self.overloaded.swap(false, Relaxed) {
            self.notify(TOUCHED_ACTIVE);
        }
    }

    /// Upper threshold (`-x`), 0 = none.
    pub fn u_threshold(&self) -> u32 {
        self.upper.load(Relaxed)
    }

    /// Lower threshold (`-y`), 0 = none.
    pub fn l_threshold(&self) -> u32 {
        self.lower.load(Relaxed)
    }

    /// Active connections (ActiveConn).
    #[inline]
    pub fn active(&self) -> u32 {
        split(self.conns.load(Relaxed)).0
    }

    /// Inactive connections (InActConn).
    #[inline]
    pub fn inactive(&self) -> u32 {
        split(self.conns.load(Relaxed)).1
    }

    /// (active, inactive) read together (one load).
    #[inline]
    pub fn counts(&self) -> (u32, u32) {
        split(self.conns.load(Relaxed))
    }

    /// Persistence templates bound to this destination (PersistConn).
    pub fn persistent(&self) -> u32 {
        self.persist.load(Relaxed)
    }

    /// OVERLOAD flag: set when the upper threshold is reached, no new connections then.
    #[inline]
    pub fn is_overloaded(&self) -> bool {
        self.overloaded.load(Relaxed)
    }

    /// The latest non-zero weight this destination was built with (the kernel's
    /// `last_weight`, used by mh so a quiesced destination keeps its slots); 0 until then.
    pub fn last_weight(&self) -> u32 {
        self.last_weight.load(Relaxed)
    }

    pub(crate) fn record_weight(&self, weight: u32) {
        if weight > 0 {
            self.last_weight.store(weight, Relaxed);
        }
    }

    /// Kernel ip_vs_bind_dest's threshold rule: OVERLOAD once `total` (active + inactive
    /// after the bind) >= u_threshold. Returns [`TOUCHED_ACTIVE`] when it set the flag.
    #[inline]
    fn check_upper(&self, total: u64) -> u8 {
        let upper = self.upper.load(Relaxed);
        if upper != 0 && total >= upper as u64 && !self.overloaded.load(Relaxed) {
            self.overloaded.store(true, Relaxed);
            return TOUCHED_ACTIVE;
        }
        0
    }

    /// Kernel ip_vs_unbind_dest's rule, `total` being active + inactive after the unbind:
    /// clear OVERLOAD below l_threshold when set, else below 3/4 of u_threshold when set, else
    /// always. Nothing to do (one load) while the flag is clear, as almost always. Returns
    /// [`TOUCHED_ACTIVE`] when it cleared the flag.
    #[inline]
    fn check_lower(&self, total: u64) -> u8 {
        if !self.overloaded.load(Relaxed) {
            return 0;
        }
        let (upper, lower) = (self.upper.load(Relaxed), self.lower.load(Relaxed));
        let clear = if lower != 0 {
            total < lower as u64
        } else if upper != 0 {
            total * 4 < upper as u64 * 3
        } else {
            true
        };
        if clear {
            self.overloaded.store(false, Relaxed);
            return TOUCHED_ACTIVE;
        }
        0
    }

    /// A new connection bound to this destination (kernel ip_vs_bind_dest): counted as active
    /// or inactive, then OVERLOAD per u_threshold.
    ///
    /// `bind(true)` is `bind(false)` followed by `set_active(false, true)` in one update: a
    /// caller that knows the new connection's first state before binding saves the second
    /// atomic and tree refresh.
    #[inline]
    pub fn bind(&self, active: bool) {
        let (one, touched) = if active {
            (ACTIVE, TOUCHED_ACTIVE)
        } else {
            (INACTIVE, TOUCHED_INACTIVE)
        };
        let before = self.conns.fetch_add(one, Relaxed);
        let flag = self.check_upper(total(before + one));
        self.notify(touched | flag);
    }

    /// A connection unbound (expired or removed; kernel ip_vs_unbind_dest): counts, then the
    /// OVERLOAD clearing rule per l/u thresholds.
    #[inline]
    pub fn unbind(&self, was_active: bool) {
        let (one, touched) = if was_active {
            (ACTIVE, TOUCHED_ACTIVE)
        } else {
            (INACTIVE, TOUCHED_INACTIVE)
        };
        let after = match self
            .conns
            .fetch_update(Relaxed, Relaxed, |c| Some(minus(c, one)))
        {
            Ok(before) | Err(before) => minus(before, one),
        };
        let flag = self.check_lower(total(after));
        self.notify(touched | flag);
    }

    /// A connection crossed the active/inactive line (TCP state change). No threshold check:
    /// the total is unchanged.
    #[inline]
    pub fn set_active(&self, from_active: bool, to_active: bool) {
        if from_active == to_active {
            return;
        }
        let (plus, less) = if to_active {
            (ACTIVE, INACTIVE)
        } else {
            (INACTIVE, ACTIVE)
        };
        let _ = self
            .conns
            .fetch_update(Relaxed, Relaxed, |c| minus(c, less).checked_add(plus));
        self.notify(TOUCHED_ACTIVE | TOUCHED_INACTIVE);
    }

    /// A persistence template bound (persistconns; not counted for thresholds, but the kernel
    /// runs the upper-threshold check as for any bind).
    pub fn bind_template(&self) {
        self.persist.fetch_add(1, Relaxed);
        let flag = self.check_upper(total(self.conns.load(Relaxed)));
        self.notify(flag);
    }

    /// A persistence template unbound (the kernel runs the clearing rule as for any unbind).
    pub fn unbind_template(&self) {
        dec(&self.persist);
        let flag = self.check_lower(total(self.conns.load(Relaxed)));
        self.notify(flag);
    }

    /// Refresh the linked least-connection tree, if any and if its rule reads what was
    /// `touched` (cheap test first: most services use other schedulers or scan).
    #[inline(always)]
    fn notify(&self, touched: u8) {
        if self.tree_id.load(Relaxed) != 0 {
            self.refresh_tree(touched);
        }
    }

    #[inline(never)]
    fn refresh_tree(&self, touched: u8) {
        if touched == 0 {
            return;
        }
        if let Some(leaf) = self.link.load().as_ref() {
            leaf.refresh(touched);
        }
    }
}

/// Shorthand used by tests and benches: `n` fresh loads.
pub fn new_loads(n: usize) -> Vec<Arc<DestLoad>> {
    (0..n).map(|_| Arc::new(DestLoad::new())).collect()
}
