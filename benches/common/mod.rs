//! What the benchmarks share: compiling the C reference programs and timing one command.
// Each bench uses some of these, and each is compiled on its own.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Compiles a static C program; the benches need `cc` with a static libc.
pub fn cc(dir: &Path, name: &str, source: &str) -> PathBuf {
    cc_with(dir, name, source, &[])
}

/// `cc`, with more flags for the compiler.
pub fn cc_with(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    let out = dir.join(name);
    std::fs::write(&src, source).expect("write C");
    let ok = Command::new("cc")
        .args(["-O2", "-static"])
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "this bench needs a C compiler with static libc (cc -static)");
    out
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs one command to completion with no input or output, and returns its wall time; it must
/// exit with `want`. With `env` (a HOME and a PATH), those are its whole environment.
pub fn timed(program: &Path, args: &[&str], env: Option<(&Path, &str)>, want: i32) -> Duration {
    let mut command = Command::new(program);
    if let Some((home, path)) = env {
        command.env_clear().env("HOME", home).env("PATH", path);
    }
    let start = Instant::now();
    let status =
        command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().expect("spawn");
    let took = start.elapsed();
    assert_eq!(status.code(), Some(want), "{program:?} {args:?}");
    took
}
