//! The traffic generator: one thread that plays the wire on both sides of the director.
//!
//! Each loop it (1) takes a burst of mbufs from the pool (bulk), writes a frame per flow
//! (header copy and two checksum fixes, see `frame`) and enqueues the burst on the rx ring of
//! the flow owner's queue on port 0, keeping what a full ring refused for the next loop (a
//! *stall*: the device under test is the bottleneck); (2) dequeues what the workers
//! transmitted on every tx ring and frees it in bulk, checking a sample of frames on the way.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use director::dataplane::steering;
use director::dpdk::{MbufBurst, MbufRing, Mempool, RingConsumer, BURST};

use crate::check::forwarded_ok;
use crate::cpu::TidCell;
use crate::flows::client;
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

/// What the generator sends.
#[derive(Debug, Clone)]
pub struct GenSpec {
    /// Frame of an established flow.
    pub ack: Template,
    /// Frame of a new flow.
    pub syn: Template,
    /// Flow order.
    pub pattern: Pattern,
    /// Packets to send in total, then only drain (`None`: until stopped).
    pub limit: Option<u64>,
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
    /// SYNs of new flows among them.
    pub new_flows: AtomicU64,
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
    pos: usize,
    new_next: u64,
    k: u32,
}

impl Cursor {
    #[inline]
    fn next(&mut self) -> (u64, bool) {
        match &self.pattern {
            Pattern::Established { order } => {
                let f = order[self.pos];
                self.pos += 1;
                if self.pos == order.len() {
                    self.pos = 0;
                }
                (u64::from(f), false)
            }
            Pattern::NewFlows { first } => {
                let f = first + self.new_next;
                self.new_next += 1;
                (f, true)
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
                    let f = first_new + self.new_next % span.max(&1);
                    self.new_next += 1;
                    return (f, true);
                }
                let f = order[self.pos];
                self.pos += 1;
                if self.pos == order.len() {
                    self.pos = 0;
                }
                (u64::from(f), false)
            }
        }
    }
}

fn is_arp(f: &[u8]) -> bool {
    f.len() >= 14 && f[12..14] == [0x08, 0x06]
}

/// Runs the generator on the calling thread until `stop`: frames go to `rx[q]` (queue `q` of
/// port 0, `q` = the flow's owner among `rx.len()` workers); `tx` are the consumers of every
/// tx ring of every port.
pub fn run(
    spec: &GenSpec,
    pool: &Mempool,
    rx: &[Arc<MbufRing>],
    tx: &mut [RingConsumer],
    stats: &GenStats,
    stop: &AtomicBool,
) {
    stats.tid.record();
    let n_q = rx.len().max(1);
    let mut cur = Cursor {
        pattern: spec.pattern.clone(),
        pos: 0,
        new_next: 0,
        k: 0,
    };
    let mut fresh = MbufBurst::new();
    let mut pending: Vec<MbufBurst> = (0..n_q).map(|_| MbufBurst::new()).collect();
    let mut drained = MbufBurst::new();
    let mut sent: u64 = 0;
    let mut new_flows: u64 = 0;
    let mut drain_bursts: u64 = 0;
    let limit = spec.limit.unwrap_or(u64::MAX);
    let mut loops: u64 = 0;
    while !stop.load(Relaxed) {
        loops += 1;
        stats.loops.store(loops, Relaxed);
        // (1) Fill and enqueue.
        if sent < limit && pending.iter().all(|b| b.is_empty()) {
            let n = (limit - sent).min(BURST as u64) as usize;
            if fresh.alloc_from(pool, n).is_ok() {
                for mut m in fresh.drain() {
                    let (flow, syn) = cur.next();
                    let (addr, port) = client(flow);
                    let t = if syn { &spec.syn } else { &spec.ack };
                    if let Ok(buf) = m.append(t.len()) {
                        t.write(buf, addr, port);
                    }
                    new_flows += u64::from(syn);
                    let q = if n_q == 1 {
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
        stats.new_flows.store(new_flows, Relaxed);
        // (2) Drain what was transmitted.
        for c in tx.iter_mut() {
            for _ in 0..4 {
                let n = c.dequeue_burst(&mut drained);
                if n == 0 {
                    break;
                }
                stats.drained.fetch_add(n as u64, Relaxed);
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
