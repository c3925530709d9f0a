//! User-space routing, neighbour resolution and rate limiting: behaviour tests.

use std::net::Ipv4Addr;
use std::sync::Arc;

use director::dataplane::neigh::{
    event_channel, NeighConfig, NeighError, NeighEvent, NeighManager, NeighState, NeighTable,
    PendingQueue, Queued, Resolution,
};
use director::dataplane::ratelimit::TokenBucket;
use director::dataplane::route::{
    RouteError, RouteKind, RouteResult, RouteTable, RouteTableBuilder,
};
use proptest::prelude::*;

const SEC: u64 = 1_000_000_000;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Port 0: 192.0.2.1/24 (clients side, gateway .254), port 1: 198.51.100.254/24 (real servers),
/// port 2: 203.0.113.1/28 with a smaller MTU.
fn two_armed() -> RouteTable {
    RouteTableBuilder::new()
        .connected(0, ip("192.0.2.1"), 24, 1500)
        .connected(1, ip("198.51.100.254"), 24, 9000)
        .connected(2, ip("203.0.113.1"), 28, 1400)
        .default_gateway(ip("192.0.2.254"))
        .route(ip("10.0.0.0"), 8, ip("198.51.100.1"))
        .route(ip("10.1.0.0"), 16, ip("203.0.113.2"))
        .route(ip("10.1.2.3"), 32, ip("198.51.100.2"))
        .build()
        .unwrap()
}

fn hop(port: u16, next_hop: &str, src: &str, mtu: u16) -> Option<RouteResult> {
    Some(RouteResult {
        port,
        next_hop: ip(next_hop),
        src: ip(src),
        mtu,
    })
}

#[test]
fn connected_beats_default() {
    let t = two_armed();
    assert_eq!(
        t.lookup(ip("198.51.100.7")),
        hop(1, "198.51.100.7", "198.51.100.254", 9000)
    );
    assert_eq!(
        t.lookup(ip("192.0.2.99")),
        hop(0, "192.0.2.99", "192.0.2.1", 1500)
    );
    assert_eq!(
        t.lookup(ip("203.0.113.15")),
        hop(2, "203.0.113.15", "203.0.113.1", 1400)
    );
}

#[test]
fn default_route_catches_the_rest() {
    let t = two_armed();
    // Just past the /28.
    assert_eq!(
        t.lookup(ip("203.0.113.16")),
        hop(0, "192.0.2.254", "192.0.2.1", 1500)
    );
    for a in ["0.0.0.0", "8.8.8.8", "255.255.255.255", "11.0.0.0"] {
        assert_eq!(
            t.lookup(ip(a)),
            hop(0, "192.0.2.254", "192.0.2.1", 1500),
            "{a}"
        );
    }
}

#[test]
fn overlapping_static_routes_longest_wins() {
    let t = two_armed();
    let via8 = hop(1, "198.51.100.1", "198.51.100.254", 9000);
    let via16 = hop(2, "203.0.113.2", "203.0.113.1", 1400);
    assert_eq!(t.lookup(ip("10.0.0.1")), via8);
    assert_eq!(t.lookup(ip("10.255.255.255")), via8);
    assert_eq!(t.lookup(ip("10.0.255.255")), via8);
    assert_eq!(t.lookup(ip("10.2.0.0")), via8);
    assert_eq!(t.lookup(ip("10.1.0.0")), via16);
    assert_eq!(t.lookup(ip("10.1.2.2")), via16);
    assert_eq!(t.lookup(ip("10.1.2.4")), via16);
    assert_eq!(t.lookup(ip("10.1.255.255")), via16);
    // /32 host route.
    assert_eq!(
        t.lookup(ip("10.1.2.3")),
        hop(1, "198.51.100.2", "198.51.100.254", 9000)
    );
}

#[test]
fn no_route_is_none() {
    let t = RouteTableBuilder::new()
        .connected(1, ip("198.51.100.254"), 24, 1500)
        .build()
        .unwrap();
    assert_eq!(t.lookup(ip("198.51.101.1")), None);
    assert_eq!(t.lookup(ip("198.51.99.255")), None);
    assert_eq!(t.lookup(ip("0.0.0.0")), None);
    assert!(t.lookup(ip("198.51.100.0")).is_some());
    assert_eq!(RouteTable::default().lookup(ip("1.2.3.4")), None);
}

