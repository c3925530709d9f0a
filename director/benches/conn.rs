//! Connection table speed: lookup hits at 1K / 100K / 1M NAT entries (one at a time and as
//! bursts of 32 with staged loads), insert + remove on a nearly full table, and the table's
//! part of a SYN flood. Keys are visited in a shuffled order so large tables pay their real
//! cache misses. Prints the table's bytes per connection for each size.
//!
//! `cargo bench -p director --bench conn` (criterion reports time per 32 lookups; divide by 32;
//! `syn_flood` reports time per new connection). `-- syn_flood` runs only that group.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use director::dataplane::conn::tcp_flags::SYN;
use director::dataplane::conn::{
    ConnTable, Direction, FlowKey, KeyHash, LoadClass, NewConn, Timeouts,
};
use director::model::{ForwardMethod, Protocol};
use sched::{DestLoad, DestSpec, FlowInfo, SchedParams, Scheduler};

const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];
const BURST: usize = 32;

fn conn(i: usize) -> NewConn<Ipv4Addr> {
    NewConn {
        proto: Protocol::Tcp,
        caddr: Ipv4Addr::from(0x0A00_0000 + (i / 50) as u32),
        cport: 1024 + (i % 50) as u16,
        vaddr: Ipv4Addr::new(203, 0, 113, 1),
        vport: 80,
        daddr: Ipv4Addr::new(192, 0, 2, (i % 200) as u8 + 1),
        dport: 8080,
        fwd: ForwardMethod::Masq,
        dest_id: (i % 200) as u32,
        service_id: 1,
        template: None,
    }
}

fn inbound(c: &NewConn<Ipv4Addr>) -> FlowKey<Ipv4Addr> {
    FlowKey::new(c.proto.number(), c.caddr, c.cport, c.vaddr, c.vport)
}

/// A table of `n` NAT conns (capacity `n`) and its inbound keys in a shuffled order.
fn setup(n: usize) -> (ConnTable, Vec<FlowKey<Ipv4Addr>>) {
    let mut t = ConnTable::with_capacity(n, Timeouts::default());
    for i in 0..n {
        t.insert(conn(i), 0).expect("insert");
    }
    let mut keys: Vec<_> = (0..n).map(|i| inbound(&conn(i))).collect();
    // Fisher-Yates with a fixed xorshift: same order every run.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..keys.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        keys.swap(i, (x % (i as u64 + 1)) as usize);
    }
    println!(
        "conn table n={n}: {} bytes allocated, {} B/conn",
        t.memory_bytes(),
        t.memory_bytes() / n
    );
    (t, keys)
}

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("conn_lookup_hit");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .throughput(Throughput::Elements(BURST as u64));
    for n in SIZES {
        let (t, keys) = setup(n);
        let queries: Vec<_> = keys.iter().map(|k| (Direction::Input, *k)).collect();
        let mut pos = 0usize;
        g.bench_function(BenchmarkId::new("single_x32", n), |b| {
            b.iter(|| {
                if pos + BURST > keys.len() {
                    pos = 0;
                }
                for k in &keys[pos..pos + BURST] {
                    black_box(t.lookup_in(k));
                }
                pos += BURST;
            })
        });
        let mut out = [None; BURST];
        let mut pos = 0usize;
        g.bench_function(BenchmarkId::new("burst32", n), |b| {
            b.iter(|| {
                if pos + BURST > queries.len() {
                    pos = 0;
                }
                t.lookup_burst(&queries[pos..pos + BURST], &mut out);
                black_box(&out);
                pos += BURST;
            })
        });
    }
    g.finish();
}

fn insert_remove(c: &mut Criterion) {
    let mut g = c.benchmark_group("conn_insert_remove");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .throughput(Throughput::Elements(1));
    for n in SIZES {
        // n - 1 entries: one free slot to insert into and free again.
        let (mut t, _) = setup(n);
        t.remove(t.lookup_in(&inbound(&conn(0))).unwrap()).unwrap();
        let mut i = n;
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let idx = t.insert(conn(i), 0).expect("free slot");
                black_box(t.remove(idx));
                i = if i > 2 * n { n } else { i + 1 };
            })
        });
    }
    g.finish();
}

