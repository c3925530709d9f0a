//! Two workers' pipelines take SYNs at the same time on two threads, each writing its own
//! share of the destinations' loads (`Pipeline::claim_load_slot`, bursts as load epochs):
//! afterwards the loads, read from another thread, count exactly the connections the two
//! tables hold on each real server, each worker's in its own share.

use std::sync::Arc;

use bench::flows::{client, worker_of};
use bench::frame::{Segment, Template};
use bench::topo::{self, Method};
use director::dataplane::conn::Timeouts;
use director::dataplane::packet::VecPacket;
use director::dataplane::pipeline::{Action, Ctx, Pipeline, PipelineConfig, STAGE};
use director::metrics::WorkerCounters;

#[test]
fn loads_count_both_workers_connections_exactly() {
    const WORKERS: usize = 2;
    const PER: usize = 100_000;
    let snap = topo::snapshot(WORKERS).unwrap();
    let net = topo::net_state().unwrap();
    let neigh = topo::neighbours(&net).unwrap();
    let syn = Template::new(Method::Nat.vip(), 64, Segment::Syn).unwrap();
    let pipes: Vec<Pipeline<VecPacket>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (snap, net, neigh, syn) = (&snap, &net, &neigh, &syn);
                s.spawn(move || {
                    let ctx = Ctx {
                        snap,
                        net,
                        neigh,
                        now_s: 1,
                        now_ns: 1_000_000_000,
                    };
                    let mut pipe: Pipeline<VecPacket> = Pipeline::new(
                        &PipelineConfig::new(w, WORKERS, PER),
                        Timeouts::default(),
                        Arc::new(WorkerCounters::new(w as u16)),
                        (),
                        None,
                    );
                    pipe.claim_load_slot();
                    let frames: Vec<VecPacket> = (0u64..)
                        .filter(|&f| worker_of(f, WORKERS) == w)
                        .take(PER)
                        .map(|f| {
                            let (a, p) = client(f);
                            VecPacket::from_frame(&syn.frame(a, p))
                        })
                        .collect();
                    let mut frames = frames.into_iter();
                    let mut sent = 0;
                    while sent < PER {
                        let n = (PER - sent).min(STAGE);
                        pipe.process_burst(
                            frames.by_ref().take(n).map(|f| (f, 0)),
                            &ctx,
                            false,
                            |a, _| assert!(matches!(a, Action::Tx(1, _)), "worker {w}"),
                        );
                        sent += n;
                    }
                    pipe.release_load_slot();
                    pipe
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let nat = &snap.services[0];
    let mut total = 0;
    for d in &nat.dests {
        let by_worker: Vec<u32> = pipes
            .iter()
            .map(|p| {
                p.conns
                    .iter()
                    .filter(|(_, c)| std::net::IpAddr::V4(c.daddr()) == d.config.addr)
                    .count() as u32
            })
            .collect();
        let held: u32 = by_worker.iter().sum();
        // Share 0 (no worker) counted nothing; worker w's connections are in share 1 + w.
        let shares = d.load.share_counts();
        assert_eq!(shares.len(), 1 + WORKERS);
        assert_eq!(shares[0], (0, 0));
        for (w, &n) in by_worker.iter().enumerate() {
            assert_eq!(shares[1 + w], (n, 0), "{:?}, worker {w}", d.config.addr);
        }
        assert!(held > 0, "{:?}: no connection", d.config.addr);
        // A SYN's connection is in SYN_RECV, an active state (the kernel's tcp_state_active).
        assert_eq!(d.load.counts(), (held, 0), "{:?}", d.config.addr);
        total += held;
    }
    assert_eq!(total as usize, WORKERS * PER);
}
