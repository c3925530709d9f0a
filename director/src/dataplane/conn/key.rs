//! Connection keys: the address type (IPv4, IPv6 later) and the flow tuple as seen on the wire.
//!
//! A [`FlowKey`] is a packet's `(protocol, source, source port, destination, destination port)`.
//! An inbound packet's key is the connection's *inbound key* `(proto, client, vip)`; a NAT reply's
//! key is the connection's *reply key* `(proto, real server, client)`. Both resolve to the same
//! table entry.

use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::wire::nat::NatDeltas;

/// An address type the connection table can key on: 4 bytes for IPv4, 16 for IPv6.
///
/// The table is generic over it so that an IPv4 entry stays compact (no 16-byte addresses).
pub trait ConnAddr: Copy + Eq + Debug + Send + Sync + 'static {
    /// The all-zero address (vacant slab entries, template client ports).
    const ZERO: Self;
    /// Address length in bits (32 or 128).
    const BITS: u8;
    /// This address with all but the first `prefix` bits cleared (ipvsadm `-M`).
    /// A prefix of `BITS` or more keeps the address unchanged.
    fn masked(self, prefix: u8) -> Self;
    /// The address a firewall-mark template uses in place of the virtual address
    /// (the kernel puts `htonl(fwmark)` in the first 32 bits).
    fn from_fwmark(mark: u32) -> Self;
    /// As a std address (listings).
    fn to_ip(self) -> IpAddr;
    /// Hashes a flow over this address type with the table's random `seed`.
    /// `rest` carries the ports, the protocol and the template bit.
    fn hash_flow(src: Self, dst: Self, rest: u64, seed: &[u64; 4]) -> u64;
    /// The checksum terms of a NAT connection to virtual `vaddr:vport` on real server
    /// `daddr:dport` ([`NatDeltas::ZERO`] where the data path computes them per packet).
    fn nat_deltas(vaddr: Self, vport: u16, daddr: Self, dport: u16) -> NatDeltas;
}

/// 64x64 -> 128-bit multiply folded back to 64 bits (foldhash/wyhash's mixing step).
#[inline(always)]
pub(crate) fn folded_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

impl ConnAddr for Ipv4Addr {
    const ZERO: Self = Ipv4Addr::UNSPECIFIED;
    const BITS: u8 = 32;

    fn masked(self, prefix: u8) -> Self {
        if prefix >= 32 {
            return self;
        }
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ipv4Addr::from(u32::from(self) & mask)
    }

    fn from_fwmark(mark: u32) -> Self {
        Ipv4Addr::from(mark)
    }

    fn to_ip(self) -> IpAddr {
        IpAddr::V4(self)
    }

    #[inline(always)]
    fn hash_flow(src: Self, dst: Self, rest: u64, seed: &[u64; 4]) -> u64 {
        // The frame's 8 address bytes as one word, as the fast path parses them (no byte swap).
        let addrs = crate::wire::plain::addr_pair(src, dst);
        // A second round: one folded multiply leaves the low bits (hashbrown's bucket index)
        // poorly mixed when both operands' low words are nearly constant.
        folded_mul(folded_mul(addrs ^ seed[0], rest ^ seed[1]), seed[2])
    }

    fn nat_deltas(vaddr: Self, vport: u16, daddr: Self, dport: u16) -> NatDeltas {
        NatDeltas::new(vaddr, vport, daddr, dport)
    }
}

impl ConnAddr for Ipv6Addr {
    const ZERO: Self = Ipv6Addr::UNSPECIFIED;
    const BITS: u8 = 128;

    fn masked(self, prefix: u8) -> Self {
        if prefix >= 128 {
            return self;
        }
        let mask = if prefix == 0 {
            0
        } else {
            u128::MAX << (128 - prefix)
        };
        Ipv6Addr::from(u128::from(self) & mask)
    }

    fn from_fwmark(mark: u32) -> Self {
        Ipv6Addr::from(u128::from(mark) << 96)
    }

    fn to_ip(self) -> IpAddr {
        IpAddr::V6(self)
    }

    #[inline(always)]
    fn hash_flow(src: Self, dst: Self, rest: u64, seed: &[u64; 4]) -> u64 {
        let s = u128::from(src);
        let d = u128::from(dst);
        let hs = folded_mul((s as u64) ^ seed[0], ((s >> 64) as u64) ^ seed[1]);
        let hd = folded_mul((d as u64) ^ seed[2], ((d >> 64) as u64) ^ seed[3]);
        folded_mul(folded_mul(hs ^ rest, hd ^ seed[0]), seed[2])
    }

    fn nat_deltas(_: Self, _: u16, _: Self, _: u16) -> NatDeltas {
        NatDeltas::ZERO
    }
}

/// A packet's flow tuple as seen on the wire: protocol number, source, destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey<A: ConnAddr> {
    /// IP protocol number (6 TCP, 17 UDP; 0 for firewall-mark templates).
    pub proto: u8,
    /// Source address.
    pub saddr: A,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub daddr: A,
    /// Destination port.
    pub dport: u16,
}

