//! Differential testing against the real CLIs (issue 17): guardsh's reading of a command line
//! against what the real kubectl, git, psql and aws do with it.
//!
//! `tests/differential/harness.py` generates variants of harmless, destructive and secret-reading
//! intents from what each tool accepts (global options in every position and spelling, resource
//! spellings, case, files and stdin, environment variables, configuration that changes what a
//! command means; for SQL, statements around every lexical feature), asks `guardsh check --json`
//! about each in this test's hermetic HOME with the shipped policy, and runs the allowed ones
//! through the shim (and a seeded sample of the held ones directly) against oracles the tools
//! cannot fool:
//! - kubectl: a logging stand-in of the Kubernetes API on 127.0.0.1 (`oracles.py`): any
//!   DELETE/PATCH/PUT/POST is a mutation, a GET of secrets a secret read;
//! - git: a copy of a work repository with a bare remote per variant: lost commits, discarded
//!   work (modified, untracked, ignored, stashed), deleted refs and tags, remote refs deleted or
//!   moved by force;
//! - psql: a throwaway PostgreSQL cluster (`postgres::Server`): schema, rows, sequences, large
//!   objects, databases and roles before and after;
//! - aws: moto (`aws::Moto`) behind a logging proxy: every operation, mutations and secret reads,
//!   and the S3 buckets and objects before and after.
//!
//! The table goes to `target/differential/results.tsv` (tool, argv, environment, decision, what
//! the oracle saw), the summary to `summary.json` beside it. The test fails on a variant guardsh
//! allows while the oracle saw a destructive effect or a secret read, unless it is a known one
//! (`tests/differential/known.tsv`, checked on every run regardless of sampling).
//!
//! Environment: `GUARDSH_DIFF_ALL=1` runs ten times as many variants and every held one for real
//! (local runs); `GUARDSH_DIFF_SEED=N` picks another sample; `GUARDSH_DIFF_TOOLS=git,psql` limits
//! the tools; `GUARDSH_DIFF_STRICT_KNOWN=1` (or `KNOWN_MUST_BE_FIXED` below) fails on known
//! findings that are still allowed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::Test;

/// Flip to true once the lead's fixes for every row of known.tsv are in: from then on a known
/// finding that guardsh still allows fails the test like a new one.
const KNOWN_MUST_BE_FIXED: bool = false;

/// Variants per tool in a default (CI) run: at least 2,000 in all, within a few minutes on 2 cores.
const COUNTS: &[(&str, usize)] = &[("kubectl", 700), ("git", 600), ("psql", 850), ("aws", 230)];

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())?.canonicalize().ok()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Missing tools fail under CI and skip, with the reason, elsewhere.
fn missing(tool: &str, why: &str, skipped: &mut Vec<String>) {
    assert!(std::env::var_os("CI").is_none(), "CI must provide {tool} for the differential test: {why}");
    eprintln!("differential: skipping {tool}: {why}");
    skipped.push(tool.to_string());
}

fn compact(v: &Value) -> String {
    let argv: Vec<String> = v["argv"].as_array().into_iter().flatten().filter_map(|w| w.as_str()).map(quote).collect();
    let mut s = argv.join(" ");
    if v["env"].as_object().is_some_and(|e| !e.is_empty()) {
        s = format!("{} {s}", v["env"]);
    }
    if !v["stdin"].is_null() {
        s.push_str(&format!("  <<< {}", v["stdin"]));
    }
    if v["prep"].as_array().is_some_and(|p| !p.is_empty()) {
        s.push_str(&format!("  with {}", v["prep"]));
    }
    format!("{s}\n      oracle: {}  (rule {}, {})", v["effects"], v["rule"], v["family"])
}

