//! The Rego stage (`[policy]`, src/policy/) through the real shim: a Rego policy can only tighten
//! the rules' decision, and every way it can fail denies; the example production policy decides as
//! the real OPA does (the PyPI wheel opa-golib-python-bindings, OPA v1.20, through
//! `tests/rego/opa_harness.py`) on generated invocations; an OPA server on 127.0.0.1 that
//! answers, refuses, stalls or talks nonsense; `check --json`, `policy test` and decision logs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Test, as_root};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// allow, ask or deny by the first word; undefined for `describe`.
const BY_VERB: &str = r#"package guardsh

import rego.v1

decision := {"action": "deny", "reasons": [sprintf("rego says no to %s", [input.words[0]])]} if input.words[0] == "delete"

decision := {"action": "ask", "reasons": ["rego asks about scale"]} if input.words[0] == "scale"

decision := {"action": "allow", "reasons": []} if input.words[0] in {"get", "drain", "logs"}
"#;

/// A test whose rules allow every kubectl and psql command and whose `[policy]` is `settings`
/// (with `REGO` standing for the path of a file holding `rego`).
fn world(rego: &str, settings: &str) -> (Test, PathBuf) {
    let t = Test::new().tools(&["kubectl", "psql"]);
    let dir = t.root.path().join("policy");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("guardsh.rego");
    std::fs::write(&file, rego).expect("write rego");
    let settings = settings.replace("REGO", &file.display().to_string());
    let t = t.rules(&format!(
        "[settings]\nwait = false\n\n[tools.kubectl]\ndefault = \"allow\"\n\n[tools.psql]\ndefault = \"allow\"\n\n[policy]\n{settings}\n"
    ));
    (t, file)
}

fn rego_world(rego: &str) -> Test {
    world(rego, "rego = [\"REGO\"]").0
}

#[test]
fn the_policy_allows_asks_and_denies_through_the_shim() {
    let t = rego_world(BY_VERB);
    t.run("kubectl", &["get", "pods"]).output().status(0).stdout_has("fake kubectl ran");
    t.forget("kubectl");
    t.guardsh(&["check-config"])
        .output()
        .status(0)
        .stdout_has("rego: 1 Rego files, 0 data documents, compiled to an RVM program");
    t.run("kubectl", &["scale", "deploy/web", "--replicas=2"]).output().status(75).stderr_has("rego asks about scale");
    assert!(!t.ran("kubectl"));
    let d = t.run("kubectl", &["delete", "pod", "x"]).output().status(77).stderr_has("rego says no to delete");
    assert!(!d.stderr().contains("guardsh approve"), "{}", d.stderr());
    assert!(!t.ran("kubectl"));
    let last = t.audit_records().pop().expect("a record");
    assert_eq!((last["decision"].as_str(), last["reason"].as_str()), (Some("deny"), Some("rego says no to delete")));
}

#[test]
fn the_policy_cannot_loosen_the_rules() {
    let (t, _) = world(BY_VERB, "rego = [\"REGO\"]");
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    let t = t.rules(&format!(
        "{rules}\n[[rule]]\nid = \"no-drain\"\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"draining is for humans\"\nargs = [\"drain\"]\n\n[[rule]]\nid = \"logs-ask\"\ntool = \"kubectl\"\naction = \"ask\"\nreason = \"logs may hold secrets\"\nargs = [\"logs\"]\n"
    ));
    t.run("kubectl", &["drain", "node-1"]).output().status(77).stderr_has("draining is for humans");
    t.run("kubectl", &["logs", "web"]).output().status(75).stderr_has("logs may hold secrets");
    assert!(!t.ran("kubectl"));
}

#[test]
fn in_ci_mode_an_ask_from_the_policy_is_a_deny() {
    let t = rego_world(BY_VERB);
    t.run("kubectl", &["scale", "deploy/web", "--replicas=2"])
        .env("GUARDSH_MODE", "ci")
        .output()
        .status(77)
        .stderr_has("denied in CI mode")
        .stderr_has("rego asks about scale");
    assert!(!t.ran("kubectl"));
}

