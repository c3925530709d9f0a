//! VS/DR ("Route"): the IP packet is forwarded unchanged to the real server's MAC, except for
//! TTL - 1 and the patched header checksum (ip_vs_dr_xmit + decrement_ttl in ip_vs_xmit.c).

use super::ethernet::{self, MacAddr};
use super::ipv4;
use super::parse::{ipv4_mut, PacketMeta};
use super::DropReason;

/// Rewrites the MACs (`src_mac` = our port, `dst_mac` = the real server or next hop) and
/// decrements the TTL. TTL <= 1 gives [`DropReason::TtlExceeded`] with the frame untouched.
#[inline]
pub fn forward(
    frame: &mut [u8],
    meta: &PacketMeta,
    src_mac: MacAddr,
    dst_mac: MacAddr,
) -> Result<(), DropReason> {
    if forward_in_place(frame, meta, src_mac, dst_mac) {
        return Ok(());
    }
    forward_checked(frame, meta, src_mac, dst_mac)
}

/// The common case, trusting `meta`'s offsets after one length check (the packet it
/// describes is all there): an IPv4 packet with TTL > 1. Returns false, having written
/// nothing, otherwise.
#[inline(always)]
fn forward_in_place(
    frame: &mut [u8],
    meta: &PacketMeta,
    src_mac: MacAddr,
    dst_mac: MacAddr,
) -> bool {
    if !meta.is_ipv4() {
        return false;
    }
    let Some(packet) = frame.get_mut(..meta.frame_end()) else {
        return false;
    };
    let Some((l2, l3)) = packet.split_at_mut_checked(usize::from(meta.l3_offset)) else {
        return false;
    };
    let (Some(macs), Some(ip)) = (
        l2.first_chunk_mut::<{ ethernet::MACS_LEN }>(),
        l3.first_chunk_mut::<{ ipv4::MIN_HEADER_LEN }>(),
    ) else {
        return false;
    };
    if ipv4::Packet::new_unchecked(ip).decrement_ttl().is_err() {
        return false;
    }
    let mut eth = ethernet::Frame::new_unchecked(macs);
    eth.set_src_addr(src_mac);
    eth.set_dst_addr(dst_mac);
    true
}

/// Everything [`forward_in_place`] leaves: re-checks the frame, refuses with the reason.
#[inline(never)]
fn forward_checked(
    frame: &mut [u8],
    meta: &PacketMeta,
    src_mac: MacAddr,
    dst_mac: MacAddr,
) -> Result<(), DropReason> {
    if frame.len() < ethernet::HEADER_LEN {
        return Err(DropReason::TruncatedL2);
    }
    ipv4_mut(frame, meta)?.decrement_ttl()?;
    ethernet::set_macs(frame, src_mac, dst_mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{checksum, parse_frame};

    fn frame(ttl: u8) -> Vec<u8> {
        let mut f = vec![
            2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0x00, 0x00, 0x1c, 0x00, 0x01,
            0x00, 0x00, ttl, 0x11, 0, 0, 203, 0, 113, 5, 192, 0, 2, 1, 0x9c, 0x40, 0x00, 0x35,
            0x00, 0x08, 0x00, 0x00,
        ];
        let check = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&check.to_be_bytes());
        f
    }

    #[test]
    fn forwards_with_new_macs_and_ttl() {
        let mut f = frame(2);
        let meta = parse_frame(&f).expect("valid");
        let before = f.clone();
        forward(&mut f, &meta, MacAddr([0xaa; 6]), MacAddr([0xbb; 6])).expect("forwarded");
        assert_eq!(f[..6], [0xbb; 6]);
        assert_eq!(f[6..12], [0xaa; 6]);
        let m = parse_frame(&f).expect("checksum still verifies");
        assert_eq!(m.ttl, 1);
        // Only MACs, TTL and checksum changed.
        for (i, (a, b)) in before.iter().zip(&f).enumerate() {
            if !(i < 12 || i == 22 || i == 24 || i == 25) {
                assert_eq!(a, b, "byte {i}");
            }
        }
        let mut g = f.clone();
        assert_eq!(
            forward(&mut g, &meta, MacAddr([0xcc; 6]), MacAddr([0xdd; 6])),
            Err(DropReason::TtlExceeded)
        );
        assert_eq!(g, f);
    }

    #[test]
    fn in_place_path_equals_the_checked_path_byte_for_byte() {
        let mut in_place = 0;
        for seed in 0..3_000u64 {
            let frame = crate::wire::test_frames::random_frame(seed);
            let meta = parse_frame(&frame).expect("random frame parses");
            let (src, dst) = (MacAddr([seed as u8; 6]), MacAddr([!seed as u8; 6]));
            let mut expected = frame.clone();
            let want = forward_checked(&mut expected, &meta, src, dst);
            let mut got = frame.clone();
            assert_eq!(forward(&mut got, &meta, src, dst), want, "seed {seed}");
            assert_eq!(got, expected, "seed {seed}");
            in_place += usize::from(forward_in_place(&mut frame.clone(), &meta, src, dst));
        }
        assert!(in_place > 1_000, "in place only {in_place} times");
    }
}
