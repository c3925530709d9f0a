//! Packet-layer cost per packet: parse, parse + VS/NAT rewrite, VS/DR, IPIP encapsulation.
//! `cargo bench -p director --bench wire` (wall time, criterion).
//!
//! Instruction counts (deterministic, the figure of merit on a noisy machine): with
//! `WIRE_IR_LOOPS=N` set the binary instead calls each operation N times through an
//! `#[inline(never)]` `ir_*` wrapper and exits; callgrind collecting only inside one wrapper
//! gives its cost, total / N per packet (IPv4/TCP, 64 bytes of payload):
//! ```text
//! cargo bench -p director --bench wire --no-run   # prints the binary's path
//! WIRE_IR_LOOPS=100000 valgrind --tool=callgrind --toggle-collect='wire::ir_dnat' \
//!     --callgrind-out-file=/tmp/dnat.cg <binary>
//! callgrind_annotate /tmp/dnat.cg | grep 'PROGRAM TOTALS'   # / 100000
//! ```
//! (`ir_parse`, `ir_dnat`, `ir_snat`, `ir_dr`, `ir_tun`.)

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use director::wire::{checksum, dr, ipv4, nat, parse_frame, tun, DropReason, MacAddr, PacketMeta};

const CLIENT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const RS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// Ethernet + IPv4 + TCP (ACK) + `payload` bytes, all checksums valid.
fn tcp_frame(payload: usize) -> Vec<u8> {
    let l4_len = 20 + payload;
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
    f.resize(14 + 20 + l4_len, 0);
    ipv4::Repr {
        src: CLIENT,
        dst: VIP,
        protocol: ipv4::proto::TCP,
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: true,
        payload_len: l4_len as u16,
    }
    .emit(&mut f[14..34])
    .expect("header fits");
    let tcp = &mut f[34..];
    tcp[..4].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
    tcp[12] = 0x50;
    tcp[13] = 0x10;
    for (i, b) in tcp[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let partial = checksum::pseudo_header_v4(CLIENT, VIP, 6, l4_len as u16) + checksum::sum(tcp);
    let check = checksum::finish(partial);
    tcp[16..18].copy_from_slice(&check.to_be_bytes());
    f
}

fn bench(c: &mut Criterion) {
    let frame = tcp_frame(64);
    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_tcp", |b| {
        b.iter(|| parse_frame(black_box(&frame)).expect("valid"))
    });
    group.bench_function("parse_dnat_tcp", |b| {
        b.iter_batched_ref(
            || frame.clone(),
            |f| {
                let meta = parse_frame(f).expect("valid");
                nat::dnat(f, &meta, IpAddr::V4(RS), 8080).expect("nat");
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("parse_snat_tcp", |b| {
        b.iter_batched_ref(
            || frame.clone(),
            |f| {
                let meta = parse_frame(f).expect("valid");
                nat::snat(f, &meta, IpAddr::V4(VIP), 80).expect("nat");
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("parse_dr", |b| {
        b.iter_batched_ref(
            || frame.clone(),
            |f| {
                let meta = parse_frame(f).expect("valid");
                dr::forward(f, &meta, MacAddr([2; 6]), MacAddr([4; 6])).expect("dr");
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("parse_tun_encap", |b| {
        let mut tunneled = vec![0u8; tun::OUTER_HEADER_LEN];
        tunneled.extend_from_slice(&frame);
        b.iter_batched_ref(
            || tunneled.clone(),
            |f| {
                let meta = parse_frame(&f[tun::OUTER_HEADER_LEN..]).expect("valid");
                tun::encap(f, &meta, RS, RS, 1).expect("encap");
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    let big = vec![0xa5u8; 1480];
    c.bench_function("checksum_1480_bytes", |b| {
        b.iter(|| checksum::checksum(black_box(&big)))
    });
}

#[inline(never)]
fn ir_parse(frame: &[u8]) -> Result<PacketMeta, DropReason> {
    parse_frame(frame)
}

#[inline(never)]
fn ir_dnat(frame: &mut [u8], meta: &PacketMeta) -> Result<(), DropReason> {
    nat::dnat(frame, meta, IpAddr::V4(RS), 8080)
}

#[inline(never)]
fn ir_snat(frame: &mut [u8], meta: &PacketMeta) -> Result<(), DropReason> {
    nat::snat(frame, meta, IpAddr::V4(VIP), 80)
}

#[inline(never)]
fn ir_dr(frame: &mut [u8], meta: &PacketMeta) -> Result<(), DropReason> {
    dr::forward(frame, meta, MacAddr([2; 6]), MacAddr([4; 6]))
}

#[inline(never)]
fn ir_tun(frame: &mut [u8], meta: &PacketMeta) -> Result<(), DropReason> {
    tun::encap(frame, meta, VIP, RS, 1)
}

/// `loops` calls of each `ir_*` wrapper (frames restored outside the wrappers).
fn ir_loops(loops: u32) {
    let frame = tcp_frame(64);
    let mut f = frame.clone();
    let meta = parse_frame(&frame).expect("valid");
    for _ in 0..loops {
        black_box(ir_parse(black_box(&frame))).expect("valid");
    }
    type Transform = fn(&mut [u8], &PacketMeta) -> Result<(), DropReason>;
    for transform in [ir_dnat as Transform, ir_snat, ir_dr] {
        for _ in 0..loops {
            f.copy_from_slice(&frame);
            transform(black_box(&mut f), black_box(&meta)).expect("transform");
        }
    }
    let mut tunneled = vec![0u8; tun::OUTER_HEADER_LEN];
    tunneled.extend_from_slice(&frame);
    let mut t = tunneled.clone();
    for _ in 0..loops {
        t.copy_from_slice(&tunneled);
        ir_tun(black_box(&mut t), black_box(&meta)).expect("encap");
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(loops) = std::env::var("WIRE_IR_LOOPS") {
        ir_loops(loops.parse().expect("WIRE_IR_LOOPS: a number"));
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
