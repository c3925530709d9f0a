//! The director daemon: brings up DPDK from the config, starts the workers, serves the control
//! socket and the metrics endpoint, applies ipvsadm commands by publishing new data-plane
//! snapshots, and shuts everything down cleanly on SIGINT/SIGTERM.
//!
//! Threads: the workers (one per configured core), the control socket's threads, the metrics
//! HTTP thread, the IPVS rate estimator, and the main thread, which runs the neighbour manager
//! (ARP events from workers -> published neighbour table) and watches for signals.

use crate::cli::args::{self, Command, Invocation, ListWhat};
use crate::cli::listing::{ConnListing, ListSnapshot};
use crate::control::config::Config;
use crate::control::protocol::Response;
use crate::control::server::ControlServer;
use crate::control::table::{IpvsTable, Timeouts};
use crate::control::{execute, ControlHandler};
use crate::dataplane::drop::drop_reason_names;
use crate::dataplane::neigh::{self, NeighConfig, NeighManager, NeighTable};
use crate::dataplane::netstate::{NetState, PortInfo};
use crate::dataplane::pipeline::{Pipeline, PipelineConfig};
use crate::dataplane::route::RouteTableBuilder;
use crate::dataplane::snapshot::{
    ServiceInput, Snapshot, SnapshotBuilder, SnapshotCell, StatsRegistry,
};
use crate::dataplane::worker::{Shared, Worker, WorkerCmd, WorkerOptions};
use crate::dpdk::{self, MbufRing, Mempool, Port, PortConf};
use crate::metrics::{
    EstimatorThread, Exporter, MetricsServer, PortStatsView, RealServerStatsView, ServiceStatsView,
    StatsKey, StatsSource, StatsTracker, WorkerCounters, ESTIMATOR_PERIOD,
};
use crate::wire::MacAddr;
use arc_swap::ArcSwap;
use crossbeam::channel::{self, Sender};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Set by the signal handler.
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    // SAFETY: `on_signal` only stores to an atomic, which is async-signal-safe; sigaction is
    // given a zeroed, then filled struct that outlives the call.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
}

/// Options from the daemon's command line (beyond the config file).
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Rules file to restore at start (overrides the config's `control.rules`).
    pub rules: Option<PathBuf>,
    /// Stop by itself once no packet arrived for this long after the first one (pcap replay).
    pub stop_when_idle: Option<Duration>,
    /// Print one line when ready (tests and scripts wait for it).
    pub quiet: bool,
}

/// Everything the control handler and the metrics source need.
struct ControlState {
    table: Mutex<IpvsTable>,
    registry: Mutex<StatsRegistry>,
    tracker: Arc<Mutex<StatsTracker>>,
    snapshot: Arc<SnapshotCell>,
    workers: Vec<Sender<WorkerCmd>>,
    counters: Vec<Arc<WorkerCounters>>,
    ports: Mutex<Vec<Port>>,
}

impl ControlState {
    /// Publishes the data-plane view of `table` (after a successful change).
    fn publish(&self, table: &IpvsTable) -> Result<(), String> {
        let inputs: Vec<ServiceInput> = table
            .services()
            .iter()
            .map(|s| ServiceInput {
                config: s.config.clone(),
                dests: s.dests.iter().map(|d| (d.id, d.config.clone())).collect(),
            })
            .collect();
        let prev = self.snapshot.load_full();
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        let snap = SnapshotBuilder::new(&mut registry, Some(&prev)).build(
            table.generation(),
            &inputs,
            table.timeouts(),
        )?;
        let mut tracker = self.tracker.lock().unwrap_or_else(PoisonError::into_inner);
        // Keep the estimator's registrations in line with the configuration.
        for s in prev.services.iter() {
            if !snap.services.iter().any(|n| n.config.key == s.config.key) {
                tracker.unregister_service(&s.config.key);
            }
            for d in &s.dests {
                let gone = snap.dest(d.id).is_none();
                if gone {
                    tracker.unregister(&StatsKey::Dest(
                        s.config.key,
                        SocketAddr::new(d.config.addr, d.config.port),
                    ));
                }
            }
        }
        for s in snap.services.iter() {
            tracker.register(StatsKey::Service(s.config.key), s.stats.clone());
            for d in &s.dests {
                tracker.register(
                    StatsKey::Dest(s.config.key, SocketAddr::new(d.config.addr, d.config.port)),
                    d.stats.clone(),
                );
            }
        }
        drop(tracker);
        self.snapshot.store(Arc::new(snap));
        Ok(())
    }

