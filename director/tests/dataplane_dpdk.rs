//! The real worker loop (`worker::Worker`) on real DPDK ports: two ring-backed ports ("outside"
//! = port 0, "inside" = port 1) with two rx/tx queues each, two workers on their own threads.
//! The test plays the wire: it enqueues frames into a port's rx ring (choosing the queue, i.e.
//! the worker that receives them) and dequeues what the workers transmit from the tx rings.
//! Every frame is compared byte for byte with what scapy built (tests/golden_dp/gen.py).
//!
//! EAL comes up once per process; the ports, rings and pool are made once (ports 0 and 1 of
//! this process) and lent to one test at a time. Each test starts its own workers with fresh
//! pipelines and a fresh snapshot, and stops them at the end, also when it fails (`Workers`'s
//! `Drop`).

#[path = "golden_dp/frames.rs"]
mod frames;
#[path = "golden_dp/topo.rs"]
mod topo;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use crossbeam::channel::{unbounded, Sender};
use director::dataplane::conn::Timeouts as ConnTimeouts;
use director::dataplane::pipeline::{Pipeline, PipelineConfig};
use director::dataplane::snapshot::{SnapshotBuilder, SnapshotCell, StatsRegistry, Timeouts};
use director::dataplane::steering;
use director::dataplane::worker::{Shared, Worker, WorkerCmd, WorkerOptions};
use director::dpdk::{eal, Mbuf, MbufBurst, MbufRing, Mempool, Port, PortConf, RingConsumer};
use director::metrics::counters::StatTotals;
use director::metrics::WorkerCounters;
use frames::{assert_frame, describe_diff, get};
use topo::*;

const N_WORKERS: usize = 2;
/// How long a test waits for frames before it gives up (a bound, not a measurement).
const PATIENCE: Duration = Duration::from_secs(30);

/// The ports and rings, made once per process.
struct Rig {
    pool: Mempool,
    ports: Vec<Port>,
    /// `[port][queue]`: the test enqueues received frames here.
    rx: Vec<Vec<Arc<MbufRing>>>,
    /// `[port][queue]`: the test dequeues transmitted frames here.
    tx: Vec<Vec<RingConsumer>>,
    /// Worker redirect rings.
    redirect: Vec<Arc<MbufRing>>,
}

fn ring(name: &str) -> Arc<MbufRing> {
    Arc::new(MbufRing::new(name, 1024).expect("ring"))
}

fn rig() -> MutexGuard<'static, Rig> {
    static RIG: OnceLock<Mutex<Rig>> = OnceLock::new();
    let m = RIG.get_or_init(|| {
        eal::test_init().expect("EAL test init");
        let pool = Mempool::new(
            "dp_pool",
            4095,
            0,
            director::dpdk::mempool::DEFAULT_DATA_ROOM,
        )
        .expect("mempool");
        let mut ports = Vec::new();
        let mut rx = Vec::new();
        let mut tx = Vec::new();
        for (p, name) in ["outside", "inside"].into_iter().enumerate() {
            let rxr: Vec<_> = (0..2).map(|q| ring(&format!("dp_{name}_rx{q}"))).collect();
            let txr: Vec<_> = (0..2).map(|q| ring(&format!("dp_{name}_tx{q}"))).collect();
            let mut port = Port::from_rings(&format!("dp_{name}"), &rxr, &txr).expect("port");
            assert_eq!(
                usize::from(port.id()),
                p,
                "the pipeline's port numbers are DPDK ids"
            );
            port.configure(2, 2, &PortConf::default())
                .expect("configure");
            for q in 0..2 {
                port.setup_rx_queue(q, 512, &pool).expect("rx queue");
                port.setup_tx_queue(q, 512).expect("tx queue");
            }
            port.start().expect("start");
            tx.push(
                txr.iter()
                    .map(|r| r.consumer().expect("tx ring consumer"))
                    .collect(),
            );
            rx.push(rxr);
            ports.push(port);
        }
        let redirect = (0..N_WORKERS)
            .map(|w| ring(&format!("dp_redirect{w}")))
            .collect();
        Mutex::new(Rig {
            pool,
            ports,
            rx,
            tx,
            redirect,
        })
    });
    // A test that failed while holding the rig has stopped its workers (Workers::drop).
    let mut rig = m.lock().unwrap_or_else(|e| e.into_inner());
    rig.drain_all();
    rig
}

impl Rig {
    /// Frees whatever an earlier (failed) test left in the tx rings.
    fn drain_all(&mut self) {
        let mut b = MbufBurst::new();
        for port in &mut self.tx {
            for c in port.iter_mut() {
                while c.dequeue_burst(&mut b) > 0 {
                    b.clear();
                }
            }
        }
    }