/// Every way the stage can fail denies, says why, and runs nothing.
#[test]
fn every_failure_of_the_stage_denies() {
    let heavy = "package guardsh\n\ndecision := {\"action\": \"allow\", \"reasons\": [], \"n\": n}\n\nn := count([x | some i in numbers.range(1, 4000); some j in numbers.range(1, 4000); x := i * j])\n";
    let cases: &[(&str, &str, &str, &str)] = &[
        ("a parse error", "package guardsh\n\ndecision := {\n", "rego = [\"REGO\"]", "does not parse"),
        (
            "an undefined decision",
            "package guardsh\n\ndecision := {\"action\": \"allow\", \"reasons\": []} if input.words[0] == \"nothing\"\n",
            "rego = [\"REGO\"]",
            "undefined",
        ),
        (
            // OPA calls this an evaluation error; regorus leaves the rule undefined. Both deny.
            "two values for one rule",
            "package guardsh\n\ndecision := {\"action\": \"allow\", \"reasons\": []} if true\n\ndecision := {\"action\": \"ask\", \"reasons\": []} if true\n",
            "rego = [\"REGO\"]",
            "gave no usable decision",
        ),
        (
            // The same: OPA's error is regorus's undefined.
            "a builtin's error",
            "package guardsh\n\ndecision := {\"action\": \"allow\", \"reasons\": [], \"n\": to_number(input.words[0])}\n",
            "rego = [\"REGO\"]",
            "gave no usable decision",
        ),
        ("the time limit", heavy, "rego = [\"REGO\"]\ntimeout_ms = 20", "evaluation failed"),
        (
            "an action that is not one",
            "package guardsh\n\ndecision := {\"action\": \"ALLOW\", \"reasons\": []}\n",
            "rego = [\"REGO\"]",
            "decision.action is not",
        ),
        (
            "a decision that is not an object",
            "package guardsh\n\ndecision := true\n",
            "rego = [\"REGO\"]",
            "is not an object",
        ),
        (
            "reasons that are not strings",
            "package guardsh\n\ndecision := {\"action\": \"allow\", \"reasons\": [1]}\n",
            "rego = [\"REGO\"]",
            "reasons is not a list of strings",
        ),
        ("a pattern that names no file", "package guardsh\n", "rego = [\"REGO*.nothing\"]", "names no file"),
        (
            "a data file that is not JSON",
            "package guardsh\n\ndecision := {\"action\": \"allow\", \"reasons\": []}\n",
            "rego = [\"REGO\"]\ndata = [\"REGO\"]",
            "is not JSON",
        ),
    ];
    for (what, rego, settings, why) in cases {
        let (t, _) = world(rego, settings);
        let start = Instant::now();
        let d = t.run("kubectl", &["get", "pods"]).output();
        assert_eq!(d.code(), Some(77), "{what}: {}", d.stderr());
        assert!(d.stderr().contains("guardsh fails closed") && d.stderr().contains(why), "{what}: {}", d.stderr());
        assert!(!t.ran("kubectl"), "{what}");
        assert!(start.elapsed() < Duration::from_secs(5), "{what} took {:?}", start.elapsed());
        // `check-config` says so before any command runs, where it does not depend on the input.
        let cc = t.guardsh(&["check-config"]).output();
        if ["a parse error", "a pattern that names no file", "a data file that is not JSON"].contains(what) {
            assert_eq!(cc.code(), Some(78), "{what}: {}", cc.stderr());
            assert!(cc.stderr().contains("the Rego policy does not load"), "{what}: {}", cc.stderr());
        }
        // `check` says the same, with the input it evaluated.
        let v = t.guardsh(&["check", "--json", "--", "kubectl", "get", "pods"]).output().status(0).json();
        assert_eq!(v["decision"], "deny", "{what}");
        assert_eq!(v["cause"], "policy", "{what}");
        assert!(v["reason"].as_str().is_some_and(|e| e.contains(why)), "{what}: {v}");
        assert!(v["policy"]["engines"][0]["error"].is_string(), "{what}: {v}");
    }
}

