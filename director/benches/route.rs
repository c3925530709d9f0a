//! Route and neighbour lookup cost over realistic small tables: LPM over 16 and 4000 routes
//! (prefixes /8../32 under 10/8 plus connected nets and a default route), and the neighbour
//! snapshot with 1000 entries. Criterion reports time per 1024 lookups (divide by 1024).
//!
//! `cargo bench -p director --bench route`
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use director::dataplane::neigh::{NeighConfig, NeighEvent, NeighManager};
use director::dataplane::route::{RouteTable, RouteTableBuilder};

/// Two connected nets, a default route and `n` static routes of mixed lengths (/8../32).
fn table(n: u32) -> RouteTable {
    let mut b = RouteTableBuilder::new()
        .connected(0, Ipv4Addr::new(192, 0, 2, 1), 24, 1500)
        .connected(1, Ipv4Addr::new(198, 51, 100, 254), 24, 1500)
        .default_gateway(Ipv4Addr::new(192, 0, 2, 254));
    let mut x: u32 = 0x1234_5678;
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n as usize {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let len = 8 + (x % 25) as u8;
        let p = (0x0a00_0000 | (x >> 8)) & (u32::MAX << (32 - len));
        if seen.insert((p, len)) {
            b = b.route(
                Ipv4Addr::from(p),
                len,
                Ipv4Addr::new(198, 51, 100, 1 + (x % 200) as u8),
            );
        }
    }
    b.build().unwrap()
}

fn dsts(n: usize) -> Vec<Ipv4Addr> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            // Half inside 10/8 (where the long prefixes are), half anywhere.
            Ipv4Addr::from(if i % 2 == 0 {
                0x0a00_0000 | (x >> 8)
            } else {
                x
            })
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let ds = dsts(1024);
    let mut g = c.benchmark_group("route_lookup");
    g.throughput(Throughput::Elements(ds.len() as u64));
    for n in [16u32, 4000] {
        let t = table(n);
        g.bench_function(format!("{n}_routes_x1024"), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for &d in &ds {
                    if let Some(r) = t.lookup(black_box(d)) {
                        acc = acc.wrapping_add(u32::from(r.next_hop));
                    }
                }
                acc
            })
        });
    }
    g.finish();

    let routes = Arc::new(
        RouteTableBuilder::new()
            .connected(1, Ipv4Addr::new(10, 1, 0, 1), 16, 1500)
            .build()
            .unwrap(),
    );
    let mut m = NeighManager::new(NeighConfig::default(), routes);
    for i in 2..1002u32 {
        m.apply(
            NeighEvent::Learned {
                port: 1,
                ip: Ipv4Addr::from(0x0a01_0000 + i),
                mac: [2, 0, 0, 0, (i >> 8) as u8, i as u8],
            },
            0,
        );
    }
    let nt = m.snapshot();
    let ips: Vec<Ipv4Addr> = (0..1024u32)
        .map(|i| Ipv4Addr::from(0x0a01_0000 + 2 + (i * 7) % 1100))
        .collect();
    let mut g = c.benchmark_group("neigh_lookup");
    g.throughput(Throughput::Elements(ips.len() as u64));
    g.bench_function("1000_entries_x1024", |b| {
        b.iter(|| {
            let mut acc = 0u8;
            for &ip in &ips {
                if let Some(mac) = nt.lookup(1, black_box(ip)) {
                    acc = acc.wrapping_add(mac[5]);
                }
            }
            acc
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
