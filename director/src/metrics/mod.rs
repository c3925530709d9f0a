//! Observability: data-plane counters, the IPVS rate estimator and the Prometheus exporter.
//!
//! - [`counters`]: per-worker [`WorkerCounters`] and per-service / per-real-server
//!   [`DestStats`] (one cache-line slot per worker), written with plain single-writer stores.
//! - [`estimator`]: the kernel's 2-second rate estimator ([`RateEstimator`]).
//! - [`tracker`]: control-side registry of statistics with `-Z` zero points
//!   ([`StatsTracker`]) and the thread that ticks the estimators ([`EstimatorThread`]).
//! - [`source`] + [`exporter`]: metric families built at scrape time from a [`StatsSource`].
//! - [`http`]: the `/metrics` and `/healthz` server ([`MetricsServer`]).
//!
//! Metric names and the dashboard are documented in docs/metrics.md.

pub mod counters;
pub mod estimator;
pub mod exporter;
pub mod http;
pub mod source;
pub mod tracker;

pub use counters::{
    Counter, DestStats, PaddedStatBlock, ServiceStats, StatBlock, StatTotals, WorkerCounters,
    WorkerSnapshot, DROP_REASON_OTHER, MAX_DROP_REASONS,
};
pub use estimator::{RateEstimator, Rates, ESTIMATOR_PERIOD};
pub use exporter::{Exporter, ExporterError, CONTENT_TYPE};
pub use http::MetricsServer;
pub use source::{
    real_server_label, service_label, PortStatsView, RealServerStatsView, ServiceStatsView,
    StatsSource,
};
pub use tracker::{EstimatorThread, IpvsStats, StatsKey, StatsTracker};
