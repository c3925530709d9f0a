//! The traffic generator: a thread that plays the wire on both sides of the director (one
//! for all workers, or one per worker where one cannot keep up with several).
//!
//! Each loop it (1) takes a burst of mbufs from the pool (bulk), writes a frame per flow
//! (header copy and two checksum fixes, see `frame`) and enqueues the burst on the rx ring of
//! the flow owner's queue on port 0, keeping what a full ring refused for the next loop (a
//! *stall*: the device under test is the bottleneck); (2) dequeues what the workers
//! transmitted on every tx ring and frees it in bulk, checking a sample of frames on the way.
//! When a worker modified them (`GenSpec::prefetch`), mbufs and frames are prefetched a burst
//! at a time before they are written or freed, so their misses overlap: on a 16-core Xeon VM
//! this made the generator feeding one NAT worker 16-33 % faster (without it, the generator,
//! not the worker, set the rate). For the pass-through loop, which modifies nothing, the
//! same prefetches cost the generator about 15 % on the 2-vCPU AMD VM, so the ceiling is
//! measured without them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use director::dataplane::steering;
use director::dpdk::{MbufBurst, MbufRing, Mempool, RingConsumer, BURST};

use crate::check::forwarded_ok;
use crate::cpu::TidCell;
use crate::flows::{client, worker_of};
use crate::frame::Template;
use crate::topo::Method;

/// Which flows the generator sends, in which order.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// ACK segments of the live flows `order[0], order[1], ...`, cyclically.
    Established {
        /// Flow numbers in visiting order.
        order: Arc<Vec<u32>>,
    },
    /// SYNs of new flows `first, first + 1, ...` (each once, unless the limit wraps it).
    NewFlows {
        /// First flow number.
        first: u64,
    },
    /// Established traffic where every `every`-th packet is the SYN of a new flow, new flows
    /// numbered `first_new ..` and wrapping after `span` (later SYNs then hit existing
    /// entries, so the table never overflows).
    Mixed {
        /// Established flows in visiting order.
        order: Arc<Vec<u32>>,
        /// First new flow number.
        first_new: u64,
        /// How many distinct new flows at most.
        span: u64,
        /// One packet in `every` is a SYN.
        every: u32,
    },
}

/// The NAT real servers' replies: each flow's comes from the real server its connection was
/// bound to.
#[derive(Debug)]
pub struct Replies {
    /// One template per real server ([`Template::reply`]).
    pub templates: Vec<Template>,
    /// Each flow's real server (an index into `templates`).
    pub real_of: Arc<Vec<u8>>,
}

/// What the generator sends.
#[derive(Debug, Clone)]
pub struct GenSpec {
    /// Frame of an established flow.
    pub ack: Template,
    /// Established flows send their real servers' replies instead of `ack` (into port 1).
    pub replies: Option<Arc<Replies>>,
    /// Frame of a new flow.
    pub syn: Template,
    /// Flow order.
    pub pattern: Pattern,
    /// Flows to go through in total, then only drain (`None`: until stopped). With `owner`,
    /// a new flow left to another generator counts too, so that generators sharing a spec
    /// cover `limit` flows between them, each once.
    pub limit: Option<u64>,
    /// Prefetch each burst's mbufs and frames before writing them, and drained mbufs before
    /// freeing them: for traffic a worker rewrites (see the module docs).
    pub prefetch: bool,
    /// `Some((me, of))`: one generator of `of`, one per worker; it sends only the flows that
    /// steer to worker `me` (RSS), to the one rx ring it is given. An established `order`
    /// must hold only such flows (see `measure::owned_by`); new flows of other workers are
    /// skipped. `None`: the only generator, for every worker.
    pub owner: Option<(usize, usize)>,
    /// Check every n-th drained burst's frames against `verify`'s method (0: never).
    pub verify_every: u64,
    /// The method whose output the drained frames must show (`None`: no check, e.g. for the
    /// pass-through loop).
    pub verify: Option<Method>,
}