#[test]
fn host_route_inside_connected_net() {
    // A /32 and a /25 carved out of a connected /24: the rest of the /24 stays connected.
    let t = RouteTableBuilder::new()
        .connected(0, ip("192.0.2.1"), 24, 1500)
        .connected(1, ip("198.51.100.1"), 24, 1500)
        .route(ip("192.0.2.77"), 32, ip("198.51.100.9"))
        .route(ip("192.0.2.128"), 25, ip("198.51.100.10"))
        .build()
        .unwrap();
    assert_eq!(
        t.lookup(ip("192.0.2.76")).unwrap().next_hop,
        ip("192.0.2.76")
    );
    assert_eq!(
        t.lookup(ip("192.0.2.77")).unwrap().next_hop,
        ip("198.51.100.9")
    );
    assert_eq!(
        t.lookup(ip("192.0.2.78")).unwrap().next_hop,
        ip("192.0.2.78")
    );
    assert_eq!(
        t.lookup(ip("192.0.2.127")).unwrap().next_hop,
        ip("192.0.2.127")
    );
    assert_eq!(
        t.lookup(ip("192.0.2.128")).unwrap().next_hop,
        ip("198.51.100.10")
    );
    assert_eq!(
        t.lookup(ip("192.0.2.255")).unwrap().next_hop,
        ip("198.51.100.10")
    );
    assert_eq!(t.lookup(ip("192.0.2.255")).unwrap().port, 1);
}

#[test]
fn local_addresses() {
    let t = RouteTableBuilder::new()
        .connected(0, ip("192.0.2.1"), 24, 1500)
        .connected(0, ip("192.0.2.2"), 24, 1500)
        .connected(1, ip("198.51.100.254"), 24, 1500)
        .build()
        .unwrap();
    assert_eq!(t.is_local(ip("192.0.2.1")), Some(0));
    assert_eq!(t.is_local(ip("192.0.2.2")), Some(0));
    assert_eq!(t.is_local(ip("198.51.100.254")), Some(1));
    assert_eq!(t.is_local(ip("192.0.2.3")), None);
    assert_eq!(t.is_local(ip("198.51.100.253")), None);
    // The secondary address shares the connected route; the primary stays the source.
    assert_eq!(t.routes().len(), 2);
    assert_eq!(t.lookup(ip("192.0.2.9")).unwrap().src, ip("192.0.2.1"));
    assert_eq!(t.routes()[1].kind, RouteKind::Connected);
    assert_eq!(t.routes()[1].prefix, ip("198.51.100.0"));
}

#[test]
fn on_link_rules() {
    let t = two_armed();
    assert!(t.on_link(1, ip("198.51.100.1")));
    assert!(!t.on_link(0, ip("198.51.100.1")), "other port's net");
    assert!(!t.on_link(1, ip("198.51.100.254")), "our own address");
    assert!(!t.on_link(1, ip("198.51.100.0")), "network address");
    assert!(!t.on_link(1, ip("198.51.100.255")), "broadcast");
    assert!(!t.on_link(0, ip("8.8.8.8")), "routed, not connected");
    assert!(t.on_link(2, ip("203.0.113.14")));
    assert!(!t.on_link(2, ip("203.0.113.16")));
}

#[test]
fn gateway_validation_errors() {
    let base = || RouteTableBuilder::new().connected(1, ip("198.51.100.254"), 24, 1500);
    assert_eq!(
        base()
            .route(ip("10.0.0.0"), 8, ip("192.0.2.1"))
            .build()
            .unwrap_err(),
        RouteError::GatewayNotOnLink {
            prefix: ip("10.0.0.0"),
            len: 8,
            via: ip("192.0.2.1")
        }
    );
    assert_eq!(
        base()
            .default_gateway(ip("198.51.100.254"))
            .build()
            .unwrap_err(),
        RouteError::GatewayIsLocal {
            via: ip("198.51.100.254")
        }
    );
    assert_eq!(
        base()
            .route(ip("10.0.0.1"), 8, ip("198.51.100.1"))
            .build()
            .unwrap_err(),
        RouteError::HostBitsSet {
            prefix: ip("10.0.0.1"),
            len: 8
        }
    );
    assert_eq!(
        base()
            .route(ip("10.0.0.0"), 33, ip("198.51.100.1"))
            .build()
            .unwrap_err(),
        RouteError::InvalidPrefixLen { len: 33 }
    );
    assert_eq!(
        base()
            .route(ip("10.0.0.0"), 8, ip("198.51.100.1"))
            .route(ip("10.0.0.0"), 8, ip("198.51.100.2"))
            .build()
            .unwrap_err(),
        RouteError::DuplicateRoute {
            prefix: ip("10.0.0.0"),
            len: 8
        }
    );
    assert_eq!(
        base()
            .route(ip("198.51.100.0"), 24, ip("198.51.100.2"))
            .build()
            .unwrap_err(),
        RouteError::DuplicateRoute {
            prefix: ip("198.51.100.0"),
            len: 24
        }
    );
    assert_eq!(
        base()
            .connected(2, ip("198.51.100.1"), 24, 1500)
            .build()
            .unwrap_err(),
        RouteError::ConnectedConflict {
            prefix: ip("198.51.100.0"),
            len: 24,
            port: 1,
            other_port: 2
        }
    );
    assert_eq!(
        base()
            .connected(2, ip("198.51.100.254"), 16, 1500)
            .build()
            .unwrap_err(),
        RouteError::DuplicateAddress {
            addr: ip("198.51.100.254")
        }
    );
    assert_eq!(
        base()
            .connected(2, ip("192.0.2.1"), 24, 67)
            .build()
            .unwrap_err(),
        RouteError::InvalidMtu { port: 2, mtu: 67 }
    );
    assert_eq!(
        base()
            .connected(2, ip("224.0.0.1"), 24, 1500)
            .build()
            .unwrap_err(),
        RouteError::InvalidAddress {
            addr: ip("224.0.0.1")
        }
    );
    let msg = base()
        .route(ip("10.0.0.0"), 8, ip("192.0.2.1"))
        .build()
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "route 10.0.0.0/8: gateway 192.0.2.1 is not on a connected net"
    );
}

