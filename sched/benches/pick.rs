//! Per-pick cost of every scheduler at 10/100/1000 destinations, the least-connection tree's
//! bind+unbind cost, and mh table rebuild at 1000 destinations.
//!
//! Run briefly on a shared machine:
//! `cargo bench -p sched --bench pick -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sched::{build, new_loads, DestLoad, DestSpec, FlowInfo, SchedParams, SCHEDULER_NAMES};

fn specs(n: usize) -> Vec<DestSpec> {
    (0..n)
        .map(|i| DestSpec {
            addr: IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i as u32)),
            port: 80,
            weight: 1 + (i as u32 % 4),
            u_threshold: 0,
            l_threshold: 0,
        })
        .collect()
}

fn flows() -> Vec<FlowInfo> {
    (0..1024u32)
        .map(|k| FlowInfo {
            saddr: IpAddr::V4(Ipv4Addr::from(0xC633_6400 ^ k.wrapping_mul(2654435761))),
            sport: 1024 + k as u16,
            daddr: IpAddr::V4(Ipv4Addr::from(0xCB00_7100 + (k % 64))),
            dport: 80,
        })
        .collect()
}

/// Some spread of load so least-connection choices are not trivial.
fn preload(loads: &[Arc<DestLoad>]) {
    for (i, l) in loads.iter().enumerate() {
        for _ in 0..(i * 7919) % 13 {
            l.bind(i % 3 == 0);
        }
    }
}

fn pick(c: &mut Criterion) {
    let flows = flows();
    // Harness cost alone (flow fetch + black_box), to subtract from the figures below.
    let mut k = 0usize;
    c.bench_function("pick/baseline", |b| {
        b.iter(|| {
            k = (k + 1) & 1023;
            black_box(black_box(&flows[k]).sport)
        })
    });
    for name in SCHEDULER_NAMES {
        let mut g = c.benchmark_group(format!("pick/{name}"));
        for n in [10usize, 100, 1000] {
            let (d, loads) = (specs(n), new_loads(n));
            preload(&loads);
            let p = SchedParams {
                name: (*name).into(),
                ..Default::default()
            };
            let s = build(&p, &d, &loads, None).expect("build");
            let mut k = 0usize;
            g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
                b.iter(|| {
                    k = (k + 1) & 1023;
                    black_box(s.schedule(black_box(&flows[k])))
                })
            });
        }
        g.finish();
    }
}

fn bind_unbind(c: &mut Criterion) {
    let mut g = c.benchmark_group("wlc_pick_bind_unbind");
    let flow = flows()[0];
    for n in [10usize, 100, 1000] {
        let (d, loads) = (specs(n), new_loads(n));
        preload(&loads);
        let p = SchedParams {
            name: "wlc".into(),
            ..Default::default()
        };
        let s = build(&p, &d, &loads, None).expect("build");
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let i = s.schedule(&flow).expect("dest");
                loads[i].bind(false);
                loads[i].unbind(false);
            })
        });
    }
    g.finish();
}

fn mh_rebuild(c: &mut Criterion) {
    let (d, loads) = (specs(1000), new_loads(1000));
    let p = SchedParams {
        name: "mh".into(),
        ..Default::default()
    };
    c.bench_function("mh_rebuild/1000", |b| {
        b.iter(|| black_box(build(&p, &d, &loads, None).expect("build")))
    });
}

criterion_group!(benches, pick, bind_unbind, mh_rebuild);
criterion_main!(benches);
