//! What `ipvsadm -L` shows: configuration plus live counters, connections and timeouts.
//!
//! The control plane builds a [`ListSnapshot`] from the table ([`ListSnapshot::from_table`],
//! all counters zero) and the daemon overlays the data plane's counters before rendering it
//! with [`crate::cli::format::render_list`].

use std::net::IpAddr;

use crate::control::table::{DestId, IpvsTable, Timeouts};
use crate::model::{DestConfig, ServiceConfig};

/// Default size of the connection hash table shown in the listing header
/// ("IP Virtual Server version 1.2.1 (size=4096)").
pub const DEFAULT_CONN_TABLE_SIZE: u32 = 4096;

/// Traffic counters and rates of a service or destination (the kernel's `ip_vs_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets in (client to server).
    pub inpkts: u64,
    /// Packets out (server to client).
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
    /// Connections per second (estimator).
    pub cps: u64,
    /// Packets in per second.
    pub inpps: u64,
    /// Packets out per second.
    pub outpps: u64,
    /// Bytes in per second.
    pub inbps: u64,
    /// Bytes out per second.
    pub outbps: u64,
}

/// A destination as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestListing {
    /// The table's id for it.
    pub id: DestId,
    /// Configuration.
    pub config: DestConfig,
    /// Counters.
    pub stats: Stats,
    /// Active connections (ActiveConn).
    pub active_conns: u32,
    /// Inactive connections (InActConn).
    pub inact_conns: u32,
    /// Persistence templates pointing at it (PersistConn).
    pub persist_conns: u32,
}

/// A service as listed, destinations newest first (the table's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceListing {
    /// Configuration.
    pub config: ServiceConfig,
    /// Counters.
    pub stats: Stats,
    /// Destinations.
    pub dests: Vec<DestListing>,
}

/// One connection entry for `ipvsadm -L -c` (a line of the kernel's /proc/net/ip_vs_conn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnListing {
    /// "TCP", "UDP", or "IP" for a persistence template.
    pub proto: String,
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Virtual address and port (a fwmark template shows the mark as address 0.0.0.x).
    pub virt: (IpAddr, u16),
    /// Destination address and port.
    pub dest: (IpAddr, u16),
    /// State name as the kernel prints it ("ESTABLISHED", "UDP", "NONE", ...).
    pub state: String,
    /// Seconds until expiry.
    pub expires: u32,
}

/// Everything a listing can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSnapshot {
    /// Services in the table's (insertion) order.
    pub services: Vec<ServiceListing>,
    /// Connection entries, in the order to print them.
    pub connections: Vec<ConnListing>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Connection hash table size for the header.
    pub conn_table_size: u32,
}

impl ListSnapshot {
    /// The table's configuration with every counter zero and no connections.
    pub fn from_table(table: &IpvsTable) -> Self {
        ListSnapshot {
            services: table
                .services()
                .iter()
                .map(|s| ServiceListing {
                    config: s.config.clone(),
                    stats: Stats::default(),
                    dests: s
                        .dests
                        .iter()
                        .map(|d| DestListing {
                            id: d.id,
                            config: d.config.clone(),
                            stats: Stats::default(),
                            active_conns: 0,
                            inact_conns: 0,
                            persist_conns: 0,
                        })
                        .collect(),
                })
                .collect(),
            connections: Vec::new(),
            timeouts: table.timeouts(),
            conn_table_size: DEFAULT_CONN_TABLE_SIZE,
        }
    }
}
