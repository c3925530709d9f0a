//! IPVS schedulers with the kernel's semantics (placeholder logic; API stable).
#![deny(missing_docs)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

pub use std::net::IpAddr;

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
    /// Upper connection threshold (`-x`), 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub l_threshold: u32,
}

/// Live load of one destination shared by all workers: relaxed atomics, one cache line.
#[repr(align(64))]
#[derive(Debug, Default)]
pub struct DestLoad {
    active: AtomicU32,
    inactive: AtomicU32,
    persist: AtomicU32,
    overloaded: AtomicBool,
    upper: AtomicU32,
    lower: AtomicU32,
}

impl DestLoad {
    /// A destination with no connections and no thresholds.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set the thresholds (`-x`/`-y`); clears OVERLOAD when the new upper is 0 or larger.
    pub fn set_thresholds(&self, upper: u32, lower: u32) {
        let old = self.upper.swap(upper, Relaxed);
        self.lower.store(lower, Relaxed);
        if upper == 0 || upper > old {
            self.overloaded.store(false, Relaxed);
        }
    }
    /// Active connections.
    pub fn active(&self) -> u32 {
        self.active.load(Relaxed)
    }
    /// Inactive connections.
    pub fn inactive(&self) -> u32 {
        self.inactive.load(Relaxed)
    }
    /// Persistence templates.
    pub fn persistent(&self) -> u32 {
        self.persist.load(Relaxed)
    }
    /// OVERLOAD flag.
    pub fn is_overloaded(&self) -> bool {
        self.overloaded.load(Relaxed)
    }
    /// A new connection bound to this destination.
    pub fn bind(&self, active: bool) {
        if active {
            self.active.fetch_add(1, Relaxed);
        } else {
            self.inactive.fetch_add(1, Relaxed);
        }
    }
    /// A connection unbound.
    pub fn unbind(&self, was_active: bool) {
        if was_active {
            self.active.fetch_sub(1, Relaxed);
        } else {
            self.inactive.fetch_sub(1, Relaxed);
        }
    }
    /// A connection crossed the active/inactive line.
    pub fn set_active(&self, from_active: bool, to_active: bool) {
        if from_active != to_active {
            self.unbind(from_active);
            self.bind(to_active);
        }
    }
    /// A persistence template bound.
    pub fn bind_template(&self) {
        self.persist.fetch_add(1, Relaxed);
    }
    /// A persistence template unbound.
    pub fn unbind_template(&self) {
        self.persist.fetch_sub(1, Relaxed);
    }
}

/// Scheduler parameters (ipvsadm -s, -b flags).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SchedParams {
    /// Scheduler name as ipvsadm spells it.
    pub name: String,
    /// sh-fallback / mh-fallback / flag-1.
    pub flag1: bool,
    /// sh-port / mh-port / flag-2.
    pub flag2: bool,
    /// flag-3.
    pub flag3: bool,
    /// Maglev table size (mh only), a prime of the kernel's list; None = 4093.
    pub mh_table_size: Option<u32>,
}

/// A built scheduler for one service, shared by all workers.
pub trait Scheduler: Send + Sync {
    /// ipvsadm name.
    fn name(&self) -> &'static str;
    /// Choose a destination index into the `dests` given to build(); None = no destination.
    fn schedule(&self, flow: &FlowInfo) -> Option<usize>;
}

/// Why a scheduler could not be built.
#[derive(Debug, Clone, PartialEq)]
pub enum SchedError {
    /// No scheduler of that name.
    UnknownScheduler(String),
    /// A parameter is out of range.
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

struct Placeholder {
    name: &'static str,
    loads: Vec<Arc<DestLoad>>,
    weights: Vec<u32>,
}

impl Scheduler for Placeholder {
    fn name(&self) -> &'static str {
        self.name
    }
    fn schedule(&self, _flow: &FlowInfo) -> Option<usize> {
        (0..self.weights.len()).find(|&i| self.weights[i] > 0 && !self.loads[i].is_overloaded())
    }
}

/// Build a scheduler off the fast path (see the crate docs for carry-over rules).
pub fn build(
    params: &SchedParams,
    dests: &[DestSpec],
    loads: &[Arc<DestLoad>],
    _prev: Option<&dyn Scheduler>,
) -> Result<Box<dyn Scheduler>, SchedError> {
    let name = SCHEDULER_NAMES
        .iter()
        .find(|n| **n == params.name)
        .ok_or_else(|| SchedError::UnknownScheduler(params.name.clone()))?;
    if dests.len() != loads.len() {
        return Err(SchedError::InvalidParam(
            "dests and loads differ in length".into(),
        ));
    }
    Ok(Box::new(Placeholder {
        name,
        loads: loads.to_vec(),
        weights: dests.iter().map(|d| d.weight).collect(),
    }))
}
