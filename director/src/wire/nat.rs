//! VS/NAT ("Masq") rewrites of TCP/UDP packets, in place.
//!
//! [`dnat`] turns a client's packet to the virtual service into one for the real server
//! (destination port, then destination address); [`snat`] turns the real server's reply into
//! one from the virtual service. Both also forward: TTL - 1 (TTL <= 1 is refused with
//! [`DropReason::TtlExceeded`] and the frame left untouched, for the ICMP error to quote).
//!
//! Checksums as IPVS keeps them (ip_vs_proto_tcp.c / ip_vs_proto_udp.c): the IP and the
//! TCP/UDP checksums are patched incrementally (RFC 1624). A UDP checksum of 0 ("none") gets a
//! full checksum computed, and a UDP result of 0 is sent as 0xffff (RFC 768), except in a
//! first fragment, where the datagram is incomplete and 0 stays 0. Only the IP payload is
//! summed; Ethernet padding is left in place. On any error nothing has been written.

use std::net::{IpAddr, Ipv4Addr};

use super::bytes::{get_ne_u16, get_ne_u32, set_ne_u16};
use super::ipv4::{self, proto};
use super::parse::{ipv4_mut, PacketKind, PacketMeta};
use super::{checksum, tcp, udp, DropReason};

// [`rewrite`] finds the ports of TCP and UDP at the same offsets.
const _: () = assert!(
    tcp::field::SRC_PORT == udp::field::SRC_PORT && tcp::field::DST_PORT == udp::field::DST_PORT
);

#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
}

/// Where [`rewrite`] takes its checksum terms from.
#[derive(Clone, Copy)]
enum Terms {
    /// Computed from the fields it replaces.
    FromPacket,
    /// Given, folded to 16 bits (`update_folded`'s deltas): for the IPv4 header (TTL
    /// decrement included) and the TCP/UDP checksum.
    Given { ip: u16, l4: u16 },
}

/// The RFC 1624 checksum terms of one NAT connection's two rewrites, computed once when the
/// connection is created instead of per packet: the inbound one (virtual address and port
/// -> real server's) and the reply's (back), each for the IPv4 header (with the TTL
/// decrement) and for the TCP/UDP checksum, folded to 16 bits.
///
/// The rewrites give exactly the bytes of the per-packet computation (folding a term first
/// changes no result: a sum of terms is zero only when every term is, and a folded term is
/// zero only when it was), provided the packet carries the addresses and ports the terms
/// were made from, which a connection lookup guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatDeltas {
    ip_in: u16,
    l4_in: u16,
    ip_out: u16,
    l4_out: u16,
}