    /// Puts golden frame `name` on `port`'s rx queue `queue`, as a NIC would.
    fn inject(&self, port: usize, queue: usize, name: &str) {
        let m = Mbuf::from_bytes(&self.pool, get(name)).expect("mbuf");
        self.rx[port][queue]
            .enqueue(m)
            .unwrap_or_else(|_| panic!("rx ring of port {port} queue {queue} full"));
    }

    /// Waits for `n` frames (besides gratuitous ARPs, which go to `garps`) transmitted on
    /// `port`; returns them as (tx queue, bytes) in the order each queue sent them.
    fn collect(
        &mut self,
        port: usize,
        n: usize,
        garps: &mut Vec<Vec<u8>>,
    ) -> Vec<(usize, Vec<u8>)> {
        let deadline = Instant::now() + PATIENCE;
        let mut got = Vec::new();
        let mut b = MbufBurst::new();
        while got.len() < n {
            let mut any = false;
            for (q, c) in self.tx[port].iter_mut().enumerate() {
                if c.dequeue_burst(&mut b) == 0 {
                    continue;
                }
                any = true;
                for m in b.drain() {
                    if is_garp(m.data()) {
                        garps.push(m.data().to_vec());
                    } else {
                        got.push((q, m.data().to_vec()));
                    }
                }
            }
            if !any {
                assert!(
                    Instant::now() < deadline,
                    "port {port}: {} of {n} frames after {PATIENCE:?}",
                    got.len()
                );
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        assert_eq!(got.len(), n, "port {port}: more frames than expected");
        got
    }
}

impl Rig {
    /// After the workers stopped: takes what is left on the tx rings, which must be
    /// gratuitous ARPs only (added to `garps`).
    fn drain_garps(&mut self, garps: &mut Vec<Vec<u8>>) {
        let mut b = MbufBurst::new();
        for (port, queues) in self.tx.iter_mut().enumerate() {
            for c in queues.iter_mut() {
                while c.dequeue_burst(&mut b) > 0 {
                    for m in b.drain() {
                        assert!(
                            is_garp(m.data()),
                            "unexpected frame left on port {port}: {}",
                            frames::hex(m.data())
                        );
                        garps.push(m.data().to_vec());
                    }
                }
            }
        }
    }
}

/// A gratuitous ARP (sender address = target address).
fn is_garp(f: &[u8]) -> bool {
    f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[28..32] == f[38..42]
}

/// Running workers; stopped and joined on drop (also when the test panics).
struct Workers {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<Pipeline<Mbuf>>>,
    counters: Vec<Arc<WorkerCounters>>,
    cmds: Vec<Sender<WorkerCmd>>,
    snapshot: Arc<SnapshotCell>,
}

impl Workers {
    fn start(rig: &mut Rig) -> Workers {
        let mut registry = StatsRegistry::new(N_WORKERS);
        let snap = SnapshotBuilder::new(&mut registry, None)
            .build(1, &classic(), Timeouts::default())
            .expect("snapshot");
        let net = net_state();
        let neigh = neighbours(&net).snapshot();
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Shared {
            snapshot: Arc::new(ArcSwap::from_pointee(snap)),
            net: Arc::new(net),
            neigh: Arc::new(ArcSwap::new(neigh)),
            rings: rig.redirect.clone(),
            stop: stop.clone(),
        };
        let mut w = Workers {
            stop,
            handles: Vec::new(),
            counters: Vec::new(),
            cmds: Vec::new(),
            snapshot: shared.snapshot.clone(),
        };
        for i in 0..N_WORKERS {
            let counters = Arc::new(WorkerCounters::new(i as u16));
            let pipeline = Pipeline::new(
                &PipelineConfig::new(i, N_WORKERS, 4096),
                ConnTimeouts::default(),
                counters.clone(),
                rig.pool.clone(),
                None,
            );
            let q = i as u16;
            let rx = rig
                .ports
                .iter_mut()
                .map(|p| p.rx_queue(q).expect("rx queue handle"))
                .collect();
            let tx = rig
                .ports
                .iter_mut()
                .map(|p| p.tx_queue(q).expect("tx queue handle"))
                .collect();
            let ring_in = rig.redirect[i].consumer().expect("redirect consumer");
            let (cmd_tx, cmd_rx) = unbounded();
            let opts = WorkerOptions {
                core: None,
                idle_sleep: Duration::from_micros(50),
                idle_streak: 32,
            };
            let worker = Worker::new(i, pipeline, rx, tx, ring_in, shared.clone(), cmd_rx, opts);
            w.handles.push(worker.spawn().expect("spawn worker"));
            w.counters.push(counters);
            w.cmds.push(cmd_tx);
        }
        w
    }

    /// Stops the workers and returns their pipelines (connection tables).
    fn finish(mut self) -> Vec<Pipeline<Mbuf>> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.handles)
            .into_iter()
            .map(|h| h.join().expect("worker thread"))
            .collect()
    }