#[test]
fn gateway_uses_most_specific_connected_net() {
    // 10.0.0.0/8 on port 0 and 10.1.0.0/16 on port 1 overlap; a gateway in the /16 is on port 1.
    let t = RouteTableBuilder::new()
        .connected(0, ip("10.0.0.1"), 8, 1500)
        .connected(1, ip("10.1.0.1"), 16, 9000)
        .default_gateway(ip("10.1.0.2"))
        .build()
        .unwrap();
    assert_eq!(
        t.lookup(ip("8.8.8.8")),
        hop(1, "10.1.0.2", "10.1.0.1", 9000)
    );
    assert_eq!(
        t.lookup(ip("10.2.0.1")),
        hop(0, "10.2.0.1", "10.0.0.1", 1500)
    );
}

// ---------------------------------------------------------------- neighbours

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
const MAC_S: [u8; 6] = [0x02, 0, 0, 0, 0, 0x5a];

fn manager() -> NeighManager {
    let cfg = NeighConfig {
        reachable_ns: 300 * SEC,
        retry_interval_ns: SEC,
        max_probes: 3,
        failed_hold_ns: 20 * SEC,
        max_entries: 8,
    };
    NeighManager::new(cfg, Arc::new(two_armed()))
}

fn learned(port: u16, a: &str, mac: [u8; 6]) -> NeighEvent {
    NeighEvent::Learned {
        port,
        ip: ip(a),
        mac,
    }
}

#[test]
fn learns_on_link_and_ignores_foreign_arp() {
    let mut m = manager();
    m.apply(learned(1, "198.51.100.1", MAC_A), 0);
    m.apply(learned(0, "198.51.100.2", MAC_B), 0); // right net, wrong port
    m.apply(learned(1, "10.0.0.1", MAC_B), 0); // routed, not connected
    m.apply(learned(1, "198.51.100.254", MAC_B), 0); // claims our address
    m.apply(learned(1, "198.51.100.3", [0xff; 6]), 0); // broadcast sender MAC
    m.apply(learned(1, "198.51.100.4", [0x01, 0, 0x5e, 0, 0, 1]), 0); // multicast MAC
    let t = m.snapshot();
    assert_eq!(t.lookup(1, ip("198.51.100.1")), Some(MAC_A));
    assert_eq!(t.lookup(0, ip("198.51.100.1")), None, "keyed by port");
    assert_eq!(t.lookup(0, ip("198.51.100.2")), None);
    assert_eq!(t.lookup(1, ip("10.0.0.1")), None);
    assert_eq!(t.lookup(1, ip("198.51.100.254")), None);
    assert_eq!(t.len(), 1);
    let s = m.stats();
    assert_eq!((s.learned, s.ignored_foreign, s.ignored_invalid), (1, 3, 2));
}

