//! ARP packet view (RFC 826), Ethernet/IPv4 only.

use std::net::Ipv4Addr;

use super::bytes::{get_u16, get_u32, set_u16, set_u32};
use super::ethernet::{ethertype, MacAddr};
use super::DropReason;

/// ARP operations.
pub mod op {
    /// Request.
    pub const REQUEST: u16 = 1;
    /// Reply.
    pub const REPLY: u16 = 2;
}

mod field {
    use core::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: usize = 14;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: usize = 24;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
const HTYPE_ETHERNET: u16 = 1;
/// Bytes needed to read the hardware/protocol type and lengths.
const FIXED_LEN: usize = 8;

/// A view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it (accessors may panic if it is too short).
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking it is a whole Ethernet/IPv4 ARP packet.
    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        let len = buffer.as_ref().len();
        if len < FIXED_LEN {
            return Err(DropReason::TruncatedL3);
        }
        let b = buffer.as_ref();
        if get_u16(b, field::HTYPE) != HTYPE_ETHERNET
            || get_u16(b, field::PTYPE) != ethertype::IPV4
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(DropReason::BadArp);
        }
        if len < PACKET_LEN {
            return Err(DropReason::TruncatedL3);
        }
        Ok(Self::new_unchecked(buffer))
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Operation (see [`op`]).
    #[inline]
    pub fn operation(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::OPER)
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_hw(&self) -> MacAddr {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::SHA]);
        MacAddr(mac)
    }

    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(self.buffer.as_ref(), field::SPA))
    }

    /// Target hardware address.
    #[inline]
    pub fn target_hw(&self) -> MacAddr {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::THA]);
        MacAddr(mac)
    }

    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(get_u32(self.buffer.as_ref(), field::TPA))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the fixed Ethernet/IPv4 fields (types and lengths) and the operation.
    #[inline]
    pub fn set_header(&mut self, operation: u16) {
        let b = self.buffer.as_mut();
        set_u16(b, field::HTYPE, HTYPE_ETHERNET);
        set_u16(b, field::PTYPE, ethertype::IPV4);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        set_u16(b, field::OPER, operation);
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, operation: u16) {
        set_u16(self.buffer.as_mut(), field::OPER, operation);
    }

    /// Sets the sender hardware address.
    #[inline]
    pub fn set_sender_hw(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&mac.0);
    }

    /// Sets the sender protocol address.
    #[inline]
    pub fn set_sender_ip(&mut self, addr: Ipv4Addr) {
        set_u32(self.buffer.as_mut(), field::SPA, u32::from(addr));
    }

    /// Sets the target hardware address.
    #[inline]
    pub fn set_target_hw(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&mac.0);
    }

    /// Sets the target protocol address.
    #[inline]
    pub fn set_target_ip(&mut self, addr: Ipv4Addr) {
        set_u32(self.buffer.as_mut(), field::TPA, u32::from(addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: [u8; 28] = [
        0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 9, 203, 0, 113, 5, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
    ];

    #[test]
    fn fields() {
        let p = Packet::new_checked(&REQUEST[..]).expect("valid");
        assert_eq!(p.operation(), op::REQUEST);
        assert_eq!(p.sender_hw(), MacAddr([2, 0, 0, 0, 0, 9]));
        assert_eq!(p.sender_ip(), Ipv4Addr::new(203, 0, 113, 5));
        assert_eq!(p.target_hw(), MacAddr::ZERO);
        assert_eq!(p.target_ip(), Ipv4Addr::new(192, 0, 2, 1));
    }

    #[test]
    fn setters_rebuild_the_same_bytes() {
        let mut buf = [0xeeu8; 28];
        let mut p = Packet::new_unchecked(&mut buf[..]);
        p.set_header(op::REPLY);
        p.set_operation(op::REQUEST);
        p.set_sender_hw(MacAddr([2, 0, 0, 0, 0, 9]));
        p.set_sender_ip(Ipv4Addr::new(203, 0, 113, 5));
        p.set_target_hw(MacAddr::ZERO);
        p.set_target_ip(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn malformed() {
        for len in 0..28 {
            assert_eq!(
                Packet::new_checked(&REQUEST[..len]).err(),
                Some(DropReason::TruncatedL3)
            );
        }
        for (at, value) in [(1usize, 6u8), (3, 0xdd), (4, 8), (5, 16)] {
            let mut b = REQUEST;
            b[at] = value;
            assert_eq!(
                Packet::new_checked(&b[..]).err(),
                Some(DropReason::BadArp),
                "byte {at}"
            );
        }
    }
}
