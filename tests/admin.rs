//! guardsh's own commands: check, check-config, doctor, install/uninstall/list, run, shellenv,
//! audit verify/tail, and install.sh.

use std::path::Path;

use crate::gate::world;
use crate::support::{Test, guardsh};

#[test]
fn check_json_agrees_with_what_the_shim_does() {
    let t = world();
    let samples: &[&[&str]] = &[
        &["kubectl", "get", "pods"],
        &["kubectl", "-n", "prod", "delete", "ns", "x"],
        &["kubectl", "delete", "pod", "x"],
        &["kubectl", "delete", "pod", "x", "--dry-run=client"],
        &["kubectl", "delete", "pod", "x", "--dry-run=none"],
        &["aws", "s3", "ls"],
        &["aws", "s3", "rb", "s3://b", "--force"],
        &["aws", "--bogus", "s3", "ls"],
        &["railway", "status"],
        &["railway", "volume", "rm", "data"],
        &["helm", "list"],
    ];
    for argv in samples {
        for ci in [false, true] {
            let mut check = t.guardsh(&[&["check", "--json", "--"][..], argv].concat());
            let mut run = t.run(argv[0], &argv[1..]);
            if ci {
                check = check.env("CI", "true");
                run = run.env("CI", "true");
            }
            let v = check.output().status(0).json();
            let shim = run.output();
            let want = v["exit_code"].as_i64().map_or(0, |c| i32::try_from(c).expect("small"));
            assert_eq!(shim.code(), Some(want), "{argv:?} ci={ci}: check said {v}\nshim stderr: {}", shim.stderr());
            let decision = v["decision"].as_str().expect("decision");
            assert_eq!(decision == "allow", want == 0, "{argv:?}: {v}");
            assert!(v["rules"].is_array() && v["reason"].is_string());
        }
    }
}

#[test]
fn check_explains_in_words() {
    let t = world().env("AWS_SECRET_ACCESS_KEY", "x");
    let out = t.guardsh(&["check", "--", "kubectl", "-n", "prod", "delete", "ns", "x"]).output().status(0);
    let s = out.stdout();
    for want in [
        "verb words:  delete namespaces x",
        "flags:       --namespace=prod",
        "k-delete-ns [deny]",
        "k-delete [ask]",
        "decision:    DENY",
        "env strips:  AWS_SECRET_ACCESS_KEY",
        "exit:        77",
    ] {
        assert!(s.contains(want), "lacks {want:?}:\n{s}");
    }
    let j = t.guardsh(&["check", "--json", "--", "kubectl", "-n", "prod", "delete", "ns", "x"]).output().json();
    assert_eq!(j["decision"], "deny");
    assert_eq!(j["rules"], serde_json::json!(["k-delete", "k-delete-ns", "k-prod"]));
    assert_eq!(j["normalized"]["positionals"], serde_json::json!(["delete", "namespaces", "x"]));
    assert_eq!(j["env"]["stripped"], serde_json::json!(["AWS_SECRET_ACCESS_KEY"]));
}

#[test]
fn check_config_summarises_a_valid_policy() {
    let t = Test::new().example_rules();
    t.guardsh(&["check-config"]).output().status(0).stdout_has(
        "ok: 21 tools (aws, az, docker, doctl, dropdb, fly, flyctl, gcloud, gh, git, helm, heroku, kubectl, mongosh, mysql, psql, railway, redis-cli, supabase, terraform, vercel)",
    );
}

