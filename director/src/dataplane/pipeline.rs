//! The per-packet pipeline of one worker: parse -> classify -> steer -> track -> forward.
//!
//! `Pipeline::process` takes one received frame and says what to do with it ([`Action`]);
//! `Pipeline::process_burst` does the same for a burst, in passes so that the connection
//! table's cache misses overlap (as DPDK's l3fwd prefetches): classify every frame (parse and
//! key hash for the fast path's plain frames, which look their connection up before any
//! service; service / NAT-source lookup and steering for the others) and prefetch its index
//! slot, then prefetch each frame's candidate entry, then act on each frame in order. Only the last pass
//! reads or changes state, so a burst gives exactly the results of frame-by-frame processing.
//! It is generic over the buffer ([`PacketBuf`]) so the same code runs on mbufs in the workers
//! and on byte vectors in in-memory tests. The stages live in their own files:
//! this one classifies and tracks connections (IPVS's `ip_vs_in`/`ip_vs_out`), `forward.rs`
//! rewrites and picks the egress (NAT/DR/TUN, routes, neighbours), `local.rs` answers for the
//! director itself (ARP, ICMP echo, ICMP errors).

use crate::dataplane::conn::{
    tcp_flags, Candidate, Conn, ConnIdx, ConnTable, Direction, FlowKey, InsertError, KeyHash,
    LoadChange, LoadClass, NewConn, NewTemplate, TemplateKey, Timeouts,
};
use crate::dataplane::drop::{Drop, PipelineDrop};
use crate::dataplane::egress_cache::EgressCache;
use crate::dataplane::fastpath::Fast;
use crate::dataplane::neigh::{NeighEvent, NeighTable, PendingQueue};
use crate::dataplane::netstate::NetState;
use crate::dataplane::packet::PacketBuf;
use crate::dataplane::ratelimit::TokenBucket;
use crate::dataplane::snapshot::{protocol_of, DestRt, ServiceRt, Snapshot};
use crate::dataplane::steering;
use crate::metrics::{ServiceStats, WorkerCounters};
use crate::model::ServiceKey;
use crate::wire::ipv4::proto;
use crate::wire::plain::Plain;
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
    /// Take the established-flow fast path (`fastpath.rs`) where it applies; off, every frame
    /// takes the full path (same results: a test compares the two).
    pub fast_path: bool,
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
            fast_path: true,
        }
    }
}

/// Frames [`Pipeline::process_burst`] classifies before acting on the first of them.
pub const STAGE: usize = 32;

/// How many frames ahead of the one being acted on `process_burst` prefetches the candidate
/// connection entry: far enough for the load to arrive, near enough that the loads in flight
/// fit the core's miss buffers. Measured at 1 M connections (`pipeline_cost nat 1000000
/// 10000000 mbuf`, minimum of 3 interleaved runs): with the fast path at about 25 ns a frame,
/// 8 -> 49.3 ns, 12 -> 47.8 ns, 16 -> 47.4 ns (at about 35 ns a frame, 8 had measured best:
/// 4 -> 80, 8 -> 72, 16 -> 80, 32 = all at once -> 100 ns).
const ENTRY_AHEAD: usize = 12;

/// Connection tables larger than this (bytes) have every frame's candidate entry prefetched
/// before the first frame of a burst is acted on ([`STAGE`] ahead instead of
/// [`ENTRY_AHEAD`]): their lines take longer to arrive than twelve frames' work. Measured on
/// the 2-vCPU AMD VM with `pipeline_cost nat N 30000000 mbuf`, the two distances alternated
/// every 1 M packets in one process (12 / 32, ns per packet): 10 M connections (about 960 MB)
/// 72.0 / 58.3, 73.9 / 66.9, 55.4 / 54.4; 6 M 61.3 / 60.7; 3 M 48.3 / 50.3; 1 M 47.8 / 50.2,
/// 52.7 / 55.1; 1 K 27.8 / 27.3.
const FAR_TABLE_BYTES: usize = 768 << 20;

/// Connection tables larger than this (bytes, a core's L1 data cache) are prefetched by
/// `process_burst`. Even a 1 K-connection table (about 100 KB) misses L1, and a profile of it
/// showed the entry load as the biggest stall without the prefetch.
const PREFETCH_ABOVE_BYTES: usize = 32 << 10;

