//! The director's own network identity, as the workers see it: ports (MACs), addresses and
//! routes. Built by the daemon at start-up; neighbours are a separate, more often published
//! snapshot (`neigh::NeighTable`).

use crate::dataplane::route::RouteTable;
use crate::wire::MacAddr;
use std::net::Ipv4Addr;

/// One port as the pipeline needs it.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// The port's MAC address.
    pub mac: MacAddr,
    /// MTU.
    pub mtu: u16,
    /// The director's addresses on this port.
    pub addrs: Vec<Ipv4Addr>,
}

/// Ports and routes.
#[derive(Debug, Clone)]
pub struct NetState {
    /// Ports by DPDK port index (the pipeline's port numbers).
    pub ports: Vec<PortInfo>,
    /// Routing table (connected prefixes, static routes, default gateway).
    pub routes: RouteTable,
}

impl NetState {
    /// MAC of port `port` (zero MAC for an unknown port, which then sends nothing useful).
    #[inline]
    pub fn mac(&self, port: u16) -> MacAddr {
        self.ports
            .get(usize::from(port))
            .map(|p| p.mac)
            .unwrap_or(MacAddr([0; 6]))
    }

    /// Whether `addr` is one of the director's own addresses (any port).
    #[inline]
    pub fn is_local(&self, addr: Ipv4Addr) -> bool {
        self.ports.iter().any(|p| p.addrs.contains(&addr))
    }
}
