//! Connection table speed: lookup hits at 1K / 100K / 1M NAT entries (one at a time and as
//! bursts of 32 with staged loads), and insert + remove on a nearly full table. Keys are
//! visited in a shuffled order so large tables pay their real cache misses. Prints the
//! table's bytes per connection for each size.
//!
//! `cargo bench -p director --bench conn` (criterion reports time per 32 lookups; divide by 32).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use director::dataplane::conn::{ConnTable, Direction, FlowKey, NewConn, Timeouts};
use director::model::{ForwardMethod, Protocol};

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

criterion_group!(benches, lookups, insert_remove);
criterion_main!(benches);
