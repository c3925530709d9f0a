//! The bench topology: port 0 "outside" (clients, VIPs), port 1 "inside" (real servers), one
//! virtual service per forwarding method, static neighbours (no ARP on the measured path).
//!
//! Clients live in 10.0.0.0/8 behind the outside port; inbound traffic needs no route back to
//! them. The inside port has a 9000-byte MTU so that IP-in-IP encapsulation of 1500-byte
//! frames fits (a tunnel leg is usually configured so; otherwise the director answers
//! "fragmentation needed", which is not what a throughput run measures).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use director::dataplane::neigh::{NeighConfig, NeighManager, NeighTable};
use director::dataplane::netstate::{NetState, PortInfo};
use director::dataplane::route::RouteTableBuilder;
use director::dataplane::snapshot::{ServiceInput, Snapshot, SnapshotBuilder, StatsRegistry};
use director::model::{DestConfig, ForwardMethod, Protocol, SchedFlags, ServiceConfig, ServiceKey};
use director::wire::MacAddr;

/// MAC of the director's outside port (port 0).
pub const P0_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// MAC of the director's inside port (port 1).
pub const P1_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
/// The director's address on port 0.
pub const P0_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The director's address on port 1.
pub const P1_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// MAC of the upstream router that delivers client traffic to port 0.
pub const ROUTER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
/// Address of that router (the clients' gateway in [`net_state_routed`]).
pub const ROUTER_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);
/// VIP of the NAT (masquerading) service, TCP port 80.
pub const VIP_NAT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 200);
/// VIP of the direct-routing service, TCP port 80.
pub const VIP_DR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 201);
/// VIP of the IP-in-IP tunnel service, TCP port 80.
pub const VIP_TUN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 202);
/// Virtual port of every service.
pub const VPORT: u16 = 80;
/// Real-server port of the NAT service.
pub const NAT_RPORT: u16 = 8080;
/// Number of real servers per service.
pub const N_REAL: usize = 4;

/// Address of real server `i` (0-based) on the inside segment.
pub fn real_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 10 + i as u8)
}

/// MAC of real server `i`.
pub fn real_mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 0, 1, 0x0a + i as u8]
}

/// Whether `mac` is one of the real servers' MACs.
pub fn is_real_mac(mac: &[u8]) -> bool {
    (0..N_REAL).any(|i| mac == real_mac(i))
}

/// Whether `ip` is one of the real servers.
pub fn is_real_ip(ip: Ipv4Addr) -> bool {
    (0..N_REAL).any(|i| ip == real_ip(i))
}

/// Which service a scenario's traffic is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// VS/NAT (ipvsadm -m).
    Nat,
    /// VS/DR (ipvsadm -g).
    Dr,
    /// VS/TUN (ipvsadm -i).
    Tun,
    /// The NAT real servers' replies to the clients (the VS/NAT service's other direction).
    NatReply,
}

impl Method {
    /// The VIP of this method's service.
    pub fn vip(self) -> Ipv4Addr {
        match self {
            Method::Nat | Method::NatReply => VIP_NAT,
            Method::Dr => VIP_DR,
            Method::Tun => VIP_TUN,
        }
    }
}

fn service(vip: Ipv4Addr, rport: u16, fwd: ForwardMethod, first_id: u32) -> ServiceInput {
    ServiceInput {
        config: ServiceConfig {
            key: ServiceKey::Addr {
                proto: Protocol::Tcp,
                addr: IpAddr::V4(vip),
                port: VPORT,
            },
            // ipvsadm's default scheduler.
            scheduler: "wlc".into(),
            flags: SchedFlags::default(),
            persistence: None,
            netmask_prefix: 32,
            one_packet: false,
        },
        dests: (0..N_REAL)
            .map(|i| {
                (
                    first_id + i as u32,
                    DestConfig {
                        addr: IpAddr::V4(real_ip(i)),
                        port: rport,
                        forward: fwd,
                        weight: 1,
                        u_threshold: 0,
                        l_threshold: 0,
                    },
                )
            })
            .collect(),
    }
}

/// The three services: NAT VIP:80 -> RS:8080, DR VIP:80 -> RS:80, TUN VIP:80 -> RS:80, each
/// over [`N_REAL`] real servers with wlc.
pub fn services() -> Vec<ServiceInput> {
    vec![
        service(VIP_NAT, NAT_RPORT, ForwardMethod::Masq, 1),
        service(VIP_DR, VPORT, ForwardMethod::Route, 101),
        service(VIP_TUN, VPORT, ForwardMethod::Tunnel, 201),
    ]
}

/// A snapshot of [`services`] for `n_workers` workers.
pub fn snapshot(n_workers: usize) -> Result<Snapshot, String> {
    let mut registry = StatsRegistry::new(n_workers);
    SnapshotBuilder::new(&mut registry, None).build(1, &services(), Default::default())
}

/// Ports 0 (MTU 1500) and 1 (MTU 9000) with their connected routes.
pub fn net_state() -> Result<NetState, String> {
    ports(RouteTableBuilder::new())
}

/// [`net_state`] plus a default route via the router on port 0 ([`ROUTER_IP`]): the route
/// NAT replies to the clients take.
pub fn net_state_routed() -> Result<NetState, String> {
    ports(RouteTableBuilder::new().default_gateway(ROUTER_IP))
}

fn ports(routes: RouteTableBuilder) -> Result<NetState, String> {
    let routes = routes
        .connected(0, P0_IP, 24, 1500)
        .connected(1, P1_IP, 24, 9000)
        .build()
        .map_err(|e| format!("routes: {e}"))?;
    Ok(NetState {
        ports: vec![
            PortInfo {
                mac: MacAddr(P0_MAC),
                mtu: 1500,
                addrs: vec![P0_IP],
            },
            PortInfo {
                mac: MacAddr(P1_MAC),
                mtu: 9000,
                addrs: vec![P1_IP],
            },
        ],
        routes,
    })
}

/// Neighbours: every real server, static (and the router, where a route uses it).
pub fn neighbours(net: &NetState) -> Result<Arc<NeighTable>, String> {
    let mut mgr = NeighManager::new(NeighConfig::default(), Arc::new(net.routes.clone()));
    for i in 0..N_REAL {
        mgr.add_static(1, real_ip(i), real_mac(i))
            .map_err(|e| format!("static neighbour {}: {e}", real_ip(i)))?;
    }
    if net.routes.lookup(Ipv4Addr::new(10, 0, 0, 1)).is_some() {
        mgr.add_static(0, ROUTER_IP, ROUTER_MAC)
            .map_err(|e| format!("static neighbour {ROUTER_IP}: {e}"))?;
    }
    Ok(mgr.snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_builds_and_resolves_every_real_server() {
        let snap = snapshot(1).unwrap();
        assert_eq!(snap.services.len(), 3);
        let net = net_state().unwrap();
        let neigh = neighbours(&net).unwrap();
        for i in 0..N_REAL {
            let r = net.routes.lookup(real_ip(i)).expect("route to real server");
            assert_eq!(r.port, 1);
            assert_eq!(neigh.lookup(1, real_ip(i)), Some(real_mac(i)));
        }
        for m in [Method::Nat, Method::Dr, Method::Tun] {
            assert!(snap.service_for(6, IpAddr::V4(m.vip()), VPORT).is_some());
        }
    }
}