    /// The listing view: configuration + counters, rates, loads (+ connections if asked).
    fn list_snapshot(&self, table: &IpvsTable, want_conns: bool) -> ListSnapshot {
        let mut list = ListSnapshot::from_table(table);
        let snap = self.snapshot.load();
        let tracker = self.tracker.lock().unwrap_or_else(PoisonError::into_inner);
        for s in list.services.iter_mut() {
            if let Some(v) = tracker.view(&StatsKey::Service(s.config.key)) {
                s.stats = to_listing_stats(&v);
            }
            for d in s.dests.iter_mut() {
                let key =
                    StatsKey::Dest(s.config.key, SocketAddr::new(d.config.addr, d.config.port));
                if let Some(v) = tracker.view(&key) {
                    d.stats = to_listing_stats(&v);
                }
                if let Some((_, rt)) = snap.dest(d.id) {
                    d.active_conns = rt.load.active();
                    d.inact_conns = rt.load.inactive();
                    d.persist_conns = rt.load.persistent();
                }
            }
        }
        drop(tracker);
        if want_conns {
            list.connections = self.collect_conns();
        }
        list
    }

    fn collect_conns(&self) -> Vec<ConnListing> {
        let mut replies = Vec::new();
        for w in &self.workers {
            let (tx, rx) = channel::bounded(1);
            if w.send(WorkerCmd::ListConns(tx)).is_ok() {
                replies.push(rx);
            }
        }
        let mut all = Vec::new();
        for rx in replies {
            if let Ok(mut v) = rx.recv_timeout(Duration::from_secs(2)) {
                all.append(&mut v);
            }
        }
        all
    }
}

fn to_listing_stats(v: &crate::metrics::IpvsStats) -> crate::cli::listing::Stats {
    crate::cli::listing::Stats {
        conns: v.counters.conns,
        inpkts: v.counters.inpkts,
        outpkts: v.counters.outpkts,
        inbytes: v.counters.inbytes,
        outbytes: v.counters.outbytes,
        cps: v.rates.cps,
        inpps: v.rates.inpps,
        outpps: v.rates.outpps,
        inbps: v.rates.inbps,
        outbps: v.rates.outbps,
    }
}

/// The daemon's [`ControlHandler`]: the table, plus the data plane behind it.
struct DaemonHandler {
    state: Arc<ControlState>,
}

impl ControlHandler for DaemonHandler {
    fn handle(&self, cmd: Command) -> Response {
        let st = &self.state;
        let mut table = st.table.lock().unwrap_or_else(PoisonError::into_inner);
        let before = table.generation();
        let want_conns = matches!(&cmd, Command::List(r) if r.what == ListWhat::Connections);
        let response = execute(&mut table, &cmd, |t| st.list_snapshot(t, want_conns));
        if response.exit_code != 0 {
            return response;
        }
        match &cmd {
            Command::Zero(None) => st
                .tracker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .zero_all(),
            Command::Zero(Some(k)) => st
                .tracker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .zero_service(k),
            Command::SetTimeouts(_) => {
                let t = table.timeouts();
                for w in &st.workers {
                    let _ = w.send(WorkerCmd::SetTimeouts(conn_timeouts(t)));
                }
            }
            _ => {}
        }
        if table.generation() != before {
            if let Err(e) = st.publish(&table) {
                // The table accepted a change the data plane cannot build (should not happen:
                // schedulers are validated by the table). Say so; the old snapshot stays.
                return Response::failure(format!("data plane refused the change: {e}"), 255);
            }
        }
        response
    }
}

/// The per-state connection timeouts for ipvsadm's three values.
fn conn_timeouts(t: Timeouts) -> crate::dataplane::conn::Timeouts {
    let mut c = crate::dataplane::conn::Timeouts::default();
    c.apply_set(t.tcp, t.tcp_fin, t.udp);
    c
}

