//! An owned packet buffer (`struct rte_mbuf`).

use std::ptr::NonNull;

use dpdk_sys as sys;

use super::{DpdkError, Mempool};

/// One owned packet buffer; dropping it returns it to its pool.
///
/// `#[repr(transparent)]` over the mbuf pointer, so a `[Mbuf]` has the layout of the
/// `struct rte_mbuf *[]` that DPDK's burst functions take. The data accessors cover the first
/// segment only: ports here are configured without scatter, so received mbufs have one segment
/// (see [`Mbuf::is_contiguous`]).
#[repr(transparent)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf is the unique owner of its buffer, and buffers may be freed on any thread
// (mempool ops are thread-safe), so moving it to another thread is sound.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes a buffer from `pool`, `None` if the pool is exhausted. The data is empty, with
    /// the pool's headroom in front.
    #[inline]
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid while `pool` lives; the result is NULL or a fresh
        // mbuf that nobody else references, which the Mbuf then owns.
        NonNull::new(unsafe { sys::shim_pktmbuf_alloc(pool.as_ptr()) }).map(Mbuf)
    }

    /// A buffer from `pool` holding a copy of `bytes`.
    pub fn from_bytes(pool: &Mempool, bytes: &[u8]) -> Result<Mbuf, DpdkError> {
        let mut m =
            Mbuf::alloc(pool).ok_or_else(|| DpdkError::PoolExhausted(pool.name().to_owned()))?;
        m.append(bytes.len())?.copy_from_slice(bytes);
        Ok(m)
    }

    #[inline]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: the pointer is valid and owned by self for self's lifetime.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn raw_mut(&mut self) -> &mut sys::rte_mbuf {
        // SAFETY: as in raw(), and &mut self guarantees exclusive access.
        unsafe { self.0.as_mut() }
    }

    /// Length of the data in the first segment (`data_len`); equals [`Mbuf::pkt_len`] for a
    /// single-segment packet.
    #[inline]
    pub fn len(&self) -> usize {
        self.raw().data_len as usize
    }

    /// Whether the first segment holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Length of the whole packet over all segments (`pkt_len`).
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// Whether the packet is one segment, so [`Mbuf::data`] is all of it.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// The packet bytes of the first segment.
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len is inside the mbuf's data buffer (an mbuf
        // invariant DPDK maintains), owned by self and not mutated while &self is borrowed.
        unsafe {
            std::slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// The packet bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.raw_mut();
        // SAFETY: as in data(); &mut self gives exclusive access to the buffer.
        unsafe {
            std::slice::from_raw_parts_mut(
                m.buf_addr.cast::<u8>().add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// Free bytes in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.raw().data_off as usize
    }

    /// Free bytes after the data of the first segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        (m.buf_len as usize).saturating_sub(m.data_off as usize + m.data_len as usize)
    }

    /// Grows the packet by `n` bytes at the front (e.g. an outer header) and returns those
    /// bytes (their content is whatever the buffer held). Fails if the headroom is too small.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], DpdkError> {
        let available = self.headroom();
        let len = u16::try_from(n).map_err(|_| no_room(n, available))?;
        // SAFETY: the mbuf is valid and exclusively ours; rte_pktmbuf_prepend returns NULL
        // (changing nothing) if the headroom is short, else the new start of the data, with
        // `n` bytes inside the buffer.
        let p = unsafe { sys::shim_pktmbuf_prepend(self.0.as_ptr(), len) };
        if p.is_null() {
            return Err(no_room(n, available));
        }
        // SAFETY: p .. p+n is the newly exposed front of the data, inside the buffer.
        Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Removes `n` bytes from the front of the packet (e.g. a decapsulated header).
    #[inline]
    pub fn adj(&mut self, n: usize) -> Result<(), DpdkError> {
        let available = self.len();
        let len = u16::try_from(n).map_err(|_| no_room(n, available))?;
        // SAFETY: the mbuf is valid and exclusively ours; rte_pktmbuf_adj returns NULL
        // (changing nothing) if the first segment holds fewer than `n` bytes.
        let p = unsafe { sys::shim_pktmbuf_adj(self.0.as_ptr(), len) };
        if p.is_null() {
            return Err(no_room(n, available));
        }
        Ok(())
    }

    /// Grows the packet by `n` bytes at the end and returns those bytes (content
    /// unspecified). Fails if the tailroom of the last segment is too small.
    #[inline]
    pub fn append(&mut self, n: usize) -> Result<&mut [u8], DpdkError> {
        let available = self.tailroom();
        let len = u16::try_from(n).map_err(|_| no_room(n, available))?;
        // SAFETY: the mbuf is valid and exclusively ours; rte_pktmbuf_append returns NULL
        // (changing nothing) if the last segment's tailroom is short, else a pointer to the
        // `n` appended bytes inside that segment's buffer.
        let p = unsafe { sys::shim_pktmbuf_append(self.0.as_ptr(), len) };
        if p.is_null() {
            return Err(no_room(n, available));
        }
        // SAFETY: p .. p+n lies inside the last segment's buffer, owned by self.
        Ok(unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), n) })
    }

    /// Removes `n` bytes from the end of the packet.
    #[inline]
    pub fn trim(&mut self, n: usize) -> Result<(), DpdkError> {
        let available = self.len();
        let len = u16::try_from(n).map_err(|_| no_room(n, available))?;
        // SAFETY: the mbuf is valid and exclusively ours; rte_pktmbuf_trim returns -1
        // (changing nothing) if the last segment holds fewer than `n` bytes.
        let ret = unsafe { sys::shim_pktmbuf_trim(self.0.as_ptr(), len) };
        if ret != 0 {
            return Err(no_room(n, available));
        }
        Ok(())
    }

    /// The RSS hash the NIC computed (meaningful when RSS is enabled on the input port).
    #[inline]
    pub fn rss_hash(&self) -> u32 {
        // SAFETY: every variant of the hash union is plain integers; reading rss is valid.
        unsafe { self.raw().__bindgen_anon_2.hash.rss }
    }

    /// The port the packet was received on.
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Sets the port field (e.g. for packets built locally).
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        self.raw_mut().port = port;
    }

    /// Offload flags (`RTE_MBUF_F_*`).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// Sets the offload flags (`RTE_MBUF_F_TX_*` requests for the output port).
    #[inline]
    pub fn set_ol_flags(&mut self, flags: u64) {
        self.raw_mut().ol_flags = flags;
    }

    /// Prefetches the mbuf's own first cache line (lengths, data offset, buffer address): an
    /// mbuf filled by another core or the NIC is a miss on first touch.
    #[inline]
    pub fn prefetch_header(&self) {
        crate::dpdk::mem::prefetch(self.raw());
    }

    /// Prefetches the first cache line of the packet data (do it a few packets ahead).
    #[inline]
    pub fn prefetch(&self) {
        let m = self.raw();
        // Inline (DPDK's rte_prefetch0 is a static inline function; through the C shim it was
        // a call per packet). The address is only computed, never dereferenced, so
        // `wrapping_add` keeps this safe whatever the header says.
        crate::dpdk::mem::prefetch_addr(m.buf_addr.cast::<u8>().wrapping_add(m.data_off as usize))
    }

    /// The raw pointer, still owned by self.
    #[inline]
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }

    /// Gives up ownership: the caller must pass the pointer to [`Mbuf::from_raw`] or to DPDK
    /// (which frees or transmits it), or the buffer leaks.
    #[inline]
    pub fn into_raw(self) -> *mut sys::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `raw` must be a valid, non-null mbuf pointer that nothing else owns or uses afterwards
    /// (e.g. one from [`Mbuf::into_raw`] or returned by an rx burst), with a single reference.
    #[inline]
    pub unsafe fn from_raw(raw: *mut sys::rte_mbuf) -> Mbuf {
        debug_assert!(!raw.is_null());
        // SAFETY: the caller guarantees raw is non-null.
        Mbuf(unsafe { NonNull::new_unchecked(raw) })
    }
}

fn no_room(requested: usize, available: usize) -> DpdkError {
    DpdkError::NoRoom {
        requested,
        available,
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf; after this call nothing refers to it.
        unsafe { sys::shim_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("pkt_len", &self.pkt_len())
            .field("port", &self.port())
            .field("headroom", &self.headroom())
            .finish()
    }
}
