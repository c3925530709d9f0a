//! The per-packet pipeline of one worker: parse -> classify -> steer -> track -> forward.
//!
//! `Pipeline::process` takes one received frame and says what to do with it ([`Action`]).
//! It is generic over the buffer ([`PacketBuf`]) so the same code runs on mbufs in the workers
//! and on byte vectors in in-memory tests. The stages live in their own files:
//! this one classifies and tracks connections (IPVS's `ip_vs_in`/`ip_vs_out`), `forward.rs`
//! rewrites and picks the egress (NAT/DR/TUN, routes, neighbours), `local.rs` answers for the
//! director itself (ARP, ICMP echo, ICMP errors).

use crate::dataplane::conn::{
    tcp_flags, Conn, ConnIdx, ConnTable, Direction, FlowKey, InsertError, LoadChange, LoadClass,
    NewConn, NewTemplate, TemplateKey, Timeouts,
};
use crate::dataplane::drop::{Drop, PipelineDrop};
use crate::dataplane::neigh::{NeighEvent, NeighTable, PendingQueue};
use crate::dataplane::netstate::NetState;
use crate::dataplane::packet::PacketBuf;
use crate::dataplane::ratelimit::TokenBucket;
use crate::dataplane::snapshot::{protocol_of, ServiceRt, Snapshot};
use crate::dataplane::steering;
use crate::metrics::WorkerCounters;
use crate::model::ServiceKey;
use crate::wire::{parse_frame, PacketKind, PacketMeta};
use crossbeam::channel::Sender;
use sched::FlowInfo;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// What to do with a processed packet.
#[derive(Debug)]
pub enum Action<P> {
    /// Transmit on this port.
    Tx(u16, P),
    /// Hand to the worker that owns the flow (its redirect ring).
    Redirect(usize, P),
    /// Drop and count.
    Drop(Drop, P),
    /// Free without counting a drop (e.g. an ARP reply we learned from).
    Consumed(P),
    /// Kept by the pipeline (waiting for ARP); it comes back later through `extra`.
    Held,
}

/// The state a pipeline reads for one burst.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// Services and destinations.
    pub snap: &'a Snapshot,
    /// Ports and routes.
    pub net: &'a NetState,
    /// Neighbours.
    pub neigh: &'a NeighTable,
    /// Seconds since the worker started (connection timers).
    pub now_s: u32,
    /// Nanoseconds since the worker started (rate limits, ARP queue).
    pub now_ns: u64,
}

/// Tunables of a pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// This worker's index.
    pub worker: usize,
    /// Number of workers (flow ownership).
    pub n_workers: usize,
    /// Connection-table capacity.
    pub conn_capacity: usize,
    /// ICMP errors per second this worker may send.
    pub icmp_rate: u64,
    /// ARP requests per second this worker may send.
    pub arp_rate: u64,
}

impl PipelineConfig {
    /// Defaults for worker `worker` of `n_workers`.
    pub fn new(worker: usize, n_workers: usize, conn_capacity: usize) -> Self {
        PipelineConfig {
            worker,
            n_workers,
            conn_capacity,
            icmp_rate: 100,
            arp_rate: 50,
        }
    }
}

/// Most packets generated besides the processed one (ARP requests, ICMP errors, released
/// ARP-pending packets) kept until the worker transmits them.
pub const EXTRA_CAPACITY: usize = 128;

/// One worker's pipeline and the state it owns.
pub struct Pipeline<P: PacketBuf> {
    pub(crate) worker: usize,
    pub(crate) n_workers: usize,
    /// This worker's connection table.
    pub conns: ConnTable<Ipv4Addr>,
    pub(crate) counters: Arc<WorkerCounters>,
    pub(crate) pending: PendingQueue<P>,
    pub(crate) icmp_limit: TokenBucket,
    pub(crate) arp_limit: TokenBucket,
    pub(crate) neigh_tx: Option<Sender<NeighEvent>>,
    pub(crate) pool: P::Pool,
    /// Generated packets to transmit: (port, packet). Preallocated; never grows.
    pub extra: Vec<(u16, P)>,
    pub(crate) ip_ident: u16,
}