/// Counters of a generator run (read by the main thread while it runs).
#[derive(Debug, Default)]
pub struct GenStats {
    /// Frames enqueued on rx rings.
    pub sent: AtomicU64,
    /// New-flow numbers this generator stepped over: those it sent and, with an owner, those
    /// it left to the other generators. With several generators the next window of new flows
    /// starts after the largest of these (after the sum of their SYNs it could repeat flows
    /// the faster generator already created).
    pub new_span: AtomicU64,
    /// Loops where an rx ring refused frames (the device under test was the bottleneck).
    pub stalls: AtomicU64,
    /// Loops run.
    pub loops: AtomicU64,
    /// Loops where the pool had no mbuf.
    pub pool_empty: AtomicU64,
    /// Frames taken from tx rings.
    pub drained: AtomicU64,
    /// Frames checked.
    pub checked: AtomicU64,
    /// Frames that failed the check.
    pub bad: AtomicU64,
    /// The first frame that failed the check (diagnostics).
    pub first_bad: Mutex<Option<Vec<u8>>>,
    /// The generator's thread.
    pub tid: TidCell,
}

/// Chooses the next (flow, is-SYN) of a pattern.
struct Cursor {
    pattern: Pattern,
    owner: Option<(usize, usize)>,
    pos: usize,
    new_next: u64,
    k: u32,
}

impl Cursor {
    fn new(pattern: Pattern, owner: Option<(usize, usize)>) -> Self {
        Cursor {
            pattern,
            owner,
            pos: 0,
            new_next: 0,
            k: 0,
        }
    }

    /// New-flow numbers stepped over so far (sent, or left to another generator).
    fn new_span(&self) -> u64 {
        self.new_next
    }

    /// Whether this generator sends new flow `flow`.
    #[inline]
    fn owns(&self, flow: u64) -> bool {
        self.owner.is_none_or(|(me, of)| worker_of(flow, of) == me)
    }

    /// The next (flow, is-SYN), or `None` for a new flow left to another generator (a step
    /// of the pattern all the same).
    #[inline]
    fn next(&mut self) -> Option<(u64, bool)> {
        match &self.pattern {
            Pattern::Established { order } => {
                let f = order[self.pos];
                self.pos += 1;
                if self.pos == order.len() {
                    self.pos = 0;
                }
                Some((u64::from(f), false))
            }
            Pattern::NewFlows { first } => {
                let f = first + self.new_next;
                self.new_next += 1;
                self.owns(f).then_some((f, true))
            }
            Pattern::Mixed {
                order,
                first_new,
                span,
                every,
            } => {
                self.k += 1;
                if self.k == *every {
                    self.k = 0;
                    // The next new flow of this generator's worker (one in `every` of its
                    // packets is a SYN whoever owns the flows in between).
                    let span = *span.max(&1);
                    for _ in 0..span {
                        let f = first_new + self.new_next % span;
                        self.new_next += 1;
                        if self.owns(f) {
                            return Some((f, true));
                        }
                    }
                }
                let f = order[self.pos];
                self.pos += 1;
                if self.pos == order.len() {
                    self.pos = 0;
                }
                Some((u64::from(f), false))
            }
        }
    }
}

fn is_arp(f: &[u8]) -> bool {
    f.len() >= 14 && f[12..14] == [0x08, 0x06]
}

