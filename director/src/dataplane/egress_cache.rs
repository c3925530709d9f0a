//! A worker's cache of resolved egresses toward real servers: route and next-hop MAC by
//! destination address, so an established packet skips the route lookup and the neighbour
//! table (DPVS and VPP cache the adjacency the same way).
//!
//! An entry is valid only for the route table and the neighbour table it was resolved in
//! (both carry a process-unique identity, and neither changes once built): a new neighbour
//! snapshot or route table makes every entry miss, and the next packet resolves afresh. Only
//! resolved next hops are cached; unknown and failed ones always take the full path (ARP
//! queueing, counted drops).

use crate::dataplane::route::RouteResult;
use std::net::Ipv4Addr;

/// Slots (direct-mapped by destination address): a director's real servers are few.
const SLOTS: usize = 256;

#[derive(Clone, Copy)]
struct Slot {
    daddr: u32,
    routes: u64,
    neigh: u64,
    route: RouteResult,
    /// The Ethernet header's address part: the next hop's MAC, then the egress port's own
    /// (the frame's new source), looked up once with the route.
    l2: [u8; 12],
}

/// A cached egress: the route, the next hop's MAC and the egress port's own MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Egress {
    pub(crate) route: RouteResult,
    /// Destination then source MAC, as they sit at the front of the frame: written with
    /// one copy.
    pub(crate) l2: [u8; 12],
}

impl Egress {
    /// The egress over `route` to the next hop at `mac`, from the port whose MAC is
    /// `src_mac`.
    pub(crate) fn new(route: RouteResult, mac: [u8; 6], src_mac: [u8; 6]) -> Self {
        let mut l2 = [0; 12];
        l2[..6].copy_from_slice(&mac);
        l2[6..].copy_from_slice(&src_mac);
        Egress { route, l2 }
    }

    /// The next hop's MAC.
    pub(crate) fn mac(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.l2[..6]);
        m
    }

    /// The egress port's MAC.
    pub(crate) fn src_mac(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.l2[6..]);
        m
    }
}

const EMPTY: Slot = Slot {
    daddr: 0,
    // Table identities start at 1: an empty slot never matches.
    routes: 0,
    neigh: 0,
    route: RouteResult {
        port: 0,
        next_hop: Ipv4Addr::UNSPECIFIED,
        src: Ipv4Addr::UNSPECIFIED,
        mtu: 0,
    },
    l2: [0; 12],
};

/// Destination address -> (route, next-hop MAC), for one route table and neighbour table.
pub(crate) struct EgressCache {
    slots: Box<[Slot; SLOTS]>,
}

impl EgressCache {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        EgressCache {
            slots: Box::new([EMPTY; SLOTS]),
        }
    }

    /// The slot of an address given as its bytes in network order read native-endian (as
    /// the frame holds them: no byte swap).
    #[inline(always)]
    fn slot(daddr: u32) -> usize {
        (daddr.wrapping_mul(0x9e37_79b1) >> 24) as usize
    }

    /// The egress of `daddr` if resolved in tables `routes` and `neigh` (their identities;
    /// the route table's also stands for the ports, whose MACs come with it).
    #[inline(always)]
    pub(crate) fn get(&self, daddr: Ipv4Addr, routes: u64, neigh: u64) -> Option<Egress> {
        let a = u32::from_ne_bytes(daddr.octets());
        let s = &self.slots[Self::slot(a)];
        (s.daddr == a && s.routes == routes && s.neigh == neigh).then_some(Egress {
            route: s.route,
            l2: s.l2,
        })
    }

    /// Remembers `daddr`'s egress as resolved in tables `routes` and `neigh`.
    #[inline]
    pub(crate) fn put(&mut self, daddr: Ipv4Addr, routes: u64, neigh: u64, e: Egress) {
        let a = u32::from_ne_bytes(daddr.octets());
        self.slots[Self::slot(a)] = Slot {
            daddr: a,
            routes,
            neigh,
            route: e.route,
            l2: e.l2,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(port: u16) -> RouteResult {
        RouteResult {
            port,
            next_hop: Ipv4Addr::new(198, 51, 100, 254),
            src: Ipv4Addr::new(198, 51, 100, 1),
            mtu: 1500,
        }
    }

    fn egress(port: u16, mac: [u8; 6]) -> Egress {
        Egress::new(route(port), mac, [2, 0, 0, 0, 0, port as u8])
    }

    #[test]
    fn hits_only_for_the_tables_it_was_filled_from() {
        let mut c = EgressCache::new();
        let d = Ipv4Addr::new(198, 51, 100, 10);
        assert!(c.get(d, 1, 1).is_none());
        c.put(d, 1, 1, egress(1, [2, 0, 0, 0, 1, 10]));
        assert_eq!(c.get(d, 1, 1), Some(egress(1, [2, 0, 0, 0, 1, 10])));
        assert!(c.get(d, 1, 2).is_none(), "new neighbour table");
        assert!(c.get(d, 2, 1).is_none(), "new route table");
        assert!(c.get(Ipv4Addr::new(198, 51, 100, 11), 1, 1).is_none());
    }

    #[test]
    fn a_colliding_address_replaces_the_slot() {
        let mut c = EgressCache::new();
        let a = Ipv4Addr::new(198, 51, 100, 10);
        // Find another address with the same slot.
        let b = (1..u32::MAX)
            .map(|i| Ipv4Addr::from(u32::from(a).wrapping_add(i)))
            .find(|b| {
                EgressCache::slot(u32::from_ne_bytes(b.octets()))
                    == EgressCache::slot(u32::from_ne_bytes(a.octets()))
            })
            .unwrap();
        c.put(a, 1, 1, egress(1, [1; 6]));
        c.put(b, 1, 1, egress(0, [2; 6]));
        assert!(c.get(a, 1, 1).is_none());
        assert_eq!(c.get(b, 1, 1), Some(egress(0, [2; 6])));
    }
}
