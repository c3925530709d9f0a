//! The scenarios and how each number is measured.
//!
//! For every (scenario, live connections): fresh configuration and connection tables, then
//! 1. **populate** with the real workers: SYNs of `conns` new flows (a SYN flood with unique
//!    tuples); connections/s = flows created per second (big floods: between the 5 % and 95 %
//!    marks); memory per connection = growth of the process's RSS from before the tables
//!    were made to after the flood, divided by the connections.
//! 2. **forward** with the real workers, per frame size: the generator streams the scenario's
//!    traffic; Mpps = packets the workers transmitted per second over the window.
//! 3. **probe**, per frame size, on the same tables: TSC cycles around `Pipeline::process`.
//! 4. **ceiling**, per frame size: the pass-through loop fed the same way.
//!
//! The generator runs on its own core; workers, probe and pass-through take turns on the
//! other core(s). On a shared machine neither thread owns its core, so every rate is also
//! given per core: divided by the smaller CPU share (scheduler run time / wall time) of the
//! generator and the device under test, the two threads the packets must pass. A run is
//! bound by the device under test when the generator found the rx ring full in most of its
//! loops, else by the generator.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use director::dataplane::conn::Timeouts;
use director::dataplane::pipeline::{Pipeline, PipelineConfig};
use director::dpdk::{self, eal, Mbuf, RingConsumer};
use director::metrics::WorkerCounters;
use serde::{Deserialize, Serialize};

use crate::dut::{self, enter_lcore, Env, LoopStats, Workers};
use crate::flows::{self, shuffled};
use crate::frame::{Segment, Template};
use crate::gen::{self, GenSpec, GenStats, Pattern, Replies};
use crate::rig::Rig;
use crate::topo::{self, Method};

/// A traffic scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Established flows through the NAT service (ACK segments, shuffled flows).
    Nat,
    /// Established flows through the DR service.
    Dr,
    /// Established flows through the TUN service.
    Tun,
    /// SYN flood with unique tuples into the NAT service (new connections).
    Syn,
    /// NAT: 90 % established ACKs, 10 % SYNs of new flows.
    Mixed,
    /// NAT, the other direction: the real servers' replies to the clients (ACKs with payload
    /// of established flows, each from the real server its connection was bound to).
    Reply,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 6] = [
        Scenario::Nat,
        Scenario::Dr,
        Scenario::Tun,
        Scenario::Syn,
        Scenario::Mixed,
        Scenario::Reply,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Nat => "nat",
            Scenario::Dr => "dr",
            Scenario::Tun => "tun",
            Scenario::Syn => "syn",
            Scenario::Mixed => "mixed",
            Scenario::Reply => "reply",
        }
    }

    /// The scenario named `s`.
    pub fn parse(s: &str) -> Result<Scenario, String> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| format!("unknown scenario {s:?} (nat, dr, tun, syn, mixed, reply)"))
    }

    fn method(self) -> Method {
        match self {
            Scenario::Dr => Method::Dr,
            Scenario::Tun => Method::Tun,
            Scenario::Nat | Scenario::Syn | Scenario::Mixed => Method::Nat,
            Scenario::Reply => Method::NatReply,
        }
    }
}

/// What to run and how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Scenarios.
    pub scenarios: Vec<Scenario>,
    /// Frame sizes (bytes on the wire, FCS included).
    pub sizes: Vec<usize>,
    /// Live connections for the established and mixed scenarios.
    pub conns: Vec<u64>,
    /// More live-connection counts for NAT at the first frame size only (the big tables).
    pub nat_extra: Vec<u64>,
    /// Flows (= table size) of the SYN flood.
    pub syn_flows: u64,
    /// Extra table room for the new flows of the mixed scenario (they wrap after this).
    pub mixed_new: u64,
    /// Warm-up before each measuring window.
    pub warmup: Duration,
    /// Measuring window.
    pub window: Duration,
    /// Cores of the generators: one (for all workers; it also feeds the probe and the
    /// pass-through loop), or one per worker (each feeds and drains its own).
    pub gen_cores: Vec<Option<usize>>,
    /// Cores of the workers (probe and pass-through use the first).
    pub dut_cores: Vec<Option<usize>>,
    /// Check every n-th drained burst (1: all, 0: none).
    pub verify_every: u64,
    /// Longest a populate may take before the run fails.
    pub patience: Duration,
}

