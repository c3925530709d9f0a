//! libFuzzer target over director's packet layer: `parse_frame` and every transform.
//!
//! Input: one control byte, then the frame. The control byte picks the meta handed to the
//! transforms: the frame's own (when it parses) or a shifted one, so that transforms also
//! face offsets that do not match the bytes. Invariants: no panic; a refusing in-place
//! transform leaves the frame untouched; with the frame's own meta, a successful transform
//! yields a frame that parses again; built ICMP errors parse with valid checksums; the fast
//! path's fixed-offset view (`plain`) accepts only frames `parse_frame` accepts, gives the
//! same meta, and its rewrites give the full rewrites' bytes.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use director::wire::ethernet::L2;
use director::wire::nat::NatDeltas;
use director::wire::{
    arp_build, checksum, dr, icmp_build, icmp_nat, ipv4, nat, parse_frame, plain, tcp_reset, tun,
    DropReason, MacAddr, PacketKind, PacketMeta,
};
use libfuzzer_sys::fuzz_target;

const RS: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

type Transform = fn(&mut Vec<u8>, &PacketMeta) -> Result<(), DropReason>;

const IN_PLACE: [(&str, Transform); 8] = [
    ("dnat", |f, m| nat::dnat(f, m, RS, 8080)),
    ("snat", |f, m| nat::snat(f, m, VIP, 80)),
    ("dr", |f, m| dr::forward(f, m, MAC, MAC)),
    ("echo_reply", |f, m| icmp_build::echo_reply(f, m)),
    ("icmp_dnat", |f, m| icmp_nat::dnat(f, m, RS, 8080)),
    ("icmp_snat", |f, m| icmp_nat::snat(f, m, VIP, 80)),
    ("arp_reply", |f, m| arp_build::reply_in_place(f, m, MAC)),
    ("tun", |f, m| {
        let mut buf = vec![0x5a; tun::OUTER_HEADER_LEN];
        buf.extend_from_slice(f);
        let (src, dst) = (
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(198, 51, 100, 10),
        );
        tun::encap(&mut buf, m, src, dst, 9)?;
        *f = buf;
        Ok(())
    }),
];

fn exercise(frame: &[u8], meta: &PacketMeta, own_meta: bool) {
    for (name, transform) in IN_PLACE {
        let mut f = frame.to_vec();
        match transform(&mut f, meta) {
            Err(_) => assert_eq!(f, frame, "{name} refused but wrote"),
            Ok(()) if own_meta => {
                if let Err(e) = parse_frame(&f) {
                    panic!("{name} produced an unparsable frame: {e}");
                }
            }
            Ok(()) => {}
        }
    }
    let _ = icmp_nat::embedded_flow(frame, meta);
    let l2 = L2 {
        src: MAC,
        dst: MAC,
        vlan_tci: None,
    };
    let offending = frame.get(usize::from(meta.l3_offset)..).unwrap_or(&[]);
    let mut out = [0u8; icmp_build::MAX_ERROR_FRAME_LEN];
    for time_exceeded in [false, true] {
        let src = Ipv4Addr::LOCALHOST;
        let built = if time_exceeded {
            icmp_build::time_exceeded(&mut out, &l2, src, offending, 0)
        } else {
            icmp_build::dest_unreachable(&mut out, &l2, src, offending, 4, 1400)
        };
        if let Ok(n) = built {
            let m = parse_frame(&out[..n]).expect("built errors parse");
            assert_eq!(m.kind, PacketKind::Icmp);
            assert_eq!(m.icmp_type, if time_exceeded { 11 } else { 3 });
            assert_eq!(checksum::checksum(&out[usize::from(m.l4_offset)..n]), 0);
        }
    }
    // A reset for whatever the frame holds: a valid TCP segment to the sender, or nothing.
    let mut out = [0u8; tcp_reset::MAX_RESET_FRAME_LEN];
    if let Ok(n) = tcp_reset::build(&mut out, &l2, offending) {
        let m = parse_frame(&out[..n]).expect("built resets parse");
        assert_eq!(m.kind, PacketKind::Tcp);
        assert_ne!(m.tcp_flags & 0x04, 0, "a reset");
    }
}

/// Meta of an Ethernet + IPv4 + UDP frame (TTL from `ttl`).
fn udp_meta(ttl: u8) -> PacketMeta {
    let mut frame = [0u8; 14 + 20 + 8];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    let repr = ipv4::Repr {
        src: Ipv4Addr::new(203, 0, 113, 5),
        dst: Ipv4Addr::new(192, 0, 2, 1),
        protocol: ipv4::proto::UDP,
        ttl,
        tos: 0,
        ident: 1,
        dont_frag: true,
        payload_len: 8,
    };
    repr.emit(&mut frame[14..34]).expect("20 bytes");
    frame[34..42].copy_from_slice(&[0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00]);
    parse_frame(&frame).expect("valid UDP frame")
}

/// The fast path's view agrees with the full parser and rewrites.
fn check_plain(frame: &[u8]) {
    let Some(p) = plain::parse_plain(frame) else {
        return;
    };
    let meta = parse_frame(frame).expect("a plain frame parses");
    assert_eq!(plain::meta(frame, &p), meta, "plain meta differs");
    if plain::dnat_ready(frame, &p) {
        let (a, port) = (Ipv4Addr::new(198, 51, 100, 10), 8080);
        let (mut fast, mut full) = (frame.to_vec(), frame.to_vec());
        let d = NatDeltas::new(p.dst(), p.dport(), a, port);
        assert!(plain::dnat(&mut fast, &p, a, port, &d));
        nat::dnat(&mut full, &meta, IpAddr::V4(a), port).expect("full dnat");
        assert_eq!(fast, full, "plain dnat differs");
        let (mut fast, mut full) = (frame.to_vec(), frame.to_vec());
        let d = NatDeltas::new(a, port, p.src(), p.sport());
        assert!(plain::snat(&mut fast, &p, a, port, &d));
        nat::snat(&mut full, &meta, IpAddr::V4(a), port).expect("full snat");
        assert_eq!(fast, full, "plain snat differs");
    }
    let (mut fast, mut full) = (frame.to_vec(), frame.to_vec());
    assert!(plain::forward_dr(&mut fast));
    dr::forward(&mut full, &meta, MAC, MAC).expect("full dr");
    full[..12].copy_from_slice(&frame[..12]);
    assert_eq!(fast, full, "plain dr differs");
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, frame)) = data.split_first() else {
        return;
    };
    check_plain(frame);
    match parse_frame(frame) {
        Ok(meta) if control & 1 == 0 => exercise(frame, &meta, true),
        Ok(mut meta) => {
            meta.l3_offset = meta.l3_offset.wrapping_add(u16::from(control >> 1));
            exercise(frame, &meta, false);
        }
        // A valid UDP frame's meta against bytes that do not parse.
        Err(_) => exercise(frame, &udp_meta(control), false),
    }
});
