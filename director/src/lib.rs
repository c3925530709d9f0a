//! director: a DPDK-based user-space IPVS/LVS director.
//!
//! Layout (see docs/ARCHITECTURE.md):
//! - [`dpdk`]: the one safe wrapper over `dpdk-sys` (EAL, mempool, ports, queues, mbufs).
//! - [`wire`]: zero-copy packet views and the packet transforms (NAT, DR, TUN, ICMP, ARP).
//! - [`dataplane`]: poll-mode workers, steering, connection tracking.
//! - [`control`]: the IPVS table, daemon, config and control socket.
//! - [`cli`]: ipvsadm syntax and output formats.
//! - [`metrics`]: per-worker counters, IPVS rate estimator, Prometheus exporter.
#![deny(missing_docs)]

pub mod cli;
pub mod control;
pub mod dataplane;
pub mod dpdk;
pub mod metrics;
pub mod model;
pub mod wire;