#[test]
fn a_policy_file_the_system_layer_names_must_be_roots() {
    if !as_root() {
        eprintln!("skipping: only root can make a root-owned system policy");
        return;
    }
    let t = Test::new().tools(&["kubectl"]);
    let dir = t.root.path().join("sys-policy");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("p.rego");
    std::fs::write(&file, "package guardsh\n\ndecision := {\"action\": \"allow\", \"reasons\": []}\n").expect("write");
    std::fs::create_dir_all(t.system_dir()).expect("mkdir");
    std::fs::write(
        t.system_dir().join("rules.toml"),
        format!(
            "[settings]\npacks = []\n\n[tools.kubectl]\ndefault = \"allow\"\n\n[policy]\nrego = [\"{}\"]\n",
            file.display()
        ),
    )
    .expect("write system policy");
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.forget("kubectl");
    // Anyone but root could rewrite it: the stage fails closed.
    nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(65534)), None).expect("chown");
    t.run("kubectl", &["get", "pods"]).output().status(77).stderr_has("must be owned by root");
    assert!(!t.ran("kubectl"));
    // Under a system policy no compiled program is read from the user's state directory.
    assert!(!t.state_dir().join("rego-cache").exists());
}

#[test]
fn check_json_shows_the_input_and_the_result_and_the_program_is_cached() {
    let t = rego_world(BY_VERB);
    let v = t
        .guardsh(&["check", "--json", "--", "kubectl", "-n", "prod", "--context=eu", "delete", "pod", "x"])
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .status(0)
        .json();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["cause"], "policy");
    let input = &v["policy"]["input"];
    assert_eq!(input["version"], 1);
    assert_eq!(input["tool"], "kubectl");
    // Words as the rules see them: aliases resolved, resource names canonical.
    assert_eq!(input["words"], serde_json::json!(["delete", "pods", "x"]));
    assert_eq!(input["flags"]["--namespace"], serde_json::json!(["prod"]));
    assert_eq!(input["kube"]["context"], "eu");
    assert_eq!(input["kube"]["namespace"], "prod");
    assert_eq!(input["selectors"]["KUBECONFIG"], "/nonexistent");
    assert_eq!(input["toml"]["action"], "allow");
    assert_eq!(input["mode"], "interactive");
    assert_eq!(v["policy"]["engines"][0]["result"]["action"], "deny");
    assert_eq!(v["policy"]["engines"][0]["how"], "rvm");
    // The compiled program is kept (0700 directory, 0600 file) and read on the next call.
    use std::os::unix::fs::PermissionsExt;
    let cache = t.state_dir().join("rego-cache");
    assert_eq!(std::fs::metadata(&cache).expect("cache dir").permissions().mode() & 0o777, 0o700);
    for e in std::fs::read_dir(&cache).expect("list") {
        assert_eq!(e.expect("entry").metadata().expect("stat").permissions().mode() & 0o777, 0o600);
    }
    let v = t.guardsh(&["check", "--json", "--", "kubectl", "get", "pods"]).output().status(0).json();
    assert_eq!(
        (v["decision"].as_str(), v["policy"]["engines"][0]["how"].as_str()),
        (Some("allow"), Some("rvm (cached)"))
    );
    // The text explanation names the stage.
    t.guardsh(&["check", "--", "kubectl", "delete", "pod", "x"])
        .output()
        .status(0)
        .stdout_has("policy:      deny (rego");
}

