//! ICMP errors about VS/NAT connections (ip_vs_nat_icmp in ip_vs_core.c): find the flow the
//! quoted packet belongs to, and translate the error like the packets of that flow.
//!
//! An error reaching the director from the client side quotes a reply the director sent
//! (source = virtual service); [`dnat`] points it at the real server: outer destination, and
//! quoted source address and port. An error from the real server quotes a packet the director
//! forwarded (destination = real server); [`snat`] makes it come from the virtual service:
//! outer source, and quoted destination address and port. Checksums: the outer IP header is
//! patched (TTL - 1 and the address), the quoted IP header is recomputed, the quoted TCP/UDP
//! checksum is patched when the quote contains it (best effort, as Linux's NAT does; a quoted
//! UDP checksum of 0 stays 0), and the ICMP checksum, verified first, is recomputed. Errors
//! that are fragments are refused. On any error nothing has been written.

use std::net::{IpAddr, Ipv4Addr};

use super::bytes::{get_u16, set_u16};
use super::icmp::{self, msg_type};
use super::ipv4::{self, proto};
use super::nat::{udp_nonzero, v4};
use super::parse::{ipv4_mut, PacketMeta};
use super::{checksum, tcp, udp, DropReason};

/// The connection an ICMP error is about, as the quoted packet shows it (the packet the
/// error's receiver sent, so the flow appears reversed to the receiver's own direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EmbeddedFlow {
    /// ICMP type of the error.
    pub icmp_type: u8,
    /// IP protocol of the quoted packet (TCP or UDP).
    pub proto: u8,
    /// Quoted source address.
    pub src: IpAddr,
    /// Quoted source port.
    pub src_port: u16,
    /// Quoted destination address.
    pub dst: IpAddr,
    /// Quoted destination port.
    pub dst_port: u16,
}

/// Where the parts of a validated quote are, relative to the ICMP message.
#[derive(Clone, Copy)]
struct Quote {
    /// Offset of the quoted IP header (always the ICMP header length).
    ip: usize,
    /// Offset of the quoted TCP/UDP header.
    l4: usize,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
}

/// Validates an ICMP error message (IP payload) and its quote: an error type IPVS relates
/// to connections (dest unreachable, source quench, time exceeded), a quoted IPv4 header
/// with at least 8 bytes after it, not a non-first fragment, TCP or UDP.
fn quote_of(msg: &[u8]) -> Result<Quote, DropReason> {
    let header = icmp::Packet::new_checked(msg)?;
    if !matches!(
        header.msg_type(),
        msg_type::DEST_UNREACHABLE | msg_type::SOURCE_QUENCH | msg_type::TIME_EXCEEDED
    ) {
        return Err(DropReason::NotIcmpError);
    }
    let quoted = header.payload();
    if quoted.len() < ipv4::MIN_HEADER_LEN {
        return Err(DropReason::BadIcmpQuote);
    }
    // The quote is cut short by design: check its header fields, not its total length.
    let ip = ipv4::Packet::new_unchecked(quoted);
    let ihl = ip.header_len();
    if ip.version() != 4 || ihl < ipv4::MIN_HEADER_LEN || ihl + 8 > quoted.len() {
        return Err(DropReason::BadIcmpQuote);
    }
    if ip.frag_offset() != 0 {
        return Err(DropReason::Fragment);
    }
    if !matches!(ip.protocol(), proto::TCP | proto::UDP) {
        return Err(DropReason::UnsupportedProtocol);
    }
    Ok(Quote {
        ip: icmp::HEADER_LEN,
        l4: icmp::HEADER_LEN + ihl,
        proto: ip.protocol(),
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        src_port: get_u16(quoted, ihl),
        dst_port: get_u16(quoted, ihl + 2),
    })
}