#[test]
fn static_entries_win_over_learned_and_never_expire() {
    let mut m = manager();
    m.add_static(1, ip("198.51.100.5"), MAC_S).unwrap();
    m.apply(learned(1, "198.51.100.5", MAC_A), 0);
    assert_eq!(m.snapshot().lookup(1, ip("198.51.100.5")), Some(MAC_S));
    assert_eq!(m.stats().ignored_static, 1);
    assert!(m.due_requests(10_000 * SEC).is_empty());
    assert_eq!(
        m.state(1, ip("198.51.100.5")),
        Some((NeighState::Permanent, Some(MAC_S)))
    );
    // A static entry replaces a learned one.
    m.apply(learned(1, "198.51.100.6", MAC_A), 0);
    m.add_static(1, ip("198.51.100.6"), MAC_S).unwrap();
    assert_eq!(m.snapshot().lookup(1, ip("198.51.100.6")), Some(MAC_S));
    assert!(m.remove_static(1, ip("198.51.100.6")));
    assert!(!m.remove_static(1, ip("198.51.100.6")));
    assert_eq!(m.snapshot().lookup(1, ip("198.51.100.6")), None);

    assert_eq!(
        m.add_static(1, ip("192.0.2.9"), MAC_S),
        Err(NeighError::NotOnLink {
            port: 1,
            ip: ip("192.0.2.9")
        })
    );
    assert_eq!(
        m.add_static(1, ip("198.51.100.9"), [0; 6]),
        Err(NeighError::InvalidMac { mac: [0; 6] })
    );
}

#[test]
fn snapshot_rebuilt_only_on_visible_change() {
    let mut m = manager();
    let t0 = m.snapshot();
    assert!(Arc::ptr_eq(&t0, &m.snapshot()));
    m.apply(learned(1, "198.51.100.1", MAC_A), 0);
    let t1 = m.snapshot();
    assert!(!Arc::ptr_eq(&t0, &t1));
    // Same MAC again: only the timer is refreshed.
    m.apply(learned(1, "198.51.100.1", MAC_A), 5 * SEC);
    assert!(Arc::ptr_eq(&t1, &m.snapshot()));
    // A miss (incomplete entry) is invisible to workers.
    m.apply(
        NeighEvent::Miss {
            port: 1,
            ip: ip("198.51.100.2"),
        },
        5 * SEC,
    );
    assert!(Arc::ptr_eq(&t1, &m.snapshot()));
    // The MAC changed.
    m.apply(learned(1, "198.51.100.1", MAC_B), 6 * SEC);
    let t2 = m.snapshot();
    assert!(!Arc::ptr_eq(&t1, &t2));
    assert_eq!(t2.lookup(1, ip("198.51.100.1")), Some(MAC_B));
    assert_eq!(
        t1.lookup(1, ip("198.51.100.1")),
        Some(MAC_A),
        "old snapshot unchanged"
    );
    assert_eq!(m.stats().changed, 1);
}

#[test]
fn miss_retries_once_per_second_then_fails_then_forgets() {
    let mut m = manager();
    let gw = ip("192.0.2.254");
    let miss = NeighEvent::Miss { port: 0, ip: gw };
    m.apply(miss, 100 * SEC);
    m.apply(miss, 100 * SEC); // a second worker's miss: no second resolution
    assert_eq!(m.due_requests(100 * SEC), vec![(0, gw)]);
    assert_eq!(m.due_requests(100 * SEC + SEC / 2), vec![]);
    m.apply(miss, 100 * SEC + SEC / 2);
    assert_eq!(m.due_requests(101 * SEC - 1), vec![]);
    assert_eq!(m.due_requests(101 * SEC), vec![(0, gw)]);
    assert_eq!(m.due_requests(102 * SEC), vec![(0, gw)]);
    assert_eq!(m.state(0, gw), Some((NeighState::Incomplete, None)));
    assert_eq!(m.snapshot().resolve(0, gw), Resolution::Unknown);
    // Third request unanswered for a retry interval: failed.
    assert_eq!(m.due_requests(103 * SEC), vec![]);
    assert_eq!(m.state(0, gw), Some((NeighState::Failed, None)));
    assert_eq!(m.snapshot().resolve(0, gw), Resolution::Failed);
    assert_eq!(m.stats().requests, 3);
    assert_eq!(m.stats().failed, 1);
    // Misses during the hold time start nothing.
    m.apply(miss, 110 * SEC);
    assert_eq!(m.due_requests(110 * SEC), vec![]);
    // Hold over: forgotten, and the next miss resolves again.
    assert_eq!(m.due_requests(123 * SEC), vec![]);
    assert_eq!(m.state(0, gw), None);
    assert_eq!(m.snapshot().resolve(0, gw), Resolution::Unknown);
    m.apply(miss, 124 * SEC);
    assert_eq!(m.due_requests(124 * SEC), vec![(0, gw)]);
    assert_eq!(m.stats().misses, 2);
}