#[test]
fn install_list_uninstall_are_idempotent_and_never_clobber() {
    let t = Test::new().example_rules();
    let dir = t.root.path().join("myshims");
    let d = dir.to_str().expect("utf8");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("kubectl"), "#!/bin/sh\necho mine\n").expect("write foreign");
    std::fs::write(dir.join("notes.txt"), "keep me").expect("write");

    let out = t.guardsh(&["install", "--dir", d]).output().status(1);
    assert!(out.stdout().contains("kubectl      SKIPPED"), "{}", out.stdout());
    assert_eq!(std::fs::read_to_string(dir.join("kubectl")).expect("read"), "#!/bin/sh\necho mine\n");
    for tool in ["aws", "psql", "railway", "terraform"] {
        assert_eq!(
            std::fs::read_link(dir.join(tool)).expect("link"),
            Path::new(guardsh()).canonicalize().expect("canon")
        );
    }
    t.guardsh(&["install", "--dir", d, "aws"]).output().status(0).stdout_has("aws          already installed");
    t.guardsh(&["list", "--dir", d])
        .output()
        .status(0)
        .stdout_has("aws          shim")
        .stdout_has("kubectl      not a guardsh shim");

    t.guardsh(&["uninstall", "--dir", d]).output().status(0).stdout_has("20 shims removed");
    t.guardsh(&["uninstall", "--dir", d]).output().status(0).stdout_has("0 shims removed");
    assert!(dir.join("kubectl").exists() && dir.join("notes.txt").exists());
    assert!(!dir.join("aws").exists());
}

#[test]
fn install_defaults_to_the_xdg_data_directory_and_a_shim_guards_the_tool() {
    let t = Test::new().example_rules();
    std::fs::remove_dir_all(&t.shims).expect("rm");
    t.guardsh(&["install"]).output().status(0);
    t.fake_tool("kubectl");
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.run("kubectl", &["delete", "ns", "prod"]).output().status(77);
}

#[test]
fn run_puts_shims_first_and_marks_the_session() {
    let t = world();
    // PATH without the shims; `guardsh run` must add them in front.
    let path = std::env::join_paths([&t.real, &t.sysbin]).expect("PATH");
    let script = "echo \"PATH=$PATH\"; echo \"SESSION=$GUARDSH_SESSION\"; kubectl delete ns x; echo \"status=$?\"";
    let out = t
        .guardsh(&["run", "--dir", t.shims.to_str().expect("utf8"), "--", "sh", "-c", script])
        .env("PATH", path)
        .output()
        .status(0);
    let s = out.stdout();
    assert!(s.contains(&format!("PATH={}:{}:{}", t.shims.display(), t.real.display(), t.sysbin.display())), "{s}");
    assert!(s.lines().any(|l| l.starts_with("SESSION=") && l.len() > "SESSION=".len() + 16), "{s}");
    assert!(s.contains("status=77"), "{s}");
    assert_eq!(t.audit_records()[0]["session"].as_str().map(str::len), Some(24));
}

#[test]
fn run_and_shellenv_refuse_to_start_an_unguarded_agent() {
    let t = world();
    std::fs::remove_file(t.shims.join("aws")).expect("rm");
    let d = t.shims.to_str().expect("utf8");
    t.guardsh(&["run", "--dir", d, "--", "sh", "-c", "touch started"])
        .output()
        .status(1)
        .stderr_has("no guardsh shim for aws");
    t.guardsh(&["shellenv", "--dir", d]).output().status(1).stderr_has("no guardsh shim for aws");
    assert!(!t.cwd.join("started").exists());

    let t = world().rules("[[rule]]\nid = 1\n");
    t.guardsh(&["run", "--", "sh", "-c", "touch started"]).output().status(78).stderr_has("the policy is invalid");
    assert!(!t.cwd.join("started").exists());
}

#[test]
fn run_exits_127_when_the_agent_command_does_not_exist() {
    let t = world();
    t.guardsh(&["run", "--", "no-such-agent"]).output().status(127).stderr_has("cannot start no-such-agent");
}

#[test]
fn check_says_when_a_command_would_not_go_through_guardsh() {
    let t = world();
    t.guardsh(&["check", "--", "git", "status"]).output().status(0).stdout_has("there is no guardsh shim for git");
    let j = t.guardsh(&["check", "--json", "--", "/usr/bin/kubectl", "delete", "ns", "x"]).output().status(0).json();
    assert!(j["notes"][0].as_str().expect("note").contains("does not go through guardsh's shims"), "{j}");
    let j = t.guardsh(&["check", "--json", "--", "kubectl", "get", "pods"]).output().json();
    assert_eq!(j["notes"], serde_json::json!([]));
}

