//! What the Rego stage (`[policy]`, docs/rego.md) adds to an allowed command. Run with
//! `cargo bench --bench rego_stage` (BENCHMARKS.md has the figures).
//!
//! Variants run interleaved, round by round, as in `allow_path`: `kubectl get pods` through the
//! shim with the shipped `rules.toml.example`; the same with a small in-process Rego policy (its
//! compiled program cached after the first call); with the example production policy and its
//! data (`rego/`); and with the compiled-program cache removed before every call (regorus parses
//! and compiles each time). The real "kubectl" is /bin/true. guardsh is the `cargo bench` build
//! (release, dynamically linked).

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROUNDS: usize = 300;

const SMALL: &str = r#"package guardsh

import rego.v1

default decision := {"action": "allow", "reasons": []}

decision := {"action": "deny", "reasons": ["no deletes in production"]} if {
	input.words[0] == "delete"
	regex.match(`(?i)\bprod`, input.kube.namespace)
}
"#;

struct World {
    _root: tempfile::TempDir,
    home: PathBuf,
    shims: PathBuf,
    real: PathBuf,
}

/// A HOME with the shipped policy and `[policy]` lines `stage` (empty for none).
fn world(stage: &str, guardsh: &Path) -> World {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path().to_path_buf();
    let (home, shims, real) = (r.join("home"), r.join("shims"), r.join("real"));
    for d in [home.join(".config/guardsh"), shims.clone(), real.clone()] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let small = r.join("small.rego");
    std::fs::write(&small, SMALL).expect("rego");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stage = stage.replace("SMALL", &small.display().to_string()).replace("REPO", &repo.display().to_string());
    let policy = format!("{}\n{stage}\n", include_str!("../rules.toml.example"));
    std::fs::write(home.join(".config/guardsh/rules.toml"), policy).expect("policy");
    symlink(guardsh, shims.join("kubectl")).expect("shim");
    symlink("/bin/true", real.join("kubectl")).expect("real tool");
    World { _root: root, home, shims, real }
}

fn run(w: &World, program: &Path, args: &[&str], want: i32) -> Duration {
    let path = format!("{}:{}:/usr/bin:/bin", w.shims.display(), w.real.display());
    common::timed(program, args, Some((&w.home, &path)), want)
}

fn main() {
    let guardsh = PathBuf::from(env!("CARGO_BIN_EXE_guardsh"));
    let none = world("", &guardsh);
    let small = world("[policy]\nrego = [\"SMALL\"]\n", &guardsh);
    let example =
        world("[policy]\nrego = [\"REPO/rego/production.rego\"]\ndata = [\"REPO/rego/data.json\"]\n", &guardsh);
    let uncached = world("[policy]\nrego = [\"SMALL\"]\n", &guardsh);
    let cache = uncached.home.join(".local/state/guardsh/rego-cache");
    let kubectl = |w: &World| w.shims.join("kubectl");
    let direct = none.real.join("kubectl");
    let names = [
        "direct (the real tool)",
        "guardsh allow, no [policy]",
        "guardsh allow, small Rego (cached)",
        "guardsh allow, example policy",
        "guardsh allow, small, no cache",
    ];
    let mut samples: Vec<Vec<Duration>> = names.iter().map(|_| Vec::with_capacity(ROUNDS)).collect();
    for _ in 0..20 {
        for w in [&none, &small, &example] {
            run(w, &kubectl(w), &["get", "pods"], 0);
        }
    }
    run(&small, &kubectl(&small), &["-n", "prod", "delete", "pod", "x"], 77);
    for _ in 0..ROUNDS {
        samples[0].push(run(&none, &direct, &["get", "pods"], 0));
        samples[1].push(run(&none, &kubectl(&none), &["get", "pods"], 0));
        samples[2].push(run(&small, &kubectl(&small), &["get", "pods"], 0));
        samples[3].push(run(&example, &kubectl(&example), &["get", "pods"], 0));
        let _ = std::fs::remove_dir_all(&cache);
        samples[4].push(run(&uncached, &kubectl(&uncached), &["get", "pods"], 0));
    }
    let mut medians = Vec::new();
    println!("{ROUNDS} rounds, variants interleaved; real tool = /bin/true");
    println!("{:<36} {:>9} {:>9} {:>14}", "variant", "median", "p90", "vs no [policy]");
    for (i, s) in samples.iter_mut().enumerate() {
        s.sort();
        medians.push(s[s.len() / 2]);
        let delta = if i >= 1 {
            format!("{:+.2}ms", common::ms(s[s.len() / 2]) - common::ms(medians[1]))
        } else {
            String::new()
        };
        println!(
            "{:<36} {:>7.2}ms {:>7.2}ms {:>14}",
            names[i],
            common::ms(s[s.len() / 2]),
            common::ms(s[s.len() * 9 / 10]),
            delta
        );
    }
    println!("guardsh measured: {}", guardsh.display());
}
