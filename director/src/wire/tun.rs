//! VS/TUN ("Tunnel"): IP-in-IP encapsulation as ip_vs_tunnel_xmit() builds it.
//!
//! Outer header: IHL 5, protocol 4, source = the director's address toward the real server,
//! destination = the real server, TTL = the inner TTL after the forwarding decrement, TOS =
//! the inner TOS with ECN encapsulated per RFC 6040 (`INET_ECN_encapsulate(tos, tos)` in
//! `ip_vs_prepare_tunneled_skb`: DSCP and ECN copied, CE sent as ECT(0)), DF copied from the
//! inner header (IPVS's default `pmtu_disc=1`), checksum filled. The
//! identification is the caller's `ident` (a per-worker counter is enough: it only matters if
//! the outer packet is fragmented, i.e. DF clear; Linux uses a hashed per-destination counter).
//! The inner packet is only touched by the TTL decrement (with its checksum patched).

use std::net::Ipv4Addr;

use super::ethernet;
use super::ipv4::{self, proto};
use super::parse::PacketMeta;
use super::DropReason;

/// Bytes the caller prepends (`rte_pktmbuf_prepend`) before calling [`encap`].
pub const OUTER_HEADER_LEN: usize = ipv4::MIN_HEADER_LEN;

/// Outer TOS for an inner TOS (`INET_ECN_encapsulate(tos, tos)`): CE becomes ECT(0).
#[inline]
pub fn outer_tos(inner_tos: u8) -> u8 {
    if inner_tos & ipv4::ECN_MASK == ipv4::ECN_CE {
        (inner_tos & !ipv4::ECN_MASK) | ipv4::ECN_ECT0
    } else {
        inner_tos
    }
}

/// Encapsulates in place. `frame` is the whole new frame: [`OUTER_HEADER_LEN`] bytes of
/// headroom (any content) followed by the original frame, which `meta` describes (offsets
/// relative to the original frame). The L2 header (14 or 18 bytes, tag kept) moves to the
/// front and the outer IPv4 header is written behind it; the caller then sets the MACs for
/// the next hop. Fails, writing nothing, on TTL <= 1 ([`DropReason::TtlExceeded`]), an inner
/// packet too long to carry ([`DropReason::PacketTooBig`]), or a frame that is not IPv4.
pub fn encap(
    frame: &mut [u8],
    meta: &PacketMeta,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
) -> Result<(), DropReason> {
    let done = match meta.l3_offset {
        // The L2 header's length as a constant, so that moving it is a few plain moves.
        14 => encap_in_place::<{ ethernet::HEADER_LEN }>(frame, meta, src, dst, ident),
        18 => encap_in_place::<{ ethernet::VLAN_HEADER_LEN }>(frame, meta, src, dst, ident),
        _ => false,
    };
    if done {
        return Ok(());
    }
    encap_checked(frame, meta, src, dst, ident)
}

/// The common case, trusting `meta`'s offsets after one length check (the packet it
/// describes is all there behind the headroom): an IPv4 packet with TTL > 1 behind an
/// `L2_LEN`-byte Ethernet header. Returns false, having written nothing, otherwise.
#[inline(always)]
fn encap_in_place<const L2_LEN: usize>(
    frame: &mut [u8],
    meta: &PacketMeta,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
) -> bool {
    if !meta.is_ipv4() {
        return false;
    }
    let Some(packet) = frame.get_mut(..OUTER_HEADER_LEN + meta.frame_end()) else {
        return false;
    };
    let (head, inner) = packet.split_at_mut(OUTER_HEADER_LEN);
    let Some((l2, inner)) = inner.split_first_chunk_mut::<L2_LEN>() else {
        return false;
    };
    let Some(inner) = inner.first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>() else {
        return false;
    };
    let mut inner = ipv4::Packet::new_unchecked(inner);
    let ttl = inner.ttl();
    if ttl <= 1 {
        return false;
    }
    // New layout: L2 header, outer header, inner packet: the front `L2_LEN + 20` bytes are
    // built aside (nothing written if that fails), then stored over headroom and old L2.
    let mut front = [0u8; OUTER_HEADER_LEN + ethernet::VLAN_HEADER_LEN];
    let front = &mut front[..OUTER_HEADER_LEN + L2_LEN];
    front[..L2_LEN].copy_from_slice(l2);
    let outer = ipv4::Repr {
        src,
        dst,
        protocol: proto::IPIP,
        ttl: ttl - 1,
        tos: outer_tos(inner.tos()),
        ident,
        dont_frag: inner.dont_frag(),
        payload_len: inner.total_len(),
    };
    if outer.emit(&mut front[L2_LEN..]).is_err() {
        return false; // PacketTooBig
    }
    if inner.decrement_ttl().is_err() {
        return false; // not reached: TTL > 1
    }
    let (new_head, new_l2) = front.split_at(OUTER_HEADER_LEN);
    head.copy_from_slice(new_head);
    l2.copy_from_slice(new_l2);
    true
}

