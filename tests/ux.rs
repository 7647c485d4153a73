//! What users meet around the gate (issue 16): completions, the man page, exit codes as the README
//! documents them, messages to the agent and to the human, CI mode from the environment.

use crate::gate::world;
use crate::support::Test;

/// Every code in the README's exit-code table, as numbers (the real tool's own status aside).
fn readme_exit_codes() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let table = readme.split("## Exit codes").nth(1).expect("an exit codes section");
    table
        .lines()
        .skip_while(|l| !l.starts_with("| code"))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1).map(str::trim))
        .filter(|c| c.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(String::from)
        .collect()
}

#[test]
fn completions_parse_in_their_shells() {
    let t = Test::new();
    let bash = t.guardsh(&["completions", "bash"]).output().status(0).stdout();
    assert!(bash.contains("approve") && bash.contains("check-config"), "{bash}");
    let file = t.root.path().join("guardsh.bash");
    std::fs::write(&file, &bash).expect("write");
    let out = std::process::Command::new("bash").arg("-n").arg(&file).output().expect("bash");
    assert!(out.status.success(), "bash -n: {}", String::from_utf8_lossy(&out.stderr));
    // And it completes: the subcommands after `guardsh `.
    let script = format!(
        "source {}; COMP_WORDS=(guardsh appr); COMP_CWORD=1; COMP_LINE='guardsh appr'; COMP_POINT=12; _guardsh guardsh appr guardsh; echo \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = std::process::Command::new("bash").arg("-c").arg(script).output().expect("bash");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "approve", "{}", String::from_utf8_lossy(&out.stderr));

    let zsh = t.guardsh(&["completions", "zsh"]).output().status(0).stdout();
    assert!(zsh.starts_with("#compdef guardsh"), "{zsh}");
    let fish = t.guardsh(&["completions", "fish"]).output().status(0).stdout();
    assert!(fish.contains("complete -c guardsh"), "{fish}");
    t.guardsh(&["completions", "tcsh"]).output().status(2);
}

#[test]
fn the_man_page_renders_with_every_command_and_the_readme_exit_codes() {
    let t = Test::new();
    let page = t.guardsh(&["man"]).output().status(0).stdout();
    let file = t.root.path().join("guardsh.1");
    std::fs::write(&file, &page).expect("write");
    let out = std::process::Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "CI must provide man (.ci/run installs man-db): {e}");
            eprintln!("SKIPPED: man is not installed: {e}");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "", "groff warnings");
    for heading in ["NAME", "SYNOPSIS", "COMMANDS", "EXIT STATUS", "FILES", "ENVIRONMENT"] {
        assert!(text.contains(heading), "no {heading}: {text}");
    }
    for cmd in ["check", "check-config", "doctor", "run", "approve", "watch", "uninstall", "audit", "completions"] {
        assert!(text.contains(&format!("guardsh {cmd}")), "no guardsh {cmd}: {text}");
    }
    let status = text.split("EXIT STATUS").nth(1).expect("exit status").split("FILES").next().expect("section");
    let listed: Vec<String> = status
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(String::from)
        .collect();
    assert_eq!(listed, readme_exit_codes(), "the man page and the README list the same exit codes");
}

/// The README's table and the codes guardsh uses are the same list.
#[test]
fn exit_codes_are_the_readmes() {
    let codes = readme_exit_codes();
    let exit_rs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/exit.rs")).expect("exit.rs");
    let ours: Vec<&str> =
        exit_rs.lines().filter_map(|l| l.strip_prefix("pub const ")?.split(" = ").nth(1)?.strip_suffix(';')).collect();
    assert!(ours.len() >= 7, "{ours:?}");
    for code in &ours {
        assert!(codes.iter().any(|c| c == code), "{code} (src/exit.rs) is not in the README's table {codes:?}");
    }
    let t = world();
    t.guardsh(&["no-such-command"]).output().status(2);
    t.run("kubectl", &["delete", "ns", "prod"]).output().status(77);
    // An invalid policy is 78 for the shim, for check, check-config, and guardsh run.
    let t = world().rules("[[rule]]\nid = 1\n");
    t.run("kubectl", &["get", "pods"]).output().status(78);
    t.guardsh(&["check-config"]).output().status(78);
    t.guardsh(&["check", "--", "kubectl", "get", "pods"]).output().status(78);
    t.guardsh(&["run", "--", "sh", "-c", "touch started"]).output().status(78).stderr_has("guardsh check-config");
    assert!(!t.cwd.join("started").exists());
}

