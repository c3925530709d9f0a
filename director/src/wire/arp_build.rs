//! ARP the director answers and sends: replies for its addresses (in place), requests and
//! gratuitous announcements (into a buffer, broadcast, padded to the 60-byte minimum frame).

use std::net::Ipv4Addr;

use super::arp::{self, op};
use super::ethernet::{self, ethertype, MacAddr, L2};
use super::parse::PacketMeta;
use super::DropReason;

/// Turns an ARP request into the reply from `our_mac`, in place (the caller checked that the
/// target address is ours): operation 2, sender = `our_mac` + the requested address, target =
/// the requester; Ethernet destination = the requester's hardware address, source = `our_mac`.
/// VLAN tag and padding are kept.
pub fn reply_in_place(
    frame: &mut [u8],
    meta: &PacketMeta,
    our_mac: MacAddr,
) -> Result<(), DropReason> {
    let l3 = frame
        .get_mut(usize::from(meta.l3_offset)..)
        .ok_or(DropReason::TruncatedL3)?;
    let mut packet = arp::Packet::new_checked(l3)?;
    if packet.operation() != op::REQUEST {
        return Err(DropReason::NotArpRequest);
    }
    let (requester_hw, requester_ip) = (packet.sender_hw(), packet.sender_ip());
    let requested_ip = packet.target_ip();
    packet.set_operation(op::REPLY);
    packet.set_sender_hw(our_mac);
    packet.set_sender_ip(requested_ip);
    packet.set_target_hw(requester_hw);
    packet.set_target_ip(requester_ip);
    ethernet::set_macs(frame, our_mac, requester_hw)
}

/// Builds a broadcast ARP request for `target_ip` from `src_mac`/`sender_ip` into `out`
/// (target hardware address zero, as Linux sends it). Returns the frame length (60).
pub fn request(
    out: &mut [u8],
    src_mac: MacAddr,
    vlan_tci: Option<u16>,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Result<usize, DropReason> {
    let l2 = L2 {
        src: src_mac,
        dst: MacAddr::BROADCAST,
        vlan_tci,
    };
    let l2_len = l2.header_len();
    let len = (l2_len + arp::PACKET_LEN).max(ethernet::MIN_FRAME_LEN);
    let out = out.get_mut(..len).ok_or(DropReason::BufferTooSmall)?;
    l2.emit(out, ethertype::ARP)?;
    let (body, padding) = out[l2_len..].split_at_mut(arp::PACKET_LEN);
    let mut packet = arp::Packet::new_unchecked(body);
    packet.set_header(op::REQUEST);
    packet.set_sender_hw(src_mac);
    packet.set_sender_ip(sender_ip);
    packet.set_target_hw(MacAddr::ZERO);
    packet.set_target_ip(target_ip);
    padding.fill(0);
    Ok(len)
}

/// Builds a gratuitous ARP announcing `ip` at `src_mac` (a request with sender and target
/// address both `ip`, as Linux sends when an address comes up). Returns the frame length.
pub fn gratuitous(
    out: &mut [u8],
    src_mac: MacAddr,
    vlan_tci: Option<u16>,
    ip: Ipv4Addr,
) -> Result<usize, DropReason> {
    request(out, src_mac, vlan_tci, ip, ip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{parse_frame, PacketKind};

    #[test]
    fn request_then_reply_round_trip() {
        let client = MacAddr([2, 0, 0, 0, 0, 9]);
        let ours = MacAddr([2, 0, 0, 0, 0, 1]);
        let mut frame = [0xaau8; 64];
        let len = request(
            &mut frame,
            client,
            Some(5),
            Ipv4Addr::new(203, 0, 113, 5),
            Ipv4Addr::new(192, 0, 2, 1),
        )
        .expect("fits");
        assert_eq!(len, 60);
        assert!(frame[18 + 28..60].iter().all(|&b| b == 0));
        let meta = parse_frame(&frame[..len]).expect("valid");
        assert_eq!(
            (meta.kind, meta.arp_op, meta.vlan_tci),
            (PacketKind::Arp, 1, Some(5))
        );
        reply_in_place(&mut frame[..len], &meta, ours).expect("reply");
        let reply = parse_frame(&frame[..len]).expect("valid");
        assert_eq!(reply.arp_op, op::REPLY);
        assert_eq!(reply.src, meta.dst);
        assert_eq!(reply.dst, meta.src);
        assert_eq!(frame[..6], client.0);
        assert_eq!(frame[6..12], ours.0);
        assert_eq!(
            reply_in_place(&mut frame[..len], &reply, ours),
            Err(DropReason::NotArpRequest)
        );
        assert_eq!(
            gratuitous(&mut frame[..59], ours, None, Ipv4Addr::new(192, 0, 2, 1)),
            Err(DropReason::BufferTooSmall)
        );
    }
}
