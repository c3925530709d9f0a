//! Template frames and their per-flow variants, written straight into mbufs.
//!
//! A template is one Ethernet/IPv4/TCP frame addressed to a VIP (or, for a NAT real server's
//! reply, to the client) with the client address and port zeroed; its checksums are kept as
//! partial sums without those fields. Per packet the
//! generator copies the 54 header bytes, writes the flow's client address and port, and
//! finishes both checksums from the partial sums: a handful of additions, so the generator
//! stays faster than the worker it feeds. The payload (a fixed byte pattern) is written into
//! every mbuf of the pool once at start-up ([`fill_payload`]); the director never changes it,
//! so every frame on the wire is byte-correct, checksums included.

use std::net::Ipv4Addr;

use crate::topo::{real_ip, real_mac, NAT_RPORT, P0_MAC, P1_MAC, ROUTER_MAC, VPORT};

/// Ethernet + IPv4 + TCP header bytes (no options).
pub const HEADER_LEN: usize = 14 + 20 + 20;
/// Smallest frame size accepted (64 bytes on the wire with the FCS).
pub const MIN_SIZE: usize = 64;
/// Largest frame size accepted (a full 1500-byte IP packet, 1518 on the wire).
pub const MAX_SIZE: usize = 1518;
/// Bytes of the Ethernet FCS, counted in a size but not stored in the mbuf (as testpmd and
/// RFC 2544 count frame sizes).
pub const FCS_LEN: usize = 4;

/// TCP flags of the two segment kinds the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// A connection-opening SYN (a new flow).
    Syn,
    /// An ACK with payload (an established flow).
    Ack,
}

impl Segment {
    fn flags(self) -> u8 {
        match self {
            Segment::Syn => 0x02,
            Segment::Ack => 0x10,
        }
    }
}

/// The byte at payload offset `i` (frame offset `HEADER_LEN + i`).
#[inline]
pub fn payload_byte(i: usize) -> u8 {
    (i as u8).wrapping_mul(31).wrapping_add(7)
}

/// Writes the payload pattern into `frame[HEADER_LEN..]` (see the module docs).
pub fn fill_payload(frame: &mut [u8]) {
    for (i, b) in frame.iter_mut().skip(HEADER_LEN).enumerate() {
        *b = payload_byte(i);
    }
}

/// One's complement sum of 16-bit big-endian words (RFC 1071), not folded.
fn sum16(data: &[u8]) -> u64 {
    data.chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum()
}

#[inline]
fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// A frame of one size and segment kind toward one VIP, client fields left to fill.
#[derive(Debug, Clone)]
pub struct Template {
    header: [u8; HEADER_LEN],
    /// Bytes stored in the mbuf (size minus FCS).
    len: usize,
    /// Folded sum of the IPv4 header with the source address zero.
    ip_partial: u16,
    /// Folded sum of pseudo header, TCP header and payload with client address and port zero.
    tcp_partial: u16,
    /// Offsets of the client's address and port: the source's (a client's frame) or the
    /// destination's (a reply to the client).
    client_ip_at: usize,
    client_port_at: usize,
}

impl Template {
    /// A template of `size` bytes on the wire (FCS included: 64..=1518) from the upstream
    /// router to `vip`:80.
    pub fn new(vip: Ipv4Addr, size: usize, seg: Segment) -> Result<Template, String> {
        Self::build(size, seg, (ROUTER_MAC, P0_MAC), (vip, VPORT), false)
    }

    /// A template of `size` bytes on the wire of NAT real server `real`'s reply (an ACK with
    /// payload, from its address and port 8080 to the client), arriving at the inside port.
    pub fn reply(real: usize, size: usize) -> Result<Template, String> {
        Self::build(
            size,
            Segment::Ack,
            (real_mac(real), P1_MAC),
            (real_ip(real), NAT_RPORT),
            true,
        )
    }

