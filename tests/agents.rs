//! Real agents' own commands through real shims: the git housekeeping Claude Code and Codex run at
//! start and between turns, replayed with their exact `-c` prefixes against the real git and the
//! shipped policy, asks nothing; the same prefix with a setting that runs a command still asks.

use std::path::PathBuf;

use crate::support::Test;

fn real_git() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("git")).find(|p| p.is_file())?.canonicalize().ok()
}

/// Hooks Claude Code turns off one by one (`hook.NAME.enabled=false`).
const HOOKS: &[&str] = &[
    "applypatch-msg",
    "pre-applypatch",
    "post-applypatch",
    "pre-commit",
    "pre-merge-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-rebase",
    "post-checkout",
    "post-merge",
    "pre-push",
    "pre-receive",
    "update",
    "proc-receive",
    "post-receive",
    "post-update",
    "reference-transaction",
    "push-to-checkout",
    "pre-auto-gc",
    "post-rewrite",
    "sendemail-validate",
    "fsmonitor-watchman",
    "p4-changelist",
    "p4-prepare-changelist",
    "p4-post-changelist",
    "p4-pre-submit",
    "post-index-change",
];

/// Claude Code 2.1's prefix (real-agent-notes.md): every hook off, the restricting settings, a
/// display format, and core.alternateRefsCommand as a shell function running for-each-ref.
fn claude_prefix() -> Vec<String> {
    let mut settings: Vec<String> = HOOKS.iter().map(|h| format!("hook.{h}.enabled=false")).collect();
    settings.extend(
        [
            "core.hooksPath=/dev/null",
            "core.fsmonitor=",
            "core.askPass=",
            "protocol.ext.allow=never",
            "protocol.file.allow=never",
            "safe.bareRepository=explicit",
            "submodule.recurse=false",
            "gc.auto=0",
            "maintenance.auto=false",
            "log.showSignature=false",
            "diff.autoRefreshIndex=false",
            "format.pretty=format:%H%x00%an%x00%s",
            "core.ignorecase=false",
            "core.alternateRefsCommand=f() { git --git-dir=\"$1\" for-each-ref --format='%(objectname)' refs/heads refs/tags; }; f",
        ]
        .map(str::to_string),
    );
    settings.into_iter().flat_map(|s| ["-c".to_string(), s]).collect()
}

/// Codex 0.17x's prefix.
fn codex_prefix() -> Vec<String> {
    ["-c", "safe.bareRepository=explicit", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]
        .map(str::to_string)
        .to_vec()
}

/// What both agents run on their own, in the working directory or with `-C DIR`.
fn housekeeping(dir: &str) -> Vec<Vec<String>> {
    let lines: &[&[&str]] = &[
        &["rev-parse", "--show-toplevel"],
        &["rev-parse", "--abbrev-ref", "HEAD"],
        &["rev-parse", "--git-dir"],
        &["status", "--porcelain=v2", "--branch"],
        &["status", "--porcelain"],
        &["log", "-n", "1", "--format=%H %s"],
        &["log", "--oneline", "-n", "5"],
        &["config", "--get", "user.email"],
        &["config", "--get", "remote.origin.url"],
        &["config", "--get-regexp", "^remote\\..*\\.url$"],
        &["config", "--list"],
        &["config", "--local", "--list", "--name-only"],
        &["ls-files"],
        &["ls-files", "--others", "--exclude-standard"],
        &["remote"],
        &["remote", "-v"],
        &["worktree", "list", "--porcelain"],
        &["--version"],
        &["-C", dir, "status", "--porcelain"],
        &["diff", "--stat"],
        &["diff", "--name-only", "HEAD"],
        &["diff", "--cached", "--stat"],
        &["branch", "--show-current"],
        &["branch", "--list"],
        &["show", "--stat", "HEAD"],
        &["symbolic-ref", "--short", "HEAD"],
        &["for-each-ref", "--format=%(refname)", "refs/heads"],
    ];
    lines.iter().map(|l| l.iter().map(|w| w.to_string()).collect()).collect()
}

fn repo(t: &Test, git: &PathBuf) {
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.email", "me@example.com"],
        &["config", "user.name", "Me"],
        &["config", "remote.origin.url", "https://example.com/r.git"],
        &["commit", "-q", "--allow-empty", "-m", "first"],
    ] {
        let ok = std::process::Command::new(git)
            .args(args)
            .current_dir(&t.cwd)
            .env("HOME", &t.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .expect("git");
        assert!(ok.success(), "git {args:?}");
    }
}

fn setup() -> Option<Test> {
    let Some(git) = real_git() else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide git");
        eprintln!("skipping the real-git test: no git on PATH");
        return None;
    };
    let t = Test::new().example_rules();
    t.shim("git");
    std::os::unix::fs::symlink(&git, t.real.join("git")).expect("symlink the real git");
    repo(&t, &git);
    Some(t)
}

#[test]
fn claude_code_and_codex_housekeeping_asks_nothing() {
    let Some(t) = setup() else { return };
    let dir = t.cwd.display().to_string();
    let mut runs = 0;
    for prefix in [claude_prefix(), codex_prefix(), vec![]] {
        for line in housekeeping(&dir) {
            let args: Vec<String> = prefix.iter().cloned().chain(line).collect();
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let done = t.run("git", &words).output();
            assert_eq!(done.code(), Some(0), "git {words:?}: {}", done.stderr());
            runs += 1;
        }
    }
    let pending = t.guardsh(&["pending", "--json"]).output().status(0).json();
    assert_eq!(pending.as_array().map(Vec::len), Some(0), "no approval requests: {pending}");
    let records = t.audit_records();
    assert_eq!(records.len(), runs, "one record per call");
    let asked: Vec<_> = records.iter().filter(|r| r["decision"] != "allow").collect();
    assert!(asked.is_empty(), "every housekeeping call is allowed: {asked:?}");
}

