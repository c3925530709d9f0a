//! The devices under test, each on its own pinned thread polling the rig's queues:
//! - [`Workers`]: the director's real poll-mode workers (`director::dataplane::worker`).
//! - [`passthrough`]: rx_burst -> tx_burst and nothing else, the I/O ceiling.
//! - [`probe`]: the pass-through loop plus `Pipeline::process_burst` on each burst, with the TSC
//!   read before and after the pipeline calls of each burst: the cycles spent in director
//!   code per packet, with packets that arrive from the generator's core as the workers' do.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use director::dataplane::neigh::NeighTable;
use director::dataplane::netstate::NetState;
use director::dataplane::pipeline::{Action, Ctx, Pipeline};
use director::dataplane::snapshot::SnapshotCell;
use director::dataplane::worker::{Shared, Worker, WorkerOptions};
use director::dpdk::{self, eal, Mbuf, MbufBurst, RxQueue, TxQueue};
use director::metrics::WorkerCounters;

use crate::cpu::TidCell;
use crate::rig::Rig;

/// The configuration the workers (and the probe) read.
#[derive(Clone)]
pub struct Env {
    /// Services and destinations.
    pub snapshot: Arc<SnapshotCell>,
    /// Ports and routes.
    pub net: Arc<NetState>,
    /// Neighbours.
    pub neigh: Arc<ArcSwap<NeighTable>>,
}

/// Pins the calling thread (if `core` exists) and gives it a DPDK lcore id.
pub(crate) fn enter_lcore(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
    // Without an lcore id the thread simply has no mempool cache.
    let _ = eal::register_thread();
}

/// Running director workers; stopped and joined on drop (also when a run fails).
pub struct Workers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<Pipeline<Mbuf>>>,
    /// Each worker's counters.
    pub counters: Vec<Arc<WorkerCounters>>,
    /// Each worker's thread.
    pub tids: Vec<Arc<TidCell>>,
}

