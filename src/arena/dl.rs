//! The allocator behind the arena under musl: one dlmalloc heap behind a spin lock, with blocks
//! of 256 KiB and more mapped on their own, as glibc's malloc maps them.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// One dlmalloc heap behind a spin lock: dlmalloc's own global lock is a pthread mutex,
/// which under musl cost an eighth of a compiling call. Every critical section is one
/// dlmalloc call, short and free of panics. A child forked while another thread held the
/// lock would wait forever at its first allocation: the only code run between fork and exec
/// (`exec::prepare_custodied_child`, the sandbox's init, which forks single-threaded)
/// allocates nothing.
pub struct Dl {
    locked: AtomicBool,
    heap: UnsafeCell<dlmalloc::Dlmalloc>,
}

// SAFETY: the heap is only reached with `locked` held (`with`), by one thread at a time.
#[allow(unsafe_code)]
unsafe impl Sync for Dl {}

impl Dl {
    pub const fn new() -> Self {
        Self { locked: AtomicBool::new(false), heap: UnsafeCell::new(dlmalloc::Dlmalloc::new()) }
    }

    fn with<R>(&self, f: impl FnOnce(&mut dlmalloc::Dlmalloc) -> R) -> R {
        let mut spins = 0u32;
        while self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            // A holder that was preempted: let it run instead of spinning out a time slice.
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: `locked` is held, so no other reference to the heap exists.
        #[allow(unsafe_code)]
        let out = f(unsafe { &mut *self.heap.get() });
        self.locked.store(false, Ordering::Release);
        out
    }
}

/// Blocks this large get mappings of their own, as glibc's malloc does: dlmalloc carves
/// every block from its segments, so the buffers a compiling call grows and drops (the
/// policy text, the cache entry, the rule lists) stayed mapped, and its peak memory was a
/// quarter higher than under glibc. A mapping is also grown in place or moved by the kernel
/// (`mremap`), not copied. Which allocator owns a block follows from its layout alone, so
/// `dealloc` and `realloc` find it again.
const LARGE: usize = 256 << 10;
const PAGE: usize = 4096;

fn mapped(size: usize, align: usize) -> bool {
    size >= LARGE && align <= PAGE
}

fn pages(size: usize) -> usize {
    size.next_multiple_of(PAGE)
}

// SAFETY: a block of a mapped layout is a fresh anonymous mapping of at least its size,
// page-aligned (so aligned to any `align <= PAGE`) and zeroed, returned whole to munmap;
// every other block is dlmalloc's, the caller's layout passed on unchanged. `mapped` is a
// function of the layout only, so a block always returns to the allocator it came from.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Dl {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(layout.size(), layout.align()) {
            return map(layout.size());
        }
        // SAFETY: as above.
        self.with(|h| unsafe { h.malloc(layout.size(), layout.align()) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(layout.size(), layout.align()) {
            return map(layout.size());
        }
        // SAFETY: as above.
        self.with(|h| unsafe { h.calloc(layout.size(), layout.align()) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(layout.size(), layout.align()) {
            // SAFETY: `ptr` is a mapping `map` made for this size.
            unsafe { nix::libc::munmap(ptr.cast(), pages(layout.size())) };
            return;
        }
        // SAFETY: as above.
        self.with(|h| unsafe { h.free(ptr, layout.size(), layout.align()) })
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (mapped(layout.size(), layout.align()), mapped(new_size, layout.align())) {
            (false, false) => {
                // SAFETY: as above.
                self.with(|h| unsafe { h.realloc(ptr, layout.size(), layout.align(), new_size) })
            }
            (true, true) => {
                // SAFETY: `ptr` is a mapping `map` made for the old size.
                let p = unsafe {
                    nix::libc::mremap(ptr.cast(), pages(layout.size()), pages(new_size), nix::libc::MREMAP_MAYMOVE)
                };
                if p == nix::libc::MAP_FAILED { std::ptr::null_mut() } else { p.cast() }
            }
            _ => {
                // Crossing the threshold: a block of the other allocator, then a copy.
                // SAFETY: `new_size` is non-zero and valid with this alignment (the caller's
                // contract); the copy stays within both blocks; the old block is freed once.
                unsafe {
                    let new = Layout::from_size_align_unchecked(new_size, layout.align());
                    let grown = self.alloc(new);
                    if !grown.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, grown, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    grown
                }
            }
        }
    }
}

/// A fresh zeroed mapping of at least `size` bytes, or null.
fn map(size: usize) -> *mut u8 {
    use nix::libc::{MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_READ, PROT_WRITE, mmap};
    // SAFETY: a new anonymous mapping at an address of the kernel's choosing touches no
    // existing memory.
    #[allow(unsafe_code)]
    let p =
        unsafe { mmap(std::ptr::null_mut(), pages(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) };
    if p == MAP_FAILED { std::ptr::null_mut() } else { p.cast() }
}

#[cfg(test)]
mod tests {
    use super::{Dl, LARGE};
    use std::alloc::{GlobalAlloc, Layout};

    /// Blocks of every kind (dlmalloc's, mapped, over-aligned) are written, grown and
    /// shrunk across the mapping threshold both ways, and keep their bytes throughout.
    #[test]
    #[allow(unsafe_code)]
    fn blocks_keep_their_bytes_across_the_mapping_threshold() {
        let heap = Dl::new();
        let sizes = [1, 24, 4000, LARGE - 1, LARGE, LARGE + 1, 3 * LARGE];
        for &align in &[8usize, 16, 64, 4096, 8192] {
            for &from in &sizes {
                for &to in &sizes {
                    let layout = Layout::from_size_align(from, align).expect("layout");
                    // SAFETY: every block is used within its size and freed once, with the
                    // layout it has at that point.
                    unsafe {
                        let p = if from % 2 == 0 { heap.alloc_zeroed(layout) } else { heap.alloc(layout) };
                        assert!(!p.is_null() && (p as usize).is_multiple_of(align), "{from} at {align}");
                        if from % 2 == 0 {
                            assert!((0..from).all(|i| *p.add(i) == 0), "zeroed: {from}");
                        }
                        for i in 0..from {
                            *p.add(i) = (i % 251) as u8;
                        }
                        let q = heap.realloc(p, layout, to);
                        assert!(!q.is_null() && (q as usize).is_multiple_of(align), "{from} -> {to} at {align}");
                        assert!((0..from.min(to)).all(|i| *q.add(i) == (i % 251) as u8), "{from} -> {to} at {align}");
                        *q.add(to - 1) = 7;
                        heap.dealloc(q, Layout::from_size_align(to, align).expect("layout"));
                    }
                }
            }
        }
    }
}