#[test]
fn reply_resolves_incomplete_and_failed() {
    let mut m = manager();
    let rs = ip("198.51.100.7");
    m.apply(NeighEvent::Miss { port: 1, ip: rs }, 0);
    assert_eq!(m.due_requests(0), vec![(1, rs)]);
    m.apply(learned(1, "198.51.100.7", MAC_A), SEC / 10);
    assert_eq!(m.snapshot().lookup(1, rs), Some(MAC_A));
    assert_eq!(
        m.due_requests(5 * SEC),
        vec![],
        "no more requests once resolved"
    );

    let other = ip("198.51.100.8");
    m.apply(NeighEvent::Miss { port: 1, ip: other }, 0);
    for t in 0..=3 {
        m.due_requests(t * SEC);
    }
    assert_eq!(m.snapshot().resolve(1, other), Resolution::Failed);
    m.apply(learned(1, "198.51.100.8", MAC_B), 4 * SEC);
    assert_eq!(m.snapshot().resolve(1, other), Resolution::Mac(MAC_B));
}

#[test]
fn reachable_turns_stale_is_probed_and_fails_without_answer() {
    let mut m = manager();
    let rs = ip("198.51.100.7");
    m.apply(learned(1, "198.51.100.7", MAC_A), 0);
    let t = m.snapshot();
    assert_eq!(m.due_requests(300 * SEC - 1), vec![]);
    // Reachable time over: stale, still used, probed at once.
    assert_eq!(m.due_requests(300 * SEC), vec![(1, rs)]);
    assert_eq!(m.state(1, rs), Some((NeighState::Stale, Some(MAC_A))));
    assert!(Arc::ptr_eq(&t, &m.snapshot()), "stale is still usable");
    // Answer to the probe: reachable again for 300 s.
    m.apply(learned(1, "198.51.100.7", MAC_A), 300 * SEC);
    assert_eq!(m.state(1, rs), Some((NeighState::Reachable, Some(MAC_A))));
    assert_eq!(m.due_requests(600 * SEC), vec![(1, rs)]);
    assert_eq!(m.due_requests(601 * SEC), vec![(1, rs)]);
    assert_eq!(m.due_requests(602 * SEC), vec![(1, rs)]);
    assert_eq!(m.due_requests(603 * SEC), vec![]);
    assert_eq!(m.snapshot().resolve(1, rs), Resolution::Failed);
}

#[test]
fn miss_for_foreign_or_known_address_is_ignored() {
    let mut m = manager();
    m.apply(
        NeighEvent::Miss {
            port: 0,
            ip: ip("8.8.8.8"),
        },
        0,
    );
    m.apply(learned(1, "198.51.100.1", MAC_A), 0);
    m.apply(
        NeighEvent::Miss {
            port: 1,
            ip: ip("198.51.100.1"),
        },
        0,
    );
    assert_eq!(m.due_requests(0), vec![]);
    assert_eq!(m.stats().ignored_foreign, 1);
    assert_eq!(m.stats().misses, 0);
}

#[test]
fn table_bound_is_enforced() {
    let mut m = manager(); // max_entries 8
    for i in 1..=10u8 {
        m.apply(learned(1, &format!("198.51.100.{i}"), MAC_A), 0);
    }
    m.apply(
        NeighEvent::Miss {
            port: 1,
            ip: ip("198.51.100.50"),
        },
        0,
    );
    assert_eq!(m.len(), 8);
    assert_eq!(m.stats().ignored_full, 3);
    assert_eq!(
        m.add_static(1, ip("198.51.100.60"), MAC_S),
        Err(NeighError::TableFull)
    );
    assert_eq!(m.snapshot().len(), 8);
}

#[test]
fn set_routes_forgets_entries_no_longer_on_link() {
    let mut m = manager();
    m.apply(learned(1, "198.51.100.1", MAC_A), 0);
    m.apply(learned(0, "192.0.2.9", MAC_B), 0);
    m.add_static(2, ip("203.0.113.5"), MAC_S).unwrap();
    let t0 = m.snapshot();
    let only_port1 = RouteTableBuilder::new()
        .connected(1, ip("198.51.100.254"), 24, 1500)
        .build()
        .unwrap();
    m.set_routes(Arc::new(only_port1));
    let t1 = m.snapshot();
    assert!(!Arc::ptr_eq(&t0, &t1));
    assert_eq!(t1.lookup(1, ip("198.51.100.1")), Some(MAC_A));
    assert_eq!(t1.lookup(0, ip("192.0.2.9")), None);
    assert_eq!(t1.lookup(2, ip("203.0.113.5")), None);
    assert_eq!(m.len(), 1);
}

#[test]
fn events_over_bounded_channel() {
    let (tx, rx) = event_channel(2);
    let mut m = manager();
    assert!(tx.try_send(learned(1, "198.51.100.1", MAC_A)).is_ok());
    assert!(tx
        .try_send(NeighEvent::Miss {
            port: 0,
            ip: ip("192.0.2.254")
        })
        .is_ok());
    assert!(
        tx.try_send(learned(1, "198.51.100.2", MAC_B)).is_err(),
        "full"
    );
    assert_eq!(m.drain(&rx, 0), 2);
    assert_eq!(m.drain(&rx, 0), 0);
    assert_eq!(m.snapshot().lookup(1, ip("198.51.100.1")), Some(MAC_A));
    assert_eq!(m.due_requests(0), vec![(0, ip("192.0.2.254"))]);
}