impl<P: PacketBuf> Pipeline<P> {
    /// A pipeline with an empty connection table.
    pub fn new(
        cfg: &PipelineConfig,
        timeouts: Timeouts,
        counters: Arc<WorkerCounters>,
        pool: P::Pool,
        neigh_tx: Option<Sender<NeighEvent>>,
    ) -> Self {
        counters.conn_table_capacity.set(cfg.conn_capacity as u64);
        Pipeline {
            worker: cfg.worker,
            n_workers: cfg.n_workers.max(1),
            conns: ConnTable::with_capacity(cfg.conn_capacity, timeouts),
            counters,
            pending: PendingQueue::new(64, 4, 3_000_000_000),
            icmp_limit: TokenBucket::new(cfg.icmp_rate, cfg.icmp_rate.max(1)),
            arp_limit: TokenBucket::new(cfg.arp_rate, cfg.arp_rate.max(1)),
            neigh_tx,
            pool,
            extra: Vec::with_capacity(EXTRA_CAPACITY),
            ip_ident: (cfg.worker as u16).wrapping_mul(0x2f1b),
        }
    }

    /// This worker's counters.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Processes one frame received on `in_port`. `steered` is true for frames that came
    /// through this worker's redirect ring (they are known to be ours).
    #[inline]
    pub fn process(&mut self, pkt: P, in_port: u16, ctx: &Ctx, steered: bool) -> Action<P> {
        let meta = match parse_frame(pkt.data()) {
            Ok(m) => m,
            Err(r) => return Action::Drop(r.into(), pkt),
        };
        match meta.kind {
            PacketKind::Tcp | PacketKind::Udp => self.transport(pkt, &meta, in_port, ctx, steered),
            PacketKind::Icmp => self.icmp(pkt, &meta, in_port, ctx, steered),
            PacketKind::Arp => self.arp(pkt, &meta, in_port, ctx),
            PacketKind::OtherIp => {
                Action::Drop(crate::wire::DropReason::UnsupportedProtocol.into(), pkt)
            }
            PacketKind::OtherEthertype => {
                Action::Drop(crate::wire::DropReason::UnsupportedEthertype.into(), pkt)
            }
        }
    }

    /// The worker owning flows of this client endpoint, if not this one.
    #[inline]
    pub(crate) fn foreign_owner(&self, client: IpAddr, port: u16, steered: bool) -> Option<usize> {
        if steered || self.n_workers == 1 {
            return None;
        }
        let o = steering::owner(client, port, self.n_workers);
        (o != self.worker).then_some(o)
    }

    fn transport(
        &mut self,
        pkt: P,
        meta: &PacketMeta,
        in_port: u16,
        ctx: &Ctx,
        steered: bool,
    ) -> Action<P> {
        if meta.is_fragment {
            return Action::Drop(PipelineDrop::FirstFragment.into(), pkt);
        }
        if let Some(svc) = ctx.snap.service_for(meta.proto, meta.dst, meta.dst_port) {
            if let Some(o) = self.foreign_owner(meta.src, meta.src_port, steered) {
                return Action::Redirect(o, pkt);
            }
            return self.inbound(pkt, meta, svc, in_port, ctx);
        }
        if ctx.snap.is_masq_source(meta.proto, meta.src, meta.src_port) {
            if let Some(o) = self.foreign_owner(meta.dst, meta.dst_port, steered) {
                return Action::Redirect(o, pkt);
            }
            return self.reply(pkt, meta, ctx);
        }
        Action::Drop(PipelineDrop::NotForUs.into(), pkt)
    }

    /// Client -> virtual service (IPVS's ip_vs_in).
    fn inbound(
        &mut self,
        pkt: P,
        meta: &PacketMeta,
        svc: &ServiceRt,
        in_port: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (meta.src, meta.dst) else {
            return Action::Drop(crate::wire::DropReason::AddressFamily.into(), pkt);
        };
        let tcp = meta.proto == 6;
        let flags = meta.tcp_flags;
        // IPVS schedules TCP only on a SYN without RST.
        let syn = tcp && flags & tcp_flags::SYN != 0 && flags & tcp_flags::RST == 0;
        let key = FlowKey::new(meta.proto, src, meta.src_port, dst, meta.dst_port);
        let mut found = self.conns.lookup_in(&key);
        if let (Some(i), true) = (found, syn) {
            // conn_reuse_mode 1: a SYN to a TIME_WAIT/CLOSE entry starts over.
            if let Some(old) = self.conns.reuse_on_syn(i, flags) {
                self.release(&old, ctx.snap);
                found = None;
            }
        }
        let idx = match found {
            Some(i) => i,
            None => {
                if tcp && !syn {
                    return Action::Drop(PipelineDrop::NoConnection.into(), pkt);
                }
                match self.new_conn(meta, svc, src, dst, ctx) {
                    Ok(i) => i,
                    Err(PipelineDrop::NoDestination) => {
                        self.counters.conns_refused.inc();
                        return self.reject_unreachable(pkt, meta, in_port, ctx);
                    }
                    Err(d) => return Action::Drop(d.into(), pkt),
                }
            }
        };
        let Some(conn) = self.conns.get(idx) else {
            return Action::Drop(PipelineDrop::NoConnection.into(), pkt);
        };
        let (dest_id, fwd, daddr, dport) =
            (conn.dest_id(), conn.forward(), conn.daddr(), conn.dport());
        let Some((dsvc, dest)) = ctx.snap.dest(dest_id) else {
            return Action::Drop(PipelineDrop::DestRemoved.into(), pkt);
        };
        if let Some(ch) = self
            .conns
            .on_packet(idx, Direction::Input, flags, ctx.now_s)
        {
            apply_load(&dest.load, ch.load);
        }
        let len = pkt.len() as u64;
        dest.stats.slot(self.worker).count_in(len);
        dsvc.stats.slot(self.worker).count_in(len);
        self.forward(pkt, meta, fwd, daddr, dport, in_port, ctx, false)
    }