/// What `/metrics` reads.
struct DaemonStats {
    state: Arc<ControlState>,
}

impl StatsSource for DaemonStats {
    fn services(&self) -> Vec<ServiceStatsView> {
        let snap = self.state.snapshot.load();
        snap.services
            .iter()
            .map(|s| ServiceStatsView {
                key: s.config.key,
                scheduler: s.config.scheduler.clone(),
                totals: s.stats.sum(),
                real_servers: s
                    .dests
                    .iter()
                    .map(|d| RealServerStatsView {
                        addr: SocketAddr::new(d.config.addr, d.config.port),
                        forward: d.config.forward,
                        weight: d.config.weight,
                        active: u64::from(d.load.active()),
                        inactive: u64::from(d.load.inactive()),
                        persistent: u64::from(d.load.persistent()),
                        overloaded: d.load.is_overloaded(),
                        totals: d.stats.sum(),
                    })
                    .collect(),
            })
            .collect()
    }

    fn workers(&self) -> Vec<Arc<WorkerCounters>> {
        self.state.counters.clone()
    }

    fn ports(&self) -> Vec<PortStatsView> {
        let ports = self
            .state
            .ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ports
            .iter()
            .map(|p| PortStatsView {
                port: p.id(),
                xstats: p.xstats().unwrap_or_default(),
            })
            .collect()
    }
}

/// Opens a configured port: an existing device by name (a vdev from the EAL args, a PCI
/// address), else probes the string as a vdev.
fn open_port(device: &str) -> Result<Port, String> {
    match Port::by_name(device) {
        Ok(p) => Ok(p),
        Err(first) => Port::probe_vdev(device).map_err(|e| {
            format!("port device {device:?}: not found ({first}) and cannot be probed ({e})")
        }),
    }
}

