//! The established-flow fast path: a packet of a known connection in a plain frame (untagged
//! IPv4 without options, TCP or UDP, TTL > 1; `wire::plain`), either a client's to a NAT, DR
//! or TUN real server whose egress is cached, or a NAT real server's reply to a client whose
//! next hop's MAC is cached. That is nearly all of a director's traffic, and this stage does for it
//! exactly what the full path (`Pipeline::inbound` + `forward`, `Pipeline::reply`) does, in
//! fewer steps: fixed offsets instead of the full parse, cached egresses instead of the
//! neighbour table (and, inbound, the route lookup).
//!
//! Anything else goes to the full path with the frame untouched and no state changed. A SYN
//! or a packet without a connection is classified by the full path from the same fields
//! (`plain::meta`, no second parse); so is one whose connection's destination was removed.
//! A packet whose connection was found but that the fast path does not forward itself (an
//! egress to resolve, UDP without checksum, a tunnel packet over the MTU) goes to the full
//! path's known-connection tail
//! (`Pipeline::inbound_known`, `Pipeline::reply_known`), so its connection is not looked up
//! twice. Every check is made before the first change, so the hand-over is always clean.
//!
//! The connection is looked up before any service, by the packet's tuple, in either
//! direction (as ip_vs_in finds the connection before it looks for a service): a client's
//! packet of an established connection costs no service lookup. `established_inbound` and
//! `established_reply` say why each gives the full path's answer.

use crate::dataplane::conn::{tcp_flags, Candidate, Conn, ConnIdx, Direction, FlowKey, KeyHash};
use crate::dataplane::drop::Drop;
use crate::dataplane::packet::PacketBuf;
use crate::dataplane::pipeline::{Class, Ctx, Pipeline};
use crate::dataplane::route::RouteResult;
use crate::model::ForwardMethod;
use crate::wire::nat::{self, NatDeltas};
use crate::wire::plain::{self, Plain};
use crate::wire::tun::{self, TunMtu};
use crate::wire::{DropReason, PacketMeta};
use std::net::{IpAddr, Ipv4Addr};

/// Where a plain frame's IPv4 and TCP/UDP headers start (`plain::dnat` / `plain::snat` are
/// these rewrites as tests and the fuzz target check them; called directly here, the
/// compiler allocates registers better: 7-8 instructions a packet fewer).
const PLAIN_AT: (usize, usize) = (plain::L3, plain::L4);

impl<P: PacketBuf> Pipeline<P> {
    /// Pass 1 for a plain frame: one that is not a SYN goes into `class` for the fast path,
    /// which looks its connection up in pass 2, whichever way it goes. Anything else is
    /// classified by the full path from the meta the full parser would have produced (no
    /// second parse). False: the frame
    /// is not plain; the caller parses it in full.
    #[inline(always)]
    pub(crate) fn classify_plain(
        &self,
        frame: &[u8],
        ctx: &Ctx,
        steered: bool,
        meta: &mut PacketMeta,
        class: &mut Class,
    ) -> bool {
        let Some(p) = plain::parse_plain(frame) else {
            return false;
        };
        if !self.classify_plain_fast(&p, steered, class) {
            *meta = plain::meta(frame, &p);
            *class = self.classify_transport(meta, ctx, steered);
        }
        true
    }

    /// The fast-path part of [`Pipeline::classify_plain`]: every plain frame but a TCP SYN
    /// is looked up by its tuple in pass 2, whichever direction it goes (a connection's
    /// inbound and reply keys hash alike): ip_vs_in's order, the connection before the
    /// service, so an established packet costs no service lookup. A frame of neither of this
    /// worker's endpoints (with several workers) cannot be one of its connections: the full
    /// path classifies it (and redirects it to its owner) without a table probe.
    #[inline(always)]
    fn classify_plain_fast(&self, p: &Plain, steered: bool, class: &mut Class) -> bool {
        let p = *p;
        // A SYN may schedule (or reuse a TIME_WAIT entry): the full path's work.
        if p.tcp_flags() & tcp_flags::SYN != 0 && p.proto() == 6 {
            return false;
        }
        if !steered
            && self.n_workers > 1
            && self
                .foreign_owner(IpAddr::V4(p.src()), p.sport(), false)
                .is_some()
            && self
                .foreign_owner(IpAddr::V4(p.dst()), p.dport(), false)
                .is_some()
        {
            return false;
        }
        let key = FlowKey::new(p.proto(), p.src(), p.sport(), p.dst(), p.dport());
        *class = Class::Plain {
            hash: self.conns.hash_in(&key),
            p,
        };
        true
    }