#[test]
fn ci_set_but_empty_is_ci_mode_and_only_tightens() {
    let t = world();
    t.run("kubectl", &["delete", "pod", "x"]).env("CI", "").output().status(77).stderr_has("CI mode");
    t.run("kubectl", &["get", "pods"]).env("CI", "").output().status(0);
    // A hard deny stays one; nothing in the environment loosens.
    t.run("kubectl", &["delete", "ns", "prod"]).env("CI", "").output().status(77);
    t.run("kubectl", &["delete", "pod", "x"]).env("CI", "0").env("GUARDSH_MODE", "ci").output().status(77);
    let json = t.guardsh(&["check", "--json", "--", "kubectl", "delete", "pod", "x"]).env("CI", "").output().json();
    assert_eq!(json["decision"], "deny", "{json}");
}

#[test]
fn messages_to_the_agent_never_invite_it_to_approve_or_edit() {
    let t = world();
    let denied = t.run("kubectl", &["delete", "ns", "prod"]).output().status(77);
    let s = denied.stderr();
    assert!(!s.contains("human decision"), "a hard deny has no approval: {s}");
    assert!(s.contains("no approval exists"), "{s}");

    // An invalid policy: the agent is told a human must fix it, not how.
    let t = world().rules("[[rule]]\nid = 1\n");
    let out = t.run("kubectl", &["get", "pods"]).output().status(78);
    let s = out.stderr();
    assert!(s.contains("a human fixes it"), "{s}");
    for invitation in ["check-config", "fix the errors", "rules.toml", "guardsh trust"] {
        assert!(!s.contains(invitation), "{invitation:?} in {s}");
    }
    // The human, at their own terminal, is told where and how.
    let human = t.guardsh(&["check-config"]).output().status(78);
    assert!(human.stderr().contains("rules.toml:"), "{}", human.stderr());
    let doctor = t.guardsh(&["doctor"]).output();
    assert!(doctor.stdout().contains("rules.toml:"), "{}", doctor.stdout());
}

#[test]
fn a_token_file_named_token_is_not_the_token_token() {
    let t = world();
    std::fs::write(t.cwd.join("token"), "not a token\n").expect("write");
    let out = t
        .run("kubectl", &["delete", "pod", "x"])
        .env("CI", "true")
        .env("GUARDSH_APPROVAL_FILE", "token")
        .output()
        .status(77);
    let s = out.stderr();
    assert!(!s.contains("token token"), "{s}");
    assert!(s.contains("the approval token in token does not authorize it"), "{s}");
}

#[test]
fn every_argument_has_help() {
    let t = Test::new();
    for (cmd, needle) in [
        (&["sign", "--help"][..], "SSH private key to sign with"),
        (&["sign", "--help"], "The request, as `guardsh export`"),
        (&["watch", "--help"], "SSH key to sign approvals with"),
        (&["request", "--help"], "The command line as the CI step will run it"),
        (&["export", "--help"], "The request id"),
        (&["import", "--help"], "The token `guardsh sign` printed"),
    ] {
        t.guardsh(cmd).output().status(0).stdout_has(needle);
    }
    // No argument of any visible command is without help text.
    let page = t.guardsh(&["man"]).output().status(0).stdout();
    assert!(!page.contains("\\fR\n\n"), "an argument without help:\n{page}");
}

/// A shipped policy with a fake psql.
fn psql_world() -> Test {
    let t = Test::new().example_rules();
    t.shim("psql");
    t.fake_tool("psql");
    t
}

