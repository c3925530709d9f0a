//! The Internet checksum: RFC 1071 sums, RFC 1624 incremental updates, pseudo-header sums.
//!
//! A *partial sum* is a `u32` holding the one's-complement sum of 16-bit big-endian words,
//! already folded to 16 bits. Partial sums of pieces at even offsets may be added (a few `u32`
//! additions cannot overflow) and are turned into a header value with [`finish`].

use std::net::{Ipv4Addr, Ipv6Addr};

/// Folds a wide sum to 16 bits with end-around carry. A non-zero input never folds to 0.
#[inline]
fn fold(mut acc: u64) -> u32 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
}

/// Folds a 32-bit sum to 16 bits with end-around carry, without a loop: two folds always
/// suffice for a `u32` (the first leaves at most 0x1fffe). Same result as [`fold`].
#[inline(always)]
fn fold32(acc: u32) -> u16 {
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Partial sum of `data` (RFC 1071); an odd last byte is padded with a zero byte.
///
/// Adds 32-bit words (2^16 = 1 mod 0xffff, so this equals the 16-bit word sum after folding).
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let mut tail = [0u8; 4];
    let rest = words.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    fold(acc)
}

/// Header value for a partial sum (or a sum of partial sums): folded and complemented.
#[inline]
pub fn finish(partial: u32) -> u16 {
    !(fold(u64::from(partial)) as u16)
}

/// Checksum of `data` as stored in a header (the field itself zeroed in `data`).
/// Verifying: the checksum of data that includes a correct checksum field is 0.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(data))
}

/// Whether the 20 bytes of an option-less IPv4 header, checksum field included, verify: the
/// same answer as `checksum(header) == 0`, in straight-line code.
///
/// RFC 1071's byte-order independence: the header's native-order 32-bit words sum to a value
/// congruent (mod 0xffff) to the big-endian 16-bit word sum times 1 or 2^8, and 2^8 is
/// invertible mod 0xffff, so one is 0 (mod 0xffff) exactly when the other is. A correct
/// checksum makes the folded big-endian sum 0xffff: congruent to 0 and not all-zero bytes.
/// `header_word_sum` keeps both properties (congruent, 0 only for zero bytes); the
/// divisibility test is `is_nonzero_multiple_of_ffff`'s multiply.
#[inline(always)]
pub fn verify_ipv4_header(header: &[u8; 20]) -> bool {
    is_nonzero_multiple_of_ffff(header_word_sum(header))
}

/// Whether `acc` is a non-zero multiple of 0xffff (`acc != 0 && acc % 0xffff == 0`), with one
/// multiply and one compare instead of a division.
///
/// Let Q = 0x0001_0001 = 2^16 + 1. Then 0xffff * Q = 2^32 - 1, so 0xffff * (-Q) = 1
/// (mod 2^32): multiplying by -Q undoes multiplying by 0xffff and is a bijection of the u32
/// values. The multiples of 0xffff among them are q * 0xffff for q = 0 ..= Q (Q * 0xffff is
/// the largest u32), each sent to q; so they are exactly the values sent into 0 ..= Q, and 0
/// is the only one sent to 0. Hence `acc` qualifies iff m = acc * (-Q) lies in 1 ..= Q, iff
/// m - 1 < Q (wrapping); and m - 1 = -(acc * Q) - 1 = !(acc * Q), so the test is
/// `!(acc * Q) < Q`, that is `acc * Q > !Q` (products wrapping).
#[inline(always)]
fn is_nonzero_multiple_of_ffff(acc: u32) -> bool {
    const Q: u32 = 0x0001_0001;
    acc.wrapping_mul(Q) > !Q
}