    /// Pass 2 of the fast path for `pkt` (parsed as `p`, tuple hash `hash`, `cand` the
    /// entry pass 2 prefetched for it): looks its connection up and forwards it if it can.
    /// The bool is true for a NAT reply (what [`Fast::Known`] is handed on as).
    #[inline(always)]
    pub(crate) fn established(
        &mut self,
        pkt: &mut P,
        p: &Plain,
        hash: KeyHash,
        cand: Candidate,
        ctx: &Ctx,
        tables: (u64, u64),
    ) -> (Fast, bool) {
        let key = FlowKey::new(p.proto(), p.src(), p.sport(), p.dst(), p.dport());
        let Some((idx, dir, conn)) = self.conns.lookup_packet_entry(&key, hash, cand) else {
            return (Fast::Unknown, false);
        };
        let found = Found::of(idx, conn);
        match dir {
            Direction::Input => (self.established_inbound(pkt, p, &found, ctx, tables), false),
            Direction::Output => (self.established_reply(pkt, p, &found, ctx, tables), true),
        }
    }

    /// A client's packet `pkt` (parsed as `p`) of the connection found (`f`).
    ///
    /// No service was looked up: a destination still configured means its service is (a
    /// service keeps its address, and the connection's key was that service's), so the full
    /// path would classify the packet inbound and find `idx`. Without its destination the
    /// packet goes to the full path from the start ([`Fast::Unknown`]), which looks the
    /// service up.
    #[inline(always)]
    fn established_inbound(
        &mut self,
        pkt: &mut P,
        p: &Plain,
        f: &Found,
        ctx: &Ctx,
        tables: (u64, u64),
    ) -> Fast {
        let idx = f.idx;
        let (dest_id, fwd, daddr, dport, deltas) = (f.dest_id, f.fwd, f.daddr, f.dport, f.deltas);
        let Some((dsvc, dest)) = ctx.snap.dest_counters(dest_id) else {
            return Fast::Unknown;
        };
        let Some(egress) = self.egress_cache.get(daddr, tables.0, tables.1) else {
            return Fast::Known(idx);
        };
        let len = pkt.len() as u64;
        // The rewrite comes first: it is the last thing that can decline (it writes nothing
        // then, e.g. for a UDP datagram without checksum, or a tunnel packet over the MTU).
        // Each arm sets the MACs in the frame it rewrote once the rewrite is done (parse_plain
        // saw a whole untagged Ethernet header; the tunnel moved it to the front), on the
        // same slice: that cannot fail once the longer rewrite has succeeded.
        let rewritten = match fwd {
            ForwardMethod::Masq => {
                let frame = pkt.data_mut();
                nat::dnat_at_with(frame, p.is_udp(), PLAIN_AT, daddr, dport, &deltas)
                    && plain::set_macs(frame, &egress.l2)
            }
            ForwardMethod::Route => {
                let frame = pkt.data_mut();
                plain::forward_dr(frame) && plain::set_macs(frame, &egress.l2)
            }
            ForwardMethod::Tunnel => match self.tunnel(pkt, p, &egress.route, daddr) {
                None => false,
                Some(Ok(())) => plain::set_macs(pkt.data_mut(), &egress.l2),
                Some(Err(r)) => {
                    // Past the point of no return (the full path, too, counts the packet
                    // on its connection, then drops it); parse_plain's and the MTU's checks
                    // leave `tun::encap` nothing to refuse, so this is not expected.
                    let load =
                        self.conns
                            .on_found_packet(idx, Direction::Input, p.tcp_flags(), ctx.now_s);
                    self.count(load, Direction::Input, dsvc, dest, len);
                    return Fast::Drop(r.into());
                }
            },
        };
        if !rewritten {
            return Fast::Known(idx);
        }
        // From here on the packet is forwarded, as the full path would: its state and counts
        // (`track`, for the connection just found).
        let load = self
            .conns
            .on_found_packet(idx, Direction::Input, p.tcp_flags(), ctx.now_s);
        self.count(load, Direction::Input, dsvc, dest, len);
        Fast::Tx(egress.route.port)
    }