/// A sum of 16-bit terms folded to 16 bits with end-around carry (zero only if it was zero).
#[inline(always)]
fn fold_term(acc: u32) -> u16 {
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

impl NatDeltas {
    /// All zero (a connection that is not NAT).
    pub const ZERO: NatDeltas = NatDeltas {
        ip_in: 0,
        l4_in: 0,
        ip_out: 0,
        l4_out: 0,
    };

    /// The terms of a connection to virtual `vaddr:vport` NATed to `daddr:dport`.
    pub fn new(vaddr: Ipv4Addr, vport: u16, daddr: Ipv4Addr, dport: u16) -> Self {
        // The fields as `rewrite` loads them: in the CPU's byte order.
        let addr = |a: Ipv4Addr| u32::from_ne_bytes(a.octets());
        let port = |p: u16| u16::from_ne_bytes(p.to_be_bytes());
        let addr_in = checksum::delta32(addr(vaddr), addr(daddr));
        let port_in = checksum::delta16(port(vport), port(dport));
        let addr_out = checksum::delta32(addr(daddr), addr(vaddr));
        let port_out = checksum::delta16(port(dport), port(vport));
        NatDeltas {
            ip_in: fold_term(checksum::TTL_DECREMENT_NE + addr_in),
            l4_in: fold_term(addr_in + port_in),
            ip_out: fold_term(checksum::TTL_DECREMENT_NE + addr_out),
            l4_out: fold_term(addr_out + port_out),
        }
    }
}

/// Inbound VS/NAT: destination becomes `new_daddr:new_dport` (the real server).
#[inline]
pub fn dnat(
    frame: &mut [u8],
    meta: &PacketMeta,
    new_daddr: IpAddr,
    new_dport: u16,
) -> Result<(), DropReason> {
    translate(frame, meta, Side::Dst, new_daddr, new_dport)
}

/// Outbound VS/NAT (replies): source becomes `new_saddr:new_sport` (the virtual service).
#[inline]
pub fn snat(
    frame: &mut [u8],
    meta: &PacketMeta,
    new_saddr: IpAddr,
    new_sport: u16,
) -> Result<(), DropReason> {
    translate(frame, meta, Side::Src, new_saddr, new_sport)
}

/// The IPv4 address of `addr`, or [`DropReason::AddressFamily`].
#[inline]
pub(crate) fn v4(addr: IpAddr) -> Result<Ipv4Addr, DropReason> {
    match addr {
        IpAddr::V4(a) => Ok(a),
        IpAddr::V6(_) => Err(DropReason::AddressFamily),
    }
}

#[inline(always)]
fn translate(
    frame: &mut [u8],
    meta: &PacketMeta,
    side: Side,
    new_addr: IpAddr,
    new_port: u16,
) -> Result<(), DropReason> {
    let new_addr = v4(new_addr)?;
    let at = (
        usize::from(meta.l3_offset),
        usize::from(meta.l4_offset),
        meta.frame_end(),
    );
    let done = match meta.kind {
        PacketKind::Tcp => rewrite_l4(
            frame,
            false,
            at,
            side,
            new_addr,
            new_port,
            Terms::FromPacket,
        ),
        PacketKind::Udp => rewrite_l4(frame, true, at, side, new_addr, new_port, Terms::FromPacket),
        _ => false,
    };
    if done {
        return Ok(());
    }
    translate_checked(frame, meta, side, new_addr, new_port)
}

/// The common case in one pass, trusting `meta`'s offsets (bounds still checked, once): a
/// TCP segment or a UDP datagram with a checksum, TTL > 1. `L4_LEN` is the transport
/// header's length up to the end of its checksum field (TCP 18, UDP 8); both headers start
/// with the source and destination ports. The IP checksum takes the TTL and address changes,
/// the L4 checksum the port and address changes, each in one RFC 1624 update (the same
/// value as successive ones), computed on the fields as the CPU loads them (see
/// [`get_ne_u16`]). Returns false, having written nothing, for anything else:
/// [`translate_checked`] handles it (UDP without checksum, TTL <= 1, a frame shorter than
/// `meta` says, a meta that does not fit the frame).
#[inline(always)]
fn rewrite<const L4_LEN: usize>(
    frame: &mut [u8],
    (l3, l4, end): (usize, usize, usize),
    side: Side,
    new_addr: Ipv4Addr,
    new_port: u16,
    terms: Terms,
) -> bool {
    // The one length check: the packet `meta` describes is all there. The rest only keeps
    // the indexing in bounds whatever `meta` says.
    let Some(packet) = frame.get_mut(..end) else {
        return false;
    };
    let Some((head, tail)) = packet.split_at_mut_checked(l4) else {
        return false;
    };
    let Some(ip) = head
        .get_mut(l3..)
        .and_then(|l3| l3.first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>())
    else {
        return false;
    };
    let Some(l4) = tail.first_chunk_mut::<L4_LEN>() else {
        return false;
    };
    let is_udp = L4_LEN == udp::HEADER_LEN;
    let check_at = L4_LEN - 2;
    let (addr_at, port_at) = match side {
        Side::Src => (ipv4::field::SRC, tcp::field::SRC_PORT),
        Side::Dst => (ipv4::field::DST, tcp::field::DST_PORT),
    };
    let old_l4_check = get_ne_u16(l4, check_at);
    let ttl = ip[ipv4::field::TTL];
    if ttl <= 1 || (is_udp && old_l4_check == 0) {
        return false;
    }
    let new_addr = new_addr.octets();
    let new_port = new_port.to_be_bytes();
    let old_ip_check = get_ne_u16(ip, ipv4::field::CHECKSUM);
    let (ip_check, l4_check) = match terms {
        Terms::FromPacket => {
            let addr_delta =
                checksum::delta32(get_ne_u32(ip, addr_at), u32::from_ne_bytes(new_addr));
            let port_delta =
                checksum::delta16(get_ne_u16(l4, port_at), u16::from_ne_bytes(new_port));
            (
                checksum::update_sum(old_ip_check, checksum::TTL_DECREMENT_NE + addr_delta),
                checksum::update_sum(old_l4_check, port_delta + addr_delta),
            )
        }
        Terms::Given { ip, l4 } => (
            checksum::update_folded(old_ip_check, ip),
            checksum::update_folded(old_l4_check, l4),
        ),
    };
    let l4_check = if is_udp {
        udp_nonzero(l4_check)
    } else {
        l4_check
    };
    l4[port_at..port_at + 2].copy_from_slice(&new_port);
    set_ne_u16(l4, check_at, l4_check);
    ip[ipv4::field::TTL] = ttl - 1;
    ip[addr_at..addr_at + 4].copy_from_slice(&new_addr);
    set_ne_u16(ip, ipv4::field::CHECKSUM, ip_check);
    true
}

/// [`rewrite`] for a UDP datagram (`udp`) or a TCP segment.
#[inline(always)]
fn rewrite_l4(
    frame: &mut [u8],
    udp: bool,
    at: (usize, usize, usize),
    side: Side,
    new_addr: Ipv4Addr,
    new_port: u16,
    terms: Terms,
) -> bool {
    if udp {
        rewrite::<{ udp::HEADER_LEN }>(frame, at, side, new_addr, new_port, terms)
    } else {
        rewrite::<{ tcp::CHECKSUM_END }>(frame, at, side, new_addr, new_port, terms)
    }
}

/// Inbound VS/NAT of a TCP segment (`udp` false) or UDP datagram whose IPv4 header starts at
/// `l3` and transport header at `l4`, both already checked (the fast path's plain frames):
/// [`dnat`]'s bytes. False, with nothing written, for what [`dnat`] would take its checked
/// path for (TTL <= 1, a UDP datagram without checksum, headers not in `frame`).
#[inline(always)]
pub fn dnat_at(
    frame: &mut [u8],
    udp: bool,
    l3: usize,
    l4: usize,
    new_daddr: Ipv4Addr,
    new_dport: u16,
) -> bool {
    let at = (l3, l4, frame.len());
    rewrite_l4(
        frame,
        udp,
        at,
        Side::Dst,
        new_daddr,
        new_dport,
        Terms::FromPacket,
    )
}

/// [`dnat_at`] with the connection's precomputed checksum terms: the same bytes, for a
/// packet whose destination is the `vaddr:vport` the terms were made from.
#[inline(always)]
pub fn dnat_at_with(
    frame: &mut [u8],
    udp: bool,
    (l3, l4): (usize, usize),
    new_daddr: Ipv4Addr,
    new_dport: u16,
    deltas: &NatDeltas,
) -> bool {
    let at = (l3, l4, frame.len());
    let terms = Terms::Given {
        ip: deltas.ip_in,
        l4: deltas.l4_in,
    };
    rewrite_l4(frame, udp, at, Side::Dst, new_daddr, new_dport, terms)
}

/// [`snat_at`] with the connection's precomputed checksum terms: the same bytes, for a
/// reply whose source is the `daddr:dport` the terms were made from.
#[inline(always)]
pub fn snat_at_with(
    frame: &mut [u8],
    udp: bool,
    (l3, l4): (usize, usize),
    new_saddr: Ipv4Addr,
    new_sport: u16,
    deltas: &NatDeltas,
) -> bool {
    let at = (l3, l4, frame.len());
    let terms = Terms::Given {
        ip: deltas.ip_out,
        l4: deltas.l4_out,
    };
    rewrite_l4(frame, udp, at, Side::Src, new_saddr, new_sport, terms)
}

/// Outbound VS/NAT (a reply) at fixed offsets, as [`dnat_at`]: source becomes
/// `new_saddr:new_sport`, [`snat`]'s bytes.
#[inline(always)]
pub fn snat_at(
    frame: &mut [u8],
    udp: bool,
    l3: usize,
    l4: usize,
    new_saddr: Ipv4Addr,
    new_sport: u16,
) -> bool {
    let at = (l3, l4, frame.len());
    rewrite_l4(
        frame,
        udp,
        at,
        Side::Src,
        new_saddr,
        new_sport,
        Terms::FromPacket,
    )
}

/// Everything [`rewrite`] leaves: re-checks the IPv4 header and the L4 header in the frame
/// itself, refuses with the reason, computes a full UDP checksum where there was none.
#[inline(never)]
fn translate_checked(
    frame: &mut [u8],
    meta: &PacketMeta,
    side: Side,
    new_addr: Ipv4Addr,
    new_port: u16,
) -> Result<(), DropReason> {
    let mut ip = ipv4_mut(frame, meta)?;
    if ip.ttl() <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    if ip.frag_offset() != 0 {
        return Err(DropReason::Fragment);
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let old_addr = match side {
        Side::Src => src,
        Side::Dst => dst,
    };
    let fragment = ip.more_frags();
    let protocol = ip.protocol();
    let l4 = ip.payload_mut();
    match protocol {
        proto::TCP => {
            let mut tcp = tcp::Packet::new_checked(l4)?;
            let old_port = match side {
                Side::Src => tcp.src_port(),
                Side::Dst => tcp.dst_port(),
            };
            let check = checksum::update16(tcp.checksum(), old_port, new_port);
            let check = checksum::update32(check, old_addr.into(), new_addr.into());
            match side {
                Side::Src => tcp.set_src_port(new_port),
                Side::Dst => tcp.set_dst_port(new_port),
            }
            tcp.set_checksum(check);
        }
        proto::UDP => {
            let mut udp = if fragment {
                udp::Packet::new_checked_header(l4)?
            } else {
                udp::Packet::new_checked(l4)?
            };
            let old_port = match side {
                Side::Src => udp.src_port(),
                Side::Dst => udp.dst_port(),
            };
            match side {
                Side::Src => udp.set_src_port(new_port),
                Side::Dst => udp.set_dst_port(new_port),
            }
            let old_check = udp.checksum();
            if old_check != 0 {
                let check = checksum::update16(old_check, old_port, new_port);
                let check = checksum::update32(check, old_addr.into(), new_addr.into());
                udp.set_checksum(udp_nonzero(check));
            } else if !fragment {
                let (src, dst) = match side {
                    Side::Src => (new_addr, dst),
                    Side::Dst => (src, new_addr),
                };
                let check = udp_full_checksum(udp.datagram(), src, dst);
                udp.set_checksum(check);
            }
        }
        _ => return Err(DropReason::UnsupportedProtocol),
    }
    ip.decrement_ttl()?;
    match side {
        Side::Src => ip.update_src_addr(new_addr),
        Side::Dst => ip.update_dst_addr(new_addr),
    }
    Ok(())
}

/// RFC 768: a computed UDP checksum of 0 is transmitted as all ones.
#[inline]
pub(crate) fn udp_nonzero(check: u16) -> u16 {
    if check == 0 {
        0xffff
    } else {
        check
    }
}

/// Full UDP checksum of `datagram` (checksum field read as 0) between `src` and `dst`.
pub(crate) fn udp_full_checksum(datagram: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
    let len = datagram.len() as u16;
    let stored = datagram.get(6..8).map_or(0, checksum::sum);
    // Sum everything, then take the stored checksum field back out (one's complement).
    let partial = checksum::pseudo_header_v4(src, dst, proto::UDP, len)
        + checksum::sum(datagram)
        + (!stored & 0xffff);
    udp_nonzero(checksum::finish(partial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_frame;
    use crate::wire::test_frames::random_frame;

    /// Ethernet + IPv4 + UDP(40000 -> 53) "abcd", checksum filled in, TTL `ttl`.
    fn udp_frame(ttl: u8, with_checksum: bool) -> Vec<u8> {
        let mut f = vec![
            2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, // ethernet
            0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, ttl, 0x11, 0, 0, 203, 0, 113, 5, 192,
            0, 2, 1, // ipv4
            0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, b'a', b'b', b'c', b'd',
        ];
        let check = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&check.to_be_bytes());
        if with_checksum {
            let c = udp_full_checksum(
                &f[34..46],
                Ipv4Addr::new(203, 0, 113, 5),
                Ipv4Addr::new(192, 0, 2, 1),
            );
            f[40..42].copy_from_slice(&c.to_be_bytes());
        }
        f
    }

    fn udp_checksum_ok(frame: &[u8]) -> bool {
        let src = Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
        let dst = Ipv4Addr::new(frame[30], frame[31], frame[32], frame[33]);
        let len = frame.len() as u16 - 34;
        let partial = checksum::pseudo_header_v4(src, dst, 17, len) + checksum::sum(&frame[34..]);
        checksum::finish(partial) == 0
    }

    #[test]
    fn dnat_rewrites_and_keeps_checksums_valid() {
        let mut f = udp_frame(64, true);
        let meta = parse_frame(&f).expect("valid");
        let rs = Ipv4Addr::new(198, 51, 100, 10);
        dnat(&mut f, &meta, IpAddr::V4(rs), 5353).expect("nat");
        let m2 = parse_frame(&f).expect("still valid: IP checksum verifies");
        assert_eq!((m2.dst, m2.dst_port, m2.ttl), (IpAddr::V4(rs), 5353, 63));
        assert_eq!((m2.src, m2.src_port), (meta.src, meta.src_port));
        assert!(udp_checksum_ok(&f));
    }

    #[test]
    fn udp_zero_checksum_gets_a_full_one() {
        let mut f = udp_frame(64, false);
        let meta = parse_frame(&f).expect("valid");
        snat(&mut f, &meta, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 80)), 80).expect("nat");
        assert_ne!(f[40..42], [0, 0]);
        assert!(udp_checksum_ok(&f));
    }

    #[test]
    fn refusals_leave_the_frame_untouched() {
        let f = udp_frame(1, true);
        let meta = parse_frame(&f).expect("valid");
        let mut g = f.clone();
        let rs = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
        assert_eq!(dnat(&mut g, &meta, rs, 1), Err(DropReason::TtlExceeded));
        assert_eq!(g, f);
        let v6: IpAddr = "2001:db8::1".parse().expect("addr");
        assert_eq!(snat(&mut g, &meta, v6, 1), Err(DropReason::AddressFamily));
        let mut g = udp_frame(64, true);
        g[23] = 47; // GRE
        g[24..26].copy_from_slice(&[0, 0]);
        let check = checksum::checksum(&g[14..34]);
        g[24..26].copy_from_slice(&check.to_be_bytes());
        let meta = parse_frame(&g).expect("valid");
        let before = g.clone();
        assert_eq!(
            dnat(&mut g, &meta, rs, 1),
            Err(DropReason::UnsupportedProtocol)
        );
        assert_eq!(g, before);
    }

    #[test]
    fn one_pass_rewrite_equals_the_checked_path_byte_for_byte() {
        let mut fast = 0;
        for seed in 0..4_000u64 {
            let frame = random_frame(seed);
            let meta = parse_frame(&frame).expect("random frame parses");
            let addr = Ipv4Addr::from((seed as u32).wrapping_mul(0x0101_0101) ^ 0xc633_6400);
            let port = (seed as u16).wrapping_mul(7919);
            for side in [Side::Src, Side::Dst] {
                let mut expected = frame.clone();
                let want = translate_checked(&mut expected, &meta, side, addr, port);
                let mut got = frame.clone();
                let result = translate(&mut got, &meta, side, IpAddr::V4(addr), port);
                assert_eq!(result, want, "seed {seed}");
                assert_eq!(got, expected, "seed {seed}");
                let mut probe = frame.clone();
                let at = (
                    usize::from(meta.l3_offset),
                    usize::from(meta.l4_offset),
                    meta.frame_end(),
                );
                fast += usize::from(match meta.kind {
                    PacketKind::Tcp => {
                        rewrite::<18>(&mut probe, at, side, addr, port, Terms::FromPacket)
                    }
                    _ => rewrite::<8>(&mut probe, at, side, addr, port, Terms::FromPacket),
                });
            }
        }
        assert!(fast > 3_000, "the one-pass rewrite ran only {fast} times");
    }

    /// The precomputed terms give the per-packet computation's bytes, both ways, also for
    /// the edge values: all-zero and all-ones addresses and ports, checksum fields 0x0000
    /// and 0xffff.
    #[test]
    fn precomputed_terms_give_the_per_packet_bytes() {
        let edge_addrs = [Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(255, 255, 255, 255)];
        let mut compared = 0;
        for seed in 0..6_000u64 {
            let mut frame = random_frame(seed);
            let Ok(meta) = parse_frame(&frame) else {
                continue;
            };
            let (l3, l4) = (usize::from(meta.l3_offset), usize::from(meta.l4_offset));
            let udp = match meta.kind {
                PacketKind::Tcp => false,
                PacketKind::Udp => true,
                _ => continue,
            };
            let check_at = l4 + if udp { 6 } else { 16 };
            if seed % 5 == 1 && frame.len() > check_at + 1 {
                let v = if seed % 2 == 0 { [0, 0] } else { [0xff, 0xff] };
                frame[check_at..check_at + 2].copy_from_slice(&v);
                frame[l3 + 10..l3 + 12].copy_from_slice(&v);
            }
            let (IpAddr::V4(src), IpAddr::V4(dst)) = (meta.src, meta.dst) else {
                continue;
            };
            let addr = match seed % 7 {
                0 => edge_addrs[0],
                1 => edge_addrs[1],
                _ => Ipv4Addr::from((seed as u32).wrapping_mul(0x9e37_79b1)),
            };
            let port = match seed % 11 {
                0 => 0,
                1 => 0xffff,
                _ => (seed as u16).wrapping_mul(7919),
            };
            // Inbound: the packet's destination is the virtual side.
            let d = NatDeltas::new(dst, meta.dst_port, addr, port);
            let (mut want, mut got) = (frame.clone(), frame.clone());
            let ok = dnat_at(&mut want, udp, l3, l4, addr, port);
            assert_eq!(dnat_at_with(&mut got, udp, (l3, l4), addr, port, &d), ok);
            assert_eq!(got, want, "seed {seed}: dnat");
            // A reply: the packet's source is the real server, `addr:port` the virtual side.
            let d = NatDeltas::new(addr, port, src, meta.src_port);
            let (mut want, mut got) = (frame.clone(), frame.clone());
            let ok = snat_at(&mut want, udp, l3, l4, addr, port);
            assert_eq!(snat_at_with(&mut got, udp, (l3, l4), addr, port, &d), ok);
            assert_eq!(got, want, "seed {seed}: snat");
            compared += usize::from(ok);
        }
        assert!(compared > 2_000, "only {compared} rewrites compared");
    }

    #[test]
    fn refuses_a_frame_shorter_than_its_meta() {
        let f = udp_frame(64, true);
        let meta = parse_frame(&f).expect("valid");
        let rs = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
        let mut short = f[..f.len() - 1].to_vec();
        assert_eq!(dnat(&mut short, &meta, rs, 1), Err(DropReason::TruncatedL3));
        assert_eq!(short, f[..f.len() - 1]);
    }
}