/// What the classifying pass decided about a frame: everything that depends only on the frame
/// and the snapshot, nothing that depends on connection state.
#[derive(Clone, Copy)]
pub(crate) enum Class {
    /// Refused before any lookup.
    Drop(Drop),
    /// Owned by another worker.
    Redirect(usize),
    /// Client -> virtual service number `svc` (IPVS's ip_vs_in); `hash` of its inbound key.
    Inbound { svc: u32, hash: KeyHash },
    /// Real server -> client of a NAT service (IPVS's ip_vs_out); `hash` of its reply key.
    Reply { hash: KeyHash },
    /// ICMP for the director or about a tracked flow.
    Icmp,
    /// TCP or UDP for a VIP or director address where no virtual service listens.
    Closed,
    /// ARP.
    Arp,
    /// A plain frame (not a SYN) for the fast path (`fastpath.rs`), `hash` of its tuple (as
    /// an inbound or a reply key alike); the full path classifies it if the fast path
    /// declines.
    Plain { hash: KeyHash, p: Plain },
}

impl Class {
    /// The connection-table hash to prefetch for, if the frame needs a lookup.
    #[inline(always)]
    fn hash(self) -> Option<KeyHash> {
        match self {
            Class::Inbound { hash, .. } | Class::Reply { hash } | Class::Plain { hash, .. } => {
                Some(hash)
            }
            _ => None,
        }
    }
}

/// A parse result to overwrite (never read before a successful parse wrote it).
const BLANK_META: PacketMeta = PacketMeta::BLANK;

/// The frames of one burst between the passes of `process_burst`: allocated with the
/// pipeline, so a burst initialises nothing.
struct Stage<P> {
    pkts: [Option<P>; STAGE],
    ports: [u16; STAGE],
    metas: [PacketMeta; STAGE],
    classes: [Class; STAGE],
    /// The entry `prefetch_entry` named for each frame's key.
    cands: [Candidate; STAGE],
}

