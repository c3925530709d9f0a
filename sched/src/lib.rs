//! IPVS schedulers with the Linux kernel's semantics, for a user-space director.
//!
//! One file per scheduler (`rr.rs`, `wrr.rs`, ... as the kernel's `ip_vs_*.c`), all behind the
//! small [`Scheduler`] trait; [`build`] maps the ipvsadm name to one.
//!
//! # Model
//! - Destinations are given to [`build`] in the kernel's list order: NEWEST FIRST (IPVS adds a
//!   destination at the head of the service's list). Results are indices into that slice.
//! - Every scheduler skips destinations with weight 0 (quiesced) or the OVERLOAD flag (upper
//!   threshold reached), except that mh and sh/dh keep such a destination in their tables
//!   (giving no result, or falling back with the -fallback flag) as the kernel does.
//! - A built scheduler is immutable apart from interior atomics (rr/wrr cursor, lblc/lblcr
//!   cache, least-connection tree). `schedule` takes `&self`, never locks, never allocates:
//!   workers on several cores share one instance, and rr/wrr sequences are global as in the
//!   kernel (one CAS per new connection).
//! - [`build`] runs off the fast path and returns a complete scheduler; the caller publishes it
//!   atomically. Pass the service's previous scheduler as `prev` so state carries over the way
//!   the kernel's add/edit/del hooks do (rr cursor, wrr cw rule, lblc/lblcr caches).
//!
//! # Connection counts and staleness
//! [`DestLoad`] holds a destination's active/inactive/persistent counts and OVERLOAD flag as
//! relaxed atomics on one cache line, shared by all workers. A bind by worker A is visible to
//! worker B's next pick modulo cache coherence (nanoseconds), with no ordering between fields,
//! like the kernel's lockless `atomic_read`s. Two workers picking at the same instant can both
//! choose the same least-loaded destination, as two kernel CPUs can.
//!
//! lc, wlc, sed, nq (and lblc/lblcr's wlc fallback) scan their destinations per pick as the
//! kernel does while a service has at most 64; larger ones keep the kernel's choice at the root
//! of a tournament tree refreshed by every [`DestLoad`] change (O(log n) per bind/unbind, O(1)
//! per pick) instead of the kernel's O(n) scan per new connection; see `least.rs`. A bind,
//! unbind or state change of a destination no tree is linked to costs one atomic operation.
//!
//! # Hashing
//! dh/sh/lblc/lblcr use the kernel's `hash_32` and IPv6 address folding; mh uses the kernel's
//! hsiphash (SipHash-1-3 as built on 64-bit kernels) with its fixed keys, so bucket layouts
//! and lookups match a kernel's for the same list.
//!
//! # Where this differs from the kernel (on purpose)
//! - lc/wlc/sed/nq pick in O(1) from a tree above 64 destinations (same choices); a
//!   bind/unbind/state change costs O(log n) there instead.
//! - rr keeps its cursor on the same destination across rebuilds, and moves it to the previous
//!   one when that destination is deleted (the kernel's list-pointer behaviour). A rebuild that
//!   changes several destinations at once is treated as one change.
//! - wrr applies the cw reset rule once per rebuild that changes its list (the kernel: once
//!   per add/edit/del); a rebuild with an identical list keeps its position.
//! - mh's `last_weight` (quiesced destinations keep their slots) is kept on [`DestLoad`]: keep
//!   the same `Arc<DestLoad>` when a destination is edited.
//! - lblc/lblcr: the cache is a fixed 1024 x 16-slot table (no GC timer; least recently used
//!   slot replaced when a bucket is full; entries idle 24 h ignored), IPv6 keys are 63-bit
//!   fingerprints, lblcr sets hold at most 4 destinations, and a cached destination with the
//!   OVERLOAD flag is not reused (the kernel's lblc only checks weight and its own
//!   "overloaded" rule there).
//! - twos draws from a per-thread wyrand generator; still O(n) per pick as in the kernel.
#![deny(missing_docs)]

use std::any::Any;
use std::sync::Arc;

pub use std::net::IpAddr;

mod common;
mod dh;
mod fo;
mod lblc;
mod lblcr;
mod lc;
mod least;
mod load;
mod locality;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod siphash;
mod twos;
mod wlc;
mod wrr;

pub use load::{
    claim_writer_slot, new_epoch, new_loads, new_loads_with_writers, release_writer_slot, DestLoad,
};
pub use mh::{MH_DEFAULT_TABLE_SIZE, MH_TABLE_SIZES};

/// The flow a new connection is scheduled for (client source, virtual destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowInfo {
    /// Client address.
    pub saddr: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Virtual (service) address.
    pub daddr: IpAddr,
    /// Virtual (service) port.
    pub dport: u16,
}

/// A destination as configured, in the kernel's list order (NEWEST FIRST) when passed to build().
#[derive(Clone, Debug, PartialEq)]
pub struct DestSpec {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Weight; 0 = quiesced.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none. Informational here: the live value is set
    /// on the destination's [`DestLoad`] with [`DestLoad::set_thresholds`].
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none (see `u_threshold`).
    pub l_threshold: u32,
}

