//! The poll-mode worker: one per lcore, pinned, owning an rx and a tx queue on every port,
//! a redirect ring and a connection table.
//!
//! The loop, as DPDK's l3fwd: rx_burst -> process each packet -> buffer per tx port / per
//! owner worker -> tx_burst / ring enqueue; then the slow work (timers, ARP queue, control
//! commands) every few hundred iterations or when idle. Idle workers back off with a short
//! sleep after a streak of empty polls so that a 2-core box keeps its control plane alive.

use crate::cli::listing::ConnListing;
use crate::dataplane::conn::Timeouts;
use crate::dataplane::drop::{Drop, PipelineDrop};
use crate::dataplane::neigh::NeighTable;
use crate::dataplane::netstate::NetState;
use crate::dataplane::pipeline::{Action, Ctx, Pipeline};
use crate::dataplane::snapshot::SnapshotCell;
use crate::dpdk::{self, Mbuf, MbufBurst, MbufRing, RingConsumer, RxQueue, TxQueue};
use crate::metrics::WorkerCounters;
use arc_swap::ArcSwap;
use crossbeam::channel::{Receiver, Sender};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Frames of an rx burst whose first cache line the worker prefetches before the pipeline runs
/// (all of a 32-frame burst: `bench` measured the director's cost per packet at 1 K
/// connections fall from about 76 to about 45 ns when frames come from another core).
pub const RX_PREFETCH: usize = 32;

/// Requests the control plane sends a worker (slow path, answered between bursts).
#[derive(Debug)]
pub enum WorkerCmd {
    /// Send back every connection entry (ipvsadm -L -c).
    ListConns(Sender<Vec<ConnListing>>),
    /// New timeouts (ipvsadm --set), for connections touched from now on.
    SetTimeouts(Timeouts),
    /// Send an ARP request for `target` on `port` (neighbour manager retries).
    SendArp {
        /// Port to send on.
        port: u16,
        /// Address to resolve.
        target: std::net::Ipv4Addr,
    },
}

/// State shared by all workers and the control plane.
#[derive(Clone)]
pub struct Shared {
    /// Services and destinations.
    pub snapshot: Arc<SnapshotCell>,
    /// Ports and routes.
    pub net: Arc<NetState>,
    /// Neighbours.
    pub neigh: Arc<ArcSwap<NeighTable>>,
    /// Every worker's redirect ring, by worker index.
    pub rings: Vec<Arc<MbufRing>>,
    /// Set to stop every worker.
    pub stop: Arc<AtomicBool>,
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// CPU to pin to (None: not pinned).
    pub core: Option<usize>,
    /// Sleep after a streak of empty polls (zero: always spin).
    pub idle_sleep: Duration,
    /// Empty polls before sleeping.
    pub idle_streak: u32,
}

/// One poll-mode worker.
pub struct Worker {
    index: usize,
    pipeline: Pipeline<Mbuf>,
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
    ring_in: RingConsumer,
    shared: Shared,
    cmds: Receiver<WorkerCmd>,
    opts: WorkerOptions,
}

/// Packets waiting for tx_burst / ring enqueue in one iteration.
struct Outboxes {
    tx: Vec<MbufBurst>,
    redirect: Vec<MbufBurst>,
}

