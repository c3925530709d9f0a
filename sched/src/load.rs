//! [`DestLoad`]: the live connection counts and OVERLOAD flag of one destination.
//!
//! Shared by all workers through an `Arc`; every field is a relaxed atomic, so a bind by worker
//! A is seen by worker B's next pick modulo cache coherence (nanoseconds), with no ordering
//! promised between the fields.
//!
//! The counts (active, inactive, and persistence templates) are kept in *shares*, each alone
//! on its cache line, and read as their sums. A
//! data-plane worker that claimed writer slot `w` ([`claim_writer_slot`]) owns share `1 + w`
//! and updates it with a plain load and store (one writer: no locked instruction, nothing to
//! wait for); every other thread, and a worker beyond the shares a load was made with, updates
//! share 0 with an atomic read-modify-write. Reads cost one load per share; the kernel keeps
//! one atomic per count, which is what share 0 alone is. A worker that starts an epoch per
//! burst ([`new_epoch`], as `Pipeline::process_burst` does) reads the other workers' shares
//! once per destination and burst: its picks see their binds up to one burst late (its own at
//! once; thresholds always read every share).
//!
//! Why: with one shared word, every bind of two workers was a locked read-modify-write on a
//! line the other had just written, and every pick read the other's lines. wlc's
//! pick+bind+activate+unbind with 2 threads on the 2-vCPU VM took 103-325 ns per connection
//! per thread that way, 21-23 ns with shares and epochs (18 ns with one thread):
//! `cargo bench -p sched --bench contend -- wlc 4 2 1000000 [shared]`.
//!
//! Active and inactive counts share one word per share, `active << 32 | inactive`, so an update
//! is one store and a reader sees both counts of one share at one moment; the words add up to
//! the totals' word. A connection is unbound through the share it was bound through (a
//! worker's connections stay with that worker), and a share's counts never go below zero: an
//! unbind or state change finding its share's count at zero leaves it there, as the kernel's
//! counter does (a stray unbind must not turn into four billion connections). (Above, counts
//! are bounded by the connection tables: 2^32 connections on one destination would carry
//! inactive into active.) With share 0 alone this is exactly the kernel's one counter.
//!
//! The least-connection family (lc, wlc, sed, nq, and lblc/lblcr's fallback) keeps a tournament
//! tree over the destinations of services with more than 64 of them; a count or flag change of
//! such a destination pushes the change into the tree currently linked to it, when that tree's
//! rule reads what changed (see `least.rs`). Otherwise a change costs a store to the worker's
//! share (or an atomic operation on share 0) and one load (`tree_id` is 0).

use std::cell::Cell;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use crate::least::TreeLeaf;

thread_local! {
    /// The share this thread writes: 0 (any thread, atomic updates) or 1 + its writer slot.
    static SHARE: Cell<usize> = const { Cell::new(0) };
    /// The writer's epoch ([`new_epoch`]); 0: none, every read sums all the shares.
    static EPOCH: Cell<u64> = const { Cell::new(0) };
}

/// Makes the calling thread the only writer of writer slot `slot` of every destination load
/// (a data-plane worker, with its worker index, before it binds anything): its updates then
/// go to that slot's share with plain stores. No two live threads may claim the same slot
/// (their updates would overwrite each other's: counts off, never undefined behaviour).
pub fn claim_writer_slot(slot: usize) {
    SHARE.with(|s| s.set(slot.saturating_add(1)));
}

/// Gives the calling thread's writer slot up: its later updates are atomic ones on share 0,
/// and its reads sum every share again.
pub fn release_writer_slot() {
    SHARE.with(|s| s.set(0));
    EPOCH.with(|e| e.set(0));
}

/// Starts a new epoch for the calling writer (a worker, once per burst): within an epoch, its
/// reads of a destination's counts add its own share, always current, to the other shares'
/// sum as it was at its first read of that destination in the epoch, kept in its own share's
/// line. So a worker's picks see its own binds at once and the other workers' binds of up to
/// one burst before, and read the other workers' lines once per destination and burst instead
/// of at every pick. The thresholds always read every share. Until a thread's first call,
/// every read sums all the shares.
pub fn new_epoch() {
    EPOCH.with(|e| e.set(e.get().wrapping_add(1).max(1)));
}