/// Scheduler parameters (ipvsadm -s, -b flags).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedParams {
    /// Scheduler name as ipvsadm spells it (one of [`SCHEDULER_NAMES`]).
    pub name: String,
    /// IP_VS_SVC_F_SCHED1: sh-fallback / mh-fallback / flag-1.
    pub flag1: bool,
    /// IP_VS_SVC_F_SCHED2: sh-port / mh-port / flag-2.
    pub flag2: bool,
    /// IP_VS_SVC_F_SCHED3: flag-3 (no scheduler uses it).
    pub flag3: bool,
    /// Maglev table size (mh only), one of [`MH_TABLE_SIZES`]; None = 4093.
    pub mh_table_size: Option<u32>,
}

/// A built scheduler for one service. Immutable tables + interior atomics for cursors (rr/wrr:
/// one CAS per new connection, never a lock), so workers on several cores share one instance
/// and the rr sequence is global as in the kernel.
pub trait Scheduler: Send + Sync {
    /// The ipvsadm name ("rr", "wlc", ...).
    fn name(&self) -> &'static str;
    /// Choose a destination index into the `dests` given to build(); None = no destination.
    fn schedule(&self, flow: &FlowInfo) -> Option<usize>;
    /// The concrete scheduler, so [`build`] can carry state over from `prev`.
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }
}

/// Why a scheduler could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum SchedError {
    /// No scheduler of that name; Display lists the valid names.
    UnknownScheduler(String),
    /// A parameter is out of range (mh table size, too many destinations, ...).
    InvalidParam(String),
}

impl std::fmt::Display for SchedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchedError::UnknownScheduler(n) => write!(
                f,
                "unknown scheduler \"{n}\" (valid: {})",
                SCHEDULER_NAMES.join(", ")
            ),
            SchedError::InvalidParam(m) => write!(f, "invalid scheduler parameter: {m}"),
        }
    }
}

impl std::error::Error for SchedError {}

/// ipvsadm names of all schedulers.
pub const SCHEDULER_NAMES: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "sed", "nq", "dh", "sh", "mh", "lblc", "lblcr", "fo", "ovf", "twos",
];

/// Check a scheduler name without building anything.
pub fn validate(name: &str) -> Result<&'static str, SchedError> {
    SCHEDULER_NAMES
        .iter()
        .copied()
        .find(|n| *n == name)
        .ok_or_else(|| SchedError::UnknownScheduler(name.to_string()))
}

/// Build a scheduler off the fast path. `loads[i]` is the live load of `dests[i]` (Arc kept by
/// the caller across rebuilds so counts survive). `prev` is the previous scheduler of the same
/// service (or None) so stateful ones carry state over as the kernel does on add/edit/del
/// (e.g. wrr's cw reset rule, rr's cursor). Also records each destination's latest non-zero
/// weight on its [`DestLoad`] (the kernel's `last_weight`, used by mh).
pub fn build(
    params: &SchedParams,
    dests: &[DestSpec],
    loads: &[Arc<DestLoad>],
    prev: Option<&dyn Scheduler>,
) -> Result<Box<dyn Scheduler>, SchedError> {
    let name = validate(&params.name)?;
    if dests.len() != loads.len() {
        return Err(SchedError::InvalidParam(format!(
            "{} destinations but {} loads",
            dests.len(),
            loads.len()
        )));
    }
    if dests.len() >= common::NONE as usize {
        return Err(SchedError::InvalidParam("too many destinations".into()));
    }
    let last_weights: Vec<u32> = dests
        .iter()
        .zip(loads)
        .map(|(d, l)| {
            if d.weight > 0 {
                d.weight
            } else {
                l.last_weight()
            }
        })
        .collect();
    let view = common::Dests::new(dests, loads);
    let built = match name {
        "rr" => rr::build(view, prev),
        "wrr" => wrr::build(view, prev),
        "lc" => lc::build(&view),
        "wlc" => wlc::build(&view),
        "sed" => sed::build(&view),
        "nq" => nq::build(&view),
        "dh" => dh::build(view),
        "sh" => sh::build(view, params.flag1, params.flag2),
        "mh" => mh::build(
            view,
            &last_weights,
            params.mh_table_size,
            params.flag1,
            params.flag2,
        )?,
        "lblc" => lblc::build(view, prev),
        "lblcr" => lblcr::build(view, prev)?,
        "fo" => fo::build(view),
        "ovf" => ovf::build(view),
        _ => twos::build(view),
    };
    for (d, l) in dests.iter().zip(loads) {
        l.record_weight(d.weight);
    }
    Ok(built)
}

/// The bucket table of a dh or sh scheduler, or the lookup table of an mh one: the destination
/// index of each bucket/slot (None = empty). None for other schedulers. For tests and
/// diagnostics; allocates.
pub fn bucket_table(sched: &dyn Scheduler) -> Option<Vec<Option<usize>>> {
    let any = sched.as_any()?;
    let raw: &[u32] = if let Some(s) = any.downcast_ref::<dh::DestHash>() {
        s.buckets()
    } else if let Some(s) = any.downcast_ref::<sh::SourceHash>() {
        s.buckets()
    } else {
        any.downcast_ref::<mh::Maglev>()?.table()
    };
    Some(
        raw.iter()
            .map(|&d| (d != common::NONE).then_some(d as usize))
            .collect(),
    )
}
