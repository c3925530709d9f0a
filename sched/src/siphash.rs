//! SipHash-c-d over a short message, as the kernel's hsiphash uses it: on 64-bit kernels
//! hsiphash is SipHash-1-3 with a 128-bit key, its 64-bit result truncated to 32 bits.

#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash with `C` compression and `D` finalization rounds of `data` under key (k0, k1):
/// the reference the specialised hash below is tested against (itself tested against std's
/// SipHash-2-4 and the paper's vector).
#[cfg(test)]
pub(crate) fn siphash<const C: usize, const D: usize>(k0: u64, k1: u64, data: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let m = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        v[3] ^= m;
        for _ in 0..C {
            round(&mut v);
        }
        v[0] ^= m;
    }
    let mut b = (data.len() as u64) << 56;
    for (i, byte) in chunks.remainder().iter().enumerate() {
        b |= (*byte as u64) << (8 * i);
    }
    v[3] ^= b;
    for _ in 0..C {
        round(&mut v);
    }
    v[0] ^= b;
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The kernel's hsiphash (64-bit build) of one u32 in CPU (little-endian) byte order: the
/// generic SipHash-1-3 specialised to a 4-byte message (straight-line code).
#[inline]
pub(crate) fn hsiphash_u32(key: (u64, u64), value: u32) -> u32 {
    let mut v = [
        key.0 ^ 0x736f_6d65_7073_6575,
        key.1 ^ 0x646f_7261_6e64_6f6d,
        key.0 ^ 0x6c79_6765_6e65_7261,
        key.1 ^ 0x7465_6462_7974_6573,
    ];
    let b = (4u64 << 56) | value as u64;
    v[3] ^= b;
    round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    round(&mut v);
    round(&mut v);
    round(&mut v);
    (v[0] ^ v[1] ^ v[2] ^ v[3]) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our generic SipHash at 2-4 must equal std's SipHash-2-4; 1-3 is the same code with
    /// other round counts.
    #[test]
    #[allow(deprecated)]
    fn matches_std_siphash24() {
        use std::hash::{Hasher, SipHasher};
        for len in 0..20usize {
            let data: Vec<u8> = (0..len as u8)
                .map(|b| b.wrapping_mul(37).wrapping_add(5))
                .collect();
            let mut h = SipHasher::new_with_keys(0x0706050403020100, 0x0f0e0d0c0b0a0908);
            h.write(&data);
            assert_eq!(
                siphash::<2, 4>(0x0706050403020100, 0x0f0e0d0c0b0a0908, &data),
                h.finish()
            );
        }
    }

    #[test]
    fn specialised_u32_equals_generic_1_3() {
        let key = (2654435761, 2654446892);
        for v in [0u32, 1, 0xC000_0201, u32::MAX, 0x1234_5678] {
            let generic = siphash::<1, 3>(key.0, key.1, &v.to_le_bytes()) as u32;
            assert_eq!(hsiphash_u32(key, v), generic);
        }
    }

    /// Reference vector from the SipHash paper (key 00..0f, message 00..0e): 0xa129ca6149be45e5.
    #[test]
    fn paper_vector() {
        let data: Vec<u8> = (0..15u8).collect();
        assert_eq!(
            siphash::<2, 4>(0x0706050403020100, 0x0f0e0d0c0b0a0908, &data),
            0xa129_ca61_49be_45e5
        );
    }
}