fn quote(w: &str) -> String {
    if !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_=./:,@%+".contains(c)) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

#[test]
fn guardsh_allows_nothing_the_real_tools_show_to_be_destructive() {
    let only: Option<Vec<String>> =
        std::env::var("GUARDSH_DIFF_TOOLS").ok().map(|s| s.split(',').map(str::to_string).collect());
    let wanted = |t: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == t));
    let Some(python) = on_path("python3") else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide python3 for the differential test");
        eprintln!("differential: skipping: no python3");
        return;
    };
    let t = Test::new().example_rules();
    let mut tools = serde_json::Map::new();
    let mut skipped = Vec::new();

    if wanted("kubectl") {
        match on_path("kubectl") {
            Some(p) => {
                tools.insert("kubectl".into(), json!(p));
            }
            None => missing("kubectl", "no kubectl on PATH", &mut skipped),
        }
    }
    if wanted("git") {
        match on_path("git") {
            Some(p) => {
                tools.insert("git".into(), json!(p));
            }
            None => missing("git", "no git on PATH", &mut skipped),
        }
    }
    let pg = if wanted("psql") { crate::postgres::Server::start() } else { None };
    match &pg {
        Some(db) => {
            tools.insert("psql".into(), json!(db.bin.join("psql")));
        }
        // Server::start has already failed under CI, or said why it skips.
        None if wanted("psql") => skipped.push("psql".into()),
        None => {}
    }
    let moto = if wanted("aws") {
        match crate::aws::python_bin() {
            Some(bin) => {
                tools.insert("aws".into(), json!(bin.join("aws")));
                Some(crate::aws::Moto::start(&bin))
            }
            None => {
                missing("aws", "python3 has no aws and moto_server beside it", &mut skipped);
                None
            }
        }
    } else {
        None
    };
    if tools.is_empty() {
        eprintln!("differential: no tool to test");
        return;
    }
    // `kubectl diff` runs diff(1); the test world's PATH has only a few system utilities.
    if let Some(diff) = ["/usr/bin/diff", "/bin/diff"].iter().map(Path::new).find(|p| p.exists()) {
        std::os::unix::fs::symlink(diff, t.sysbin.join("diff")).expect("symlink diff");
    }
    for (tool, path) in &tools {
        t.shim(tool);
        std::os::unix::fs::symlink(path.as_str().expect("path"), t.real.join(tool)).expect("symlink a real tool");
    }

    let out = target_dir().join("differential");
    std::fs::create_dir_all(&out).expect("mkdir target/differential");
    let env = json!({
        "HOME": t.home,
        "XDG_CONFIG_HOME": t.home.join(".config"),
        "XDG_STATE_HOME": t.home.join(".local/state"),
        "XDG_DATA_HOME": t.home.join(".local/share"),
        "PATH": t.path().to_str().expect("a UTF-8 PATH"),
        "GUARDSH_TEST_SYSTEM_DIR": t.system_dir(),
        "LC_ALL": "C",
    });
    let all = std::env::var("GUARDSH_DIFF_ALL").is_ok_and(|v| v == "1");
    let seed: u64 = std::env::var("GUARDSH_DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(17);
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential");
    let config = json!({
        "guardsh": crate::support::guardsh(),
        "env": env,
        "home": t.home,
        "cwd": t.cwd,
        "shims": t.shims,
        "tools": tools,
        "pg_socket": pg.as_ref().map(|db| db.socket()),
        "moto": moto.as_ref().map(|m| m.endpoint.clone()),
        "out": out,
        "seed": seed,
        "all": all,
        "all_factor": 10,
        "held_sample": 0.1,
        "counts": COUNTS.iter().map(|(t, n)| (t.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "known": here.join("known.tsv"),
    });
    let config_path = t.root.path().join("differential.json");
    std::fs::write(&config_path, config.to_string()).expect("write the harness configuration");

    let start = std::time::Instant::now();
    let run = Command::new(python).arg(here.join("harness.py")).arg(&config_path).output().expect("run harness.py");
    assert!(
        run.status.success(),
        "harness.py failed\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary.json")).expect("JSON");

    let mut report = String::new();
    macro_rules! say {
        ($($a:tt)*) => {{
            let line = format!($($a)*);
            println!("{line}");
            report.push_str(&line);
            report.push('\n');
        }};
    }
    say!("differential: seed {seed}{}, {:.0} s", if all { ", all" } else { "" }, start.elapsed().as_secs_f64());
    say!(
        "{:<8} {:>8} {:>8} {:>6} {:>9} {:>13} {:>16} {:>15} {:>6}",
        "tool",
        "variants",
        "allowed",
        "held",
        "ran real",
        "held sampled",
        "held+destructive",
        "harmless asked",
        "secs"
    );
    let mut total = 0;
    for (tool, s) in summary["tools"].as_object().expect("tools") {
        total += s["variants"].as_u64().unwrap_or(0);
        say!(
            "{:<8} {:>8} {:>8} {:>6} {:>9} {:>13} {:>16} {:>9} of {:<4} {:>6}",
            tool,
            s["variants"],
            s["allowed"],
            s["held"],
            s["ran_real"],
            s["held_sampled"],
            s["held_destructive"],
            s["harmless_asked"],
            s["harmless"],
            s["seconds"]
        );
    }
    say!("{total} variants; table: {}", out.join("results.tsv").display());
    say!("harmless intents guardsh asks about, by family (count):");
    for (tool, s) in summary["tools"].as_object().expect("tools") {
        let families: Vec<String> = s["harmless_asked_by_family"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(family, n)| format!("{family} {n}"))
            .collect();
        say!("  {tool}: {}", if families.is_empty() { "none".to_string() } else { families.join(", ") });
    }
    if !skipped.is_empty() {
        say!("skipped (not installed here): {}", skipped.join(", "));
    }

    let list = |key: &str| summary[key].as_array().cloned().unwrap_or_default();
    let (findings, still, fixed, misread, errors) =
        (list("findings"), list("known_still_allowed"), list("known_fixed"), list("misread"), list("errors"));
    if !misread.is_empty() {
        say!(
            "\n{} psql variants guardsh reads as reads that write when run without what the shim adds \
             (a read-only session, PSQLRC=/dev/null), so only that holds them:",
            misread.len()
        );
        for m in &misread {
            say!("  {}  direct: {}", compact(m), m["direct_effects"]);
        }
    }
    if !still.is_empty() {
        say!("\n{} known findings (tests/differential/known.tsv) guardsh still allows:", still.len());
        for k in &still {
            say!("  KNOWN {}", compact(k));
        }
    }
    if !fixed.is_empty() {
        say!("\n{} known findings now held or harmless (fixed?):", fixed.len());
        for k in &fixed {
            say!("  FIXED {}", compact(k));
        }
    }
    if !errors.is_empty() {
        say!("\n{} variants the harness could not evaluate:", errors.len());
        for e in &errors {
            say!("  {}", compact(e));
        }
    }
    for f in &findings {
        say!("  NEW {}", compact(f));
    }
    std::fs::write(out.join("report.txt"), &report).expect("write report.txt");
    assert!(total >= 2000 || !skipped.is_empty() || only.is_some(), "fewer than 2,000 variants: {total}");
    assert!(
        findings.is_empty(),
        "{} variants guardsh allows while the real tool did something destructive or read a secret \
         (listed above as NEW, and in {}; record each in tests/differential/known.tsv with a diagnosis)",
        findings.len(),
        out.join("report.txt").display()
    );
    let strict = KNOWN_MUST_BE_FIXED || std::env::var("GUARDSH_DIFF_STRICT_KNOWN").is_ok_and(|v| v == "1");
    assert!(!strict || still.is_empty(), "{} known findings are still allowed (see above)", still.len());
    assert!(errors.is_empty(), "{} variants could not be evaluated (see above)", errors.len());
    drop(pg);
    drop(moto);
}
