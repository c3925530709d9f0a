//! Why a frame was dropped (or a transform refused it): one counter label each.

use std::fmt;

/// Why the packet layer refused a frame. Every variant is a metrics label ([`DropReason::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than an Ethernet header (14 bytes, 18 with an 802.1Q tag).
    TruncatedL2,
    /// Ethertype the data plane does not handle (the data plane records it; parsing reports
    /// such frames as [`crate::wire::PacketKind::OtherEthertype`]).
    UnsupportedEthertype,
    /// IP header or IP total length runs past the end of the frame, or ARP body too short.
    TruncatedL3,
    /// Ethertype IPv4 but IP version field is not 4.
    IpVersion,
    /// IHL below 5 (20 bytes).
    BadIhl,
    /// IP total length smaller than the IP header.
    BadTotalLength,
    /// IPv4 header checksum does not verify.
    BadIpChecksum,
    /// A non-first IP fragment: without reassembly it carries no ports, so it cannot be
    /// matched to a connection (the kernel's IPVS only ever sees reassembled packets).
    Fragment,
    /// TCP/UDP/ICMP header runs past the end of the IP packet.
    TruncatedL4,
    /// TCP data offset below 5 or past the end of the IP packet.
    BadTcpOffset,
    /// UDP length field below 8 or past the end of the IP packet.
    BadUdpLength,
    /// ARP that is not Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4).
    BadArp,
    /// TTL would reach 0 when forwarded (TTL <= 1): send ICMP time exceeded.
    TtlExceeded,
    /// A transform was asked for an IP protocol it does not handle.
    UnsupportedProtocol,
    /// An address of the wrong family for the packet (IPv6 address for an IPv4 packet).
    AddressFamily,
    /// ICMP checksum does not verify (checked where the director consumes ICMP itself).
    BadIcmpChecksum,
    /// ICMP message is not an error that relates to a connection (dest unreachable, source
    /// quench, time exceeded).
    NotIcmpError,
    /// The IP header + 8 bytes quoted in an ICMP error are missing or malformed.
    BadIcmpQuote,
    /// Echo reply requested for something that is not an ICMP echo request.
    NotEchoRequest,
    /// ARP reply requested for something that is not an ARP request.
    NotArpRequest,
    /// RFC 1122 forbids an ICMP error about this packet (an ICMP error, a non-first
    /// fragment, a broadcast/multicast or unspecified address).
    IcmpErrorSuppressed,
    /// Output buffer too small for the frame to build.
    BufferTooSmall,
    /// Encapsulation would exceed the 65535-byte IP total length.
    PacketTooBig,
    /// Too big for the tunnel MTU with DF set: ICMP fragmentation needed goes to the client.
    FragNeeded,
    /// Tunnel MTU (egress MTU - 20) below the IPv4 minimum of 68.
    TunnelMtu,
}

impl DropReason {
    /// Every reason, in declaration order (for registering metrics).
    pub const ALL: [DropReason; 25] = [
        DropReason::TruncatedL2,
        DropReason::UnsupportedEthertype,
        DropReason::TruncatedL3,
        DropReason::IpVersion,
        DropReason::BadIhl,
        DropReason::BadTotalLength,
        DropReason::BadIpChecksum,
        DropReason::Fragment,
        DropReason::TruncatedL4,
        DropReason::BadTcpOffset,
        DropReason::BadUdpLength,
        DropReason::BadArp,
        DropReason::TtlExceeded,
        DropReason::UnsupportedProtocol,
        DropReason::AddressFamily,
        DropReason::BadIcmpChecksum,
        DropReason::NotIcmpError,
        DropReason::BadIcmpQuote,
        DropReason::NotEchoRequest,
        DropReason::NotArpRequest,
        DropReason::IcmpErrorSuppressed,
        DropReason::BufferTooSmall,
        DropReason::PacketTooBig,
        DropReason::FragNeeded,
        DropReason::TunnelMtu,
    ];

    /// Snake-case label for metrics (`reason="truncated_l2"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::TruncatedL2 => "truncated_l2",
            DropReason::UnsupportedEthertype => "unsupported_ethertype",
            DropReason::TruncatedL3 => "truncated_l3",
            DropReason::IpVersion => "ip_version",
            DropReason::BadIhl => "bad_ihl",
            DropReason::BadTotalLength => "bad_total_length",
            DropReason::BadIpChecksum => "bad_ip_checksum",
            DropReason::Fragment => "fragment",
            DropReason::TruncatedL4 => "truncated_l4",
            DropReason::BadTcpOffset => "bad_tcp_offset",
            DropReason::BadUdpLength => "bad_udp_length",
            DropReason::BadArp => "bad_arp",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::UnsupportedProtocol => "unsupported_protocol",
            DropReason::AddressFamily => "address_family",
            DropReason::BadIcmpChecksum => "bad_icmp_checksum",
            DropReason::NotIcmpError => "not_icmp_error",
            DropReason::BadIcmpQuote => "bad_icmp_quote",
            DropReason::NotEchoRequest => "not_echo_request",
            DropReason::NotArpRequest => "not_arp_request",
            DropReason::IcmpErrorSuppressed => "icmp_error_suppressed",
            DropReason::BufferTooSmall => "buffer_too_small",
            DropReason::PacketTooBig => "packet_too_big",
            DropReason::FragNeeded => "frag_needed",
            DropReason::TunnelMtu => "tunnel_mtu",
        }
    }

    /// Position in [`DropReason::ALL`], for indexing a counter array.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for DropReason {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order_with_unique_labels() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
        let mut labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert!(labels.iter().all(|l| l
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())));
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), DropReason::ALL.len());
        assert_eq!(DropReason::Fragment.to_string(), "fragment");
    }
}
