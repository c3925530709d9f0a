//! One pass over a received frame: Ethernet (+ one 802.1Q tag), IPv4 or ARP, TCP/UDP/ICMP,
//! into a small [`PacketMeta`] of offsets and fields, or a [`DropReason`].
//!
//! What is checked: header lengths, IPv4 version/IHL/total length, the IPv4 header checksum,
//! TCP data offset, UDP length (except in a first fragment, where it counts the whole
//! datagram). What is not: L4 checksums (see the [`crate::wire`] docs).
//! Fragments: a non-first fragment is refused ([`DropReason::Fragment`]): it has no ports, so
//! without reassembly it cannot be matched to a connection. A first fragment parses (its L4
//! header must be whole) with `is_fragment` and `first_fragment` set; the data plane decides.

use std::net::{IpAddr, Ipv4Addr};

use super::ethernet::{self, ethertype};
use super::ipv4::{self, proto};
use super::{arp, checksum, icmp, tcp, udp, DropReason};

/// What a parsed frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketKind {
    /// IPv4 + TCP; ports and flags set.
    Tcp,
    /// IPv4 + UDP; ports set.
    Udp,
    /// IPv4 + ICMP; `icmp_type`/`icmp_code` set.
    Icmp,
    /// IPv4 with another protocol (L3 fields set, `l4_offset` is the end of the IP header).
    OtherIp,
    /// Ethernet/IPv4 ARP; `arp_op`, `src` (sender) and `dst` (target) set.
    Arp,
    /// Another ethertype (IPv6 included, for now): only the L2 fields are set.
    OtherEthertype,
}

/// Offsets and fields of a parsed frame (all offsets from the start of the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// What the frame carries.
    pub kind: PacketKind,
    /// Ethernet header length: 14, or 18 with an 802.1Q tag.
    pub l2_len: u8,
    /// 802.1Q tag control information, if tagged.
    pub vlan_tci: Option<u16>,
    /// Ethertype of the payload (after the tag).
    pub ethertype: u16,
    /// Offset of the IP (or ARP) header; equals `l2_len`.
    pub l3_offset: u16,
    /// Offset of the TCP/UDP/ICMP header (`l3_offset + ip_header_len`).
    pub l4_offset: u16,
    /// IP header length in bytes, options included (28 for ARP: its packet length).
    pub ip_header_len: u8,
    /// IP total length (28 for ARP). Bytes past `frame_end()` are padding.
    pub total_len: u16,
    /// IP protocol number (0 for non-IP).
    pub proto: u8,
    /// Source address (ARP: sender protocol address).
    pub src: IpAddr,
    /// Destination address (ARP: target protocol address).
    pub dst: IpAddr,
    /// TCP/UDP source port, 0 otherwise.
    pub src_port: u16,
    /// TCP/UDP destination port, 0 otherwise.
    pub dst_port: u16,
    /// TCP flags byte (see [`tcp::flags`]), 0 otherwise.
    pub tcp_flags: u8,
    /// ICMP type, 0 otherwise.
    pub icmp_type: u8,
    /// ICMP code, 0 otherwise.
    pub icmp_code: u8,
    /// ARP operation, 0 otherwise.
    pub arp_op: u16,
    /// MF set or non-zero offset (only first fragments parse, so this implies
    /// `first_fragment`).
    pub is_fragment: bool,
    /// A first fragment (offset 0, MF set): L4 header present, payload incomplete.
    pub first_fragment: bool,
    /// IP DF flag.
    pub dont_fragment: bool,
    /// IP TTL.
    pub ttl: u8,
    /// IP TOS byte (DSCP + ECN).
    pub tos: u8,
}

impl PacketMeta {
    /// A meta with every field zero / unspecified: what a frame of an unhandled ethertype
    /// parses to before its L2 fields are filled, and a slot for callers to overwrite.
    pub const BLANK: PacketMeta = PacketMeta {
        kind: PacketKind::OtherEthertype,
        l2_len: 0,
        vlan_tci: None,
        ethertype: 0,
        l3_offset: 0,
        l4_offset: 0,
        ip_header_len: 0,
        total_len: 0,
        proto: 0,
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
        arp_op: 0,
        is_fragment: false,
        first_fragment: false,
        dont_fragment: false,
        ttl: 0,
        tos: 0,
    };

    fn l2_only(l2: L2) -> Self {
        PacketMeta {
            l2_len: l2.len,
            vlan_tci: l2.vlan_tci,
            ethertype: l2.ethertype,
            l3_offset: l2.len.into(),
            l4_offset: l2.len.into(),
            ..PacketMeta::BLANK
        }
    }

