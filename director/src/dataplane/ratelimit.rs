//! A token bucket for rate-limiting what a worker sends on its own (ICMP errors, ARP requests),
//! like the kernel's `icmp_ratelimit`.
//!
//! One bucket belongs to one worker, so it is plain integers: no atomics, no floating point.
//! Credit is kept in integer units chosen so that every refill is exact: each elapsed clock tick
//! adds `rate` units and a token costs `hz` units (the clock's ticks per second).

/// A token bucket: `rate` tokens per second, holding at most `burst`; starts full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Units added per tick (= tokens per second).
    rate: u64,
    /// Units one token costs (= ticks per second).
    hz: u64,
    /// Most units the bucket holds (`burst * hz`).
    cap: u64,
    /// Units now available.
    credit: u64,
    /// Tick of the last refill; `None` until the first call.
    last: Option<u64>,
}

impl TokenBucket {
    /// A bucket refilled at `rate_per_sec` tokens per second up to `burst`, driven by a clock in
    /// nanoseconds.
    pub fn new(rate_per_sec: u64, burst: u64) -> Self {
        Self::with_clock_hz(rate_per_sec, burst, 1_000_000_000)
    }

    /// Same, driven by a clock ticking `hz` times per second (e.g. the TSC frequency, so a
    /// worker can pass `rte_rdtsc()` directly). `hz` 0 is taken as 1.
    pub fn with_clock_hz(rate_per_sec: u64, burst: u64, hz: u64) -> Self {
        let hz = hz.max(1);
        let cap = burst.saturating_mul(hz);
        Self {
            rate: rate_per_sec,
            hz,
            cap,
            credit: cap,
            last: None,
        }
    }

    /// Takes one token if one is available at time `now` (in clock ticks). A clock that goes
    /// backwards adds nothing.
    #[inline]
    pub fn allow(&mut self, now: u64) -> bool {
        match self.last {
            Some(last) if now > last => {
                let add = (now - last).saturating_mul(self.rate);
                self.credit = self.credit.saturating_add(add).min(self.cap);
                self.last = Some(now);
            }
            Some(_) => {}
            None => self.last = Some(now),
        }
        if self.credit >= self.hz {
            self.credit -= self.hz;
            true
        } else {
            false
        }
    }

    /// Whole tokens left, as of the last call to [`allow`](Self::allow).
    pub fn tokens(&self) -> u64 {
        self.credit / self.hz
    }
}
