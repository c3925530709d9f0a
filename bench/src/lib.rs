//! testpmd-style performance runs of the director's data plane.
//!
//! The director's real poll-mode workers (`director::dataplane::worker::Worker`, the same
//! `Pipeline` as production) run on DPDK ring-backed ports fed by a traffic generator on
//! another core. Each scenario is measured three ways on the same ports and generator: the
//! workers' throughput, the director's own cycles per packet (a probe loop timing
//! `Pipeline::process`), and the pass-through I/O ceiling. See `measure` for the method.
#![deny(missing_docs)]

pub mod check;
pub mod cpu;
pub mod dut;
pub mod flows;
pub mod frame;
pub mod gen;
pub mod machine;
pub mod measure;
pub mod plot;
pub mod repeat;
pub mod report;
pub mod rig;
pub mod testpmd;
pub mod topo;
