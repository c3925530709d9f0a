//! A lock-free ring of mbufs (`rte_ring`, multi-producer / single-consumer) for handing packets
//! from one worker to another (steering redirects) and for ring-backed test ports.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dpdk_sys as sys;

use super::{c_string, eal, DpdkError, Mbuf, MbufBurst};

/// A multi-producer / single-consumer ring of mbufs. Share it (`Arc<MbufRing>`) with every
/// producer; the single consumer is the one [`RingConsumer`] obtained by
/// [`MbufRing::consumer`]. Mbufs still queued when the ring is dropped are freed.
pub struct MbufRing {
    raw: NonNull<sys::rte_ring>,
    name: String,
    capacity: usize,
    consumer_taken: AtomicBool,
}

// SAFETY: the ring was created multi-producer, so enqueues from any number of threads are safe;
// dequeues happen only through the unique RingConsumer (or in Drop, when no other handle
// exists). The queued mbufs are owned by the ring and Send.
unsafe impl Send for MbufRing {}
// SAFETY: see Send; &self methods are enqueue (MP-safe) and reads of the counters.
unsafe impl Sync for MbufRing {}

impl MbufRing {
    /// Creates a ring named `name` (unique per process; at most 29 bytes) holding up to `size`
    /// mbufs (any size >= 1, not only powers of two).
    pub fn new(name: &str, size: u32) -> Result<MbufRing, DpdkError> {
        eal::ensure()?;
        if size == 0 {
            return Err(DpdkError::InvalidArgument(format!(
                "ring {name}: size must be > 0"
            )));
        }
        let cname = c_string("ring name", name)?;
        // SAFETY: cname is valid for the call; the EAL is up. The ring returned (or NULL with
        // rte_errno) is owned by the MbufRing created below.
        let raw = unsafe {
            sys::rte_ring_create(
                cname.as_ptr(),
                size,
                sys::rte_socket_id() as i32,
                sys::RING_F_SC_DEQ | sys::RING_F_EXACT_SZ,
            )
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| DpdkError::from_rte_errno(format!("rte_ring_create({name})")))?;
        Ok(MbufRing {
            raw,
            name: name.to_owned(),
            capacity: size as usize,
            consumer_taken: AtomicBool::new(false),
        })
    }

    /// The ring's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Maximum number of mbufs the ring holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Mbufs queued right now (a snapshot while producers/consumer run).
    #[inline]
    pub fn count(&self) -> usize {
        // SAFETY: the ring pointer is valid; rte_ring_count only reads the head/tail indexes.
        unsafe { sys::shim_ring_count(self.raw.as_ptr()) as usize }
    }

    /// Enqueues as many mbufs of `burst` as fit, from the front; returns how many. Those not
    /// enqueued (ring full) stay in `burst`, in order.
    #[inline]
    pub fn enqueue_burst(&self, burst: &mut MbufBurst) -> usize {
        let n = burst.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: the first n pointers of the burst are owned mbufs; the ring takes ownership
        // of the first `sent` of them, which consume_front then forgets.
        unsafe {
            let sent = sys::shim_ring_enqueue_burst(
                self.raw.as_ptr(),
                burst.as_mut_ptr().cast::<*mut c_void>(),
                n as u32,
            ) as usize;
            burst.consume_front(sent);
            sent
        }
    }

    /// Enqueues one mbuf; gives it back if the ring is full.
    #[inline]
    pub fn enqueue(&self, m: Mbuf) -> Result<(), Mbuf> {
        let mut p = m.as_ptr().cast::<c_void>();
        // SAFETY: p is an owned mbuf; on success the ring owns it and the Mbuf is forgotten.
        let sent = unsafe {
            sys::shim_ring_enqueue_burst(self.raw.as_ptr(), &mut p as *mut *mut c_void, 1)
        };
        if sent == 1 {
            let _ = m.into_raw();
            Ok(())
        } else {
            Err(m)
        }
    }

    /// The single consumer of this ring; `Busy` if it is already taken (by another
    /// `RingConsumer` or a ring-backed port). Dropping the consumer releases the role.
    pub fn consumer(self: &Arc<Self>) -> Result<RingConsumer, DpdkError> {
        if self.consumer_taken.swap(true, Ordering::AcqRel) {
            return Err(DpdkError::Busy(format!(
                "ring {} already has its consumer",
                self.name
            )));
        }
        Ok(RingConsumer {
            ring: Arc::clone(self),
        })
    }

    /// The raw ring, for `rte_eth_from_rings`.
    pub(crate) fn as_ptr(&self) -> *mut sys::rte_ring {
        self.raw.as_ptr()
    }

    /// Dequeues up to `out.spare()` mbufs into `out`.
    ///
    /// # Safety
    /// The caller is the ring's only consumer for the duration of the call.
    #[inline]
    unsafe fn dequeue_into(&self, out: &mut MbufBurst) -> usize {
        let want = out.spare();
        if want == 0 {
            return 0;
        }
        // SAFETY: single consumer by the caller's contract; the spare slots receive up to
        // `want` owned mbufs, which commit() hands to the burst.
        unsafe {
            let got = sys::shim_ring_dequeue_burst(
                self.raw.as_ptr(),
                out.spare_ptr().cast::<*mut c_void>(),
                want as u32,
            ) as usize;
            out.commit(got);
            got
        }
    }
}

impl std::fmt::Debug for MbufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MbufRing")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("count", &self.count())
            .finish()
    }
}

impl Drop for MbufRing {
    fn drop(&mut self) {
        let mut burst = MbufBurst::new();
        // SAFETY: &mut self in Drop means no other handle (hence no consumer) exists.
        while unsafe { self.dequeue_into(&mut burst) } > 0 {
            burst.clear();
        }
        // SAFETY: the ring is empty and nobody references it any more.
        unsafe { sys::rte_ring_free(self.raw.as_ptr()) }
    }
}

/// The single consumer of an [`MbufRing`] (`Send`, not `Clone`).
pub struct RingConsumer {
    ring: Arc<MbufRing>,
}

impl RingConsumer {
    /// Dequeues up to `out.spare()` mbufs, appending them to `out`; returns how many.
    #[inline]
    pub fn dequeue_burst(&mut self, out: &mut MbufBurst) -> usize {
        // SAFETY: this RingConsumer is the ring's unique consumer (consumer_taken) and
        // &mut self excludes concurrent calls through it.
        unsafe { self.ring.dequeue_into(out) }
    }

    /// The ring consumed.
    pub fn ring(&self) -> &Arc<MbufRing> {
        &self.ring
    }
}

impl Drop for RingConsumer {
    fn drop(&mut self) {
        self.ring.consumer_taken.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for RingConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingConsumer")
            .field("ring", &self.ring.name)
            .finish()
    }
}
