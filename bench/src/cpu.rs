//! CPU time of individual threads, from the scheduler's statistics.
//!
//! On a shared machine the generator and the device under test do not own their cores: other
//! processes get time slices too. `/proc/self/task/<tid>/schedstat` gives each thread's time
//! on a CPU (ns), so rates can also be stated per second of CPU the thread really had ("per
//! core-second"), which is what the thread would do on a core of its own.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// The calling thread's Linux thread id (0 if /proc is not readable).
pub fn current_tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds thread `tid` of this process has run on a CPU so far (`None`: unknown).
pub fn run_ns(tid: u32) -> Option<u64> {
    if tid == 0 {
        return None;
    }
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A thread id filled in by the thread itself once it runs.
#[derive(Debug, Default)]
pub struct TidCell(AtomicU32);

impl TidCell {
    /// Records the calling thread.
    pub fn record(&self) {
        self.0.store(current_tid(), Relaxed);
    }

    /// CPU nanoseconds of the recorded thread so far (0 before it recorded itself).
    pub fn run_ns(&self) -> u64 {
        run_ns(self.0.load(Relaxed)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spinning_thread_accumulates_cpu_time_and_a_sleeping_one_does_not() {
        let busy = TidCell::default();
        let idle = TidCell::default();
        std::thread::scope(|s| {
            s.spawn(|| {
                busy.record();
                let start = busy.run_ns();
                // Ends once the thread has had 2 ms of CPU, however busy the machine is.
                let mut last = start;
                while last - start < 2_000_000 {
                    for _ in 0..10_000 {
                        std::hint::spin_loop();
                    }
                    let now = busy.run_ns();
                    assert!(now >= last, "CPU time went backwards");
                    last = now;
                }
            });
            s.spawn(|| {
                idle.record();
                let before = idle.run_ns();
                std::thread::sleep(std::time::Duration::from_millis(30));
                assert!(idle.run_ns() - before < 5_000_000);
            });
        });
        assert_eq!(TidCell::default().run_ns(), 0);
        assert_ne!(current_tid(), 0);
    }
}