/// The agent and the approver both learn which statement made the SQL a write.
#[test]
fn a_write_says_which_statement_made_it_one() {
    use expectrl::Expect;
    let t = psql_world();
    let sql = "select 1; drop table users";
    let want = "statement 2 of 2 `DROP TABLE users`: DROP TABLE changes the database";
    t.guardsh(&["check", "--", "psql", "-c", sql]).output().status(0).stdout_has(want);
    t.run("psql", &["-c", sql]).env("CI", "true").output().status(77).stderr_has(&format!("the SQL writes: {want}"));

    let asked = t.run_detached("psql", &["-c", sql]);
    let id = t.wait_for_pending(1).remove(0);
    let mut s = t.in_terminal(crate::support::guardsh(), &["approve", &id]);
    s.expect(format!("what:      the SQL writes: {want}")).expect("the approver sees the statement");
    let found = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("the prompt");
    let code = String::from_utf8_lossy(found.get(1).expect("code")).into_owned();
    s.send_line(code).expect("type");
    s.expect(format!("approved request {id}")).expect("approved");
    // Asked from no terminal, the command did not wait; the same command runs once approved.
    asked.wait(std::time::Duration::from_secs(20));
    assert!(asked.stderr().contains(&format!("the SQL writes: {want}")), "{}", asked.stderr());
    t.run("psql", &["-c", sql]).output().status(0);
    assert!(t.ran("psql"));
}

/// install.sh, then `guardsh uninstall --all`: everything it lists is gone, the audit log stays
/// (until --purge-audit), and nothing guardsh put there remains.
#[test]
fn uninstall_all_removes_everything_it_lists_and_keeps_the_audit_log() {
    let t = Test::new();
    let prefix = t.root.path().join("prefix");
    let repo = env!("CARGO_MANIFEST_DIR");
    t.command("bash")
        .arg_os(format!("{repo}/install.sh"))
        .env("PREFIX", &prefix)
        .env("GUARDSH_BINARY", crate::support::guardsh())
        .env("PATH", std::env::var_os("PATH").expect("PATH"))
        .output()
        .status(0)
        .stdout_has("uninstall --all");
    let guardsh = prefix.join("bin/guardsh");
    let data = t.home.join(".local/share");
    let installed = [
        guardsh.clone(),
        prefix.join("share/man/man1/guardsh.1"),
        data.join("bash-completion/completions/guardsh"),
        data.join("zsh/site-functions/_guardsh"),
        t.shims.join("kubectl"),
        t.config_dir().join("rules.toml"),
    ];
    for p in &installed {
        assert!(p.exists(), "install.sh put {} there", p.display());
    }
    // Use it: an audit log, a request, a cache, signers, a file that is not a shim.
    t.fake_tool("kubectl");
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.run("kubectl", &["delete", "pod", "x"]).env("GUARDSH_APPROVAL_TIMEOUT", "1").output();
    std::fs::write(t.config_dir().join("allowed_signers"), "").expect("write");
    std::fs::write(t.shims.join("notes.txt"), "mine").expect("write");
    assert!(t.state_dir().join("requests").is_dir() && t.audit_log().is_file());

    // Without a terminal and without --yes, it only lists.
    let listed = t.command(&guardsh).arg_os("uninstall").arg_os("--all").output().status(1);
    let listing = listed.stdout();
    assert!(guardsh.exists() && t.config_dir().join("rules.toml").exists(), "{listing}");
    let paths: Vec<std::path::PathBuf> = listing
        .lines()
        .skip_while(|l| !l.starts_with("guardsh uninstall --all removes:"))
        .skip(1)
        .take_while(|l| l.starts_with("  ") && !l.starts_with("  kept:"))
        .filter_map(|l| l.split_whitespace().last().map(std::path::PathBuf::from))
        .collect();
    for p in &installed {
        assert!(paths.contains(p), "{} is not listed:\n{listing}", p.display());
    }
    for p in [t.state_dir().join("requests"), t.config_dir().join("allowed_signers")] {
        assert!(paths.contains(&p), "{} is not listed:\n{listing}", p.display());
    }
    assert!(listing.contains(&format!("kept: audit log    {}", t.audit_log().display())), "{listing}");
    assert!(listing.contains("kept: not a shim"), "{listing}");

    let removed = t.command(&guardsh).arg_os("uninstall").arg_os("--all").arg_os("--yes").output().status(0);
    for p in &paths {
        assert!(p.symlink_metadata().is_err(), "{} was listed and is still there:\n{}", p.display(), removed.stdout());
    }
    assert!(t.audit_log().is_file(), "the audit log is kept");
    assert_eq!(std::fs::read_to_string(t.shims.join("notes.txt")).expect("kept"), "mine");
    assert!(!t.config_dir().exists(), "the configuration directory is gone");

    // --purge-audit takes the audit log too (a guardsh is needed to run it: the same binary).
    let again = t.root.path().join("guardsh");
    std::fs::copy(crate::support::guardsh(), &again).expect("copy");
    t.command(&again).arg_os("uninstall").arg_os("--all").arg_os("--purge-audit").arg_os("--yes").output().status(0);
    assert!(!t.audit_log().exists() && !t.state_dir().exists());
}

