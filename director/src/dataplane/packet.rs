//! The packet buffer the pipeline works on: an mbuf in production, a plain byte vector in
//! in-memory tests. The pipeline only needs the frame's bytes and head/tail adjustments.

use crate::dpdk::{Mbuf, Mempool};

/// A frame buffer with headroom (for IPIP encapsulation and ICMP errors) and tailroom.
pub trait PacketBuf: Sized {
    /// Where new buffers come from (a mempool for mbufs).
    type Pool;
    /// A new empty buffer, or `None` when the pool is exhausted.
    fn alloc(pool: &Self::Pool) -> Option<Self>;
    /// The frame.
    fn data(&self) -> &[u8];
    /// The frame, writable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the frame at the front by `n` bytes (contents unspecified); false if no headroom.
    fn prepend(&mut self, n: usize) -> bool;
    /// Grows the frame at the end by `n` bytes (contents unspecified); false if no tailroom.
    fn append(&mut self, n: usize) -> bool;
    /// Cuts `n` bytes from the end; false if the frame is shorter.
    fn trim(&mut self, n: usize) -> bool;
    /// Frame length.
    fn len(&self) -> usize {
        self.data().len()
    }
    /// Whether the frame is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl PacketBuf for Mbuf {
    type Pool = Mempool;
    #[inline]
    fn alloc(pool: &Mempool) -> Option<Self> {
        Mbuf::alloc(pool)
    }
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        Mbuf::prepend(self, n).is_ok()
    }
    #[inline]
    fn append(&mut self, n: usize) -> bool {
        Mbuf::append(self, n).is_ok()
    }
    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        Mbuf::trim(self, n).is_ok()
    }
}

/// Headroom of a [`VecPacket`], as DPDK's RTE_PKTMBUF_HEADROOM.
pub const VEC_HEADROOM: usize = 128;
/// Buffer size of a [`VecPacket`] (headroom included), as a default mbuf's data room.
pub const VEC_BUF: usize = 2176;

/// An in-memory packet for tests and offline tools: a fixed buffer with headroom.
#[derive(Debug, Clone)]
pub struct VecPacket {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecPacket {
    /// A packet holding `frame` (panics never: frames longer than the buffer are cut).
    pub fn from_frame(frame: &[u8]) -> Self {
        let mut p = VecPacket {
            buf: vec![0; VEC_BUF],
            start: VEC_HEADROOM,
            end: VEC_HEADROOM,
        };
        let n = frame.len().min(VEC_BUF - VEC_HEADROOM);
        p.buf[VEC_HEADROOM..VEC_HEADROOM + n].copy_from_slice(&frame[..n]);
        p.end = VEC_HEADROOM + n;
        p
    }
}

impl PacketBuf for VecPacket {
    type Pool = ();
    fn alloc(_: &()) -> Option<Self> {
        Some(VecPacket::from_frame(&[]))
    }
    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn append(&mut self, n: usize) -> bool {
        if self.end + n > self.buf.len() {
            return false;
        }
        self.end += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
}
