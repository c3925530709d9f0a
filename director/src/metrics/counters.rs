//! Counter blocks written by the data plane and read by everyone else.
//!
//! Every counter has exactly one writer (the worker that owns it) and any number of readers
//! (exporter, `ipvsadm --stats`, estimator). A [`Counter`] is an `AtomicU64` updated with a
//! relaxed load followed by a relaxed store, never an atomic read-modify-write: on x86-64
//! [`Counter::add`] compiles to one `add %reg,(mem)` without `lock` prefix (checked with
//! objdump), i.e. the cost of a plain `u64 += n`; the cache line stays in the writer's L1
//! because readers are rare. `fetch_add` would be a `lock add` (a full barrier).
//! Readers on other threads are sound without `unsafe` and never see a torn value; they may
//! see a value a few increments old, which is fine for statistics.
//!
//! Everything a worker writes is cache-line separated from other workers' writes:
//! [`WorkerCounters`] is one aligned block per worker, and per-service / per-real-server
//! statistics ([`DestStats`]) keep one [`PaddedStatBlock`] slot per worker.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Number of drop-reason slots in [`WorkerCounters::drops`].
///
/// The data plane's reason enums index this array; the last slot, [`DROP_REASON_OTHER`], is
/// reserved for reasons outside the names table (labelled `"other"`).
pub const MAX_DROP_REASONS: usize = 48;

/// Slot counting drops whose reason index is not below `MAX_DROP_REASONS - 1`.
pub const DROP_REASON_OTHER: usize = MAX_DROP_REASONS - 1;