    /// Schedules and creates a connection (and its persistence template).
    fn new_conn(
        &mut self,
        meta: &PacketMeta,
        svc: &ServiceRt,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ctx: &Ctx,
    ) -> Result<ConnIdx, PipelineDrop> {
        let proto = protocol_of(meta.proto).ok_or(PipelineDrop::NotForUs)?;
        let flow = FlowInfo {
            saddr: meta.src,
            sport: meta.src_port,
            daddr: meta.dst,
            dport: meta.dst_port,
        };
        let (di, template) = match svc.config.persistence {
            Some(timeout) => {
                let vport = match svc.config.key {
                    ServiceKey::Addr { port, .. } => port,
                    ServiceKey::Fwmark { .. } => 0,
                };
                let tkey =
                    TemplateKey::for_service(proto, src, svc.config.netmask_prefix, dst, vport);
                let snap = ctx.snap;
                let used =
                    self.conns
                        .use_template(&tkey, timeout, ctx.now_s, |t: &Conn<Ipv4Addr>| {
                            snap.dest(t.dest_id()).is_some()
                        });
                let from_template = used.and_then(|t| {
                    let id = self.conns.get(t)?.dest_id();
                    let di = svc.dests.iter().position(|d| d.id == id)?;
                    Some((di, t))
                });
                match from_template {
                    Some((di, t)) => (di, Some(t)),
                    None => {
                        let di = svc
                            .scheduler
                            .schedule(&flow)
                            .ok_or(PipelineDrop::NoDestination)?;
                        let d = svc.dests.get(di).ok_or(PipelineDrop::NoDestination)?;
                        let IpAddr::V4(daddr) = d.config.addr else {
                            return Err(PipelineDrop::NoDestination);
                        };
                        let t = self
                            .conns
                            .insert_template(
                                NewTemplate {
                                    key: tkey,
                                    daddr,
                                    dport: d.config.port,
                                    fwd: d.config.forward,
                                    dest_id: d.id,
                                    service_id: svc.index,
                                    timeout,
                                },
                                ctx.now_s,
                            )
                            .map_err(|_| {
                                self.counters.conns_refused.inc();
                                PipelineDrop::ConnTableFull
                            })?;
                        d.load.bind_template();
                        (di, Some(t))
                    }
                }
            }
            None => (
                svc.scheduler
                    .schedule(&flow)
                    .ok_or(PipelineDrop::NoDestination)?,
                None,
            ),
        };
        let d = svc.dests.get(di).ok_or(PipelineDrop::NoDestination)?;
        let IpAddr::V4(daddr) = d.config.addr else {
            return Err(PipelineDrop::NoDestination);
        };
        // A real server port of 0 (port-zero persistent services) keeps the packet's port.
        let dport = if d.config.port == 0 {
            meta.dst_port
        } else {
            d.config.port
        };
        let new = NewConn {
            proto,
            caddr: src,
            cport: meta.src_port,
            vaddr: dst,
            vport: meta.dst_port,
            daddr,
            dport,
            fwd: d.config.forward,
            dest_id: d.id,
            service_id: svc.index,
            template,
        };
        match self.conns.insert(new, ctx.now_s) {
            Ok(i) => {
                // New connections start inactive (IPVS: IP_VS_CONN_F_INACTIVE); the first
                // packet's state transition may activate them.
                d.load.bind(false);
                self.counters.conns_created.inc();
                d.stats.slot(self.worker).count_conn();
                svc.stats.slot(self.worker).count_conn();
                self.counters.conn_table_size.set(self.conns.len() as u64);
                Ok(i)
            }
            Err(InsertError::TableFull) => {
                self.counters.conns_refused.inc();
                Err(PipelineDrop::ConnTableFull)
            }
            Err(_) => {
                self.counters.conns_refused.inc();
                Err(PipelineDrop::NoConnection)
            }
        }
    }

