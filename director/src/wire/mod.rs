//! The packet layer: zero-copy views over a frame's own bytes, one-pass parsing and the in-place
//! transforms of the data plane (VS/NAT, VS/DR, VS/TUN, ICMP, ARP). Pure Rust, no DPDK: every
//! function takes `&[u8]` / `&mut [u8]`, which on the fast path are an mbuf's data.
//!
//! Conventions (smoltcp-wire style):
//! - A view (`ethernet::Frame`, `ipv4::Packet`, `tcp::Packet`, ...) checks its buffer once in
//!   `new_checked`; its accessors then index without further checks. Nothing here panics on
//!   malformed input or allocates: failures are a [`DropReason`] the data plane counts.
//! - [`parse_frame`] verifies the IPv4 header checksum but not L4 checksums: like IPVS on a NIC
//!   that reports `CHECKSUM_UNNECESSARY`, TCP/UDP checksums are left to the real server. The
//!   rewrites patch them incrementally (RFC 1624), so a correct checksum stays correct (and a
//!   wrong one stays wrong, for the receiver to reject).
//! - Bytes after the IP total length (Ethernet padding) are legal: parsing ignores them, no
//!   checksum covers them, and the in-place transforms leave them in the frame.
//!   [`PacketMeta::frame_end`] is where the data plane may trim the mbuf before transmission.
//! - Only IPv4 is parsed today; addresses are `std::net::IpAddr` so that IPv6 fits in later, and
//!   the transforms refuse an IPv6 address with [`DropReason::AddressFamily`].

pub mod arp;
pub mod arp_build;
mod bytes;
pub mod checksum;
pub mod dr;
mod drop_reason;
pub mod ethernet;
pub mod icmp;
pub mod icmp_build;
pub mod icmp_nat;
pub mod ipv4;
pub mod nat;
pub mod parse;
pub mod plain;
pub mod tcp;
pub mod tcp_reset;
#[cfg(test)]
mod test_frames;
pub mod tun;
pub mod udp;

pub use drop_reason::DropReason;
pub use ethernet::MacAddr;
pub use parse::{parse_frame, PacketKind, PacketMeta};