#[test]
fn neigh_table_many_entries() {
    // Enough entries to force collisions; every one found, absent keys not.
    let mut m = NeighManager::new(
        NeighConfig {
            max_entries: 4096,
            ..NeighConfig::default()
        },
        Arc::new(
            RouteTableBuilder::new()
                .connected(0, ip("10.0.0.1"), 16, 1500)
                .connected(1, ip("10.1.0.1"), 16, 1500)
                .build()
                .unwrap(),
        ),
    );
    for i in 2..1000u32 {
        let mac = [2, 0, 0, 0, (i >> 8) as u8, i as u8];
        m.apply(
            NeighEvent::Learned {
                port: 0,
                ip: Ipv4Addr::from(0x0a00_0000 + i),
                mac,
            },
            0,
        );
        m.apply(
            NeighEvent::Learned {
                port: 1,
                ip: Ipv4Addr::from(0x0a01_0000 + i),
                mac: [4, 0, 0, 0, (i >> 8) as u8, i as u8],
            },
            0,
        );
    }
    let t = m.snapshot();
    assert_eq!(t.len(), 1996);
    for i in 2..1000u32 {
        assert_eq!(
            t.lookup(0, Ipv4Addr::from(0x0a00_0000 + i)),
            Some([2, 0, 0, 0, (i >> 8) as u8, i as u8])
        );
        assert_eq!(
            t.lookup(1, Ipv4Addr::from(0x0a01_0000 + i)),
            Some([4, 0, 0, 0, (i >> 8) as u8, i as u8])
        );
        assert_eq!(t.lookup(1, Ipv4Addr::from(0x0a00_0000 + i)), None);
    }
    assert_eq!(t.lookup(0, Ipv4Addr::from(0x0a00_0000 + 1000)), None);
    assert!(NeighTable::default().is_empty());
    assert_eq!(NeighTable::default().lookup(0, ip("10.0.0.2")), None);
}

// ---------------------------------------------------------------- pending queue

fn resolved(entries: &[(u16, &str, [u8; 6])]) -> Arc<NeighTable> {
    let mut m = manager();
    for &(port, a, mac) in entries {
        m.add_static(port, ip(a), mac).unwrap();
    }
    m.snapshot()
}

#[test]
fn pending_bounds_per_hop_and_total() {
    let mut q: PendingQueue<Vec<u8>> = PendingQueue::new(2, 3, 3 * SEC);
    let a = ip("198.51.100.1");
    let b = ip("198.51.100.2");
    assert_eq!(q.push(1, a, vec![1], 0), Ok(Queued::NewHop));
    assert_eq!(q.push(1, a, vec![2], 0), Ok(Queued::Appended));
    assert_eq!(q.push(1, a, vec![3], 0), Ok(Queued::Appended));
    assert_eq!(q.push(1, a, vec![4], 0), Err(vec![4]), "hop full");
    assert_eq!(
        q.push(0, a, vec![5], 0),
        Ok(Queued::NewHop),
        "other port, other hop"
    );
    assert_eq!(q.push(1, b, vec![6], 0), Err(vec![6]), "no free hop");
    assert_eq!((q.len(), q.hops()), (4, 2));
}

#[test]
fn pending_release_order_and_slot_reuse() {
    let mut q: PendingQueue<Vec<u8>> = PendingQueue::new(4, 4, 3 * SEC);
    let a = ip("198.51.100.1");
    let b = ip("198.51.100.2");
    let c = ip("192.0.2.254");
    q.push(1, a, vec![0xa1], 0).unwrap();
    q.push(1, b, vec![0xb1], 0).unwrap();
    q.push(0, c, vec![0xc1], 0).unwrap();
    q.push(1, a, vec![0xa2], 0).unwrap();
    q.push(1, b, vec![0xb2], 0).unwrap();
    q.push(1, a, vec![0xa3], 0).unwrap();

    // Nothing resolved yet.
    let empty = resolved(&[]);
    assert_eq!(q.take_resolved(&empty).count(), 0);
    assert_eq!(q.len(), 6);

    let t = resolved(&[(1, "198.51.100.1", MAC_A), (0, "192.0.2.254", MAC_S)]);
    let out: Vec<_> = q.take_resolved(&t).collect();
    assert_eq!(
        out,
        vec![
            (1, vec![0xa1], MAC_A),
            (1, vec![0xa2], MAC_A),
            (1, vec![0xa3], MAC_A),
            (0, vec![0xc1], MAC_S),
        ]
    );
    assert_eq!((q.len(), q.hops()), (2, 1));
    // Freed slots are reused; b keeps its order.
    assert_eq!(q.push(1, a, vec![0xa4], 0), Ok(Queued::NewHop));
    let t = resolved(&[(1, "198.51.100.2", MAC_B)]);
    let out: Vec<_> = q.take_resolved(&t).collect();
    assert_eq!(out, vec![(1, vec![0xb1], MAC_B), (1, vec![0xb2], MAC_B)]);
    assert_eq!((q.len(), q.hops()), (1, 1));
}