    /// Real server -> client in VS/NAT (IPVS's ip_vs_out + SNAT).
    fn reply(&mut self, mut pkt: P, meta: &PacketMeta, ctx: &Ctx) -> Action<P> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (meta.src, meta.dst) else {
            return Action::Drop(crate::wire::DropReason::AddressFamily.into(), pkt);
        };
        let key = FlowKey::new(meta.proto, src, meta.src_port, dst, meta.dst_port);
        let Some(idx) = self.conns.lookup_reply(&key) else {
            return Action::Drop(PipelineDrop::NoConnection.into(), pkt);
        };
        let Some(conn) = self.conns.get(idx) else {
            return Action::Drop(PipelineDrop::NoConnection.into(), pkt);
        };
        let (dest_id, vaddr, vport) = (conn.dest_id(), conn.vaddr(), conn.vport());
        let Some((svc, dest)) = ctx.snap.dest(dest_id) else {
            return Action::Drop(PipelineDrop::DestRemoved.into(), pkt);
        };
        let Some(route) = ctx.net.routes.lookup(dst) else {
            return Action::Drop(PipelineDrop::NoRoute.into(), pkt);
        };
        if let Some(ch) = self
            .conns
            .on_packet(idx, Direction::Output, meta.tcp_flags, ctx.now_s)
        {
            apply_load(&dest.load, ch.load);
        }
        let len = pkt.len() as u64;
        dest.stats.slot(self.worker).count_out(len);
        svc.stats.slot(self.worker).count_out(len);
        if let Err(r) = crate::wire::nat::snat(pkt.data_mut(), meta, IpAddr::V4(vaddr), vport) {
            return Action::Drop(r.into(), pkt);
        }
        self.egress(pkt, route, ctx)
    }

    /// Unbinds a connection that left the table (expired, reused, removed) from its
    /// destination's counts, if that destination is still configured.
    pub fn release(&mut self, conn: &Conn<Ipv4Addr>, snap: &Snapshot) {
        if let Some((_, dest)) = snap.dest(conn.dest_id()) {
            match conn.load_class() {
                LoadClass::Active => dest.load.unbind(true),
                LoadClass::Inactive => dest.load.unbind(false),
                LoadClass::Persistent => dest.load.unbind_template(),
            }
        }
    }

    /// Runs the connection timers: expires at most `max` entries due at `ctx.now_s`.
    pub fn expire(&mut self, ctx: &Ctx, max: usize) -> usize {
        let mut gone: [Option<Conn<Ipv4Addr>>; 64] = [None; 64];
        let mut total = 0;
        loop {
            let mut n = 0;
            let limit = (max - total).min(gone.len());
            let stats = self.conns.advance(ctx.now_s, limit, |_, c| {
                if n < gone.len() {
                    gone[n] = Some(*c);
                    n += 1;
                }
            });
            for c in gone.iter_mut().take(n) {
                if let Some(c) = c.take() {
                    self.release(&c, ctx.snap);
                }
            }
            total += n;
            self.counters.conns_expired.add(n as u64);
            if !stats.more || total >= max || n == 0 {
                break;
            }
        }
        self.counters.conn_table_size.set(self.conns.len() as u64);
        total
    }

    /// Removes every connection (the daemon's shutdown and tests), unbinding each.
    pub fn flush(&mut self, snap: &Snapshot) {
        // Connections first: a template that still controls one is not removable.
        let mut idxs: Vec<(bool, ConnIdx)> = self
            .conns
            .iter()
            .map(|(i, c)| (c.is_template(), i))
            .collect();
        idxs.sort_by_key(|&(template, _)| template);
        for (_, i) in idxs {
            if let Some(c) = self.conns.remove(i) {
                self.release(&c, snap);
            }
        }
        self.counters.conn_table_size.set(self.conns.len() as u64);
    }
}

/// Moves one count between ActiveConn and InActConn as a state change says.
#[inline]
pub(crate) fn apply_load(load: &sched::DestLoad, change: LoadChange) {
    match change {
        LoadChange::None => {}
        LoadChange::Activated => load.set_active(false, true),
        LoadChange::Deactivated => load.set_active(true, false),
    }
}
