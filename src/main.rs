//! The guardsh binary's entry point: everything lives in the library; see `guardsh::main`.
//!
//! Every shimmed command pays guardsh's start-up, so the binary skips Rust's: it asks glibc for
//! the main thread's stack bounds (which parses /proc/self/maps) and installs a stack-overflow
//! handler, about 50 µs per call (BENCHMARKS.md). What guardsh relies on from it is done in
//! `guardsh::startup`: descriptors 0-2 are open. argv is read here, from what the C start-up
//! passes `main`: `std::env::args_os` is filled by Rust's start-up except under glibc, and the
//! static build links musl (install.sh). Without the handler a stack overflow is a plain
//! SIGSEGV; either way nothing runs after it.
#![no_main]

use std::ffi::{CStr, c_char, c_int};
use std::process::ExitCode;

#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    guardsh::startup();
    let count = usize::try_from(argc).unwrap_or(0);
    // Borrowed, not copied: `guardsh::main` copies them once it has chosen the allocator.
    // SAFETY: the C start-up passes `argc` pointers to NUL-terminated strings, which live as long
    // as the process. A null entry (never seen) ends the list.
    let args = (0..count)
        .map(|i| unsafe { *argv.add(i) })
        .take_while(|p| !p.is_null())
        .map(|p| unsafe { CStr::from_ptr(p) }.to_bytes());
    let code = guardsh::main(args);
    // ExitCode does not reveal its number on stable Rust, but it compares; every code guardsh
    // returns is made from a u8. `process::exit` flushes stdout, as returning from main would.
    let status = (0..=u8::MAX).find(|&n| ExitCode::from(n) == code).map_or(1, c_int::from);
    std::process::exit(status)
}
