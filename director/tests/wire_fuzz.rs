//! Property tests (the stable-toolchain stand-in for fuzz/): random bytes and mutated golden
//! frames thrown at `parse_frame` and every transform. Nothing may panic; a refusing
//! transform must leave the frame untouched; a transform applied with the frame's own meta
//! must produce a frame that parses again, with L4 checksums still valid if they were.

#[path = "golden/cases.rs"]
mod cases;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use director::wire::ethernet::L2;
use director::wire::{
    arp_build, checksum, dr, icmp_build, icmp_nat, ipv4, nat, parse_frame, tun, DropReason,
    MacAddr, PacketKind, PacketMeta,
};
use proptest::prelude::*;

fn golden_inputs() -> &'static [Vec<u8>] {
    static INPUTS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    INPUTS.get_or_init(|| {
        cases::load()
            .into_iter()
            .filter(|c| c.has_input())
            .map(|c| c.input)
            .collect()
    })
}

const RS: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10));
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

/// Whether the TCP/UDP checksum of a parsed IPv4 frame verifies (None: not TCP/UDP, UDP
/// without checksum, or a fragment).
fn l4_checksum_ok(frame: &[u8], meta: &PacketMeta) -> Option<bool> {
    if meta.is_fragment || !matches!(meta.kind, PacketKind::Tcp | PacketKind::Udp) {
        return None;
    }
    let ip = ipv4::Packet::new_checked(&frame[usize::from(meta.l3_offset)..]).ok()?;
    let l4 = ip.payload();
    if meta.kind == PacketKind::Udp && l4[6..8] == [0, 0] {
        return None;
    }
    let partial =
        checksum::pseudo_header_v4(ip.src_addr(), ip.dst_addr(), meta.proto, l4.len() as u16)
            + checksum::sum(l4);
    Some(checksum::finish(partial) == 0)
}

/// Runs every transform on a copy of `frame` with `meta`. `own_meta`: `meta` is
/// `parse_frame(frame)`, so successful results must be well formed.
fn exercise(frame: &[u8], meta: &PacketMeta, own_meta: bool) {
    type Transform = fn(&mut Vec<u8>, &PacketMeta) -> Result<(), DropReason>;
    let in_place: [(&str, Transform); 8] = [
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
            tun::encap(
                &mut buf,
                m,
                Ipv4Addr::new(198, 51, 100, 1),
                Ipv4Addr::new(198, 51, 100, 10),
                9,
            )?;
            *f = buf;
            Ok(())
        }),
    ];
    let l4_before = if own_meta {
        l4_checksum_ok(frame, meta)
    } else {
        None
    };
    for (name, transform) in in_place {
        let mut f = frame.to_vec();
        match transform(&mut f, meta) {
            Err(_) => assert_eq!(f, frame, "{name} refused but wrote"),
            Ok(()) if own_meta => {
                let after = parse_frame(&f)
                    .unwrap_or_else(|e| panic!("{name} produced an unparsable frame: {e}"));
                if matches!(name, "dnat" | "snat") && l4_before == Some(true) {
                    assert_eq!(
                        l4_checksum_ok(&f, &after),
                        Some(true),
                        "{name} broke L4 checksum"
                    );
                }
            }
            Ok(()) => {}
        }
    }
    let _ = icmp_nat::embedded_flow(frame, meta);
    let l2 = L2 {
        src: MAC,
        dst: MAC,
        vlan_tci: Some(7),
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
}

fn check(frame: &[u8]) {
    match parse_frame(frame) {
        Ok(meta) => {
            assert!(meta.frame_end() <= frame.len());
            exercise(frame, &meta, true);
            // The same meta against a shifted view of the frame.
            let mut shifted = meta;
            shifted.l3_offset = meta.l3_offset.wrapping_add(3);
            exercise(frame, &shifted, false);
        }
        Err(_) => {
            // Transforms handed a meta from another frame must still not panic.
            if let Some(other) = golden_inputs().first() {
                let meta = parse_frame(other).expect("golden input parses");
                exercise(frame, &meta, false);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..160)) {
        check(&frame);
    }

    #[test]
    fn random_ipv4_looking_frames_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..120),
        vlan in any::<bool>(),
        ihl in 0u8..16,
    ) {
        let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        if vlan {
            frame.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        }
        frame.extend_from_slice(&[0x08, 0x00, 0x40 | ihl]);
        frame.extend_from_slice(&tail);
        check(&frame);
    }

    #[test]
    fn mutated_golden_frames_never_panic(
        pick in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<proptest::sample::Index>(),
        do_cut in any::<bool>(),
        fix_ip_checksum in any::<bool>(),
    ) {
        let inputs = golden_inputs();
        let mut frame = inputs[pick.index(inputs.len())].clone();
        for (at, value) in edits {
            let i = at.index(frame.len());
            frame[i] = value;
        }
        if do_cut {
            frame.truncate(cut.index(frame.len() + 1));
        }
        if fix_ip_checksum {
            // Get past the header checksum so the deeper layers are exercised.
            for l3 in [14usize, 18] {
                if let Some(l3_bytes) = frame.get_mut(l3..) {
                    if let Ok(mut ip) = ipv4::Packet::new_checked(l3_bytes) {
                        ip.fill_checksum();
                    }
                }
            }
        }
        check(&frame);
    }
}
