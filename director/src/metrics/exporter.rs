//! Builds the Prometheus metric families from a [`StatsSource`] at scrape time.
//!
//! Nothing is registered in advance: services and real servers come and go with the IPVS
//! table, so every scrape asks the source for the current set and sums the per-worker counters
//! then. Metric names and labels are listed in docs/metrics.md.

use std::fmt;
use std::sync::Arc;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use super::counters::{StatTotals, WorkerSnapshot, DROP_REASON_OTHER};
use super::source::{
    real_server_label, service_label, PortStatsView, RealServerStatsView, ServiceStatsView,
    StatsSource,
};

/// Content type of the text exposition format served on `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label value of [`DROP_REASON_OTHER`] and of slots without a name.
pub const OTHER_DROP_REASON: &str = "other";

/// DPDK xstats exported under their own metric name as well as in `director_port_xstats_total`.
const WELL_KNOWN_XSTATS: &[(&str, &str, &str)] = &[
    (
        "rx_good_packets",
        "director_port_rx_packets_total",
        "Packets received by the port.",
    ),
    (
        "tx_good_packets",
        "director_port_tx_packets_total",
        "Packets sent by the port.",
    ),
    (
        "rx_good_bytes",
        "director_port_rx_bytes_total",
        "Bytes received by the port.",
    ),
    (
        "tx_good_bytes",
        "director_port_tx_bytes_total",
        "Bytes sent by the port.",
    ),
    (
        "rx_missed_errors",
        "director_port_rx_missed_total",
        "Packets dropped by the NIC because the rx queues were full (imissed).",
    ),
    (
        "rx_errors",
        "director_port_rx_errors_total",
        "Erroneous received packets (ierrors).",
    ),
    (
        "tx_errors",
        "director_port_tx_errors_total",
        "Failed transmitted packets (oerrors).",
    ),
    (
        "rx_mbuf_allocation_errors",
        "director_port_rx_nombuf_total",
        "Receive mbuf allocation failures (rx_nombuf).",
    ),
];

/// A bad drop-reason names table given to [`Exporter::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExporterError {
    /// More names than slots (the last slot is reserved for `"other"`).
    TooManyDropReasons {
        /// Names given.
        given: usize,
        /// Names allowed (`MAX_DROP_REASONS - 1`).
        max: usize,
    },
    /// A name appears twice, is empty, or is the reserved `"other"`.
    BadDropReason(&'static str),
}

impl fmt::Display for ExporterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExporterError::TooManyDropReasons { given, max } => {
                write!(
                    f,
                    "{given} drop reasons given, at most {max} fit the counters"
                )
            }
            ExporterError::BadDropReason(n) => {
                write!(f, "drop reason name {n:?} is empty, duplicated or reserved")
            }
        }
    }
}

impl std::error::Error for ExporterError {}

/// Turns a [`StatsSource`] into Prometheus metric families.
pub struct Exporter {
    source: Arc<dyn StatsSource>,
    drop_reasons: &'static [&'static str],
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exporter")
            .field("drop_reasons", &self.drop_reasons)
            .finish_non_exhaustive()
    }
}

