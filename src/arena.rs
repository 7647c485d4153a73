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
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
mod dl;

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