/// A single-writer 64-bit counter (or gauge) that other threads may read.
///
/// Only one thread may call [`Counter::add`]/[`Counter::inc`]/[`Counter::set`] on a given
/// counter; concurrent writers would lose increments (never undefined behaviour).
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero.
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    /// Adds one. Single writer only: a relaxed load and a relaxed store, no RMW.
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n` (wrapping). Single writer only: a relaxed load and a relaxed store, no RMW.
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Overwrites the value (for gauges such as the connection-table size).
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Relaxed);
    }

    /// Current value (relaxed load, any thread).
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// The counters of one worker (poll-mode lcore), written only by that worker.
///
/// Aligned to a cache line so two workers' blocks never share one.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerCounters {
    worker: u16,
    /// Packets received from the NIC rx queues.
    pub rx_packets: Counter,
    /// Frame bytes received from the NIC rx queues.
    pub rx_bytes: Counter,
    /// Packets handed to tx_burst and accepted by the NIC.
    pub tx_packets: Counter,
    /// Frame bytes of `tx_packets`.
    pub tx_bytes: Counter,
    /// Dropped packets, indexed by the data plane's reason enums (see [`Self::count_drop`]).
    pub drops: [Counter; MAX_DROP_REASONS],
    /// Packets this worker enqueued on another worker's redirect ring.
    pub redirects_sent: Counter,
    /// Packets this worker dequeued from its own redirect ring.
    pub redirects_received: Counter,
    /// Connections created (new flows scheduled to a real server).
    pub conns_created: Counter,
    /// Connections removed by timer expiry.
    pub conns_expired: Counter,
    /// New connections refused (table full, no destination available, ...).
    pub conns_refused: Counter,
    /// Gauge: entries currently in this worker's connection table.
    pub conn_table_size: Counter,
    /// Gauge: capacity of this worker's connection table.
    pub conn_table_capacity: Counter,
    /// Polls that received or transmitted at least one packet.
    pub busy_polls: Counter,
    /// Polls that found nothing to do.
    pub idle_polls: Counter,
    /// Packets forwarded by the established-flow fast path (the rest of the forwarded
    /// packets took the full path).
    pub fast_path_packets: Counter,
    /// Gauge-like running total: NAT reply tuples a new connection took over from an older
    /// one (`ConnTable::reply_takeovers`).
    pub reply_takeovers: Counter,
}

impl WorkerCounters {
    /// Zeroed counters for worker number `worker` (the `worker` label).
    pub fn new(worker: u16) -> Self {
        WorkerCounters {
            worker,
            rx_packets: Counter::new(),
            rx_bytes: Counter::new(),
            tx_packets: Counter::new(),
            tx_bytes: Counter::new(),
            drops: std::array::from_fn(|_| Counter::new()),
            redirects_sent: Counter::new(),
            redirects_received: Counter::new(),
            conns_created: Counter::new(),
            conns_expired: Counter::new(),
            conns_refused: Counter::new(),
            conn_table_size: Counter::new(),
            conn_table_capacity: Counter::new(),
            busy_polls: Counter::new(),
            idle_polls: Counter::new(),
            fast_path_packets: Counter::new(),
            reply_takeovers: Counter::new(),
        }
    }

    /// The worker number these counters belong to.
    pub fn worker(&self) -> u16 {
        self.worker
    }

    /// Counts one dropped packet for reason index `reason` (e.g. `DropReason as usize`).
    ///
    /// Indices `>= DROP_REASON_OTHER` are counted in the [`DROP_REASON_OTHER`] slot, so a
    /// bad index is visible as `reason="other"` instead of being lost or panicking.
    #[inline(always)]
    pub fn count_drop(&self, reason: usize) {
        self.drops[reason.min(DROP_REASON_OTHER)].inc();
    }

    /// A consistent-enough copy of every value (relaxed loads), for readers.
    pub fn snapshot(&self) -> WorkerSnapshot {
        WorkerSnapshot {
            worker: self.worker,
            rx_packets: self.rx_packets.get(),
            rx_bytes: self.rx_bytes.get(),
            tx_packets: self.tx_packets.get(),
            tx_bytes: self.tx_bytes.get(),
            drops: std::array::from_fn(|i| self.drops[i].get()),
            redirects_sent: self.redirects_sent.get(),
            redirects_received: self.redirects_received.get(),
            conns_created: self.conns_created.get(),
            conns_expired: self.conns_expired.get(),
            conns_refused: self.conns_refused.get(),
            conn_table_size: self.conn_table_size.get(),
            conn_table_capacity: self.conn_table_capacity.get(),
            busy_polls: self.busy_polls.get(),
            idle_polls: self.idle_polls.get(),
            fast_path_packets: self.fast_path_packets.get(),
            reply_takeovers: self.reply_takeovers.get(),
        }
    }
}

/// Plain copy of a [`WorkerCounters`] block; fields as documented there.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct WorkerSnapshot {
    pub worker: u16,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: [u64; MAX_DROP_REASONS],
    pub redirects_sent: u64,
    pub redirects_received: u64,
    pub conns_created: u64,
    pub conns_expired: u64,
    pub conns_refused: u64,
    pub conn_table_size: u64,
    pub conn_table_capacity: u64,
    pub busy_polls: u64,
    pub idle_polls: u64,
    pub fast_path_packets: u64,
    pub reply_takeovers: u64,
}

/// IPVS per-service / per-destination counters (`struct ip_vs_kstats` without the rates):
/// one worker's share.
#[derive(Debug, Default)]
pub struct StatBlock {
    /// Connections scheduled.
    pub conns: Counter,
    /// Packets client -> real server.
    pub inpkts: Counter,
    /// Packets real server -> client (only seen for Masq).
    pub outpkts: Counter,
    /// Frame bytes of `inpkts`.
    pub inbytes: Counter,
    /// Frame bytes of `outpkts`.
    pub outbytes: Counter,
}

impl StatBlock {
    /// Counts one new connection.
    #[inline(always)]
    pub fn count_conn(&self) {
        self.conns.inc();
    }

    /// Counts one inbound packet of `bytes` frame bytes.
    #[inline(always)]
    pub fn count_in(&self, bytes: u64) {
        self.inpkts.inc();
        self.inbytes.add(bytes);
    }

    /// Counts one outbound packet of `bytes` frame bytes.
    #[inline(always)]
    pub fn count_out(&self, bytes: u64) {
        self.outpkts.inc();
        self.outbytes.add(bytes);
    }

    fn totals(&self) -> StatTotals {
        StatTotals {
            conns: self.conns.get(),
            inpkts: self.inpkts.get(),
            outpkts: self.outpkts.get(),
            inbytes: self.inbytes.get(),
            outbytes: self.outbytes.get(),
        }
    }
}

/// A [`StatBlock`] alone on its cache line(s).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct PaddedStatBlock(pub StatBlock);

/// Per real server (or per service) statistics: one slot per worker, summed by readers.
///
/// IPVS keeps these per CPU (`ip_vs_cpu_stats`); we keep them per worker.
#[derive(Debug)]
pub struct DestStats {
    /// One block per worker, indexed by worker number.
    pub per_worker: Box<[PaddedStatBlock]>,
}

/// Per-service statistics have the same shape as per-destination ones.
pub type ServiceStats = DestStats;

impl DestStats {
    /// Zeroed statistics for `n_workers` workers.
    pub fn new(n_workers: usize) -> Self {
        DestStats {
            per_worker: (0..n_workers).map(|_| PaddedStatBlock::default()).collect(),
        }
    }

    /// Number of worker slots.
    pub fn n_workers(&self) -> usize {
        self.per_worker.len()
    }

    /// The block worker `worker` writes (its only writer).
    ///
    /// # Panics
    /// If `worker >= self.n_workers()`: worker numbers are fixed at startup, so this is a
    /// programming error, not bad input.
    #[inline(always)]
    pub fn slot(&self, worker: usize) -> &StatBlock {
        &self.per_worker[worker].0
    }

    /// Sum over all workers (relaxed loads, any thread).
    pub fn sum(&self) -> StatTotals {
        self.per_worker
            .iter()
            .fold(StatTotals::default(), |acc, b| acc.plus(&b.0.totals()))
    }
}

/// Summed IPVS counters (`conns`, `inpkts`, `outpkts`, `inbytes`, `outbytes`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatTotals {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client -> real server.
    pub inpkts: u64,
    /// Packets real server -> client.
    pub outpkts: u64,
    /// Bytes client -> real server.
    pub inbytes: u64,
    /// Bytes real server -> client.
    pub outbytes: u64,
}

impl StatTotals {
    /// Field-wise wrapping sum.
    pub fn plus(&self, o: &StatTotals) -> StatTotals {
        StatTotals {
            conns: self.conns.wrapping_add(o.conns),
            inpkts: self.inpkts.wrapping_add(o.inpkts),
            outpkts: self.outpkts.wrapping_add(o.outpkts),
            inbytes: self.inbytes.wrapping_add(o.inbytes),
            outbytes: self.outbytes.wrapping_add(o.outbytes),
        }
    }

    /// Field-wise `self - zero`, saturating at 0: the ipvsadm view of monotonic raw counters
    /// after `-Z` stored `zero` as the zero point.
    pub fn since(&self, zero: &StatTotals) -> StatTotals {
        StatTotals {
            conns: self.conns.saturating_sub(zero.conns),
            inpkts: self.inpkts.saturating_sub(zero.inpkts),
            outpkts: self.outpkts.saturating_sub(zero.outpkts),
            inbytes: self.inbytes.saturating_sub(zero.inbytes),
            outbytes: self.outbytes.saturating_sub(zero.outbytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn layout_is_cache_line_separated() {
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 64);
        assert_eq!(std::mem::size_of::<WorkerCounters>() % 64, 0);
        assert_eq!(std::mem::align_of::<PaddedStatBlock>(), 64);
        assert_eq!(std::mem::size_of::<PaddedStatBlock>(), 64);
        let s = DestStats::new(3);
        let a = s.slot(0) as *const StatBlock as usize;
        let b = s.slot(1) as *const StatBlock as usize;
        assert_eq!(b - a, 64);
        assert_eq!(a % 64, 0);
    }

    #[test]
    fn counter_add_set_get() {
        let c = Counter::new();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        c.set(7);
        assert_eq!(c.get(), 7);
        c.set(u64::MAX);
        c.add(2);
        assert_eq!(c.get(), 1);
    }

    #[test]
    fn drops_out_of_range_go_to_other() {
        let w = WorkerCounters::new(3);
        w.count_drop(0);
        w.count_drop(5);
        w.count_drop(5);
        w.count_drop(DROP_REASON_OTHER);
        w.count_drop(1000);
        let s = w.snapshot();
        assert_eq!(s.worker, 3);
        assert_eq!(s.drops[0], 1);
        assert_eq!(s.drops[5], 2);
        assert_eq!(s.drops[DROP_REASON_OTHER], 2);
        assert_eq!(s.drops.iter().sum::<u64>(), 5);
    }

    #[test]
    fn per_worker_slots_sum_across_threads() {
        let stats = Arc::new(DestStats::new(4));
        let handles: Vec<_> = (0..4)
            .map(|w| {
                let stats = Arc::clone(&stats);
                std::thread::spawn(move || {
                    let slot = stats.slot(w);
                    for _ in 0..1000 {
                        slot.count_in(100 + w as u64);
                        slot.count_out(10);
                    }
                    slot.count_conn();
                })
            })
            .collect();
        for h in handles {
            h.join().expect("writer thread");
        }
        let t = stats.sum();
        assert_eq!(
            t,
            StatTotals {
                conns: 4,
                inpkts: 4000,
                outpkts: 4000,
                inbytes: 1000 * (100 + 101 + 102 + 103),
                outbytes: 40_000,
            }
        );
    }

    #[test]
    fn since_saturates() {
        let raw = StatTotals {
            conns: 10,
            inpkts: 5,
            outpkts: 0,
            inbytes: 100,
            outbytes: 3,
        };
        let zero = StatTotals {
            conns: 4,
            inpkts: 5,
            outpkts: 1,
            inbytes: 1,
            outbytes: 0,
        };
        assert_eq!(
            raw.since(&zero),
            StatTotals {
                conns: 6,
                inpkts: 0,
                outpkts: 0,
                inbytes: 99,
                outbytes: 3
            }
        );
    }
}
