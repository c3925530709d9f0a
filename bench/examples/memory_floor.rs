//! What the memory system alone costs a connection lookup at a given table size: per item,
//! an 8-byte index slot read from a table of 2 x N slots, naming one of N 64-byte entries,
//! which is then read and written, both prefetched ahead the way `Pipeline::process_burst`
//! does it (the slot `SLOT_AHEAD` items ahead, the entry `ENTRY_AHEAD` items ahead, named by
//! its slot). Allocated like the connection table (`dpdk::mem::HugeArray`, transparent huge
//! pages). Nothing else happens per item, so the time per item is the floor that the table's
//! two random cache lines (and their TLB misses) set, to compare with `pipeline_cost` at the
//! same size.
//!
//! With `one-line` as third argument, each item reads only its entry, prefetched `SLOT_AHEAD`
//! items ahead straight from its hash: the floor of a table whose lookup touches one line.
//!
//! `cargo run --release -p bench --example memory_floor -- N [ITEMS] [one-line]`, e.g.
//! `-- 10000000`.

use std::time::Instant;

use director::dpdk::mem::{prefetch, HugeArray};

/// How far ahead the index slot is prefetched (pass 1 classifies a 32-frame burst first).
const SLOT_AHEAD: u64 = 32;
/// How far ahead the entry is prefetched (`pipeline::ENTRY_AHEAD`).
const ENTRY_AHEAD: u64 = 12;

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

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args
        .first()
        .ok_or("usage: memory_floor N [ITEMS] [one-line]")?
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
        None => false,
        Some("one-line") => true,
        Some(other) => return Err(format!("unknown mode {other:?} (one-line)")),
    };
    let slots = 2 * n;
    let mut index = HugeArray::new(slots as usize, 0u64);
    for (i, s) in index.iter_mut().enumerate() {
        *s = mix(i as u64 ^ 0x5555) % n;
    }
    let mut entries = HugeArray::new(n as usize, Entry([1; 64]));
    let slot_of = |i: u64| (mix(i) % slots) as usize;
    let mut sum = 0u64;
    let t = Instant::now();
    if one_line {
        let entry_of = |i: u64| (mix(i) % n) as usize;
        for i in 0..items {
            prefetch(&entries[entry_of(i + SLOT_AHEAD)]);
            let e = &mut entries[entry_of(i)];
            sum = sum.wrapping_add(u64::from(e.0[0]));
            e.0[28] = e.0[28].wrapping_add(1);
        }
    }
    for i in 0..if one_line { 0 } else { items } {
        prefetch(&index[slot_of(i + SLOT_AHEAD)]);
        let ahead = index[slot_of(i + ENTRY_AHEAD)] as usize;
        prefetch(&entries[ahead]);
        let e = &mut entries[index[slot_of(i)] as usize];
        sum = sum.wrapping_add(u64::from(e.0[0]));
        e.0[28] = e.0[28].wrapping_add(1);
    }
    let ns = t.elapsed().as_nanos() as f64 / items as f64;
    println!(
        "n {n}: {ns:.1} ns per item over {items} items (index {} MB, entries {} MB, huge pages: {}; checksum {})",
        index.allocated_bytes() >> 20,
        entries.allocated_bytes() >> 20,
        index.is_huge() && entries.is_huge(),
        sum & 1
    );
    Ok(())
}