impl Exporter {
    /// An exporter reading `source`; `drop_reasons[i]` labels `WorkerCounters::drops[i]`
    /// (e.g. the `as_str()` of the data plane's reason enums, in discriminant order).
    pub fn new(
        source: Arc<dyn StatsSource>,
        drop_reasons: &'static [&'static str],
    ) -> Result<Self, ExporterError> {
        if drop_reasons.len() > DROP_REASON_OTHER {
            return Err(ExporterError::TooManyDropReasons {
                given: drop_reasons.len(),
                max: DROP_REASON_OTHER,
            });
        }
        for (i, name) in drop_reasons.iter().enumerate() {
            if name.is_empty() || *name == OTHER_DROP_REASON || drop_reasons[..i].contains(name) {
                return Err(ExporterError::BadDropReason(name));
            }
        }
        Ok(Exporter {
            source,
            drop_reasons,
        })
    }

    /// The metric families of one scrape, in a fixed order; empty families are left out.
    pub fn gather(&self) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        let services = self.source.services();
        out.extend(service_families(&services));
        out.extend(real_server_families(&services));
        let workers: Vec<WorkerSnapshot> =
            self.source.workers().iter().map(|w| w.snapshot()).collect();
        out.extend(self.worker_families(&workers));
        out.extend(port_families(&self.source.ports()));
        let mut info = Fam::gauge("director_build_info", "Build information; always 1.");
        info.add(&[("version", env!("CARGO_PKG_VERSION"))], 1);
        out.push(info.0);
        out.retain(|f| !f.get_metric().is_empty());
        out
    }

    /// One scrape in the Prometheus text format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    fn worker_families(&self, workers: &[WorkerSnapshot]) -> Vec<MetricFamily> {
        let mut rx_p = Fam::counter("director_worker_rx_packets_total", "Packets received.");
        let mut rx_b = Fam::counter("director_worker_rx_bytes_total", "Frame bytes received.");
        let mut tx_p = Fam::counter("director_worker_tx_packets_total", "Packets transmitted.");
        let mut tx_b = Fam::counter("director_worker_tx_bytes_total", "Frame bytes transmitted.");
        let mut drops = Fam::counter("director_worker_drops_total", "Packets dropped, by reason.");
        let mut redir = Fam::counter(
            "director_worker_redirects_total",
            "Packets passed to (sent) or taken from (received) worker redirect rings.",
        );
        let mut created = Fam::counter(
            "director_worker_connections_created_total",
            "Connections created.",
        );
        let mut expired = Fam::counter(
            "director_worker_connections_expired_total",
            "Connections expired by timeout.",
        );
        let mut refused = Fam::counter(
            "director_worker_connections_refused_total",
            "New connections refused (table full, no real server available).",
        );
        let mut size = Fam::gauge(
            "director_worker_conn_table_entries",
            "Entries in the worker's connection table.",
        );
        let mut cap = Fam::gauge(
            "director_worker_conn_table_capacity",
            "Capacity of the worker's connection table.",
        );
        let mut polls = Fam::counter(
            "director_worker_polls_total",
            "Poll loop iterations that found work (busy) or none (idle).",
        );
        let mut fast = Fam::counter(
            "director_worker_fast_path_packets_total",
            "Packets of established flows forwarded by the fast path (plain IPv4 TCP/UDP, cached egress).",
        );
        let mut takeovers = Fam::counter(
            "director_worker_reply_takeovers_total",
            "NAT reply tuples a new connection took over from an older one (newest wins, as in the kernel).",
        );
        for w in workers {
            let id = w.worker.to_string();
            let l = [("worker", id.as_str())];
            rx_p.add(&l, w.rx_packets);
            rx_b.add(&l, w.rx_bytes);
            tx_p.add(&l, w.tx_packets);
            tx_b.add(&l, w.tx_bytes);
            let mut other = 0u64;
            for (i, &n) in w.drops.iter().enumerate() {
                match self.drop_reasons.get(i) {
                    Some(reason) => drops.add(&[l[0], ("reason", reason)], n),
                    None => other = other.wrapping_add(n),
                }
            }
            drops.add(&[l[0], ("reason", OTHER_DROP_REASON)], other);
            redir.add(&[l[0], ("direction", "sent")], w.redirects_sent);
            redir.add(&[l[0], ("direction", "received")], w.redirects_received);
            created.add(&l, w.conns_created);
            expired.add(&l, w.conns_expired);
            refused.add(&l, w.conns_refused);
            size.add(&l, w.conn_table_size);
            cap.add(&l, w.conn_table_capacity);
            polls.add(&[l[0], ("kind", "busy")], w.busy_polls);
            polls.add(&[l[0], ("kind", "idle")], w.idle_polls);
            fast.add(&l, w.fast_path_packets);
            takeovers.add(&l, w.reply_takeovers);
        }
        [
            rx_p, rx_b, tx_p, tx_b, drops, redir, created, expired, refused, size, cap, polls,
            fast, takeovers,
        ]
        .into_iter()
        .map(|f| f.0)
        .collect()
    }
}

/// Counters shared by services and real servers, labelled by `base`.
struct TrafficFams {
    conns: Fam,
    packets: Fam,
    bytes: Fam,
    active: Fam,
    inactive: Fam,
    persistent: Fam,
}

impl TrafficFams {
    fn new(prefix: &str, what: &str) -> Self {
        let name = |s: &str| format!("director_{prefix}_{s}");
        TrafficFams {
            conns: Fam::counter(&name("connections_total"), &format!("Connections scheduled to the {what}.")),
            packets: Fam::counter(&name("packets_total"), &format!("Packets forwarded for the {what}, in = client to real server, out = real server to client.")),
            bytes: Fam::counter(&name("bytes_total"), &format!("Frame bytes forwarded for the {what}, by direction.")),
            active: Fam::gauge(&name("active_connections"), &format!("Active (established) connections of the {what}.")),
            inactive: Fam::gauge(&name("inactive_connections"), &format!("Inactive connections of the {what}.")),
            persistent: Fam::gauge(&name("persistent_connections"), &format!("Persistence templates of the {what}.")),
        }
    }

    fn add(&mut self, labels: &[(&str, &str)], t: &StatTotals, load: [u64; 3]) {
        let with_dir = |d: &'static str| {
            let mut v = labels.to_vec();
            v.push(("direction", d));
            v
        };
        self.conns.add(labels, t.conns);
        self.packets.add(&with_dir("in"), t.inpkts);
        self.packets.add(&with_dir("out"), t.outpkts);
        self.bytes.add(&with_dir("in"), t.inbytes);
        self.bytes.add(&with_dir("out"), t.outbytes);
        self.active.add(labels, load[0]);
        self.inactive.add(labels, load[1]);
        self.persistent.add(labels, load[2]);
    }

    fn into_vec(self) -> Vec<MetricFamily> {
        [
            self.conns,
            self.packets,
            self.bytes,
            self.active,
            self.inactive,
            self.persistent,
        ]
        .into_iter()
        .map(|f| f.0)
        .collect()
    }
}

