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

use super::ipv4::proto;
use super::parse::{ipv4_mut, PacketMeta};
use super::{checksum, tcp, udp, DropReason};

#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
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

#[inline]
fn translate(
    frame: &mut [u8],
    meta: &PacketMeta,
    side: Side,
    new_addr: IpAddr,
    new_port: u16,
) -> Result<(), DropReason> {
    let new_addr = v4(new_addr)?;
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
}