#[test]
fn pending_partial_take_keeps_the_rest() {
    let mut q: PendingQueue<Vec<u8>> = PendingQueue::new(2, 4, 3 * SEC);
    let a = ip("198.51.100.1");
    for i in 1..=3u8 {
        q.push(1, a, vec![i], 0).unwrap();
    }
    let t = resolved(&[(1, "198.51.100.1", MAC_A)]);
    assert_eq!(q.take_resolved(&t).next(), Some((1, vec![1], MAC_A)));
    assert_eq!(q.len(), 2);
    let rest: Vec<_> = q.take_resolved(&t).map(|(_, p, _)| p).collect();
    assert_eq!(rest, vec![vec![2], vec![3]]);
    assert!(q.is_empty());
    assert_eq!(q.hops(), 0);
}

#[test]
fn pending_expire_drains_old_hops_only() {
    let mut q: PendingQueue<Vec<u8>> = PendingQueue::new(4, 4, 3 * SEC);
    let a = ip("198.51.100.1");
    let b = ip("198.51.100.2");
    q.push(1, a, vec![1], 10 * SEC).unwrap();
    q.push(1, b, vec![2], 11 * SEC).unwrap();
    q.push(1, a, vec![3], 12 * SEC).unwrap();
    assert_eq!(q.expire(13 * SEC - 1).count(), 0);
    // The hop's clock starts with its first packet.
    assert_eq!(
        q.expire(13 * SEC).collect::<Vec<_>>(),
        vec![vec![1], vec![3]]
    );
    assert_eq!((q.len(), q.hops()), (1, 1));
    assert_eq!(q.expire(14 * SEC).collect::<Vec<_>>(), vec![vec![2]]);
    assert!(q.is_empty());
}

#[test]
fn pending_zero_capacity_refuses() {
    let mut q: PendingQueue<u32> = PendingQueue::new(0, 4, SEC);
    assert_eq!(q.push(0, ip("192.0.2.2"), 7, 0), Err(7));
    let mut q: PendingQueue<u32> = PendingQueue::new(4, 0, SEC);
    assert_eq!(q.push(0, ip("192.0.2.2"), 7, 0), Err(7));
}

// ---------------------------------------------------------------- token bucket

#[test]
fn token_bucket_exact_counts() {
    // 10/s, burst 5, nanosecond clock starting at an arbitrary time.
    let mut b = TokenBucket::new(10, 5);
    let t0 = 1_000 * SEC;
    let allowed = (0..20).filter(|_| b.allow(t0)).count();
    assert_eq!(allowed, 5, "burst");
    // One token per 100 ms.
    assert!(!b.allow(t0 + 99_999_999));
    assert!(b.allow(t0 + 100_000_000));
    assert!(!b.allow(t0 + 100_000_000));
    // Over 1 s, 1000 calls evenly spaced: exactly 10 allowed.
    let start = t0 + 100_000_000;
    let n = (1..=1000u64)
        .filter(|i| b.allow(start + i * 1_000_000))
        .count();
    assert_eq!(n, 10);
    // A long pause refills only to the burst.
    let later = start + 3600 * SEC;
    assert_eq!((0..100).filter(|_| b.allow(later)).count(), 5);
    assert_eq!(b.tokens(), 0);
}

#[test]
fn token_bucket_clock_backwards_and_tsc() {
    let mut b = TokenBucket::new(1, 1);
    assert!(b.allow(5 * SEC));
    assert!(!b.allow(SEC), "going back adds nothing");
    assert!(!b.allow(6 * SEC - 1));
    assert!(b.allow(6 * SEC));
    // A 2.5 GHz TSC: 1000/s means one token per 2.5M cycles.
    let mut b = TokenBucket::with_clock_hz(1000, 1, 2_500_000_000);
    assert!(b.allow(0));
    assert!(!b.allow(2_499_999));
    assert!(b.allow(2_500_000));
    // rate 0: only the burst, ever.
    let mut b = TokenBucket::new(0, 2);
    assert_eq!((0..10u64).filter(|&i| b.allow(i * 100 * SEC)).count(), 2);
}