/// One share of a destination's counts, alone on its cache line with its writer's view of
/// the others (all written by that writer only).
#[repr(align(64))]
#[derive(Default)]
struct Share {
    /// This share's counts, `active << 32 | inactive`.
    conns: AtomicU64,
    /// The other shares' sum, as read in epoch `epoch`.
    others: AtomicU64,
    epoch: AtomicU64,
    /// This share's persistence templates (PersistConn).
    persist: AtomicU64,
}

/// Live load of one destination shared by all workers: relaxed atomics; the counts in
/// per-writer shares (see the module docs), the rest on one cache line.
///
/// IPVS terms: `activeconns`, `inactconns`, `persistconns`, `IP_VS_DEST_F_OVERLOAD`,
/// `u_threshold`/`l_threshold`, `last_weight`.
#[repr(align(64))]
pub struct DestLoad {
    /// Share 0 (any thread), then one per writer slot.
    shares: Box<[Share]>,
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

impl Default for DestLoad {
    fn default() -> Self {
        DestLoad::with_writers(0)
    }
}

/// What a change touched, so a linked tree whose rule ignores it skips its walk: the active
/// count or the OVERLOAD flag (every rule reads them)...
pub(crate) const TOUCHED_ACTIVE: u8 = 1;
/// ...or the inactive count (lc and wlc read it, sed and nq do not). Templates touch neither.
pub(crate) const TOUCHED_INACTIVE: u8 = 2;

/// One active connection in a counts word.
const ACTIVE: u64 = 1 << 32;
/// One inactive connection in a counts word.
const INACTIVE: u64 = 1;

/// (active, inactive) of a counts word.
#[inline]
fn split(conns: u64) -> (u32, u32) {
    ((conns >> 32) as u32, conns as u32)
}

/// Take one connection off a counts word, saturating at 0 (a stray unbind must not turn into
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

impl DestLoad {
    /// A destination with no connections and no thresholds, updated through share 0 only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Like [`DestLoad::new`], with a share for each of `writers` writer slots (the data
    /// plane's workers: see [`claim_writer_slot`]).
    pub fn with_writers(writers: usize) -> Self {
        DestLoad {
            shares: (0..=writers).map(|_| Share::default()).collect(),
            overloaded: AtomicBool::new(false),
            upper: AtomicU32::new(0),
            lower: AtomicU32::new(0),
            last_weight: AtomicU32::new(0),
            tree_id: AtomicU64::new(0),
            link: ArcSwapOption::empty(),
        }
    }

    /// The totals' counts word: the sum of the shares' words.
    #[inline]
    fn word(&self) -> u64 {
        let load = |s: &Share| s.conns.load(Relaxed);
        // The usual cases (no writer slots, one worker) without a loop.
        match &*self.shares {
            [a] => load(a),
            [a, b] => load(a).wrapping_add(load(b)),
            all => all.iter().fold(0u64, |sum, s| sum.wrapping_add(load(s))),
        }
    }

    /// The counts word as the calling thread sees it: with a writer slot and an epoch, its
    /// own share plus its view of the others in this epoch ([`new_epoch`]), else
    /// [`DestLoad::word`].
    #[inline]
    fn view(&self) -> u64 {
        let epoch = EPOCH.with(Cell::get);
        let Some(own) = self.own().filter(|_| epoch != 0) else {
            return self.word();
        };
        let others = if own.epoch.load(Relaxed) == epoch {
            own.others.load(Relaxed)
        } else {
            let all = self.word();
            let others = all.wrapping_sub(own.conns.load(Relaxed));
            own.others.store(others, Relaxed);
            own.epoch.store(epoch, Relaxed);
            others
        };
        own.conns.load(Relaxed).wrapping_add(others)
    }

    /// The share the calling thread writes, if it is a writer slot's only writer.
    #[inline(always)]
    fn own_share(&self) -> Option<&AtomicU64> {
        self.own().map(|s| &s.conns)
    }

    /// The calling thread's share, if it is a writer slot's only writer and the slot has one.
    #[inline(always)]
    fn own(&self) -> Option<&Share> {
        match SHARE.with(Cell::get) {
            0 => None,
            w => self.shares.get(w),
        }
    }

    /// Applies `f` to the calling thread's share of the templates, as [`DestLoad::update`].
    #[inline]
    fn update_persist(&self, f: impl Fn(u64) -> u64) {
        match self.own() {
            Some(s) => s.persist.store(f(s.persist.load(Relaxed)), Relaxed),
            None => {
                let _ = self.shares[0]
                    .persist
                    .fetch_update(Relaxed, Relaxed, |v| Some(f(v)));
            }
        }
    }

