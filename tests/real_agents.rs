//! Real agents in front of guardsh, as their users run them: Claude Code (the pinned npm
//! release `.ci/run` installs; its path in `GUARDSH_TEST_CLAUDE`) inside `guardsh run`, as an
//! unprivileged uid, driven by a scripted model server of our own (`agents/model_server.py`,
//! 127.0.0.1 only), with fake tools as the oracle of what really ran and a human approving from
//! a second terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::custody::chown_tree;
use crate::support::Test;

const AGENT: u32 = 65534;

/// The Claude Code binary to test, or None (and why) where it cannot be had.
fn claude() -> Option<PathBuf> {
    let found = std::env::var_os("GUARDSH_TEST_CLAUDE").map(PathBuf::from).filter(|p| p.exists());
    if found.is_none() {
        if let Ok(why) = std::env::var("GUARDSH_TEST_CLAUDE_SKIP") {
            eprintln!("SKIPPED: {why}");
            return None;
        }
        assert!(std::env::var_os("CI").is_none(), "CI installs Claude Code and sets GUARDSH_TEST_CLAUDE (.ci/run)");
        eprintln!("SKIPPED: set GUARDSH_TEST_CLAUDE to a Claude Code binary (.ci/run installs the pinned one)");
    }
    found
}

/// The scripted model: answers each turn with the next command for the agent's shell tool.
struct Model {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
}

