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
}