/// `audit tail` shows the mode, the approval and the human's reason, and filters by tool,
/// decision and time.
#[test]
fn audit_tail_shows_approvals_and_filters() {
    let t = world();
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.run("aws", &["s3", "ls"]).output();
    t.run("kubectl", &["delete", "ns", "prod"]).output().status(77);
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);
    t.guardsh(&["deny", &id, "--reason", "not during the freeze"]).output().status(0);
    asked.wait(std::time::Duration::from_secs(20));

    let all = t.guardsh(&["audit", "tail", "-n", "50"]).output().status(0).stdout();
    let denied = all.lines().find(|l| l.contains("denied_by_human")).unwrap_or_else(|| panic!("{all}"));
    assert!(denied.contains("interactive ask") && denied.contains(&format!("request {id}")), "{denied}");
    assert!(denied.contains("reason: not during the freeze") && denied.contains("by "), "{denied}");

    let aws = t.guardsh(&["audit", "tail", "--tool", "aws"]).output().status(0).stdout();
    assert!(!aws.is_empty() && aws.lines().all(|l| l.contains(" aws ")), "{aws}");
    let deny = t.guardsh(&["audit", "tail", "--decision", "deny"]).output().status(0).stdout();
    assert!(deny.contains("kubectl delete ns prod") && !deny.contains("get pods"), "{deny}");
    let human = t.guardsh(&["audit", "tail", "--decision", "denied_by_human", "--json"]).output().status(0).stdout();
    assert_eq!(human.lines().count(), 1, "{human}");
    assert_eq!(
        t.guardsh(&["audit", "tail", "--since", "1h"]).output().status(0).stdout().lines().count(),
        all.lines().count()
    );
    assert_eq!(t.guardsh(&["audit", "tail", "--since", "2999-01-01"]).output().status(0).stdout(), "");
    let records = t.audit_records();
    let today = &records[0]["time"].as_str().expect("time")[..10];
    assert!(!t.guardsh(&["audit", "tail", "--since", today]).output().status(0).stdout().is_empty());
    t.guardsh(&["audit", "tail", "--since", "yesterday"]).output().status(1).stderr_has("give a duration");
    // The last N of what passes the filters.
    let one = t.guardsh(&["audit", "tail", "-n", "1", "--tool", "kubectl", "--decision", "allow"]).output().stdout();
    assert!(one.lines().count() == 1 && one.contains("kubectl get pods"), "{one}");
}

/// `guardsh watch`: a mistyped code can be typed again (without being shown it), and a request
/// withdrawn while its prompt is on screen goes away without a key press.
#[test]
fn watch_lets_the_human_retry_and_drops_a_withdrawn_request() {
    use expectrl::Expect;
    let t = Test::new()
        .rules("[settings]\napproval_timeout = 60\n[tools.kubectl]\ndefault = \"ask\"\n")
        .tools(&["kubectl"]);
    let mut s = t.in_terminal(crate::support::guardsh(), &["watch"]);
    s.expect("watching for requests").expect("watching");

    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let found = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("prompt");
    let code = String::from_utf8_lossy(found.get(1).expect("code")).into_owned();
    s.send_line("zzzz").expect("type");
    let retry = s.expect("type it again (2 tries left)").expect("a retry");
    assert!(!String::from_utf8_lossy(retry.before()).contains(&code), "the code is not revealed");
    s.send_line(&code).expect("type");
    s.expect("approved request").expect("approved on the second try");
    assert_eq!(asked.wait(std::time::Duration::from_secs(20)), Some(0), "{}", asked.stderr());

    // The next request's command dies while its prompt is shown.
    let _gone = t.run_detached("kubectl", &["delete", "pod", "y"]);
    s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("prompt");
    let j = t.guardsh(&["pending", "--json"]).output().json();
    let (pid, id) = (j[0]["requester"]["pid"].as_i64().expect("pid"), j[0]["id"].as_str().expect("id").to_string());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL).expect("kill");
    s.expect(format!("request {id} was withdrawn")).expect("gone without a key press");
    assert_eq!(t.audited("withdrawn"), 1);
    // And watch goes on watching: the next request is shown.
    let _next = t.run_detached("kubectl", &["delete", "pod", "z"]);
    s.expect("kubectl delete pod z").expect("the next request");
}