impl Model {
    fn start(t: &Test, commands: &[&str]) -> Self {
        let dir = t.root.path().join("model");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let script = dir.join("script.json");
        std::fs::write(&script, serde_json::to_string(commands).expect("json")).expect("script");
        let (log, portfile) = (dir.join("log.jsonl"), dir.join("port"));
        let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents/model_server.py");
        let child = Command::new("python3")
            .arg(&server)
            .args([&script, &log, &portfile])
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs the model server");
        let start = Instant::now();
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&portfile) {
                break p.trim().parse().expect("port");
            }
            assert!(start.elapsed() < Duration::from_secs(10), "the model server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Model { child, port, log }
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// What the agent reported back from its shell tool, in order (the last request's view).
    fn results(&self) -> Vec<String> {
        self.requests()
            .iter()
            .rev()
            .find_map(|r| r["results"].as_array().filter(|a| !a.is_empty()).cloned())
            .unwrap_or_default()
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Seconds from `since` to the first request that offered the shell tool.
    fn first_request_after(&self, since: f64) -> Option<f64> {
        self.requests().iter().find(|r| r["shell"] == true).and_then(|r| r["time"].as_f64()).map(|t| t - since)
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped rules, fake tools and shims, and the agent's binary readable inside the sandbox.
fn world(claude: &Path) -> Test {
    let t = Test::new().tools(&["aws", "kubectl"]).example_rules();
    let install = claude.parent().and_then(Path::parent).expect("the agent's install directory");
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    let extra = format!(
        "\n[sandbox]\nreadable = [{:?}]\nwritable = [{:?}]\n",
        install.display().to_string(),
        t.records.display().to_string()
    );
    std::fs::write(t.config_dir().join("rules.toml"), rules + &extra).expect("rules");
    t.guardsh(&["install"]).output().status(0);
    t
}

fn set_wait(t: &Test) {
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    std::fs::write(t.config_dir().join("rules.toml"), rules.replacen("wait = false\n", "wait = true\n", 1))
        .expect("rules");
}

/// Runs `claude -p` inside `guardsh run` as the agent's user, as the README says to. Returns
/// its exit code, stderr, and when it started (seconds since the epoch).
fn run_claude(t: &Test, claude: &Path, model: &Model, options: &[&str]) -> (Option<i32>, String, f64) {
    let as_root = nix::unistd::geteuid().is_root();
    if as_root {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(t.root.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for dir in [&t.home, &t.cwd, &t.records] {
            chown_tree(dir, AGENT);
        }
    }
    let mut args = vec!["run"];
    args.extend(options);
    args.push("--");
    let mut run = t.guardsh(&args);
    run.cmd
        .arg(claude)
        .args(["-p", "Do the task.", "--allowedTools", "Bash"])
        .env("ANTHROPIC_API_KEY", "sk-ant-test-model-key")
        .env("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{}", model.port))
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("AWS_ACCESS_KEY_ID", "AKIAAGENTTEST")
        .env("AWS_SECRET_ACCESS_KEY", "held-aws-secret");
    if as_root {
        use std::os::unix::process::CommandExt;
        run.cmd.uid(AGENT).gid(AGENT);
    }
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    let mut child = run.cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("guardsh run");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the agent did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err);
    (status.code(), err, started)
}

fn pending_as_agent(t: &Test) -> Vec<String> {
    let mut r = t.guardsh(&["pending", "--json"]);
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::process::CommandExt;
        r.cmd.uid(AGENT).gid(AGENT);
    }
    let j = r.output().status(0).json();
    j.as_array().expect("array").iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect()
}

/// An allowed read reaches the model; a deny reaches it as 77 and nothing runs; the model key
/// reaches the agent (it could talk to its model at all) and no tool; the first model request
/// comes within 5 s of `guardsh run` starting; nothing asked.
#[test]
fn claude_code_reads_runs_denies_and_keeps_its_key_from_tools() {
    let Some(claude) = claude() else { return };
    let t = world(&claude);
    let model = Model::start(&t, &["kubectl get pods", "kubectl delete namespace prod", "aws s3 ls"]);
    let (code, err, started) = run_claude(&t, &claude, &model, &[]);
    assert_eq!(code, Some(0), "{err}");
    let results = model.results();
    assert_eq!(results.len(), 3, "the model saw three results: {results:?}\n{err}");
    assert!(results[0].contains("fake kubectl ran"), "{results:?}");
    assert!(results[1].contains("77") && results[1].contains("denied"), "{results:?}");
    assert!(!results[1].contains("guardsh approve"), "no approval command reaches the agent: {results:?}");
    assert_eq!(t.saw_args("kubectl").expect("kubectl ran"), ["get", "pods"], "only the read ran");
    assert!(t.saw_var("aws", "ANTHROPIC_API_KEY").is_none(), "no tool gets the model key");
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("held-aws-secret"), "aws got its grant");
    let first = model.first_request_after(started).expect("a model request");
    assert!(first < 5.0, "first model request after {first:.2} s");
    assert_eq!(t.audited("requested"), 0, "nothing asked");
    assert!(pending_as_agent(&t).is_empty());
}

/// Starting in a git repository, with the agent's own git housekeeping, asks nothing.
#[test]
fn claude_code_in_a_git_repository_asks_nothing() {
    let Some(claude) = claude() else { return };
    let t = world(&claude);
    let git = Path::new("/usr/bin/git");
    assert!(git.exists(), "the tests need git");
    std::os::unix::fs::symlink(git, t.real.join("git")).expect("symlink");
    let init = Command::new(git).args(["init", "-q"]).current_dir(&t.cwd).status().expect("git init");
    assert!(init.success());
    let model = Model::start(&t, &["git status --short; git log -n 1 2>&1 | head -1"]);
    let (code, err, _) = run_claude(&t, &claude, &model, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(model.results().len(), 1, "{err}");
    let asked: Vec<String> = t
        .audit_records()
        .into_iter()
        .filter(|r| r["outcome"] == "requested")
        .map(|r| {
            let argv: Vec<String> =
                r["argv"].as_array().into_iter().flatten().filter_map(|w| w.as_str().map(str::to_string)).collect();
            argv.iter().filter(|w| !w.starts_with("hook.")).cloned().collect::<Vec<_>>().join(" ")
        })
        .collect();
    assert!(asked.is_empty(), "no approval requests: {asked:#?}");
    assert!(pending_as_agent(&t).is_empty());
}

/// An ask approved by the human from another terminal runs once, and the agent learns it ran.
#[test]
fn claude_code_an_ask_approved_from_another_terminal_runs_once() {
    let Some(claude) = claude() else { return };
    let t = world(&claude);
    set_wait(&t);
    let t = std::sync::Arc::new(t);
    let model = std::sync::Arc::new(Model::start(&t, &["aws ec2 terminate-instances --instance-ids i-1"]));
    let runner = std::thread::spawn({
        let (t, model) = (std::sync::Arc::clone(&t), std::sync::Arc::clone(&model));
        move || run_claude(&t, &claude, &model, &[])
    });
    let start = Instant::now();
    let id = loop {
        if let Some(id) = pending_as_agent(&t).into_iter().next() {
            break id;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no request appeared");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!t.ran("aws"), "nothing ran before the approval");
    approve(&t, &id);
    let (code, err, _) = runner.join().expect("agent");
    assert_eq!(code, Some(0), "{err}");
    let results = model.results();
    assert!(results.first().is_some_and(|r| r.contains("fake aws ran")), "{results:?}");
    let runs = t.audit_records().into_iter().filter(|r| r["outcome"] == "exec" && r["tool"] == "aws").count();
    assert_eq!(runs, 1);
}

/// An ask nobody answers ends when `--approval-timeout` says; the agent is told it did not run,
/// finishes, and nothing stays pending.
#[test]
fn claude_code_an_unanswered_ask_ends_and_nothing_stays_pending() {
    let Some(claude) = claude() else { return };
    let t = world(&claude);
    set_wait(&t);
    let model = Model::start(&t, &["aws ec2 terminate-instances --instance-ids i-1"]);
    let (code, err, _) = run_claude(&t, &claude, &model, &["--approval-timeout", "3s"]);
    assert_eq!(code, Some(0), "{err}");
    let results = model.results();
    assert!(results.first().is_some_and(|r| r.contains("75") && r.contains("nothing was run")), "{results:?}");
    assert!(!t.ran("aws"));
    assert!(pending_as_agent(&t).is_empty(), "nothing pending afterwards");
}

fn approve(t: &Test, id: &str) {
    use expectrl::Expect;
    let (program, mut args): (&str, Vec<&str>) = if nix::unistd::geteuid().is_root() {
        ("/usr/bin/setpriv", vec!["--reuid=65534", "--regid=65534", "--clear-groups", crate::support::GUARDSH])
    } else {
        (crate::support::GUARDSH, vec![])
    };
    args.extend(["approve", id]);
    let mut s = t.in_terminal(program, &args);
    let found = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("the prompt");
    let code = String::from_utf8_lossy(found.get(1).expect("code")).into_owned();
    s.send_line(code).expect("type");
    s.expect(format!("approved request {id}")).expect("approved");
}