/// One result line. "Per core" rates divide a wall-clock rate by the smaller CPU share of
/// the generator and the measured threads: what they do with cores of their own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Frame size, bytes on the wire (FCS included).
    pub size: usize,
    /// Live connections while measuring (for syn: the flows of the flood).
    pub conns: u64,
    /// Workers.
    pub workers: usize,
    /// Generator threads that fed the workers (1, or one per worker).
    #[serde(default = "one_gen")]
    pub generators: usize,
    /// Real workers: million packets per second transmitted (wall clock).
    pub mpps: f64,
    /// `mpps` per core, per worker.
    pub mpps_core: f64,
    /// Share of a CPU each worker thread had during the window (0..1).
    pub worker_cpu_share: f64,
    /// Share of a CPU the generator had during the workers' window.
    pub gen_cpu_share: f64,
    /// Fraction of the generator's loops that found the rx ring full (workers' window).
    pub gen_stalled: f64,
    /// Packets per busy poll of the workers (32 = full bursts).
    pub worker_burst: f64,
    /// Pass-through loop, same generator and ports: Mpps (wall clock).
    pub ceiling_mpps: f64,
    /// `ceiling_mpps` per core.
    pub ceiling_mpps_core: f64,
    /// Fraction of the generator's loops that found the rx ring full (pass-through window).
    pub ceiling_gen_stalled: f64,
    /// mpps_core / ceiling_mpps_core.
    pub ratio: f64,
    /// Nanoseconds per packet of a whole worker (1000 / mpps_core: I/O, loop, director).
    pub worker_ns: f64,
    /// worker_ns - 1000 / ceiling_mpps_core.
    pub director_ns_by_difference: f64,
    /// Probe: nanoseconds per packet inside `Pipeline::process` (TSC, scaled to the
    /// probe's CPU share).
    pub director_ns: f64,
    /// Probe: TSC cycles per packet inside `Pipeline::process`, scaled likewise.
    pub director_cycles: f64,
    /// Probe: raw TSC cycles per packet (not scaled).
    pub director_cycles_raw: f64,
    /// Probe thread's CPU share.
    pub probe_cpu_share: f64,
    /// New connections per second (populate flood for nat/dr/tun, the flood for syn, the
    /// SYN tenth for mixed), wall clock.
    pub conns_per_s: f64,
    /// `conns_per_s` per core, per worker.
    pub conns_per_s_core: f64,
    /// RSS growth over the populate / table slots (bytes; slots = connections, plus room
    /// for the new flows in mixed).
    pub rss_bytes_per_conn: f64,
    /// Connection-table allocation / table slots (bytes).
    pub table_bytes_per_conn: f64,
    /// Packets the workers dropped (flood and window, all reasons).
    pub drops: u64,
    /// Whether the workers set the rate (`gen_stalled` >= 0.5), else the generator did.
    pub dut_bound: bool,
    /// Whether the pass-through set its rate, else the generator did.
    pub ceiling_dut_bound: bool,
    /// Frames checked against the forwarding method (a sample of what the workers sent).
    pub frames_checked: u64,
    /// Checked frames that were wrong.
    pub frames_bad: u64,
    /// Runs this row is the median of (`bench --repeat`); 1 in files from before it.
    #[serde(default = "one_run")]
    pub runs: u32,
    /// Smallest `director_ns` of the runs (0 in files from before `--repeat`).
    #[serde(default)]
    pub director_ns_min: f64,
    /// Largest `director_ns` of the runs.
    #[serde(default)]
    pub director_ns_max: f64,
    /// Smallest `ratio` of the runs.
    #[serde(default)]
    pub ratio_min: f64,
    /// Largest `ratio` of the runs.
    #[serde(default)]
    pub ratio_max: f64,
    /// Smallest `mpps_core` of the runs.
    #[serde(default)]
    pub mpps_core_min: f64,
    /// Largest `mpps_core` of the runs.
    #[serde(default)]
    pub mpps_core_max: f64,
}

/// A row read from a file without `generators` was fed by one.
fn one_gen() -> usize {
    1
}

/// A row read from a file without `runs` was measured once.
fn one_run() -> u32 {
    1
}

/// Sets a flag when dropped (stops threads also when a measurement fails).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// The counters of the generators running together, summed.
struct Gens<'a>(&'a [GenStats]);