/// Unique SYNs into an empty table as a worker handles them, without the packet work: a
/// burst of 32 keys hashed and their index slots prefetched, then per key the lookup miss,
/// a wlc pick over 4 real servers, `insert_first` (NAT: both keys) and the bind. The table
/// holds all of them (2 M, as the bench's syn scenario), so every reply key slot is a
/// cache miss (hidden by parking the key, see `conn/pending.rs`). Time per 2 M connections:
/// divide by 2 M (about 90 ns each on the 2-core AMD VM; 200 ns before `insert_first`).
fn syn_flood(c: &mut Criterion) {
    const N: usize = 2_000_000;
    let mut g = c.benchmark_group("syn_flood");
    g.warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(12))
        .sample_size(10)
        .throughput(Throughput::Elements(N as u64));
    let specs: Vec<DestSpec> = (0..4u8)
        .map(|i| DestSpec {
            addr: std::net::IpAddr::from([192, 0, 2, 10 + i]),
            port: 8080,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        })
        .collect();
    let loads: Vec<Arc<DestLoad>> = specs.iter().map(|_| Arc::new(DestLoad::new())).collect();
    let params = SchedParams {
        name: "wlc".into(),
        ..SchedParams::default()
    };
    let wlc = sched::build(&params, &specs, &loads, None).expect("wlc");
    let mut t = ConnTable::with_capacity(N, Timeouts::default());
    let vip = Ipv4Addr::new(203, 0, 113, 1);
    let keys: Vec<FlowKey<Ipv4Addr>> = (0..N as u32)
        .map(|i| {
            FlowKey::new(
                6,
                Ipv4Addr::from(0x0A00_0001 + i / 50_000),
                10_000 + (i % 50_000) as u16,
                vip,
                80,
            )
        })
        .collect();
    g.bench_function(BenchmarkId::new("nat_wlc4", N), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                t.clear(|_, c| unbind(&loads[c.dest_id() as usize], c.load_class()));
                let start = Instant::now();
                flood(&mut t, &keys, &*wlc, &specs, &loads);
                spent += start.elapsed();
                assert_eq!(t.len(), N);
            }
            spent
        })
    });
    g.finish();
}

fn unbind(load: &DestLoad, class: LoadClass) {
    match class {
        LoadClass::Active => load.unbind(true),
        LoadClass::Inactive => load.unbind(false),
        LoadClass::Persistent => load.unbind_template(),
    }
}

/// The worker's SYN path over `keys`, staged in bursts of [`BURST`].
#[inline(never)]
fn flood(
    t: &mut ConnTable,
    keys: &[FlowKey<Ipv4Addr>],
    wlc: &dyn Scheduler,
    specs: &[DestSpec],
    loads: &[Arc<DestLoad>],
) {
    let Some(first) = keys.first() else {
        return;
    };
    let mut hashes: [KeyHash; BURST] = [t.hash_in(first); BURST];
    for burst in keys.chunks(BURST) {
        for (h, k) in hashes.iter_mut().zip(burst) {
            *h = t.hash_in(k);
            t.prefetch_index(*h);
        }
        for (h, k) in hashes.iter().zip(burst) {
            if t.lookup_in_hashed(k, *h).is_some() {
                continue;
            }
            let flow = FlowInfo {
                saddr: k.saddr.into(),
                sport: k.sport,
                daddr: k.daddr.into(),
                dport: k.dport,
            };
            let Some(d) = wlc.schedule(&flow) else {
                continue;
            };
            let std::net::IpAddr::V4(daddr) = specs[d].addr else {
                continue;
            };
            let new = NewConn {
                proto: Protocol::Tcp,
                caddr: k.saddr,
                cport: k.sport,
                vaddr: k.daddr,
                vport: k.dport,
                daddr,
                dport: specs[d].port,
                fwd: ForwardMethod::Masq,
                dest_id: d as u32,
                service_id: 0,
                template: None,
            };
            if let Ok((_, class)) = t.insert_first(new, SYN, 1) {
                loads[d].bind(class == LoadClass::Active);
            }
        }
    }
}

criterion_group!(benches, lookups, insert_remove, syn_flood);
criterion_main!(benches);
