//! Ethernet II frame view (IEEE 802.3), with at most one 802.1Q VLAN tag.

use std::fmt;

use super::bytes::{get_u16, set_u16};
use super::DropReason;

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (the unknown target hardware address in ARP requests).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Group bit set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Ethertypes the director knows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IPv6 (not parsed yet).
    pub const IPV6: u16 = 0x86dd;
}

mod field {
    use core::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const VLAN_TCI: usize = 14;
    pub const INNER_ETHERTYPE: usize = 16;
}

/// Length of the two MAC addresses at the start of every frame.
pub const MACS_LEN: usize = 12;
/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of an Ethernet header with one 802.1Q tag.
pub const VLAN_HEADER_LEN: usize = 18;
/// Smallest Ethernet frame without FCS; shorter frames are padded by their builder.
pub const MIN_FRAME_LEN: usize = 60;

/// A view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps `buffer` without checking it (accessors may panic if it is too short).
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps `buffer` after checking it holds the whole header (tag included).
    pub fn new_checked(buffer: T) -> Result<Self, DropReason> {
        let len = buffer.as_ref().len();
        let frame = Self::new_unchecked(buffer);
        if len < HEADER_LEN || len < frame.header_len() {
            return Err(DropReason::TruncatedL2);
        }
        Ok(frame)
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination MAC.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::DST]);
        MacAddr(mac)
    }

    /// Source MAC.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::SRC]);
        MacAddr(mac)
    }

    /// The ethertype at offset 12 (0x8100 for a tagged frame).
    #[inline]
    pub fn outer_ethertype(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ETHERTYPE)
    }

    /// Whether the frame carries an 802.1Q tag.
    #[inline]
    pub fn is_tagged(&self) -> bool {
        self.outer_ethertype() == ethertype::VLAN
    }

    /// The 802.1Q tag control information (PCP, DEI, VID), if tagged.
    #[inline]
    pub fn vlan_tci(&self) -> Option<u16> {
        self.is_tagged()
            .then(|| get_u16(self.buffer.as_ref(), field::VLAN_TCI))
    }

    /// The payload's ethertype (after the tag, if any).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        if self.is_tagged() {
            get_u16(self.buffer.as_ref(), field::INNER_ETHERTYPE)
        } else {
            self.outer_ethertype()
        }
    }

    /// 14, or 18 with a tag.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Bytes after the header (padding included).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC.
    #[inline]
    pub fn set_dst_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    /// Sets the source MAC.
    #[inline]
    pub fn set_src_addr(&mut self, mac: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }
}

/// Sets both MACs of `frame` (the next hop rewrite of every forwarding method).
#[inline]
pub fn set_macs(frame: &mut [u8], src: MacAddr, dst: MacAddr) -> Result<(), DropReason> {
    let mut eth = Frame::new_checked(frame)?;
    eth.set_src_addr(src);
    eth.set_dst_addr(dst);
    Ok(())
}

/// The addresses (and VLAN) of an Ethernet header to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct L2 {
    /// Source MAC (ours).
    pub src: MacAddr,
    /// Destination MAC.
    pub dst: MacAddr,
    /// 802.1Q tag control information to insert, if the port is tagged.
    pub vlan_tci: Option<u16>,
}

impl L2 {
    /// 14, or 18 with a tag.
    pub fn header_len(&self) -> usize {
        if self.vlan_tci.is_some() {
            VLAN_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header for `ethertype` at the start of `out`; returns its length.
    pub fn emit(&self, out: &mut [u8], ethertype: u16) -> Result<usize, DropReason> {
        let len = self.header_len();
        let out = out.get_mut(..len).ok_or(DropReason::BufferTooSmall)?;
        out[field::DST].copy_from_slice(&self.dst.0);
        out[field::SRC].copy_from_slice(&self.src.0);
        match self.vlan_tci {
            Some(tci) => {
                set_u16(out, field::ETHERTYPE, ethertype::VLAN);
                set_u16(out, field::VLAN_TCI, tci);
                set_u16(out, field::INNER_ETHERTYPE, ethertype);
            }
            None => set_u16(out, field::ETHERTYPE, ethertype),
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 16] = [
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0x00,
    ];
    const TAGGED: [u8; 19] = [
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x81, 0x00, 0xa0, 0x64, 0x08, 0x06, 0x00,
    ];

    #[test]
    fn untagged_fields() {
        let f = Frame::new_checked(&UNTAGGED[..]).expect("valid");
        assert_eq!(f.dst_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.src_addr(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.vlan_tci(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0x45, 0x00]);
        assert_eq!(f.src_addr().to_string(), "02:00:00:00:00:02");
    }

    #[test]
    fn tagged_fields() {
        let f = Frame::new_checked(&TAGGED[..]).expect("valid");
        assert_eq!(f.vlan_tci(), Some(0xa064));
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x00]);
    }

    #[test]
    fn truncated_headers_are_refused() {
        for len in 0..14 {
            assert_eq!(
                Frame::new_checked(&UNTAGGED[..len]).err(),
                Some(DropReason::TruncatedL2)
            );
        }
        for len in 0..18 {
            assert_eq!(
                Frame::new_checked(&TAGGED[..len]).err(),
                Some(DropReason::TruncatedL2)
            );
        }
    }

    #[test]
    fn emit_round_trips_and_set_macs() {
        let l2 = L2 {
            src: MacAddr([2, 0, 0, 0, 0, 2]),
            dst: MacAddr([2, 0, 0, 0, 0, 1]),
            vlan_tci: Some(0xa064),
        };
        let mut out = [0u8; 18];
        assert_eq!(l2.emit(&mut out, ethertype::ARP), Ok(18));
        assert_eq!(out[..], TAGGED[..18]);
        assert_eq!(
            l2.emit(&mut out[..17], ethertype::ARP),
            Err(DropReason::BufferTooSmall)
        );
        let mut frame = UNTAGGED;
        set_macs(&mut frame, MacAddr([0xaa; 6]), MacAddr::BROADCAST).expect("long enough");
        assert_eq!(
            frame[..12],
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]
        );
        assert!(MacAddr::BROADCAST.is_multicast() && !l2.src.is_multicast());
    }
}
