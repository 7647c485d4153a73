//! The allow path's cost: what a shim adds to every allowed command. Run with
//! `cargo bench --bench allow_path` (BENCHMARKS.md has the figures).
//!
//! Variants are run interleaved, round by round, so machine noise lands on all of them alike:
//! the real tool run directly; a minimal C execve wrapper in front of it (one more exec: the
//! reference the ratios are taken to); the same wrapper without the C library's start-up (the
//! physical floor of one more exec: glibc's start-up is most of the first one's cost, see
//! BENCHMARKS.md); `kubectl get pods` through the guardsh shim with the shipped
//! `rules.toml.example` (and the built-in pack), with 1,000 and with 10,000 more rules; and a
//! denied `kubectl delete ns prod`. The real "kubectl" is a static C `int main(){return 0;}`,
//! and the wrappers static C, all compiled here with `cc`. Every figure is also given as a ratio
//! of what it adds over the direct exec to what the wrapper adds, in the same run. Then the
//! compiling call (no cache entry) with 10,000 more rules, and each call's peak RSS (getrusage
//! of the child). Approve-to-exec latency has its own benchmark, `approve_latency`.
//!
//! guardsh is measured as `install.sh` builds it (static against musl, not position-independent;
//! built here the same way into `target/static` the first time, which takes a few minutes), as
//! install.sh builds it without Rust's musl target (static against glibc), and as `cargo build`
//! builds it (dynamically linked), so the difference linking makes is on the same page.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const ROUNDS: usize = 400;

struct World {
    _root: tempfile::TempDir,
    home: PathBuf,
    shims: PathBuf,
    real: PathBuf,
}

/// Builds guardsh statically as install.sh does, against musl or glibc; `None` (and a note)
/// where that cannot be done.
fn static_build(musl: bool) -> Option<PathBuf> {
    const MUSL: &str = "x86_64-unknown-linux-musl";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["rustc", "--release", "--locked", "--quiet", "--bin", "guardsh"]);
    command.args(["--target-dir", "target/static"]);
    if musl {
        eprintln!("building guardsh as install.sh does (against musl, static relocations) into target/static");
        command.args(["--target", MUSL]).env("CC_x86_64_unknown_linux_musl", "cc").args(["--"]);
    } else {
        eprintln!("building guardsh as install.sh does without musl (+crt-static) into target/static");
        command.args(["--", "-C", "target-feature=+crt-static"]);
    }
    let built = command
        .args(["-C", "relocation-model=static"])
        .arg(format!("-Clinker={}", root.join("build/link-shim-path-first.sh").display()))
        .status()
        .is_ok_and(|s| s.success());
    let path = if musl {
        root.join("target/static").join(MUSL).join("release/guardsh")
    } else {
        root.join("target/static/release/guardsh")
    };
    if !built {
        eprintln!(
            "NOTE: no static build {} on this machine",
            if musl { "against musl (rustup target add x86_64-unknown-linux-musl)" } else { "against glibc" }
        );
    }
    built.then_some(path)
}

/// A HOME whose policy is the shipped one plus `extra` generated rules, with a `kubectl` shim
/// that is `guardsh`.
fn world(extra: usize, guardsh: &Path, tool: &Path) -> World {
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
    symlink(guardsh, shims.join("kubectl")).expect("shim");
    symlink(tool, real.join("kubectl")).expect("real tool");
    World { _root: root, home, shims, real }
}

/// Runs one command to completion; returns its wall time and the peak RSS in KiB of the
/// largest child waited for so far (see `rss_of` for one call's).
fn run(w: &World, program: &Path, args: &[&str], want: i32) -> (Duration, i64) {
    let path = format!("{}:{}:/usr/bin:/bin", w.shims.display(), w.real.display());
    (common::timed(program, args, Some((&w.home, &path)), want), peak_rss_kib())
}

/// Largest RSS of any waited-for child so far (Linux reports it in KiB).
fn peak_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).map_or(0, |u| u.max_rss())
}

struct Variant {
    name: &'static str,
    samples: Vec<Duration>,
}

