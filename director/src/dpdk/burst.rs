//! A fixed-size burst of owned mbufs: the unit of rx, tx and ring transfers.

use dpdk_sys as sys;

use super::{DpdkError, Mbuf, Mempool};

/// Maximum number of mbufs in a burst (DPDK's usual burst size).
pub const BURST: usize = 32;

/// Up to [`BURST`] owned mbufs in a fixed array: no allocation, reusable across loop
/// iterations. Receiving appends after the mbufs already held; transmitting or enqueueing
/// consumes from the front and leaves what was not accepted, in order, for the caller to retry
/// or drop ([`MbufBurst::clear`]). Dropping the burst frees the mbufs it still holds.
pub struct MbufBurst {
    len: usize,
    /// `slots[..len]` are valid owned mbufs; the rest is scratch space.
    slots: [*mut sys::rte_mbuf; BURST],
}

// SAFETY: the burst uniquely owns the mbufs in slots[..len] (like a Vec<Mbuf>), and Mbuf is Send.
unsafe impl Send for MbufBurst {}

impl Default for MbufBurst {
    fn default() -> Self {
        Self::new()
    }
}

impl MbufBurst {
    /// An empty burst.
    pub const fn new() -> Self {
        MbufBurst {
            len: 0,
            slots: [std::ptr::null_mut(); BURST],
        }
    }

    /// Number of mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the burst holds no mbuf.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the burst holds [`BURST`] mbufs.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BURST
    }

    /// Free slots left.
    #[inline]
    pub fn spare(&self) -> usize {
        BURST - self.len
    }

    /// Adds an mbuf at the end; gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.is_full() {
            return Err(m);
        }
        self.slots[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        // SAFETY: slots[len] was a valid owned mbuf; it left the burst, so ownership moves out.
        Some(unsafe { Mbuf::from_raw(self.slots[self.len]) })
    }

    /// The mbufs held, in order.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over a non-null mbuf pointer and slots[..len] are
        // valid non-null owned mbufs, so they can be viewed as Mbufs borrowed from the burst.
        unsafe { std::slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// The mbufs held, in order, mutably (to rewrite packets in place).
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice; &mut self makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Moves every mbuf out, in order, leaving the burst empty. Mbufs the iterator does not
    /// yield (it is dropped early) are freed.
    #[inline]
    pub fn drain(&mut self) -> Drain<'_> {
        let end = self.len;
        self.len = 0;
        Drain {
            burst: self,
            pos: 0,
            end,
        }
    }

    /// Frees every mbuf held.
    #[inline]
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: slots[..len] are owned mbufs; after freeing them the burst is emptied,
            // so nothing refers to them.
            unsafe { sys::shim_pktmbuf_free_bulk(self.slots.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// Fills `n` more slots with fresh mbufs from `pool`, all or none (`PoolExhausted`).
    pub fn alloc_from(&mut self, pool: &Mempool, n: usize) -> Result<(), DpdkError> {
        if n > self.spare() {
            return Err(DpdkError::InvalidArgument(format!(
                "cannot add {n} mbufs to a burst with {} free slots",
                self.spare()
            )));
        }
        // SAFETY: slots[len..len+n] is free scratch space; rte_pktmbuf_alloc_bulk fills all n
        // with fresh mbufs on success (returns 0) and none on failure.
        let ret = unsafe {
            sys::shim_pktmbuf_alloc_bulk(
                pool.as_ptr(),
                self.slots.as_mut_ptr().add(self.len),
                n as u32,
            )
        };
        if ret != 0 {
            return Err(DpdkError::PoolExhausted(pool.name().to_owned()));
        }
        self.len += n;
        Ok(())
    }

    /// The free tail of the array, for a DPDK call that writes up to `spare()` mbufs into it.
    #[inline]
    pub(crate) fn spare_ptr(&mut self) -> *mut *mut sys::rte_mbuf {
        // SAFETY: len <= BURST, so the pointer is within (or one past) the array.
        unsafe { self.slots.as_mut_ptr().add(self.len) }
    }

    /// Records that a DPDK call wrote `n` valid owned mbufs at [`MbufBurst::spare_ptr`].
    ///
    /// # Safety
    /// `n <= spare()` and those slots now hold valid mbufs owned by nobody else.
    #[inline]
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.spare());
        self.len += n;
    }

    /// The held mbufs as a pointer array, for a DPDK call that takes ownership of a prefix.
    #[inline]
    pub(crate) fn as_mut_ptr(&mut self) -> *mut *mut sys::rte_mbuf {
        self.slots.as_mut_ptr()
    }

    /// Forgets the first `n` mbufs (DPDK took them) and moves the rest to the front.
    ///
    /// # Safety
    /// `n <= len()` and ownership of the first `n` mbufs has passed elsewhere.
    #[inline]
    pub(crate) unsafe fn consume_front(&mut self, n: usize) {
        debug_assert!(n <= self.len);
        if n < self.len {
            self.slots.copy_within(n..self.len, 0);
        }
        self.len -= n;
    }
}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        self.clear();
    }
}

impl std::fmt::Debug for MbufBurst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Iterator moving the mbufs out of a burst ([`MbufBurst::drain`]).
pub struct Drain<'a> {
    burst: &'a mut MbufBurst,
    pos: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.pos == self.end {
            return None;
        }
        let p = self.burst.slots[self.pos];
        self.pos += 1;
        // SAFETY: slots[pos] was an owned mbuf not yet yielded; the burst's len is already 0,
        // so ownership moves to the returned Mbuf alone.
        Some(unsafe { Mbuf::from_raw(p) })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.pos;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Drain<'_> {}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        let rest = self.end - self.pos;
        if rest > 0 {
            // SAFETY: slots[pos..end] are owned mbufs that were never yielded and are no
            // longer counted by the burst; freeing them here is their only release.
            unsafe {
                sys::shim_pktmbuf_free_bulk(
                    self.burst.slots.as_mut_ptr().add(self.pos),
                    rest as u32,
                )
            };
        }
    }
}