#[test]
fn sql_statements_and_their_kinds_reach_the_policy() {
    let t = rego_world(
        "package guardsh\n\nimport rego.v1\n\ndefault decision := {\"action\": \"allow\", \"reasons\": []}\n\ndecision := {\"action\": \"deny\", \"reasons\": [\"no DROP\"]} if {\n\tsome s in input.sql.statements\n\ts.kind == \"DROP TABLE\"\n}\n",
    );
    t.run("psql", &["-c", "select 1; DROP TABLE users"]).output().status(77).stderr_has("no DROP");
    t.run("psql", &["-c", "select 1"]).output().status(0);
    let v = t.guardsh(&["check", "--json", "--", "psql", "-c", "select 1; drop table t"]).output().json();
    let kinds: Vec<&str> = v["policy"]["input"]["sql"]["statements"]
        .as_array()
        .expect("statements")
        .iter()
        .filter_map(|s| s["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["SELECT", "DROP TABLE"]);
}

#[test]
fn a_project_file_cannot_name_a_policy() {
    let t = rego_world(BY_VERB);
    let d = t.trust_project_rules("[policy]\nrego = [\"/tmp/evil.rego\"]\n");
    // Trusting shows the problem, or the shim refuses the invalid project layer: never a policy.
    let run = t.run("kubectl", &["get", "pods"]).output();
    assert!(
        d.stderr().contains("[policy] may only be set in the base policy")
            || run.stderr().contains("[policy] may only be set in the base policy"),
        "{} / {}",
        d.stderr(),
        run.stderr()
    );
}

#[test]
fn decision_logs_have_opas_shape() {
    let (t, _) = world(BY_VERB, "rego = [\"REGO\"]\ndecision_log = \"LOG\"");
    let log = t.root.path().join("decisions.jsonl");
    let text = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    let t = t.rules(&text.replace("LOG", &log.display().to_string()));
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.run("kubectl", &["delete", "pod", "x"]).output().status(77);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .expect("decision log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    for e in &lines {
        for field in ["decision_id", "path", "input", "result", "timestamp", "bundles", "labels"] {
            assert!(e.get(field).is_some(), "{field} in {e}");
        }
        assert_eq!(e["path"], "guardsh/decision");
    }
    assert_ne!(lines[0]["decision_id"], lines[1]["decision_id"]);
    assert_eq!(lines[1]["result"]["action"], "deny");
    assert_eq!(lines[1]["guardsh"]["final"], "deny");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&log).expect("stat").permissions().mode() & 0o777, 0o600);
}

#[test]
fn an_opa_bundle_is_read_with_its_data_and_revision() {
    let (t, _) = world(BY_VERB, "rego = [\"BUNDLE\"]\ndecision_log = \"LOG\"");
    let bundle = t.root.path().join("guardsh.tar.gz");
    let log = t.root.path().join("decisions.jsonl");
    // As `opa build` lays one out: absolute names, a manifest, data.json at its path.
    let made = Command::new("python3")
        .args([
            "-c",
            "import io, sys, tarfile\nwith tarfile.open(sys.argv[1], 'w:gz') as t:\n    for name, text in [('/.manifest', '{\"revision\": \"rev-7\"}'), ('/guardsh/policy.rego', 'package guardsh\\nimport rego.v1\\ndefault decision := {\"action\": \"allow\", \"reasons\": []}\\ndecision := {\"action\": \"deny\", \"reasons\": [data.limits.msg]} if input.words[0] == \"delete\"\\n'), ('/limits/data.json', '{\"msg\": \"the bundle says no\"}')]:\n        b = text.encode()\n        i = tarfile.TarInfo(name); i.size = len(b); t.addfile(i, io.BytesIO(b))\n",
        ])
        .arg(&bundle)
        .status()
        .expect("python3");
    assert!(made.success());
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    let t = t.rules(&rules.replace("BUNDLE", &bundle.display().to_string()).replace("LOG", &log.display().to_string()));
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.run("kubectl", &["delete", "pod", "x"]).output().status(77).stderr_has("the bundle says no");
    let last: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).expect("log").lines().last().expect("a line"))
            .expect("JSON");
    assert_eq!(last["bundles"]["guardsh"]["revision"], "rev-7");
    // A bundle that is not one denies.
    std::fs::write(&bundle, "not a bundle").expect("write");
    t.run("kubectl", &["get", "pods"]).output().status(77).stderr_has("is not a gzip bundle");
}

