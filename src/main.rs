//! The guardsh binary's entry point: everything lives in the library; see `guardsh::main`.
//!
//! Every shimmed command pays guardsh's start-up, so the binary skips Rust's: it asks glibc for
//! the main thread's stack bounds (which parses /proc/self/maps) and installs a stack-overflow
//! handler, about 50 µs per call (BENCHMARKS.md). What guardsh relies on from it is done in
//! `guardsh::startup`: descriptors 0-2 are open. argv still reaches `std::env::args_os`, which
//! glibc hands to std before `main`. Without the handler a stack overflow is a plain SIGSEGV;
//! either way nothing runs after it.
#![no_main]

use std::ffi::{c_char, c_int};
use std::process::ExitCode;

#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    guardsh::startup();
    let code = guardsh::main();
    // ExitCode does not reveal its number on stable Rust, but it compares; every code guardsh
    // returns is made from a u8. `process::exit` flushes stdout, as returning from main would.
    let status = (0..=u8::MAX).find(|&n| ExitCode::from(n) == code).map_or(1, c_int::from);
    std::process::exit(status)
}