/// The peak RSS of one shim call: getrusage only reports the largest child so far, so this
/// bench runs itself as a helper (`--rss`) whose only child is that call.
fn rss_of(w: &World) -> f64 {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .args([
            "--rss",
            w.home.to_str().expect("UTF-8"),
            w.shims.to_str().expect("UTF-8"),
            w.real.to_str().expect("UTF-8"),
        ])
        .output()
        .expect("helper");
    String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().expect("helper prints KiB") / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, home, shims, real] = &args[..]
        && flag == "--rss"
    {
        let w = World {
            _root: tempfile::tempdir().expect("tempdir"),
            home: home.into(),
            shims: shims.into(),
            real: real.into(),
        };
        println!("{}", run(&w, &w.shims.join("kubectl"), &["get", "pods"], 0).1);
        return;
    }
    let dynamic = PathBuf::from(env!("CARGO_BIN_EXE_guardsh"));
    let glibc_bin = static_build(false).unwrap_or_else(|| dynamic.clone());
    let shipped_bin = static_build(true).unwrap_or_else(|| glibc_bin.clone());
    let c = tempfile::tempdir().expect("tempdir");
    let tool = common::cc(c.path(), "tool", "int main(void) { return 0; }\n");
    let wrapper = common::cc(
        c.path(),
        "wrapper",
        "#include <unistd.h>\nextern char **environ;\nint main(int c, char **v) { (void)c; execve(v[1], v + 1, environ); return 127; }\n",
    );
    // No C library at all: the process starts at `_start` and makes the execve system call.
    let bare = common::cc_with(
        c.path(),
        "bare",
        concat!(
            "__attribute__((naked, noreturn)) void _start(void) { __asm__ volatile(\n",
            "  \"mov (%rsp), %rdi\\n lea 16(%rsp), %rsi\\n lea (%rsi,%rdi,8), %rdx\\n mov (%rsi), %rdi\\n\"\n",
            "  \"mov $59, %eax\\n syscall\\n mov $127, %edi\\n mov $60, %eax\\n syscall\\n\"); }\n"
        ),
        &["-nostdlib"],
    );
    let shipped = world(0, &shipped_bin, &tool);
    let glibc = world(0, &glibc_bin, &tool);
    let cargo_build = world(0, &dynamic, &tool);
    let thousand = world(1_000, &shipped_bin, &tool);
    let ten_thousand = world(10_000, &shipped_bin, &tool);
    let kubectl = |w: &World| w.shims.join("kubectl");
    let direct = shipped.real.join("kubectl");
    let direct_str = direct.to_str().expect("a UTF-8 temporary path");
    let forget = |w: &World| {
        let _ = std::fs::remove_dir_all(w.home.join(".local/state/guardsh/cache"));
    };

    let mut variants: Vec<Variant> = [
        "direct (the real tool)",
        "C execve wrapper",
        "  same, no C library start-up",
        "guardsh allow, shipped rules",
        "  same, static against glibc",
        "  same, dynamically linked",
        "guardsh allow, +1,000 rules",
        "guardsh allow, +10,000 rules",
        "guardsh deny, shipped rules",
    ]
    .into_iter()
    .map(|name| Variant { name, samples: Vec::with_capacity(ROUNDS) })
    .collect();

    // A policy is cached once the file clock has moved past its last change (policy_cache).
    std::thread::sleep(Duration::from_millis(50));
    // The compiling call (no entry), then the cached one.
    forget(&shipped);
    forget(&ten_thousand);
    let rss_shipped = [rss_of(&shipped), rss_of(&shipped)];
    let rss_large = [rss_of(&ten_thousand), rss_of(&ten_thousand)];
    let mut compiling = Vec::new();
    for _ in 0..15 {
        forget(&ten_thousand);
        compiling.push(run(&ten_thousand, &kubectl(&ten_thousand), &["get", "pods"], 0).0);
    }
    // Warm the page cache and check every variant does what it should.
    for _ in 0..20 {
        for w in [&shipped, &glibc, &cargo_build, &thousand, &ten_thousand] {
            run(w, &kubectl(w), &["get", "pods"], 0);
        }
    }
    for _ in 0..ROUNDS {
        variants[0].samples.push(run(&shipped, &direct, &["get", "pods"], 0).0);
        variants[1].samples.push(run(&shipped, &wrapper, &[direct_str, "get", "pods"], 0).0);
        variants[2].samples.push(run(&shipped, &bare, &[direct_str, "get", "pods"], 0).0);
        variants[3].samples.push(run(&shipped, &kubectl(&shipped), &["get", "pods"], 0).0);
        variants[4].samples.push(run(&glibc, &kubectl(&glibc), &["get", "pods"], 0).0);
        variants[5].samples.push(run(&cargo_build, &kubectl(&cargo_build), &["get", "pods"], 0).0);
        variants[6].samples.push(run(&thousand, &kubectl(&thousand), &["get", "pods"], 0).0);
        variants[7].samples.push(run(&ten_thousand, &kubectl(&ten_thousand), &["get", "pods"], 0).0);
        variants[8].samples.push(run(&shipped, &kubectl(&shipped), &["delete", "ns", "prod"], 77).0);
    }

    let median = |v: &mut Vec<Duration>| {
        v.sort();
        (v[v.len() / 2], v[v.len() * 9 / 10], v[v.len() - 1])
    };
    let floor = median(&mut variants[0].samples.clone()).0;
    let wrapper_added = common::ms(median(&mut variants[1].samples.clone()).0) - common::ms(floor);
    println!("{ROUNDS} rounds, variants interleaved; real tool = a static C int main(){{return 0;}}");
    println!("{:<32} {:>9} {:>9} {:>9} {:>11} {:>13}", "variant", "median", "p90", "max", "added", "x C wrapper");
    for v in &mut variants {
        let (m, p90, max) = median(&mut v.samples);
        let added = common::ms(m) - common::ms(floor);
        println!(
            "{:<32} {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>+9.2}ms {:>12.2}x",
            v.name,
            common::ms(m),
            common::ms(p90),
            common::ms(max),
            added,
            added / wrapper_added
        );
    }
    let (m, p90, _) = median(&mut compiling);
    println!(
        "compiling call (no cache entry), +10,000 rules: median {:.1} ms, p90 {:.1} ms (15 calls)",
        common::ms(m),
        common::ms(p90)
    );
    println!(
        "peak RSS of the shim (compiling call / cached call): {:.1} / {:.1} MiB with the shipped rules, {:.1} / {:.1} MiB with 10,000 more",
        rss_shipped[0], rss_shipped[1], rss_large[0], rss_large[1]
    );
    println!("guardsh measured: {} (and {})", shipped_bin.display(), glibc_bin.display());
}