#[test]
fn installing_a_shim_for_a_tool_the_policy_does_not_know_warns() {
    let t = world();
    t.guardsh(&["install", "helm"]).output().status(0).stderr_has("the policy does not know helm");
    t.guardsh(&["doctor"]).output().stdout_has("helm         shim, but not in the policy");
}

#[test]
fn shellenv_prints_export_lines_that_work() {
    let t = world();
    let out = t.guardsh(&["shellenv", "--dir", t.shims.to_str().expect("utf8")]).output().status(0);
    let exports = out.stdout();
    assert!(exports.starts_with(&format!("export PATH={}:", t.shims.display())), "{exports}");
    assert!(exports.contains("\nexport GUARDSH_SESSION="), "{exports}");
    let path = std::env::join_paths([&t.real, &t.sysbin]).expect("PATH");
    let script = format!("{exports}\nkubectl delete ns x; echo \"status=$?\"");
    t.command("sh").arg_os("-c").arg_os(script).env("PATH", path).output().status(0).stdout_has("status=77");
}

#[test]
fn doctor_reports_a_healthy_setup_and_every_problem() {
    let t = world().env("RAILWAY_TOKEN", "secret-value");
    let ok = t.guardsh(&["doctor", "--dir", t.shims.to_str().expect("utf8")]).output();
    let s = ok.stdout();
    assert_eq!(ok.code(), Some(0), "{s}");
    assert!(
        s.contains("kubectl      guarded  real: ") && s.contains("RAILWAY_TOKEN") && !s.contains("secret-value"),
        "{s}"
    );

    // The real binary first on PATH: kubectl is not guarded.
    let path = std::env::join_paths([&t.real, &t.shims, &t.sysbin]).expect("PATH");
    let bad = t.guardsh(&["doctor", "--dir", t.shims.to_str().expect("utf8")]).env("PATH", path).output().status(1);
    assert!(bad.stdout().contains("kubectl      NOT GUARDED"), "{}", bad.stdout());
    assert!(bad.stdout().contains("put "), "says what to do: {}", bad.stdout());

    // A missing shim and an invalid policy are problems too.
    std::fs::remove_file(t.shims.join("aws")).expect("rm");
    let d = t.guardsh(&["doctor", "--dir", t.shims.to_str().expect("utf8")]).output().status(1);
    let s = d.stdout();
    assert!(s.contains("PROBLEM: no shim for aws; run `guardsh install --dir "), "{s}");
    assert_eq!(s.matches("PROBLEM").count(), 1, "one problem per tool: {s}");
    let t = t.rules("nonsense =");
    t.guardsh(&["doctor"]).output().status(1).stdout_has("the policy is invalid");
}