impl Workers {
    /// Starts one worker per pipeline (worker `i` on queue `i` of every port, pinned to
    /// `cores[i]`), spinning without idle sleeps.
    pub fn start(
        rig: &mut Rig,
        env: &Env,
        pipelines: Vec<Pipeline<Mbuf>>,
        cores: &[Option<usize>],
    ) -> Result<Workers, String> {
        rig.drain();
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            snapshot: env.snapshot.clone(),
            net: env.net.clone(),
            neigh: env.neigh.clone(),
            rings: rig.redirect.clone(),
            stop: stop.clone(),
        };
        let mut w = Workers {
            stop,
            handles: Vec::new(),
            counters: Vec::new(),
            tids: Vec::new(),
        };
        for (i, pipeline) in pipelines.into_iter().enumerate() {
            let q = i as u16;
            let e = |what: &str, e: dpdk::DpdkError| format!("worker {i} {what}: {e}");
            let rx = rig
                .ports
                .iter_mut()
                .map(|p| p.rx_queue(q).map_err(|x| e("rx queue", x)))
                .collect::<Result<Vec<_>, _>>()?;
            let tx = rig
                .ports
                .iter_mut()
                .map(|p| p.tx_queue(q).map_err(|x| e("tx queue", x)))
                .collect::<Result<Vec<_>, _>>()?;
            let ring_in = rig.redirect[i]
                .consumer()
                .map_err(|x| e("redirect ring", x))?;
            w.counters.push(pipeline.counters().clone());
            let (_cmd_tx, cmd_rx) = crossbeam::channel::bounded(1);
            let core = cores.get(i).copied().flatten();
            let opts = WorkerOptions {
                core,
                idle_sleep: Duration::ZERO,
                idle_streak: u32::MAX,
            };
            let worker = Worker::new(i, pipeline, rx, tx, ring_in, shared.clone(), cmd_rx, opts);
            let tid = Arc::new(TidCell::default());
            w.tids.push(tid.clone());
            let h = std::thread::Builder::new()
                .name(format!("bench-worker-{i}"))
                .spawn(move || {
                    tid.record();
                    enter_lcore(core);
                    let p = worker.run();
                    eal::unregister_thread();
                    p
                })
                .map_err(|x| format!("spawn worker {i}: {x}"))?;
            w.handles.push(h);
        }
        Ok(w)
    }

    /// Packets transmitted by all workers so far.
    pub fn tx_packets(&self) -> u64 {
        self.counters.iter().map(|c| c.tx_packets.get()).sum()
    }

    /// Connections created by all workers so far.
    pub fn conns_created(&self) -> u64 {
        self.counters.iter().map(|c| c.conns_created.get()).sum()
    }

    /// Packets dropped by all workers so far (every reason).
    pub fn drops(&self) -> u64 {
        self.counters
            .iter()
            .flat_map(|c| c.drops.iter().map(|d| d.get()))
            .sum()
    }

    /// Polls of all workers that found nothing to do.
    pub fn idle_polls(&self) -> u64 {
        self.counters.iter().map(|c| c.idle_polls.get()).sum()
    }

    /// Polls of all workers that received or sent something.
    pub fn busy_polls(&self) -> u64 {
        self.counters.iter().map(|c| c.busy_polls.get()).sum()
    }

    /// CPU nanoseconds all worker threads have had so far.
    pub fn run_ns(&self) -> u64 {
        self.tids.iter().map(|t| t.run_ns()).sum()
    }

    /// Stops the workers and returns their pipelines (connection tables).
    pub fn stop(mut self) -> Result<Vec<Pipeline<Mbuf>>, String> {
        self.stop.store(true, Relaxed);
        std::mem::take(&mut self.handles)
            .into_iter()
            .map(|h| h.join().map_err(|_| "a worker thread panicked".to_string()))
            .collect()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Counters of a pass-through or probe loop.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct LoopStats {
    /// Packets received.
    pub rx: AtomicU64,
    /// Packets the tx queue refused (freed).
    pub tx_refused: AtomicU64,
    /// Probe: TSC cycles spent in `Pipeline::process_burst` (whole bursts).
    pub cycles: AtomicU64,
    /// Probe: packets the pipeline dropped.
    pub dropped: AtomicU64,
    /// Polls that found no packet.
    pub idle: AtomicU64,
    /// Probe: bytes received (read as the worker reads them).
    pub bytes: AtomicU64,
    /// The loop's thread.
    pub tid: TidCell,
}

/// The queue handles of queue 0 on every port.
pub fn queues(rig: &mut Rig) -> Result<(Vec<RxQueue>, Vec<TxQueue>), String> {
    rig.drain();
    let rx = rig
        .ports
        .iter_mut()
        .map(|p| p.rx_queue(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("rx queue: {e}"))?;
    let tx = rig
        .ports
        .iter_mut()
        .map(|p| p.tx_queue(0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tx queue: {e}"))?;
    Ok((rx, tx))
}

fn send(q: &mut TxQueue, b: &mut MbufBurst, stats: &LoopStats) {
    let n = b.len();
    let sent = q.tx_burst(b);
    if sent < n {
        stats.tx_refused.fetch_add((n - sent) as u64, Relaxed);
        b.clear();
    }
}

/// The I/O ceiling: whatever arrives on port `p` leaves on the other port, untouched.
/// Runs on the calling thread until `stop`.
pub fn passthrough(
    core: Option<usize>,
    mut rx: Vec<RxQueue>,
    mut tx: Vec<TxQueue>,
    stats: &LoopStats,
    stop: &AtomicBool,
) {
    stats.tid.record();
    enter_lcore(core);
    let mut b = MbufBurst::new();
    let n_ports = tx.len();
    while !stop.load(Relaxed) {
        let mut work = 0;
        for (p, q) in rx.iter_mut().enumerate() {
            let n = q.rx_burst(&mut b);
            if n == 0 {
                continue;
            }
            work += n;
            stats.rx.fetch_add(n as u64, Relaxed);
            send(&mut tx[(p + 1) % n_ports], &mut b, stats);
        }
        if work == 0 {
            stats.idle.fetch_add(1, Relaxed);
        }
    }
    eal::unregister_thread();
}

/// The pass-through loop with the director's pipeline in the middle and the TSC read around
/// the pipeline's work on each burst. Runs on the calling thread until `stop`; returns the
/// pipeline.
pub fn probe(
    core: Option<usize>,
    mut pipeline: Pipeline<Mbuf>,
    env: &Env,
    mut rx: Vec<RxQueue>,
    mut tx: Vec<TxQueue>,
    stats: &LoopStats,
    stop: &AtomicBool,
) -> Pipeline<Mbuf> {
    stats.tid.record();
    enter_lcore(core);
    // The probe runs a stopped worker's pipeline: it writes that worker's load shares.
    pipeline.claim_load_slot();
    let hz = dpdk::tsc_hz().max(1);
    let start = dpdk::tsc();
    let mut b = MbufBurst::new();
    let mut out: Vec<MbufBurst> = tx.iter().map(|_| MbufBurst::new()).collect();
    // As the worker: cached handles, one pointer comparison per load.
    let mut snap_cache = arc_swap::Cache::new(Arc::clone(&env.snapshot));
    let mut neigh_cache = arc_swap::Cache::new(Arc::clone(&env.neigh));
    while !stop.load(Relaxed) {
        let snap = snap_cache.load();
        let neigh = neigh_cache.load();
        let now_ns =
            (u128::from(dpdk::tsc().wrapping_sub(start)) * 1_000_000_000 / u128::from(hz)) as u64;
        let ctx = Ctx {
            snap,
            net: &env.net,
            neigh,
            now_s: (now_ns / 1_000_000_000) as u32,
            now_ns,
        };
        let mut work = 0;
        for (p, q) in rx.iter_mut().enumerate() {
            let n = q.rx_burst(&mut b);
            if n == 0 {
                continue;
            }
            work += n;
            // As the worker does before its pipeline calls.
            let bytes = director::dataplane::worker::prepare_burst(b.as_slice());
            stats.bytes.fetch_add(bytes as u64, Relaxed);
            let mut dropped = 0u64;
            let t0 = dpdk::tsc();
            // The worker's own burst path (classify + prefetch, then act in order).
            pipeline.process_burst(
                b.drain().map(|m| (m, p as u16)),
                &ctx,
                false,
                |a, _| match a {
                    Action::Tx(port, m) => {
                        if let Some(o) = out.get_mut(usize::from(port)) {
                            if let Err(m) = o.push(m) {
                                drop(m);
                                dropped += 1;
                            }
                        }
                    }
                    Action::Redirect(_, m) | Action::Drop(_, m) | Action::Consumed(m) => {
                        drop(m);
                        dropped += 1;
                    }
                    Action::Held => {}
                },
            );
            let t1 = dpdk::tsc();
            stats.cycles.fetch_add(t1.wrapping_sub(t0), Relaxed);
            stats.rx.fetch_add(n as u64, Relaxed);
            stats.dropped.fetch_add(dropped, Relaxed);
            for (o, q) in out.iter_mut().zip(tx.iter_mut()) {
                if !o.is_empty() {
                    send(q, o, stats);
                }
            }
        }
        for (_, m) in pipeline.extra.drain(..) {
            drop(m);
        }
        if work == 0 {
            stats.idle.fetch_add(1, Relaxed);
        }
    }
    eal::unregister_thread();
    pipeline.release_load_slot();
    pipeline
}
