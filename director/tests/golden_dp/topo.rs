//! The data-plane tests' topology, as golden_dp/gen.py builds its frames: port 0 "outside"
//! (203.0.113.1/24: clients and VIPs), port 1 "inside" (198.51.100.1/24: real servers), and
//! the services of [`classic`]. Shared by the dataplane_* test binaries.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use director::dataplane::neigh::{NeighConfig, NeighManager};
use director::dataplane::netstate::{NetState, PortInfo};
use director::dataplane::route::RouteTableBuilder;
use director::dataplane::snapshot::ServiceInput;
use director::model::{DestConfig, ForwardMethod, Protocol, SchedFlags, ServiceConfig, ServiceKey};
use director::wire::MacAddr;

pub const P0_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const P1_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
pub const P0_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const P1_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const C1: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
pub const C1_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
pub const C2: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 11);
pub const C2_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];
pub const HOST: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
pub const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x32];
pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 200);
pub const VIP_DR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 201);
pub const VIP_TUN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 202);
pub const VIP_Q: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 203);
pub const VIP_P: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 204);
pub const VIP_U: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 205);
pub const RS_A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
pub const RS_A_MAC: [u8; 6] = [2, 0, 0, 0, 1, 0x0a];
pub const RS_B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 11);
pub const RS_B_MAC: [u8; 6] = [2, 0, 0, 0, 1, 0x0b];
pub const RS_C: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 12);
pub const RS_C_MAC: [u8; 6] = [2, 0, 0, 0, 1, 0x0c];

/// Destination ids of `classic()`.
pub const D_A: u32 = 1; // VIP:80 -> RS_A:8080 masq
pub const D_B: u32 = 2; // VIP:80 -> RS_B:8080 masq
pub const D_UDP: u32 = 3; // udp VIP:53 -> RS_A:5300 masq
pub const D_DR: u32 = 4; // VIP_DR:80 -> RS_A:80 route
pub const D_TUN: u32 = 5; // VIP_TUN:80 -> RS_B:80 tunnel
pub const D_Q: u32 = 6; // VIP_Q:80 -> RS_B:9090 masq, weight 0
pub const D_PA: u32 = 7; // VIP_P:443 persistent -> RS_A:443
pub const D_PB: u32 = 8; // VIP_P:443 persistent -> RS_B:443
pub const D_U: u32 = 9; // VIP_U:80 -> RS_C:8080 masq (no static neighbour)

pub fn dest(addr: Ipv4Addr, port: u16, forward: ForwardMethod, weight: u32) -> DestConfig {
    DestConfig {
        addr: IpAddr::V4(addr),
        port,
        forward,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

pub fn service(
    proto: Protocol,
    vip: Ipv4Addr,
    port: u16,
    persistence: Option<u32>,
    dests: Vec<(u32, DestConfig)>,
) -> ServiceInput {
    ServiceInput {
        config: ServiceConfig {
            key: ServiceKey::Addr {
                proto,
                addr: IpAddr::V4(vip),
                port,
            },
            scheduler: "rr".into(),
            flags: SchedFlags::default(),
            persistence,
            netmask_prefix: if persistence.is_some() { 24 } else { 32 },
            one_packet: false,
        },
        dests,
    }
}

/// The services of every test: `weight_a` is RS_A's weight on VIP:80, which `with_a = false`
/// removes from it.
pub fn services(weight_a: u32, with_a: bool) -> Vec<ServiceInput> {
    use ForwardMethod::*;
    use Protocol::*;
    let mut web = vec![(D_B, dest(RS_B, 8080, Masq, 1))];
    if with_a {
        web.insert(0, (D_A, dest(RS_A, 8080, Masq, weight_a)));
    }
    vec![
        service(Tcp, VIP, 80, None, web),
        service(Udp, VIP, 53, None, vec![(D_UDP, dest(RS_A, 5300, Masq, 1))]),
        service(
            Tcp,
            VIP_DR,
            80,
            None,
            vec![(D_DR, dest(RS_A, 80, Route, 1))],
        ),
        service(
            Tcp,
            VIP_TUN,
            80,
            None,
            vec![(D_TUN, dest(RS_B, 80, Tunnel, 1))],
        ),
        service(Tcp, VIP_Q, 80, None, vec![(D_Q, dest(RS_B, 9090, Masq, 0))]),
        service(
            Tcp,
            VIP_P,
            443,
            Some(300),
            vec![
                (D_PA, dest(RS_A, 443, Masq, 1)),
                (D_PB, dest(RS_B, 443, Masq, 1)),
            ],
        ),
        service(Tcp, VIP_U, 80, None, vec![(D_U, dest(RS_C, 8080, Masq, 1))]),
    ]
}

pub fn classic() -> Vec<ServiceInput> {
    services(1, true)
}

/// Ports 0 and 1 with their addresses (MTU 1500) and connected routes.
pub fn net_state() -> NetState {
    let routes = RouteTableBuilder::new()
        .connected(0, P0_IP, 24, 1500)
        .connected(1, P1_IP, 24, 1500)
        .build()
        .expect("routes");
    NetState {
        ports: vec![
            PortInfo {
                mac: MacAddr(P0_MAC),
                mtu: 1500,
                addrs: vec![P0_IP],
            },
            PortInfo {
                mac: MacAddr(P1_MAC),
                mtu: 1500,
                addrs: vec![P1_IP],
            },
        ],
        routes,
    }
}

/// A neighbour manager with static entries for C1, C2, RS_A and RS_B (not RS_C).
pub fn neighbours(net: &NetState) -> NeighManager {
    let mut mgr = NeighManager::new(NeighConfig::default(), Arc::new(net.routes.clone()));
    for (port, ip, mac) in [
        (0, C1, C1_MAC),
        (0, C2, C2_MAC),
        (1, RS_A, RS_A_MAC),
        (1, RS_B, RS_B_MAC),
    ] {
        mgr.add_static(port, ip, mac).expect("static neighbour");
    }
    mgr
}
