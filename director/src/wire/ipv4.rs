//! IPv4 header view (RFC 791): options, fragmentation fields, checksum, TTL/address rewrites.

use std::net::Ipv4Addr;

use super::bytes::{get_ne_u16, get_u16, get_u32, set_ne_u16, set_u16, set_u32};
use super::{checksum, DropReason};

/// IP protocol numbers the director handles.
pub mod proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IP-in-IP, the outer protocol of VS/TUN.
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
}

/// Byte offsets of the header fields.
pub(crate) mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const OPTIONS_START: usize = 20;
}

/// Length of a header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Smallest MTU every IPv4 link must carry (RFC 791).
pub const MIN_MTU: u16 = 68;
/// Initial TTL of packets the director originates (Linux's default `ip_default_ttl`).
pub const DEFAULT_TTL: u8 = 64;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;
/// ECN codepoints (RFC 3168), the low two bits of the TOS byte.
pub const ECN_MASK: u8 = 0x03;
/// ECN "congestion experienced".
pub const ECN_CE: u8 = 0x03;
/// ECN "ECN capable transport (0)".
pub const ECN_ECT0: u8 = 0x02;

/// A view of an IPv4 packet (header, payload, possibly trailing padding).
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it (accessors may panic if it is too short).
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking version, IHL and total length against its length.
    /// Bytes past the total length (Ethernet padding) are allowed and ignored by
    /// [`Packet::payload`].
    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        let packet = Self::new_unchecked(buffer);
        packet.check()?;
        Ok(packet)
    }

    fn check(&self) -> Result<(), DropReason> {
        let buffer = self.buffer.as_ref();
        let fixed = buffer.first_chunk().ok_or(DropReason::TruncatedL3)?;
        check_fixed(fixed, buffer.len())?;
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version field (4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included.
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// TOS byte: DSCP (high 6 bits) and ECN (low 2 bits).
    #[inline]
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Total length (header + payload).
    #[inline]
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// Don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// More-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) * 8
    }

    /// Part of a fragmented datagram (MF set or a non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(self.buffer.as_ref(), field::SRC))
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(self.buffer.as_ref(), field::DST))
    }

    /// Whether the header checksum verifies.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        match self.buffer.as_ref().first_chunk() {
            Some(fixed) if self.header_len() == MIN_HEADER_LEN => {
                checksum::verify_ipv4_header(fixed)
            }
            _ => checksum::checksum(self.header()) == 0,
        }
    }

    /// The header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The options (empty for IHL 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::OPTIONS_START..self.header_len()]
    }

    /// The payload, up to the total length (padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the TOS byte (checksum not updated).
    #[inline]
    pub fn set_tos(&mut self, tos: u8) {
        self.buffer.as_mut()[field::TOS] = tos;
    }

    /// Sets the TTL (checksum not updated).
    #[inline]
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }

    /// Sets the source address (checksum not updated).
    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        set_u32(self.buffer.as_mut(), field::SRC, u32::from(addr));
    }

    /// Sets the destination address (checksum not updated).
    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        set_u32(self.buffer.as_mut(), field::DST, u32::from(addr));
    }

    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(self.header());
        self.set_checksum(value);
    }

    /// Sets the TTL and patches the header checksum (RFC 1624).
    #[inline]
    pub fn update_ttl(&mut self, ttl: u8) {
        let proto = u16::from(self.protocol());
        let old = u16::from(self.ttl()) << 8 | proto;
        let new = u16::from(ttl) << 8 | proto;
        self.set_ttl(ttl);
        let check = checksum::update16(self.checksum(), old, new);
        self.set_checksum(check);
    }

    /// Forwarding's TTL decrement with checksum patch; refuses TTL <= 1 (nothing written),
    /// as the kernel's `decrement_ttl()` in ip_vs_xmit.c. Returns the new TTL.
    #[inline]
    pub fn decrement_ttl(&mut self) -> Result<u8, DropReason> {
        let ttl = self.ttl();
        if ttl <= 1 {
            return Err(DropReason::TtlExceeded);
        }
        // The same value as `update_ttl(ttl - 1)`, with the constant RFC 1624 term.
        let buffer = self.buffer.as_mut();
        let check = get_ne_u16(buffer, field::CHECKSUM);
        let check = checksum::update_sum(check, checksum::TTL_DECREMENT_NE);
        set_ne_u16(buffer, field::CHECKSUM, check);
        buffer[field::TTL] = ttl - 1;
        Ok(ttl - 1)
    }

    /// Sets the source address and patches the header checksum.
    #[inline]
    pub fn update_src_addr(&mut self, addr: Ipv4Addr) {
        let check = checksum::update32(self.checksum(), self.src_addr().into(), addr.into());
        self.set_src_addr(addr);
        self.set_checksum(check);
    }

    /// Sets the destination address and patches the header checksum.
    #[inline]
    pub fn update_dst_addr(&mut self, addr: Ipv4Addr) {
        let check = checksum::update32(self.checksum(), self.dst_addr().into(), addr.into());
        self.set_dst_addr(addr);
        self.set_checksum(check);
    }

    /// The payload, up to the total length, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = self.header_len()..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// [`Packet::new_checked`]'s checks, given the first 20 bytes of a buffer of `len` bytes:
/// version, IHL and total length. Returns the header length.
#[inline]
pub(crate) fn check_fixed(header: &[u8; MIN_HEADER_LEN], len: usize) -> Result<usize, DropReason> {
    let ip = Packet::new_unchecked(header);
    if ip.version() != 4 {
        return Err(DropReason::IpVersion);
    }
    let header_len = ip.header_len();
    if header_len < MIN_HEADER_LEN {
        return Err(DropReason::BadIhl);
    }
    if header_len > len {
        return Err(DropReason::TruncatedL3);
    }
    let total = usize::from(ip.total_len());
    if total < header_len {
        return Err(DropReason::BadTotalLength);
    }
    if total > len {
        return Err(DropReason::TruncatedL3);
    }
    Ok(header_len)
}

/// An option-less IPv4 header to build (slow paths: ICMP errors, tunnel headers, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// TOS byte (DSCP + ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub dont_frag: bool,
    /// Payload length; total length = 20 + this.
    pub payload_len: u16,
}

impl Repr {
    /// Writes the 20-byte header, checksum included, at the start of `out`.
    pub fn emit(&self, out: &mut [u8]) -> Result<(), DropReason> {
        let total = self
            .payload_len
            .checked_add(MIN_HEADER_LEN as u16)
            .ok_or(DropReason::PacketTooBig)?;
        let out = out
            .first_chunk_mut::<MIN_HEADER_LEN>()
            .ok_or(DropReason::BufferTooSmall)?;
        out[field::VER_IHL] = 0x45;
        out[field::TOS] = self.tos;
        set_u16(out, field::LENGTH, total);
        set_u16(out, field::IDENT, self.ident);
        set_u16(
            out,
            field::FLG_OFF,
            if self.dont_frag { FLAG_DF } else { 0 },
        );
        out[field::TTL] = self.ttl;
        out[field::PROTOCOL] = self.protocol;
        set_u32(out, field::SRC, u32::from(self.src));
        set_u32(out, field::DST, u32::from(self.dst));
        set_u16(out, field::CHECKSUM, 0);
        let check = checksum::ipv4_header_checksum(out);
        set_u16(out, field::CHECKSUM, check);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 192.0.2.1 -> 198.51.100.7, TCP, TTL 64, DF, id 0x1234, 4 bytes of options (NOP x3, EOL)
    /// and 4 bytes of payload, then 2 bytes of padding.
    fn sample() -> Vec<u8> {
        let mut p = vec![
            0x46, 0x10, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 192, 0, 2, 1,
            198, 51, 100, 7, 1, 1, 1, 0, 0xde, 0xad, 0xbe, 0xef, 0xaa, 0xbb,
        ];
        let check = checksum::checksum(&p[..24]);
        p[10..12].copy_from_slice(&check.to_be_bytes());
        p
    }

    #[test]
    fn fields() {
        let buf = sample();
        let p = Packet::new_checked(&buf[..]).expect("valid");
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.tos(), 0x10);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), proto::TCP);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 51, 100, 7));
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn fragment_fields() {
        let mut buf = sample();
        buf[6..8].copy_from_slice(&(FLAG_MF | 3).to_be_bytes());
        let p = Packet::new_unchecked(&buf[..]);
        assert!(p.more_frags() && p.is_fragment() && !p.dont_frag());
        assert_eq!(p.frag_offset(), 24);
    }

    #[test]
    fn malformed_headers() {
        let buf = sample();
        for len in 0..28 {
            let err = Packet::new_checked(&buf[..len]).err();
            assert_eq!(err, Some(DropReason::TruncatedL3), "len {len}");
        }
        let mut b = buf.clone();
        b[0] = 0x66;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(DropReason::IpVersion)
        );
        b[0] = 0x44;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(DropReason::BadIhl));
        b[0] = 0x4f; // 60-byte header in a 30-byte buffer
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(DropReason::TruncatedL3)
        );
        let mut b = buf.clone();
        b[2..4].copy_from_slice(&23u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(DropReason::BadTotalLength)
        );
        b[2..4].copy_from_slice(&31u16.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(DropReason::TruncatedL3)
        );
    }

    #[test]
    fn incremental_updates_match_full_checksum() {
        let mut buf = sample();
        let mut p = Packet::new_checked(&mut buf[..]).expect("valid");
        assert_eq!(p.decrement_ttl(), Ok(63));
        p.update_dst_addr(Ipv4Addr::new(203, 0, 113, 9));
        p.update_src_addr(Ipv4Addr::new(10, 255, 0, 1));
        assert!(p.verify_checksum());
        let patched = p.checksum();
        p.fill_checksum();
        assert_eq!(p.checksum(), patched);
        assert_eq!(p.ttl(), 63);
        p.update_ttl(1);
        assert_eq!(p.decrement_ttl(), Err(DropReason::TtlExceeded));
        assert_eq!(p.ttl(), 1);
        assert!(p.verify_checksum());
    }

    #[test]
    fn repr_emits_a_valid_header() {
        let repr = Repr {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(198, 51, 100, 7),
            protocol: proto::IPIP,
            ttl: 63,
            tos: 0xb2,
            ident: 7,
            dont_frag: true,
            payload_len: 40,
        };
        let mut out = [0u8; 20];
        repr.emit(&mut out).expect("fits");
        assert_eq!(
            out[..10],
            [0x45, 0xb2, 0x00, 0x3c, 0x00, 0x07, 0x40, 0x00, 63, 4]
        );
        let p = Packet::new_checked(&out[..]).err();
        assert_eq!(p, Some(DropReason::TruncatedL3)); // total 60 > 20 bytes given
        assert_eq!(checksum::checksum(&out), 0);
        assert_eq!(repr.emit(&mut out[..19]), Err(DropReason::BufferTooSmall));
        let huge = Repr {
            payload_len: 65520,
            ..repr
        };
        assert_eq!(huge.emit(&mut out), Err(DropReason::PacketTooBig));
    }
}