/// The flow quoted by the ICMP error in `frame`, for the reverse connection lookup.
pub fn embedded_flow(frame: &[u8], meta: &PacketMeta) -> Result<EmbeddedFlow, DropReason> {
    let l3 = frame
        .get(usize::from(meta.l3_offset)..)
        .ok_or(DropReason::TruncatedL3)?;
    let ip = ipv4::Packet::new_checked(l3)?;
    if ip.protocol() != proto::ICMP {
        return Err(DropReason::NotIcmpError);
    }
    if ip.frag_offset() != 0 {
        return Err(DropReason::Fragment);
    }
    let q = quote_of(ip.payload())?;
    Ok(EmbeddedFlow {
        icmp_type: ip.payload()[0],
        proto: q.proto,
        src: IpAddr::V4(q.src),
        src_port: q.src_port,
        dst: IpAddr::V4(q.dst),
        dst_port: q.dst_port,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From the client side: outer destination and quoted source change.
    In,
    /// From the real server: outer source and quoted destination change.
    Out,
}

/// Error from the client side about a reply: outer destination and quoted source become
/// the real server `new_addr:new_port` (same arguments as [`super::nat::dnat`]).
pub fn dnat(
    frame: &mut [u8],
    meta: &PacketMeta,
    new_addr: IpAddr,
    new_port: u16,
) -> Result<(), DropReason> {
    translate(frame, meta, Direction::In, new_addr, new_port)
}

/// Error from the real server: outer source and quoted destination become the virtual
/// service `new_addr:new_port` (same arguments as [`super::nat::snat`]).
pub fn snat(
    frame: &mut [u8],
    meta: &PacketMeta,
    new_addr: IpAddr,
    new_port: u16,
) -> Result<(), DropReason> {
    translate(frame, meta, Direction::Out, new_addr, new_port)
}

fn translate(
    frame: &mut [u8],
    meta: &PacketMeta,
    dir: Direction,
    new_addr: IpAddr,
    new_port: u16,
) -> Result<(), DropReason> {
    let new_addr = v4(new_addr)?;
    let mut ip = ipv4_mut(frame, meta)?;
    if ip.protocol() != proto::ICMP {
        return Err(DropReason::NotIcmpError);
    }
    if ip.is_fragment() {
        return Err(DropReason::Fragment);
    }
    if ip.ttl() <= 1 {
        return Err(DropReason::TtlExceeded);
    }
    let msg = ip.payload_mut();
    let q = quote_of(msg)?;
    if checksum::checksum(msg) != 0 {
        return Err(DropReason::BadIcmpChecksum);
    }
    let (old_addr, old_port, port_at) = match dir {
        Direction::In => (q.src, q.src_port, q.l4),
        Direction::Out => (q.dst, q.dst_port, q.l4 + 2),
    };
    patch_quoted_l4(msg, &q, old_addr, new_addr, old_port, new_port);
    set_u16(msg, port_at, new_port);
    let mut quoted_ip = ipv4::Packet::new_unchecked(&mut msg[q.ip..q.l4]);
    match dir {
        Direction::In => quoted_ip.set_src_addr(new_addr),
        Direction::Out => quoted_ip.set_dst_addr(new_addr),
    }
    quoted_ip.fill_checksum();
    icmp::Packet::new_unchecked(msg).fill_checksum();
    ip.decrement_ttl()?;
    match dir {
        Direction::In => ip.update_dst_addr(new_addr),
        Direction::Out => ip.update_src_addr(new_addr),
    }
    Ok(())
}

/// Patches the quoted TCP/UDP checksum for the address and port change, if it is quoted.
fn patch_quoted_l4(
    msg: &mut [u8],
    q: &Quote,
    old_addr: Ipv4Addr,
    new_addr: Ipv4Addr,
    old_port: u16,
    new_port: u16,
) {
    let (at, is_udp) = match q.proto {
        proto::TCP => (q.l4 + tcp::CHECKSUM_END - 2, false),
        _ => (q.l4 + udp::HEADER_LEN - 2, true),
    };
    if at + 2 > msg.len() {
        return;
    }
    let old = get_u16(msg, at);
    if is_udp && old == 0 {
        return;
    }
    let check = checksum::update16(old, old_port, new_port);
    let check = checksum::update32(check, old_addr.into(), new_addr.into());
    set_u16(msg, at, if is_udp { udp_nonzero(check) } else { check });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_frame;

    /// Ethernet + IPv4(198.51.100.10 -> 203.0.113.5) + ICMP port unreachable quoting
    /// 203.0.113.5:40000 -> 198.51.100.10:8080 UDP (20 + 8 bytes, UDP checksum `udp_check`).
    fn error_frame(udp_check: u16) -> Vec<u8> {
        let mut quote = vec![
            0x45, 0, 0, 36, 0, 9, 0, 0, 63, 17, 0, 0, 203, 0, 113, 5, 198, 51, 100, 10,
        ];
        let c = checksum::checksum(&quote);
        quote[10..12].copy_from_slice(&c.to_be_bytes());
        quote.extend_from_slice(&[0x9c, 0x40, 0x1f, 0x90, 0, 16]);
        quote.extend_from_slice(&udp_check.to_be_bytes());
        let mut msg = vec![3, 3, 0, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&quote);
        let c = checksum::checksum(&msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0];
        f.extend_from_slice(&[0x45, 0xc0, 0, 56, 0, 0, 0, 0, 64, 1, 0, 0]);
        f.extend_from_slice(&[198, 51, 100, 10, 203, 0, 113, 5]);
        let c = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&msg);
        f
    }

    #[test]
    fn embedded_flow_of_an_error() {
        let f = error_frame(0x1234);
        let meta = parse_frame(&f).expect("valid");
        let flow = embedded_flow(&f, &meta).expect("quote ok");
        assert_eq!(flow.icmp_type, 3);
        assert_eq!(flow.proto, proto::UDP);
        assert_eq!(flow.src, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)));
        assert_eq!((flow.src_port, flow.dst_port), (40000, 8080));
        assert_eq!(flow.dst, IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)));
    }

    #[test]
    fn snat_keeps_zero_udp_checksum_and_fixes_the_rest() {
        let mut f = error_frame(0);
        let meta = parse_frame(&f).expect("valid");
        let vip = Ipv4Addr::new(192, 0, 2, 1);
        snat(&mut f, &meta, IpAddr::V4(vip), 80).expect("translated");
        let m = parse_frame(&f).expect("outer checksum verifies");
        assert_eq!((m.src, m.ttl), (IpAddr::V4(vip), 63));
        let flow = embedded_flow(&f, &m).expect("quote ok");
        assert_eq!((flow.dst, flow.dst_port), (IpAddr::V4(vip), 80));
        assert_eq!(f[34 + 8 + 26..34 + 8 + 28], [0, 0]);
        assert_eq!(checksum::checksum(&f[34..]), 0, "ICMP checksum");
        assert_eq!(checksum::checksum(&f[42..62]), 0, "quoted IP checksum");
    }

    #[test]
    fn refusals() {
        let mut f = error_frame(0x1234);
        let meta = parse_frame(&f).expect("valid");
        let rs = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 11));
        let mut bad = f.clone();
        bad[36] ^= 0x40; // ICMP checksum
        let before = bad.clone();
        assert_eq!(
            dnat(&mut bad, &meta, rs, 1),
            Err(DropReason::BadIcmpChecksum)
        );
        assert_eq!(bad, before);
        f[34] = 8; // echo request: not an error
        assert_eq!(embedded_flow(&f, &meta), Err(DropReason::NotIcmpError));
        assert_eq!(dnat(&mut f, &meta, rs, 1), Err(DropReason::NotIcmpError));
    }
}
