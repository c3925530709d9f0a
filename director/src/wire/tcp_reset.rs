//! A TCP reset for a segment to a closed port: what the director's host kernel answers for a
//! VIP or director address where no virtual service listens (IPVS hands such a segment to the
//! local stack, which has no socket there). RFC 793's reset generation, as Linux's
//! `tcp_v4_send_reset`: if the segment carries an ACK, the reset takes its sequence number
//! from that acknowledgment; otherwise the reset has sequence number 0 and acknowledges the
//! segment (sequence number + data length + one for SYN and one for FIN, flags RST|ACK). A
//! reset never answers a reset. The IP header is Linux's for a reset: TTL 64, DF, ident 0.

use super::checksum;
use super::ethernet::{ethertype, L2};
use super::icmp_build::error_allowed;
use super::ipv4::{self, proto};
use super::tcp::{self, field, flags};
use super::DropReason;

/// The longest frame [`build`] writes: a tagged Ethernet header, IPv4 and TCP without options.
pub const MAX_RESET_FRAME_LEN: usize = 18 + ipv4::MIN_HEADER_LEN + tcp::MIN_HEADER_LEN;

/// Builds into `out` the reset answering `segment_l3` (the offending packet from its IPv4
/// header on; padding after it allowed), Ethernet per `l2`, from the segment's destination
/// to its source. Returns the frame length. `Err` where no reset may be sent: not a valid
/// TCP segment, a reset itself, a fragment, or from or to a broadcast or multicast address
/// (the same rules as for ICMP errors). The reason only says why; nothing counts it.
pub fn build(out: &mut [u8], l2: &L2, segment_l3: &[u8]) -> Result<usize, DropReason> {
    error_allowed(segment_l3)?;
    let ip = ipv4::Packet::new_checked(segment_l3)?;
    if ip.protocol() != proto::TCP {
        return Err(DropReason::UnsupportedProtocol);
    }
    let ip_len = ip.header_len();
    let total = usize::from(ip.total_len());
    let seg = segment_l3
        .get(ip_len..total)
        .ok_or(DropReason::TruncatedL4)?;
    let seg = tcp::Packet::new_checked(seg)?;
    let in_flags = seg.flags();
    if in_flags & flags::RST != 0 {
        // Never answered (RFC 793): no reply allowed, as for the ICMP error cases.
        return Err(DropReason::IcmpErrorSuppressed);
    }
    let (seq, ack, reset_flags) = if in_flags & flags::ACK != 0 {
        (seg.ack_number(), 0, flags::RST)
    } else {
        let data = total - ip_len - seg.header_len();
        let len = data as u32
            + u32::from(in_flags & flags::SYN != 0)
            + u32::from(in_flags & flags::FIN != 0);
        (
            0,
            seg.seq_number().wrapping_add(len),
            flags::RST | flags::ACK,
        )
    };
    let l2_len = l2.header_len();
    let tcp_start = l2_len + ipv4::MIN_HEADER_LEN;
    let end = tcp_start + tcp::MIN_HEADER_LEN;
    let out = out.get_mut(..end).ok_or(DropReason::BufferTooSmall)?;
    l2.emit(out, ethertype::IPV4)?;
    let (src, dst) = (ip.dst_addr(), ip.src_addr());
    ipv4::Repr {
        src,
        dst,
        protocol: proto::TCP,
        ttl: ipv4::DEFAULT_TTL,
        tos: 0,
        ident: 0,
        dont_frag: true,
        payload_len: tcp::MIN_HEADER_LEN as u16,
    }
    .emit(&mut out[l2_len..tcp_start])?;
    let t = &mut out[tcp_start..];
    t.fill(0);
    t[field::SRC_PORT..field::SRC_PORT + 2].copy_from_slice(&seg.dst_port().to_be_bytes());
    t[field::DST_PORT..field::DST_PORT + 2].copy_from_slice(&seg.src_port().to_be_bytes());
    t[field::SEQ..field::SEQ + 4].copy_from_slice(&seq.to_be_bytes());
    t[field::ACK..field::ACK + 4].copy_from_slice(&ack.to_be_bytes());
    t[field::DATA_OFF] = ((tcp::MIN_HEADER_LEN / 4) as u8) << 4;
    t[field::FLAGS] = reset_flags;
    let sum = checksum::pseudo_header_v4(src, dst, proto::TCP, tcp::MIN_HEADER_LEN as u16)
        + checksum::sum(t);
    let check = checksum::finish(sum);
    t[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MacAddr;

    fn segment(flags_byte: u8, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
        let total = (40 + data.len()) as u16;
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0, 203, 0, 113, 5, 192, 0, 2, 1]);
        let c = checksum::checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&81u16.to_be_bytes());
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ack.to_be_bytes());
        p.extend_from_slice(&[0x50, flags_byte, 0xfa, 0xf0, 0, 0, 0, 0]);
        p.extend_from_slice(data);
        p
    }

    fn l2() -> L2 {
        L2 {
            src: MacAddr([2, 0, 0, 0, 0, 1]),
            dst: MacAddr([2, 0, 0, 0, 0, 0xfe]),
            vlan_tci: None,
        }
    }

    fn reset(seg: &[u8]) -> Result<Vec<u8>, DropReason> {
        let mut out = [0u8; MAX_RESET_FRAME_LEN];
        let n = build(&mut out, &l2(), seg)?;
        Ok(out[..n].to_vec())
    }

    /// Both checksums of a built reset verify with the generic code.
    fn verify(frame: &[u8]) {
        let ip = &frame[14..34];
        assert_eq!(checksum::checksum(ip), 0, "IP checksum");
        let src = ipv4::Packet::new_unchecked(ip).src_addr();
        let dst = ipv4::Packet::new_unchecked(ip).dst_addr();
        let sum = checksum::pseudo_header_v4(src, dst, 6, 20) + checksum::sum(&frame[34..54]);
        assert_eq!(checksum::finish(sum), 0, "TCP checksum");
    }

    #[test]
    fn a_syn_gets_rst_ack_of_its_sequence_plus_one() {
        let f = reset(&segment(flags::SYN, 1000, 0, &[])).unwrap();
        assert_eq!(f.len(), 54);
        verify(&f);
        assert_eq!(
            &f[26..30],
            &[192, 0, 2, 1],
            "from the address it was sent to"
        );
        assert_eq!(&f[30..34], &[203, 0, 113, 5]);
        assert_eq!(&f[34..38], &[0, 81, 0x9c, 0x40], "ports swapped");
        assert_eq!(&f[38..42], &0u32.to_be_bytes(), "seq 0");
        assert_eq!(&f[42..46], &1001u32.to_be_bytes(), "acks the SYN");
        assert_eq!(f[47], flags::RST | flags::ACK);
        assert_eq!(f[22], 64, "TTL");
        assert_eq!(f[20] & 0x40, 0x40, "DF");
    }

    #[test]
    fn a_segment_with_ack_gets_a_bare_rst_at_that_ack() {
        let f = reset(&segment(flags::ACK | flags::PSH, 5, 7777, b"hello")).unwrap();
        verify(&f);
        assert_eq!(&f[38..42], &7777u32.to_be_bytes());
        assert_eq!(&f[42..46], &0u32.to_be_bytes());
        assert_eq!(f[47], flags::RST);
    }

    #[test]
    fn data_and_fin_count_in_the_acknowledgment() {
        let f = reset(&segment(flags::FIN | flags::PSH, u32::MAX - 1, 0, b"abc")).unwrap();
        verify(&f);
        // 3 bytes of data + FIN, wrapping.
        assert_eq!(&f[42..46], &2u32.to_be_bytes());
    }

    #[test]
    fn no_reset_for_a_reset_a_fragment_a_broadcast_or_a_short_segment() {
        assert!(reset(&segment(flags::RST, 1, 0, &[])).is_err());
        assert!(reset(&segment(flags::RST | flags::ACK, 1, 1, &[])).is_err());
        let mut frag = segment(flags::SYN, 1, 0, &[]);
        frag[6] = 0x20;
        frag[7] = 0x10;
        assert!(reset(&frag).is_err());
        let mut bcast = segment(flags::SYN, 1, 0, &[]);
        bcast[16..20].copy_from_slice(&[255, 255, 255, 255]);
        assert!(reset(&bcast).is_err());
        let whole = segment(flags::SYN, 1, 0, &[]);
        for cut in 0..whole.len() {
            assert!(reset(&whole[..cut]).is_err(), "cut at {cut}");
        }
        let mut small = [0u8; 53];
        assert_eq!(
            build(&mut small, &l2(), &whole),
            Err(DropReason::BufferTooSmall)
        );
    }
}