/// Runs the daemon until a signal (or idleness with `stop_when_idle`). Returns a message on
/// a start-up failure.
pub fn run(config: Config, opts: DaemonOptions) -> Result<(), String> {
    install_signal_handlers();
    let n_workers = config.worker_lcores.len();
    dpdk::eal::init(&config.eal_args).map_err(|e| format!("EAL: {e}"))?;
    let pool = Mempool::new(
        "director_pkts",
        config.mbufs,
        256,
        dpdk::mempool::DEFAULT_DATA_ROOM,
    )
    .map_err(|e| format!("mempool: {e}"))?;

    // Ports: n_workers rx and tx queues each.
    let mut ports = Vec::new();
    let mut infos = Vec::new();
    let mut routes = RouteTableBuilder::new();
    for (i, pc) in config.ports.iter().enumerate() {
        let mut port = open_port(&pc.device)?;
        let outcome = port
            .configure(
                n_workers as u16,
                n_workers as u16,
                &PortConf {
                    rss: n_workers > 1,
                    mtu: None,
                },
            )
            .map_err(|e| format!("port {}: configure: {e}", pc.name))?;
        for q in 0..n_workers as u16 {
            port.setup_rx_queue(q, pc.rx_desc, &pool)
                .map_err(|e| format!("port {}: rx queue {q}: {e}", pc.name))?;
            port.setup_tx_queue(q, pc.tx_desc)
                .map_err(|e| format!("port {}: tx queue {q}: {e}", pc.name))?;
        }
        port.start()
            .map_err(|e| format!("port {}: start: {e}", pc.name))?;
        let _ = port.set_promiscuous(true);
        let mac = port
            .mac()
            .map_err(|e| format!("port {}: mac: {e}", pc.name))?;
        if !opts.quiet {
            eprintln!(
                "director: port {} ({}) id {} mac {} rss {}",
                pc.name,
                pc.device,
                port.id(),
                MacAddr(mac),
                outcome.rss_enabled
            );
        }
        for a in &pc.addresses {
            routes = routes.connected(i as u16, a.addr, a.prefix_len, pc.mtu);
        }
        infos.push(PortInfo {
            mac: MacAddr(mac),
            mtu: pc.mtu,
            addrs: pc.addresses.iter().map(|a| a.addr).collect(),
        });
        ports.push(port);
    }
    for r in &config.routes {
        routes = routes.route(r.prefix.addr, r.prefix.prefix_len, r.via);
    }
    let routes = routes.build().map_err(|e| format!("routes: {e}"))?;
    let net = Arc::new(NetState {
        ports: infos,
        routes: routes.clone(),
    });

    let mut neigh_mgr = NeighManager::new(NeighConfig::default(), Arc::new(routes));
    for n in &config.neighbours {
        neigh_mgr
            .add_static(n.port as u16, n.addr, n.mac)
            .map_err(|e| format!("neighbour {}: {e}", n.addr))?;
    }
    let neigh_cell: Arc<ArcSwap<NeighTable>> = Arc::new(ArcSwap::new(neigh_mgr.snapshot()));
    let (neigh_tx, neigh_rx) = neigh::event_channel(4096);

    // Redirect rings and workers.
    let mut rings = Vec::new();
    for w in 0..n_workers {
        rings.push(Arc::new(
            MbufRing::new(&format!("redirect{w}"), 4096).map_err(|e| format!("ring: {e}"))?,
        ));
    }
    let snapshot: Arc<SnapshotCell> = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let shared = Shared {
        snapshot: snapshot.clone(),
        net: net.clone(),
        neigh: neigh_cell.clone(),
        rings: rings.clone(),
        stop: stop.clone(),
    };
    let mut workers = Vec::new();
    let mut cmd_senders = Vec::new();
    let mut counters = Vec::new();
    let default_timeouts = conn_timeouts(Timeouts::default());
    let mut queues: Vec<(Vec<_>, Vec<_>)> =
        (0..n_workers).map(|_| (Vec::new(), Vec::new())).collect();
    for port in ports.iter_mut() {
        for (w, q) in queues.iter_mut().enumerate() {
            q.0.push(
                port.rx_queue(w as u16)
                    .map_err(|e| format!("rx queue: {e}"))?,
            );
            q.1.push(
                port.tx_queue(w as u16)
                    .map_err(|e| format!("tx queue: {e}"))?,
            );
        }
    }
    for (w, (rx, tx)) in queues.into_iter().enumerate() {
        let c = Arc::new(WorkerCounters::new(w as u16));
        counters.push(c.clone());
        let pipeline = Pipeline::new(
            &PipelineConfig::new(w, n_workers, config.conn_table_capacity),
            default_timeouts,
            c,
            pool.clone(),
            Some(neigh_tx.clone()),
        );
        let (ctx, crx) = channel::bounded(64);
        cmd_senders.push(ctx);
        let consumer = rings[w]
            .consumer()
            .map_err(|e| format!("ring consumer: {e}"))?;
        let worker = Worker::new(
            w,
            pipeline,
            rx,
            tx,
            consumer,
            shared.clone(),
            crx,
            WorkerOptions {
                core: Some(config.worker_lcores[w]),
                idle_sleep: Duration::from_micros(config.idle_sleep_us),
                idle_streak: 64,
            },
        );
        workers.push(worker);
    }

    // Control plane.
    let tracker = Arc::new(Mutex::new(StatsTracker::new()));
    let state = Arc::new(ControlState {
        table: Mutex::new(IpvsTable::new()),
        registry: Mutex::new(StatsRegistry::new(n_workers)),
        tracker: tracker.clone(),
        snapshot: snapshot.clone(),
        workers: cmd_senders.clone(),
        counters: counters.clone(),
        ports: Mutex::new(ports),
    });
    let handler = Arc::new(DaemonHandler {
        state: state.clone(),
    });
    let rules = opts.rules.clone().or(config.rules.clone());
    if let Some(path) = rules {
        // Before the workers poll: an offline replay must not see packets before its rules.
        restore_rules(&handler, &path)?;
    }
    let mut handles = Vec::new();
    for worker in workers {
        handles.push(worker.spawn().map_err(|e| format!("worker thread: {e}"))?);
    }
    let estimator = EstimatorThread::spawn(tracker, ESTIMATOR_PERIOD)
        .map_err(|e| format!("estimator thread: {e}"))?;
    let names: &'static [&'static str] = Box::leak(drop_reason_names().into_boxed_slice());
    let exporter = Exporter::new(
        Arc::new(DaemonStats {
            state: state.clone(),
        }),
        names,
    )
    .map_err(|e| format!("exporter: {e}"))?;
    let metrics = MetricsServer::start(config.metrics_listen, Arc::new(exporter))
        .map_err(|e| format!("metrics on {}: {e}", config.metrics_listen))?;
    let server = ControlServer::bind(&config.socket, handler.clone())
        .map_err(|e| format!("control socket {}: {e}", config.socket.display()))?;
    if !opts.quiet {
        eprintln!(
            "director: ready: {} worker(s), control {}, metrics http://{}/metrics",
            n_workers,
            config.socket.display(),
            metrics.local_addr()
        );
    }

    // Main loop: neighbours, signals, idleness.
    let started = Instant::now();
    let mut last_rx = 0u64;
    let mut last_change = Instant::now();
    while !SIGNALLED.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
        let now_ns = started.elapsed().as_nanos() as u64;
        neigh_mgr.drain(&neigh_rx, now_ns);
        for (port, ip) in neigh_mgr.due_requests(now_ns) {
            let _ = cmd_senders[0].try_send(WorkerCmd::SendArp { port, target: ip });
        }
        let snap = neigh_mgr.snapshot();
        if !Arc::ptr_eq(&snap, &neigh_cell.load()) {
            neigh_cell.store(snap);
        }
        if let Some(idle) = opts.stop_when_idle {
            let rx: u64 = counters.iter().map(|c| c.rx_packets.get()).sum();
            if rx != last_rx {
                last_rx = rx;
                last_change = Instant::now();
            } else if rx > 0 && last_change.elapsed() >= idle {
                break;
            }
        }
    }

    // Shutdown: stop workers first so ports can be stopped with no poller on them.
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        let _ = h.join();
    }
    server.shutdown();
    metrics.shutdown();
    estimator.stop();
    let ports = std::mem::take(&mut *state.ports.lock().unwrap_or_else(PoisonError::into_inner));
    for mut p in ports {
        let _ = p.stop();
        let _ = p.close();
    }
    if !opts.quiet {
        eprintln!("director: stopped: {}", traffic_summary(&counters, names));
    }
    Ok(())
}