    /// Applies `f` to the calling thread's share (see the module docs): a plain load and
    /// store for a writer slot's only writer (no lock prefix), else an atomic update of
    /// share 0.
    #[inline(always)]
    fn update(&self, f: impl Fn(u64) -> u64) {
        match self.own_share() {
            Some(s) => s.store(f(s.load(Relaxed)), Relaxed),
            None => {
                let _ = self.shares[0]
                    .conns
                    .fetch_update(Relaxed, Relaxed, |v| Some(f(v)));
            }
        }
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
        self.counts().0
    }

    /// Inactive connections (InActConn).
    #[inline]
    pub fn inactive(&self) -> u32 {
        self.counts().1
    }

    /// (active, inactive) read together: one load per share, or for a worker in an epoch
    /// its own share and its view of the others ([`new_epoch`]).
    #[inline]
    pub fn counts(&self) -> (u32, u32) {
        split(self.view())
    }

    /// Each share's (active, inactive): share 0 (threads without a writer slot), then writer
    /// slot 0's, 1's, ... (diagnostics and tests: which thread counted what).
    pub fn share_counts(&self) -> Vec<(u32, u32)> {
        self.shares
            .iter()
            .map(|s| split(s.conns.load(Relaxed)))
            .collect()
    }

    /// active + inactive, every share read (templates are not counted for thresholds).
    #[inline]
    fn total(&self) -> u64 {
        let (a, i) = split(self.word());
        u64::from(a) + u64::from(i)
    }

    /// Persistence templates bound to this destination (PersistConn).
    pub fn persistent(&self) -> u32 {
        let sum = self
            .shares
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.persist.load(Relaxed)));
        sum.min(u64::from(u32::MAX)) as u32
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

    /// Kernel ip_vs_bind_dest's threshold rule: OVERLOAD once the total (active + inactive
    /// after the bind) >= u_threshold. Returns [`TOUCHED_ACTIVE`] when it set the flag. Sums
    /// the shares only where there is a threshold.
    #[inline]
    fn check_upper(&self) -> u8 {
        let upper = self.upper.load(Relaxed);
        if upper != 0 && self.total() >= upper as u64 && !self.overloaded.load(Relaxed) {
            self.overloaded.store(true, Relaxed);
            return TOUCHED_ACTIVE;
        }
        0
    }

    /// Kernel ip_vs_unbind_dest's rule, the total being active + inactive after the unbind:
    /// clear OVERLOAD below l_threshold when set, else below 3/4 of u_threshold when set, else
    /// always. Nothing to do (one load) while the flag is clear, as almost always. Returns
    /// [`TOUCHED_ACTIVE`] when it cleared the flag.
    #[inline]
    fn check_lower(&self) -> u8 {
        if !self.overloaded.load(Relaxed) {
            return 0;
        }
        let total = self.total();
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
        match self.own_share() {
            Some(s) => s.store(s.load(Relaxed).wrapping_add(one), Relaxed),
            None => {
                self.shares[0].conns.fetch_add(one, Relaxed);
            }
        }
        let flag = self.check_upper();
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
        self.update(|c| minus(c, one));
        let flag = self.check_lower();
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
        // The count left loses one unless it is already zero (saturating, as unbind).
        self.update(|c| {
            let m = minus(c, less);
            m.checked_add(plus).unwrap_or(c)
        });
        self.notify(TOUCHED_ACTIVE | TOUCHED_INACTIVE);
    }

    /// A persistence template bound (persistconns; not counted for thresholds, but the kernel
    /// runs the upper-threshold check as for any bind).
    pub fn bind_template(&self) {
        self.update_persist(|p| p + 1);
        let flag = self.check_upper();
        self.notify(flag);
    }

    /// A persistence template unbound (the kernel runs the clearing rule as for any unbind).
    pub fn unbind_template(&self) {
        self.update_persist(|p| p.saturating_sub(1));
        let flag = self.check_lower();
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
    new_loads_with_writers(n, 0)
}

/// `n` fresh loads with a share for each of `writers` writer slots.
pub fn new_loads_with_writers(n: usize, writers: usize) -> Vec<Arc<DestLoad>> {
    (0..n)
        .map(|_| Arc::new(DestLoad::with_writers(writers)))
        .collect()
}