#[test]
fn a_setting_that_runs_a_command_still_asks_behind_the_agents_prefix() {
    let Some(t) = setup() else { return };
    let marker = t.home.join("ran");
    for (setting, args) in [
        (format!("core.pager=touch {}", marker.display()), &["log", "-n", "1"][..]),
        (format!("alias.st=!touch {}", marker.display()), &["st"]),
        (format!("core.fsmonitor=touch {}", marker.display()), &["status"]),
        (format!("core.hooksPath={}", t.home.display()), &["commit", "--allow-empty", "-m", "x"]),
        ("remote.origin.url=https://evil.example/r.git".to_string(), &["remote", "-v"]),
        ("include.path=/tmp/evil".to_string(), &["status"]),
        ("no.such.key=1".to_string(), &["status"]),
    ] {
        let mut words: Vec<String> = claude_prefix();
        words.extend(["-c".to_string(), setting.clone()]);
        words.extend(args.iter().map(|a| a.to_string()));
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        t.run("git", &words).output().status(75).stderr_lacks("guardsh approve");
    }
    // core.alternateRefsCommand is let through only where git never lists an alternate's refs.
    let mut fetch = claude_prefix();
    fetch.extend(["fetch".to_string(), "origin".to_string()]);
    let words: Vec<&str> = fetch.iter().map(String::as_str).collect();
    t.run("git", &words).output().status(75);
    assert!(!marker.exists(), "nothing the settings name ran");
}

/// A policy guarding only kubectl, with its shim and a fake real kubectl.
fn kubectl_only() -> Test {
    Test::new()
        .rules("[tools.kubectl]\ndefault = \"ask\"\n\n[[rule]]\nid = \"k-read\"\ntool = \"kubectl\"\naction = \"allow\"\nreason = \"read\"\nargs = [\"get\"]\n")
        .tools(&["kubectl"])
}

/// Issue 19 B: Codex runs every command as `bash -lc`, and a login shell may set PATH afresh.
/// `guardsh run` checks the agent's shells with the agent's environment (HOME included, so the
/// test's own `~/.bash_profile` is what bash reads) and refuses to start it when one misses the
/// shims, naming the fix.
#[test]
fn guardsh_run_refuses_when_a_login_shell_would_miss_the_shims() {
    let t = kubectl_only();
    let marker = t.cwd.join("agent-started");
    let agent = format!("touch '{}'", marker.display());
    // bash reads ~/.bash_profile instead of ~/.profile (where the test support puts the fix).
    let reset = format!("PATH='{}':/usr/bin:/bin\n", t.real.display());
    std::fs::write(t.home.join(".bash_profile"), &reset).expect("write profile");
    let refused = t.guardsh(&["run", "--no-sandbox", "--", "sh", "-c", &agent]).output();
    assert_ne!(refused.code(), Some(0));
    let err = refused.stderr();
    for want in [
        "bash -lc",
        &format!("kubectl is {}/kubectl", t.real.display()),
        "allow_login_shell = false",
        "~/.bash_profile",
        "[ -n \"$GUARDSH_SESSION\" ] && PATH=",
        "the agent was not started",
        "--warn-unguarded-shells",
    ] {
        assert!(err.contains(want), "lacks {want:?}: {err}");
    }
    assert!(!marker.exists(), "the agent did not start");

    // The same check in doctor.
    // (A problem where there is no sandbox; where guardsh run's sandbox covers the real
    // binaries, a warning about --no-sandbox and shellenv.)
    let d = t.guardsh(&["doctor"]).output();
    assert!(d.stdout().contains("bash -lc would not reach the shims"), "{}", d.stdout());

    // Started anyway, with a warning, when asked to.
    let warned =
        t.guardsh(&["run", "--no-sandbox", "--warn-unguarded-shells", "--", "sh", "-c", &agent]).output().status(0);
    let err = warned.stderr();
    let line = err.lines().find(|l| l.contains("would not reach the shims")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("warning: bash -lc") && line.contains("guardsh doctor"), "{err}");
    assert!(!err.contains("    fix:"), "one line per warning: {err}");
    assert!(marker.exists());

    // The named fix, at the end of the file bash reads, makes the check pass.
    std::fs::remove_file(&marker).expect("rm");
    let fix = format!("{reset}[ -n \"$GUARDSH_SESSION\" ] && PATH='{}':\"$PATH\"\n", t.shims.display());
    std::fs::write(t.home.join(".bash_profile"), fix).expect("write profile");
    t.guardsh(&["run", "--no-sandbox", "--", "sh", "-c", &agent]).output().status(0);
    assert!(marker.exists());
}

#[test]
fn a_function_of_a_tools_name_in_a_profile_is_not_the_shim() {
    let t = kubectl_only();
    let profile = format!(
        "[ -n \"$GUARDSH_SESSION\" ] && PATH='{}':\"$PATH\"\nkubectl() {{ '{}/kubectl' \"$@\"; }}\n",
        t.shims.display(),
        t.real.display()
    );
    std::fs::write(t.home.join(".bash_profile"), profile).expect("write profile");
    let refused = t.guardsh(&["run", "--no-sandbox", "--", "true"]).output();
    assert_ne!(refused.code(), Some(0));
    assert!(refused.stderr().contains("kubectl is a function or alias"), "{}", refused.stderr());
}
