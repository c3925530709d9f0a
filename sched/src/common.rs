//! Helpers shared by the schedulers: the destination view, the kernel's hash_32 and address
//! folding, gcd.

use std::net::IpAddr;
use std::sync::Arc;

use crate::{DestLoad, DestSpec};

/// "No destination" marker in bucket tables and cursors.
pub(crate) const NONE: u32 = u32::MAX;

/// The destinations of one build: static weights plus live loads, in list order (newest first).
pub(crate) struct Dests {
    /// Weight of each destination at build time.
    pub weights: Box<[u32]>,
    /// Live load of each destination.
    pub loads: Box<[Arc<DestLoad>]>,
    /// Identity (address, port) of each destination, for carrying state across rebuilds.
    pub keys: Box<[(IpAddr, u16)]>,
    /// (u_threshold, l_threshold) as configured, to tell an edit from an unrelated rebuild.
    pub thresholds: Box<[(u32, u32)]>,
}

impl Dests {
    pub fn new(specs: &[DestSpec], loads: &[Arc<DestLoad>]) -> Self {
        Dests {
            weights: specs.iter().map(|d| d.weight).collect(),
            loads: loads.to_vec().into_boxed_slice(),
            keys: specs.iter().map(|d| (d.addr, d.port)).collect(),
            thresholds: specs
                .iter()
                .map(|d| (d.u_threshold, d.l_threshold))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Weight > 0 and not OVERLOADed: what every scheduler requires of a new choice.
    #[inline]
    pub fn available(&self, i: usize) -> bool {
        self.weights[i] > 0 && !self.loads[i].is_overloaded()
    }

    /// The kernel's ip_vs_dest_conn_overhead: (activeconns << 8) + inactconns.
    #[inline]
    pub fn overhead(&self, i: usize) -> u64 {
        let (active, inactive) = self.loads[i].counts();
        ((active as u64) << 8) + inactive as u64
    }

    /// Same destinations, order, weights and thresholds: a rebuild for another service's sake,
    /// not an add/edit/del of this one.
    pub fn same_config(&self, other: &Dests) -> bool {
        self.keys == other.keys
            && self.weights == other.weights
            && self.thresholds == other.thresholds
    }

    /// Index in `self` of the destination `key`, if present.
    pub fn position(&self, key: &(IpAddr, u16)) -> Option<usize> {
        self.keys.iter().position(|k| k == key)
    }
}

/// Indices of the destinations with weight > 0, by weight descending then list order (fo/ovf).
pub(crate) fn by_weight_desc(weights: &[u32]) -> Box<[u32]> {
    let mut order: Vec<u32> = (0..weights.len() as u32)
        .filter(|&i| weights[i as usize] > 0)
        .collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(weights[i as usize]), i));
    order.into_boxed_slice()
}

/// The kernel's hash_32: multiplicative hash keeping the top `bits` bits.
#[inline]
pub(crate) fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// An address as the kernel folds it for hashing: IPv4 in host order, IPv6 as the XOR of its
/// four 32-bit words (then in host order).
#[inline]
pub(crate) fn addr_fold(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// Greatest common divisor.
pub(crate) fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// gcd of the positive weights, 0 if none is positive.
pub(crate) fn gcd_positive(weights: impl Iterator<Item = u32>) -> u32 {
    weights.filter(|&w| w > 0).fold(0, gcd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_32_matches_kernel_formula() {
        // 1 * GOLDEN_RATIO_32 = 0x61C88647, top 8 bits = 0x61.
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(0, 8), 0);
        // 0xC0000201 * 0x61C88647 mod 2^32 = 0x32D51447 -> top 10 bits 0xCB.
        assert_eq!(hash_32(0xC000_0201, 10), 0xCB);
        assert_eq!(hash_32(0xC000_0201, 8), 0x32);
    }

    #[test]
    fn fold_v6_xors_words() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(addr_fold(&a), 0x2001_0db8 ^ 1);
        let b: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(addr_fold(&b), 0xC000_0201);
    }

    #[test]
    fn gcd_of_weights() {
        assert_eq!(gcd_positive([4, 0, 6, 8].into_iter()), 2);
        assert_eq!(gcd_positive([0, 0].into_iter()), 0);
        assert_eq!(gcd_positive([4, 3, 2].into_iter()), 1);
    }
}
