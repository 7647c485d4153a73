//! Allowed, asked and denied invocations through a shim: what runs, with which argv and
//! environment, and what the agent is told.

use std::ffi::OsString;

use crate::support::Test;

pub const POLICY: &str = include_str!("fixtures/policy.toml");

pub fn world() -> Test {
    Test::new().rules(POLICY).tools(&["kubectl", "aws", "railway", "terraform", "helm"])
}

fn os(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

#[test]
fn allowed_command_runs_with_exact_argv() {
    let t = world();
    let args = ["get", "pods", "-o", "jsonpath={.items[*].metadata.name}", "it's a \"quoted\" word", "", "-n", "dev"];
    t.run("kubectl", &args).output().status(0);
    assert_eq!(t.saw_args("kubectl"), Some(os(&args)));
}

#[test]
fn real_tool_exit_status_and_output_pass_through() {
    let t = world();
    t.run("kubectl", &["get", "pods"]).env("FAKE_EXIT", "42").output().status(42).stdout_has("fake kubectl ran");
}

#[test]
fn denied_command_does_not_run_and_says_why_without_an_approval_command() {
    let t = world();
    for args in [&["delete", "ns", "prod"][..], &["-n", "prod", "delete", "namespace", "x"], &["DELETE", "NS", "x"]] {
        let d = t
            .run("kubectl", args)
            .output()
            .status(77)
            .stderr_has("deleting a namespace deletes everything in it")
            .stderr_has("k-delete-ns");
        assert_eq!(d.stderr().lines().count(), 1, "one line: {}", d.stderr());
        assert!(!d.stderr().contains("guardsh approve"), "never a runnable approval command");
    }
    assert!(!t.ran("kubectl"));
}

#[test]
fn ask_is_refused_with_75_until_approvals_exist() {
    let t = world();
    t.run("kubectl", &["delete", "pod", "x"])
        .output()
        .status(75)
        .stderr_has("needs human approval")
        .stderr_lacks("guardsh approve");
    t.run("kubectl", &["apply", "-f", "x.yaml"]).output().status(75);
    assert!(!t.ran("kubectl"));
}

#[test]
fn dry_runs_pass_and_fake_dry_runs_do_not() {
    let t = world();
    t.run("kubectl", &["delete", "pod", "x", "--dry-run=server"]).output().status(0);
    t.run("kubectl", &["delete", "pod", "x", "--dry-run", "client"]).output().status(75);
    t.run("kubectl", &["delete", "pod", "x", "--dry-run=none"]).output().status(75);
}

#[test]
fn unknown_tool_is_denied() {
    let t = world();
    t.run("helm", &["list"]).output().status(77).stderr_has("no rules for helm");
    assert!(!t.ran("helm"));
}

#[test]
fn credentials_are_stripped_and_only_granted_ones_reach_their_own_tool() {
    let t = world()
        .env("AWS_ACCESS_KEY_ID", "AKIA")
        .env("AWS_SECRET_ACCESS_KEY", "aws-secret")
        .env("RAILWAY_TOKEN", "rw-token")
        .env("GITHUB_TOKEN", "gh")
        .env("DATABASE_URL", "postgres://u:p@h/db")
        .env("PGPASSWORD", "pg")
        .env("LD_PRELOAD", "/tmp/evil.so")
        .env("BASH_ENV", "/tmp/evil.sh")
        .env("AWS_PROFILE", "prod")
        .env("KUBECONFIG", "/k")
        .env("EDITOR", "vi");

    t.run("kubectl", &["get", "pods"]).output().status(0);
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "RAILWAY_TOKEN",
        "GITHUB_TOKEN",
        "DATABASE_URL",
        "PGPASSWORD",
        "LD_PRELOAD",
        "BASH_ENV",
    ] {
        assert_eq!(t.saw_var("kubectl", v), None, "kubectl must not see {v}");
    }
    for (v, want) in [("AWS_PROFILE", "prod"), ("KUBECONFIG", "/k"), ("EDITOR", "vi")] {
        assert_eq!(t.saw_var("kubectl", v).as_deref(), Some(want), "{v} is not a credential and passes");
    }

    t.run("aws", &["s3", "ls"]).output().status(0);
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("aws-secret"));
    assert_eq!(t.saw_var("aws", "AWS_ACCESS_KEY_ID").as_deref(), Some("AKIA"));
    assert_eq!(t.saw_var("aws", "RAILWAY_TOKEN"), None, "aws never sees railway's token");
    assert_eq!(t.saw_var("aws", "LD_PRELOAD"), None);

    t.run("railway", &["status"]).output().status(0);
    assert_eq!(t.saw_var("railway", "RAILWAY_TOKEN").as_deref(), Some("rw-token"));
    assert_eq!(t.saw_var("railway", "AWS_SECRET_ACCESS_KEY"), None);

    // Allowed, but this rule grants nothing: the tool's own token stays out too.
    t.run("railway", &["whoami"]).output().status(0);
    assert_eq!(t.saw_var("railway", "RAILWAY_TOKEN"), None);
}