/// A human approves what the stage asked about, where the stage decided by the environment (the
/// AWS profile): `guardsh approve` re-asks the policy with the variables the request binds, and
/// gets the same answer.
#[test]
fn an_ask_that_depends_on_a_selector_can_be_approved() {
    let t = Test::new().tools(&["aws"]);
    let file = t.root.path().join("p.rego");
    std::fs::write(
        &file,
        "package guardsh\n\nimport rego.v1\n\ndefault decision := {\"action\": \"allow\", \"reasons\": []}\n\ndecision := {\"action\": \"ask\", \"reasons\": [\"production profile\"]} if input.selectors.AWS_PROFILE == \"prod-admin\"\n",
    )
    .expect("write rego");
    let t = t
        .rules(&format!(
            "[settings]\nwait = true\n\n[tools.aws]\ndefault = \"allow\"\n\n[policy]\nrego = [{:?}]\n",
            file.display().to_string()
        ))
        .env("AWS_PROFILE", "prod-admin");
    let asked = t.run_detached("aws", &["s3", "ls"]);
    let id = t.wait_for_pending(1).remove(0);
    assert!(!t.ran("aws"));
    t.approve(&id);
    assert_eq!(asked.wait(Duration::from_secs(20)), Some(0), "{}", asked.stderr());
    assert!(asked.stderr().contains("production profile"), "{}", asked.stderr());
    assert!(t.ran("aws"));
}

#[test]
fn policy_test_runs_a_table_of_cases() {
    let t = Test::new().example_rules();
    let repo = Path::new(MANIFEST);
    t.guardsh(&[
        "policy",
        "test",
        "rego/production_test.toml",
        "--rego",
        "rego/production.rego",
        "--data",
        "rego/data.json",
    ])
    .cwd(repo)
    .output()
    .status(0)
    .stdout_has("16 passed, 0 failed");
    // A wrong expectation fails the run, naming the case.
    let table = t.root.path().join("wrong.toml");
    std::fs::write(&table, "[[case]]\nname = \"reads in production\"\nargv = [\"kubectl\", \"--context\", \"prod\", \"get\", \"pods\"]\nrego = \"deny\"\n")
        .expect("write");
    t.guardsh(&["policy", "test", &table.display().to_string(), "--rego", "rego/production.rego"])
        .cwd(repo)
        .output()
        .status(1)
        .stdout_has("FAIL reads in production: expected the Rego stage to say deny, it said allow");
}

#[test]
fn inside_guardsh_run_the_broker_applies_the_same_stage() {
    use crate::escapes::{Mode, agent, sandboxed};
    let Some(t) = sandboxed() else { return };
    let file = t.config_dir().join("inside.rego");
    std::fs::write(
        &file,
        "package guardsh\n\nimport rego.v1\n\ndefault decision := {\"action\": \"allow\", \"reasons\": []}\n\ndecision := {\"action\": \"deny\", \"reasons\": [\"rego: no secrets today\"]} if \"secrets\" in input.words\n",
    )
    .expect("write rego");
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    std::fs::write(
        t.config_dir().join("rules.toml"),
        format!("{rules}\n[policy]\nrego = [{:?}]\n", file.display().to_string()),
    )
    .expect("rules");
    // The rules allow both reads; the stage denies one, inside the sandbox as outside it.
    let script = "kubectl get pods >/dev/null; echo pods=$?; kubectl get secrets; echo secrets=$?";
    for mode in [Mode::Sandbox, Mode::NoSandbox] {
        let (code, out, err) = agent(&t, mode, script);
        assert_eq!(code, Some(0), "{mode:?}: {err}");
        assert!(out.contains("pods=0") && out.contains("secrets=77"), "{mode:?}: {out}\n{err}");
        assert!(err.contains("rego: no secrets today"), "{mode:?}: {err}");
    }
}