/// Colour on a terminal (the approval screen), never into a pipe or under NO_COLOR; `--color`
/// overrides both ways.
#[test]
fn colour_on_a_terminal_only_and_never_under_no_color() {
    use expectrl::Expect;
    let t = world();
    let piped = t.guardsh(&["check", "--", "kubectl", "delete", "ns", "prod"]).output().status(0).stdout();
    assert!(!piped.contains('\x1b'), "{piped}");
    let always =
        t.guardsh(&["--color", "always", "check", "--", "kubectl", "delete", "ns", "prod"]).output().status(0).stdout();
    assert!(always.contains("decision:    \x1b[1;31mDENY\x1b[0m:"), "{always}");
    let doctor = t.guardsh(&["doctor", "--color", "always"]).output().stdout();
    assert!(doctor.contains("\x1b["), "{doctor}");
    t.run("kubectl", &["delete", "ns", "prod"]).output().status(77);
    let tail = t.guardsh(&["audit", "tail", "--color=always"]).output().status(0).stdout();
    assert!(tail.contains("\x1b[1;31mdeny"), "{tail}");
    assert!(!t.guardsh(&["audit", "tail"]).output().status(0).stdout().contains('\x1b'));
    t.guardsh(&["--color", "sometimes", "doctor"]).output().status(2);

    // The approval screen is a terminal: colour, unless NO_COLOR.
    for (no_color, coloured) in [(None, true), (Some("1"), false)] {
        let mut t = Test::new()
            .rules("[settings]\napproval_timeout = 60\n[tools.kubectl]\ndefault = \"ask\"\n")
            .tools(&["kubectl"]);
        if let Some(v) = no_color {
            t = t.env("NO_COLOR", v);
        }
        let _asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
        let id = t.wait_for_pending(1).remove(0);
        let mut s = t.in_terminal(crate::support::guardsh(), &["approve", &id]);
        let shown = s.expect("to approve").expect("prompt");
        let screen = String::from_utf8_lossy(shown.before()).into_owned();
        assert_eq!(screen.contains("\x1b[1m"), coloured, "NO_COLOR={no_color:?}: {screen:?}");
    }
}

/// `guardsh run`'s start-up warnings: one line each, then one pointer to `guardsh doctor`.
#[test]
fn run_warnings_are_one_line_each_with_a_doctor_pointer() {
    let t = world();
    std::fs::create_dir_all(t.home.join(".aws")).expect("mkdir");
    std::fs::write(t.home.join(".aws/credentials"), "[default]\naws_secret_access_key = x\n").expect("write");
    let d = t.shims.to_str().expect("utf8");
    let out = t.guardsh(&["run", "--no-sandbox", "--dir", d, "--", "sh", "-c", "true"]).output().status(0);
    let err = out.stderr();
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("guardsh run: warning:")).collect();
    assert!(warnings.iter().any(|l| l.contains("the agent can read 1 credential file(s)")), "{err}");
    assert!(err.lines().all(|l| l.starts_with("guardsh run: ")), "every line is guardsh run's own: {err}");
    let pointer = err.lines().filter(|l| l.contains("`guardsh doctor` explains each warning")).count();
    assert_eq!(pointer, 1, "{err}");
    assert!(warnings.iter().all(|l| l.len() < 400), "{err}");
}

/// install.sh shows cargo's progress: no cargo build in it is quiet, and it says how long.
#[test]
fn install_script_shows_cargos_progress() {
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/install.sh")).expect("install.sh");
    let builds: Vec<&str> = script.lines().filter(|l| l.contains("cargo rustc") || l.contains("cargo build")).collect();
    assert!(builds.len() >= 2, "{builds:?}");
    for line in builds {
        assert!(!line.contains("--quiet") && !line.contains(" -q"), "a quiet build: {line}");
    }
    assert!(script.contains("cargo shows its progress"), "says what the wait is");
}