#[test]
fn audit_records_names_never_values() {
    let t = world().env("AWS_SECRET_ACCESS_KEY", "very-secret-value").env("AWS_ACCESS_KEY_ID", "AKIAVALUE");
    t.run("aws", &["s3", "ls"]).output().status(0);
    t.run("kubectl", &["get", "pods"]).output().status(0);
    let log = std::fs::read_to_string(t.audit_log()).expect("audit log");
    assert!(!log.contains("very-secret-value") && !log.contains("AKIAVALUE"));
    let recs = t.audit_records();
    assert_eq!(recs[0]["passed"], serde_json::json!(["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]));
    assert!(recs[1]["stripped"].as_array().expect("list").contains(&serde_json::json!("AWS_SECRET_ACCESS_KEY")));
}

#[test]
fn sigpipe_is_default_in_the_real_tool() {
    let t = world();
    t.run("kubectl", &["get", "pods"]).output().status(0);
    let sig = std::fs::read_to_string(t.records.join("kubectl.sig")).expect("sig record");
    let mask = u64::from_str_radix(sig.trim().trim_start_matches("SigIgn:").trim(), 16).expect("hex mask");
    assert_eq!(mask & (1 << (13 - 1)), 0, "SIGPIPE (13) must not be ignored: {sig}");
}

#[test]
fn a_pipe_closed_early_ends_the_real_tool_quietly() {
    // Without the SIGPIPE reset, `yes`-like tools would print EPIPE errors instead of dying.
    let t = world();
    crate::support::write_executable(&t.real.join("kubectl"), "#!/bin/sh\nexec yes\n");
    let out = t.command("sh").arg_os("-c").arg_os("kubectl get pods | head -n 1").output().status(0);
    assert_eq!(out.stdout(), "y\n");
    assert_eq!(out.stderr(), "");
}

#[test]
fn ci_mode_denies_every_ask_and_nothing_loosens_it() {
    let t = world();
    t.run("kubectl", &["delete", "pod", "x"]).env("CI", "true").output().status(77).stderr_has("CI mode");
    t.run("kubectl", &["delete", "pod", "x"]).env("GUARDSH_MODE", "ci").output().status(77);
    t.run("kubectl", &["get", "pods"]).env("CI", "true").output().status(0);

    let t =
        Test::new().rules(&POLICY.replacen("wait = false\n", "wait = false\nmode = \"ci\"\n", 1)).tools(&["kubectl"]);
    t.run("kubectl", &["delete", "pod", "x"]).env("GUARDSH_MODE", "interactive").env("CI", "false").output().status(77);
}

#[test]
fn every_invocation_is_audited_with_its_decision() {
    let t = world();
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.run("kubectl", &["delete", "ns", "x"]).output().status(77);
    t.run("kubectl", &["delete", "pod", "x"]).output().status(75);
    let recs = t.audit_records();
    let summary: Vec<(String, String)> = recs
        .iter()
        .map(|r| (r["decision"].as_str().unwrap_or("").into(), r["outcome"].as_str().unwrap_or("").into()))
        .collect();
    assert_eq!(
        summary,
        [("allow".into(), "exec".into()), ("deny".into(), "denied".into()), ("ask".into(), "requested".into())]
    );
    let r = &recs[1];
    assert_eq!(r["tool"], "kubectl");
    assert_eq!(r["argv"], serde_json::json!(["kubectl", "delete", "ns", "x"]));
    assert_eq!(r["rules"], serde_json::json!(["k-delete", "k-delete-ns"]));
    assert_eq!(r["mode"], "interactive");
    assert_eq!(r["cwd"], t.cwd.to_str().expect("utf8 path"));
    assert!(r["pid"].as_u64().is_some() && r["ppid"].as_u64().is_some() && r["time"].as_str().is_some());
    assert_eq!(recs[0]["real"], t.real.join("kubectl").to_str().expect("utf8"));
}

/// a10: input files reach the tool as the copy guardsh read, named `/dev/fd/N` in the one word
/// that held the path (a glued `--filename=` keeps its prefix; terraform's plan file is found
/// under `-chdir`, as terraform finds it).
#[test]
fn input_files_reach_the_tool_as_the_copy_guardsh_read() {
    let policy = r#"
[settings]
wait = false
[tools.kubectl]
default = "ask"
[tools.helm]
default = "ask"
[tools.terraform]
default = "ask"
[[rule]]
id = "k-apply"
tool = "kubectl"
action = "allow"
reason = "test"
args = ["apply"]
[[rule]]
id = "h-upgrade"
tool = "helm"
action = "allow"
reason = "test"
args = ["upgrade"]
[[rule]]
id = "tf-apply"
tool = "terraform"
action = "allow"
reason = "test"
args = ["apply"]
"#;
    let t = Test::new().rules(policy).tools(&["kubectl", "helm", "terraform"]);
    for tool in ["kubectl", "helm", "terraform"] {
        let rec = t.records.join(tool);
        crate::support::write_executable(
            &t.real.join(tool),
            &format!(
                "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > '{rec}.args'\n: > '{rec}.input'\nfor a in \"$@\"; do case \"$a\" in *'/dev/fd/'*) cat \"/dev/fd/${{a##*/dev/fd/}}\" >> '{rec}.input';; esac; done\n",
                rec = rec.display()
            ),
        );
    }
    let input = |tool: &str| std::fs::read_to_string(t.records.join(format!("{tool}.input"))).expect("input");
    std::fs::write(t.cwd.join("web.yaml"), "kind: Deployment\nmetadata:\n  name: web\n").expect("write");
    std::fs::write(t.cwd.join("values.yaml"), "replicas: 3\n").expect("write");
    std::fs::create_dir_all(t.cwd.join("infra")).expect("mkdir");
    std::fs::write(t.cwd.join("infra/plan.bin"), "PK plan bytes").expect("write");

    t.run("kubectl", &["apply", "--filename=web.yaml"]).output().status(0);
    let args = t.saw_args("kubectl").expect("ran");
    assert!(args[1].to_string_lossy().starts_with("--filename=/dev/fd/"), "{args:?}");
    assert_eq!(input("kubectl"), "kind: Deployment\nmetadata:\n  name: web\n");

    t.run("helm", &["upgrade", "web", "./chart", "-f", "values.yaml"]).output().status(0);
    let args = t.saw_args("helm").expect("ran");
    assert_eq!(args[..3], [OsString::from("upgrade"), "web".into(), "./chart".into()]);
    assert!(args[4].to_string_lossy().starts_with("/dev/fd/"), "{args:?}");
    assert_eq!(input("helm"), "replicas: 3\n");

    t.run("terraform", &["-chdir=infra", "apply", "plan.bin"]).output().status(0);
    let args = t.saw_args("terraform").expect("ran");
    assert_eq!(args[..2], [OsString::from("-chdir=infra"), "apply".into()]);
    assert!(args[2].to_string_lossy().starts_with("/dev/fd/"), "{args:?}");
    assert_eq!(input("terraform"), "PK plan bytes");

    // What cannot be copied is never allowed: a directory, a URL, a missing file.
    t.forget("kubectl");
    for args in
        [&["apply", "-f", "."][..], &["apply", "-f", "https://example.com/x.yaml"], &["apply", "-f", "nope.yaml"]]
    {
        t.run("kubectl", args).output().status(75);
    }
    t.run("terraform", &["apply", "plan.bin"]).output().status(75);
    assert!(!t.ran("kubectl"));
}

/// b25: rules see kubectl resource words in canonical form, so a rule written with a short name
/// is widened to the canonical one: it still holds, and now for every spelling.
#[test]
fn rules_written_with_short_names_hold_for_every_spelling() {
    let policy = r#"
[settings]
wait = false
[tools.kubectl]
default = "ask"
[[rule]]
id = "no-deploy-delete"
tool = "kubectl"
action = "deny"
reason = "deployments are managed by CI"
args = ["delete", "{deploy,deploy/*}"]
"#;
    let t = Test::new().rules(policy).tools(&["kubectl"]);
    for args in [
        &["delete", "deploy", "web"][..],
        &["delete", "deployment.apps", "web"],
        &["delete", "Deployments.v1.apps", "web"],
        &["delete", "deploy/web"],
        &["delete", "pods,deployment", "web"],
    ] {
        t.run("kubectl", args).output().status(77).stderr_has("deployments are managed by CI");
    }
    assert!(!t.ran("kubectl"));
}
