//! Packet buffer pools (`rte_pktmbuf_pool_create`).

use std::ptr::NonNull;
use std::sync::Arc;

use dpdk_sys as sys;

use super::{c_string, eal, DpdkError};

/// Default data room of an mbuf: 2048 bytes of packet data plus the headroom.
pub const DEFAULT_DATA_ROOM: u16 = sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16;
/// Headroom reserved in front of the packet data of every fresh mbuf.
pub const HEADROOM: usize = sys::RTE_PKTMBUF_HEADROOM as usize;

/// A pool of packet buffers. `Clone` is a cheap shared handle; the pool is freed when the last
/// handle is dropped and every mbuf is back in it (otherwise it is left allocated, since live
/// mbufs still point at it).
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    raw: NonNull<sys::rte_mempool>,
    name: String,
}

// SAFETY: the pool uses DPDK's default "ring_mp_mc" ops, safe for concurrent get/put from any
// thread; the handle itself is an immutable pointer.
unsafe impl Send for PoolInner {}
// SAFETY: see Send; all methods take &self and only call thread-safe mempool functions.
unsafe impl Sync for PoolInner {}

impl Mempool {
    /// Creates a pool of `n_mbufs` buffers named `name` (unique per process), with a per-lcore
    /// cache of `cache` buffers (0 for none; at most 512) and `data_room` bytes per buffer
    /// including the headroom ([`DEFAULT_DATA_ROOM`] for standard frames). `n_mbufs` must fit
    /// the EAL's memory (`-m`).
    pub fn new(name: &str, n_mbufs: u32, cache: u32, data_room: u16) -> Result<Mempool, DpdkError> {
        eal::ensure()?;
        if n_mbufs == 0 {
            return Err(DpdkError::InvalidArgument(format!(
                "mempool {name}: n_mbufs must be > 0"
            )));
        }
        if (data_room as usize) < HEADROOM {
            return Err(DpdkError::InvalidArgument(format!(
                "mempool {name}: data_room {data_room} is below the headroom {HEADROOM}"
            )));
        }
        let cname = c_string("mempool name", name)?;
        // SAFETY: cname is a valid C string for the call; the EAL is initialised. The pool
        // returned (or NULL with rte_errno) is owned by the PoolInner created below.
        let raw = unsafe {
            sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n_mbufs,
                cache,
                0,
                data_room,
                sys::rte_socket_id() as i32,
            )
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| DpdkError::from_rte_errno(format!("rte_pktmbuf_pool_create({name})")))?;
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                raw,
                name: name.to_owned(),
            }),
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of buffers the pool was created with.
    pub fn capacity(&self) -> u32 {
        // SAFETY: the pool pointer is valid while this handle lives; `size` is immutable.
        unsafe { self.inner.raw.as_ref().size }
    }

    /// Free buffers right now (including those in per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool pointer is valid while this handle lives; the count is a read.
        unsafe { sys::rte_mempool_avail_count(self.inner.raw.as_ptr()) }
    }

    /// Buffers currently allocated (capacity - available).
    pub fn in_use(&self) -> u32 {
        self.capacity().saturating_sub(self.available())
    }

    /// Bytes of data room per buffer, headroom included.
    pub fn data_room(&self) -> u16 {
        // SAFETY: the pool pointer is valid and was created by rte_pktmbuf_pool_create, whose
        // private area holds the data room size.
        unsafe { sys::shim_pktmbuf_data_room_size(self.inner.raw.as_ptr()) }
    }

    /// The raw pool, for DPDK calls inside this module (queue setup, allocation).
    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.raw.as_ptr()
    }
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.inner.name)
            .field("capacity", &self.capacity())
            .field("available", &self.available())
            .finish()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let raw = self.raw.as_ptr();
        // SAFETY: no Mempool handle is left, so nobody allocates from the pool any more; it is
        // freed only if every mbuf is back (no live Mbuf or port queue can still use it).
        unsafe {
            if sys::rte_mempool_avail_count(raw) == self.raw.as_ref().size {
                sys::rte_mempool_free(raw);
            }
        }
    }
}