impl Gens<'_> {
    fn sum(&self, f: impl Fn(&GenStats) -> &AtomicU64) -> u64 {
        self.0.iter().map(|g| f(g).load(Relaxed)).sum()
    }
    fn sent(&self) -> u64 {
        self.sum(|g| &g.sent)
    }
    fn drained(&self) -> u64 {
        self.sum(|g| &g.drained)
    }
    fn checked(&self) -> u64 {
        self.sum(|g| &g.checked)
    }
    fn bad(&self) -> u64 {
        self.sum(|g| &g.bad)
    }
    /// Where the next window of new flows may start: past the farthest generator's
    /// (`GenStats::new_span`).
    fn new_span(&self) -> u64 {
        self.0
            .iter()
            .map(|g| g.new_span.load(Relaxed))
            .max()
            .unwrap_or(0)
    }
    fn loops(&self) -> u64 {
        self.sum(|g| &g.loops)
    }
    fn stalls(&self) -> u64 {
        self.sum(|g| &g.stalls)
    }
    /// Run time of all the generator threads together.
    fn run_ns(&self) -> u64 {
        self.0.iter().map(|g| g.tid.run_ns()).sum()
    }
    /// How many generators run.
    fn count(&self) -> usize {
        self.0.len()
    }
}

/// One spec per generator: `spec` itself for a single generator; else generator `i` gets
/// worker `i`'s flows, `owned[i]` being its part of an established order.
fn per_gen(spec: &GenSpec, owned: &[Arc<Vec<u32>>]) -> Vec<GenSpec> {
    if owned.len() <= 1 {
        return vec![spec.clone()];
    }
    let of = owned.len();
    owned
        .iter()
        .enumerate()
        .map(|(i, mine)| GenSpec {
            pattern: match &spec.pattern {
                Pattern::Established { .. } => Pattern::Established {
                    order: mine.clone(),
                },
                Pattern::Mixed {
                    first_new,
                    span,
                    every,
                    ..
                } => Pattern::Mixed {
                    order: mine.clone(),
                    first_new: *first_new,
                    span: *span,
                    every: *every,
                },
                p @ Pattern::NewFlows { .. } => p.clone(),
            },
            owner: Some((i, of)),
            ..spec.clone()
        })
        .collect()
}

/// Worker `i`'s part of `order` for each of the plan's generators (none with one generator).
fn gen_orders(plan: &Plan, workers: usize, order: &[u32]) -> Vec<Arc<Vec<u32>>> {
    if plan.gen_cores.len() <= 1 {
        return Vec::new();
    }
    (0..workers)
        .map(|i| Arc::new(owned_by(order, i, workers)))
        .collect()
}

/// Runs `body` while the generators run `specs` (one thread each, on `cores`); with one
/// spec it feeds `queues` rx queues and drains every tx ring, else generator `i` feeds rx
/// queue `i` and drains the tx rings of queue `i` (one generator per worker).
fn with_gen<R>(
    rig: &mut Rig,
    specs: &[GenSpec],
    queues: usize,
    cores: &[Option<usize>],
    body: impl FnOnce(&Gens) -> R,
) -> R {
    let n = specs.len();
    assert!(n == 1 || n == queues, "one generator, or one per queue");
    let stats: Vec<GenStats> = (0..n).map(|_| GenStats::default()).collect();
    let stop = AtomicBool::new(false);
    let mut txs: Vec<Vec<&mut RingConsumer>> = (0..n).map(|_| Vec::new()).collect();
    // rig.tx holds port 0's queues, then port 1's: queue q's rings are those at q mod queues.
    for (i, c) in rig.tx.iter_mut().enumerate() {
        txs[if n == 1 { 0 } else { i % rig.workers }].push(c);
    }
    // Replies arrive on the inside port.
    let port = usize::from(specs[0].replies.is_some());
    let r = std::thread::scope(|s| {
        let pool = &rig.pool;
        let stop = &stop;
        for (i, ((spec, stats), mut tx)) in specs.iter().zip(&stats).zip(txs).enumerate() {
            let rx = if n == 1 {
                &rig.rx[port][..queues]
            } else {
                &rig.rx[port][i..i + 1]
            };
            let core = cores.get(i).copied().flatten();
            std::thread::Builder::new()
                .name(format!("bench-gen{i}"))
                .spawn_scoped(s, move || {
                    enter_lcore(core);
                    gen::run(spec, pool, rx, &mut tx, stats, stop);
                    eal::unregister_thread();
                })
                .expect("spawn a generator thread");
        }
        let _guard = StopOnDrop(stop);
        body(&Gens(&stats))
    });
    let spec = &specs[0];
    if let Some(f) = stats
        .iter()
        .find_map(|g| g.first_bad.lock().unwrap_or_else(|e| e.into_inner()).take())
    {
        let hex: String = f.iter().take(80).map(|b| format!("{b:02x}")).collect();
        eprintln!(
            "bench: wrong {:?} frame ({} bytes): {hex}",
            spec.verify,
            f.len()
        );
    }
    rig.drain();
    r
}

/// Counter values read at the start and end of a window.
struct Delta {
    values: Vec<u64>,
    secs: f64,
}

