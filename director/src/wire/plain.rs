//! The established-flow fast path's look at a frame: an untagged Ethernet frame carrying an
//! option-less, unfragmented IPv4 TCP or UDP packet with TTL > 1 whose headers check, the
//! shape of nearly every packet of an established flow.
//!
//! [`parse_plain`] accepts a subset of what [`parse_frame`](super::parse_frame) accepts and
//! reads the same field values at fixed offsets; anything else, or anything doubtful
//! (802.1Q tags, IP options, fragments, TTL <= 1, other protocols, bad lengths or checksum),
//! gets `None` and goes to the full parser, which decides and counts. [`dnat`] and
//! [`forward_dr`] are the VS/NAT and VS/DR rewrites of such a frame: the same bytes as
//! [`nat::dnat`] and [`dr::forward`](super::dr::forward) produce ([`snat`]: [`nat::snat`]).

use std::net::{IpAddr, Ipv4Addr};

use super::nat::NatDeltas;
use super::parse::{PacketKind, PacketMeta};
use super::{checksum, ethernet, ipv4, nat, tcp, udp};

/// Offset of the IPv4 header in a plain frame.
pub const L3: usize = ethernet::HEADER_LEN;
/// Offset of the TCP/UDP header in a plain frame.
pub const L4: usize = L3 + ipv4::MIN_HEADER_LEN;

/// The fields of a plain frame the fast path needs, packed in two words (it is built in
/// registers and stored whole into the burst's staging slot: a struct of narrow fields stored
/// one by one and copied on as words stalled store-to-load forwarding, 14 % of the 1 K
/// profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain {
    /// Source then destination address, the 8 bytes as the frame holds them (network order)
    /// read as one native-endian word: no byte swap to read it, to compare it with stored
    /// addresses or to hash it (`ConnAddr::hash_flow` packs a key's addresses the same way).
    addrs: u64,
    /// Source port (bits 48..64), destination port (32..48), protocol (8..16), TCP flags
    /// (0..8).
    rest: u64,
}

/// Two IPv4 addresses as one word: their 8 bytes in network order (source first) read
/// native-endian, as [`parse_plain`] reads them off a frame.
#[inline(always)]
pub fn addr_pair(src: Ipv4Addr, dst: Ipv4Addr) -> u64 {
    let (s, d) = (src.octets(), dst.octets());
    u64::from_ne_bytes([s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3]])
}

impl Plain {
    /// A blank value to overwrite.
    pub const BLANK: Plain = Plain { addrs: 0, rest: 0 };

    /// The fields of a plain frame.
    #[inline(always)]
    pub fn new(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        sport: u16,
        dport: u16,
        proto: u8,
        tcp_flags: u8,
    ) -> Plain {
        Plain {
            addrs: addr_pair(src, dst),
            rest: u64::from(sport) << 48
                | u64::from(dport) << 32
                | u64::from(proto) << 8
                | u64::from(tcp_flags),
        }
    }

    /// IPv4 source.
    #[inline(always)]
    pub fn src(&self) -> Ipv4Addr {
        let b = self.addrs.to_ne_bytes();
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// IPv4 destination.
    #[inline(always)]
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.addrs.to_ne_bytes();
        Ipv4Addr::new(b[4], b[5], b[6], b[7])
    }

    /// TCP/UDP source port.
    #[inline(always)]
    pub fn sport(&self) -> u16 {
        (self.rest >> 48) as u16
    }

    /// TCP/UDP destination port.
    #[inline(always)]
    pub fn dport(&self) -> u16 {
        (self.rest >> 32) as u16
    }

    /// 6 (TCP) or 17 (UDP).
    #[inline(always)]
    pub fn proto(&self) -> u8 {
        (self.rest >> 8) as u8
    }

    /// TCP flags (0 for UDP).
    #[inline(always)]
    pub fn tcp_flags(&self) -> u8 {
        self.rest as u8
    }

    /// Whether this is UDP.
    #[inline(always)]
    pub fn is_udp(&self) -> bool {
        self.proto() == ipv4::proto::UDP
    }
}

/// First byte of an option-less IPv4 header.
const VERSION_4_NO_OPTIONS: u8 = 0x45;

