//! The IPVS rate estimator (kernel `net/netfilter/ipvs/ip_vs_est.c`), bit for bit.
//!
//! Every [`ESTIMATOR_PERIOD`] (2 s) the estimator takes the delta of each counter since the
//! previous tick and folds it into an exponentially weighted average with weight 1/4:
//!
//! ```text
//! rate = delta << 9            (bytes: delta << 4)
//! avg += (rate - avg) >> 2     (signed 64-bit difference, arithmetic shift)
//! ```
//!
//! A 2 s delta shifted by 9 is the per-second rate scaled by 2^10 (bytes: by 2^5); readers get
//! `(avg + 0x1FF) >> 10` (bytes `(avg + 0xF) >> 5`), as `ip_vs_read_estimator` does.

use std::time::Duration;

use super::counters::StatTotals;

/// Estimation interval of the kernel's estimator.
pub const ESTIMATOR_PERIOD: Duration = Duration::from_secs(2);

/// Decoded rates as ipvsadm `--rate` prints them (per second).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Inbound packets per second.
    pub inpps: u64,
    /// Outbound packets per second.
    pub outpps: u64,
    /// Inbound bytes per second.
    pub inbps: u64,
    /// Outbound bytes per second.
    pub outbps: u64,
}

/// State of one estimator (`struct ip_vs_estimator`): last raw counters and scaled averages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RateEstimator {
    last: StatTotals,
    /// Scaled averages: packet/conn rates << 10, byte rates << 5.
    avg: Rates,
}

/// One counter's step: kernel `rate = (n - last) << shift; avg += ((s64)rate - (s64)avg) >> 2`.
#[inline]
fn step(avg: &mut u64, last: &mut u64, now: u64, shift: u32) {
    let rate = now.wrapping_sub(*last).wrapping_shl(shift);
    *last = now;
    let diff = (rate as i64).wrapping_sub(*avg as i64) >> 2;
    *avg = avg.wrapping_add(diff as u64);
}

impl RateEstimator {
    /// An estimator whose first delta is taken against `now` (rates start at 0).
    pub fn new(now: StatTotals) -> Self {
        RateEstimator {
            last: now,
            avg: Rates::default(),
        }
    }

    /// One estimation tick with the current raw counters.
    pub fn update(&mut self, now: &StatTotals) {
        let (l, a) = (&mut self.last, &mut self.avg);
        step(&mut a.cps, &mut l.conns, now.conns, 9);
        step(&mut a.inpps, &mut l.inpkts, now.inpkts, 9);
        step(&mut a.outpps, &mut l.outpkts, now.outpkts, 9);
        step(&mut a.inbps, &mut l.inbytes, now.inbytes, 4);
        step(&mut a.outbps, &mut l.outbytes, now.outbytes, 4);
    }

    /// Decoded rates (kernel `ip_vs_read_estimator`).
    pub fn rates(&self) -> Rates {
        let a = &self.avg;
        Rates {
            cps: a.cps.wrapping_add(0x1FF) >> 10,
            inpps: a.inpps.wrapping_add(0x1FF) >> 10,
            outpps: a.outpps.wrapping_add(0x1FF) >> 10,
            inbps: a.inbps.wrapping_add(0xF) >> 5,
            outbps: a.outbps.wrapping_add(0xF) >> 5,
        }
    }

    /// The scaled averages themselves (packet/conn rates << 10, byte rates << 5).
    pub fn scaled(&self) -> Rates {
        self.avg
    }

    /// `ipvsadm -Z` (kernel `ip_vs_zero_estimator`): averages to 0, next delta from `now`.
    pub fn zero(&mut self, now: &StatTotals) {
        *self = RateEstimator::new(*now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns(n: u64) -> StatTotals {
        StatTotals {
            conns: n,
            ..StatTotals::default()
        }
    }

    #[test]
    fn steady_100_conns_per_tick() {
        // 100 conns / 2 s = 50 cps: rate = 51200; avg: 12800, 22400, 29600, 35000.
        let mut e = RateEstimator::new(conns(0));
        let mut seen = Vec::new();
        for t in 1..=4 {
            e.update(&conns(100 * t));
            seen.push((e.scaled().cps, e.rates().cps));
        }
        assert_eq!(
            seen,
            vec![(12800, 12), (22400, 22), (29600, 29), (35000, 34)]
        );
    }

    #[test]
    fn decay_uses_arithmetic_shift() {
        // avg 9 with rate 0: (0 - 9) >> 2 = -3 (floor), not -2 (truncation) nor a huge
        // logical shift.
        let mut e = RateEstimator::new(StatTotals::default());
        e.avg.cps = 9;
        e.update(&StatTotals::default());
        assert_eq!(e.scaled().cps, 6);
        e.update(&StatTotals::default());
        assert_eq!(e.scaled().cps, 4);
        e.update(&StatTotals::default());
        assert_eq!(e.scaled().cps, 3);
        e.update(&StatTotals::default());
        assert_eq!(e.scaled().cps, 2);
        e.update(&StatTotals::default());
        e.update(&StatTotals::default());
        assert_eq!(e.scaled().cps, 0);
        e.update(&StatTotals::default());
        assert_eq!(e.scaled().cps, 0);
    }
}