impl Delta {
    /// The CPU share of `threads` threads whose run nanoseconds are `values[i]`.
    fn share(&self, i: usize, threads: usize) -> f64 {
        (self.values[i] as f64 / (self.secs * 1e9 * threads as f64)).clamp(1e-3, 1.0)
    }

    /// `values[stalls] / values[loops]`.
    fn ratio(&self, stalls: usize, loops: usize) -> f64 {
        self.values[stalls] as f64 / self.values[loops].max(1) as f64
    }
}

/// Reads `read` now and again once `until` says so; the difference over the time between.
fn span(read: impl Fn() -> Vec<u64>, until: impl FnOnce()) -> Delta {
    let (a, t0) = (read(), Instant::now());
    until();
    let (b, t1) = (read(), Instant::now());
    Delta {
        values: b.iter().zip(&a).map(|(b, a)| b.wrapping_sub(*a)).collect(),
        secs: (t1 - t0).as_secs_f64().max(1e-9),
    }
}

/// Sleeps `warmup`, then measures over `win`.
fn window(warmup: Duration, win: Duration, read: impl Fn() -> Vec<u64>) -> Delta {
    std::thread::sleep(warmup);
    span(read, || std::thread::sleep(win))
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn new_env(workers: usize) -> Result<Env, String> {
    // With the route to the clients that the NAT replies take.
    let net = topo::net_state_routed()?;
    let neigh = topo::neighbours(&net)?;
    Ok(Env {
        snapshot: Arc::new(ArcSwap::from_pointee(topo::snapshot(workers)?)),
        net: Arc::new(net),
        neigh: Arc::new(ArcSwap::new(neigh)),
    })
}

fn pipelines(rig: &Rig, workers: usize, capacity: u64) -> Vec<Pipeline<Mbuf>> {
    // Flows split by a hash: leave room for the imbalance.
    let per = if workers == 1 {
        capacity
    } else {
        capacity / workers as u64 + capacity / 20 + 1024
    };
    (0..workers)
        .map(|i| {
            Pipeline::new(
                &PipelineConfig::new(i, workers, per as usize),
                Timeouts::default(),
                Arc::new(WorkerCounters::new(i as u16)),
                rig.pool.clone(),
                None,
            )
        })
        .collect()
}

fn spec(plan: &Plan, sc: Scenario, size: usize, pattern: Pattern, limit: Option<u64>) -> GenSpec {
    let vip = sc.method().vip();
    GenSpec {
        ack: Template::new(vip, size, Segment::Ack).expect("sizes are validated by the CLI"),
        syn: Template::new(vip, size, Segment::Syn).expect("sizes are validated by the CLI"),
        pattern,
        limit,
        verify_every: plan.verify_every,
        verify: Some(sc.method()),
        replies: None,
        prefetch: true,
        owner: None,
    }
}

/// Floods this big or bigger are timed between their 5 % and 95 % marks, and their rate is
/// reported for the established scenarios (smaller ones last too little to time).
const MIN_TIMED_FLOOD: u64 = 100_000;

/// Result of a SYN flood through the workers.
struct Flood {
    conns_per_s: f64,
    conns_per_s_core: f64,
    worker_share: f64,
    gen_share: f64,
    stalled: f64,
    drops: u64,
    checked: u64,
    bad: u64,
}

/// Counter order of the workers' windows.
const TX: usize = 0;
const CREATED: usize = 1;
const RUN: usize = 2;
const GEN_RUN: usize = 3;
const LOOPS: usize = 4;
const STALLS: usize = 5;
const BUSY: usize = 6;

fn read_workers(workers: &Workers, g: &Gens) -> Vec<u64> {
    vec![
        workers.tx_packets(),
        workers.conns_created(),
        workers.run_ns(),
        g.run_ns(),
        g.loops(),
        g.stalls(),
        workers.busy_polls(),
    ]
}

/// Sends SYNs of flows `0..n` (`specs`: one per generator) and waits until the workers
/// created them all.
fn flood(
    rig: &mut Rig,
    plan: &Plan,
    workers: &Workers,
    specs: &[GenSpec],
    n: u64,
) -> Result<Flood, String> {
    let q = rig.workers;
    let created0 = workers.conns_created();
    let created = || workers.conns_created() - created0;
    with_gen(rig, specs, q, &plan.gen_cores, |g| {
        let deadline = Instant::now() + plan.patience;
        let wait = |target: u64| {
            while created() < target && Instant::now() < deadline {
                std::thread::sleep(Duration::from_micros(100));
            }
        };
        // Small floods are timed whole; big ones between the 5 % and 95 % marks.
        let (lo, hi) = if n >= MIN_TIMED_FLOOD {
            (n / 20, n - n / 20)
        } else {
            (0, n)
        };
        wait(lo);
        let d = span(|| read_workers(workers, g), || wait(hi));
        wait(n);
        if created() != n {
            return Err(format!(
                "flood: {} of {n} connections after {:?} (sent {}, drained {}, worker drops {})",
                created(),
                plan.patience,
                g.sent(),
                g.drained(),
                workers.drops()
            ));
        }
        let worker_share = d.share(RUN, q);
        let gen_share = d.share(GEN_RUN, g.count());
        let conns_per_s = d.values[CREATED] as f64 / d.secs;
        Ok(Flood {
            conns_per_s,
            conns_per_s_core: conns_per_s / worker_share.min(gen_share) / q as f64,
            worker_share,
            gen_share,
            stalled: d.ratio(STALLS, LOOPS),
            drops: workers.drops(),
            checked: g.checked(),
            bad: g.bad(),
        })
    })
}

/// What a forwarding window saw besides the counter deltas.
struct Seen {
    checked: u64,
    bad: u64,
    /// New-flow numbers the generators stepped over ([`Gens::new_span`]).
    new_span: u64,
    /// Generators that fed the workers.
    gens: usize,
}

/// Streams `specs` (one per generator) through the running workers and measures a window.
fn forward(rig: &mut Rig, plan: &Plan, workers: &Workers, specs: &[GenSpec]) -> (Delta, Seen) {
    let q = rig.workers;
    with_gen(rig, specs, q, &plan.gen_cores, |g| {
        let d = window(plan.warmup, plan.window, || read_workers(workers, g));
        let seen = Seen {
            checked: g.checked(),
            bad: g.bad(),
            new_span: g.new_span(),
            gens: g.count(),
        };
        (d, seen)
    })
}

/// The pass-through ceiling for `spec`.
struct Ceiling {
    mpps: f64,
    mpps_core: f64,
    stalled: f64,
}

fn ceiling(rig: &mut Rig, plan: &Plan, spec: &GenSpec) -> Result<Ceiling, String> {
    let (rx, tx) = dut::queues(rig)?;
    let core = plan.dut_cores.first().copied().flatten();
    // The loop modifies nothing: the generator is faster without prefetching.
    let spec = GenSpec {
        verify: None,
        prefetch: false,
        ..spec.clone()
    };
    let stats = LoopStats::default();
    let stop = AtomicBool::new(false);
    let d = std::thread::scope(|s| {
        let (stats_r, stop_r) = (&stats, &stop);
        std::thread::Builder::new()
            .name("bench-passthru".into())
            .spawn_scoped(s, move || dut::passthrough(core, rx, tx, stats_r, stop_r))
            .expect("spawn the pass-through thread");
        let _guard = StopOnDrop(&stop);
        with_gen(rig, std::slice::from_ref(&spec), 1, &plan.gen_cores, |g| {
            window(plan.warmup, plan.window, || {
                vec![
                    stats.rx.load(Relaxed),
                    stats.tid.run_ns(),
                    g.run_ns(),
                    g.loops(),
                    g.stalls(),
                ]
            })
        })
    });
    let mpps = d.values[0] as f64 / d.secs / 1e6;
    Ok(Ceiling {
        mpps,
        mpps_core: mpps / d.share(1, 1).min(d.share(2, 1)),
        stalled: d.ratio(4, 3),
    })
}

/// What the probe measured.
struct Probed {
    /// TSC cycles per packet inside the pipeline, raw.
    cycles_raw: f64,
    /// The probe thread's CPU share.
    share: f64,
    /// New-flow numbers the generator stepped over ([`Gens::new_span`]).
    new_span: u64,
}

/// Probe cycles per packet for `spec` on `pipeline`; with `spec.limit`, over exactly that
/// many packets (a flood), else over a window. Gives the pipeline back.
fn probe(
    rig: &mut Rig,
    plan: &Plan,
    env: &Env,
    pipeline: Pipeline<Mbuf>,
    spec: &GenSpec,
) -> Result<(Probed, Pipeline<Mbuf>), String> {
    let (rx, tx) = dut::queues(rig)?;
    let core = plan.dut_cores.first().copied().flatten();
    let spec = GenSpec {
        verify: None,
        ..spec.clone()
    };
    let stats = LoopStats::default();
    let stop = AtomicBool::new(false);
    let read = || {
        vec![
            stats.rx.load(Relaxed),
            stats.cycles.load(Relaxed),
            stats.dropped.load(Relaxed),
            stats.tid.run_ns(),
        ]
    };
    let (d, complete, new_span, pipeline) = std::thread::scope(|s| {
        let (stats_r, stop_r) = (&stats, &stop);
        let h = std::thread::Builder::new()
            .name("bench-probe".into())
            .spawn_scoped(s, move || {
                dut::probe(core, pipeline, env, rx, tx, stats_r, stop_r)
            })
            .expect("spawn the probe thread");
        let guard = StopOnDrop(&stop);
        let (d, complete, new_span) = with_gen(
            rig,
            std::slice::from_ref(&spec),
            1,
            &plan.gen_cores,
            |g| match spec.limit {
                Some(n) => {
                    let deadline = Instant::now() + plan.patience;
                    let d = span(read, || {
                        while stats.rx.load(Relaxed) < n && Instant::now() < deadline {
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    });
                    let done = stats.rx.load(Relaxed) >= n;
                    (d, done, g.new_span())
                }
                None => {
                    let d = window(plan.warmup, plan.window, read);
                    (d, true, g.new_span())
                }
            },
        );
        drop(guard);
        (d, complete, new_span, h.join())
    });
    let pipeline = pipeline.map_err(|_| "the probe thread panicked".to_string())?;
    if !complete {
        return Err("probe: the flood did not arrive in time".into());
    }
    if d.values[2] > 0 {
        return Err(format!(
            "probe: the pipeline dropped {} packets",
            d.values[2]
        ));
    }
    let probed = Probed {
        cycles_raw: d.values[1] as f64 / d.values[0].max(1) as f64,
        share: d.share(3, 1),
        new_span,
    };
    Ok((probed, pipeline))
}

fn ns(cycles: f64) -> f64 {
    cycles * 1e9 / dpdk::tsc_hz().max(1) as f64
}

/// A row without the probe's and the ceiling's parts.
fn row(sc: Scenario, size: usize, conns: u64, workers: usize) -> Row {
    Row {
        scenario: sc.name().into(),
        size,
        conns,
        workers,
        generators: 1,
        mpps: 0.0,
        mpps_core: 0.0,
        worker_cpu_share: 0.0,
        gen_cpu_share: 0.0,
        gen_stalled: 0.0,
        worker_burst: 0.0,
        ceiling_mpps: 0.0,
        ceiling_mpps_core: 0.0,
        ceiling_gen_stalled: 0.0,
        ratio: 0.0,
        worker_ns: 0.0,
        director_ns_by_difference: 0.0,
        director_ns: 0.0,
        director_cycles: 0.0,
        director_cycles_raw: 0.0,
        probe_cpu_share: 0.0,
        conns_per_s: 0.0,
        conns_per_s_core: 0.0,
        rss_bytes_per_conn: 0.0,
        table_bytes_per_conn: 0.0,
        drops: 0,
        dut_bound: false,
        ceiling_dut_bound: false,
        frames_checked: 0,
        frames_bad: 0,
        runs: 1,
        director_ns_min: 0.0,
        director_ns_max: 0.0,
        ratio_min: 0.0,
        ratio_max: 0.0,
        mpps_core_min: 0.0,
        mpps_core_max: 0.0,
    }
}

/// Fills in the workers' rates.
fn set_rates(r: &mut Row, mpps: f64, worker_share: f64, gen_share: f64, stalled: f64) {
    r.mpps = mpps;
    r.mpps_core = mpps / worker_share.min(gen_share) / r.workers as f64;
    r.worker_cpu_share = worker_share;
    r.gen_cpu_share = gen_share;
    r.gen_stalled = stalled;
    r.dut_bound = stalled >= 0.5;
    r.worker_ns = 1e3 / r.mpps_core.max(1e-9);
}

/// Fills in the probe's and the ceiling's parts.
fn finish_row(row: &mut Row, p: &Probed, c: &Ceiling) {
    row.director_cycles_raw = p.cycles_raw;
    row.probe_cpu_share = p.share;
    row.director_cycles = p.cycles_raw * p.share;
    row.director_ns = ns(row.director_cycles);
    row.ceiling_mpps = c.mpps;
    row.ceiling_mpps_core = c.mpps_core;
    row.ceiling_gen_stalled = c.stalled;
    row.ceiling_dut_bound = c.stalled >= 0.5;
    row.ratio = row.mpps_core / c.mpps_core.max(1e-9);
    row.director_ns_by_difference = row.worker_ns - 1e3 / c.mpps_core.max(1e-9);
    // One run: its spread is its value (`repeat::merge` widens it over runs).
    row.director_ns_min = row.director_ns;
    row.director_ns_max = row.director_ns;
    row.ratio_min = row.ratio;
    row.ratio_max = row.ratio;
    row.mpps_core_min = row.mpps_core;
    row.mpps_core_max = row.mpps_core;
}

/// Runs the established/mixed scenario `sc` with `n` live connections, for every size.
pub fn established(rig: &mut Rig, plan: &Plan, sc: Scenario, n: u64) -> Result<Vec<Row>, String> {
    let w = rig.workers;
    let env = new_env(w)?;
    let order = Arc::new(shuffled(n as u32, 0x5eed ^ n));
    let capacity = n + if sc == Scenario::Mixed {
        plan.mixed_new
    } else {
        0
    };
    let rss0 = rss_bytes();
    let pipes = pipelines(rig, w, capacity);
    let table_bytes: usize = pipes.iter().map(|p| p.conns.memory_bytes()).sum();
    let workers = Workers::start(rig, &env, pipes, &plan.dut_cores)?;
    let owned = gen_orders(plan, w, &order);
    let pop_spec = GenSpec {
        // The populate's SYNs are clients' packets also for the replies' scenario.
        verify: Some(Method::Nat)
            .filter(|_| sc == Scenario::Reply)
            .or(Some(sc.method())),
        ..spec(
            plan,
            sc,
            plan.sizes[0],
            Pattern::NewFlows { first: 0 },
            Some(n),
        )
    };
    let pop = flood(rig, plan, &workers, &per_gen(&pop_spec, &owned), n)?;
    let rss1 = rss_bytes();
    // Replies: each flow's real server, read from the connections the flood created (the
    // workers stop for that and start again with the same tables).
    let (workers, real_of) = if sc == Scenario::Reply {
        let pipes = workers.stop()?;
        let real_of = Arc::new(real_servers(&pipes, n)?);
        let workers = Workers::start(rig, &env, pipes, &plan.dut_cores)?;
        (workers, Some(real_of))
    } else {
        (workers, None)
    };
    // Mixed: each run's new flows follow those sent before (none repeats while the table has
    // room for them); once the room is used up they wrap onto the new flows already created
    // (their SYNs then meet existing connections: never a flow the table has no room for).
    let mut used_new = 0u64;
    let pattern = |used_new: u64| match sc {
        Scenario::Mixed => {
            let (first_new, span) = if used_new < plan.mixed_new {
                (n + used_new, plan.mixed_new - used_new)
            } else {
                (n, plan.mixed_new.max(1))
            };
            Pattern::Mixed {
                order: order.clone(),
                first_new,
                span,
                every: 10,
            }
        }
        _ => Pattern::Established {
            order: order.clone(),
        },
    };
    let mut rows = Vec::new();
    for &size in &plan.sizes {
        let s = with_replies(
            spec(plan, sc, size, pattern(used_new), None),
            size,
            &real_of,
        )?;
        let drops0 = workers.drops();
        let (d, seen) = forward(rig, plan, &workers, &per_gen(&s, &owned));
        used_new += seen.new_span;
        let mut r = row(sc, size, n, w);
        r.generators = seen.gens;
        let (ws, gs) = (d.share(RUN, w), d.share(GEN_RUN, seen.gens));
        set_rates(
            &mut r,
            d.values[TX] as f64 / d.secs / 1e6,
            ws,
            gs,
            d.ratio(STALLS, LOOPS),
        );
        if sc == Scenario::Mixed {
            r.conns_per_s = d.values[CREATED] as f64 / d.secs;
            r.conns_per_s_core = r.conns_per_s / ws.min(gs) / w as f64;
        } else if n >= MIN_TIMED_FLOOD {
            r.conns_per_s = pop.conns_per_s;
            r.conns_per_s_core = pop.conns_per_s_core;
        }
        r.worker_burst = d.values[TX] as f64 / d.values[BUSY].max(1) as f64;
        // Per table slot: for mixed the table has room for the new flows too.
        r.rss_bytes_per_conn = rss1.saturating_sub(rss0) as f64 / capacity as f64;
        r.table_bytes_per_conn = table_bytes as f64 / capacity as f64;
        r.drops = workers.drops() - drops0 + pop.drops;
        r.frames_checked = seen.checked + pop.checked;
        r.frames_bad = seen.bad + pop.bad;
        rows.push(r);
    }
    let mut pipes = workers.stop()?;
    // The probe runs one pipeline: with several workers, worker 0's (its own flows only).
    let mut pipeline = pipes.swap_remove(0);
    drop(pipes);
    for r in rows.iter_mut() {
        let s = with_replies(
            spec(plan, sc, r.size, pattern(used_new), None),
            r.size,
            &real_of,
        )?;
        let s = if w > 1 {
            GenSpec {
                pattern: Pattern::Established {
                    order: owned
                        .first()
                        .cloned()
                        .unwrap_or_else(|| Arc::new(owned_by(&order, 0, w))),
                },
                ..s
            }
        } else {
            s
        };
        let (p, back) = probe(rig, plan, &env, pipeline, &s)?;
        pipeline = back;
        used_new += p.new_span;
        let c = ceiling(rig, plan, &s)?;
        finish_row(r, &p, &c);
    }
    Ok(rows)
}

/// Each flow's real server (index) among the connections of `pipes`, for flows `0..n`.
fn real_servers(pipes: &[Pipeline<Mbuf>], n: u64) -> Result<Vec<u8>, String> {
    let mut real_of = vec![u8::MAX; n as usize];
    for p in pipes {
        for (_, c) in p.conns.iter() {
            let flow = flows::flow_of(c.caddr(), c.cport())
                .filter(|&f| f < n)
                .ok_or_else(|| format!("a connection of no flow: {}:{}", c.caddr(), c.cport()))?;
            let real = (0..topo::N_REAL)
                .find(|&r| c.daddr() == topo::real_ip(r))
                .ok_or_else(|| format!("flow {flow}: bound to {}", c.daddr()))?;
            real_of[flow as usize] = real as u8;
        }
    }
    match real_of.iter().position(|&r| r == u8::MAX) {
        Some(f) => Err(format!("flow {f}: no connection after the flood")),
        None => Ok(real_of),
    }
}

/// `s` sending the real servers' replies, where `real_of` says whose (the reply scenario).
fn with_replies(
    s: GenSpec,
    size: usize,
    real_of: &Option<Arc<Vec<u8>>>,
) -> Result<GenSpec, String> {
    let Some(real_of) = real_of else {
        return Ok(s);
    };
    let templates = (0..topo::N_REAL)
        .map(|r| Template::reply(r, size))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(GenSpec {
        replies: Some(Arc::new(Replies {
            templates,
            real_of: real_of.clone(),
        })),
        ..s
    })
}

/// The flows of `order` that worker `me` of `n` owns.
fn owned_by(order: &[u32], me: usize, n: usize) -> Vec<u32> {
    order
        .iter()
        .copied()
        .filter(|&f| flows::worker_of(u64::from(f), n) == me)
        .collect()
}

/// The SYN flood: `plan.syn_flows` unique SYNs into empty tables, per size.
pub fn syn(rig: &mut Rig, plan: &Plan) -> Result<Vec<Row>, String> {
    let w = rig.workers;
    let n = plan.syn_flows;
    let mut rows = Vec::new();
    for &size in &plan.sizes {
        let env = new_env(w)?;
        let s = spec(
            plan,
            Scenario::Syn,
            size,
            Pattern::NewFlows { first: 0 },
            Some(n),
        );
        let rss0 = rss_bytes();
        let pipes = pipelines(rig, w, n);
        let table_bytes: usize = pipes.iter().map(|p| p.conns.memory_bytes()).sum();
        let workers = Workers::start(rig, &env, pipes, &plan.dut_cores)?;
        // New flows need no orders: one (empty) per generator says how many there are.
        let gens: Vec<Arc<Vec<u32>>> = if plan.gen_cores.len() > 1 {
            (0..w).map(|_| Arc::default()).collect()
        } else {
            Vec::new()
        };
        let specs = per_gen(&s, &gens);
        let f = flood(rig, plan, &workers, &specs, n)?;
        let rss1 = rss_bytes();
        drop(workers.stop()?);
        let mut r = row(Scenario::Syn, size, n, w);
        r.generators = specs.len();
        let mpps = f.conns_per_s / 1e6;
        set_rates(&mut r, mpps, f.worker_share, f.gen_share, f.stalled);
        r.conns_per_s = f.conns_per_s;
        r.conns_per_s_core = f.conns_per_s_core;
        r.rss_bytes_per_conn = rss1.saturating_sub(rss0) as f64 / n as f64;
        r.table_bytes_per_conn = table_bytes as f64 / n as f64;
        r.drops = f.drops;
        r.frames_checked = f.checked;
        r.frames_bad = f.bad;
        // Probe: one pipeline takes the whole flood (its table holds n).
        let p = pipelines(rig, 1, n).pop().expect("one pipeline");
        let (probed, p) = probe(rig, plan, &env, p, &s)?;
        drop(p);
        let c = ceiling(rig, plan, &GenSpec { limit: None, ..s })?;
        finish_row(&mut r, &probed, &c);
        rows.push(r);
    }
    Ok(rows)
}