impl<A: ConnAddr> FlowKey<A> {
    /// A key from a packet's fields.
    pub fn new(proto: u8, saddr: A, sport: u16, daddr: A, dport: u16) -> Self {
        FlowKey {
            proto,
            saddr,
            sport,
            daddr,
            dport,
        }
    }

    /// Hash of this key as an inbound key (`template` distinguishes persistence templates
    /// from connections).
    #[inline(always)]
    pub(crate) fn hash(&self, template: bool, seed: &[u64; 4]) -> u64 {
        self.hash_with(u64::from(template) << 8, seed)
    }

    /// Hash of this key as a NAT reply key: the same as the tuple's (non-template) inbound
    /// hash. Both kinds share one index, so a packet's tuple finds its connection in one
    /// probe run whichever direction the packet goes (`ConnTable::lookup_packet`, as
    /// ip_vs_in and ip_vs_out look up one table); the entry compared tells the direction.
    #[inline(always)]
    pub(crate) fn hash_reply(&self, seed: &[u64; 4]) -> u64 {
        self.hash(false, seed)
    }

    #[inline(always)]
    fn hash_with(&self, kind: u64, seed: &[u64; 4]) -> u64 {
        let rest = (u64::from(self.sport) << 32)
            | (u64::from(self.dport) << 16)
            | kind
            | u64::from(self.proto);
        A::hash_flow(self.saddr, self.daddr, rest, seed)
    }
}

/// Four random 64-bit words from the process's std `RandomState` (a fresh key per table), so
/// that clients cannot aim for one hash chain.
pub(crate) fn random_seed() -> [u64; 4] {
    let state = std::collections::hash_map::RandomState::new();
    let mut seed = [0u64; 4];
    for (i, word) in seed.iter_mut().enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        // Never all-zero words: keep the multiply from collapsing.
        *word = h.finish() | 1;
    }
    seed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_mask_clears_host_bits() {
        let a = Ipv4Addr::new(192, 0, 2, 77);
        assert_eq!(a.masked(24), Ipv4Addr::new(192, 0, 2, 0));
        assert_eq!(a.masked(32), a);
        assert_eq!(a.masked(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(a.masked(17), Ipv4Addr::new(192, 0, 0, 0));
    }

    #[test]
    fn v6_mask_and_fwmark() {
        let a: Ipv6Addr = "2001:db8::1234".parse().unwrap();
        assert_eq!(a.masked(64), "2001:db8::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            Ipv6Addr::from_fwmark(7),
            "0:7::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(Ipv4Addr::from_fwmark(7), Ipv4Addr::new(0, 0, 0, 7));
    }

    #[test]
    fn hash_depends_on_every_field() {
        let seed = random_seed();
        let k = FlowKey::new(
            6,
            Ipv4Addr::new(198, 51, 100, 1),
            40000,
            Ipv4Addr::new(203, 0, 113, 1),
            80,
        );
        let h = k.hash(false, &seed);
        let variants = [
            FlowKey { proto: 17, ..k },
            FlowKey {
                saddr: Ipv4Addr::new(198, 51, 100, 2),
                ..k
            },
            FlowKey { sport: 40001, ..k },
            FlowKey {
                daddr: Ipv4Addr::new(203, 0, 113, 2),
                ..k
            },
            FlowKey { dport: 81, ..k },
        ];
        for v in variants {
            assert_ne!(v.hash(false, &seed), h, "{v:?}");
        }
        assert_ne!(k.hash(true, &seed), h);
        // One probe run serves a tuple in either direction.
        assert_eq!(k.hash_reply(&seed), h);
        assert_eq!(k.hash(false, &seed), h);
    }
}

#[cfg(test)]
mod spread_tests {
    use super::*;

    /// Distinct low-bit buckets for 100K keys varying in client address and port, as both
    /// the inbound and the reply key shape.
    #[test]
    fn hash_spreads_low_bits() {
        let seed = random_seed();
        let m = 1u64 << 18;
        for reply in [false, true] {
            let mut seen = vec![false; m as usize];
            let mut distinct = 0;
            for i in 0..100_000u32 {
                let client = Ipv4Addr::from(0x0A00_0000 + i / 50);
                let cport = 1024 + (i % 50) as u16;
                let other = Ipv4Addr::new(203, 0, 113, 1);
                let k = if reply {
                    FlowKey::new(6, other, 8080, client, cport)
                } else {
                    FlowKey::new(6, client, cport, other, 80)
                };
                let b = (k.hash(false, &seed) & (m - 1)) as usize;
                if !seen[b] {
                    seen[b] = true;
                    distinct += 1;
                }
            }
            // Uniform hashing gives ~83.2K distinct buckets.
            assert!(
                distinct > 82_000,
                "reply={reply}: {distinct} distinct buckets"
            );
        }
    }
}
