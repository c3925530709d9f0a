//! Transform behaviour beyond the golden frames: refusals leave the frame untouched, TTL 1,
//! address family, fragments, tunnel limits, ICMP error suppression.

#[path = "golden/cases.rs"]
mod cases;

use std::net::{IpAddr, Ipv4Addr};

use director::wire::ethernet::L2;
use director::wire::{
    checksum, dr, icmp_build, icmp_nat, ipv4, nat, parse_frame, tun, DropReason, MacAddr,
};

fn input(name: &str) -> Vec<u8> {
    cases::load()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no golden case {name}"))
        .input
}

fn with_ttl(mut frame: Vec<u8>, l3: usize, ttl: u8) -> Vec<u8> {
    let mut ip = ipv4::Packet::new_checked(&mut frame[l3..]).expect("valid");
    ip.update_ttl(ttl);
    frame
}

const RS: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x0a]);

#[test]
fn ttl_one_is_refused_by_every_forwarding_transform_without_writing() {
    for name in [
        "nat_in_tcp_data",
        "nat_in_udp_vlan_ipopts",
        "icmp_dnat_frag_needed_short_quote",
    ] {
        let frame = input(name);
        let meta = parse_frame(&frame).expect("valid");
        let frame = with_ttl(frame, usize::from(meta.l3_offset), 1);
        let meta = parse_frame(&frame).expect("TTL 1 still parses");
        let mut f = frame.clone();
        let results = [
            if meta.kind == director::wire::PacketKind::Icmp {
                icmp_nat::dnat(&mut f, &meta, RS, 8080)
            } else {
                nat::dnat(&mut f, &meta, RS, 8080)
            },
            nat::snat(&mut f, &meta, RS, 8080),
            dr::forward(&mut f, &meta, MAC, MAC),
            icmp_nat::snat(&mut f, &meta, RS, 8080),
        ];
        let mut tunneled = vec![0u8; tun::OUTER_HEADER_LEN];
        tunneled.extend_from_slice(&frame);
        let before = tunneled.clone();
        let t = tun::encap(
            &mut tunneled,
            &meta,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            1,
        );
        assert_eq!(t, Err(DropReason::TtlExceeded), "{name}: tun");
        assert_eq!(tunneled, before, "{name}: tun wrote");
        assert_eq!(results[0], Err(DropReason::TtlExceeded), "{name}");
        assert_eq!(results[2], Err(DropReason::TtlExceeded), "{name}");
        assert_eq!(f, frame, "{name}: a refusing transform wrote");
        // TTL 2 forwards with TTL 1.
        let mut g = with_ttl(frame.clone(), usize::from(meta.l3_offset), 2);
        let m2 = parse_frame(&g).expect("valid");
        dr::forward(&mut g, &m2, MAC, MAC).expect("forwarded");
        assert_eq!(parse_frame(&g).expect("valid").ttl, 1);
    }
}

#[test]
fn ipv6_addresses_are_refused_for_ipv4_packets() {
    let frame = input("nat_in_tcp_data");
    let meta = parse_frame(&frame).expect("valid");
    let v6: IpAddr = "2001:db8::10".parse().expect("addr");
    let mut f = frame.clone();
    assert_eq!(
        nat::dnat(&mut f, &meta, v6, 80),
        Err(DropReason::AddressFamily)
    );
    assert_eq!(
        nat::snat(&mut f, &meta, v6, 80),
        Err(DropReason::AddressFamily)
    );
    assert_eq!(
        icmp_nat::dnat(&mut f, &meta, v6, 80),
        Err(DropReason::AddressFamily)
    );
    assert_eq!(f, frame);
}

/// The UDP checksum of an IPv4 frame verifies (or is 0 = none).
fn udp_checksum_state(frame: &[u8], l3: usize) -> Option<bool> {
    let ip = ipv4::Packet::new_checked(&frame[l3..]).expect("valid");
    let udp = ip.payload();
    if udp[6..8] == [0, 0] {
        return None;
    }
    let partial = checksum::pseudo_header_v4(ip.src_addr(), ip.dst_addr(), 17, udp.len() as u16)
        + checksum::sum(udp);
    Some(checksum::finish(partial) == 0)
}

#[test]
fn udp_checksum_zero_in_a_first_fragment_stays_zero() {
    let frame = input("nat_in_udp_csum0_padded");
    let mut f = frame.clone();
    assert_eq!(f[14 + 6..14 + 8], [0, 0]);
    // MF set: only the first part of a datagram, which cannot be checksummed whole.
    f[14 + 6] = 0x20;
    ipv4::Packet::new_unchecked(&mut f[14..]).fill_checksum();
    let meta = parse_frame(&f).expect("first fragment");
    assert!(meta.first_fragment);
    nat::dnat(&mut f, &meta, RS, 5300).expect("translated");
    assert_eq!(udp_checksum_state(&f, 14), None);
    // The same datagram unfragmented gets a full, valid checksum.
    let mut g = frame.clone();
    let meta = parse_frame(&g).expect("valid");
    nat::dnat(&mut g, &meta, RS, 5300).expect("translated");
    assert_eq!(udp_checksum_state(&g, 14), Some(true));
}

