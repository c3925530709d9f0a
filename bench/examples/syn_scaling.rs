//! New connections per second per thread when 1 or more workers' pipelines take SYNs at the
//! same time (their own flows, one shared snapshot: the per-destination loads are what they
//! share), without DPDK or a generator: each thread runs `Pipeline::process_burst` on bursts
//! of frames built beforehand. Compare `1` with `2` threads on a machine with 2 free cores.
//!
//! `cargo run --release -p bench --example syn_scaling -- THREADS [CONNS_PER_THREAD] [shared]`

use std::sync::{Arc, Barrier};
use std::time::Instant;

use bench::flows::{client, worker_of};
use bench::frame::{Segment, Template};
use bench::topo::{self, Method};
use director::dataplane::conn::Timeouts;
use director::dataplane::packet::VecPacket;
use director::dataplane::pipeline::{Action, Ctx, Pipeline, PipelineConfig, STAGE};
use director::metrics::WorkerCounters;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args
        .first()
        .map_or(Ok(1), |s| s.parse())
        .map_err(|e| format!("THREADS: {e}"))?;
    let per: usize = args
        .get(1)
        .map_or(Ok(500_000), |s| s.parse())
        .map_err(|e| format!("CONNS: {e}"))?;
    // `shared`: the threads update the loads' share 0 atomically (one word, as the kernel).
    let shared = args.get(2).map(String::as_str) == Some("shared");
    let snap = topo::snapshot(threads)?;
    let net = topo::net_state()?;
    let neigh = topo::neighbours(&net)?;
    let syn = Template::new(Method::Nat.vip(), 64, Segment::Syn)?;
    let barrier = Barrier::new(threads);
    let ns: Vec<Result<f64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                let (snap, net, neigh, barrier, syn) = (&snap, &net, &neigh, &barrier, &syn);
                s.spawn(move || {
                    // The thread's frames (built here: freed by this thread's allocator
                    // arena), the first `per` flows that steer to it.
                    let frames: Vec<VecPacket> = (0u64..)
                        .filter(|&f| worker_of(f, threads) == w)
                        .take(per)
                        .map(|f| {
                            let (a, p) = client(f);
                            VecPacket::from_frame(&syn.frame(a, p))
                        })
                        .collect();
                    let ctx = Ctx {
                        snap,
                        net,
                        neigh,
                        now_s: 1,
                        now_ns: 1_000_000_000,
                    };
                    let counters = Arc::new(WorkerCounters::new(w as u16));
                    let cfg = PipelineConfig::new(w, threads, per);
                    let mut pipe: Pipeline<VecPacket> =
                        Pipeline::new(&cfg, Timeouts::default(), counters, (), None);
                    if !shared {
                        pipe.claim_load_slot();
                    }
                    barrier.wait();
                    let t = Instant::now();
                    let mut sent = 0usize;
                    let mut frames = frames.into_iter();
                    while sent < per {
                        let n = (per - sent).min(STAGE);
                        let mut ok = 0;
                        pipe.process_burst(
                            frames.by_ref().take(n).map(|f| (f, 0)),
                            &ctx,
                            false,
                            |a, _| {
                                ok += usize::from(matches!(a, Action::Tx(..)));
                            },
                        );
                        if ok != n {
                            return Err(format!("thread {w}: {} SYNs not forwarded", n - ok));
                        }
                        sent += n;
                    }
                    Ok(t.elapsed().as_nanos() as f64 / per as f64)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let ns = ns.into_iter().collect::<Result<Vec<f64>, String>>()?;
    let worst = ns.iter().copied().fold(0.0, f64::max);
    println!(
        "threads {threads}: ns per SYN per thread {:?}, total {:.2} M conn/s",
        ns.iter()
            .map(|v| (v * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        threads as f64 * 1e3 / worst
    );
    Ok(())
}
