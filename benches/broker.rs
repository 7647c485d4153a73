//! The broker's allowed call: what an agent in `guardsh run`'s sandbox pays for a guarded command
//! (shim, socket, decision and audit in guardsh run, the tool started outside), against a direct
//! exec of the same tool and a minimal C execve wrapper (one extra exec: the floor for any
//! shim), measured in the same run. Also how long `guardsh run` takes to start an agent in the
//! sandbox. Run with `cargo bench --bench broker` (BENCHMARKS.md has the figures).
//!
//! The bench runs itself as the agent (`--inner`): inside the sandbox it times the three
//! variants interleaved, round by round, so noise lands on all of them alike. The real tool is a
//! static C `int main(){return 0;}`, compiled here with `cc`.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 300;

fn stats(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 9 / 10])
}

fn time(program: &Path, args: &[&str]) -> Duration {
    common::timed(program, args, None, 0)
}

/// Inside the sandbox: the three variants, interleaved; prints one line per variant.
fn inner(tool: &Path, wrapper: &Path) {
    let mut v: [Vec<Duration>; 3] = Default::default();
    let tool_s = tool.to_str().expect("UTF-8");
    for _ in 0..20 {
        time(Path::new("kubectl"), &["get", "pods"]);
    }
    for _ in 0..ROUNDS {
        v[0].push(time(tool, &["get", "pods"]));
        v[1].push(time(wrapper, &[tool_s, "get", "pods"]));
        v[2].push(time(Path::new("kubectl"), &["get", "pods"]));
    }
    let (direct, _) = stats(&mut v[0].clone());
    let (wrap, _) = stats(&mut v[1].clone());
    let floor = wrap.saturating_sub(direct);
    println!("{ROUNDS} rounds inside guardsh run's sandbox, variants interleaved; real tool = static C true");
    println!("{:<44} {:>9} {:>9} {:>11} {:>9}", "variant", "median", "p90", "added", "x C wrapper");
    for (name, samples) in
        ["direct exec of the tool", "C execve wrapper (one extra exec)", "kubectl get pods through the broker"]
            .iter()
            .zip(v.iter_mut())
    {
        let (m, p90) = stats(samples);
        let added = m.saturating_sub(direct);
        println!(
            "{name:<44} {:>7.2}ms {:>7.2}ms {:>+9.2}ms {:>8.1}x",
            common::ms(m),
            common::ms(p90),
            common::ms(added),
            added.as_secs_f64() / floor.as_secs_f64().max(1e-9)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, tool, wrapper] = &args[..]
        && flag == "--inner"
    {
        inner(Path::new(tool), Path::new(wrapper));
        return;
    }
    // The binary install.sh builds, as `allow_path` leaves it in target/static: against musl
    // where that target is installed, else against glibc; else the one cargo built.
    let guardsh = {
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/static");
        [built.join("x86_64-unknown-linux-musl/release/guardsh"), built.join("release/guardsh")]
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_guardsh")))
    };
    eprintln!("guardsh measured: {}", guardsh.display());
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path().canonicalize().expect("canonical");
    let (home, shims, real, bin, work) =
        (r.join("home"), r.join("shims"), r.join("real"), r.join("bin"), r.join("work"));
    for d in [home.join(".config/guardsh"), shims.clone(), real.clone(), bin.clone(), work.clone()] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let tool = common::cc(&bin, "true", "int main(void){return 0;}\n");
    let wrapper = common::cc(
        &bin,
        "wrap",
        "#include <unistd.h>\nint main(int c, char **v){ (void)c; execv(v[1], v+1); return 127; }\n",
    );
    std::fs::copy(&tool, real.join("kubectl")).expect("copy");
    let me = std::env::current_exe().expect("own path");
    let readable: Vec<String> =
        [me.parent().expect("dir"), bin.as_path()].iter().map(|p| format!("{:?}", p.display().to_string())).collect();
    let mut policy = include_str!("../rules.toml.example").to_string();
    policy.push_str(&format!("\n[sandbox]\nreadable = [{}]\n", readable.join(", ")));
    std::fs::write(home.join(".config/guardsh/rules.toml"), policy).expect("policy");
    let env = |c: &mut Command| {
        c.env_clear()
            .env("HOME", &home)
            .env("PATH", format!("{}:/usr/bin:/bin", real.display()))
            .current_dir(&work)
            .stdin(Stdio::null());
    };
    let mut install = Command::new(&guardsh);
    install.args(["install", "--dir"]).arg(&shims);
    env(&mut install);
    assert!(install.stdout(Stdio::null()).status().expect("install").success());
    let _ = symlink(&guardsh, shims.join("kubectl"));
    let mut check = Command::new(&guardsh);
    check.arg("check-config");
    env(&mut check);
    let _ = check.stdout(Stdio::null()).status();

    // guardsh run's start: the whole run of an agent that does nothing, against running it
    // directly (an upper bound on the time to start it).
    let mut starts = Vec::new();
    let mut direct = Vec::new();
    for _ in 0..30 {
        let mut run = Command::new(&guardsh);
        run.args(["run", "--dir"]).arg(&shims).arg("--").arg(&tool);
        env(&mut run);
        let t = Instant::now();
        let st = run.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("guardsh run");
        assert!(st.success(), "guardsh run -- true: {st}");
        starts.push(t.elapsed());
        direct.push(time(&tool, &[]));
    }
    let (s, s90) = stats(&mut starts);
    let (d, _) = stats(&mut direct);
    println!(
        "guardsh run -- true (sandbox set up, agent run, torn down): median {:.1} ms, p90 {:.1} ms ({:.2} ms direct)",
        common::ms(s),
        common::ms(s90),
        common::ms(d)
    );

    let mut run = Command::new(&guardsh);
    run.args(["run", "--dir"]).arg(&shims).arg("--").arg(&me).arg("--inner").arg(&tool).arg(&wrapper);
    env(&mut run);
    let out = run.stderr(Stdio::inherit()).output().expect("guardsh run");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "the inner bench failed: {}", out.status);
    println!("guardsh measured: {}", guardsh.display());
}
