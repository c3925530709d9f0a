//! ICMP messages the director originates: echo replies (in place) and errors (into a buffer).
//!
//! Errors follow Linux's `__icmp_send`: the quote is the offending IP packet from its header
//! on, as much as fits in a 576-byte error datagram (RFC 1812 4.3.2.3; RFC 792 asks for at
//! least the IP header and 8 bytes); TOS = `RT_TOS(offending tos) | IPTOS_PREC_INTERNETCONTROL`; TTL 64;
//! DF clear; identification 0 (576 bytes are never fragmented). No error is built about an
//! ICMP error, a non-first fragment, or a packet from/to a broadcast, multicast or unspecified
//! address (RFC 1122 3.2.2), see [`error_allowed`].

use std::net::Ipv4Addr;

use super::ethernet::{ethertype, L2};
use super::icmp::{self, msg_type};
use super::ipv4::{self, proto};
use super::parse::{ipv4_mut, PacketMeta};
use super::{checksum, DropReason};

/// Largest IP datagram of an ICMP error (RFC 1812).
pub const MAX_ERROR_IP_LEN: usize = 576;
/// Largest frame an error builder writes: 18-byte tagged L2 header + 576.
pub const MAX_ERROR_FRAME_LEN: usize = 18 + MAX_ERROR_IP_LEN;
/// Most bytes of the offending packet quoted.
const MAX_QUOTE: usize = MAX_ERROR_IP_LEN - ipv4::MIN_HEADER_LEN - icmp::HEADER_LEN;
/// IPTOS_PREC_INTERNETCONTROL.
const TOS_INTERNET_CONTROL: u8 = 0xc0;
/// IPTOS_TOS_MASK, what `RT_TOS()` keeps.
const TOS_MASK: u8 = 0x1e;

/// Turns an ICMP echo request into the echo reply, in place: MACs swapped, IP addresses
/// swapped, TTL reset to 64, type 0; both checksums patched incrementally. The IP header
/// (options included), identification, echo identifier/sequence and data are kept. The
/// request's ICMP checksum is verified first ([`DropReason::BadIcmpChecksum`]).
pub fn echo_reply(frame: &mut [u8], meta: &PacketMeta) -> Result<(), DropReason> {
    let mut ip = ipv4_mut(frame, meta)?;
    if ip.protocol() != proto::ICMP {
        return Err(DropReason::NotEchoRequest);
    }
    let mut msg = icmp::Packet::new_checked(ip.payload_mut())?;
    if msg.msg_type() != msg_type::ECHO_REQUEST || msg.code() != 0 {
        return Err(DropReason::NotEchoRequest);
    }
    if !msg.verify_checksum() {
        return Err(DropReason::BadIcmpChecksum);
    }
    let check = checksum::update16(
        msg.checksum(),
        u16::from(msg_type::ECHO_REQUEST) << 8,
        u16::from(msg_type::ECHO_REPLY) << 8,
    );
    msg.set_msg_type(msg_type::ECHO_REPLY);
    msg.set_checksum(check);
    // Swapping the addresses leaves the header sum unchanged.
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    ip.update_ttl(ipv4::DEFAULT_TTL);
    let mut macs = [0u8; 12];
    macs.copy_from_slice(&frame[..12]);
    frame[..6].copy_from_slice(&macs[6..]);
    frame[6..12].copy_from_slice(&macs[..6]);
    Ok(())
}

/// Builds destination unreachable (`code`, see [`icmp::unreachable_code`]) about
/// `offending_l3` (the offending packet from its IP header on; padding allowed) into `out`:
/// Ethernet per `l2`, IP from `src_ip` to the offending source. `next_hop_mtu` goes in bytes
/// 6..8 (frag needed, RFC 1191; pass 0 otherwise). Returns the frame length.
pub fn dest_unreachable(
    out: &mut [u8],
    l2: &L2,
    src_ip: Ipv4Addr,
    offending_l3: &[u8],
    code: u8,
    next_hop_mtu: u16,
) -> Result<usize, DropReason> {
    let rest = u32::from(next_hop_mtu);
    build_error(
        out,
        l2,
        src_ip,
        offending_l3,
        msg_type::DEST_UNREACHABLE,
        code,
        rest,
    )
}

/// Builds time exceeded (`code`, see [`icmp::time_exceeded_code`]) about `offending_l3`
/// into `out`, as [`dest_unreachable`]. Returns the frame length.
pub fn time_exceeded(
    out: &mut [u8],
    l2: &L2,
    src_ip: Ipv4Addr,
    offending_l3: &[u8],
    code: u8,
) -> Result<usize, DropReason> {
    build_error(
        out,
        l2,
        src_ip,
        offending_l3,
        msg_type::TIME_EXCEEDED,
        code,
        0,
    )
}

