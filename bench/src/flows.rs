//! Flow numbering and visiting order.
//!
//! Flow `i` is the client endpoint 10.x.y.z:port given by [`client`]: 50,000 ports per client
//! address from 10.0.0.1 up, so 10 M flows use 200 addresses and every flow is distinct.
//! Established traffic visits the live flows in a shuffled order ([`shuffled`]) so that
//! successive packets hit unrelated connection-table entries, as interleaved real clients do.

use std::net::Ipv4Addr;

/// Ports used per client address.
pub const PORTS_PER_ADDR: u32 = 50_000;
/// First client port.
pub const FIRST_PORT: u32 = 10_000;
/// Most flows [`client`] can number (client addresses stay inside 10.0.0.0/8).
pub const MAX_FLOWS: u64 = (1 << 24) as u64 * PORTS_PER_ADDR as u64 - PORTS_PER_ADDR as u64;

/// The client endpoint of flow `i` (`i < MAX_FLOWS`).
#[inline]
pub fn client(i: u64) -> (Ipv4Addr, u16) {
    let addr = 0x0A00_0001u32 + (i / u64::from(PORTS_PER_ADDR)) as u32;
    let port = FIRST_PORT + (i % u64::from(PORTS_PER_ADDR)) as u32;
    (Ipv4Addr::from(addr), port as u16)
}

/// The worker, among `workers`, that RSS steers flow `i`'s client packets (and its replies)
/// to.
#[inline]
pub fn worker_of(i: u64, workers: usize) -> usize {
    let (addr, port) = client(i);
    director::dataplane::steering::owner(addr.into(), port, workers)
}

/// The flow whose client endpoint is `addr`:`port` ([`client`]'s inverse), if any.
pub fn flow_of(addr: Ipv4Addr, port: u16) -> Option<u64> {
    let a = u32::from(addr).checked_sub(0x0A00_0001)?;
    let p = u32::from(port).checked_sub(FIRST_PORT)?;
    let i = u64::from(a) * u64::from(PORTS_PER_ADDR) + u64::from(p);
    (p < PORTS_PER_ADDR && i < MAX_FLOWS).then_some(i)
}

/// A small, fast, seedable PRNG (splitmix64): reproducible shuffles without a dependency.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (n > 0): multiply-shift, bias below 2^-32 for n < 2^32.
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// The flows `0..n` in a random order (Fisher-Yates), reproducible for a given `seed`.
pub fn shuffled(n: u32, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n).collect();
    let mut rng = SplitMix::new(seed);
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u32 + 1) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn flows_are_distinct_endpoints_in_10_slash_8() {
        let mut seen = HashSet::new();
        for i in (0..200_000u64).chain([MAX_FLOWS - 1]) {
            let (a, p) = client(i);
            assert_eq!(a.octets()[0], 10);
            assert!(u32::from(p) >= FIRST_PORT && u32::from(p) < FIRST_PORT + PORTS_PER_ADDR);
            assert!(seen.insert((a, p)), "flow {i} repeats");
        }
        assert_eq!(client(0), (Ipv4Addr::new(10, 0, 0, 1), 10_000));
        assert_eq!(client(50_000), (Ipv4Addr::new(10, 0, 0, 2), 10_000));
        assert_eq!(client(MAX_FLOWS - 1).0, Ipv4Addr::new(10, 255, 255, 255));
        for i in (0..200_000u64).step_by(777).chain([MAX_FLOWS - 1]) {
            let (a, p) = client(i);
            assert_eq!(flow_of(a, p), Some(i));
        }
        assert_eq!(flow_of(Ipv4Addr::new(10, 0, 0, 0), 10_000), None);
        assert_eq!(flow_of(Ipv4Addr::new(10, 0, 0, 1), 9_999), None);
        assert_eq!(flow_of(Ipv4Addr::new(10, 0, 0, 1), 60_000), None);
        assert_eq!(flow_of(Ipv4Addr::new(11, 0, 0, 0), 10_000), None);
    }

    #[test]
    fn shuffle_is_a_reproducible_permutation() {
        let a = shuffled(10_000, 7);
        assert_eq!(a, shuffled(10_000, 7));
        assert_ne!(a, shuffled(10_000, 8));
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..10_000).collect::<Vec<_>>());
        // Not the identity, and neighbours in the order are far apart on average.
        let far = a.windows(2).filter(|w| w[0].abs_diff(w[1]) > 100).count();
        assert!(far > 9_000, "{far}");
    }
}