#[test]
fn tunnel_refuses_what_it_cannot_carry() {
    // A 65535-byte inner packet does not fit behind 20 more bytes.
    let mut frame = vec![0u8; 14 + 65535];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let repr = ipv4::Repr {
        src: Ipv4Addr::new(203, 0, 113, 5),
        dst: Ipv4Addr::new(192, 0, 2, 1),
        protocol: 253,
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: false,
        payload_len: 65535 - 20,
    };
    repr.emit(&mut frame[14..]).expect("fits");
    let meta = parse_frame(&frame).expect("valid");
    let mut buf = vec![0u8; 20];
    buf.extend_from_slice(&frame);
    let before = buf.clone();
    assert_eq!(
        tun::encap(&mut buf, &meta, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 0),
        Err(DropReason::PacketTooBig)
    );
    assert_eq!(buf, before);
    // ARP is not IP: nothing to tunnel.
    let arp = input("arp_reply");
    let meta = parse_frame(&arp).expect("valid");
    let mut buf = vec![0u8; 20];
    buf.extend_from_slice(&arp);
    assert!(tun::encap(&mut buf, &meta, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 0).is_err());
}

#[test]
fn no_icmp_error_about_an_icmp_error() {
    let frame = input("icmp_snat_port_unreachable_udp");
    let meta = parse_frame(&frame).expect("valid");
    let l2 = L2 {
        src: MAC,
        dst: MAC,
        vlan_tci: None,
    };
    let mut out = [0u8; icmp_build::MAX_ERROR_FRAME_LEN];
    let offending = &frame[usize::from(meta.l3_offset)..];
    assert_eq!(
        icmp_build::dest_unreachable(&mut out, &l2, Ipv4Addr::LOCALHOST, offending, 3, 0),
        Err(DropReason::IcmpErrorSuppressed)
    );
    // ... but one about an echo request is fine.
    let echo = input("echo_reply");
    let offending = &echo[14..];
    let n = icmp_build::time_exceeded(&mut out, &l2, Ipv4Addr::LOCALHOST, offending, 0)
        .expect("allowed");
    let m = parse_frame(&out[..n]).expect("valid");
    assert_eq!((m.icmp_type, m.icmp_code), (11, 0));
    assert_eq!(checksum::checksum(&out[34..n]), 0);
}

#[test]
fn echo_reply_refuses_non_requests_and_bad_checksums() {
    let mut reply = input("echo_reply");
    let meta = parse_frame(&reply).expect("valid");
    icmp_build::echo_reply(&mut reply, &meta).expect("reply");
    let meta = parse_frame(&reply).expect("valid");
    let before = reply.clone();
    assert_eq!(
        icmp_build::echo_reply(&mut reply, &meta),
        Err(DropReason::NotEchoRequest)
    );
    let mut bad = input("echo_reply");
    let meta = parse_frame(&bad).expect("valid");
    let at = usize::from(meta.l4_offset) + 10;
    bad[at] ^= 1;
    let snapshot = bad.clone();
    assert_eq!(
        icmp_build::echo_reply(&mut bad, &meta),
        Err(DropReason::BadIcmpChecksum)
    );
    assert_eq!(bad, snapshot);
    let tcp = input("nat_in_tcp_data");
    let meta = parse_frame(&tcp).expect("valid");
    let mut t = tcp.clone();
    assert_eq!(
        icmp_build::echo_reply(&mut t, &meta),
        Err(DropReason::NotEchoRequest)
    );
    assert_eq!(t, tcp);
    assert_eq!(reply, before);
}

#[test]
fn embedded_flow_reads_the_quote_for_the_reverse_lookup() {
    let frame = input("icmp_dnat_frag_needed_short_quote");
    let meta = parse_frame(&frame).expect("valid");
    let flow = icmp_nat::embedded_flow(&frame, &meta).expect("quote");
    assert_eq!(flow.icmp_type, 3);
    assert_eq!(flow.proto, 6);
    assert_eq!(
        (flow.src, flow.src_port),
        (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80)
    );
    assert_eq!(
        (flow.dst, flow.dst_port),
        (IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5)), 40000)
    );
    // A quote cut below IP header + 8 bytes is refused.
    let mut short = frame.clone();
    let l3 = usize::from(meta.l3_offset);
    let new_total = meta.total_len - 1;
    short[l3 + 2..l3 + 4].copy_from_slice(&new_total.to_be_bytes());
    ipv4::Packet::new_unchecked(&mut short[l3..]).fill_checksum();
    let m = parse_frame(&short).expect("valid");
    assert_eq!(
        icmp_nat::embedded_flow(&short, &m),
        Err(DropReason::BadIcmpQuote)
    );
    let udp = input("nat_in_udp");
    let m = parse_frame(&udp).expect("valid");
    assert_eq!(
        icmp_nat::embedded_flow(&udp, &m),
        Err(DropReason::NotIcmpError)
    );
}

