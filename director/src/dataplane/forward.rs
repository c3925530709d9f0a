//! Forwarding stage: the rewrite each IPVS forwarding method does (NAT, DR, TUN) and the
//! egress choice (route -> port + next hop -> neighbour MAC, or wait for ARP).

use crate::dataplane::drop::PipelineDrop;
use crate::dataplane::egress_cache::Egress;
use crate::dataplane::neigh::{NeighEvent, Queued, Resolution};
use crate::dataplane::packet::PacketBuf;
use crate::dataplane::pipeline::{Action, Ctx, Pipeline, EXTRA_CAPACITY};
use crate::dataplane::route::RouteResult;
use crate::model::ForwardMethod;
use crate::wire::tun::{self, TunMtu};
use crate::wire::{arp_build, dr, ethernet, icmp_nat, nat, MacAddr, PacketMeta};
use std::net::{IpAddr, Ipv4Addr};

impl<P: PacketBuf> Pipeline<P> {
    /// Sends a client -> service packet (or an ICMP error about its flow, `icmp` true) to
    /// the real server `daddr:dport` by `fwd`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &mut self,
        mut pkt: P,
        meta: &PacketMeta,
        fwd: ForwardMethod,
        daddr: Ipv4Addr,
        dport: u16,
        in_port: u16,
        ctx: &Ctx,
        icmp: bool,
    ) -> Action<P> {
        // Established flows find their egress in the cache; the first packet to a real server
        // (and the first after a route or neighbour change) resolves it.
        let tables = (ctx.net.routes.id(), ctx.neigh.generation());
        let cached = self.egress_cache.get(daddr, tables.0, tables.1);
        let route = match cached {
            Some(e) => e.route,
            None => match ctx.net.routes.lookup(daddr) {
                Some(route) => route,
                None => return self.reject_no_route(pkt, meta, in_port, ctx),
            },
        };
        let done = match fwd {
            ForwardMethod::Masq if icmp => {
                icmp_nat::dnat(pkt.data_mut(), meta, IpAddr::V4(daddr), dport)
            }
            ForwardMethod::Masq => nat::dnat(pkt.data_mut(), meta, IpAddr::V4(daddr), dport),
            // MACs are set at egress; this decrements the TTL and patches the checksum.
            ForwardMethod::Route => {
                dr::forward(pkt.data_mut(), meta, MacAddr([0; 6]), MacAddr([0; 6]))
            }
            ForwardMethod::Tunnel => {
                match tun::mtu_check(meta.total_len, route.mtu, meta.dont_fragment) {
                    TunMtu::Ok => {}
                    TunMtu::NeedFrag { mtu } if !icmp => {
                        return self.reject_frag_needed(pkt, meta, in_port, mtu, ctx);
                    }
                    // Fragmenting the outer packet would copy payload into new mbufs on the
                    // fast path; like a router without fragmentation offload we drop and
                    // count instead (clients see PMTU loss only with DF clear, rare today).
                    TunMtu::NeedFrag { .. } | TunMtu::Fragment => {
                        return Action::Drop(crate::wire::DropReason::PacketTooBig.into(), pkt)
                    }
                    TunMtu::TooSmall => {
                        return Action::Drop(crate::wire::DropReason::TunnelMtu.into(), pkt)
                    }
                }
                if !pkt.prepend(tun::OUTER_HEADER_LEN) {
                    return Action::Drop(crate::wire::DropReason::BufferTooSmall.into(), pkt);
                }
                self.ip_ident = self.ip_ident.wrapping_add(1);
                let r = tun::encap(pkt.data_mut(), meta, route.src, daddr, self.ip_ident);
                if r.is_err() {
                    // Undo the prepend is not needed: the packet is dropped.
                }
                r
            }
        };
        match done {
            Ok(()) => match cached {
                Some(e) => {
                    let (src, dst) = (MacAddr(e.src_mac()), MacAddr(e.mac()));
                    if let Err(r) = ethernet::set_macs(pkt.data_mut(), src, dst) {
                        return Action::Drop(r.into(), pkt);
                    }
                    Action::Tx(e.route.port, pkt)
                }
                None => {
                    if let Resolution::Mac(mac) = ctx.neigh.resolve(route.port, route.next_hop) {
                        let e = Egress::new(route, mac, ctx.net.mac(route.port).0);
                        self.egress_cache.put(daddr, tables.0, tables.1, e);
                    }
                    self.egress(pkt, route, ctx)
                }
            },
            Err(crate::wire::DropReason::TtlExceeded) if !icmp => {
                self.reject_ttl(pkt, meta, in_port, ctx)
            }
            Err(r) => Action::Drop(r.into(), pkt),
        }
    }

    /// Sets the MACs for `route` and transmits, or parks the packet until ARP resolves the
    /// next hop.
    #[inline]
    pub(crate) fn egress(&mut self, mut pkt: P, route: RouteResult, ctx: &Ctx) -> Action<P> {
        match ctx.neigh.resolve(route.port, route.next_hop) {
            Resolution::Mac(mac) => {
                // The fast path's NAT replies find this next hop's MAC here from now on.
                let tables = (ctx.net.routes.id(), ctx.neigh.generation());
                let src = ctx.net.mac(route.port);
                let e = Egress::new(route, mac, src.0);
                self.hop_cache.put(route.next_hop, tables.0, tables.1, e);
                if let Err(r) = ethernet::set_macs(pkt.data_mut(), src, MacAddr(mac)) {
                    return Action::Drop(r.into(), pkt);
                }
                Action::Tx(route.port, pkt)
            }
            Resolution::Failed => Action::Drop(PipelineDrop::NeighUnresolved.into(), pkt),
            Resolution::Unknown => {
                let queued = self
                    .pending
                    .push(route.port, route.next_hop, pkt, ctx.now_ns);
                // One report and one request per next hop, not one per waiting packet (the
                // neighbour manager retries through WorkerCmd::SendArp). A packet the queue
                // has no room for is still reported, so that its hop gets resolved.
                if !matches!(queued, Ok(Queued::Appended)) {
                    if let Some(tx) = &self.neigh_tx {
                        let _ = tx.try_send(NeighEvent::Miss {
                            port: route.port,
                            ip: route.next_hop,
                        });
                    }
                }
                match queued {
                    Ok(Queued::NewHop) => {
                        self.send_arp_request(route.port, route.src, route.next_hop, ctx);
                        Action::Held
                    }
                    Ok(Queued::Appended) => Action::Held,
                    Err(p) => Action::Drop(PipelineDrop::NeighUnresolved.into(), p),
                }
            }
        }
    }

    /// Builds and queues an ARP request for `target` on `port` (rate-limited).
    pub(crate) fn send_arp_request(
        &mut self,
        port: u16,
        sender: Ipv4Addr,
        target: Ipv4Addr,
        ctx: &Ctx,
    ) {
        if self.extra.len() >= EXTRA_CAPACITY || !self.arp_limit.allow(ctx.now_ns) {
            return;
        }
        let Some(mut req) = P::alloc(&self.pool) else {
            return;
        };
        if !req.append(64) {
            return;
        }
        let mac = ctx.net.mac(port);
        match arp_build::request(req.data_mut(), mac, None, sender, target) {
            Ok(len) => {
                let extra = req.len() - len;
                req.trim(extra);
                self.extra.push((port, req));
            }
            Err(_) => drop(req),
        }
    }

    /// Moves packets whose next hop got resolved to `extra` (MACs set), and drops (counting)
    /// those that waited too long. Called by the worker between bursts.
    pub fn service_pending(&mut self, ctx: &Ctx) {
        if self.pending.is_empty() {
            return;
        }
        let room = EXTRA_CAPACITY.saturating_sub(self.extra.len());
        let mut released = 0;
        let mut out: [Option<(u16, P)>; 16] = Default::default();
        for (port, mut pkt, mac) in self.pending.take_resolved(ctx.neigh).take(room.min(16)) {
            let src = ctx.net.mac(port);
            if ethernet::set_macs(pkt.data_mut(), src, MacAddr(mac)).is_ok() {
                out[released] = Some((port, pkt));
                released += 1;
            }
        }
        for o in out.iter_mut().take(released) {
            if let Some(x) = o.take() {
                self.extra.push(x);
            }
        }
        let idx = crate::dataplane::drop::Drop::from(PipelineDrop::NeighUnresolved).index();
        let counters = self.counters.clone();
        for pkt in self.pending.expire(ctx.now_ns) {
            counters.count_drop(idx);
            drop(pkt);
        }
    }
}