    /// The frame from MAC `macs.0` to `macs.1` between the client and `fixed` (address,
    /// port), from the client unless `to_client`.
    fn build(
        size: usize,
        seg: Segment,
        macs: ([u8; 6], [u8; 6]),
        fixed: (Ipv4Addr, u16),
        to_client: bool,
    ) -> Result<Template, String> {
        let (fixed_ip_at, fixed_port_at, client_ip_at, client_port_at) = if to_client {
            (26, 34, 30, 36)
        } else {
            (30, 36, 26, 34)
        };
        if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            return Err(format!(
                "frame size {size} outside {MIN_SIZE}..={MAX_SIZE} (bytes on the wire, FCS included)"
            ));
        }
        let len = size - FCS_LEN;
        let ip_len = (len - 14) as u16;
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&macs.1);
        f[6..12].copy_from_slice(&macs.0);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[4..6].copy_from_slice(&0x2a2au16.to_be_bytes());
        ip[6] = 0x40; // DF, as TCP stacks send
        ip[8] = 64;
        ip[9] = 6;
        f[fixed_ip_at..fixed_ip_at + 4].copy_from_slice(&fixed.0.octets());
        f[fixed_port_at..fixed_port_at + 2].copy_from_slice(&fixed.1.to_be_bytes());
        let tcp = &mut f[34..54];
        tcp[4..8].copy_from_slice(&0x1000_0000u32.to_be_bytes());
        if seg == Segment::Ack {
            tcp[8..12].copy_from_slice(&0x2000_0000u32.to_be_bytes());
        }
        tcp[12] = 5 << 4;
        tcp[13] = seg.flags();
        tcp[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
        fill_payload(&mut f);
        let ip_partial = fold(sum16(&f[14..34]));
        let tcp_len = u64::from(ip_len) - 20;
        let pseudo = sum16(&fixed.0.octets()) + 6 + tcp_len;
        let tcp_partial = fold(pseudo + sum16(&f[34..]));
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&f[..HEADER_LEN]);
        Ok(Template {
            header,
            len,
            ip_partial,
            tcp_partial,
            client_ip_at,
            client_port_at,
        })
    }

    /// Bytes the frame occupies in an mbuf (its size minus the FCS).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the frame is empty (never: templates are at least 60 bytes).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the headers of the frame of `client`:`port` into `frame` (which already holds
    /// the payload pattern after [`HEADER_LEN`]; at least [`HEADER_LEN`] bytes long).
    #[inline]
    pub fn write(&self, frame: &mut [u8], client: Ipv4Addr, port: u16) {
        let h = &mut frame[..HEADER_LEN];
        h.copy_from_slice(&self.header);
        let a = client.octets();
        h[self.client_ip_at..self.client_ip_at + 4].copy_from_slice(&a);
        h[self.client_port_at..self.client_port_at + 2].copy_from_slice(&port.to_be_bytes());
        let addr_sum = u64::from(u16::from_be_bytes([a[0], a[1]]))
            + u64::from(u16::from_be_bytes([a[2], a[3]]));
        let ip = !fold(u64::from(self.ip_partial) + addr_sum);
        h[24..26].copy_from_slice(&ip.to_be_bytes());
        let tcp = !fold(u64::from(self.tcp_partial) + addr_sum + u64::from(port));
        h[50..52].copy_from_slice(&tcp.to_be_bytes());
    }

    /// The whole frame for `client`:`port`, as bytes (tests, checks).
    pub fn frame(&self, client: Ipv4Addr, port: u16) -> Vec<u8> {
        let mut f = vec![0u8; self.len];
        fill_payload(&mut f);
        self.write(&mut f, client, port);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use director::wire::checksum;
    use director::wire::{parse_frame, PacketKind};
    use std::net::IpAddr;

    fn tcp_checksum_ok(f: &[u8]) -> bool {
        let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
        let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
        let l4 = &f[34..];
        let pseudo = checksum::pseudo_header_v4(src, dst, 6, l4.len() as u16);
        checksum::finish(pseudo + checksum::sum(l4)) == 0
    }

    #[test]
    fn frames_parse_with_valid_checksums_for_every_size() {
        let vip = Ipv4Addr::new(203, 0, 113, 200);
        for size in [64, 65, 512, 1500, 1518] {
            for seg in [Segment::Syn, Segment::Ack] {
                let t = Template::new(vip, size, seg).unwrap();
                for (client, port) in [
                    (Ipv4Addr::new(10, 0, 0, 1), 1024),
                    (Ipv4Addr::new(10, 255, 254, 253), 65535),
                    (Ipv4Addr::new(10, 0, 0, 0), 0),
                ] {
                    let f = t.frame(client, port);
                    assert_eq!(f.len(), size - FCS_LEN);
                    assert_eq!(checksum::checksum(&f[14..34]), 0, "IP checksum");
                    assert!(tcp_checksum_ok(&f), "TCP checksum, size {size}");
                    let m = parse_frame(&f).unwrap();
                    assert_eq!(m.kind, PacketKind::Tcp);
                    assert_eq!(m.src, IpAddr::V4(client));
                    assert_eq!(m.src_port, port);
                    assert_eq!(m.dst, IpAddr::V4(vip));
                    assert_eq!(m.dst_port, 80);
                    assert_eq!(m.tcp_flags, seg.flags());
                    assert_eq!(usize::from(m.total_len), size - FCS_LEN - 14);
                }
            }
        }
    }

    #[test]
    fn write_over_a_used_buffer_gives_the_same_bytes() {
        let t = Template::new(Ipv4Addr::new(203, 0, 113, 201), 128, Segment::Ack).unwrap();
        let mut buf = t.frame(Ipv4Addr::new(10, 1, 2, 3), 4000);
        // A director rewrote the header in place; the next packet writes over it.
        buf[..HEADER_LEN].fill(0xee);
        t.write(&mut buf, Ipv4Addr::new(10, 9, 9, 9), 5000);
        assert_eq!(buf, t.frame(Ipv4Addr::new(10, 9, 9, 9), 5000));
    }

    #[test]
    fn replies_go_from_the_real_server_to_the_client_with_valid_checksums() {
        for size in [64, 512, 1518] {
            for real in 0..crate::topo::N_REAL {
                let t = Template::reply(real, size).unwrap();
                let client = Ipv4Addr::new(10, 0, 3, 7);
                let f = t.frame(client, 12345);
                assert_eq!(f.len(), size - FCS_LEN);
                assert_eq!(f[0..6], P1_MAC);
                assert_eq!(f[6..12], real_mac(real));
                assert_eq!(checksum::checksum(&f[14..34]), 0, "IP checksum");
                assert!(tcp_checksum_ok(&f), "TCP checksum, size {size}");
                let m = parse_frame(&f).unwrap();
                assert_eq!(m.src, IpAddr::V4(real_ip(real)));
                assert_eq!(m.src_port, NAT_RPORT);
                assert_eq!(m.dst, IpAddr::V4(client));
                assert_eq!(m.dst_port, 12345);
                assert_eq!(m.tcp_flags, Segment::Ack.flags());
            }
        }
    }

    #[test]
    fn sizes_outside_the_ethernet_range_are_refused() {
        let vip = Ipv4Addr::new(203, 0, 113, 200);
        assert!(Template::new(vip, 63, Segment::Ack).is_err());
        assert!(Template::new(vip, 1519, Segment::Ack).is_err());
    }
}