/// The five native-order 32-bit words of a 20-byte header summed with end-around carry (one
/// add-with-carry chain, the carry out of the last add added back).
///
/// Each carry out of bit 31 is worth 2^32 = 1 (mod 2^32 - 1) and goes back in as 1, so the
/// result is congruent to the plain sum mod 2^32 - 1, hence mod its divisor 0xffff. It is 0
/// only for zero bytes: a last add without carry out that gives 0 adds only zeros (its carry
/// in included), and so, step by step, does every add before it.
#[inline(always)]
fn header_word_sum(header: &[u8; 20]) -> u32 {
    // Whole 4-byte copies (one load each; bytes assembled one by one would let the compiler
    // rebuild a word from other loads of its bytes).
    let (words, _) = header.as_chunks::<4>();
    let word = |i: usize| u32::from_ne_bytes(words[i]);
    let (acc, carry) = word(0).overflowing_add(word(1));
    let (acc, carry) = acc.carrying_add(word(2), carry);
    let (acc, carry) = acc.carrying_add(word(3), carry);
    let (acc, carry) = acc.carrying_add(word(4), carry);
    // After a carry out the sum left is at most 2^32 - 2: adding the carry back cannot carry
    // again.
    acc + u32::from(carry)
}

/// [`checksum`] of 20 bytes (an option-less IPv4 header, checksum field zeroed), in
/// straight-line code: the native-order words summed (`header_word_sum`) and folded (see
/// [`verify_ipv4_header`] for why the byte order does not matter), swapped back at the end.
#[inline]
pub fn ipv4_header_checksum(header: &[u8; 20]) -> u16 {
    let native = !fold32(header_word_sum(header));
    u16::from_be_bytes(native.to_ne_bytes())
}

/// RFC 1624 update of `check` for several 16-bit fields at once: `delta` is the sum of
/// `!old + new` over the changed 16-bit words (each term below 2^17; at most a few thousand
/// terms). Equals applying [`update16`] word by word (end-around carry is associative).
#[inline]
pub fn update_sum(check: u16, delta: u32) -> u16 {
    !fold32(u32::from(!check) + delta)
}

/// [`update_sum`] for a delta already folded to 16 bits: one end-around carry suffices
/// (`!check + delta` is at most 0x1fffe), so this is an add and an add-with-carry. Equals
/// `update_sum(check, u32::from(delta))`.
#[inline(always)]
pub fn update_folded(check: u16, delta: u16) -> u16 {
    let (sum, carry) = (!check).overflowing_add(delta);
    // With a carry, `sum` is at most 0xfffe: adding it back cannot overflow.
    !(sum + u16::from(carry))
}

/// `!old + new` for a 16-bit field, a term of [`update_sum`]'s delta.
#[inline]
pub fn delta16(old: u16, new: u16) -> u32 {
    u32::from(!old) + u32::from(new)
}

/// `!old + new` for a 32-bit field (its two 16-bit halves), a term of [`update_sum`]'s delta.
#[inline]
pub fn delta32(old: u32, new: u32) -> u32 {
    delta16((old >> 16) as u16, (new >> 16) as u16) + delta16(old as u16, new as u16)
}

/// [`update_sum`]'s term for a TTL decremented by one (from a TTL of at least 1), with the
/// TTL/protocol word read in the CPU's byte order: `!old + new` is the same for every TTL
/// and protocol, `!x + (x - 1 in the TTL byte)` = `!(1 in the TTL byte)`.
pub const TTL_DECREMENT_NE: u32 = !u16::from_ne_bytes([1, 0]) as u32;

/// Partial sum of the IPv4 pseudo header (RFC 793/768): addresses, protocol, L4 length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4_len: u16) -> u32 {
    let acc = u64::from(u32::from(src))
        + u64::from(u32::from(dst))
        + u64::from(protocol)
        + u64::from(l4_len);
    fold(acc)
}

/// Partial sum of the IPv6 pseudo header (RFC 8200 section 8.1).
#[inline]
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, l4_len: u32) -> u32 {
    let acc = u64::from(sum(&src.octets()))
        + u64::from(sum(&dst.octets()))
        + u64::from(next_header)
        + u64::from(l4_len);
    fold(acc)
}