impl Worker {
    /// A worker over its queues (`rx[i]`, `tx[i]` on port `i`) and its ring consumer.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        index: usize,
        pipeline: Pipeline<Mbuf>,
        rx: Vec<RxQueue>,
        tx: Vec<TxQueue>,
        ring_in: RingConsumer,
        shared: Shared,
        cmds: Receiver<WorkerCmd>,
        opts: WorkerOptions,
    ) -> Self {
        Worker {
            index,
            pipeline,
            rx,
            tx,
            ring_in,
            shared,
            cmds,
            opts,
        }
    }

    /// Starts the worker on its own thread (pinned, registered with the EAL).
    pub fn spawn(self) -> std::io::Result<JoinHandle<Pipeline<Mbuf>>> {
        std::thread::Builder::new()
            .name(format!("worker-{}", self.index))
            .spawn(move || {
                if let Some(core) = self.opts.core {
                    core_affinity::set_for_current(core_affinity::CoreId { id: core });
                }
                // An lcore id gives this thread the mempool's per-lcore cache.
                let _ = dpdk::eal::register_thread();
                self.run()
            })
    }

    /// Runs until `shared.stop` is set; returns the pipeline (its connections) at the end.
    pub fn run(mut self) -> Pipeline<Mbuf> {
        self.pipeline.claim_load_slot();
        let clock = TscClock::new(dpdk::tsc_hz());
        let start = dpdk::tsc();
        let n_ports = self.tx.len();
        let n_workers = self.shared.rings.len();
        let mut out = Outboxes {
            tx: (0..n_ports).map(|_| MbufBurst::new()).collect(),
            redirect: (0..n_workers).map(|_| MbufBurst::new()).collect(),
        };
        let mut rx = MbufBurst::new();
        let counters = self.pipeline.counters().clone();
        let mut idle = 0u32;
        let mut iter: u64 = 0;
        let mut last_gen = u64::MAX;
        let mut announced: Vec<IpAddr> = Vec::new();
        // Cached handles: a load is one pointer comparison until the control plane publishes
        // (arc-swap's guard per load cost a locked compare-exchange per burst, 6 % of the
        // worker's profile).
        let mut snap_cache = arc_swap::Cache::new(Arc::clone(&self.shared.snapshot));
        let mut neigh_cache = arc_swap::Cache::new(Arc::clone(&self.shared.neigh));
        while !self.shared.stop.load(Ordering::Relaxed) {
            iter = iter.wrapping_add(1);
            let snap = snap_cache.load();
            let neigh = neigh_cache.load();
            let now_ns = clock.ns(dpdk::tsc().wrapping_sub(start));
            let ctx = Ctx {
                snap,
                net: &self.shared.net,
                neigh,
                now_s: (now_ns / 1_000_000_000) as u32,
                now_ns,
            };
            let mut work = 0usize;
            for q in 0..self.rx.len() {
                let n = self.rx[q].rx_burst(&mut rx);
                if n == 0 {
                    continue;
                }
                work += n;
                let port = self.rx[q].port_id();
                counters.rx_packets.add(n as u64);
                counters.rx_bytes.add(prepare_burst(rx.as_slice()) as u64);
                let (tx, rings) = (&mut self.tx, &self.shared.rings);
                self.pipeline.process_burst(
                    rx.drain().map(|m| (m, port)),
                    &ctx,
                    false,
                    |a, port| act(a, port, &mut out, tx, rings, &counters),
                );
            }
            let n = self.ring_in.dequeue_burst(&mut rx);
            if n > 0 {
                work += n;
                counters.redirects_received.add(n as u64);
                for m in rx.as_slice() {
                    m.prefetch();
                }
                let (tx, rings) = (&mut self.tx, &self.shared.rings);
                self.pipeline.process_burst(
                    rx.drain().map(|m| {
                        let port = m.port();
                        (m, port)
                    }),
                    &ctx,
                    true,
                    |a, port| act(a, port, &mut out, tx, rings, &counters),
                );
            }
            if iter.is_multiple_of(128) || work == 0 {
                self.pipeline.expire(&ctx, 512);
                self.pipeline.service_pending(&ctx);
                if self.index == 0 && snap.generation != last_gen {
                    last_gen = snap.generation;
                    let fresh: Vec<IpAddr> = snap
                        .vip_addrs()
                        .iter()
                        .filter(|v| !announced.contains(v))
                        .copied()
                        .collect();
                    self.pipeline.announce_vips(&fresh, &ctx);
                    announced = snap.vip_addrs().to_vec();
                }
                while let Ok(cmd) = self.cmds.try_recv() {
                    command(&mut self.pipeline, cmd, &ctx);
                }
            }
            for (port, m) in self.pipeline.extra.drain(..) {
                push_tx(&mut out, &mut self.tx, port, m, &counters);
            }
            flush(&mut out, &mut self.tx, &self.shared.rings, &counters);
            if work == 0 {
                counters.idle_polls.inc();
                idle = idle.saturating_add(1);
                if idle >= self.opts.idle_streak && !self.opts.idle_sleep.is_zero() {
                    std::thread::sleep(self.opts.idle_sleep);
                }
            } else {
                counters.busy_polls.inc();
                idle = 0;
            }
        }
        // Final flush of anything generated on the way out.
        flush(&mut out, &mut self.tx, &self.shared.rings, &counters);
        self.pipeline.release_load_slot();
        self.pipeline
    }
}

/// Readies a received burst for the pipeline and returns its bytes: every mbuf and frame
/// filled by another core or the NIC is a cache miss on first touch, so all mbuf headers are
/// prefetched first, then (reading them for the byte count) the first [`RX_PREFETCH`] frames,
/// and the loads overlap instead of queueing behind the pipeline's first reads.
#[inline]
pub fn prepare_burst(burst: &[Mbuf]) -> usize {
    for m in burst {
        m.prefetch_header();
    }
    let mut bytes = 0usize;
    for (i, m) in burst.iter().enumerate() {
        if i < RX_PREFETCH {
            m.prefetch();
        }
        bytes += m.len();
    }
    bytes
}

/// TSC ticks to nanoseconds without a division per loop iteration: `ticks * mult >> 32`,
/// `mult` being nanoseconds per tick in 32.32 fixed point (short by under 1 ns per 2^32 ticks).
#[derive(Debug, Clone, Copy)]
struct TscClock {
    mult: u64,
}

impl TscClock {
    fn new(hz: u64) -> Self {
        TscClock {
            mult: ((1_000_000_000u128 << 32) / u128::from(hz.max(1))) as u64,
        }
    }

    #[inline]
    fn ns(&self, ticks: u64) -> u64 {
        ((u128::from(ticks) * u128::from(self.mult)) >> 32) as u64
    }
}

