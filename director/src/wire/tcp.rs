//! TCP header view (RFC 9293): ports, flags, checksum.

use super::bytes::{get_u16, get_u32, set_u16};
use super::DropReason;

/// TCP flag bits (byte 13 of the header).
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
    /// ECE.
    pub const ECE: u8 = 0x40;
    /// CWR.
    pub const CWR: u8 = 0x80;
}

/// Byte offsets of the header fields.
pub(crate) mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
}

/// Header length without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Bytes of header needed to reach the end of the checksum field (for quoted headers).
pub const CHECKSUM_END: usize = field::CHECKSUM + 2;

/// A view of a TCP segment (header + data), bounded by the IP payload.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it (accessors may panic if it is too short).
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` (the IP payload) after checking the header and its options fit.
    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        let len = buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(DropReason::TruncatedL4);
        }
        let packet = Self::new_unchecked(buffer);
        let header_len = packet.header_len();
        if header_len < MIN_HEADER_LEN || header_len > len {
            return Err(DropReason::BadTcpOffset);
        }
        Ok(packet)
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

    /// Sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ)
    }

    /// Acknowledgement number.
    #[inline]
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK)
    }

    /// Header length in bytes (data offset * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// Flags byte (see [`flags`]).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Receive window.
    #[inline]
    pub fn window(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WINDOW)
    }

    /// Checksum.
    #[inline]
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
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

    const SYN: [u8; 24] = [
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xff,
        0xff, 0xab, 0xcd, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    ];

    #[test]
    fn fields_and_setters() {
        let mut buf = SYN;
        let mut p = Packet::new_checked(&mut buf[..]).expect("valid");
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (1, 0));
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.flags(), flags::SYN);
        assert_eq!((p.window(), p.checksum()), (0xffff, 0xabcd));
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_checksum(3);
        assert_eq!(buf[..4], [0, 1, 0, 2]);
        assert_eq!(buf[16..18], [0, 3]);
    }

    #[test]
    fn malformed() {
        for len in 0..20 {
            assert_eq!(
                Packet::new_checked(&SYN[..len]).err(),
                Some(DropReason::TruncatedL4)
            );
        }
        // Options run past the segment.
        for len in 20..24 {
            assert_eq!(
                Packet::new_checked(&SYN[..len]).err(),
                Some(DropReason::BadTcpOffset)
            );
        }
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&b[..]).err(),
            Some(DropReason::BadTcpOffset)
        );
    }
}