impl<P> Stage<P> {
    fn new() -> Box<Self> {
        Box::new(Stage {
            pkts: [const { None }; STAGE],
            ports: [0; STAGE],
            metas: [BLANK_META; STAGE],
            classes: [Class::Icmp; STAGE],
            cands: [Candidate::NONE; STAGE],
        })
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
    /// `process_burst`'s staging area (taken out while a burst runs).
    stage: Option<Box<Stage<P>>>,
    /// Resolved egresses toward real servers.
    pub(crate) egress_cache: EgressCache,
    /// Resolved next hops toward clients (NAT replies), by next-hop address.
    pub(crate) hop_cache: EgressCache,
    fast_path: bool,
    /// Table sizes (bytes) above which `process_burst` prefetches, and prefetches every
    /// entry of a burst up front: [`PREFETCH_ABOVE_BYTES`], [`FAR_TABLE_BYTES`] (tests lower
    /// them to run those schedules on small tables).
    prefetch_above: (usize, usize),
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
            stage: Some(Stage::new()),
            egress_cache: EgressCache::new(),
            hop_cache: EgressCache::new(),
            fast_path: cfg.fast_path,
            prefetch_above: (PREFETCH_ABOVE_BYTES, FAR_TABLE_BYTES),
        }
    }

    /// Packets the established-flow fast path forwarded so far.
    pub fn fast_path_hits(&self) -> u64 {
        self.counters.fast_path_packets.get()
    }

    /// This worker's counters.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Makes the calling thread, which runs this pipeline from now on, the only writer of
    /// this worker's share of every destination's load (`sched::claim_writer_slot`): its
    /// binds and unbinds then take no locked instruction. Undone by
    /// [`Pipeline::release_load_slot`]; never two threads at once for one worker index.
    pub fn claim_load_slot(&self) {
        sched::claim_writer_slot(self.worker);
    }

    /// The calling thread no longer writes this worker's load shares (see
    /// [`Pipeline::claim_load_slot`]).
    pub fn release_load_slot(&self) {
        sched::release_writer_slot();
    }

    /// Processes one frame received on `in_port`. `steered` is true for frames that came
    /// through this worker's redirect ring (they are known to be ours).
    #[inline]
    pub fn process(&mut self, pkt: P, in_port: u16, ctx: &Ctx, steered: bool) -> Action<P> {
        let mut meta = BLANK_META;
        let class = self.classify(pkt.data(), ctx, steered, &mut meta);
        self.act(pkt, in_port, &meta, &class, ctx, steered)
    }

    /// Processes a burst of (frame, input port) and hands each frame's [`Action`] and input
    /// port to `done`, in input order: the same actions, state and counters as
    /// [`Pipeline::process`] on each frame in turn, with the connection-table misses of up to
    /// [`STAGE`] frames overlapped. A burst is a new epoch of the destination loads for the
    /// calling thread (`sched::new_epoch`): with a claimed load slot, its picks see the other
    /// workers' new connections as of the burst's start, its own at once.
    #[inline]
    pub fn process_burst<I>(
        &mut self,
        pkts: I,
        ctx: &Ctx,
        steered: bool,
        mut done: impl FnMut(Action<P>, u16),
    ) where
        I: IntoIterator<Item = (P, u16)>,
    {
        sched::new_epoch();
        let mut pkts = pkts.into_iter();
        let Some(mut st) = self.stage.take() else {
            // Only reachable if a previous burst unwound: process frame by frame.
            for (pkt, port) in pkts {
                done(self.process(pkt, port, ctx, steered), port);
            }
            return;
        };
        self.conns.settle_parked();
        // A table that fits L1 gains nothing from prefetching it (the probes cost about 25
        // instructions a frame).
        let table_bytes = self.conns.memory_bytes();
        let prefetch = table_bytes > self.prefetch_above.0;
        let entry_ahead = if table_bytes > self.prefetch_above.1 {
            STAGE
        } else {
            ENTRY_AHEAD
        };
        // The identities the egress caches are checked against, and the fast path's count,
        // once a burst.
        let tables = (ctx.net.routes.id(), ctx.neigh.generation());
        let mut fast = 0u64;
        loop {
            // Pass 1: classify, prefetch each index slot.
            let mut n = 0;
            for (pkt, port) in pkts.by_ref().take(STAGE) {
                let class = &mut st.classes[n];
                self.classify_into(pkt.data(), ctx, steered, &mut st.metas[n], class);
                if prefetch {
                    if let Some(h) = class.hash() {
                        self.conns.prefetch_index(h);
                    }
                }
                st.pkts[n] = Some(pkt);
                st.ports[n] = port;
                n += 1;
            }
            // Pass 2: act in order, prefetching the candidate entry `entry_ahead` frames
            // ahead (for a far table, every frame's before the first is acted on).
            st.cands[..n].fill(Candidate::NONE);
            if prefetch {
                for (c, cand) in st.classes[..n.min(entry_ahead)].iter().zip(&mut st.cands) {
                    if let Some(h) = c.hash() {
                        *cand = self.conns.prefetch_entry(h);
                    }
                }
            }
            // Frames below this are prefetched ahead of (none without prefetching): one
            // test a frame.
            let ahead_end = if prefetch { n.min(STAGE) } else { 0 };
            for i in 0..n {
                let j = i + entry_ahead;
                if j < ahead_end {
                    if let Some(h) = st.classes[j].hash() {
                        st.cands[j] = self.conns.prefetch_entry(h);
                    }
                }
                if let Some(mut pkt) = st.pkts[i].take() {
                    let port = st.ports[i];
                    // `act`, with the fast path's transmit handed to `done` where it is
                    // decided: an Action built there stays in registers, one returned through
                    // `act`'s branches is copied through memory (a store-forwarding stall,
                    // 8 % of the worker's profile).
                    let Class::Plain { hash, p } = st.classes[i] else {
                        let class = st.classes[i];
                        done(
                            self.act_full(pkt, port, &st.metas[i], class, ctx, steered),
                            port,
                        );
                        continue;
                    };
                    match self.established(&mut pkt, &p, hash, st.cands[i], ctx, tables) {
                        (Fast::Tx(out), _) => {
                            fast += 1;
                            done(Action::Tx(out, pkt), port)
                        }
                        (Fast::Drop(d), _) => done(Action::Drop(d, pkt), port),
                        (Fast::Known(idx), reply) => {
                            done(self.act_known(pkt, &p, idx, reply, port, ctx), port)
                        }
                        (Fast::Unknown, _) => {
                            done(self.act_reclassified(pkt, &p, port, ctx, steered), port)
                        }
                    }
                }
            }
            if n < STAGE {
                break;
            }
        }
        self.counters.fast_path_packets.add(fast);
        self.stage = Some(st);
    }

    /// Pass 1: classifies a frame (reads the snapshot only), by the fast path's look where it
    /// applies, else parsed in full into `meta`.
    #[inline(always)]
    fn classify(&self, frame: &[u8], ctx: &Ctx, steered: bool, meta: &mut PacketMeta) -> Class {
        let mut class = Class::Arp;
        self.classify_into(frame, ctx, steered, meta, &mut class);
        class
    }

    /// [`Pipeline::classify`] into `class` (the burst's staging slot: no moves).
    #[inline(always)]
    fn classify_into(
        &self,
        frame: &[u8],
        ctx: &Ctx,
        steered: bool,
        meta: &mut PacketMeta,
        class: &mut Class,
    ) {
        if self.fast_path && self.classify_plain(frame, ctx, steered, meta, class) {
            return;
        }
        *class = self.classify_full(frame, ctx, steered, meta);
    }

    /// Pass 1 of the full path: parses a frame into `meta` and classifies it.
    #[inline(always)]
    fn classify_full(
        &self,
        frame: &[u8],
        ctx: &Ctx,
        steered: bool,
        meta: &mut PacketMeta,
    ) -> Class {
        match parse_frame(frame) {
            Ok(m) => *meta = m,
            Err(r) => return Class::Drop(r.into()),
        }
        match meta.kind {
            PacketKind::Tcp | PacketKind::Udp => self.classify_transport(meta, ctx, steered),
            PacketKind::Icmp => Class::Icmp,
            PacketKind::Arp => Class::Arp,
            PacketKind::OtherIp => Class::Drop(crate::wire::DropReason::UnsupportedProtocol.into()),
            PacketKind::OtherEthertype => {
                Class::Drop(crate::wire::DropReason::UnsupportedEthertype.into())
            }
        }
    }

    #[inline(always)]
    pub(crate) fn classify_transport(&self, meta: &PacketMeta, ctx: &Ctx, steered: bool) -> Class {
        if meta.is_fragment {
            return Class::Drop(PipelineDrop::FirstFragment.into());
        }
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (meta.src, meta.dst) else {
            return Class::Drop(crate::wire::DropReason::AddressFamily.into());
        };
        if let Some(svc) = ctx.snap.service_for(meta.proto, meta.dst, meta.dst_port) {
            if let Some(o) = self.foreign_owner(meta.src, meta.src_port, steered) {
                return Class::Redirect(o);
            }
            let key = FlowKey::new(meta.proto, src, meta.src_port, dst, meta.dst_port);
            return Class::Inbound {
                svc: svc.index,
                hash: self.conns.hash_in(&key),
            };
        }
        if ctx.snap.is_masq_source(meta.proto, meta.src, meta.src_port) {
            if let Some(o) = self.foreign_owner(meta.dst, meta.dst_port, steered) {
                return Class::Redirect(o);
            }
            let key = FlowKey::new(meta.proto, src, meta.src_port, dst, meta.dst_port);
            return Class::Reply {
                hash: self.conns.hash_reply(&key),
            };
        }
        // For one of our addresses, but no service there: the host kernel's answer.
        if (meta.proto == proto::TCP || meta.proto == proto::UDP)
            && (ctx.net.is_local(dst) || ctx.snap.is_vip(meta.dst))
        {
            return Class::Closed;
        }
        Class::Drop(PipelineDrop::NotForUs.into())
    }

    /// Pass 2: acts on a classified frame (the only pass that reads or changes state).
    #[inline(always)]
    fn act(
        &mut self,
        mut pkt: P,
        in_port: u16,
        meta: &PacketMeta,
        class: &Class,
        ctx: &Ctx,
        steered: bool,
    ) -> Action<P> {
        let Class::Plain { hash, p } = class else {
            return self.act_full(pkt, in_port, meta, *class, ctx, steered);
        };
        let tables = (ctx.net.routes.id(), ctx.neigh.generation());
        match self.established(&mut pkt, p, *hash, Candidate::NONE, ctx, tables) {
            (Fast::Tx(port), _) => {
                self.counters.fast_path_packets.inc();
                Action::Tx(port, pkt)
            }
            (Fast::Drop(d), _) => Action::Drop(d, pkt),
            (Fast::Known(idx), reply) => self.act_known(pkt, p, idx, reply, in_port, ctx),
            (Fast::Unknown, _) => self.act_reclassified(pkt, p, in_port, ctx, steered),
        }
    }

    /// The full path's handling of a packet of known connection `idx` (a reply if `reply`)
    /// that the fast path found but did not forward (untouched).
    #[inline(never)]
    fn act_known(
        &mut self,
        pkt: P,
        p: &Plain,
        idx: ConnIdx,
        reply: bool,
        in_port: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        let meta = crate::wire::plain::meta(pkt.data(), p);
        if reply {
            self.reply_known(pkt, &meta, idx, ctx)
        } else {
            self.inbound_known(pkt, &meta, idx, in_port, ctx)
        }
    }

    /// The full path for a plain frame `p` the fast path declined (untouched).
    #[inline(never)]
    fn act_reclassified(
        &mut self,
        pkt: P,
        p: &Plain,
        in_port: u16,
        ctx: &Ctx,
        steered: bool,
    ) -> Action<P> {
        let meta = crate::wire::plain::meta(pkt.data(), p);
        let class = self.classify_transport(&meta, ctx, steered);
        self.act_full(pkt, in_port, &meta, class, ctx, steered)
    }

    /// Pass 2 of the full path.
    #[inline(always)]
    fn act_full(
        &mut self,
        pkt: P,
        in_port: u16,
        meta: &PacketMeta,
        class: Class,
        ctx: &Ctx,
        steered: bool,
    ) -> Action<P> {
        match class {
            Class::Drop(d) => Action::Drop(d, pkt),
            Class::Redirect(o) => Action::Redirect(o, pkt),
            Class::Inbound { svc, hash } => match ctx.snap.services.get(svc as usize) {
                Some(svc) => self.inbound(pkt, meta, svc, hash, in_port, ctx),
                None => Action::Drop(PipelineDrop::NotForUs.into(), pkt),
            },
            Class::Reply { hash } => self.reply(pkt, meta, hash, ctx),
            Class::Icmp => self.icmp(pkt, meta, in_port, ctx, steered),
            Class::Closed => self.refuse_closed(pkt, meta, in_port, ctx),
            Class::Arp => self.arp(pkt, meta, in_port, ctx),
            // Only `act` is given these.
            Class::Plain { p, .. } => self.act_reclassified(pkt, &p, in_port, ctx, steered),
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

    /// Client -> virtual service (IPVS's ip_vs_in), `hash` being its inbound key's.
    #[inline(always)]
    fn inbound(
        &mut self,
        pkt: P,
        meta: &PacketMeta,
        svc: &ServiceRt,
        hash: KeyHash,
        in_port: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (meta.src, meta.dst) else {
            return Action::Drop(crate::wire::DropReason::AddressFamily.into(), pkt);
        };
        let key = &FlowKey::new(meta.proto, src, meta.src_port, dst, meta.dst_port);
        let tcp = meta.proto == 6;
        let flags = meta.tcp_flags;
        // IPVS schedules TCP only on a SYN without RST.
        let syn = tcp && flags & tcp_flags::SYN != 0 && flags & tcp_flags::RST == 0;
        let mut found = self.conns.lookup_in_hashed(key, hash);
        if let (Some(i), true) = (found, syn) {
            // conn_reuse_mode 1: a SYN to a TIME_WAIT/CLOSE entry starts over.
            if let Some(old) = self.conns.reuse_on_syn(i, flags) {
                self.release(&old, ctx.snap);
                found = None;
            }
        }
        let (idx, fresh) = match found {
            Some(i) => return self.inbound_known(pkt, meta, i, in_port, ctx),
            None => {
                if tcp && !syn {
                    return Action::Drop(PipelineDrop::NoConnection.into(), pkt);
                }
                match self.new_conn(meta, svc, src, dst, ctx) {
                    Ok((i, d)) => (i, d),
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
        let (fwd, daddr, dport) = (conn.forward(), conn.daddr(), conn.dport());
        // Created by this packet, already in the state it moves the connection to and bound
        // as such (`ConnTable::insert_first`).
        let dest = fresh;
        let len = pkt.len() as u64;
        dest.stats.slot(self.worker).count_in(len);
        svc.stats.slot(self.worker).count_in(len);
        self.forward(pkt, meta, fwd, daddr, dport, in_port, ctx, false)
    }

    /// The rest of [`Pipeline::inbound`] for a packet of the existing connection `idx`: its
    /// state, counts and forwarding. The fast path hands over here what it found but does not
    /// forward itself (TUN, an egress to resolve, ...).
    pub(crate) fn inbound_known(
        &mut self,
        pkt: P,
        meta: &PacketMeta,
        idx: ConnIdx,
        in_port: u16,
        ctx: &Ctx,
    ) -> Action<P> {
        let Some(conn) = self.conns.get(idx) else {
            return Action::Drop(PipelineDrop::NoConnection.into(), pkt);
        };
        let (dest_id, fwd, daddr, dport) =
            (conn.dest_id(), conn.forward(), conn.daddr(), conn.dport());
        let Some((dsvc, dest)) = ctx.snap.dest(dest_id) else {
            return Action::Drop(PipelineDrop::DestRemoved.into(), pkt);
        };
        let len = pkt.len() as u64;
        self.track(
            idx,
            Direction::Input,
            meta.tcp_flags,
            dsvc,
            dest,
            len,
            ctx.now_s,
        );
        self.forward(pkt, meta, fwd, daddr, dport, in_port, ctx, false)
    }

    /// Feeds a packet of `len` bytes in direction `dir` to connection `idx` (state, expiry,
    /// the destination's active/inactive counts) and counts it on its real server `dest` and
    /// service `svc`: what every path does for a packet of a known connection it forwards.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn track(
        &mut self,
        idx: ConnIdx,
        dir: Direction,
        tcp_flags: u8,
        svc: &ServiceRt,
        dest: &DestRt,
        len: u64,
        now_s: u32,
    ) {
        let load = self.conns.on_packet_load(idx, dir, tcp_flags, now_s);
        self.count(load, dir, &svc.stats, dest, len);
    }

    /// The counting part of [`Pipeline::track`]: the state change `load` on the destination's
    /// active/inactive counts, the packet on its real server and service.
    #[inline(always)]
    pub(crate) fn count(
        &self,
        load: LoadChange,
        dir: Direction,
        svc: &ServiceStats,
        dest: &DestRt,
        len: u64,
    ) {
        // Nearly always no change: one test, then nothing to do.
        if load != LoadChange::None {
            apply_load(&dest.load, load);
        }
        let (d, s) = (dest.stats.slot(self.worker), svc.slot(self.worker));
        match dir {
            Direction::Input => {
                d.count_in(len);
                s.count_in(len);
            }
            Direction::Output => {
                d.count_out(len);
                s.count_out(len);
            }
        }
    }

    /// Schedules and creates a connection (and its persistence template) in the state its
    /// first packet (`meta`) moves it to, bound on its destination, which comes back with it.
    fn new_conn<'s>(
        &mut self,
        meta: &PacketMeta,
        svc: &'s ServiceRt,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ctx: &Ctx,
    ) -> Result<(ConnIdx, &'s Arc<DestRt>), PipelineDrop> {
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
        match self.conns.insert_first(new, meta.tcp_flags, ctx.now_s) {
            Ok((i, class)) => {
                // IPVS binds new connections inactive (IP_VS_CONN_F_INACTIVE) and the first
                // packet's state transition may activate them: one update for both here.
                d.load.bind(class == LoadClass::Active);
                self.counters.conns_created.inc();
                d.stats.slot(self.worker).count_conn();
                svc.stats.slot(self.worker).count_conn();
                self.counters.conn_table_size.set(self.conns.len() as u64);
                self.counters
                    .reply_takeovers
                    .set(self.conns.reply_takeovers());
                Ok((i, d))
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

    /// Real server -> client in VS/NAT (IPVS's ip_vs_out + SNAT), `hash` being its reply
    /// key's.
    #[inline(always)]
    fn reply(&mut self, pkt: P, meta: &PacketMeta, hash: KeyHash, ctx: &Ctx) -> Action<P> {
        let (IpAddr::V4(src), IpAddr::V4(dst)) = (meta.src, meta.dst) else {
            return Action::Drop(crate::wire::DropReason::AddressFamily.into(), pkt);
        };
        let key = FlowKey::new(meta.proto, src, meta.src_port, dst, meta.dst_port);
        let Some(idx) = self.conns.lookup_reply_hashed(&key, hash) else {
            return Action::Drop(PipelineDrop::NoConnection.into(), pkt);
        };
        self.reply_known(pkt, meta, idx, ctx)
    }

    /// The rest of [`Pipeline::reply`] for a reply of the existing connection `idx` (the fast
    /// path hands over here what it found but does not forward itself).
    pub(crate) fn reply_known(
        &mut self,
        mut pkt: P,
        meta: &PacketMeta,
        idx: ConnIdx,
        ctx: &Ctx,
    ) -> Action<P> {
        let IpAddr::V4(dst) = meta.dst else {
            return Action::Drop(crate::wire::DropReason::AddressFamily.into(), pkt);
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
        let len = pkt.len() as u64;
        self.track(
            idx,
            Direction::Output,
            meta.tcp_flags,
            svc,
            dest,
            len,
            ctx.now_s,
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::neigh::{NeighConfig, NeighManager};
    use crate::dataplane::netstate::PortInfo;
    use crate::dataplane::packet::VecPacket;
    use crate::dataplane::route::RouteTableBuilder;
    use crate::dataplane::snapshot::{ServiceInput, SnapshotBuilder, StatsRegistry};
    use crate::model::{DestConfig, ForwardMethod, Protocol, SchedFlags, ServiceConfig};
    use crate::wire::{checksum, MacAddr};

    const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 200);
    const P0: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
    const P1: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
    const RS: [Ipv4Addr; 2] = [
        Ipv4Addr::new(198, 51, 100, 10),
        Ipv4Addr::new(198, 51, 100, 11),
    ];

    /// Ethernet + IPv4 + TCP (no payload) with valid checksums.
    fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xfe]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&src.octets());
        f[30..34].copy_from_slice(&dst.octets());
        let c = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f[46] = 5 << 4;
        f[47] = flags;
        f[48..50].copy_from_slice(&0xffffu16.to_be_bytes());
        let c = checksum::finish(
            checksum::pseudo_header_v4(src, dst, 6, 20) + checksum::sum(&f[34..54]),
        );
        f[50..52].copy_from_slice(&c.to_be_bytes());
        f
    }

    /// Client `i` (0..7), on the outside network (a static neighbour).
    fn client_addr(i: u16) -> Ipv4Addr {
        Ipv4Addr::new(203, 0, 113, 10 + i as u8)
    }

    struct World {
        snap: Snapshot,
        net: NetState,
        neigh: Arc<NeighTable>,
    }

    fn world() -> World {
        let routes = RouteTableBuilder::new()
            .connected(0, P0, 24, 1500)
            .connected(1, P1, 24, 1500)
            .build()
            .unwrap();
        let net = NetState {
            ports: vec![
                PortInfo {
                    mac: MacAddr([2, 0, 0, 0, 0, 1]),
                    mtu: 1500,
                    addrs: vec![P0],
                },
                PortInfo {
                    mac: MacAddr([2, 0, 0, 0, 1, 1]),
                    mtu: 1500,
                    addrs: vec![P1],
                },
            ],
            routes,
        };
        let mut mgr = NeighManager::new(NeighConfig::default(), Arc::new(net.routes.clone()));
        for (i, rs) in RS.iter().enumerate() {
            mgr.add_static(1, *rs, [2, 0, 0, 0, 1, 10 + i as u8])
                .unwrap();
        }
        for i in 0..7 {
            mgr.add_static(0, client_addr(i), [2, 0, 0, 0, 0, 10 + i as u8])
                .unwrap();
        }
        let svc = ServiceInput {
            config: ServiceConfig {
                key: ServiceKey::Addr {
                    proto: Protocol::Tcp,
                    addr: IpAddr::V4(VIP),
                    port: 80,
                },
                scheduler: "rr".into(),
                flags: SchedFlags::default(),
                persistence: None,
                netmask_prefix: 32,
                one_packet: false,
            },
            dests: RS
                .iter()
                .enumerate()
                .map(|(i, rs)| {
                    let d = DestConfig {
                        addr: IpAddr::V4(*rs),
                        port: 8080,
                        forward: ForwardMethod::Masq,
                        weight: 1,
                        u_threshold: 0,
                        l_threshold: 0,
                    };
                    (i as u32 + 1, d)
                })
                .collect(),
        };
        let mut reg = StatsRegistry::new(1);
        let snap = SnapshotBuilder::new(&mut reg, None)
            .build(1, &[svc], Default::default())
            .unwrap();
        World {
            snap,
            net,
            neigh: mgr.snapshot(),
        }
    }

    /// 74 frames: for 20 clients a SYN, an ACK in the same burst, a reply from the real
    /// server rr picked (RS[i % 2]) and a FIN; plus garbage, a frame for nobody, a reply
    /// without a connection and an ACK without a connection, spread over three bursts.
    fn frames() -> Vec<(Vec<u8>, u16)> {
        let client = |i: u16| (client_addr(i % 7), 1000 + i);
        let mut v = Vec::new();
        for i in 0..20u16 {
            let (c, p) = client(i);
            v.push((tcp(c, p, VIP, 80, tcp_flags::SYN), 0));
        }
        v.push((vec![0xde, 0xad], 0));
        for i in 0..20u16 {
            let (c, p) = client(i);
            v.push((tcp(c, p, VIP, 80, tcp_flags::ACK), 0));
            v.push((tcp(RS[usize::from(i % 2)], 8080, c, p, tcp_flags::ACK), 1));
        }
        v.push((
            tcp(Ipv4Addr::new(192, 0, 2, 99), 5, P0, 80, tcp_flags::SYN),
            0,
        ));
        v.push((tcp(RS[0], 8080, Ipv4Addr::new(192, 0, 2, 99), 5, 0x10), 1));
        v.push((tcp(Ipv4Addr::new(192, 0, 2, 99), 6, VIP, 80, 0x10), 0));
        for i in 0..10u16 {
            let (c, p) = client(i);
            v.push((tcp(c, p, VIP, 80, tcp_flags::FIN | tcp_flags::ACK), 0));
        }
        v
    }

    /// What an action says, as comparable data: (kind, port, reason, bytes).
    fn outcome(a: Action<VecPacket>) -> (u8, u16, Option<Drop>, Vec<u8>) {
        match a {
            Action::Tx(port, p) => (0, port, None, p.data().to_vec()),
            Action::Redirect(w, p) => (1, w as u16, None, p.data().to_vec()),
            Action::Drop(d, p) => (2, 0, Some(d), p.data().to_vec()),
            Action::Consumed(p) => (3, 0, None, p.data().to_vec()),
            Action::Held => (4, 0, None, Vec::new()),
        }
    }

    fn pipeline() -> Pipeline<VecPacket> {
        Pipeline::new(
            &PipelineConfig::new(0, 1, 64),
            Timeouts::default(),
            Arc::new(WorkerCounters::new(0)),
            (),
            None,
        )
    }

    #[test]
    fn a_burst_acts_exactly_as_frame_by_frame() {
        let w = world();
        let ctx = Ctx {
            snap: &w.snap,
            net: &w.net,
            neigh: &w.neigh,
            now_s: 5,
            now_ns: 5_000_000_000,
        };
        let input = frames();
        let mut one = pipeline();
        let want: Vec<_> = input
            .iter()
            .map(|(f, port)| outcome(one.process(VecPacket::from_frame(f), *port, &ctx, false)))
            .collect();
        // Sanity: the scenario exercises what it claims.
        let count = |k: u8| want.iter().filter(|o| o.0 == k).count();
        assert_eq!((count(0), count(2)), (70, 4));
        for rs_mac in [[2, 0, 0, 0, 1, 10], [2, 0, 0, 0, 1, 11]] {
            assert!(want
                .iter()
                .any(|o| o.0 == 0 && o.1 == 1 && o.3[..6] == rs_mac));
        }
        // Replies leave port 0 from the VIP.
        assert_eq!(
            want.iter()
                .filter(|o| o.0 == 0 && o.1 == 0 && o.3[26..30] == VIP.octets())
                .count(),
            20
        );

        // Same table contents and counters.
        let dump = |p: &Pipeline<VecPacket>| {
            let mut v: Vec<_> = p
                .conns
                .iter()
                .map(|(_, c)| (c.caddr(), c.cport(), c.daddr(), c.state_name()))
                .collect();
            v.sort();
            v
        };
        // Each schedule: this small table's own (no prefetch), entries `ENTRY_AHEAD` frames
        // ahead, and a far table's (every entry of a burst before the first frame).
        for (name, above) in [
            ("own", None),
            ("near", Some((0, usize::MAX))),
            ("far", Some((0, 0))),
        ] {
            let mut many = pipeline();
            if let Some(above) = above {
                many.prefetch_above = above;
            }
            let mut got = Vec::new();
            let pkts = input.iter().map(|(f, p)| (VecPacket::from_frame(f), *p));
            many.process_burst(pkts, &ctx, false, |a, port| {
                got.push((outcome(a), port));
            });
            assert_eq!(got.len(), want.len(), "{name}");
            for (i, ((o, port), w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(o, w, "{name}: frame {i}");
                assert_eq!(*port, input[i].1, "{name}: frame {i}");
            }
            assert_eq!(dump(&one), dump(&many), "{name}");
            assert_eq!(many.conns.len(), 20, "{name}");
            assert_eq!(
                many.counters.conns_created.get(),
                one.counters.conns_created.get(),
                "{name}"
            );
            many.conns.check_consistency().unwrap();
        }
    }
}
