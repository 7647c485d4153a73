//! The allow path's cost: what a shim adds to every allowed command. Run with
//! `cargo bench --bench allow_path` (BENCHMARKS.md has the figures).
//!
//! Variants are run interleaved, round by round, so machine noise lands on all of them alike:
//! the real tool run directly; an exec-only wrapper (`/usr/bin/env /path/to/TOOL`, the floor for
//! any shim: one more exec); `kubectl get pods` through the guardsh shim with the shipped
//! `rules.toml.example`, with 1,000 and with 10,000 rules; and a denied `kubectl delete ns prod`.
//! The real "kubectl" is /bin/true. Also reports the shim's peak RSS (getrusage of the child).
//! Approve-to-exec latency has its own benchmark, `approve_latency`.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 400;

struct World {
    _root: tempfile::TempDir,
    home: PathBuf,
    shims: PathBuf,
    real: PathBuf,
}

/// A HOME whose policy is the shipped one plus `extra` generated rules.
fn world(extra: usize) -> World {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path().to_path_buf();
    let (home, shims, real) = (r.join("home"), r.join("shims"), r.join("real"));
    for d in [home.join(".config/guardsh"), shims.clone(), real.clone()] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let mut policy = include_str!("../rules.toml.example").to_string();
    // Rules for kubectl itself, so that the invoked tool's own rule list is what grows.
    for i in 0..extra {
        policy.push_str(&format!(
            "\n[[rule]]\nid = \"gen-{i}\"\ntool = \"kubectl\"\naction = \"ask\"\nreason = \"generated\"\nargs = [\"gen-verb-{i}\", \"*\"]\n"
        ));
    }
    std::fs::write(home.join(".config/guardsh/rules.toml"), policy).expect("policy");
    symlink(env!("CARGO_BIN_EXE_guardsh"), shims.join("kubectl")).expect("shim");
    symlink("/bin/true", real.join("kubectl")).expect("real tool");
    World { _root: root, home, shims, real }
}

/// Runs one command to completion; returns its wall time and the child's peak RSS in KiB.
fn run(w: &World, program: &Path, args: &[&str], want: i32) -> (Duration, i64) {
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .env_clear()
        .env("HOME", &w.home)
        .env("PATH", format!("{}:{}:/usr/bin:/bin", w.shims.display(), w.real.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    let took = start.elapsed();
    assert_eq!(status.code(), Some(want), "{program:?} {args:?}");
    (took, peak_rss_kib())
}

/// Largest RSS of any waited-for child so far (Linux reports it in KiB).
fn peak_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).map_or(0, |u| u.max_rss())
}

struct Variant {
    name: &'static str,
    samples: Vec<Duration>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let shipped = world(0);
    let thousand = world(1_000);
    let ten_thousand = world(10_000);
    let kubectl = |w: &World| w.shims.join("kubectl");
    let direct = shipped.real.join("kubectl");
    let env = PathBuf::from("/usr/bin/env");
    let direct_str = direct.to_str().expect("a UTF-8 temporary path");

    let mut variants: Vec<Variant> = [
        "direct (the real tool)",
        "exec-only wrapper (env TOOL)",
        "guardsh allow, shipped rules",
        "guardsh allow, +1,000 rules",
        "guardsh allow, +10,000 rules",
        "guardsh deny, shipped rules",
    ]
    .into_iter()
    .map(|name| Variant { name, samples: Vec::with_capacity(ROUNDS) })
    .collect();

    // Peak RSS: getrusage reports the largest child so far, so the smaller policy goes first.
    let rss_shipped = run(&shipped, &kubectl(&shipped), &["get", "pods"], 0).1;
    let rss_large = run(&ten_thousand, &kubectl(&ten_thousand), &["get", "pods"], 0).1;
    // Warm the page cache and check every variant does what it should.
    for _ in 0..20 {
        run(&shipped, &kubectl(&shipped), &["get", "pods"], 0);
    }
    for _ in 0..ROUNDS {
        variants[0].samples.push(run(&shipped, &direct, &["get", "pods"], 0).0);
        variants[1].samples.push(run(&shipped, &env, &[direct_str, "get", "pods"], 0).0);
        variants[2].samples.push(run(&shipped, &kubectl(&shipped), &["get", "pods"], 0).0);
        variants[3].samples.push(run(&thousand, &kubectl(&thousand), &["get", "pods"], 0).0);
        variants[4].samples.push(run(&ten_thousand, &kubectl(&ten_thousand), &["get", "pods"], 0).0);
        variants[5].samples.push(run(&shipped, &kubectl(&shipped), &["delete", "ns", "prod"], 77).0);
    }

    let median = |v: &mut Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() * 9 / 10], v[v.len() - 1])
    };
    let floor = median(&mut variants[0].samples.clone()).0;
    println!("{ROUNDS} rounds, variants interleaved; real tool = /bin/true");
    println!("{:<32} {:>9} {:>9} {:>9} {:>11} {:>7}", "variant", "median", "p90", "max", "added", "ratio");
    for v in &mut variants {
        let (m, p90, max) = median(&mut v.samples);
        println!(
            "{:<32} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>+9.2}ms {:>6.1}x",
            v.name,
            ms(m),
            ms(p90),
            ms(max),
            ms(m) - ms(floor),
            m.as_secs_f64() / floor.as_secs_f64()
        );
    }
    println!(
        "peak RSS of the shim: {:.1} MiB with the shipped rules, {:.1} MiB with 10,000 more",
        rss_shipped as f64 / 1024.0,
        rss_large as f64 / 1024.0
    );
}