/// Offset of the ethertype; the IPv4 header's version/IHL byte follows.
const ETHERTYPE: usize = 12;
/// The shortest plain UDP frame: Ethernet, IPv4 and the UDP header.
const UDP_PREFIX: usize = L4 + udp::HEADER_LEN;
/// The shortest plain TCP frame: Ethernet, IPv4 and a TCP header without options.
const TCP_PREFIX: usize = L4 + tcp::MIN_HEADER_LEN;

/// The fields of `frame` if it is a plain TCP/UDP-over-IPv4 frame (see the module docs).
///
/// A frame of at least `TCP_PREFIX` (54) bytes (every frame off an Ethernet wire: its minimum is
/// 60) is read through that fixed-size prefix, so no read needs a bounds check of its own;
/// a shorter one can only be plain UDP and takes `parse_short`.
#[inline(always)]
pub fn parse_plain(frame: &[u8]) -> Option<Plain> {
    match frame.first_chunk::<TCP_PREFIX>() {
        Some(h) => parse_prefix(h, frame.len()),
        None => parse_short(frame),
    }
}

/// [`parse_plain`] of a frame shorter than [`TCP_PREFIX`]: the same checks on the shorter
/// prefix (out of line, to keep the usual case short).
#[cold]
#[inline(never)]
fn parse_short(frame: &[u8]) -> Option<Plain> {
    parse_prefix(frame.first_chunk::<UDP_PREFIX>()?, frame.len())
}

/// [`parse_plain`] of a frame of `len` bytes that starts with `h` (`N` is [`TCP_PREFIX`] or
/// [`UDP_PREFIX`]).
///
/// The IPv4 total length needs no test of its own against 20: each protocol's length check
/// (`20 + x <= total`, `x >= 8`) implies it. Each test is its own branch: tests on values
/// already in registers, joined with `||`, would become a chain of flag ors before one branch,
/// longer than the branches.
#[inline(always)]
fn parse_prefix<const N: usize>(h: &[u8; N], len: usize) -> Option<Plain> {
    if be16(h, ETHERTYPE) != ethernet::ethertype::IPV4 {
        return None;
    }
    if h.get(L3) != Some(&VERSION_4_NO_OPTIONS) {
        return None;
    }
    // No fragment: flags and offset (bytes 6 and 7, the low half of this little-endian word)
    // zero but for DF (bit 6 of byte 6). Tested as 32 bits: 16 would be widened first.
    if u32::from_le_bytes(bytes(h, L3 + 6)) & 0xffbf != 0 {
        return None;
    }
    let total = usize::from(be16(h, L3 + 2));
    if L3 + total > len || !checksum::verify_ipv4_header(&bytes(h, L3)) {
        return None;
    }
    // Plain::new's packing, from whole words: the two addresses are one native u64 of the
    // frame's bytes, the two ports one big-endian u32; each branch adds its own protocol
    // number, a constant.
    let addrs = u64::from_ne_bytes(bytes(h, L3 + 12));
    let ports = u64::from(u32::from_be_bytes(bytes(h, L4))) << 32;
    // TTL (low byte) and protocol (high byte) as one number: TCP, or UDP, with a TTL left to
    // decrement (2 ..= 255) is one range of it.
    let ttl_proto = u32::from(u16::from_le_bytes(bytes(h, L3 + 8)));
    let is = |proto: u8| {
        let lowest = u32::from(u16::from_le_bytes([2, proto]));
        ttl_proto.wrapping_sub(lowest) <= 0xff - 2
    };
    if is(ipv4::proto::TCP) {
        // Statically None for the UDP prefix: a frame that short holds no TCP header.
        let t = h.first_chunk::<TCP_PREFIX>()?;
        let header_len = usize::from(t[L4 + 12] >> 4) * 4;
        if header_len < tcp::MIN_HEADER_LEN || ipv4::MIN_HEADER_LEN + header_len > total {
            return None;
        }
        let rest = ports | u64::from(ipv4::proto::TCP) << 8 | u64::from(t[L4 + 13]);
        Some(Plain { addrs, rest })
    } else if is(ipv4::proto::UDP) {
        let udp_len = usize::from(be16(h, L4 + 4));
        if udp_len < udp::HEADER_LEN || ipv4::MIN_HEADER_LEN + udp_len > total {
            return None;
        }
        let rest = ports | u64::from(ipv4::proto::UDP) << 8;
        Some(Plain { addrs, rest })
    } else {
        None
    }
}

