//! Memory helpers for the per-packet path: cache prefetch, and large tables backed by
//! transparent huge pages.
//!
//! Not DPDK calls, but raw memory work: it lives here because this module is where the
//! project's `unsafe` is allowed, each block with its `// SAFETY:` argument.
//!
//! Why huge pages: a random lookup in a table of a million connections touches a new 4 KiB
//! page almost every time, so besides the cache miss it pays a TLB miss and a page walk
//! (doubly expensive under KVM's nested paging). With 2 MiB pages a 100 MB table needs 50
//! TLB entries. This kernel has THP in `madvise` mode: memory gets huge pages only where the
//! program asks for them with `madvise(MADV_HUGEPAGE)` *before* first touching it, which is
//! what [`HugeArray::new`] does.

use std::alloc::Layout;
use std::ptr::NonNull;

/// Size of an x86-64 transparent huge page.
pub const HUGE_PAGE: usize = 2 << 20;

/// Size of a cache line.
pub const CACHE_LINE: usize = 64;

/// Starts loading the cache line holding the start of `r` into all cache levels.
/// A hint: it never faults and changes no state visible to the program.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    prefetch_addr((r as *const T).cast::<u8>());
}

/// Like [`prefetch`], for every cache line `r` spans (one for a line-aligned value of at
/// most 64 bytes, two for one that straddles a line boundary).
#[inline(always)]
pub fn prefetch_all<T>(r: &T) {
    let first = (r as *const T).cast::<u8>();
    prefetch_addr(first);
    let last = first.wrapping_add(std::mem::size_of::<T>().saturating_sub(1));
    if (first as usize) / 64 != (last as usize) / 64 {
        prefetch_addr(last);
    }
}

/// Starts loading the cache line holding address `p` (any address: a prefetch never faults).
#[inline(always)]
pub(crate) fn prefetch_addr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it reads nothing into the program, never faults (not
    // even on an invalid address) and SSE is part of the x86-64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// A fixed-length array for big per-worker tables: allocated once, aligned to 2 MiB and
/// advised for transparent huge pages when it is at least one huge page large, filled with
/// one value. Dereferences to a slice. Never grows.
pub struct HugeArray<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    /// The allocation's layout (`None`: nothing allocated: empty or zero-sized `T`).
    layout: Option<Layout>,
    huge: bool,
}

// SAFETY: HugeArray owns its elements like a Box<[T]>; sending or sharing it is sending or
// sharing the Ts.
unsafe impl<T: Copy + Send> Send for HugeArray<T> {}
// SAFETY: as above: &HugeArray only gives out &T.
unsafe impl<T: Copy + Sync> Sync for HugeArray<T> {}

impl<T: Copy> HugeArray<T> {
    /// `len` copies of `fill`. Arrays of at least [`HUGE_PAGE`] bytes are 2 MiB aligned,
    /// rounded up to whole huge pages and advised `MADV_HUGEPAGE` before they are written;
    /// smaller ones are cache-line aligned. Where the kernel gives no huge pages the array
    /// works the same on 4 KiB pages.
    ///
    /// # Panics
    /// If the size overflows `isize` (configuration, not input); aborts like `Vec` if the
    /// allocation fails.
    pub fn new(len: usize, fill: T) -> Self {
        let bytes = len
            .checked_mul(std::mem::size_of::<T>())
            .filter(|&b| b <= isize::MAX as usize - HUGE_PAGE)
            .expect("HugeArray size overflows");
        if bytes == 0 {
            return HugeArray {
                ptr: NonNull::dangling(),
                len,
                layout: None,
                huge: false,
            };
        }
        let huge = bytes >= HUGE_PAGE;
        let (size, align) = if huge {
            (bytes.next_multiple_of(HUGE_PAGE), HUGE_PAGE)
        } else {
            (bytes, std::mem::align_of::<T>().max(CACHE_LINE))
        };
        let layout = Layout::from_size_align(size, align).expect("HugeArray layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(base) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout);
        };
        if huge {
            // SAFETY: [raw, raw + size) is our own fresh allocation, 2 MiB aligned; the advice
            // only changes how the kernel backs it. An error (THP disabled) leaves 4 KiB pages.
            unsafe {
                libc::madvise(raw.cast::<libc::c_void>(), size, libc::MADV_HUGEPAGE);
            }
        }
        let ptr = base.cast::<T>();
        for i in 0..len {
            // SAFETY: i < len, so the write is inside the allocation, which is aligned for T.
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        HugeArray {
            ptr,
            len,
            layout: Some(layout),
            huge,
        }
    }

    /// Bytes allocated (a huge-page array is rounded up to whole huge pages).
    pub fn allocated_bytes(&self) -> usize {
        self.layout.map_or(0, |l| l.size())
    }

    /// Whether the array was aligned and advised for huge pages (big enough for one).
    pub fn is_huge(&self) -> bool {
        self.huge
    }
}

impl<T: Copy> std::ops::Deref for HugeArray<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: ptr points to len initialised Ts (or is dangling with a zero-byte array).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> std::ops::DerefMut for HugeArray<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref; &mut self makes the borrow exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeArray<T> {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: allocated in `new` with exactly this layout; T is Copy (no drop glue).
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast::<u8>(), layout) };
        }
    }
}

impl<T: Copy> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HugeArray")
            .field("len", &self.len)
            .field("bytes", &self.allocated_bytes())
            .field("huge", &self.huge)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_array_is_filled_and_line_aligned() {
        let mut a = HugeArray::new(100, 7u32);
        assert_eq!(a.len(), 100);
        assert!(a.iter().all(|&x| x == 7));
        assert_eq!(a.as_ptr() as usize % CACHE_LINE, 0);
        assert!(!a.is_huge());
        a[99] = 3;
        assert_eq!(a[99], 3);
        assert_eq!(a.allocated_bytes(), 400);
    }

    #[test]
    fn big_array_is_huge_page_aligned_and_rounded() {
        let n = HUGE_PAGE / 8 + 1;
        let a = HugeArray::new(n, u64::MAX);
        assert!(a.is_huge());
        assert_eq!(a.as_ptr() as usize % HUGE_PAGE, 0);
        assert_eq!(a.allocated_bytes(), 2 * HUGE_PAGE);
        assert_eq!(a.len(), n);
        assert!(a.iter().all(|&x| x == u64::MAX));
    }

    #[test]
    fn empty_and_zero_sized() {
        let a: HugeArray<u64> = HugeArray::new(0, 1);
        assert!(a.is_empty());
        assert_eq!(a.allocated_bytes(), 0);
        let z = HugeArray::new(5, ());
        assert_eq!(z.len(), 5);
    }

    #[test]
    fn prefetch_of_any_value_is_harmless() {
        let v = [1u8; 200];
        prefetch(&v);
        prefetch_all(&v);
        prefetch(&v[199]);
        assert_eq!(v[0], 1);
    }
}