/// One line of totals over all workers: rx/tx packets and every non-zero drop reason.
fn traffic_summary(counters: &[Arc<WorkerCounters>], names: &[&str]) -> String {
    let rx: u64 = counters.iter().map(|c| c.rx_packets.get()).sum();
    let tx: u64 = counters.iter().map(|c| c.tx_packets.get()).sum();
    let mut line = format!("rx {rx} tx {tx} drops");
    let mut any = false;
    for (i, name) in names.iter().enumerate() {
        let n: u64 = counters.iter().map(|c| c.drops[i].get()).sum();
        if n > 0 {
            line.push_str(&format!(" {name}={n}"));
            any = true;
        }
    }
    if !any {
        line.push_str(" none");
    }
    line
}

/// Applies a rules file (ipvsadm -S format, one command per line) at start-up.
fn restore_rules(handler: &DaemonHandler, path: &std::path::Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("rules {}: {e}", path.display()))?;
    for (n, line) in text.lines().enumerate() {
        let mut argv: Vec<String> = vec!["ipvsadm".into()];
        argv.extend(
            line.split_whitespace()
                .filter(|t| *t != "ipvsadm")
                .map(str::to_owned),
        );
        if argv.len() == 1 {
            continue;
        }
        match args::parse(&argv, true) {
            Ok(Invocation::Run(cmd)) => {
                let r = handler.handle(cmd);
                if r.exit_code != 0 {
                    return Err(format!(
                        "rules {} line {}: {}",
                        path.display(),
                        n + 1,
                        r.error
                    ));
                }
            }
            Ok(_) => {}
            Err(e) => {
                return Err(format!(
                    "rules {} line {}: {}",
                    path.display(),
                    n + 1,
                    e.message
                ))
            }
        }
    }
    Ok(())
}
