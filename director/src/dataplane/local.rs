//! What the director answers itself, with no kernel stack behind it: ARP for its addresses
//! and VIPs, ICMP echo, ICMP errors about tracked flows (IPVS's ip_vs_in_icmp /
//! ip_vs_out_icmp) and the ICMP errors it originates (rate-limited).
//!
//! ICMP errors the director originates go back out of the port the offending packet came in
//! on, to the MAC it came from (the previous hop), which is the return path in every topology
//! a load balancer sits in.

use crate::dataplane::conn::{Conn, ConnIdx, FlowKey};
use crate::dataplane::drop::PipelineDrop;
use crate::dataplane::neigh::NeighEvent;
use crate::dataplane::packet::PacketBuf;
use crate::dataplane::pipeline::{Action, Ctx, Pipeline, EXTRA_CAPACITY};
use crate::dataplane::snapshot::{DestRt, ServiceRt};
use crate::model::ForwardMethod;
use crate::wire::ethernet::L2;
use crate::wire::icmp::{msg_type, unreachable_code};
use crate::wire::{
    arp, arp_build, ethernet, icmp_build, icmp_nat, ipv4, tcp_reset, DropReason, PacketMeta,
};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// `originate_error` code meaning "time exceeded in transit" instead of an unreachable code.
const TIME_EXCEEDED_MARK: u8 = 0xff;

impl<P: PacketBuf> Pipeline<P> {
    /// ARP: learn neighbours on our subnets, answer requests for our addresses and VIPs.
    pub(crate) fn arp(
        &mut self,
        mut pkt: P,
        meta: &PacketMeta,
        in_port: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        let Some(l3) = pkt.data().get(usize::from(meta.l3_offset)..) else {
            return Action::Drop(crate::wire::DropReason::TruncatedL3.into(), pkt);
        };
        let a = match arp::Packet::new_checked(l3) {
            Ok(a) => a,
            Err(r) => return Action::Drop(r.into(), pkt),
        };
        let (op, sip, tip, sha) = (a.operation(), a.sender_ip(), a.target_ip(), a.sender_hw());
        // Learn only senders on a connected network of this port, never our own addresses
        // (a spoofed ARP for one of them must not redirect our traffic).
        let learnable = !sip.is_unspecified()
            && !sha.is_multicast()
            && !ctx.net.is_local(sip)
            && !ctx.snap.is_vip(IpAddr::V4(sip))
            && ctx.net.routes.on_link(in_port, sip);
        if learnable && ctx.neigh.lookup(in_port, sip) != Some(sha.0) {
            if let Some(tx) = &self.neigh_tx {
                let _ = tx.try_send(NeighEvent::Learned {
                    port: in_port,
                    ip: sip,
                    mac: sha.0,
                });
            }
        }
        if op == arp::op::REQUEST && self.answers_arp_for(tip, in_port, ctx) {
            let mac = ctx.net.mac(in_port);
            return match arp_build::reply_in_place(pkt.data_mut(), meta, mac) {
                Ok(()) => Action::Tx(in_port, pkt),
                Err(r) => Action::Drop(r.into(), pkt),
            };
        }
        if op == arp::op::REPLY && learnable {
            return Action::Consumed(pkt);
        }
        Action::Drop(PipelineDrop::ArpIgnored.into(), pkt)
    }

    /// Whether `ip` is ours to answer for on `port`: one of the port's addresses, or a VIP
    /// whose route points out of this port.
    fn answers_arp_for(&self, ip: Ipv4Addr, port: u16, ctx: &Ctx) -> bool {
        if let Some(p) = ctx.net.ports.get(usize::from(port)) {
            if p.addrs.contains(&ip) {
                return true;
            }
        }
        ctx.snap.is_vip(IpAddr::V4(ip)) && ctx.net.routes.lookup(ip).map(|r| r.port) == Some(port)
    }

