//! UDP header view (RFC 768).

use super::bytes::{get_u16, set_u16};
use super::DropReason;

/// Byte offsets of the header fields.
pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// UDP header length.
pub const HEADER_LEN: usize = 8;

/// A view of a UDP datagram, bounded by the IP payload.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it (accessors may panic if it is too short).
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` (the IP payload) after checking the header fits and the length field
    /// lies within 8..=buffer length.
    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        let len = buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(DropReason::TruncatedL4);
        }
        let packet = Self::new_unchecked(buffer);
        let udp_len = usize::from(packet.len());
        if !(HEADER_LEN..=len).contains(&udp_len) {
            return Err(DropReason::BadUdpLength);
        }
        Ok(packet)
    }

    /// Wraps `buffer` after checking only that the 8-byte header fits: for a first fragment,
    /// whose length field counts the whole datagram, not this fragment.
    pub fn new_checked_header(buffer: T) -> Result<Self, DropReason> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(DropReason::TruncatedL4);
        }
        Ok(Self::new_unchecked(buffer))
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// Length field (header + data).
    #[inline]
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the datagram carries no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) == HEADER_LEN
    }

    /// Checksum (0 = none sent).
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Header and data as the length field delimits them (cut at the end of the buffer for
    /// a view made with [`Packet::new_checked_header`]).
    #[inline]
    pub fn datagram(&self) -> &[u8] {
        let buffer = self.buffer.as_ref();
        &buffer[..usize::from(self.len()).min(buffer.len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port (checksum not updated).
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT, port);
    }

    /// Sets the destination port (checksum not updated).
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT, port);
    }

    /// Sets the checksum.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DGRAM: [u8; 10] = [0x14, 0xe9, 0x00, 0x35, 0x00, 0x0a, 0x12, 0x34, 0xab, 0xcd];

    #[test]
    fn fields_and_setters() {
        let mut buf = DGRAM;
        let mut p = Packet::new_checked(&mut buf[..]).expect("valid");
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (5353, 53, 10));
        assert_eq!(p.checksum(), 0x1234);
        assert!(!p.is_empty());
        assert_eq!(p.datagram(), &DGRAM[..]);
        p.set_src_port(7);
        p.set_dst_port(8);
        p.set_checksum(0xffff);
        assert_eq!(buf[..8], [0, 7, 0, 8, 0, 10, 0xff, 0xff]);
    }

    #[test]
    fn malformed() {
        for len in 0..8 {
            assert_eq!(
                Packet::new_checked(&DGRAM[..len]).err(),
                Some(DropReason::TruncatedL4)
            );
        }
        assert_eq!(
            Packet::new_checked(&DGRAM[..9]).err(),
            Some(DropReason::BadUdpLength)
        );
        let mut b = DGRAM;
        b[5] = 7;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(DropReason::BadUdpLength)
        );
        // A length shorter than the IP payload is fine: trailing bytes are not UDP data.
        b[5] = 8;
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert!(p.is_empty());
        assert_eq!(p.datagram().len(), 8);
        // A first fragment: length counts the whole datagram.
        b[5] = 200;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(DropReason::BadUdpLength)
        );
        let p = Packet::new_checked_header(&b[..]).expect("header fits");
        assert_eq!((p.len(), p.datagram().len()), (200, 10));
        assert_eq!(
            Packet::new_checked_header(&b[..7]).err(),
            Some(DropReason::TruncatedL4)
        );
    }
}
