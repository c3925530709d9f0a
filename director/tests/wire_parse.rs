//! `parse_frame` on real frames (the scapy golden inputs) and on malformed variants of them:
//! every truncation refused, every documented drop reason produced, padding ignored.

#[path = "golden/cases.rs"]
mod cases;

use std::net::{IpAddr, Ipv4Addr};

use director::wire::tcp::flags;
use director::wire::{ipv4, parse_frame, DropReason, PacketKind, PacketMeta};

fn case(name: &str) -> cases::Case {
    cases::load()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no golden case {name}"))
}

fn input(name: &str) -> Vec<u8> {
    case(name).input
}

/// Recomputes the IPv4 header checksum of `frame` after a test edits the header.
fn fix_ip_checksum(frame: &mut [u8], l3: usize) {
    let mut ip = ipv4::Packet::new_unchecked(&mut frame[l3..]);
    ip.fill_checksum();
}

#[test]
fn every_truncation_of_every_golden_input_is_refused() {
    let mut checked = 0;
    for case in cases::load().iter().filter(|c| c.has_input()) {
        let full = parse_frame(&case.input).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let end = full.frame_end();
        assert!(end <= case.input.len());
        for len in 0..end {
            let prefix = &case.input[..len];
            assert!(
                parse_frame(prefix).is_err(),
                "{}: prefix of {len} bytes parsed",
                case.name
            );
            // The transform, handed the full frame's meta, must refuse the prefix too.
            assert!(
                case.apply(prefix, &full).is_err(),
                "{}: transform accepted a {len}-byte prefix",
                case.name
            );
            checked += 1;
        }
        // Cutting only padding changes nothing.
        for len in end..=case.input.len() {
            assert_eq!(parse_frame(&case.input[..len]), Ok(full), "{}", case.name);
        }
    }
    assert!(checked > 3000, "only {checked} prefixes checked");
}

#[test]
fn meta_of_a_tagged_tcp_syn_with_ip_options() {
    let f = input("nat_in_tcp_syn_vlan_ipopts");
    let m = parse_frame(&f).expect("valid");
    assert_eq!(m.kind, PacketKind::Tcp);
    assert_eq!((m.l2_len, m.l3_offset), (18, 18));
    assert_eq!(m.vlan_tci, Some((5 << 13) | 100));
    assert_eq!(m.ethertype, 0x0800);
    assert_eq!(m.ip_header_len, 28);
    assert_eq!(m.l4_offset, 18 + 28);
    assert_eq!(m.total_len, 28 + 32);
    assert_eq!(m.proto, 6);
    assert_eq!(m.src, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)));
    assert_eq!(m.dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!((m.src_port, m.dst_port), (40000, 80));
    assert_eq!(m.tcp_flags, flags::SYN);
    assert!(m.dont_fragment && !m.is_fragment && !m.first_fragment);
    assert_eq!((m.ttl, m.tos), (64, 0x10));
    assert_eq!(m.frame_end(), f.len());
}

#[test]
fn meta_of_udp_icmp_arp_and_other_ethertypes() {
    let m = parse_frame(&input("nat_in_udp")).expect("valid");
    assert_eq!(
        (m.kind, m.src_port, m.dst_port, m.tcp_flags),
        (PacketKind::Udp, 5353, 53, 0)
    );
    let m = parse_frame(&input("echo_reply")).expect("valid");
    assert_eq!((m.kind, m.icmp_type, m.icmp_code), (PacketKind::Icmp, 8, 0));
    assert_eq!((m.src_port, m.dst_port), (0, 0));
    let m = parse_frame(&input("arp_reply_vlan")).expect("valid");
    assert_eq!((m.kind, m.arp_op, m.l3_offset), (PacketKind::Arp, 1, 18));
    assert_eq!(m.src, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)));
    assert_eq!(m.dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(m.frame_end(), 18 + 28);

    let mut f = input("nat_in_udp");
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let m = parse_frame(&f).expect("L2 is valid");
    assert_eq!((m.kind, m.ethertype), (PacketKind::OtherEthertype, 0x86dd));

    let mut f = input("nat_in_udp");
    f[14 + 9] = 47; // GRE
    fix_ip_checksum(&mut f, 14);
    let m = parse_frame(&f).expect("valid");
    assert_eq!(
        (m.kind, m.proto, m.l4_offset),
        (PacketKind::OtherIp, 47, 34)
    );
}

