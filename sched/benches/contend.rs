//! Wall-clock cost of the new-connection path when several workers share one service, as the
//! director's workers do: each thread picks, binds inactive, activates (the SYN's state
//! change) and unbinds its connection from 1000 connections earlier. Prints ns per connection
//! per thread and the total rate. Meant for a quiet machine (criterion's pick bench covers the
//! single-thread case):
//!
//! Each thread claims its own writer slot and starts a load epoch every 32 connections, as the
//! director's workers do per burst, unless the fifth argument is `shared` (then every thread
//! updates share 0 atomically and reads every share at each pick: the one-word layout).
//!
//! `cargo bench -p sched --bench contend -- wlc 4 2 2000000` (scheduler, destinations, threads,
//! connections per thread; defaults wlc 4 1 2000000).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Barrier;
use std::time::Instant;

use sched::{build, claim_writer_slot, new_loads_with_writers, DestSpec, FlowInfo, SchedParams};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let name = args.first().map_or("wlc", String::as_str);
    let arg = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (n, threads, conns) = (arg(1, 4), arg(2, 1), arg(3, 2_000_000));
    let specs: Vec<DestSpec> = (0..n)
        .map(|i| DestSpec {
            addr: IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i as u32)),
            port: 80,
            weight: 1 + (i as u32 % 4),
            u_threshold: 0,
            l_threshold: 0,
        })
        .collect();
    let shared = args.get(4).map(String::as_str) == Some("shared");
    let loads = new_loads_with_writers(n, if shared { 0 } else { threads });
    let params = SchedParams {
        name: name.into(),
        ..Default::default()
    };
    let s = build(&params, &specs, &loads, None).expect("build");
    let barrier = Barrier::new(threads);
    let per_thread: Vec<f64> = std::thread::scope(|sc| {
        let workers: Vec<_> = (0..threads as u32)
            .map(|t| {
                let (s, loads, barrier) = (&s, &loads, &barrier);
                sc.spawn(move || {
                    if !shared {
                        claim_writer_slot(t as usize);
                    }
                    let mut live = VecDeque::with_capacity(1001);
                    barrier.wait();
                    let start = Instant::now();
                    for k in 0..conns as u32 {
                        let flow = FlowInfo {
                            saddr: IpAddr::V4(Ipv4Addr::from(t << 24 | k)),
                            sport: k as u16,
                            daddr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
                            dport: 80,
                        };
                        // A new epoch per 32 connections, as the pipeline per burst.
                        if !shared && k % 32 == 0 {
                            sched::new_epoch();
                        }
                        let Some(d) = s.schedule(&flow) else {
                            continue;
                        };
                        loads[d].bind(false);
                        loads[d].set_active(false, true);
                        live.push_back(d);
                        if live.len() > 1000 {
                            let old = live.pop_front().expect("non-empty");
                            loads[old].unbind(true);
                        }
                    }
                    start.elapsed().as_nanos() as f64 / conns as f64
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let worst = per_thread.iter().copied().fold(0.0, f64::max);
    println!(
        "{name} n={n} threads={threads}{}: ns/conn per thread {:?}, total {:.2} M conn/s",
        if shared { " (shared word)" } else { "" },
        per_thread
            .iter()
            .map(|v| (v * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        threads as f64 * 1e3 / worst
    );
}