    /// End of the L3 packet in the frame; bytes after it are Ethernet padding, which the data
    /// plane may trim (`rte_pktmbuf_trim`) before transmitting.
    #[inline]
    pub fn frame_end(&self) -> usize {
        usize::from(self.l3_offset) + usize::from(self.total_len)
    }

    /// Length of the IP payload (L4 header + data).
    #[inline]
    pub fn l4_len(&self) -> usize {
        usize::from(self.total_len).saturating_sub(usize::from(self.ip_header_len))
    }

    /// Whether the frame is IPv4 (any protocol).
    #[inline]
    pub fn is_ipv4(&self) -> bool {
        matches!(
            self.kind,
            PacketKind::Tcp | PacketKind::Udp | PacketKind::Icmp | PacketKind::OtherIp
        )
    }
}

/// The Ethernet header's part of a [`PacketMeta`].
#[derive(Clone, Copy)]
struct L2 {
    len: u8,
    vlan_tci: Option<u16>,
    ethertype: u16,
}

/// The transport header's part of a [`PacketMeta`].
#[derive(Clone, Copy)]
struct L4 {
    kind: PacketKind,
    src_port: u16,
    dst_port: u16,
    tcp_flags: u8,
    icmp_type: u8,
    icmp_code: u8,
}

impl L4 {
    /// Another IP protocol: no transport fields.
    const OTHER: L4 = L4 {
        kind: PacketKind::OtherIp,
        src_port: 0,
        dst_port: 0,
        tcp_flags: 0,
        icmp_type: 0,
        icmp_code: 0,
    };
}

/// Parses `frame` in one pass (see the module docs for what is checked).
///
/// Each fixed header is taken as a fixed-size array after one length check, so the views'
/// accessors compile to plain loads, and the meta is written once, from scalars.
#[inline]
pub fn parse_frame(frame: &[u8]) -> Result<PacketMeta, DropReason> {
    let (eth, rest) = frame
        .split_first_chunk::<{ ethernet::HEADER_LEN }>()
        .ok_or(DropReason::TruncatedL2)?;
    let eth = ethernet::Frame::new_unchecked(eth);
    let (l2, l3) = if eth.is_tagged() {
        let (tag, l3) = rest
            .split_first_chunk::<{ ethernet::VLAN_HEADER_LEN - ethernet::HEADER_LEN }>()
            .ok_or(DropReason::TruncatedL2)?;
        let [t0, t1, e0, e1] = *tag;
        let l2 = L2 {
            len: ethernet::VLAN_HEADER_LEN as u8,
            vlan_tci: Some(u16::from_be_bytes([t0, t1])),
            ethertype: u16::from_be_bytes([e0, e1]),
        };
        (l2, l3)
    } else {
        let l2 = L2 {
            len: ethernet::HEADER_LEN as u8,
            vlan_tci: None,
            ethertype: eth.outer_ethertype(),
        };
        (l2, rest)
    };
    match l2.ethertype {
        ethertype::IPV4 => parse_ipv4(l3, l2),
        ethertype::ARP => parse_arp(l3, l2),
        _ => Ok(PacketMeta::l2_only(l2)),
    }
}

/// First byte of an IPv4 header without options: version 4, IHL 5.
const VERSION_4_NO_OPTIONS: u8 = 0x45;

#[inline(always)]
fn parse_ipv4(l3: &[u8], l2: L2) -> Result<PacketMeta, DropReason> {
    let fixed = l3.first_chunk().ok_or(DropReason::TruncatedL3)?;
    if fixed[0] == VERSION_4_NO_OPTIONS {
        // The common case: the header length is a constant, and one range check on the total
        // length stands for `check_fixed`'s two.
        let total = usize::from(ipv4::Packet::new_unchecked(fixed).total_len());
        let l4 = l3
            .get(ipv4::MIN_HEADER_LEN..total)
            .ok_or(if total < ipv4::MIN_HEADER_LEN {
                DropReason::BadTotalLength
            } else {
                DropReason::TruncatedL3
            })?;
        if !checksum::verify_ipv4_header(fixed) {
            return Err(DropReason::BadIpChecksum);
        }
        parse_ipv4_payload(l2, fixed, ipv4::MIN_HEADER_LEN, l4)
    } else {
        let header_len = ipv4::check_fixed(fixed, l3.len())?;
        let ip = ipv4::Packet::new_unchecked(l3);
        if !ip.verify_checksum() {
            return Err(DropReason::BadIpChecksum);
        }
        let l4 = l3
            .get(header_len..usize::from(ip.total_len()))
            .ok_or(DropReason::TruncatedL3)?;
        parse_ipv4_payload(l2, fixed, header_len, l4)
    }
}