fn load_of(rs: &RealServerStatsView) -> [u64; 3] {
    [rs.active, rs.inactive, rs.persistent]
}

fn service_families(services: &[ServiceStatsView]) -> Vec<MetricFamily> {
    let mut traffic = TrafficFams::new("service", "virtual service");
    let mut n_rs = Fam::gauge("director_service_real_servers", "Real servers configured.");
    let mut up = Fam::gauge(
        "director_service_up",
        "1 if at least one real server has weight > 0 and is not overloaded.",
    );
    let mut info = Fam::gauge(
        "director_service_info",
        "Service configuration (scheduler); always 1.",
    );
    for s in services {
        let name = service_label(&s.key);
        let l = [("service", name.as_str())];
        let load = s.real_servers.iter().fold([0u64; 3], |acc, rs| {
            let r = load_of(rs);
            [acc[0] + r[0], acc[1] + r[1], acc[2] + r[2]]
        });
        traffic.add(&l, &s.totals, load);
        n_rs.add(&l, s.real_servers.len() as u64);
        up.add(&l, u64::from(s.real_servers.iter().any(|r| r.is_up())));
        info.add(&[l[0], ("scheduler", s.scheduler.as_str())], 1);
    }
    let mut v = traffic.into_vec();
    v.extend([n_rs.0, up.0, info.0]);
    v
}

fn real_server_families(services: &[ServiceStatsView]) -> Vec<MetricFamily> {
    let mut traffic = TrafficFams::new("real_server", "real server");
    let mut weight = Fam::gauge("director_real_server_weight", "Configured weight.");
    let mut up = Fam::gauge(
        "director_real_server_up",
        "1 if the scheduler may pick it (weight > 0 and not overloaded), else 0.",
    );
    let mut quiesced = Fam::gauge("director_real_server_quiesced", "1 if its weight is 0.");
    let mut overloaded = Fam::gauge(
        "director_real_server_overloaded",
        "1 if over its upper connection threshold (IP_VS_DEST_F_OVERLOAD).",
    );
    for s in services {
        let svc = service_label(&s.key);
        for rs in &s.real_servers {
            let addr = real_server_label(rs.addr.ip(), rs.addr.port());
            let l = [
                ("service", svc.as_str()),
                ("real_server", addr.as_str()),
                ("forward", rs.forward.metric_label()),
            ];
            traffic.add(&l, &rs.totals, load_of(rs));
            weight.add(&l, u64::from(rs.weight));
            up.add(&l, u64::from(rs.is_up()));
            quiesced.add(&l, u64::from(rs.weight == 0));
            overloaded.add(&l, u64::from(rs.overloaded));
        }
    }
    let mut v = traffic.into_vec();
    v.extend([weight.0, up.0, quiesced.0, overloaded.0]);
    v
}

fn port_families(ports: &[PortStatsView]) -> Vec<MetricFamily> {
    let mut all = Fam::counter(
        "director_port_xstats_total",
        "DPDK extended statistics of the port (rte_eth_xstats), by xstat name.",
    );
    let mut known: Vec<Fam> = WELL_KNOWN_XSTATS
        .iter()
        .map(|(_, name, help)| Fam::counter(name, help))
        .collect();
    for p in ports {
        let id = p.port.to_string();
        for (name, value) in &p.xstats {
            all.add(&[("port", id.as_str()), ("name", name.as_str())], *value);
            if let Some(i) = WELL_KNOWN_XSTATS.iter().position(|(x, _, _)| x == name) {
                known[i].add(&[("port", id.as_str())], *value);
            }
        }
    }
    let mut v: Vec<MetricFamily> = known.into_iter().map(|f| f.0).collect();
    v.push(all.0);
    v
}

/// One metric family under construction.
struct Fam(MetricFamily);

impl Fam {
    fn new(name: &str, help: &str, ty: MetricType) -> Self {
        let mut mf = MetricFamily::default();
        mf.set_name(name.to_owned());
        mf.set_help(help.to_owned());
        mf.set_field_type(ty);
        Fam(mf)
    }

    fn counter(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricType::COUNTER)
    }

    fn gauge(name: &str, help: &str) -> Self {
        Self::new(name, help, MetricType::GAUGE)
    }

    /// Adds a sample. Values above 2^53 lose precision in the f64 of the exposition format.
    fn add(&mut self, labels: &[(&str, &str)], value: u64) {
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut lp = LabelPair::default();
                    lp.set_name((*k).to_owned());
                    lp.set_value((*v).to_owned());
                    lp
                })
                .collect(),
        );
        let v = value as f64;
        if self.0.get_field_type() == MetricType::COUNTER {
            let mut c = Counter::default();
            c.set_value(v);
            m.set_counter(c);
        } else {
            let mut g = Gauge::default();
            g.set_value(v);
            m.set_gauge(g);
        }
        self.0.mut_metric().push(m);
    }
}