    /// VS/TUN of a plain frame toward `daddr` over `route`, as the full path's `forward`
    /// does it (the same MTU rule, headroom, IP ident sequence and encapsulation). `None`,
    /// with nothing changed, where the full path must decide: an inner packet over the
    /// tunnel's MTU (ICMP fragmentation-needed or a counted drop there), no headroom.
    #[inline(always)]
    fn tunnel(
        &mut self,
        pkt: &mut P,
        p: &Plain,
        route: &RouteResult,
        daddr: std::net::Ipv4Addr,
    ) -> Option<Result<(), DropReason>> {
        let meta = plain::meta(pkt.data(), p);
        if tun::mtu_check(meta.total_len, route.mtu, meta.dont_fragment) != TunMtu::Ok {
            return None;
        }
        if !pkt.prepend(tun::OUTER_HEADER_LEN) {
            return None;
        }
        self.ip_ident = self.ip_ident.wrapping_add(1);
        Some(tun::encap(
            pkt.data_mut(),
            &meta,
            route.src,
            daddr,
            self.ip_ident,
        ))
    }

    /// A NAT real server's reply `pkt` (parsed as `p`) of the connection found (`f`).
    ///
    /// The full path takes a packet for a reply only if it is not for a virtual service and
    /// comes from a configured NAT real server: checked here too, else [`Fast::Unknown`] (a
    /// tuple that is also an inbound key, a real server no longer NAT). The connection's own
    /// destination, still a NAT real server at the packet's source, answers the second test
    /// without looking the source up.
    #[inline(always)]
    fn established_reply(
        &mut self,
        pkt: &mut P,
        p: &Plain,
        f: &Found,
        ctx: &Ctx,
        tables: (u64, u64),
    ) -> Fast {
        if ctx
            .snap
            .service_for(p.proto(), IpAddr::V4(p.dst()), p.dport())
            .is_some()
        {
            return Fast::Unknown;
        }
        let idx = f.idx;
        let (dest_id, vaddr, vport, deltas) = (f.dest_id, f.vaddr, f.vport, f.deltas);
        let nat_source = || {
            ctx.snap
                .is_masq_source(p.proto(), IpAddr::V4(p.src()), p.sport())
        };
        let Some((svc, dest)) = ctx.snap.dest_counters(dest_id) else {
            return if nat_source() {
                Fast::Known(idx)
            } else {
                Fast::Unknown
            };
        };
        if dest.nat_source_v4 != Some((p.proto(), p.src(), p.sport())) && !nat_source() {
            return Fast::Unknown;
        }
        let Some(route) = ctx.net.routes.lookup(p.dst()) else {
            return Fast::Known(idx);
        };
        let Some(hop) = self.hop_cache.get(route.next_hop, tables.0, tables.1) else {
            return Fast::Known(idx);
        };
        let len = pkt.len() as u64;
        let frame = pkt.data_mut();
        if !nat::snat_at_with(frame, p.is_udp(), PLAIN_AT, vaddr, vport, &deltas) {
            return Fast::Known(idx);
        }
        let _ = plain::set_macs(frame, &hop.l2);
        let load = self
            .conns
            .on_found_packet(idx, Direction::Output, p.tcp_flags(), ctx.now_s);
        self.count(load, Direction::Output, svc, dest, len);
        Fast::Tx(route.port)
    }
}

/// What the fast path reads of the connection it found (copied out where the lookup had the
/// entry at hand, not looked up again).
struct Found {
    idx: ConnIdx,
    dest_id: u32,
    fwd: ForwardMethod,
    vaddr: Ipv4Addr,
    vport: u16,
    daddr: Ipv4Addr,
    dport: u16,
    deltas: NatDeltas,
}

impl Found {
    #[inline(always)]
    fn of(idx: ConnIdx, c: &Conn<Ipv4Addr>) -> Found {
        Found {
            idx,
            dest_id: c.dest_id(),
            fwd: c.forward(),
            vaddr: c.vaddr(),
            vport: c.vport(),
            daddr: c.daddr(),
            dport: c.dport(),
            deltas: *c.nat_deltas(),
        }
    }
}

/// What pass 2 of the fast path did with a packet. Unless it is `Tx`, the packet is untouched
/// and no state changed.
#[derive(Clone, Copy)]
pub(crate) enum Fast {
    /// Forwarded: transmit on this port.
    Tx(u16),
    /// Its connection is this one, but the fast path does not forward it (an egress to
    /// resolve, UDP without checksum, a tunnel packet over the MTU): the full path's handling
    /// of a known connection takes it from here.
    Known(ConnIdx),
    /// Dropped after its connection counted it, as the full path would have (a tunnel
    /// encapsulation refused past the point of no return; not expected).
    Drop(Drop),
    /// No connection, or one the full path must classify again (its destination removed, a
    /// reply the configuration does not call one): the full path decides.
    Unknown,
}
