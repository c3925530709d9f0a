//! Control-side bookkeeping of IPVS statistics: rate estimators, `-Z` zero points and the
//! 2-second estimator thread.
//!
//! Raw counters ([`DestStats`]) are monotonic and are what Prometheus sees. ipvsadm sees
//! `raw - zero point`, where `ipvsadm -Z` stores the current raw totals as the zero point and
//! resets the rates (kernel `ip_vs_zero_stats`: `kstats0 = kstats`, `ip_vs_zero_estimator`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::counters::{DestStats, StatTotals};
use super::estimator::{RateEstimator, Rates};
use crate::model::ServiceKey;

/// What a registered statistics block belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatsKey {
    /// Global totals (`/proc/net/ip_vs_stats`).
    Total,
    /// A virtual service.
    Service(ServiceKey),
    /// A real server of a service.
    Dest(ServiceKey, SocketAddr),
}

impl StatsKey {
    /// The service this key belongs to (`None` for [`StatsKey::Total`]).
    pub fn service(&self) -> Option<&ServiceKey> {
        match self {
            StatsKey::Total => None,
            StatsKey::Service(s) | StatsKey::Dest(s, _) => Some(s),
        }
    }
}

/// What ipvsadm `--stats` / `--rate` shows for one service or real server.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IpvsStats {
    /// Counters since the last `-Z` (raw minus zero point).
    pub counters: StatTotals,
    /// Estimated rates (0 right after `-Z`).
    pub rates: Rates,
}

#[derive(Debug)]
struct Tracked {
    stats: Arc<DestStats>,
    estimator: RateEstimator,
    zero: StatTotals,
}

/// Registered statistics with their estimators and zero points (control plane only).
#[derive(Debug, Default)]
pub struct StatsTracker {
    entries: HashMap<StatsKey, Tracked>,
    ticks: u64,
}

impl StatsTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts tracking `stats` under `key`.
    ///
    /// Registering the block already tracked under `key` again (same `Arc`) changes nothing,
    /// so the daemon may re-register everything on each reconfiguration. A different block
    /// replaces the old one. ipvsadm then shows the block's counts since its creation (no
    /// zero point, like a kernel destination revived from the trash keeps its stats); the
    /// estimator takes its first delta from the current totals, so old counts make no spike.
    pub fn register(&mut self, key: StatsKey, stats: Arc<DestStats>) {
        if let Some(t) = self.entries.get(&key) {
            if Arc::ptr_eq(&t.stats, &stats) {
                return;
            }
        }
        let now = stats.sum();
        let entry = Tracked {
            stats,
            estimator: RateEstimator::new(now),
            zero: StatTotals::default(),
        };
        self.entries.insert(key, entry);
    }

    /// Stops tracking `key`; false if it was not registered.
    pub fn unregister(&mut self, key: &StatsKey) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Stops tracking a service and all its real servers.
    pub fn unregister_service(&mut self, service: &ServiceKey) {
        self.entries.retain(|k, _| k.service() != Some(service));
    }

    /// Number of registered blocks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// One estimation step over every registered block (call every [`super::ESTIMATOR_PERIOD`]).
    pub fn tick(&mut self) {
        for t in self.entries.values_mut() {
            let now = t.stats.sum();
            t.estimator.update(&now);
        }
        self.ticks += 1;
    }

    /// Number of [`StatsTracker::tick`] calls so far.
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// `ipvsadm -Z` without a service: every block (services, real servers, totals).
    pub fn zero_all(&mut self) {
        self.zero_where(|_| true);
    }

    /// `ipvsadm -Z -t|-u|-f service`: the service and its real servers.
    pub fn zero_service(&mut self, service: &ServiceKey) {
        self.zero_where(|k| k.service() == Some(service));
    }

    fn zero_where(&mut self, pred: impl Fn(&StatsKey) -> bool) {
        for (k, t) in self.entries.iter_mut() {
            if pred(k) {
                let now = t.stats.sum();
                t.zero = now;
                t.estimator.zero(&now);
            }
        }
    }

    /// The ipvsadm view of `key`: counters since the last zeroing, and the rates.
    pub fn view(&self, key: &StatsKey) -> Option<IpvsStats> {
        self.entries.get(key).map(|t| IpvsStats {
            counters: t.stats.sum().since(&t.zero),
            rates: t.estimator.rates(),
        })
    }

    /// The monotonic raw totals of `key` (what Prometheus exports).
    pub fn raw(&self, key: &StatsKey) -> Option<StatTotals> {
        self.entries.get(key).map(|t| t.stats.sum())
    }
}

/// The control-plane thread that calls [`StatsTracker::tick`] every period.
///
/// Ticks follow a fixed schedule (start + n * period), so a slow tick does not shift later
/// ones. Dropping it (or [`EstimatorThread::stop`]) stops and joins the thread.
#[derive(Debug)]
pub struct EstimatorThread {
    stop: Option<Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl EstimatorThread {
    /// Starts ticking `tracker` every `period` (use [`super::ESTIMATOR_PERIOD`]).
    pub fn spawn(tracker: Arc<Mutex<StatsTracker>>, period: Duration) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("ipvs-estimator".into())
            .spawn(move || {
                let mut next = Instant::now() + period;
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {
                            tracker
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .tick();
                            next += period;
                        }
                        // A stop message or the handle dropped.
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })?;
        Ok(EstimatorThread {
            stop: Some(tx),
            handle: Some(handle),
        })
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for EstimatorThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_keeps_existing_state_and_counts() {
        let stats = Arc::new(DestStats::new(1));
        stats.slot(0).conns.add(1000); // counted before registration
        let mut t = StatsTracker::new();
        t.register(StatsKey::Total, Arc::clone(&stats));
        t.tick(); // no delta since registration: no spike
        assert_eq!(
            t.view(&StatsKey::Total)
                .map(|v| (v.counters.conns, v.rates.cps)),
            Some((1000, 0))
        );

        stats.slot(0).conns.add(100);
        t.tick();
        t.zero_all();
        stats.slot(0).conns.add(4);
        // Re-registering the same block keeps the zero point and the estimator.
        t.register(StatsKey::Total, Arc::clone(&stats));
        assert_eq!(t.view(&StatsKey::Total).map(|v| v.counters.conns), Some(4));

        // A different block replaces it.
        let fresh = Arc::new(DestStats::new(1));
        fresh.slot(0).conns.add(7);
        t.register(StatsKey::Total, fresh);
        assert_eq!(t.view(&StatsKey::Total).map(|v| v.counters.conns), Some(7));
        assert_eq!(t.ticks(), 2);
    }
}