/// RFC 1624 eqn. 3 update of checksum `check` for a 16-bit field going from `old` to `new`:
/// `HC' = ~(~HC + ~m + m')`. Gives the value a full recomputation gives when `check` was
/// correct (0x0000 rather than 0xffff when the new sum is all ones, as RFC 1624 explains).
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!check) + u64::from(!old) + u64::from(new);
    !(fold(acc) as u16)
}

/// RFC 1624 update for a 32-bit field (an IPv4 address, a sequence number).
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let acc = u64::from(!check)
        + u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !(fold(acc) as u16)
}

/// RFC 1624 update for a 128-bit field (an IPv6 address).
#[inline]
pub fn update128(check: u16, old: u128, new: u128) -> u16 {
    let mut acc = u64::from(!check);
    for shift in (0..128).step_by(16) {
        acc += u64::from(!((old >> shift) as u16)) + u64::from((new >> shift) as u16);
    }
    !(fold(acc) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain 16-bit RFC 1071 reference, written the obvious way.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u32::from);
            acc += hi | lo;
            acc = (acc & 0xffff) + (acc >> 16);
        }
        !(acc as u16)
    }

    #[test]
    fn update_folded_equals_update_sum() {
        let mut x: u32 = 0x9e37_79b9;
        let mut deltas = vec![0u16, 1, 0x7fff, 0x8000, 0xfffe, 0xffff];
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            deltas.push(x as u16);
        }
        for check in 0..=u16::MAX {
            for &d in &deltas {
                assert_eq!(
                    update_folded(check, d),
                    update_sum(check, u32::from(d)),
                    "check {check:#x} delta {d:#x}"
                );
            }
        }
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to 0xddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn matches_reference_for_all_lengths_and_odd_tails() {
        let data: Vec<u8> = (0..97u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(checksum(&data[..len]), reference(&data[..len]), "len {len}");
        }
        assert_eq!(checksum(&[0xff; 64]), reference(&[0xff; 64]));
    }

    #[test]
    fn known_ipv4_header() {
        // Header from Wikipedia's IPv4 checksum example: checksum 0xb861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }

    #[test]
    fn incremental_equals_full_recompute() {
        let mut data: Vec<u8> = (0..40u32).map(|i| (i * 91 + 5) as u8).collect();
        data[10] = 0;
        data[11] = 0;
        let check = checksum(&data);
        for (at, new16) in [(4usize, 0xbeefu16), (6, 0x0000), (8, 0xffff), (12, 0x1234)] {
            let mut changed = data.clone();
            let old = u16::from_be_bytes([data[at], data[at + 1]]);
            changed[at..at + 2].copy_from_slice(&new16.to_be_bytes());
            assert_eq!(update16(check, old, new16), checksum(&changed), "at {at}");
        }
        let old32 = u32::from_be_bytes([data[12], data[13], data[14], data[15]]);
        let mut changed = data.clone();
        changed[12..16].copy_from_slice(&0xc633_640au32.to_be_bytes());
        assert_eq!(update32(check, old32, 0xc633_640a), checksum(&changed));
        let old128 = u128::from_be_bytes(data[20..36].try_into().expect("16 bytes"));
        let new128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001u128;
        let mut changed = data.clone();
        changed[20..36].copy_from_slice(&new128.to_be_bytes());
        assert_eq!(update128(check, old128, new128), checksum(&changed));
    }

    #[test]
    fn incremental_yields_zero_not_ffff_when_sum_is_all_ones() {
        // Data whose checksum becomes 0 after the change: full recompute gives 0, so must we.
        let data = [0x12u8, 0x34, 0x00, 0x00];
        let check = checksum(&data);
        let new = !0x1234u16; // sum 0x1234 + 0xedcb = 0xffff -> checksum 0
        assert_eq!(checksum(&[0xed, 0xcb, 0x12, 0x34]), 0);
        assert_eq!(update16(check, 0x0000, new), 0);
    }

    /// A deterministic byte stream (xorshift) for the exhaustive-ish comparisons below.
    fn bytes(seed: u64, n: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn straight_line_header_check_agrees_with_the_sum() {
        let mut verified = 0;
        for seed in 0..20_000u64 {
            let mut h: [u8; 20] = bytes(seed, 20).try_into().expect("20 bytes");
            if seed % 2 == 0 {
                // Make it valid, then maybe break one byte.
                h[10..12].copy_from_slice(&[0, 0]);
                let check = checksum(&h);
                h[10..12].copy_from_slice(&check.to_be_bytes());
                if seed % 4 == 0 {
                    h[(seed as usize / 4) % 20] ^= 1 << (seed % 8);
                }
            }
            let expected = checksum(&h) == 0;
            verified += usize::from(expected);
            assert_eq!(verify_ipv4_header(&h), expected, "header {h:02x?}");
        }
        assert!(verified > 4_000, "both outcomes exercised: {verified}");
        // Corner cases: all zero (sum 0, not a valid checksum) and all ones (valid).
        assert!(!verify_ipv4_header(&[0; 20]));
        assert_eq!(verify_ipv4_header(&[0xff; 20]), checksum(&[0xff; 20]) == 0);
        let mut h = [0u8; 20];
        h[10..12].copy_from_slice(&[0xff, 0xff]);
        assert!(verify_ipv4_header(&h));
    }

    #[test]
    fn nonzero_multiple_test_equals_the_remainder() {
        let expected = |x: u32| x != 0 && x.is_multiple_of(0xffff);
        // Every multiple of 0xffff in u32 and both its neighbours.
        for k in 0..=0x1_0001u32 {
            let m = k * 0xffff;
            for x in [m.wrapping_sub(1), m, m.wrapping_add(1)] {
                assert_eq!(is_nonzero_multiple_of_ffff(x), expected(x), "{x:#x}");
            }
        }
        for seed in 0..20_000u64 {
            let x = u32::from_ne_bytes(bytes(seed, 4).try_into().expect("4 bytes"));
            assert_eq!(is_nonzero_multiple_of_ffff(x), expected(x), "{x:#x}");
        }
    }

    /// The header checks with the checksum field as the only freedom: every value of it,
    /// on headers whose other words sum to 0, to 0xffff (the field 0x0000 and 0xffff both
    /// verify), and to values that make the word chain carry at every step.
    #[test]
    fn straight_line_header_check_on_every_checksum_value() {
        let mut headers = vec![[0u8; 20], [0xff; 20]];
        let mut h = [0u8; 20];
        h[0..2].copy_from_slice(&[0xff, 0xff]);
        headers.push(h);
        headers.push([
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ]);
        headers.push(bytes(7, 20).try_into().expect("20 bytes"));
        for base in headers {
            let mut valid = 0;
            for check in 0..=u16::MAX {
                let mut h = base;
                h[10..12].copy_from_slice(&check.to_be_bytes());
                let expected = checksum(&h) == 0;
                valid += usize::from(expected);
                assert_eq!(verify_ipv4_header(&h), expected, "header {h:02x?}");
            }
            // 0x0000 and 0xffff are the same value in one's complement: both verify where
            // the rest sums to 0xffff (or to 0, but for all-zero bytes), one value elsewhere.
            assert!((1..=2).contains(&valid), "{valid} valid for {base:02x?}");
        }
        let mut h = [0u8; 20];
        h[0..2].copy_from_slice(&[0xff, 0xff]);
        assert!(verify_ipv4_header(&h), "field 0x0000, rest 0xffff");
        h[10..12].copy_from_slice(&[0xff, 0xff]);
        assert!(verify_ipv4_header(&h), "field 0xffff, rest 0xffff");
        let mut h = [0u8; 20];
        assert!(!verify_ipv4_header(&h), "all zero");
        h[10..12].copy_from_slice(&[0xff, 0xff]);
        assert!(verify_ipv4_header(&h), "field 0xffff, rest 0");
    }

    /// The end-around word sum against the exact sum: the same residue mod 0xffff, and 0
    /// exactly for all-zero bytes.
    #[test]
    fn end_around_word_sum_keeps_the_residue() {
        let exact = |h: &[u8; 20]| -> u64 {
            h.chunks(4)
                .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
                .sum()
        };
        let mut headers: Vec<[u8; 20]> = vec![[0; 20], [0xff; 20], [0x80; 20], [1; 20]];
        for seed in 0..20_000u64 {
            let mut h: [u8; 20] = bytes(seed, 20).try_into().expect("20 bytes");
            // Force carries: some words all ones.
            for w in 0..5 {
                if seed >> w & 1 == 1 {
                    h[w * 4..w * 4 + 4].copy_from_slice(&[0xff; 4]);
                }
            }
            headers.push(h);
        }
        for h in headers {
            let s = header_word_sum(&h);
            assert_eq!(u64::from(s) % 0xffff, exact(&h) % 0xffff, "{h:02x?}");
            assert_eq!(s == 0, exact(&h) == 0, "{h:02x?}");
        }
    }

    #[test]
    fn straight_line_header_checksum_equals_the_loop() {
        for seed in 0..20_000u64 {
            let h: [u8; 20] = bytes(seed, 20).try_into().expect("20 bytes");
            assert_eq!(ipv4_header_checksum(&h), checksum(&h), "header {h:02x?}");
        }
        for fill in [0x00, 0x01, 0x80, 0xfe, 0xff] {
            assert_eq!(ipv4_header_checksum(&[fill; 20]), checksum(&[fill; 20]));
        }
    }

    #[test]
    fn one_update_for_several_fields_equals_successive_updates() {
        for seed in 0..20_000u64 {
            let b = bytes(seed, 14);
            let word = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
            let (check, old16, new16) = (word(0), word(2), word(4));
            let old32 = u32::from_be_bytes([b[6], b[7], b[8], b[9]]);
            let new32 = u32::from_be_bytes([b[10], b[11], b[12], b[13]]);
            let successive = update32(update16(check, old16, new16), old32, new32);
            let delta = delta16(old16, new16) + delta32(old32, new32);
            assert_eq!(update_sum(check, delta), successive, "seed {seed}");
        }
        // The all-ones corner: a sum of 0xffff must give 0x0000, as update16 does.
        assert_eq!(
            update_sum(0xffff, delta16(0xffff, 0)),
            update16(0xffff, 0xffff, 0)
        );
        assert_eq!(update_sum(0, delta16(0, 0)), update16(0, 0, 0));
    }

    #[test]
    fn ttl_decrement_term_is_constant() {
        for ttl in 1..=255u8 {
            for protocol in [0u8, 1, 6, 17, 255] {
                let check = 0x1234u16.wrapping_mul(u16::from(ttl)) ^ u16::from(protocol);
                let old = u16::from_be_bytes([ttl, protocol]);
                let new = u16::from_be_bytes([ttl - 1, protocol]);
                let by_word = update16(check, old, new);
                let ne = u16::from_ne_bytes(check.to_be_bytes());
                let patched = update_sum(ne, TTL_DECREMENT_NE);
                assert_eq!(patched.to_ne_bytes(), by_word.to_be_bytes(), "ttl {ttl}");
            }
        }
    }

    #[test]
    fn pseudo_headers() {
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let dst = Ipv4Addr::new(198, 51, 100, 7);
        let bytes = [192, 0, 2, 1, 198, 51, 100, 7, 0, 6, 0, 40];
        assert_eq!(pseudo_header_v4(src, dst, 6, 40), sum(&bytes));
        let s6: Ipv6Addr = "2001:db8::1".parse().expect("addr");
        let d6: Ipv6Addr = "2001:db8::2".parse().expect("addr");
        let mut b6 = Vec::new();
        b6.extend_from_slice(&s6.octets());
        b6.extend_from_slice(&d6.octets());
        b6.extend_from_slice(&40u32.to_be_bytes());
        b6.extend_from_slice(&[0, 0, 0, 17]);
        assert_eq!(pseudo_header_v6(&s6, &d6, 17, 40), sum(&b6));
    }
}