/// The TCP data golden input with one edit, checksum refreshed unless `keep_checksum`.
fn edited(edit: impl Fn(&mut [u8]), keep_checksum: bool) -> Result<PacketMeta, DropReason> {
    let mut f = input("nat_in_tcp_data");
    edit(&mut f);
    if !keep_checksum {
        fix_ip_checksum(&mut f, 14);
    }
    parse_frame(&f)
}

#[test]
fn each_malformation_gives_its_drop_reason() {
    const L3: usize = 14;
    type Edit = fn(&mut [u8]);
    let cases: [(&str, Edit, bool, DropReason); 10] = [
        (
            "IHL 4",
            (|f: &mut [u8]| f[L3] = 0x44),
            true,
            DropReason::BadIhl,
        ),
        (
            "version 6",
            (|f: &mut [u8]| f[L3] = 0x65),
            true,
            DropReason::IpVersion,
        ),
        (
            "IHL 15",
            (|f: &mut [u8]| f[L3] = 0x4f),
            false,
            DropReason::TruncatedL4,
        ),
        (
            "total < header",
            (|f: &mut [u8]| f[L3 + 2..L3 + 4].copy_from_slice(&19u16.to_be_bytes())),
            false,
            DropReason::BadTotalLength,
        ),
        (
            "total > frame",
            (|f: &mut [u8]| f[L3 + 2..L3 + 4].copy_from_slice(&2000u16.to_be_bytes())),
            false,
            DropReason::TruncatedL3,
        ),
        (
            "checksum",
            (|f: &mut [u8]| f[L3 + 11] ^= 0x10),
            true,
            DropReason::BadIpChecksum,
        ),
        (
            "non-first fragment",
            (|f: &mut [u8]| f[L3 + 6..L3 + 8].copy_from_slice(&0x0003u16.to_be_bytes())),
            false,
            DropReason::Fragment,
        ),
        (
            "last fragment",
            (|f: &mut [u8]| f[L3 + 6..L3 + 8].copy_from_slice(&0x00b9u16.to_be_bytes())),
            false,
            DropReason::Fragment,
        ),
        (
            "TCP offset 4",
            (|f: &mut [u8]| f[34 + 12] = 0x40),
            false,
            DropReason::BadTcpOffset,
        ),
        (
            "TCP offset 15",
            (|f: &mut [u8]| f[34 + 12] = 0xf0),
            false,
            DropReason::BadTcpOffset,
        ),
    ];
    for (what, edit, keep, want) in cases {
        assert_eq!(edited(edit, keep), Err(want), "{what}");
    }
    // IHL 15 (60 bytes) on this 73-byte packet leaves 13 bytes for TCP: truncated L4. On a
    // 32-byte IP packet the header itself is truncated.
    let mut short = input("nat_in_udp_csum0_padded");
    short[14] = 0x4f; // lengths are checked before the checksum
    assert_eq!(parse_frame(&short[..14 + 32]), Err(DropReason::TruncatedL3));
}

#[test]
fn udp_length_and_arp_format_are_checked() {
    let mut f = input("nat_in_udp");
    f[34 + 4..34 + 6].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(parse_frame(&f), Err(DropReason::BadUdpLength));
    f[34 + 4..34 + 6].copy_from_slice(&1000u16.to_be_bytes());
    assert_eq!(parse_frame(&f), Err(DropReason::BadUdpLength));
    let mut a = input("arp_reply");
    a[14 + 4] = 8; // hardware address length
    assert_eq!(parse_frame(&a), Err(DropReason::BadArp));
}

#[test]
fn first_fragment_parses_with_its_flags() {
    let m = edited(
        |f| f[14 + 6..14 + 8].copy_from_slice(&0x2000u16.to_be_bytes()),
        false,
    )
    .expect("first fragment has its L4 header");
    assert!(m.is_fragment && m.first_fragment && !m.dont_fragment);
    assert_eq!((m.src_port, m.dst_port), (40000, 80));
}

#[test]
fn padding_is_ignored_whatever_its_content() {
    let f = input("nat_in_tcp_data");
    let m = parse_frame(&f).expect("valid");
    let mut padded = f.clone();
    padded.extend_from_slice(&[0xff, 0x00, 0x45, 0x11, 0xde, 0xad]);
    assert_eq!(parse_frame(&padded), Ok(m));
}
