//! The machine's random-access memory figures that decide what a big connection table
//! costs: the latency of one cache line read at a random place in a region of MB megabytes,
//! and how many lines a core gets per nanosecond when CHAINS such reads are in flight at once.
//! The region is allocated like the connection table (`dpdk::mem::HugeArray`, transparent
//! huge pages) and walked as CHAINS independent pointer chases through one random cycle of
//! its cache lines, so every read waits for the one before it in its chain and nothing is
//! prefetched.
//!
//! `cargo run --release -p bench --example memory_latency -- MB [CHAINS] [STEPS]`, e.g.
//! `-- 1024` (one chain: the latency) or `-- 1024 16` (16 chains: ns per line is the
//! throughput a core gets from that many misses in flight). A connection lookup at 10 M
//! connections reads two such lines from about 1 GB, so `-- 1024 16`'s ns per line, twice,
//! is about the least that 10 M adds to a packet however well the lookups overlap.

use std::time::Instant;

use bench::flows::shuffled;
use director::dpdk::mem::HugeArray;

/// One cache line: the index of the next line of its chain, and padding.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Line {
    next: u64,
    _pad: [u64; 7],
}

fn main() -> Result<(), String> {
    let usage = "usage: memory_latency MB [CHAINS] [STEPS]";
    let arg = |i: usize, default: u64| -> Result<u64, String> {
        match std::env::args().nth(i) {
            None => Ok(default),
            Some(s) => s.parse().map_err(|e| format!("{usage}: {s:?}: {e}")),
        }
    };
    let mb = arg(1, 1024)?;
    let chains = arg(2, 1)?;
    let steps = arg(3, 20_000_000)?;
    if mb == 0 || chains == 0 || chains > 256 {
        return Err(format!("{usage} (MB >= 1, 1 <= CHAINS <= 256)"));
    }
    let n = (mb << 20) / 64;
    if chains > n {
        return Err(format!("{usage}: more chains than lines"));
    }
    if n > u64::from(u32::MAX) {
        return Err(format!(
            "{usage}: at most {} MB",
            (u64::from(u32::MAX) * 64) >> 20
        ));
    }
    let mut lines = HugeArray::new(
        n as usize,
        Line {
            next: 0,
            _pad: [0; 7],
        },
    );
    // One random cycle through every line: each line of a shuffled visiting order names the
    // next, the last the first.
    let order = shuffled(n as u32, 0x9e37_79b9_7f4a_7c15);
    for w in 0..n as usize {
        let to = order[(w + 1) % n as usize];
        lines[order[w] as usize].next = u64::from(to);
    }
    // The chains start evenly spaced along the cycle, so they never meet within the run.
    let mut at: Vec<u64> = (0..chains)
        .map(|c| u64::from(order[(c * (n / chains)) as usize]))
        .collect();
    let rounds = (steps / chains).max(1);
    let t = Instant::now();
    for _ in 0..rounds {
        for a in at.iter_mut() {
            *a = lines[*a as usize].next;
        }
    }
    let ns = t.elapsed().as_nanos() as f64;
    let sum = at.iter().fold(0u64, |s, a| s.wrapping_add(*a));
    println!(
        "{mb} MB, {chains} chain(s): {:.1} ns per step of all chains, {:.2} ns per line \
         (huge pages: {}; end {})",
        ns / rounds as f64,
        ns / (rounds * chains) as f64,
        lines.is_huge(),
        sum % 10
    );
    Ok(())
}