/// Runs the generator on the calling thread until `stop`. Without `spec.owner`, frames go to
/// `rx[q]` (queue `q` of port 0, or of port 1 for replies, `q` = the flow's owner among
/// `rx.len()` workers) and `tx` are the consumers of every tx ring of every port; with it,
/// `rx` is the owner's one rx ring and `tx` its tx rings.
pub fn run(
    spec: &GenSpec,
    pool: &Mempool,
    rx: &[Arc<MbufRing>],
    tx: &mut [&mut RingConsumer],
    stats: &GenStats,
    stop: &AtomicBool,
) {
    stats.tid.record();
    let n_q = rx.len().max(1);
    debug_assert!(
        spec.owner.is_none() || n_q == 1,
        "one ring per owned worker"
    );
    let mut cur = Cursor::new(spec.pattern.clone(), spec.owner);
    let mut fresh = MbufBurst::new();
    let mut pending: Vec<MbufBurst> = (0..n_q).map(|_| MbufBurst::new()).collect();
    let mut drained = MbufBurst::new();
    let mut sent: u64 = 0;
    let mut steps: u64 = 0;
    let mut drain_bursts: u64 = 0;
    let limit = spec.limit.unwrap_or(u64::MAX);
    let mut loops: u64 = 0;
    while !stop.load(Relaxed) {
        loops += 1;
        stats.loops.store(loops, Relaxed);
        // (1) Fill and enqueue.
        if steps < limit && pending.iter().all(|b| b.is_empty()) {
            let n = (limit - steps).min(BURST as u64) as usize;
            if fresh.alloc_from(pool, n).is_ok() {
                if spec.prefetch {
                    // The mbufs come back from the workers' cores, their header and frame
                    // lines modified there: start all the misses before the first write waits
                    // for one (a loop this small lets the header loads overlap too).
                    for m in fresh.as_slice() {
                        m.prefetch();
                    }
                }
                for mut m in fresh.drain() {
                    let mut next = None;
                    while next.is_none() && steps < limit {
                        steps += 1;
                        next = cur.next();
                    }
                    // Past the limit: the rest of the burst goes back to the pool.
                    let Some((flow, syn)) = next else { break };
                    let (addr, port) = client(flow);
                    let t = match &spec.replies {
                        _ if syn => &spec.syn,
                        Some(r) => &r.templates[usize::from(r.real_of[flow as usize])],
                        None => &spec.ack,
                    };
                    if let Ok(buf) = m.append(t.len()) {
                        t.write(buf, addr, port);
                    }
                    let q = if n_q == 1 || spec.owner.is_some() {
                        0
                    } else {
                        steering::owner(addr.into(), port, n_q)
                    };
                    // Never full: every pending burst was empty and n <= BURST.
                    let _ = pending[q].push(m);
                }
            } else {
                stats.pool_empty.fetch_add(1, Relaxed);
            }
        }
        let mut stalled = false;
        for (q, b) in pending.iter_mut().enumerate() {
            if !b.is_empty() {
                sent += rx[q].enqueue_burst(b) as u64;
                stalled |= !b.is_empty();
            }
        }
        if stalled {
            stats.stalls.fetch_add(1, Relaxed);
        }
        stats.sent.store(sent, Relaxed);
        stats.new_span.store(cur.new_span(), Relaxed);
        // (2) Drain what was transmitted.
        for c in tx.iter_mut() {
            for _ in 0..4 {
                let n = c.dequeue_burst(&mut drained);
                if n == 0 {
                    break;
                }
                stats.drained.fetch_add(n as u64, Relaxed);
                if spec.prefetch {
                    // Freeing reads each header, last written on a worker's core.
                    for m in drained.as_slice() {
                        m.prefetch_header();
                    }
                }
                drain_bursts += 1;
                if let Some(method) = spec.verify {
                    if spec.verify_every > 0 && drain_bursts.is_multiple_of(spec.verify_every) {
                        // Gratuitous ARPs for the VIPs (worker 0 announces them on start)
                        // are the director's own frames, not forwarded ones.
                        let mut bad = drained
                            .as_slice()
                            .iter()
                            .filter(|m| !is_arp(m.data()) && !forwarded_ok(method, m.data()));
                        if let Some(first) = bad.next() {
                            let mut keep =
                                stats.first_bad.lock().unwrap_or_else(|e| e.into_inner());
                            keep.get_or_insert_with(|| first.data().to_vec());
                            stats.bad.fetch_add(1 + bad.count() as u64, Relaxed);
                        }
                        stats.checked.fetch_add(n as u64, Relaxed);
                    }
                }
                drained.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Up to `steps` steps of a cursor: the flows it yields, in order.
    fn walk(c: &mut Cursor, steps: usize) -> Vec<(u64, bool)> {
        (0..steps).filter_map(|_| c.next()).collect()
    }

    #[test]
    fn generators_per_worker_split_new_flows_each_once() {
        let n = 5_000;
        let all = walk(&mut Cursor::new(Pattern::NewFlows { first: 7 }, None), n);
        assert_eq!(all.len(), n);
        let mut union = Vec::new();
        for me in 0..2 {
            let mine = walk(
                &mut Cursor::new(Pattern::NewFlows { first: 7 }, Some((me, 2))),
                n,
            );
            assert!(mine.iter().all(|&(f, syn)| syn && worker_of(f, 2) == me));
            // Steered by RSS: neither worker gets (nearly) all or nothing.
            assert!(
                mine.len() > n / 4 && mine.len() < 3 * n / 4,
                "{}",
                mine.len()
            );
            union.extend(mine);
        }
        union.sort_unstable();
        assert_eq!(union, all);
    }

    #[test]
    fn a_mixed_generator_per_worker_keeps_one_syn_in_every_and_its_own_flows() {
        let order: Arc<Vec<u32>> = Arc::new(
            (0..100u32)
                .filter(|&f| worker_of(u64::from(f), 2) == 1)
                .collect(),
        );
        let p = Pattern::Mixed {
            order: order.clone(),
            first_new: 1_000,
            span: 400,
            every: 10,
        };
        let got = walk(&mut Cursor::new(p, Some((1, 2))), 1_000);
        assert_eq!(got.len(), 1_000);
        for (i, &(f, syn)) in got.iter().enumerate() {
            assert_eq!(syn, i % 10 == 9, "packet {i}");
            assert_eq!(worker_of(f, 2), 1, "packet {i}: flow {f}");
            if syn {
                assert!((1_000..1_400).contains(&f));
            } else {
                assert!(order.contains(&(f as u32)));
            }
        }
        // The new flows it sends are worker 1's of the span, in order, none twice (100 SYNs
        // out of the span's ~200 such flows).
        let syns: Vec<u64> = got.iter().filter(|p| p.1).map(|p| p.0).collect();
        assert!(syns.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn uneven_mixed_generators_never_repeat_a_new_flow_in_the_next_window() {
        let order: Vec<Arc<Vec<u32>>> = (0..2)
            .map(|me| {
                Arc::new(
                    (0..100u32)
                        .filter(|&f| worker_of(u64::from(f), 2) == me)
                        .collect(),
                )
            })
            .collect();
        let mixed = |me: usize, first_new: u64| Pattern::Mixed {
            order: order[me].clone(),
            first_new,
            span: 1_000_000,
            every: 10,
        };
        // Window 1: generator 1 runs three times as far as generator 0.
        let mut syns = Vec::new();
        let (mut sent, mut span) = (0u64, 0u64);
        for (me, steps) in [(0, 2_000), (1, 6_000)] {
            let mut c = Cursor::new(mixed(me, 100), Some((me, 2)));
            let got: Vec<u64> = walk(&mut c, steps)
                .into_iter()
                .filter(|p| p.1)
                .map(|p| p.0)
                .collect();
            assert!(got.iter().all(|&f| f - 100 < c.new_span()));
            sent += got.len() as u64;
            span = span.max(c.new_span());
            syns.extend(got);
        }
        // Counted by SYNs sent, the next window would start inside generator 1's flows.
        assert!(100 + sent < syns.iter().max().copied().unwrap_or(0));
        // Window 2 starts after the largest span: no new flow is sent twice.
        for me in 0..2 {
            let mut c = Cursor::new(mixed(me, 100 + span), Some((me, 2)));
            syns.extend(walk(&mut c, 4_000).into_iter().filter(|p| p.1).map(|p| p.0));
        }
        let n = syns.len();
        syns.sort_unstable();
        syns.dedup();
        assert_eq!(syns.len(), n, "a new flow was sent twice");
    }
}