/// The `M` bytes at `at` of `h`, copied whole (one load once inlined). Every caller passes
/// constants with `at + M <= UDP_PREFIX <= N`, so the fallback is never taken and compiles
/// away.
#[inline(always)]
fn bytes<const N: usize, const M: usize>(h: &[u8; N], at: usize) -> [u8; M] {
    h.get(at..)
        .and_then(|rest| rest.first_chunk::<M>())
        .copied()
        .unwrap_or([0; M])
}

/// Big-endian `u16` at a constant offset of `h`.
#[inline(always)]
fn be16<const N: usize>(h: &[u8; N], at: usize) -> u16 {
    u16::from_be_bytes(bytes(h, at))
}

/// The [`PacketMeta`] [`parse_frame`](super::parse_frame) gives for a plain frame `p` was
/// parsed from (field for field the same), without parsing it again: what the full path
/// works on when the fast path passes a plain frame on (a SYN, a miss).
#[inline(always)]
pub fn meta(frame: &[u8], p: &Plain) -> PacketMeta {
    let ip = frame.get(L3..L4).unwrap_or(&[0; ipv4::MIN_HEADER_LEN]);
    PacketMeta {
        kind: if p.is_udp() {
            PacketKind::Udp
        } else {
            PacketKind::Tcp
        },
        l2_len: L3 as u8,
        vlan_tci: None,
        ethertype: ethernet::ethertype::IPV4,
        l3_offset: L3 as u16,
        l4_offset: L4 as u16,
        ip_header_len: ipv4::MIN_HEADER_LEN as u8,
        total_len: u16::from_be_bytes([ip[2], ip[3]]),
        proto: p.proto(),
        src: IpAddr::V4(p.src()),
        dst: IpAddr::V4(p.dst()),
        src_port: p.sport(),
        dst_port: p.dport(),
        tcp_flags: p.tcp_flags(),
        icmp_type: 0,
        icmp_code: 0,
        arp_op: 0,
        // parse_plain takes no fragment.
        is_fragment: false,
        first_fragment: false,
        dont_fragment: ip[6] & 0x40 != 0,
        ttl: ip[8],
        tos: ip[1],
    }
}

/// Whether [`dnat`] can rewrite this plain frame: not a UDP datagram without checksum (that
/// one gets a full checksum computed, on the full path).
#[inline(always)]
pub fn dnat_ready(frame: &[u8], p: &Plain) -> bool {
    !p.is_udp() || frame.get(L4 + 6..L4 + 8).is_some_and(|c| c != [0, 0])
}

/// VS/NAT inbound rewrite of a plain frame `p` was parsed from: destination becomes
/// `daddr:dport`, TTL - 1, checksums patched with the connection's precomputed terms
/// (`deltas`, made from the frame's destination). False (nothing written) where the frame is
/// not [`dnat_ready`].
#[inline(always)]
pub fn dnat(frame: &mut [u8], p: &Plain, daddr: Ipv4Addr, dport: u16, deltas: &NatDeltas) -> bool {
    nat::dnat_at_with(frame, p.is_udp(), (L3, L4), daddr, dport, deltas)
}

/// VS/NAT outbound rewrite (a real server's reply) of a plain frame: source becomes
/// `saddr:sport`, TTL - 1, checksums patched with the connection's precomputed terms
/// (`deltas`, made with the frame's source as the real server). False (nothing written)
/// where the frame is not [`dnat_ready`] (the same condition).
#[inline(always)]
pub fn snat(frame: &mut [u8], p: &Plain, saddr: Ipv4Addr, sport: u16, deltas: &NatDeltas) -> bool {
    nat::snat_at_with(frame, p.is_udp(), (L3, L4), saddr, sport, deltas)
}

/// VS/DR of a plain frame: TTL - 1 and the header checksum patched (the MACs are the egress
/// stage's). False (nothing written) if the frame is too short for it.
#[inline(always)]
pub fn forward_dr(frame: &mut [u8]) -> bool {
    match frame.get_mut(L3..L4) {
        Some(ip) => ipv4::Packet::new_unchecked(ip).decrement_ttl().is_ok(),
        None => false,
    }
}

