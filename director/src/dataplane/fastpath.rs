//! The established-flow fast path: a client's packet of a known connection, in a plain frame
//! (untagged IPv4 without options, TCP or UDP, TTL > 1; `wire::plain`), to a NAT or DR real
//! server whose egress is cached. That is nearly all of a director's traffic, and this stage
//! does for it exactly what the full path (`Pipeline::inbound` + `forward`) does, in fewer
//! steps: fixed offsets instead of the full parse, the cached egress instead of the route and
//! neighbour lookups.
//!
//! Anything else falls through to the full path with the frame untouched and no state
//! changed: the full parser classifies it again and decides (new connections and SYNs,
//! TUN, unresolved egress, removed destinations, UDP without checksum, ...). Every check is
//! made before the first change, so the fall-through is always clean.

use crate::dataplane::conn::{tcp_flags, Direction, FlowKey, KeyHash};
use crate::dataplane::packet::PacketBuf;
use crate::dataplane::pipeline::{apply_load, Action, Class, Ctx, Pipeline};
use crate::model::ForwardMethod;
use crate::wire::plain::{self, Plain};
use crate::wire::{DropReason, MacAddr};
use std::net::IpAddr;

impl<P: PacketBuf> Pipeline<P> {
    /// Pass 1 of the fast path: a plain client -> virtual service frame that is not a SYN.
    /// `None` sends the frame to the full classification.
    #[inline(always)]
    pub(crate) fn classify_plain(&self, frame: &[u8], ctx: &Ctx, steered: bool) -> Option<Class> {
        let p = plain::parse_plain(frame)?;
        // A SYN may schedule (or reuse a TIME_WAIT entry): the full path's work.
        if p.tcp_flags & tcp_flags::SYN != 0 && p.proto == 6 {
            return None;
        }
        ctx.snap.service_for(p.proto, IpAddr::V4(p.dst), p.dport)?;
        if let Some(o) = self.foreign_owner(IpAddr::V4(p.src), p.sport, steered) {
            return Some(Class::Redirect(o));
        }
        let key = FlowKey::new(p.proto, p.src, p.sport, p.dst, p.dport);
        Some(Class::Plain {
            hash: self.conns.hash_in(&key),
            p,
        })
    }

    /// Pass 2 of the fast path for `pkt` (parsed as `p`, inbound key hash `hash`): the
    /// forwarded packet, or the packet back untouched (`Err`) for the full path.
    #[inline(always)]
    pub(crate) fn established_inbound(
        &mut self,
        mut pkt: P,
        p: &Plain,
        hash: KeyHash,
        ctx: &Ctx,
    ) -> Result<Action<P>, P> {
        let key = FlowKey::new(p.proto, p.src, p.sport, p.dst, p.dport);
        let Some(idx) = self.conns.lookup_in_hashed(&key, hash) else {
            return Err(pkt);
        };
        let Some(conn) = self.conns.get(idx) else {
            return Err(pkt);
        };
        let (dest_id, fwd, daddr, dport) =
            (conn.dest_id(), conn.forward(), conn.daddr(), conn.dport());
        let nat = match fwd {
            ForwardMethod::Masq => true,
            ForwardMethod::Route => false,
            ForwardMethod::Tunnel => return Err(pkt),
        };
        if nat && !plain::dnat_ready(pkt.data(), p) {
            return Err(pkt);
        }
        let Some((dsvc, dest)) = ctx.snap.dest(dest_id) else {
            return Err(pkt);
        };
        let Some((route, mac)) =
            self.egress_cache
                .get(daddr, ctx.net.routes.id(), ctx.neigh.generation())
        else {
            return Err(pkt);
        };
        // Checked: from here on the packet is ours to forward, as the full path would.
        if let Some(ch) = self
            .conns
            .on_packet(idx, Direction::Input, p.tcp_flags, ctx.now_s)
        {
            apply_load(&dest.load, ch.load);
        }
        let len = pkt.len() as u64;
        dest.stats.slot(self.worker).count_in(len);
        dsvc.stats.slot(self.worker).count_in(len);
        let src_mac = ctx.net.mac(route.port);
        let frame = pkt.data_mut();
        let rewritten = if nat {
            plain::dnat(frame, p, daddr, dport)
        } else {
            plain::forward_dr(frame)
        };
        if !rewritten || crate::wire::ethernet::set_macs(frame, src_mac, MacAddr(mac)).is_err() {
            // Unreachable: parse_plain and dnat_ready vouched for the frame.
            return Ok(Action::Drop(DropReason::TruncatedL3.into(), pkt));
        }
        self.fast_hits += 1;
        Ok(Action::Tx(route.port, pkt))
    }
}