    fn dest_stats(&self, id: u32) -> StatTotals {
        self.snapshot.load().dest(id).expect("dest").1.stats.sum()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// The TCP/UDP source port of a golden IPv4 frame without options.
fn sport(name: &str) -> u16 {
    let f = get(name);
    u16::from_be_bytes([f[34], f[35]])
}

fn owner_of_c1(port: u16) -> usize {
    steering::owner(IpAddr::V4(C1), port, N_WORKERS)
}

/// Every VIP was announced once, from worker 0.
fn check_garps(garps: &[Vec<u8>]) {
    let mut want: Vec<&[u8]> = [VIP, VIP_DR, VIP_TUN, VIP_Q, VIP_P, VIP_U]
        .iter()
        .map(|v| get(&format!("garp.{v}")))
        .collect();
    let mut got: Vec<&[u8]> = garps.iter().map(|g| g.as_slice()).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "one gratuitous ARP per VIP");
}

#[test]
fn steering_meets_both_directions_at_the_flow_owner() {
    let mut rig = rig();
    let workers = Workers::start(&mut rig);
    let mut garps = Vec::new();
    // st0 is owned by worker 0, st1 by worker 1 (gen.py chose the client ports so).
    assert_eq!(owner_of_c1(sport("st0.syn.in")), 0);
    assert_eq!(owner_of_c1(sport("st1.syn.in")), 1);

    // SYNs on queue 0, SYN-ACKs on queue 1, ACKs on the queue of the other worker: one flow
    // takes a ring hop for its SYN and ACK, the other for its SYN-ACK.
    for (flow, owner) in [("st0", 0), ("st1", 1)] {
        for (step, port, queue, out_port) in [
            ("syn", 0, 0, 1),
            ("synack", 1, 1, 0),
            ("ack", 0, 1 - owner, 1),
        ] {
            rig.inject(port, queue, &format!("{flow}.{step}.in"));
            let out = rig.collect(out_port, 1, &mut garps);
            assert_eq!(
                out[0].0, owner,
                "{flow}.{step} sent by its owner's tx queue"
            );
            assert_frame(&out[0].1, &format!("{flow}.{step}.out"));
        }
    }
    // Hops: st0's SYN-ACK (1 -> 0) and ACK (1 -> 0); st1's SYN (0 -> 1) and ACK (0 -> 1).
    let c: Vec<_> = workers.counters.iter().map(|c| c.snapshot()).collect();
    assert_eq!((c[0].redirects_sent, c[0].redirects_received), (2, 2));
    assert_eq!((c[1].redirects_sent, c[1].redirects_received), (2, 2));
    assert_eq!((c[0].conns_created, c[1].conns_created), (1, 1));
    let pipes = workers.finish();
    let conns: Vec<Vec<(u16, &str)>> = pipes
        .iter()
        .map(|p| {
            p.conns
                .iter()
                .map(|(_, c)| (c.cport(), c.state_name()))
                .collect()
        })
        .collect();
    assert_eq!(conns[0], vec![(sport("st0.syn.in"), "ESTABLISHED")]);
    assert_eq!(conns[1], vec![(sport("st1.syn.in"), "ESTABLISHED")]);
    rig.drain_garps(&mut garps);
    check_garps(&garps);
}

#[test]
fn nat_exchange_for_many_clients_through_both_workers() {
    let mut rig = rig();
    let workers = Workers::start(&mut rig);
    let mut garps = Vec::new();
    const N: usize = 24;
    // One SYN at a time, so that rr's order is the injection order (RS_A, RS_B, ...).
    for i in 0..N {
        rig.inject(0, i % 2, &format!("many{i}.syn.in"));
        let out = rig.collect(1, 1, &mut garps);
        assert_frame(&out[0].1, &format!("many{i}.syn.out"));
    }
    // Then everything else in bursts, half of it on the "wrong" queue.
    let rounds: [(&[&str], usize, usize); 3] = [
        (&["synack"], 1, 0),
        (&["ack", "req"], 0, 1),
        (&["resp"], 1, 0),
    ];
    for (steps, port, out_port) in rounds {
        let mut want: BTreeMap<Vec<u8>, String> = BTreeMap::new();
        for i in 0..N {
            for step in steps {
                let name = format!("many{i}.{step}");
                rig.inject(port, (i + port) % 2, &format!("{name}.in"));
                want.insert(get(&format!("{name}.out")).to_vec(), name);
            }
        }
        let got = rig.collect(out_port, want.len(), &mut garps);
        for (_, frame) in &got {
            if want.remove(frame).is_none() {
                let near = want.keys().next().map(|k| describe_diff(frame, k));
                panic!("unexpected frame on port {out_port}: {near:?}");
            }
        }
        assert!(
            want.is_empty(),
            "missing: {:?}",
            want.values().collect::<Vec<_>>()
        );
    }
    // Per-destination statistics, summed over the workers.
    let bytes = |first: usize, steps: &[&str]| -> u64 {
        (first..N)
            .step_by(2)
            .flat_map(|i| {
                steps
                    .iter()
                    .map(move |s| get(&format!("many{i}.{s}.in")).len())
            })
            .sum::<usize>() as u64
    };
    for (id, first) in [(D_A, 0), (D_B, 1)] {
        let want = StatTotals {
            conns: 12,
            inpkts: 36,
            outpkts: 24,
            inbytes: bytes(first, &["syn", "ack", "req"]),
            outbytes: bytes(first, &["synack", "resp"]),
        };
        assert_eq!(workers.dest_stats(id), want, "dest {id}");
    }

    // ipvsadm -L -c through the workers' command channel.
    let mut listed = Vec::new();
    for cmd in &workers.cmds {
        let (tx, rx) = crossbeam::channel::bounded(1);
        cmd.send(WorkerCmd::ListConns(tx)).expect("worker alive");
        listed.extend(rx.recv_timeout(PATIENCE).expect("listing"));
    }
    assert_eq!(listed.len(), N);
    assert!(listed
        .iter()
        .all(|c| c.state == "ESTABLISHED" && c.proto == "TCP"));
    let to_a = listed
        .iter()
        .filter(|c| c.dest == (IpAddr::V4(RS_A), 8080))
        .count();
    assert_eq!(to_a, N / 2);

    let c: Vec<_> = workers.counters.iter().map(|c| c.snapshot()).collect();
    let sent: u64 = c.iter().map(|c| c.redirects_sent).sum();
    let received: u64 = c.iter().map(|c| c.redirects_received).sum();
    assert_eq!(sent, received);
    assert!(sent > 0, "some packets crossed workers");
    assert_eq!(c.iter().map(|c| c.conns_created).sum::<u64>(), N as u64);
    assert_eq!(
        c.iter().map(|c| c.rx_packets).sum::<u64>(),
        (N * 5) as u64,
        "every frame received once from a queue: {c:?}"
    );
    assert_eq!(
        c.iter().map(|c| c.tx_packets).sum::<u64>(),
        (N * 5 + 6) as u64,
        "every frame sent once, and one gratuitous ARP per VIP"
    );
    drop(workers.finish());
    rig.drain_garps(&mut garps);
    check_garps(&garps);
}

#[test]
fn udp_flow_through_the_workers() {
    let mut rig = rig();
    let workers = Workers::start(&mut rig);
    let mut garps = Vec::new();
    // Both directions on both queues: wherever a datagram lands, its owner handles it.
    for (step, port, queue, out_port) in [
        ("q", 0, 0, 1),
        ("r", 1, 1, 0),
        ("r", 1, 0, 0),
        ("q2", 0, 1, 1),
    ] {
        rig.inject(port, queue, &format!("udp.{step}.in"));
        let out = rig.collect(out_port, 1, &mut garps);
        assert_frame(&out[0].1, &format!("udp.{step}.out"));
    }
    let s = workers.dest_stats(D_UDP);
    assert_eq!((s.conns, s.inpkts, s.outpkts), (1, 2, 2));
    let pipes = workers.finish();
    assert_eq!(pipes.iter().map(|p| p.conns.len()).sum::<usize>(), 1);
    rig.drain_garps(&mut garps);
    check_garps(&garps);
}

#[test]
fn redirected_packets_keep_their_input_port() {
    // A frame that crosses workers and makes the director answer out of the port it came in
    // on: a too-big DF segment for a tunnel destination (ICMP fragmentation needed).
    let mut rig = rig();
    let workers = Workers::start(&mut rig);
    let mut garps = Vec::new();
    let owner = owner_of_c1(sport("tun.syn.in"));
    let wrong = 1 - owner;
    rig.inject(0, wrong, "tun.syn.in");
    let out = rig.collect(1, 1, &mut garps);
    assert_eq!(out[0].0, owner);
    rig.inject(0, wrong, "tun.big.in");
    let out = rig.collect(0, 1, &mut garps);
    assert_eq!(out[0].0, owner);
    assert_frame(&out[0].1, "tun.big.icmp");
    let c = workers.counters[wrong].snapshot();
    assert_eq!(c.redirects_sent, 2);
    drop(workers.finish());
    rig.drain_garps(&mut garps);
    check_garps(&garps);
}
