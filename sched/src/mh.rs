//! mh — Maglev Hashing (kernel ip_vs_mh.c).
//!
//! Table of M slots (a prime of the kernel's list, 4093 by default). Each destination gets a
//! permutation: offset = h1(port, addr) % M, skip = h2(port, addr) % (M - 1) + 1; rounds go
//! over the destinations in list order, each claiming `turns` free slots, stepping by skip.
//! turns = ((last_weight / gcd) >> rshift), or 1 when that is 0 and last_weight != 0, with
//! rshift = max(0, fls(max_last_weight / gcd) - MH_TAB_BITS). A quiesced destination (weight 0
//! after having had a weight) keeps its slots: lookups landing there give no result, or go on
//! probing with mh-fallback (flag-1). Lookup: h1(0, port, saddr) % M, port = client source port
//! with mh-port (flag-2), else 0. Fallback probes offsets 0..M-1 with
//! roffset = (offset + ihash) % M, slot h1(roffset, port, saddr) % M; an empty slot ends it.
//!
//! Hashing is the kernel's: hsiphash (SipHash-1-3, 64-bit build) of the u32
//! `offset + port + fold(addr)` with the kernel's fixed keys, so tables and lookups equal an
//! x86-64 kernel's for the same destination list and weights.

use crate::common::{addr_fold, gcd_positive, Dests, NONE};
use crate::siphash::hsiphash_u32;
use crate::{FlowInfo, SchedError, Scheduler};

/// Table sizes the kernel allows (CONFIG_IP_VS_MH_TAB_INDEX 8..17).
pub const MH_TABLE_SIZES: [u32; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];
/// The kernel's default table size.
pub const MH_DEFAULT_TABLE_SIZE: u32 = 4093;

const KEY1: (u64, u64) = (2654435761, 2654435761);
const KEY2: (u64, u64) = (2654446892, 2654446892);

/// `a % d` without a division (Lemire's fastmod for 32-bit numerators, d >= 2).
#[derive(Clone, Copy)]
struct FastMod {
    d: u32,
    m: u64,
}

impl FastMod {
    fn new(d: u32) -> Self {
        FastMod {
            d,
            m: u64::MAX / d as u64 + 1,
        }
    }

    #[inline]
    fn rem(self, a: u32) -> u32 {
        let low = self.m.wrapping_mul(a as u64);
        ((low as u128 * self.d as u128) >> 64) as u32
    }
}

pub(crate) struct Maglev {
    dests: Dests,
    table: Box<[u32]>,
    m: FastMod,
    fallback: bool,
    use_port: bool,
}

#[inline]
fn hashkey(addr: &std::net::IpAddr, port: u16, key: (u64, u64), offset: u32) -> u32 {
    hsiphash_u32(
        key,
        offset
            .wrapping_add(port as u32)
            .wrapping_add(addr_fold(addr)),
    )
}

/// Fill the lookup table of size `m` for these destinations and last weights.
pub(crate) fn populate(dests: &Dests, last_weights: &[u32], m: u32) -> Box<[u32]> {
    let mut table = vec![NONE; m as usize].into_boxed_slice();
    let gcd = gcd_positive(last_weights.iter().copied());
    if gcd == 0 {
        return table;
    }
    // IP_VS_MH_TAB_BITS is CONFIG_IP_VS_MH_TAB_INDEX / 2, the index being 8 + the prime's rank.
    let rank = MH_TABLE_SIZES.iter().position(|&p| p == m).unwrap_or(4) as i32;
    let tab_bits = (rank + 8) / 2;
    let maxw = last_weights.iter().copied().max().unwrap_or(0) / gcd;
    let rshift = ((32 - maxw.leading_zeros()) as i32 - tab_bits).max(0) as u32;
    // (perm, skip, turns) per destination.
    let mut setup: Vec<(u32, u32, u32)> = dests
        .keys
        .iter()
        .zip(last_weights)
        .map(|((addr, port), &lw)| {
            let offset = hashkey(addr, *port, KEY1, 0) % m;
            let skip = hashkey(addr, *port, KEY2, 0) % (m - 1) + 1;
            let turns = match (lw / gcd) >> rshift {
                0 => (lw != 0) as u32,
                t => t,
            };
            (offset, skip, turns)
        })
        .collect();
    let mut taken = vec![false; m as usize];
    let mut filled = 0u32;
    while filled < m {
        for (d, (perm, skip, turns)) in setup.iter_mut().enumerate() {
            for _ in 0..*turns {
                while taken[*perm as usize] {
                    *perm += *skip;
                    if *perm >= m {
                        *perm -= m;
                    }
                }
                taken[*perm as usize] = true;
                table[*perm as usize] = d as u32;
                filled += 1;
                if filled == m {
                    return table;
                }
            }
        }
    }
    table
}

pub(crate) fn build(
    dests: Dests,
    last_weights: &[u32],
    table_size: Option<u32>,
    fallback: bool,
    use_port: bool,
) -> Result<Box<dyn Scheduler>, SchedError> {
    let m = table_size.unwrap_or(MH_DEFAULT_TABLE_SIZE);
    if !MH_TABLE_SIZES.contains(&m) {
        return Err(SchedError::InvalidParam(format!(
            "mh table size {m} is not one of {MH_TABLE_SIZES:?}"
        )));
    }
    if dests.len() > m as usize {
        return Err(SchedError::InvalidParam(format!(
            "mh: {} destinations exceed the table size {m}",
            dests.len()
        )));
    }
    let table = populate(&dests, last_weights, m);
    Ok(Box::new(Maglev {
        dests,
        table,
        m: FastMod::new(m),
        fallback,
        use_port,
    }))
}

impl Maglev {
    /// The lookup table (destination index per slot, NONE = empty).
    pub(crate) fn table(&self) -> &[u32] {
        &self.table
    }
}

impl Scheduler for Maglev {
    fn name(&self) -> &'static str {
        "mh"
    }

    #[inline]
    fn schedule(&self, flow: &FlowInfo) -> Option<usize> {
        let m = self.m;
        let port = if self.use_port { flow.sport } else { 0 };
        let ihash = m.rem(hashkey(&flow.saddr, port, KEY1, 0));
        let d = self.table[ihash as usize];
        if d == NONE {
            return None;
        }
        if self.dests.available(d as usize) {
            return Some(d as usize);
        }
        if !self.fallback {
            return None;
        }
        for offset in 0..m.d {
            let roffset = m.rem(offset + ihash);
            let d = self.table[m.rem(hashkey(&flow.saddr, port, KEY1, roffset)) as usize];
            if d == NONE {
                return None;
            }
            if self.dests.available(d as usize) {
                return Some(d as usize);
            }
        }
        None
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::FastMod;

    #[test]
    fn fastmod_equals_remainder() {
        let mut x = 0x1234_5678u32;
        for &d in super::MH_TABLE_SIZES.iter().chain(&[2, 3, u32::MAX]) {
            let f = FastMod::new(d);
            for a in [0, 1, d - 1, d, d.wrapping_add(1), u32::MAX, u32::MAX - 1] {
                assert_eq!(f.rem(a), a % d, "{a} % {d}");
            }
            for _ in 0..10_000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                assert_eq!(f.rem(x), x % d, "{x} % {d}");
            }
        }
    }
}