// --- The real OPA -----------------------------------------------------------------------------

/// The directory holding the wheel's `opa_bindings` package: `GUARDSH_OPA_BINDINGS`, or where
/// .ci/run unpacks it. `None` (and a message) when it is missing; under CI that fails instead.
fn opa_bindings() -> Option<PathBuf> {
    let dir = std::env::var_os("GUARDSH_OPA_BINDINGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST).join("target/ci-opa"));
    if dir.join("opa_bindings/libopabridge.so").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide OPA (.ci/run unpacks opa-golib-python-bindings into target/ci-opa)"
    );
    eprintln!("skipping: no OPA here (pip download opa-golib-python-bindings; see .ci/run)");
    None
}

fn harness() -> PathBuf {
    Path::new(MANIFEST).join("tests/rego/opa_harness.py")
}

#[test]
fn the_example_policy_decides_as_opa_does_on_generated_invocations() {
    let Some(bindings) = opa_bindings() else { return };
    let t = Test::new().example_rules();
    let dir = t.root.path().join("generated");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let seed = std::env::var("GUARDSH_REGO_SEED").unwrap_or_else(|_| "14".into());
    let ok = Command::new("python3")
        .arg(harness())
        .args(["generate", "600", &seed])
        .arg(&dir)
        .env("GUARDSH_OPA_BINDINGS", &bindings)
        .status()
        .expect("python3");
    assert!(ok.success(), "generating cases");
    let repo = Path::new(MANIFEST);
    let rego = repo.join("rego/production.rego");
    let data = repo.join("rego/data.json");
    let cases = dir.join("cases.toml");
    let out = t
        .guardsh(&[
            "policy",
            "test",
            "--json",
            "--rego",
            &rego.display().to_string(),
            "--data",
            &data.display().to_string(),
        ])
        .arg_os(&cases)
        .cwd(&dir)
        .output();
    // Every case passes: there are no expectations, but the program and the interpreter agree.
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout(), out.stderr());
    let mut diff = Command::new("python3")
        .arg(harness())
        .arg("diff")
        .arg(&rego)
        .arg(&data)
        .env("GUARDSH_OPA_BINDINGS", &bindings)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    diff.stdin.take().expect("stdin").write_all(out.stdout().as_bytes()).expect("feed the harness");
    let result = diff.wait_with_output().expect("harness");
    let summary: serde_json::Value = serde_json::from_slice(&result.stdout).expect("the harness's summary");
    eprintln!("regorus and OPA: {summary}");
    assert!(result.status.success(), "regorus and OPA differ: {summary:#}");
    assert!(summary["total"].as_u64().is_some_and(|n| n >= 500), "{summary}");
    assert_eq!(summary["same"], summary["total"]);
    // The cases exercise every decision.
    for action in ["allow", "ask", "deny"] {
        assert!(summary["actions"][action].as_u64().is_some_and(|n| n >= 20), "{action}: {summary}");
    }
}

/// The harness's OPA Data API on a free 127.0.0.1 port, stopped when dropped.
struct OpaServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl OpaServer {
    fn start(bindings: &Path, policy: &Path, dir: &Path) -> OpaServer {
        let portfile = dir.join("port");
        let log = dir.join("requests.jsonl");
        let child = Command::new("python3")
            .arg(harness())
            .arg("serve")
            .arg(policy)
            .arg(&portfile)
            .arg(&log)
            .env("GUARDSH_OPA_BINDINGS", bindings)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3");
        let start = Instant::now();
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&portfile) {
                break p.trim().parse().expect("a port");
            }
            assert!(start.elapsed() < Duration::from_secs(30), "the OPA server did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        OpaServer { child, port, log }
    }
}

