//! Random test frames shared by the transforms' differential tests.

use super::checksum;
use super::ipv4::proto;

/// A random IPv4 TCP/UDP frame (tag or not, options or not, any TTL, ports, checksums,
/// fragment flags, padding) with a valid IP header checksum. xorshift, deterministic.
pub(crate) fn random_frame(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let r = next();
    let tagged = r & 1 != 0;
    let options = (r >> 1 & 3) as usize * 4;
    let is_udp = r >> 3 & 1 != 0;
    let payload = (r >> 4 & 31) as usize;
    let padding = (r >> 9 & 7) as usize;
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    if tagged {
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
    }
    f.extend_from_slice(&[0x08, 0x00]);
    let l3 = f.len();
    let l4_len = if is_udp { 8 } else { 20 } + payload;
    let total = 20 + options + l4_len;
    f.resize(l3 + total + padding, 0);
    for b in &mut f[l3..] {
        *b = next() as u8;
    }
    let ip = &mut f[l3..];
    ip[0] = 0x45 + (options / 4) as u8;
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip[6] &= 0x60; // DF/MF as they come, offset 0
    ip[7] = 0;
    ip[8] = [0, 1, 2, 64, 255][(r >> 12 & 7) as usize % 5];
    ip[9] = if is_udp { proto::UDP } else { proto::TCP };
    ip[10..12].copy_from_slice(&[0, 0]);
    let check = checksum::checksum(&ip[..20 + options]);
    ip[10..12].copy_from_slice(&check.to_be_bytes());
    let l4 = &mut ip[20 + options..];
    if is_udp {
        l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        if r >> 15 & 3 == 0 {
            l4[6..8].copy_from_slice(&[0, 0]);
        }
    } else {
        l4[12] = 0x50;
    }
    f
}