    /// Sends a gratuitous ARP for each of `vips` out of the port its route uses.
    pub fn announce_vips(&mut self, vips: &[IpAddr], ctx: &Ctx) {
        for vip in vips {
            let IpAddr::V4(ip) = *vip else { continue };
            let Some(route) = ctx.net.routes.lookup(ip) else {
                continue;
            };
            if self.extra.len() >= EXTRA_CAPACITY {
                return;
            }
            let Some(mut p) = P::alloc(&self.pool) else {
                return;
            };
            if !p.append(64) {
                continue;
            }
            let mac = ctx.net.mac(route.port);
            if let Ok(len) = arp_build::gratuitous(p.data_mut(), mac, None, ip) {
                let extra = p.len() - len;
                p.trim(extra);
                self.extra.push((route.port, p));
            }
        }
    }

    /// ICMP: echo for our addresses and VIPs; errors about tracked flows.
    pub(crate) fn icmp(
        &mut self,
        mut pkt: P,
        meta: &PacketMeta,
        in_port: u16,
        ctx: &Ctx,
        steered: bool,
    ) -> Action<P> {
        let IpAddr::V4(dst) = meta.dst else {
            return Action::Drop(crate::wire::DropReason::AddressFamily.into(), pkt);
        };
        match meta.icmp_type {
            msg_type::ECHO_REQUEST => {
                if !(ctx.net.is_local(dst) || ctx.snap.is_vip(meta.dst)) {
                    return Action::Drop(PipelineDrop::NotForUs.into(), pkt);
                }
                match icmp_build::echo_reply(pkt.data_mut(), meta) {
                    Ok(()) => {
                        let mac = ctx.net.mac(in_port);
                        if let Ok(mut f) = ethernet::Frame::new_checked(pkt.data_mut()) {
                            f.set_src_addr(mac);
                        }
                        Action::Tx(in_port, pkt)
                    }
                    Err(r) => Action::Drop(r.into(), pkt),
                }
            }
            msg_type::DEST_UNREACHABLE | msg_type::SOURCE_QUENCH | msg_type::TIME_EXCEEDED => {
                self.icmp_error_in(pkt, meta, in_port, ctx, steered)
            }
            _ => Action::Drop(PipelineDrop::IcmpIgnored.into(), pkt),
        }
    }

    /// An ICMP error: relate it to a connection through the packet it quotes.
    fn icmp_error_in(
        &mut self,
        mut pkt: P,
        meta: &PacketMeta,
        in_port: u16,
        ctx: &Ctx,
        steered: bool,
    ) -> Action<P> {
        let ef = match icmp_nat::embedded_flow(pkt.data(), meta) {
            Ok(ef) => ef,
            Err(r) => return Action::Drop(r.into(), pkt),
        };
        let (IpAddr::V4(qsrc), IpAddr::V4(qdst)) = (ef.src, ef.dst) else {
            return Action::Drop(crate::wire::DropReason::AddressFamily.into(), pkt);
        };
        // (a) From the client side about a packet the service sent (quoted src = VIP).
        if ctx
            .snap
            .service_for(ef.proto, ef.src, ef.src_port)
            .is_some()
        {
            if let Some(o) = self.foreign_owner(ef.dst, ef.dst_port, steered) {
                return Action::Redirect(o, pkt);
            }
            let key = FlowKey::new(ef.proto, qdst, ef.dst_port, qsrc, ef.src_port);
            let (c, svc, dest) = match self.quoted_conn(self.conns.lookup_in(&key), ctx) {
                Ok(found) => found,
                Err(d) => return Action::Drop(d.into(), pkt),
            };
            let len = pkt.len() as u64;
            dest.stats.slot(self.worker).count_in(len);
            svc.stats.slot(self.worker).count_in(len);
            return self.forward(
                pkt,
                meta,
                c.forward(),
                c.daddr(),
                c.dport(),
                in_port,
                ctx,
                true,
            );
        }
        // (b) From the real-server side about a packet we NAT-forwarded (quoted dst = RS).
        if ctx.snap.is_masq_source(ef.proto, ef.dst, ef.dst_port) {
            if let Some(o) = self.foreign_owner(ef.src, ef.src_port, steered) {
                return Action::Redirect(o, pkt);
            }
            let key = FlowKey::new(ef.proto, qdst, ef.dst_port, qsrc, ef.src_port);
            let (c, svc, dest) = match self.quoted_conn(self.conns.lookup_reply(&key), ctx) {
                Ok(found) => found,
                Err(d) => return Action::Drop(d.into(), pkt),
            };
            if c.forward() != ForwardMethod::Masq {
                return Action::Drop(PipelineDrop::IcmpNoConnection.into(), pkt);
            }
            let IpAddr::V4(outer_dst) = meta.dst else {
                return Action::Drop(crate::wire::DropReason::AddressFamily.into(), pkt);
            };
            let Some(route) = ctx.net.routes.lookup(outer_dst) else {
                return Action::Drop(PipelineDrop::NoRoute.into(), pkt);
            };
            // ICMP does not move TCP state in IPVS (ip_vs_out_icmp), so the connection is
            // not fed to the state machine: a segment without flags would move it to CLOSE.
            let len = pkt.len() as u64;
            dest.stats.slot(self.worker).count_out(len);
            svc.stats.slot(self.worker).count_out(len);
            if let Err(r) = icmp_nat::snat(pkt.data_mut(), meta, IpAddr::V4(c.vaddr()), c.vport()) {
                return Action::Drop(r.into(), pkt);
            }
            return self.egress(pkt, route, ctx);
        }
        Action::Drop(PipelineDrop::IcmpNoConnection.into(), pkt)
    }

