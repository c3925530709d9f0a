//! Big-endian field access for the views. Callers guarantee the bounds (checked constructors).

/// Reads the big-endian `u16` at `at`.
#[inline]
pub(crate) fn get_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Writes `value` big-endian at `at`.
#[inline]
pub(crate) fn set_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Reads the big-endian `u32` at `at`.
#[inline]
pub(crate) fn get_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Writes `value` big-endian at `at`.
#[inline]
pub(crate) fn set_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// Reads the `u16` at `at` in the CPU's byte order: for one's complement checksum arithmetic,
/// which gives byte-swapped results from byte-swapped inputs (RFC 1071 section 2(B)), so the
/// fast paths patch checksums without swapping bytes.
#[inline]
pub(crate) fn get_ne_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([buf[at], buf[at + 1]])
}

/// Writes `value` at `at` in the CPU's byte order (see [`get_ne_u16`]).
#[inline]
pub(crate) fn set_ne_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_ne_bytes());
}

/// Reads the `u32` at `at` in the CPU's byte order (see [`get_ne_u16`]).
#[inline]
pub(crate) fn get_ne_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