impl Drop for OpaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_opa_server_decides_and_every_failure_of_it_denies() {
    let Some(bindings) = opa_bindings() else { return };
    let (t, policy) = world(BY_VERB, "opa_url = \"URL\"\ntimeout_ms = 400");
    let server = OpaServer::start(&bindings, &policy, t.root.path());
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    let with = |path: &str, extra: &str| {
        let url = format!("http://127.0.0.1:{}/v1/data/{path}", server.port);
        std::fs::write(
            t.config_dir().join("rules.toml"),
            rules.replace("URL", &url).replace("timeout_ms = 400", &format!("timeout_ms = 400\n{extra}")),
        )
        .expect("write rules");
    };
    with("guardsh/decision", "");
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.forget("kubectl");
    t.run("kubectl", &["scale", "deploy/web", "--replicas=2"]).output().status(75).stderr_has("rego asks about scale");
    t.run("kubectl", &["delete", "pod", "x"]).output().status(77).stderr_has("rego says no to delete");
    // OPA answers without a result: undefined.
    t.run("kubectl", &["describe", "pod", "x"]).output().status(77).stderr_has("undefined");
    // The server saw the documented input.
    let seen = std::fs::read_to_string(&server.log).expect("requests");
    let first: serde_json::Value = serde_json::from_str(seen.lines().next().expect("a request")).expect("JSON");
    assert_eq!(first["path"], "/v1/data/guardsh/decision");
    assert_eq!(first["body"]["input"]["tool"], "kubectl");
    assert_eq!(first["body"]["input"]["words"], serde_json::json!(["get", "pods"]));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    for (what, path, why) in [
        ("a 500", "fail500/x", "answered 500: storage unavailable"),
        ("a server too slow", "slow/x", "no answer within 400 ms"),
        ("garbage", "garbage/x", "not JSON"),
        ("a result of the wrong shape", "shape/x", "decision.action is not"),
        ("a path with no decision", "guardsh/nothing", "undefined"),
    ] {
        with(path, "");
        let start = Instant::now();
        let d = t.run("kubectl", &["get", "pods"]).output();
        assert_eq!(d.code(), Some(77), "{what}: {}", d.stderr());
        assert!(d.stderr().contains(why) && d.stderr().contains("fails closed"), "{what}: {}", d.stderr());
        assert!(start.elapsed() < Duration::from_secs(3), "{what} took {:?}", start.elapsed());
        assert!(!t.ran("kubectl"), "{what}");
    }
    // Nobody listening.
    std::fs::write(
        t.config_dir().join("rules.toml"),
        rules.replace("URL", &format!("http://127.0.0.1:{closed}/v1/data/guardsh/decision")),
    )
    .expect("write rules");
    t.run("kubectl", &["get", "pods"]).output().status(77).stderr_has("cannot reach 127.0.0.1");
    // With on_error = "ask", a failing server asks instead (and never allows).
    with("fail500/x", "on_error = \"ask\"");
    t.run("kubectl", &["get", "pods"]).output().status(75).stderr_has("answered 500");
    assert!(!t.ran("kubectl"));
}

#[test]
fn opa_url_must_be_plain_http_and_on_error_cannot_allow() {
    for (settings, why) in [
        ("opa_url = \"https://opa.example/v1/data/guardsh/decision\"", "https is not supported"),
        (
            "opa_url = \"http://127.0.0.1:8181/v1/data/guardsh/decision\"\non_error = \"allow\"",
            "fails open every command",
        ),
        ("rego = [\"relative.rego\"]", "absolute path"),
    ] {
        let (t, _) = world("package guardsh\n", settings);
        // The shim refuses (78); `check-config` says why, to the human.
        t.run("kubectl", &["get", "pods"]).output().status(78);
        let d = t.guardsh(&["check-config"]).output();
        assert_eq!(d.code(), Some(78), "{settings}: {}", d.stderr());
        assert!(d.stderr().contains(why), "{settings}: {}", d.stderr());
    }
}