    /// The connection an ICMP error quotes (found by `idx`) with its service and destination.
    fn quoted_conn<'c>(
        &self,
        idx: Option<ConnIdx>,
        ctx: &Ctx<'c>,
    ) -> Result<(Conn<Ipv4Addr>, &'c ServiceRt, &'c Arc<DestRt>), PipelineDrop> {
        let c = idx
            .and_then(|i| self.conns.get(i).copied())
            .ok_or(PipelineDrop::IcmpNoConnection)?;
        let (svc, dest) = ctx
            .snap
            .dest(c.dest_id())
            .ok_or(PipelineDrop::DestRemoved)?;
        Ok((c, svc, dest))
    }

    /// No real server available: drop, and tell the client with port unreachable
    /// (from the VIP, rate-limited), as IPVS does.
    pub(crate) fn reject_unreachable(
        &mut self,
        pkt: P,
        meta: &PacketMeta,
        in_port: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        let src = match meta.dst {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        self.originate_error(&pkt, meta, in_port, src, unreachable_code::PORT, 0, ctx);
        Action::Drop(PipelineDrop::NoDestination.into(), pkt)
    }

    /// No route toward a real server: drop + ICMP net unreachable from our address.
    pub(crate) fn reject_no_route(
        &mut self,
        pkt: P,
        meta: &PacketMeta,
        in_port: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        if let Some(src) = self.port_address(in_port, ctx) {
            self.originate_error(&pkt, meta, in_port, src, unreachable_code::NET, 0, ctx);
        }
        Action::Drop(PipelineDrop::NoRoute.into(), pkt)
    }

    /// Too big for the tunnel with DF set: drop + fragmentation needed with the tunnel MTU.
    pub(crate) fn reject_frag_needed(
        &mut self,
        pkt: P,
        meta: &PacketMeta,
        in_port: u16,
        mtu: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        if let Some(src) = self.port_address(in_port, ctx) {
            let code = unreachable_code::FRAG_NEEDED;
            self.originate_error(&pkt, meta, in_port, src, code, mtu, ctx);
        }
        Action::Drop(crate::wire::DropReason::FragNeeded.into(), pkt)
    }

    /// TTL would reach 0: drop + ICMP time exceeded in transit from our address on the
    /// receiving port (as ip_vs_xmit's decrement_ttl), rate-limited.
    pub(crate) fn reject_ttl(
        &mut self,
        pkt: P,
        meta: &PacketMeta,
        in_port: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        if let Some(src) = self.port_address(in_port, ctx) {
            self.originate_error(&pkt, meta, in_port, src, TIME_EXCEEDED_MARK, 0, ctx);
        }
        Action::Drop(crate::wire::DropReason::TtlExceeded.into(), pkt)
    }

    fn port_address(&self, port: u16, ctx: &Ctx) -> Option<Ipv4Addr> {
        ctx.net
            .ports
            .get(usize::from(port))
            .and_then(|p| p.addrs.first().copied())
    }

    /// A TCP segment or UDP datagram for one of our addresses (a VIP, a port's address)
    /// where no virtual service listens. IPVS hands such a packet to the local stack, which
    /// has no socket there: the director answers as that kernel would, with a TCP reset
    /// (`wire::tcp_reset`) or ICMP port unreachable from the address it was sent to. Both
    /// share the ICMP errors' rate limit (a flood of SYNs to a closed port gets no more
    /// answers per second than `icmp_rate`). The packet is dropped and counted.
    pub(crate) fn refuse_closed(
        &mut self,
        pkt: P,
        meta: &PacketMeta,
        in_port: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        if let IpAddr::V4(dst) = meta.dst {
            if meta.proto == ipv4::proto::TCP {
                self.originate(&pkt, meta, in_port, ctx, |out, l2, l3| {
                    tcp_reset::build(out, l2, l3)
                });
            } else {
                self.originate_error(&pkt, meta, in_port, dst, unreachable_code::PORT, 0, ctx);
            }
        }
        Action::Drop(PipelineDrop::PortClosed.into(), pkt)
    }

    /// Builds a destination-unreachable about `pkt` into a new buffer queued in `extra`.
    #[allow(clippy::too_many_arguments)]
    fn originate_error(
        &mut self,
        pkt: &P,
        meta: &PacketMeta,
        in_port: u16,
        src: Ipv4Addr,
        code: u8,
        mtu: u16,
        ctx: &Ctx,
    ) {
        self.originate(pkt, meta, in_port, ctx, |out, l2, l3| {
            if code == TIME_EXCEEDED_MARK {
                icmp_build::time_exceeded(out, l2, src, l3, 0)
            } else {
                icmp_build::dest_unreachable(out, l2, src, l3, code, mtu)
            }
        });
    }

    /// Queues in `extra`, out of `in_port` back to the frame's sender, what `build` makes of
    /// `pkt`'s IP packet (into a buffer of [`icmp_build::MAX_ERROR_FRAME_LEN`] bytes, given
    /// the Ethernet header to write): only about a packet an ICMP error may be sent about
    /// (`icmp_build::error_allowed`), within the ICMP rate limit, while `extra` has room and
    /// the pool a buffer. Nothing is sent where `build` refuses.
    fn originate(
        &mut self,
        pkt: &P,
        meta: &PacketMeta,
        in_port: u16,
        ctx: &Ctx,
        build: impl FnOnce(&mut [u8], &L2, &[u8]) -> Result<usize, DropReason>,
    ) {
        let data = pkt.data();
        let Some(l3) = data.get(usize::from(meta.l3_offset)..meta.frame_end()) else {
            return;
        };
        if icmp_build::error_allowed(l3).is_err() || self.extra.len() >= EXTRA_CAPACITY {
            return;
        }
        if !self.icmp_limit.allow(ctx.now_ns) {
            return;
        }
        let Some(mut out) = P::alloc(&self.pool) else {
            return;
        };
        if !out.append(icmp_build::MAX_ERROR_FRAME_LEN) {
            return;
        }
        let client_mac = match ethernet::Frame::new_checked(data) {
            Ok(f) => f.src_addr(),
            Err(_) => return,
        };
        let l2 = L2 {
            src: ctx.net.mac(in_port),
            dst: client_mac,
            vlan_tci: meta.vlan_tci,
        };
        match build(out.data_mut(), &l2, l3) {
            Ok(len) => {
                let extra = out.len() - len;
                out.trim(extra);
                self.extra.push((in_port, out));
            }
            Err(_) => drop(out),
        }
    }
}
