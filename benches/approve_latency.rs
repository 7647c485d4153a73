//! Approve-to-exec latency: how long after a decision lands the waiting shim has run the real
//! tool. Run with `cargo bench --bench approve_latency`.
//!
//! Each round starts `kubectl delete pod x` through a shim in wait mode (the real "kubectl" is
//! /bin/true), waits for its request to appear, then publishes an approval the way the store does
//! (a complete file linked into place) and times until the shim's process has exec'd the tool and
//! the tool has exited. The decision is written directly rather than through `guardsh approve`,
//! so the figure is the shim's own reaction (inotify wake-up, checks, audit record, exec), not a
//! human's typing.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 60;

fn main() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    let (home, shims, real) = (r.join("home"), r.join("shims"), r.join("real"));
    for d in [home.join(".config/guardsh"), shims.clone(), real.clone()] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::write(
        home.join(".config/guardsh/rules.toml"),
        "[settings]\napproval_timeout = 60\n[tools.kubectl]\ndefault = \"ask\"\n",
    )
    .expect("policy");
    symlink(env!("CARGO_BIN_EXE_guardsh"), shims.join("kubectl")).expect("shim");
    symlink("/bin/true", real.join("kubectl")).expect("real tool");
    let requests = home.join(".local/state/guardsh/requests");

    let mut samples = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let mut child = Command::new(shims.join("kubectl"))
            .args(["delete", "pod", &format!("p{round}")])
            .env_clear()
            .env("HOME", &home)
            .env("PATH", format!("{}:{}:/usr/bin:/bin", shims.display(), real.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let (id, digest) = wait_for_request(&requests, round);
        let decision = serde_json::json!({
            "outcome": "approved", "digest": digest, "reason": null,
            "by": {"uid": 0, "pid": 0, "tty": null, "key": null, "principal": null},
            "time": 0, "signature": null
        });
        let tmp = requests.join(format!(".bench.{round}"));
        std::fs::write(&tmp, decision.to_string()).expect("write");
        let start = Instant::now();
        std::fs::hard_link(&tmp, requests.join(format!("{id}.decision"))).expect("publish");
        let status = child.wait().expect("wait");
        let took = start.elapsed();
        assert!(status.success(), "round {round}: the approved command did not run ({status})");
        samples.push(took);
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |p: usize| samples[(samples.len() - 1) * p / 100];
    println!("approve-to-exec over {ROUNDS} rounds (decision published -> real tool run and exited):");
    println!(
        "  median {:.2} ms   p10 {:.2} ms   p90 {:.2} ms   min {:.2} ms   max {:.2} ms",
        ms(pct(50)),
        ms(pct(10)),
        ms(pct(90)),
        ms(samples[0]),
        ms(samples[samples.len() - 1])
    );
}

/// Waits for the `round`-th request file and returns its id and digest.
fn wait_for_request(dir: &Path, round: usize) -> (String, String) {
    let start = Instant::now();
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(id) = name.strip_suffix(".request") else { continue };
                if dir.join(format!("{id}.decision")).exists() {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(e.path()) else { continue };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                if let Some(d) = v["digest"].as_str() {
                    return (id.to_string(), d.to_string());
                }
            }
        }
        assert!(start.elapsed() < Duration::from_secs(10), "round {round}: no request appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
}