/// Answers a control-plane request (slow path).
fn command(pipeline: &mut Pipeline<Mbuf>, cmd: WorkerCmd, ctx: &Ctx) {
    match cmd {
        WorkerCmd::ListConns(reply) => {
            let list = pipeline
                .conns
                .iter()
                .map(|(_, c)| ConnListing {
                    proto: c.proto_label().to_string(),
                    client: (c.caddr().into(), c.cport()),
                    virt: (c.vaddr().into(), c.vport()),
                    dest: (c.daddr().into(), c.dport()),
                    state: c.state_name().to_string(),
                    expires: c.expires_in(ctx.now_s),
                })
                .collect();
            let _ = reply.send(list);
        }
        WorkerCmd::SetTimeouts(t) => pipeline.conns.set_timeouts(t),
        WorkerCmd::SendArp { port, target } => {
            let src = ctx
                .net
                .ports
                .get(usize::from(port))
                .and_then(|p| p.addrs.first().copied());
            if let Some(src) = src {
                pipeline.send_arp_request(port, src, target, ctx);
            }
        }
    }
}

/// Puts one processed packet, received on `in_port`, where its action says.
#[inline]
fn act(
    a: Action<Mbuf>,
    in_port: u16,
    out: &mut Outboxes,
    tx: &mut [TxQueue],
    rings: &[Arc<MbufRing>],
    counters: &WorkerCounters,
) {
    match a {
        Action::Tx(port, m) => push_tx(out, tx, port, m, counters),
        Action::Redirect(w, mut m) => {
            // The owner reads the input port from the mbuf (ICMP errors and ARP go back out
            // of it); not every PMD sets it on receive (net_ring does not).
            m.set_port(in_port);
            let Some(b) = out.redirect.get_mut(w) else {
                counters.count_drop(Drop::from(PipelineDrop::RedirectFull).index());
                return;
            };
            if b.is_full() {
                enqueue_redirects(b, &rings[w], counters);
            }
            if let Err(m) = b.push(m) {
                counters.count_drop(Drop::from(PipelineDrop::RedirectFull).index());
                drop(m);
            }
        }
        Action::Drop(reason, m) => {
            counters.count_drop(reason.index());
            drop(m);
        }
        Action::Consumed(m) => drop(m),
        Action::Held => {}
    }
}

#[inline]
fn push_tx(out: &mut Outboxes, tx: &mut [TxQueue], port: u16, m: Mbuf, counters: &WorkerCounters) {
    let p = usize::from(port);
    let (Some(b), Some(q)) = (out.tx.get_mut(p), tx.get_mut(p)) else {
        counters.count_drop(Drop::from(PipelineDrop::NoRoute).index());
        return;
    };
    if b.is_full() {
        send_burst(b, q, counters);
    }
    if let Err(m) = b.push(m) {
        counters.count_drop(Drop::from(PipelineDrop::TxFull).index());
        drop(m);
    }
}

/// tx_burst of a whole burst; what the queue refuses is dropped and counted.
fn send_burst(b: &mut MbufBurst, q: &mut TxQueue, counters: &WorkerCounters) {
    let bytes: usize = b.as_slice().iter().map(|m| m.len()).sum();
    let n = b.len();
    let sent = q.tx_burst(b);
    let left_bytes: usize = b.as_slice().iter().map(|m| m.len()).sum();
    counters.tx_packets.add(sent as u64);
    counters.tx_bytes.add((bytes - left_bytes) as u64);
    if sent < n {
        for _ in sent..n {
            counters.count_drop(Drop::from(PipelineDrop::TxFull).index());
        }
        b.clear();
    }
}

fn enqueue_redirects(b: &mut MbufBurst, ring: &MbufRing, counters: &WorkerCounters) {
    let n = ring.enqueue_burst(b);
    counters.redirects_sent.add(n as u64);
    if !b.is_empty() {
        let left = b.len();
        for _ in 0..left {
            counters.count_drop(Drop::from(PipelineDrop::RedirectFull).index());
        }
        b.clear();
    }
}

fn flush(
    out: &mut Outboxes,
    tx: &mut [TxQueue],
    rings: &[Arc<MbufRing>],
    counters: &WorkerCounters,
) {
    for (b, q) in out.tx.iter_mut().zip(tx.iter_mut()) {
        if !b.is_empty() {
            send_burst(b, q, counters);
        }
    }
    for (w, b) in out.redirect.iter_mut().enumerate() {
        if !b.is_empty() {
            enqueue_redirects(b, &rings[w], counters);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TscClock;

    #[test]
    fn tsc_clock_matches_the_division() {
        for hz in [1u64, 1_000_000, 2_600_000_000, 3_000_000_007] {
            let c = TscClock::new(hz);
            for ticks in [0u64, 1, 12_345, hz, hz * 3600 + 17, hz * 86_400 * 30] {
                let exact = (u128::from(ticks) * 1_000_000_000 / u128::from(hz)) as u64;
                let got = c.ns(ticks);
                // mult is short of the exact ratio by less than 2^-32 ns per tick.
                let slack = ticks >> 32;
                assert!(
                    got <= exact && exact - got <= slack + 1,
                    "hz {hz} ticks {ticks}: {got} vs {exact}"
                );
            }
        }
    }
}
