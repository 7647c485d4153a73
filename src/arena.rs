//! The process's memory allocator: the system's, except in a shim call, where memory is handed
//! out from one static arena by moving a pointer forward and is never given back.
//!
//! A shim call lives for about a millisecond and then execs the real tool, which discards all of
//! its memory at once; freeing piece by piece is wasted work. Before the arena, malloc, realloc
//! and free were about a third of a cached call's instructions (callgrind: the policy entry's
//! strings, the environment, the audit record). The arena is in `.bss`, so only the pages a call
//! touches cost anything, and a call that outgrows it (a compiling call with a very large
//! policy, a large piped SQL script) continues with the system allocator. Every other
//! personality (`guardsh` itself, `guardsh run` and its broker, which live long) never turns
//! it on.

use std::alloc::{GlobalAlloc, Layout};

/// The allocator behind the arena. glibc's malloc where guardsh links glibc. Under musl (the
/// static build, install.sh) dlmalloc, the allocator Rust's own standard library uses on
/// WebAssembly: musl's malloc maps and unmaps memory at nearly every size class it fills and
/// empties (a compiling call with 10,000 rules made 1,242 `mmap` and 762 `munmap` calls and
/// took 9,200 page faults, against glibc's handful), which made that call twice as slow.
#[cfg(target_env = "musl")]
static FALLBACK: dl::Dl = dl::Dl::new();
#[cfg(not(target_env = "musl"))]
static FALLBACK: std::alloc::System = std::alloc::System;

/// Built everywhere, so the tests under glibc check it too; the allocator only under musl.
#[cfg_attr(not(target_env = "musl"), allow(dead_code))]
mod dl {
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
        let p = unsafe {
            mmap(std::ptr::null_mut(), pages(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        };
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
                            assert!(
                                (0..from.min(to)).all(|i| *q.add(i) == (i % 251) as u8),
                                "{from} -> {to} at {align}"
                            );
                            *q.add(to - 1) = 7;
                            heap.dealloc(q, Layout::from_size_align(to, align).expect("layout"));
                        }
                    }
                }
            }
        }
    }
}
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Large enough for a cached call with a large policy (10,000 rules) many times over.
const SIZE: usize = 16 << 20;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; SIZE]>);

// SAFETY: the arena's bytes are only reached through pointers `bump` hands out, and each byte
// is handed out once (a compare-and-swap moves `NEXT` past it), so no two owners share one.
#[allow(unsafe_code)]
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; SIZE]));
/// Offset of the first byte not yet handed out. It only moves forward, so every byte handed out
/// is still zero, as `.bss` starts.
static NEXT: AtomicUsize = AtomicUsize::new(0);
static ON: AtomicBool = AtomicBool::new(false);

/// What a cached call allocates, with room to spare (88 KiB measured with the shipped policy).
const USUAL: usize = 128 << 10;

/// From now on, allocations come from the arena (`lib.rs` calls this for a shim call only).
/// The pages a call usually fills are made present first, in one system call, instead of one
/// page fault each as they are first written (`MADV_POPULATE_WRITE`, Linux 5.14; on an older
/// kernel the call fails and the faults happen as before).
pub fn use_for_this_call() {
    // SAFETY: the range is the start of the arena, page-aligned and inside it; populating only
    // makes its pages present, with the zeroes they already read as.
    #[allow(unsafe_code)]
    let _ = unsafe { nix::libc::madvise(start().cast(), USUAL, POPULATE_WRITE) };
    ON.store(true, Ordering::Relaxed);
}

const POPULATE_WRITE: nix::libc::c_int = 23;

/// Back to the system allocator for the rest of the call, for work that allocates and frees
/// far more than it keeps (compiling the whole policy on a cache miss), where an arena that
/// never reuses memory would only grow. What the arena handed out stays valid.
pub fn stop() {
    ON.store(false, Ordering::Relaxed);
}

pub struct Allocator;

fn start() -> *mut u8 {
    ARENA.0.get().cast::<u8>()
}

/// The arena offset of `ptr`, if the arena handed it out.
fn offset_of(ptr: *mut u8) -> Option<usize> {
    (ptr as usize).checked_sub(start() as usize).filter(|&o| o < SIZE)
}

/// Every block is aligned to at least this, as glibc's malloc aligns them: code in the wild
/// (nix's control-message buffers, for one) asks for bytes and reads `u64`s from them.
const MIN_ALIGN: usize = 16;

/// `layout.size()` fresh bytes aligned to `layout.align()` (and `MIN_ALIGN`), or `None` when
/// the arena is full.
fn bump(layout: Layout) -> Option<*mut u8> {
    let align = layout.align().max(MIN_ALIGN);
    let mut next = NEXT.load(Ordering::Relaxed);
    loop {
        let at = (start() as usize).checked_add(next)?.checked_next_multiple_of(align)? - start() as usize;
        let end = at.checked_add(layout.size()).filter(|&e| e <= SIZE)?;
        match NEXT.compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(start().wrapping_add(at)),
            Err(moved) => next = moved,
        }
    }
}

// SAFETY: every pointer returned is either the system allocator's, for a layout it was given,
// or a range of the arena of at least `layout.size()` bytes at `layout.align()`, handed out
// once. `dealloc` and `realloc` tell the two apart by address.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed)
            && let Some(p) = bump(layout)
        {
            return p;
        }
        // SAFETY: the caller's contract (a layout of non-zero size) is passed on unchanged.
        unsafe { FALLBACK.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed)
            && let Some(p) = bump(layout)
        {
            // Never handed out before, so still the zeroes `.bss` starts with.
            return p;
        }
        // SAFETY: as in `alloc`.
        unsafe { FALLBACK.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if offset_of(ptr).is_none() {
            // SAFETY: not the arena's, so the system allocator's, with this layout.
            unsafe { FALLBACK.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(at) = offset_of(ptr) else {
            // SAFETY: the system allocator's block, passed on with the caller's contract.
            return unsafe { FALLBACK.realloc(ptr, layout, new_size) };
        };
        if new_size <= layout.size() {
            return ptr;
        }
        // The last block handed out grows where it is (a string or vector being built).
        let end = at + layout.size();
        if at.checked_add(new_size).is_some_and(|e| e <= SIZE)
            && NEXT.compare_exchange(end, at + new_size, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return ptr;
        }
        // SAFETY: `new_size` is non-zero and, per the caller's contract, does not overflow
        // when rounded up to `layout.align()`, which is a valid alignment.
        let grown = unsafe { self.alloc(Layout::from_size_align_unchecked(new_size, layout.align())) };
        if !grown.is_null() {
            // SAFETY: both blocks are at least `layout.size()` long and distinct.
            unsafe { std::ptr::copy_nonoverlapping(ptr, grown, layout.size()) };
        }
        grown
    }
}