/// The rest of [`parse_ipv4`] once the header (first 20 bytes `fixed`, `header_len` in all)
/// verifies: fragment refusal and the transport header in `l4`. Inlined twice, so that the
/// header length is a constant in the common case.
#[inline(always)]
fn parse_ipv4_payload(
    l2: L2,
    fixed: &[u8; ipv4::MIN_HEADER_LEN],
    header_len: usize,
    l4: &[u8],
) -> Result<PacketMeta, DropReason> {
    let ip = ipv4::Packet::new_unchecked(fixed);
    if ip.frag_offset() != 0 {
        return Err(DropReason::Fragment);
    }
    let more_frags = ip.more_frags();
    // One meta literal per arm, from scalars: merging the arms' L4 fields (or returning them
    // in a `Result`) first costs a stack round trip.
    match ip.protocol() {
        proto::TCP => {
            let tcp = tcp::Packet::new_unchecked(tcp_header(l4)?);
            let l4 = L4 {
                kind: PacketKind::Tcp,
                src_port: tcp.src_port(),
                dst_port: tcp.dst_port(),
                tcp_flags: tcp.flags(),
                ..L4::OTHER
            };
            Ok(ipv4_meta(l2, fixed, header_len, l4))
        }
        proto::UDP => {
            let udp = udp::Packet::new_unchecked(udp_header(l4, more_frags)?);
            let l4 = L4 {
                kind: PacketKind::Udp,
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
                ..L4::OTHER
            };
            Ok(ipv4_meta(l2, fixed, header_len, l4))
        }
        proto::ICMP => {
            let icmp = icmp::Packet::new_unchecked(icmp_header(l4)?);
            let l4 = L4 {
                kind: PacketKind::Icmp,
                icmp_type: icmp.msg_type(),
                icmp_code: icmp.code(),
                ..L4::OTHER
            };
            Ok(ipv4_meta(l2, fixed, header_len, l4))
        }
        _ => Ok(ipv4_meta(l2, fixed, header_len, L4::OTHER)),
    }
}

/// The meta of a checked IPv4 packet (first 20 header bytes `fixed`).
#[inline(always)]
fn ipv4_meta(l2: L2, fixed: &[u8; ipv4::MIN_HEADER_LEN], header_len: usize, l4: L4) -> PacketMeta {
    let ip = ipv4::Packet::new_unchecked(fixed);
    PacketMeta {
        kind: l4.kind,
        l2_len: l2.len,
        vlan_tci: l2.vlan_tci,
        ethertype: l2.ethertype,
        l3_offset: l2.len.into(),
        l4_offset: u16::from(l2.len) + header_len as u16,
        ip_header_len: header_len as u8,
        total_len: ip.total_len(),
        proto: ip.protocol(),
        src: IpAddr::V4(ip.src_addr()),
        dst: IpAddr::V4(ip.dst_addr()),
        src_port: l4.src_port,
        dst_port: l4.dst_port,
        tcp_flags: l4.tcp_flags,
        icmp_type: l4.icmp_type,
        icmp_code: l4.icmp_code,
        arp_op: 0,
        is_fragment: ip.more_frags(),
        first_fragment: ip.more_frags(),
        dont_fragment: ip.dont_frag(),
        ttl: ip.ttl(),
        tos: ip.tos(),
    }
}

/// The TCP header of IP payload `l4`, checked: whole, data offset within 5..=`l4`'s length.
#[inline(always)]
fn tcp_header(l4: &[u8]) -> Result<&[u8; tcp::MIN_HEADER_LEN], DropReason> {
    let fixed = l4.first_chunk().ok_or(DropReason::TruncatedL4)?;
    let header_len = tcp::Packet::new_unchecked(fixed).header_len();
    if header_len < tcp::MIN_HEADER_LEN || header_len > l4.len() {
        return Err(DropReason::BadTcpOffset);
    }
    Ok(fixed)
}

/// The UDP header of IP payload `l4`, checked: whole, length within 8..=`l4`'s length
/// (unless `first_fragment`: then the length counts the whole datagram).
#[inline(always)]
fn udp_header(l4: &[u8], first_fragment: bool) -> Result<&[u8; udp::HEADER_LEN], DropReason> {
    let fixed = l4.first_chunk().ok_or(DropReason::TruncatedL4)?;
    let len = usize::from(udp::Packet::new_unchecked(fixed).len());
    if !first_fragment && !(udp::HEADER_LEN..=l4.len()).contains(&len) {
        return Err(DropReason::BadUdpLength);
    }
    Ok(fixed)
}

