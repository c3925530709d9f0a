//! What the memory system alone costs a connection lookup at a given table size: per item,
//! an 8-byte index slot read from a table of 2 x N slots, naming one of N 64-byte entries,
//! which is then read and written, both prefetched ahead. Allocated like the connection
//! table (`dpdk::mem::HugeArray`, transparent huge pages). Nothing else happens per item
//! (unless WORK asks for it), so the time per item is the floor that the table's two random
//! cache lines (and their TLB misses) set, to compare with `pipeline_cost` at the same size.
//!
//! `cargo run --release -p bench --example memory_floor -- N [ITEMS] [LAYOUT] [SCHEDULE] [WORK]`,
//! e.g. `-- 10000000`, or `-- 10000000 20000000 two-line burst 10`:
//!
//! - LAYOUT `two-line` (default): the index slot, then the entry it names. `one-line`: only
//!   the entry, found straight from the item's hash (a table whose lookup touches one line).
//! - SCHEDULE `stream` (default): one unbroken stream of items, the slot `SLOT_AHEAD` items
//!   ahead, the entry `ENTRY_AHEAD` items ahead. `burst`: what `Pipeline::process_burst` does
//!   with each 32-item burst it is handed: every slot prefetched at the burst's start, then
//!   the entries `ENTRY_AHEAD` items ahead within the burst, so the first items of each
//!   burst wait for their lines. `across`: bursts of 32, the slots prefetched two bursts
//!   ahead and the entries one burst ahead (a schedule that holds frames across bursts).
//! - WORK: rounds of a dependent multiply-xor chain per item, standing in for the
//!   pipeline's own work (10 rounds take about as long as a NAT packet's 1 K cost, ~36 ns,
//!   on the 2-vCPU AMD VM). Without work, the figure is the memory system's throughput.

use std::time::Instant;

use director::dpdk::mem::{prefetch, HugeArray};

/// How far ahead the index slot is prefetched (pass 1 classifies a 32-frame burst first).
const SLOT_AHEAD: u64 = 32;
/// How far ahead the entry is prefetched (`pipeline::ENTRY_AHEAD`).
const ENTRY_AHEAD: u64 = 12;
/// Items per burst (`pipeline::STAGE`).
const BURST: u64 = 32;

/// A 64-byte entry, as a connection is.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Entry([u8; 64]);

/// splitmix64's finaliser: the item's random slot.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `rounds` of `mix`, each depending on the last: work the core cannot skip.
#[inline(never)]
fn work(seed: u64, rounds: u32) -> u64 {
    (0..rounds).fold(seed, |x, _| mix(x))
}

#[derive(Clone, Copy, PartialEq)]
enum Schedule {
    Stream,
    Burst,
    Across,
}

/// The table and what one item does with it.
struct Floor {
    index: HugeArray<u64>,
    entries: HugeArray<Entry>,
    slots: u64,
    n: u64,
    one_line: bool,
    rounds: u32,
    sum: u64,
}

impl Floor {
    fn slot_of(&self, i: u64) -> usize {
        (mix(i) % self.slots) as usize
    }

    /// Where item `i`'s entry is: named by its slot, or (one line) by its hash.
    fn entry_of(&self, i: u64) -> usize {
        if self.one_line {
            (mix(i) % self.n) as usize
        } else {
            self.index[self.slot_of(i)] as usize
        }
    }

    /// Stage 1: the first line of item `i` (its slot, or its entry for one line).
    fn first(&self, i: u64) {
        if self.one_line {
            prefetch(&self.entries[self.entry_of(i)]);
        } else {
            prefetch(&self.index[self.slot_of(i)]);
        }
    }

    /// Stage 2: the entry its slot names (nothing more for one line).
    fn second(&self, i: u64) {
        if !self.one_line {
            prefetch(&self.entries[self.entry_of(i)]);
        }
    }

    /// The item itself: its entry read and written, then the work.
    fn act(&mut self, i: u64) {
        let at = self.entry_of(i);
        let e = &mut self.entries[at];
        self.sum = self.sum.wrapping_add(u64::from(e.0[0]));
        e.0[28] = e.0[28].wrapping_add(1);
        if self.rounds > 0 {
            self.sum = self.sum.wrapping_add(work(self.sum, self.rounds));
        }
    }

    fn run(&mut self, schedule: Schedule, items: u64) {
        match schedule {
            Schedule::Stream => {
                for i in 0..items {
                    self.first(i + SLOT_AHEAD);
                    self.second(i + ENTRY_AHEAD);
                    self.act(i);
                }
            }
            Schedule::Burst => {
                for base in (0..items).step_by(BURST as usize) {
                    for i in base..base + BURST {
                        self.first(i);
                    }
                    for i in base..base + ENTRY_AHEAD {
                        self.second(i);
                    }
                    for i in base..base + BURST {
                        if i + ENTRY_AHEAD < base + BURST {
                            self.second(i + ENTRY_AHEAD);
                        }
                        self.act(i);
                    }
                }
            }
            Schedule::Across => {
                for base in (0..items).step_by(BURST as usize) {
                    for i in base..base + BURST {
                        self.first(i + 2 * BURST);
                        self.second(i + BURST);
                        self.act(i);
                    }
                }
            }
        }
    }
}

fn main() -> Result<(), String> {
    let usage = "usage: memory_floor N [ITEMS] [two-line|one-line] [stream|burst|across] [WORK]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .first()
        .ok_or(usage)?
        .parse()
        .map_err(|e| format!("N: {e}"))?;
    let items: u64 = args
        .get(1)
        .map_or(Ok(30_000_000), |s| s.parse())
        .map_err(|e| format!("ITEMS: {e}"))?;
    if n == 0 {
        return Err("N must be positive".into());
    }
    let one_line = match args.get(2).map(String::as_str) {
        None | Some("two-line") => false,
        Some("one-line") => true,
        Some(other) => return Err(format!("unknown layout {other:?} (two-line, one-line)")),
    };
    let schedule = match args.get(3).map(String::as_str) {
        None | Some("stream") => Schedule::Stream,
        Some("burst") => Schedule::Burst,
        Some("across") => Schedule::Across,
        Some(other) => {
            return Err(format!(
                "unknown schedule {other:?} (stream, burst, across)"
            ))
        }
    };
    let rounds: u32 = args
        .get(4)
        .map_or(Ok(0), |s| s.parse())
        .map_err(|e| format!("WORK: {e}"))?;
    let items = items.div_ceil(BURST) * BURST;
    let slots = 2 * n;
    let mut index = HugeArray::new(slots as usize, 0u64);
    for (i, s) in index.iter_mut().enumerate() {
        *s = mix(i as u64 ^ 0x5555) % n;
    }
    let entries = HugeArray::new(n as usize, Entry([1; 64]));
    let mut floor = Floor {
        index,
        entries,
        slots,
        n,
        one_line,
        rounds,
        sum: 0,
    };
    let t = Instant::now();
    floor.run(schedule, items);
    let ns = t.elapsed().as_nanos() as f64 / items as f64;
    println!(
        "n {n}: {ns:.1} ns per item over {items} items ({}, {}, work {rounds}; index {} MB, entries {} MB, huge pages: {}; checksum {})",
        if one_line { "one-line" } else { "two-line" },
        args.get(3).map_or("stream", String::as_str),
        floor.index.allocated_bytes() >> 20,
        floor.entries.allocated_bytes() >> 20,
        floor.index.is_huge() && floor.entries.is_huge(),
        floor.sum & 1
    );
    Ok(())
}