// ---------------------------------------------------------------- LPM property

/// A random valid configuration: connected nets, static routes via gateways inside them.
#[derive(Debug, Clone)]
struct Config {
    connected: Vec<(u16, u32, u8, u16)>,
    routes: Vec<(u32, u8, u32)>,
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len)
    }
}

fn config() -> impl Strategy<Value = Config> {
    // A few /8s so that random routes and probes overlap often.
    let addr = (
        prop::sample::select(vec![10u32, 172, 192, 198]),
        any::<u32>(),
    )
        .prop_map(|(top, low)| (top << 24) | (low & 0x00ff_ffff));
    let conn = prop::collection::vec((0u16..4, addr.clone(), 8u8..=30, 576u16..9001), 1..6);
    let route = prop::collection::vec(
        (addr, 0u8..=32, any::<prop::sample::Index>(), any::<u32>()),
        0..40,
    );
    (conn, route).prop_map(|(conn, route)| {
        let mut connected: Vec<(u16, u32, u8, u16)> = Vec::new();
        for (port, a, len, mtu) in conn {
            let net = a & mask(len);
            // Keep configurations the builder accepts: unique nets and addresses.
            if connected
                .iter()
                .any(|c| (c.1 & mask(c.2) == net && c.2 == len) || c.1 == a)
            {
                continue;
            }
            connected.push((port, a, len, mtu));
        }
        let mut routes: Vec<(u32, u8, u32)> = Vec::new();
        for (a, len, which, host) in route {
            let prefix = a & mask(len);
            let c = connected[which.index(connected.len())];
            let via = (c.1 & mask(c.2)) | (host & !mask(c.2));
            let taken = |p: u32, l: u8| {
                connected.iter().any(|c| c.1 & mask(c.2) == p && c.2 == l)
                    || routes.iter().any(|r| r.0 == p && r.1 == l)
            };
            if via == c.1 || connected.iter().any(|c| c.1 == via) || taken(prefix, len) {
                continue;
            }
            routes.push((prefix, len, via));
        }
        Config { connected, routes }
    })
}

/// Linear longest match over the configuration, with the gateway's link found the same way.
fn naive(cfg: &Config, dst: u32) -> Option<RouteResult> {
    let conn_match = |a: u32| {
        cfg.connected
            .iter()
            .filter(|c| a & mask(c.2) == c.1 & mask(c.2))
            .max_by_key(|c| c.2)
            .copied()
    };
    let best_conn = conn_match(dst);
    let best_route = cfg
        .routes
        .iter()
        .filter(|r| dst & mask(r.1) == r.0)
        .max_by_key(|r| r.1);
    let conn_len = best_conn.map(|c| i16::from(c.2));
    let route_len = best_route.map(|r| i16::from(r.1));
    if conn_len.unwrap_or(-1) > route_len.unwrap_or(-1) {
        let c = best_conn?;
        return Some(RouteResult {
            port: c.0,
            next_hop: Ipv4Addr::from(dst),
            src: Ipv4Addr::from(c.1),
            mtu: c.3,
        });
    }
    let r = best_route?;
    let c = conn_match(r.2).expect("gateway on link");
    Some(RouteResult {
        port: c.0,
        next_hop: Ipv4Addr::from(r.2),
        src: Ipv4Addr::from(c.1),
        mtu: c.3,
    })
}

proptest! {
    #[test]
    fn lpm_equals_naive_longest_match(cfg in config(), probes in prop::collection::vec(any::<u32>(), 64)) {
        let mut b = RouteTableBuilder::new();
        for &(port, a, len, mtu) in &cfg.connected {
            b = b.connected(port, Ipv4Addr::from(a), len, mtu);
        }
        for &(p, len, via) in &cfg.routes {
            b = b.route(Ipv4Addr::from(p), len, Ipv4Addr::from(via));
        }
        let t = b.build().expect("valid config");
        // Random addresses, plus every prefix's first and last address and their neighbours.
        let mut dsts: Vec<u32> = probes;
        let edges = cfg.connected.iter().map(|c| (c.1 & mask(c.2), c.2))
            .chain(cfg.routes.iter().map(|r| (r.0, r.1)));
        for (p, len) in edges {
            let last = p | !mask(len);
            dsts.extend([p, p.wrapping_sub(1), last, last.wrapping_add(1), p | (!mask(len) >> 1)]);
        }
        for d in dsts {
            prop_assert_eq!(t.lookup(Ipv4Addr::from(d)), naive(&cfg, d), "dst {}", Ipv4Addr::from(d));
        }
        for c in &cfg.connected {
            prop_assert_eq!(t.is_local(Ipv4Addr::from(c.1)), Some(c.0));
        }
    }
}
