//! The one safe wrapper over `dpdk-sys`. Every `unsafe` block of the project that touches DPDK
//! lives in this module and carries a `// SAFETY:` comment.
//!
//! # Capabilities
//! - [`eal`]: [`eal::init`] brings the EAL up once per process (later calls return `Ok`), on a
//!   dedicated thread so the caller's CPU affinity is untouched; [`eal::test_init`] does it with
//!   arguments that need no NIC, no hugepages and no shared files. [`eal::register_thread`]
//!   gives a worker thread an lcore id (enables the mempool per-lcore cache).
//! - [`Mempool`]: a pool of packet buffers (`rte_pktmbuf_pool_create`); `Clone` is a cheap
//!   shared handle, `Send + Sync`.
//! - [`Mbuf`]: one owned packet buffer (drop frees it); `data()`/`data_mut()` over the first
//!   segment, `prepend`/`adj`/`append`/`trim`, metadata (RSS hash, input port, offload flags),
//!   `into_raw`/`from_raw` for raw pointer handling.
//! - [`MbufBurst`]: a fixed array of up to [`BURST`] mbufs, no allocation; the unit of rx/tx.
//! - [`Port`]: an ethdev port (a probed vdev, an existing port by name, or a port over
//!   [`MbufRing`]s): configure N rx/tx queues with optional RSS, queue setup, start/stop, MAC,
//!   promiscuous mode, link, stats and xstats. It hands out each queue to one owner at a time
//!   as an [`RxQueue`]/[`TxQueue`] (`Send`, not `Clone`: the worker polling it); the port
//!   closes when the `Port` and all its queue handles are dropped.
//! - [`MbufRing`]: a multi-producer / single-consumer `rte_ring` of mbufs for redirects between
//!   workers; enqueue from any thread, dequeue through the one [`RingConsumer`].
//! - [`tsc`]/[`tsc_hz`]: the CPU time-stamp counter and its frequency.
//! - [`mem`]: cache prefetch and [`mem::HugeArray`] (big tables on transparent huge pages).
//!
//! # Hot path
//! `RxQueue::rx_burst`, `TxQueue::tx_burst`, `MbufRing::enqueue_burst`,
//! `RingConsumer::dequeue_burst` and the `Mbuf` data accessors allocate nothing and take no
//! lock; `Mbuf` reads its fields directly (no FFI call), bursts are one shim call each.

use std::ffi::CStr;
use std::fmt;

pub mod burst;
pub mod eal;
pub mod mbuf;
pub mod mem;
pub mod mempool;
pub mod port;
pub mod ring;

pub use burst::{MbufBurst, BURST};
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{ConfigOutcome, Port, PortConf, PortStats, RxQueue, TxQueue};
pub use ring::{MbufRing, RingConsumer};

/// An error from the DPDK layer, with a readable message (`Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpdkError {
    /// A DPDK call failed; `errno` is DPDK's error code, shown through `rte_strerror`.
    Call {
        /// The call and its subject, e.g. `rte_dev_probe(net_ring_a)`.
        what: String,
        /// Positive error code (errno or an `RTE_` error).
        errno: i32,
    },
    /// [`eal::init`] has not succeeded yet in this process.
    NotInitialised,
    /// An argument was refused before calling DPDK.
    InvalidArgument(String),
    /// The object is in use (e.g. queue handles still alive, a queue already handed out).
    Busy(String),
    /// Not enough head- or tailroom in an mbuf (or bytes to remove) for the request.
    NoRoom {
        /// Bytes asked for.
        requested: usize,
        /// Bytes available.
        available: usize,
    },
    /// The mempool has no free mbuf.
    PoolExhausted(String),
}

impl DpdkError {
    /// A failed call from its (positive or negative) error code.
    pub(crate) fn call(what: impl Into<String>, code: i32) -> Self {
        DpdkError::Call {
            what: what.into(),
            errno: code.abs(),
        }
    }

    /// A failed call whose code is in `rte_errno` (calls returning NULL or -1).
    pub(crate) fn from_rte_errno(what: impl Into<String>) -> Self {
        // SAFETY: reads the calling thread's rte_errno; no arguments, no side effects.
        let code = unsafe { dpdk_sys::shim_errno() };
        Self::call(what, code)
    }
}

/// Turns a DPDK return code (negative = error code) into a `Result`.
pub(crate) fn check(what: impl FnOnce() -> String, ret: i32) -> Result<i32, DpdkError> {
    if ret < 0 {
        Err(DpdkError::call(what(), ret))
    } else {
        Ok(ret)
    }
}

/// `rte_strerror(code)` as an owned string.
pub fn strerror(code: i32) -> String {
    // SAFETY: rte_strerror accepts any int and returns a pointer to a NUL-terminated string
    // (static or in a per-thread buffer), which is copied before any other DPDK call.
    unsafe {
        let s = dpdk_sys::rte_strerror(code);
        if s.is_null() {
            return format!("error {code}");
        }
        CStr::from_ptr(s).to_string_lossy().into_owned()
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkError::Call { what, errno } => {
                write!(f, "{what} failed: {} (errno {errno})", strerror(*errno))
            }
            DpdkError::NotInitialised => write!(f, "DPDK EAL is not initialised (eal::init)"),
            DpdkError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            DpdkError::Busy(m) => write!(f, "busy: {m}"),
            DpdkError::NoRoom {
                requested,
                available,
            } => write!(
                f,
                "not enough room in mbuf: {requested} bytes requested, {available} available"
            ),
            DpdkError::PoolExhausted(name) => write!(f, "mempool {name} has no free mbuf"),
        }
    }
}

impl std::error::Error for DpdkError {}

/// The CPU time-stamp counter (`rte_rdtsc`). Monotonic per core; cheap enough per burst.
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the TSC register; no memory access.
    unsafe { dpdk_sys::shim_rdtsc() }
}

/// TSC ticks per second as measured by the EAL (`rte_get_tsc_hz`); 0 before [`eal::init`].
pub fn tsc_hz() -> u64 {
    if !eal::is_initialised() {
        return 0;
    }
    // SAFETY: the EAL is initialised, so the TSC frequency has been calibrated; pure read.
    unsafe { dpdk_sys::shim_get_tsc_hz() }
}

/// A Rust string as a C string for DPDK, refusing interior NULs.
pub(crate) fn c_string(what: &str, s: &str) -> Result<std::ffi::CString, DpdkError> {
    std::ffi::CString::new(s)
        .map_err(|_| DpdkError::InvalidArgument(format!("{what} contains a NUL byte: {s:?}")))
}