/// Whether an ICMP error may be sent about `offending_l3` (RFC 1122 3.2.2, Linux
/// `__icmp_send`): a valid IPv4 header, not a non-first fragment, not an ICMP error (or
/// unknown ICMP type), from a unicast source to a non-broadcast, non-multicast destination.
pub fn error_allowed(offending_l3: &[u8]) -> Result<(), DropReason> {
    let ip = ipv4::Packet::new_checked(offending_l3)?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if ip.frag_offset() != 0
        || src.is_unspecified()
        || src.is_multicast()
        || src.is_broadcast()
        || dst.is_multicast()
        || dst.is_broadcast()
    {
        return Err(DropReason::IcmpErrorSuppressed);
    }
    if ip.protocol() == proto::ICMP {
        // The type must be readable and an informational one (echo, timestamp, ...).
        let informational = ip
            .payload()
            .first()
            .is_some_and(|&t| !icmp::is_error(t) && t <= 18);
        if !informational {
            return Err(DropReason::IcmpErrorSuppressed);
        }
    }
    Ok(())
}

fn build_error(
    out: &mut [u8],
    l2: &L2,
    src_ip: Ipv4Addr,
    offending_l3: &[u8],
    icmp_type: u8,
    code: u8,
    rest: u32,
) -> Result<usize, DropReason> {
    error_allowed(offending_l3)?;
    let offending = ipv4::Packet::new_unchecked(offending_l3);
    let quote_len = usize::from(offending.total_len()).min(MAX_QUOTE);
    let quote = &offending_l3[..quote_len];
    let l2_len = l2.header_len();
    let ip_start = l2_len;
    let icmp_start = ip_start + ipv4::MIN_HEADER_LEN;
    let end = icmp_start + icmp::HEADER_LEN + quote_len;
    let out = out.get_mut(..end).ok_or(DropReason::BufferTooSmall)?;
    l2.emit(out, ethertype::IPV4)?;
    ipv4::Repr {
        src: src_ip,
        dst: offending.src_addr(),
        protocol: proto::ICMP,
        ttl: ipv4::DEFAULT_TTL,
        tos: TOS_INTERNET_CONTROL | (offending.tos() & TOS_MASK),
        ident: 0,
        dont_frag: false,
        payload_len: (end - icmp_start) as u16,
    }
    .emit(&mut out[ip_start..icmp_start])?;
    let mut msg = icmp::Packet::new_unchecked(&mut out[icmp_start..]);
    msg.set_msg_type(icmp_type);
    msg.set_code(code);
    msg.set_rest_of_header(rest);
    msg.payload_mut().copy_from_slice(quote);
    msg.fill_checksum();
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offending(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let mut p = vec![0x45, 0x00];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0, 0, 64, proto, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(payload);
        let check = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&check.to_be_bytes());
        p
    }

    #[test]
    fn suppression_rules() {
        let udp = [0u8; 8];
        let ok = offending([203, 0, 113, 5], [192, 0, 2, 1], proto::UDP, &udp);
        assert_eq!(error_allowed(&ok), Ok(()));
        for (src, dst) in [
            ([0, 0, 0, 0], [192, 0, 2, 1]),
            ([224, 0, 0, 1], [192, 0, 2, 1]),
            ([203, 0, 113, 5], [255, 255, 255, 255]),
            ([203, 0, 113, 5], [239, 1, 1, 1]),
        ] {
            let p = offending(src, dst, proto::UDP, &udp);
            assert_eq!(error_allowed(&p), Err(DropReason::IcmpErrorSuppressed));
        }
        let echo = offending([203, 0, 113, 5], [192, 0, 2, 1], proto::ICMP, &[8, 0, 0, 0]);
        assert_eq!(error_allowed(&echo), Ok(()));
        let err = offending([203, 0, 113, 5], [192, 0, 2, 1], proto::ICMP, &[3, 3, 0, 0]);
        assert_eq!(error_allowed(&err), Err(DropReason::IcmpErrorSuppressed));
        let empty = offending([203, 0, 113, 5], [192, 0, 2, 1], proto::ICMP, &[]);
        assert_eq!(error_allowed(&empty), Err(DropReason::IcmpErrorSuppressed));
        let mut frag = ok.clone();
        frag[7] = 1;
        assert_eq!(error_allowed(&frag), Err(DropReason::IcmpErrorSuppressed));
        assert_eq!(error_allowed(&ok[..19]), Err(DropReason::TruncatedL3));
    }

    #[test]
    fn buffer_too_small() {
        let p = offending([203, 0, 113, 5], [192, 0, 2, 1], proto::UDP, &[0u8; 8]);
        let l2 = L2 {
            src: crate::wire::MacAddr([2; 6]),
            dst: crate::wire::MacAddr([4; 6]),
            vlan_tci: None,
        };
        let mut out = [0u8; 14 + 20 + 8 + 28];
        let src = Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(time_exceeded(&mut out, &l2, src, &p, 0), Ok(70));
        assert_eq!(
            time_exceeded(&mut out[..69], &l2, src, &p, 0),
            Err(DropReason::BufferTooSmall)
        );
    }
}