/// The ICMP header of IP payload `l4`, checked: whole.
#[inline(always)]
fn icmp_header(l4: &[u8]) -> Result<&[u8; icmp::HEADER_LEN], DropReason> {
    l4.first_chunk().ok_or(DropReason::TruncatedL4)
}

fn parse_arp(l3: &[u8], l2: L2) -> Result<PacketMeta, DropReason> {
    let arp = arp::Packet::new_checked(l3)?;
    Ok(PacketMeta {
        kind: PacketKind::Arp,
        ip_header_len: arp::PACKET_LEN as u8,
        total_len: arp::PACKET_LEN as u16,
        l4_offset: u16::from(l2.len) + arp::PACKET_LEN as u16,
        arp_op: arp.operation(),
        src: IpAddr::V4(arp.sender_ip()),
        dst: IpAddr::V4(arp.target_ip()),
        ..PacketMeta::l2_only(l2)
    })
}

/// The IPv4 packet of `frame` at `meta.l3_offset`, re-checked so that transforms stay
/// panic-free even when handed a `meta` that does not belong to `frame`.
#[inline]
pub(crate) fn ipv4_mut<'a>(
    frame: &'a mut [u8],
    meta: &PacketMeta,
) -> Result<ipv4::Packet<&'a mut [u8]>, DropReason> {
    let l3 = frame
        .get_mut(usize::from(meta.l3_offset)..)
        .ok_or(DropReason::TruncatedL3)?;
    ipv4::Packet::new_checked(l3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::checksum;

    /// Ethernet + IPv4 (20) + UDP (8) + 4 bytes data + 6 bytes padding.
    fn udp_frame() -> Vec<u8> {
        let mut f = vec![
            2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, // ethernet
            0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0, 0, 203, 0, 113, 5, 192,
            0, 2, 1, // ipv4
            0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, // udp
            1, 2, 3, 4, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
        ];
        let check = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&check.to_be_bytes());
        f
    }

    #[test]
    fn meta_is_small() {
        assert!(std::mem::size_of::<PacketMeta>() <= 64);
    }

    #[test]
    fn udp_fields() {
        let f = udp_frame();
        let m = parse_frame(&f).expect("valid");
        assert_eq!(m.kind, PacketKind::Udp);
        assert_eq!((m.l2_len, m.l3_offset, m.l4_offset), (14, 14, 34));
        assert_eq!((m.ip_header_len, m.total_len, m.proto), (20, 32, 17));
        assert_eq!(m.src, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)));
        assert_eq!(m.dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!((m.src_port, m.dst_port), (40000, 53));
        assert!(m.dont_fragment && !m.is_fragment && !m.first_fragment);
        assert_eq!((m.ttl, m.tos, m.vlan_tci), (64, 0, None));
        assert_eq!(m.frame_end(), 46);
        assert_eq!(m.l4_len(), 12);
        assert!(m.is_ipv4());
    }

    #[test]
    fn first_fragment_parses_and_later_fragments_do_not() {
        let mut f = udp_frame();
        f[20] = 0x20; // MF, offset 0
        f[24..26].copy_from_slice(&[0, 0]);
        let check = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&check.to_be_bytes());
        let m = parse_frame(&f).expect("first fragment");
        assert!(m.is_fragment && m.first_fragment && !m.dont_fragment);
        f[21] = 0x01; // offset 8
        f[24..26].copy_from_slice(&[0, 0]);
        let check = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&check.to_be_bytes());
        assert_eq!(parse_frame(&f), Err(DropReason::Fragment));
    }

    #[test]
    fn bad_checksum_and_other_ethertype() {
        let mut f = udp_frame();
        f[25] ^= 1;
        assert_eq!(parse_frame(&f), Err(DropReason::BadIpChecksum));
        f[12..14].copy_from_slice(&ethertype::IPV6.to_be_bytes());
        let m = parse_frame(&f).expect("l2 is fine");
        assert_eq!(m.kind, PacketKind::OtherEthertype);
        assert_eq!(m.ethertype, ethertype::IPV6);
        assert!(!m.is_ipv4());
    }

    /// The straightforward parse through the checked views (what `parse_frame` did before it
    /// was tuned), for a differential test.
    fn reference_parse(frame: &[u8]) -> Result<PacketMeta, DropReason> {
        let eth = ethernet::Frame::new_checked(frame)?;
        let l2 = L2 {
            len: eth.header_len() as u8,
            vlan_tci: eth.vlan_tci(),
            ethertype: eth.ethertype(),
        };
        let mut meta = PacketMeta::l2_only(l2);
        let l3 = &frame[eth.header_len()..];
        if meta.ethertype == ethertype::ARP {
            let arp = arp::Packet::new_checked(l3)?;
            meta.kind = PacketKind::Arp;
            meta.ip_header_len = arp::PACKET_LEN as u8;
            meta.total_len = arp::PACKET_LEN as u16;
            meta.l4_offset = meta.l3_offset + arp::PACKET_LEN as u16;
            meta.arp_op = arp.operation();
            meta.src = IpAddr::V4(arp.sender_ip());
            meta.dst = IpAddr::V4(arp.target_ip());
            return Ok(meta);
        }
        if meta.ethertype != ethertype::IPV4 {
            return Ok(meta);
        }
        let ip = ipv4::Packet::new_checked(l3)?;
        if checksum::checksum(ip.header()) != 0 {
            return Err(DropReason::BadIpChecksum);
        }
        if ip.frag_offset() != 0 {
            return Err(DropReason::Fragment);
        }
        meta.kind = PacketKind::OtherIp;
        meta.l4_offset = meta.l3_offset + ip.header_len() as u16;
        meta.ip_header_len = ip.header_len() as u8;
        meta.total_len = ip.total_len();
        meta.proto = ip.protocol();
        meta.src = IpAddr::V4(ip.src_addr());
        meta.dst = IpAddr::V4(ip.dst_addr());
        meta.is_fragment = ip.more_frags();
        meta.first_fragment = ip.more_frags();
        meta.dont_fragment = ip.dont_frag();
        meta.ttl = ip.ttl();
        meta.tos = ip.tos();
        let l4 = ip.payload();
        match meta.proto {
            proto::TCP => {
                let tcp = tcp::Packet::new_checked(l4)?;
                meta.kind = PacketKind::Tcp;
                meta.src_port = tcp.src_port();
                meta.dst_port = tcp.dst_port();
                meta.tcp_flags = tcp.flags();
            }
            proto::UDP => {
                let udp = if meta.first_fragment {
                    udp::Packet::new_checked_header(l4)?
                } else {
                    udp::Packet::new_checked(l4)?
                };
                meta.kind = PacketKind::Udp;
                meta.src_port = udp.src_port();
                meta.dst_port = udp.dst_port();
            }
            proto::ICMP => {
                let icmp = icmp::Packet::new_checked(l4)?;
                meta.kind = PacketKind::Icmp;
                meta.icmp_type = icmp.msg_type();
                meta.icmp_code = icmp.code();
            }
            _ => {}
        }
        Ok(meta)
    }

    #[test]
    fn agrees_with_the_reference_parse_on_mutated_frames() {
        let tagged = {
            let mut f = udp_frame();
            f.splice(12..12, [0x81, 0x00, 0xa0, 0x64]);
            f
        };
        let with_options = {
            let mut f = udp_frame();
            f[14] = 0x46;
            f[17] += 4;
            f.splice(34..34, [1, 1, 1, 0]);
            f
        };
        let arp = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0,
            1, 2, 0, 0, 0, 0, 2, 192, 0, 2, 9, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
        ];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut compared, mut parsed) = (0, 0);
        for base in [udp_frame(), tagged, with_options, arp] {
            for _ in 0..3_000 {
                let mut f = base.clone();
                let r = next();
                // Change one or two bytes (often a header byte), maybe fix the IP checksum
                // so that the parse goes deeper, maybe cut the frame.
                for k in 0..1 + (r & 1) {
                    let at = (r >> (8 + 8 * k)) as usize % f.len().min(48);
                    f[at] = (r >> (24 + 8 * k)) as u8;
                }
                let l3 = if f[12..14] == [0x81, 0x00] { 18 } else { 14 };
                if r >> 40 & 1 == 1 && f.len() >= l3 + 20 {
                    let ihl = usize::from(f[l3] & 0x0f) * 4;
                    if (20..=f.len() - l3).contains(&ihl) {
                        f[l3 + 10..l3 + 12].copy_from_slice(&[0, 0]);
                        let check = checksum::checksum(&f[l3..l3 + ihl]);
                        f[l3 + 10..l3 + 12].copy_from_slice(&check.to_be_bytes());
                    }
                }
                if r >> 41 & 3 == 0 {
                    f.truncate((r >> 44) as usize % (f.len() + 1));
                }
                let got = parse_frame(&f);
                assert_eq!(got, reference_parse(&f), "frame {f:02x?}");
                compared += 1;
                parsed += usize::from(got.is_ok());
            }
        }
        assert!(
            parsed > 1_000 && compared - parsed > 1_000,
            "{parsed} of {compared}"
        );
    }
}