/// Everything [`encap_in_place`] leaves: re-checks the inner packet, refuses with the
/// reason.
#[inline(never)]
fn encap_checked(
    frame: &mut [u8],
    meta: &PacketMeta,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
) -> Result<(), DropReason> {
    let l2_len = usize::from(meta.l3_offset);
    let inner_start = OUTER_HEADER_LEN + l2_len;
    let inner_l3 = frame
        .get_mut(inner_start..)
        .ok_or(DropReason::TruncatedL2)?;
    let mut inner = ipv4::Packet::new_checked(inner_l3)?;
    if inner.ttl() <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    let payload_len = inner.total_len();
    if usize::from(payload_len) + OUTER_HEADER_LEN > usize::from(u16::MAX) {
        return Err(DropReason::PacketTooBig);
    }
    let ttl = inner.decrement_ttl()?;
    let outer = ipv4::Repr {
        src,
        dst,
        protocol: proto::IPIP,
        ttl,
        tos: outer_tos(inner.tos()),
        ident,
        dont_frag: inner.dont_frag(),
        payload_len,
    };
    frame.copy_within(OUTER_HEADER_LEN..inner_start, 0);
    outer.emit(&mut frame[l2_len..inner_start])
}

/// What the tunnel's MTU allows for an inner packet (`__ip_vs_get_out_rt` /
/// `ensure_mtu_is_adequate` in ip_vs_xmit.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunMtu {
    /// Fits: encapsulate and send.
    Ok,
    /// Too big with DF set: drop, and send the client ICMP fragmentation needed with `mtu`
    /// (not done for a packet that is itself an ICMP error).
    NeedFrag {
        /// The tunnel MTU to report (egress MTU - 20).
        mtu: u16,
    },
    /// Too big, DF clear: the outer packet must be fragmented.
    Fragment,
    /// Tunnel MTU below 68: drop ([`DropReason::TunnelMtu`]).
    TooSmall,
}

/// Checks an inner packet of IP total length `inner_len` against `egress_mtu`: tunnel
/// MTU = egress MTU - 20, below 68 always a drop.
#[inline]
pub fn mtu_check(inner_len: u16, egress_mtu: u16, df: bool) -> TunMtu {
    let mtu = egress_mtu.saturating_sub(OUTER_HEADER_LEN as u16);
    if mtu < ipv4::MIN_MTU {
        TunMtu::TooSmall
    } else if inner_len <= mtu {
        TunMtu::Ok
    } else if df {
        TunMtu::NeedFrag { mtu }
    } else {
        TunMtu::Fragment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecn_encapsulation() {
        assert_eq!(outer_tos(0x00), 0x00);
        assert_eq!(outer_tos(0x01), 0x01); // ECT(1)
        assert_eq!(outer_tos(0x02), 0x02); // ECT(0)
        assert_eq!(outer_tos(0x03), 0x02); // CE -> ECT(0)
        assert_eq!(outer_tos(0xb8), 0xb8); // EF, not ECT
        assert_eq!(outer_tos(0xbb), 0xba);
    }

    #[test]
    fn mtu_rules() {
        assert_eq!(mtu_check(1480, 1500, true), TunMtu::Ok);
        assert_eq!(mtu_check(1481, 1500, true), TunMtu::NeedFrag { mtu: 1480 });
        assert_eq!(mtu_check(1481, 1500, false), TunMtu::Fragment);
        assert_eq!(mtu_check(68, 88, true), TunMtu::Ok);
        assert_eq!(mtu_check(40, 87, false), TunMtu::TooSmall);
        assert_eq!(mtu_check(40, 0, false), TunMtu::TooSmall);
    }

    #[test]
    fn in_place_path_equals_the_checked_path_byte_for_byte() {
        use crate::wire::parse_frame;
        let (src, dst) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 10));
        let mut in_place = 0;
        for seed in 0..3_000u64 {
            let inner = crate::wire::test_frames::random_frame(seed);
            let meta = parse_frame(&inner).expect("random frame parses");
            let mut frame = vec![0x5a; OUTER_HEADER_LEN];
            frame.extend_from_slice(&inner);
            let ident = seed as u16;
            let mut expected = frame.clone();
            let want = encap_checked(&mut expected, &meta, src, dst, ident);
            let mut got = frame.clone();
            assert_eq!(encap(&mut got, &meta, src, dst, ident), want, "seed {seed}");
            assert_eq!(got, expected, "seed {seed}");
            in_place += usize::from(match meta.l3_offset {
                14 => encap_in_place::<14>(&mut frame, &meta, src, dst, ident),
                _ => encap_in_place::<18>(&mut frame, &meta, src, dst, ident),
            });
        }
        assert!(in_place > 1_000, "in place only {in_place} times");
    }
}