/// Writes the address part of a plain frame's Ethernet header (or of a tunnel packet made
/// from one, whose Ethernet header is untagged too): `l2` is the destination MAC, then the
/// source MAC, as they sit in the frame. False (nothing written) if the frame is shorter.
#[inline(always)]
pub fn set_macs(frame: &mut [u8], l2: &[u8; 12]) -> bool {
    match frame.get_mut(..12) {
        Some(h) => {
            h.copy_from_slice(l2);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse_frame, MacAddr};

    /// Every frame parse_plain accepts, parse_frame accepts with the same fields; and the
    /// plain rewrites give the full ones' bytes.
    #[test]
    fn agrees_with_the_full_parser_and_rewrites_on_random_frames() {
        let mut accepted = 0;
        for seed in 0..20_000u64 {
            let frame = crate::wire::test_frames::random_frame(seed);
            // Also damage some: every byte of the headers in turn, and truncations.
            let mut variants = vec![frame.clone()];
            let i = (seed as usize) % frame.len().min(60);
            let mut damaged = frame.clone();
            damaged[i] ^= 1 << (seed % 8);
            variants.push(damaged);
            variants.push(frame[..(seed as usize) % frame.len()].to_vec());
            for f in variants {
                let Some(p) = parse_plain(&f) else { continue };
                accepted += 1;
                let m = parse_frame(&f).expect("plain frames parse");
                assert_eq!(meta(&f, &p), m, "seed {seed}: meta");
                assert!(matches!(m.kind, PacketKind::Tcp | PacketKind::Udp));
                assert!(!m.is_fragment && m.vlan_tci.is_none() && m.ttl > 1);
                assert_eq!((m.l3_offset, m.l4_offset), (L3 as u16, L4 as u16));
                assert_eq!(
                    (m.src, m.dst, m.src_port, m.dst_port, m.proto, m.tcp_flags),
                    (
                        p.src().into(),
                        p.dst().into(),
                        p.sport(),
                        p.dport(),
                        p.proto(),
                        p.tcp_flags()
                    )
                );
                let (a, port) = (Ipv4Addr::from(seed as u32), seed as u16);
                let mut full = f.clone();
                let full_ok = nat::dnat(&mut full, &m, a.into(), port).is_ok();
                let mut fast = f.clone();
                if dnat_ready(&f, &p) {
                    let d = NatDeltas::new(p.dst(), p.dport(), a, port);
                    assert!(dnat(&mut fast, &p, a, port, &d), "seed {seed}");
                    assert!(full_ok);
                    assert_eq!(fast, full, "seed {seed}");
                    let mut full = f.clone();
                    nat::snat(&mut full, &m, a.into(), port).expect("snat");
                    let mut fast = f.clone();
                    let d = NatDeltas::new(a, port, p.src(), p.sport());
                    assert!(snat(&mut fast, &p, a, port, &d), "seed {seed}");
                    assert_eq!(fast, full, "seed {seed}");
                }
                let mut full = f.clone();
                crate::wire::dr::forward(&mut full, &m, MacAddr([0; 6]), MacAddr([0; 6]))
                    .expect("ttl > 1");
                full[..12].copy_from_slice(&f[..12]);
                let mut fast = f.clone();
                assert!(forward_dr(&mut fast));
                assert_eq!(fast, full, "seed {seed}");
            }
        }
        assert!(accepted > 800, "only {accepted} plain frames");
    }

    /// The straightforward reading of the rules, byte by byte (parse_plain as it was before
    /// the word-wise version), with the checksum verified by the plain RFC 1071 loop.
    fn reference_parse_plain(frame: &[u8]) -> Option<Plain> {
        let h = frame.get(..L4 + udp::HEADER_LEN)?;
        if h[12..14] != [0x08, 0x00] || h[L3] != 0x45 {
            return None;
        }
        let ip = &h[L3..L4];
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ip[6] & !0x40 != 0 || ip[7] != 0 || ip[8] <= 1 {
            return None;
        }
        let l4_len = total.checked_sub(ipv4::MIN_HEADER_LEN)?;
        if L3 + total > frame.len() || checksum::checksum(ip) != 0 {
            return None;
        }
        let tcp_flags = match ip[9] {
            ipv4::proto::TCP => {
                let t = frame.get(L4..L4 + tcp::MIN_HEADER_LEN)?;
                let header_len = usize::from(t[12] >> 4) * 4;
                if l4_len < tcp::MIN_HEADER_LEN
                    || header_len < tcp::MIN_HEADER_LEN
                    || header_len > l4_len
                {
                    return None;
                }
                t[13]
            }
            ipv4::proto::UDP => {
                let len = usize::from(u16::from_be_bytes([h[L4 + 4], h[L4 + 5]]));
                if !(udp::HEADER_LEN..=l4_len).contains(&len) {
                    return None;
                }
                0
            }
            _ => return None,
        };
        Some(Plain::new(
            Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            u16::from_be_bytes([h[L4], h[L4 + 1]]),
            u16::from_be_bytes([h[L4 + 2], h[L4 + 3]]),
            ip[9],
            tcp_flags,
        ))
    }

    /// `f` with its IPv4 header checksum made correct again (when it has a whole header).
    fn fix_checksum(mut f: Vec<u8>) -> Vec<u8> {
        if let Some(ip) = f.get_mut(L3..L4) {
            ip[10..12].copy_from_slice(&[0, 0]);
            let check = checksum::checksum(ip);
            ip[10..12].copy_from_slice(&check.to_be_bytes());
        }
        f
    }

    /// The same answer as the byte-by-byte reading, field for field, on random frames, every
    /// truncation of them, each header byte set to edge values (with the checksum fixed up,
    /// so the other checks are reached, and without), and the length fields at and around
    /// their limits.
    #[test]
    fn word_wise_parse_equals_the_byte_by_byte_one() {
        let mut checked = 0usize;
        let mut accepted = [0usize; 2];
        let mut check = |f: &[u8]| {
            let expected = reference_parse_plain(f);
            assert_eq!(parse_plain(f), expected, "frame {f:02x?}");
            checked += 1;
            if let Some(p) = expected {
                accepted[usize::from(p.is_udp())] += 1;
            }
        };
        for seed in 0..3_000u64 {
            let frame = crate::wire::test_frames::random_frame(seed);
            check(&frame);
            for len in 0..frame.len() {
                check(&frame[..len]);
            }
            for at in 0..frame.len().min(L4 + tcp::MIN_HEADER_LEN) {
                for v in [
                    0x00, 0x01, 0x02, 0x05, 0x06, 0x08, 0x11, 0x20, 0x40, 0x45, 0x4f, 0x50,
                ]
                .into_iter()
                .chain([0x5f, 0x60, 0x80, 0xbf, 0xf0, 0xfe, 0xff, seed as u8])
                {
                    let mut f = frame.clone();
                    f[at] = v;
                    check(&f);
                    check(&fix_checksum(f));
                }
            }
            // IPv4 total length and UDP length at and around each limit.
            let lens = |frame_len: usize| {
                let mut v = vec![0, 1, 7, 8, 9, 19, 20, 21, 27, 28, 29, 39, 40, 41, 0xffff];
                for d in 0..4 {
                    v.push(frame_len.saturating_sub(L3 + d));
                    v.push(frame_len.saturating_sub(L4 + d));
                    v.push(frame_len - L3 + d);
                }
                v
            };
            for total in lens(frame.len()) {
                let mut f = frame.clone();
                if let Some(b) = f.get_mut(L3 + 2..L3 + 4) {
                    b.copy_from_slice(&(total as u16).to_be_bytes());
                }
                let f = fix_checksum(f);
                check(&f);
                for udp_len in lens(frame.len()) {
                    let mut f = f.clone();
                    if let Some(b) = f.get_mut(L4 + 4..L4 + 6) {
                        b.copy_from_slice(&(udp_len as u16).to_be_bytes());
                    }
                    check(&f);
                }
                for data_offset in 0..16u8 {
                    let mut f = f.clone();
                    if let Some(b) = f.get_mut(L4 + 12) {
                        *b = data_offset << 4 | (seed as u8 & 0xf);
                    }
                    check(&f);
                }
            }
        }
        // Both protocols accepted often (the comparison is not all refusals).
        assert!(
            accepted.iter().all(|&n| n > 5_000),
            "{accepted:?} of {checked}"
        );
    }

    /// Every value of each pair of header bytes the fast checks read together (ethertype;
    /// flags and fragment offset; TTL and protocol; version/IHL and TOS) on accepted TCP and
    /// UDP frames, checksum fixed up: the same answer as the byte-by-byte reading.
    #[test]
    fn word_wise_checks_equal_the_byte_by_byte_ones_on_every_value_pair() {
        let plain: Vec<Vec<u8>> = (0..2_000u64)
            .map(crate::wire::test_frames::random_frame)
            .filter(|f| reference_parse_plain(f).is_some())
            .collect();
        let tcp = plain.iter().filter(|f| f[L3 + 9] == ipv4::proto::TCP);
        let udp = plain.iter().filter(|f| f[L3 + 9] == ipv4::proto::UDP);
        let frames: Vec<&Vec<u8>> = tcp.take(2).chain(udp.take(2)).collect();
        assert_eq!(frames.len(), 4);
        let mut accepted = 0;
        for frame in frames {
            for at in [12, L3, L3 + 6, L3 + 8] {
                for pair in 0..=u16::MAX {
                    let mut f = frame.clone();
                    f[at..at + 2].copy_from_slice(&pair.to_be_bytes());
                    let f = fix_checksum(f);
                    let expected = reference_parse_plain(&f);
                    accepted += usize::from(expected.is_some());
                    assert_eq!(parse_plain(&f), expected, "bytes {at}.. = {pair:#06x}");
                }
            }
        }
        // TOS free (4 * 256), DF or not (4 * 2), TTL 2..=255 (4 * 254), the original pair.
        assert_eq!(accepted, 4 * 256 + 4 * 2 + 4 * 254 + 4);
    }

    #[test]
    fn refuses_what_the_fast_path_must_not_take() {
        let base = crate::wire::test_frames::random_frame(1);
        let ok = (0..1000u64)
            .map(crate::wire::test_frames::random_frame)
            .find(|f| parse_plain(f).is_some())
            .unwrap_or(base);
        assert!(parse_plain(&ok).is_some());
        let mut ttl1 = ok.clone();
        ttl1[L3 + 8] = 1;
        assert!(parse_plain(&ttl1).is_none(), "TTL 1");
        let mut frag = ok.clone();
        frag[L3 + 6] |= 0x20;
        assert!(parse_plain(&frag).is_none(), "MF");
        let mut vlan = ok.clone();
        vlan[12..14].copy_from_slice(&[0x81, 0x00]);
        assert!(parse_plain(&vlan).is_none(), "802.1Q");
        let mut bad = ok.clone();
        bad[L3 + 10] ^= 0xff;
        assert!(parse_plain(&bad).is_none(), "IP checksum");
        let total = usize::from(u16::from_be_bytes([ok[L3 + 2], ok[L3 + 3]]));
        assert!(parse_plain(&ok[..L3 + total - 1]).is_none(), "truncated");
    }

    #[test]
    fn set_macs_writes_what_the_ethernet_rewrite_writes() {
        let (dst, src) = ([2, 0, 0, 0, 1, 10], [2, 0, 0, 0, 0, 1]);
        let mut l2 = [0; 12];
        l2[..6].copy_from_slice(&dst);
        l2[6..].copy_from_slice(&src);
        let mut checked = 0;
        for seed in 0..2000u64 {
            let frame = crate::wire::test_frames::random_frame(seed);
            if parse_plain(&frame).is_none() {
                continue;
            }
            checked += 1;
            let (mut a, mut b) = (frame.clone(), frame.clone());
            assert!(set_macs(&mut a, &l2));
            crate::wire::ethernet::set_macs(&mut b, MacAddr(src), MacAddr(dst)).unwrap();
            assert_eq!(a, b);
            assert_eq!(a[12..], frame[12..], "only the addresses change");
        }
        assert!(checked > 20, "only {checked} plain frames");
        let mut short = [7u8; 11];
        assert!(!set_macs(&mut short, &l2));
        assert_eq!(short, [7u8; 11], "nothing written");
    }
}