#[test]
fn tunnel_outer_header_field_by_field() {
    for (name, inner_tos, outer_tos, df) in [
        ("tun_tcp_df", 0x28, 0x28, true),
        ("tun_udp_ce_no_df", 0xbb, 0xba, false),
        ("tun_vlan_ect1_padded", 0x01, 0x01, true),
    ] {
        let case = cases::load()
            .into_iter()
            .find(|c| c.name == name)
            .expect("golden case");
        let meta = parse_frame(&case.input).expect("valid");
        let l2 = usize::from(meta.l3_offset);
        let mut buf = vec![0xee; tun::OUTER_HEADER_LEN];
        buf.extend_from_slice(&case.input);
        let (src, dst) = (
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(198, 51, 100, 10),
        );
        tun::encap(&mut buf, &meta, src, dst, 0x0777).expect("encapsulated");
        assert_eq!(
            buf[..l2],
            case.input[..l2],
            "{name}: L2 header moved intact"
        );
        let outer = ipv4::Packet::new_checked(&buf[l2..]).expect("outer header");
        assert_eq!((outer.version(), outer.header_len()), (4, 20), "{name}");
        assert_eq!(outer.tos(), outer_tos, "{name}: tos");
        assert_eq!(outer.total_len(), meta.total_len + 20, "{name}: length");
        assert_eq!(outer.ident(), 0x0777, "{name}: ident");
        assert_eq!(outer.dont_frag(), df, "{name}: DF copied");
        assert!(!outer.is_fragment(), "{name}: MF/offset clear");
        assert_eq!(outer.ttl(), meta.ttl - 1, "{name}: TTL after decrement");
        assert_eq!(outer.protocol(), 4, "{name}: IPIP");
        assert!(outer.verify_checksum(), "{name}: outer checksum");
        assert_eq!((outer.src_addr(), outer.dst_addr()), (src, dst), "{name}");
        let inner = ipv4::Packet::new_checked(outer.payload()).expect("inner header");
        assert_eq!(inner.tos(), inner_tos, "{name}: inner TOS untouched");
        assert_eq!(inner.ttl(), meta.ttl - 1, "{name}: inner TTL decremented");
        assert!(inner.verify_checksum(), "{name}: inner checksum patched");
        let inner_l4 = l2 + 20 + usize::from(meta.ip_header_len);
        let orig_l4 = usize::from(meta.l4_offset);
        assert_eq!(
            buf[inner_l4..],
            case.input[orig_l4..],
            "{name}: payload and padding kept"
        );
    }
    assert_eq!(tun::mtu_check(1480, 1500, true), tun::TunMtu::Ok);
    assert_eq!(
        tun::mtu_check(1500, 1500, true),
        tun::TunMtu::NeedFrag { mtu: 1480 }
    );
    assert_eq!(tun::mtu_check(1500, 1500, false), tun::TunMtu::Fragment);
    assert_eq!(tun::mtu_check(60, 80, false), tun::TunMtu::TooSmall);
}

#[test]
fn udp_first_fragment_is_translated_like_the_whole_datagram() {
    let case = cases::load()
        .into_iter()
        .find(|c| c.name == "nat_in_udp")
        .expect("golden case");
    let (l3, l4) = (14usize, 34usize);
    // First fragment: IP header + the first 16 bytes of the datagram (a multiple of 8), MF.
    let mut frag = case.input[..l4 + 16].to_vec();
    frag[l3 + 2..l3 + 4].copy_from_slice(&36u16.to_be_bytes());
    frag[l3 + 6] = 0x20;
    ipv4::Packet::new_unchecked(&mut frag[l3..]).fill_checksum();
    let meta = parse_frame(&frag).expect("first fragment parses: UDP length is the datagram's");
    assert!(meta.first_fragment);
    assert_eq!((meta.src_port, meta.dst_port), (5353, 53));
    nat::dnat(&mut frag, &meta, RS, 5300).expect("translated");
    // Reassembled with the untouched rest, it is exactly what scapy built for the datagram.
    let mut datagram = frag[l4..].to_vec();
    datagram.extend_from_slice(&case.input[l4 + 16..]);
    assert_eq!(datagram, case.expected[l4..]);
}