#[test]
fn audit_verify_finds_edits_deletions_and_reordering() {
    let t = world();
    for args in
        [&["get", "pods"][..], &["delete", "ns", "a"], &["get", "svc"], &["delete", "pod", "b"], &["describe", "x"]]
    {
        t.run("kubectl", args).output();
    }
    t.guardsh(&["audit", "verify"]).output().status(0).stdout_has("ok: 5 records");
    let original = std::fs::read_to_string(t.audit_log()).expect("log");
    let lines: Vec<&str> = original.lines().collect();
    let write = |ls: &[&str]| {
        std::fs::write(t.audit_log(), ls.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write")
    };

    let edited = lines[1].replace("\"deny\"", "\"allow\"");
    write(&[lines[0], &edited, lines[2], lines[3], lines[4]]);
    t.guardsh(&["audit", "verify"]).output().status(1).stderr_has("audit.jsonl:2: record was modified");

    write(&[lines[0], lines[1], lines[3], lines[4]]);
    t.guardsh(&["audit", "verify"]).output().status(1).stderr_has("audit.jsonl:3: does not follow");

    write(&[lines[0], lines[2], lines[1], lines[3], lines[4]]);
    t.guardsh(&["audit", "verify"]).output().status(1).stderr_has("audit.jsonl:2: does not follow");
}

#[test]
fn audit_tail_is_readable() {
    let t = world();
    t.run("kubectl", &["get", "pods"]).output();
    t.run("kubectl", &["delete", "ns", "it's"]).output();
    let out = t.guardsh(&["audit", "tail", "-n", "1"]).output().status(0);
    let s = out.stdout();
    assert_eq!(s.lines().count(), 1, "{s}");
    assert!(
        s.contains("interactive deny           denied")
            && s.contains(r"kubectl delete ns 'it'\''s'")
            && s.contains("[k-delete,k-delete-ns]"),
        "{s}"
    );
}

#[test]
fn install_script_installs_links_and_demonstrates_the_gate() {
    let t = Test::new();
    let prefix = t.root.path().join("prefix");
    let repo = env!("CARGO_MANIFEST_DIR");
    // The binary cargo already built, so the test does not rebuild in release mode; the host's
    // PATH for the utilities the script uses.
    let install = || {
        t.command("bash")
            .arg_os(format!("{repo}/install.sh"))
            .env("PREFIX", &prefix)
            .env("GUARDSH_BINARY", guardsh())
            .env("PATH", std::env::var_os("PATH").expect("PATH"))
            .output()
            .status(0)
    };
    let out = install();
    let s = out.stdout();
    assert!(prefix.join("bin/guardsh").is_file());
    assert!(t.config_dir().join("rules.toml").is_file(), "policy written");
    assert!(t.shims.join("kubectl").is_symlink(), "shims created in the XDG data dir");
    assert!(s.contains("guardsh run --"), "says how to start an agent: {s}");
    assert!(s.contains("shellenv)\""), "says how to set PATH: {s}");
    assert!(s.contains("(exit status 77: denied, nothing ran)"), "the demo ran the shim and it denied: {s}");
    assert!(out.stderr().contains("guardsh: denied: `kubectl delete namespace prod`"), "{}", out.stderr());

    // Idempotent, and an existing policy is never overwritten.
    std::fs::write(t.config_dir().join("rules.toml"), "# mine\n[tools.kubectl]\n").expect("write");
    let again = install();
    assert!(again.stdout().contains("keeping your policy"), "{}", again.stdout());
    assert_eq!(std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("read"), "# mine\n[tools.kubectl]\n");
}

/// a11: a directory the user can write, before guardsh's own on PATH, is where an agent puts a
/// `guardsh` that the human then runs as `guardsh approve`. doctor says so. Run as `nobody` when
/// the tests run as root (root can write anywhere, so nothing is "the user's" to root).
#[test]
fn doctor_warns_about_a_writable_directory_before_guardsh_on_path() {
    let t = world();
    let bin = t.home.join(".local/bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let own = Path::new(guardsh()).parent().expect("guardsh's directory");
    let as_root = nix::unistd::geteuid().is_root();
    let run = |path: &std::ffi::OsStr| {
        let mut r = t.guardsh(&["doctor"]).env("PATH", path);
        if as_root {
            use std::os::unix::process::CommandExt;
            r.cmd.uid(65534).gid(65534);
        }
        r.output().stdout()
    };
    if as_root {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.root.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for d in [&t.home, &bin, &t.home.join(".local"), &t.config_dir(), &t.home.join(".config")] {
            nix::unistd::chown(d.as_path(), Some(65534.into()), Some(65534.into())).expect("chown");
        }
    }
    let before = std::env::join_paths([bin.as_path(), own, &t.shims, &t.sysbin]).expect("PATH");
    let out = run(&before);
    assert!(out.contains(&format!("{} comes before {}", bin.display(), own.display())), "{out}");
    let after = std::env::join_paths([own, bin.as_path(), &t.shims, &t.sysbin]).expect("PATH");
    let out = run(&after);
    assert!(!out.contains("comes before"), "{out}");
}
