//! Real agents in front of guardsh, as their users run them: Claude Code and Codex (the pinned
//! npm releases `.ci/run` installs; their paths in `GUARDSH_TEST_CLAUDE` and `GUARDSH_TEST_CODEX`)
//! inside `guardsh run`, as an
//! unprivileged uid, driven by a scripted model server of our own (`agents/model_server.py`,
//! 127.0.0.1 only), with fake tools as the oracle of what really ran and a human approving from
//! a second terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Test, chown_tree};

const AGENT: u32 = 65534;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Claude,
    Codex,
}

/// An agent's binary to test, or None (and why) where it cannot be had.
fn agent(kind: Kind) -> Option<(Kind, PathBuf)> {
    let var = match kind {
        Kind::Claude => "GUARDSH_TEST_CLAUDE",
        Kind::Codex => "GUARDSH_TEST_CODEX",
    };
    let found = std::env::var_os(var).map(PathBuf::from).filter(|p| p.exists());
    if found.is_none() {
        if let Ok(why) = std::env::var(format!("{var}_SKIP")) {
            eprintln!("SKIPPED: {why}");
            return None;
        }
        assert!(std::env::var_os("CI").is_none(), "CI installs {kind:?} and sets {var} (.ci/run)");
        eprintln!("SKIPPED: set {var} to a {kind:?} binary (.ci/run installs the pinned one)");
    }
    found.map(|p| (kind, p))
}

/// The scripted model: answers each turn with the next command for the agent's shell tool.
struct Model {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
}

impl Model {
    fn start(t: &Test, commands: &[&str]) -> Self {
        Self::start_with(t, &serde_json::json!(commands))
    }

    /// `commands` as the server takes them (see model_server.py): strings, or objects with a
    /// tool timeout.
    fn start_with(t: &Test, commands: &serde_json::Value) -> Self {
        let dir = t.root.path().join("model");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let script = dir.join("script.json");
        std::fs::write(&script, commands.to_string()).expect("script");
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
fn world(binary: &Path) -> Test {
    let t = Test::new().tools(&["aws", "kubectl"]).example_rules();
    // The npm package's directory: a native binary and the files it ships beside it.
    let install = binary.ancestors().find(|a| a.ends_with("node_modules")).unwrap_or(binary).to_path_buf();
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

/// Runs the agent non-interactively inside `guardsh run` as the agent's user, as the README
/// says to (`claude -p`, `codex exec`). Returns its exit code, stderr, and when it started
/// (seconds since the epoch).
fn run_agent(
    t: &Test,
    (kind, binary): &(Kind, PathBuf),
    model: &Model,
    options: &[&str],
) -> (Option<i32>, String, f64) {
    let as_root = crate::support::as_root();
    t.hand_to_agent();
    let mut args = vec!["run"];
    args.extend(options);
    args.push("--");
    let mut run = t.guardsh(&args);
    run.cmd.arg(binary);
    match kind {
        Kind::Claude => {
            run.cmd
                .args(["-p", "Do the task.", "--allowedTools", "Bash"])
                .env("ANTHROPIC_API_KEY", "sk-ant-test-model-key")
                .env("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{}", model.port))
                .env("DISABLE_AUTOUPDATER", "1")
                .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1");
        }
        Kind::Codex => {
            // Codex's own sandbox needs user namespaces, which guardsh's refuses inside; guardsh's
            // sandbox is the boundary (README: Codex). Its shell stays `bash -lc`, the default.
            let home = t.home.join(".codex");
            std::fs::create_dir_all(&home).expect("mkdir");
            let config = format!(
                "model = \"gpt-test\"\nmodel_provider = \"scripted\"\nsandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n\n[model_providers.scripted]\nname = \"scripted\"\nbase_url = \"http://127.0.0.1:{}/v1\"\nenv_key = \"OPENAI_API_KEY\"\nwire_api = \"responses\"\n",
                model.port
            );
            std::fs::write(home.join("config.toml"), config).expect("codex config");
            if as_root {
                chown_tree(&home, AGENT);
            }
            run.cmd.args(["exec", "--skip-git-repo-check", "Do the task."]).env("OPENAI_API_KEY", "sk-test-model-key");
        }
    }
    run.cmd.env("AWS_ACCESS_KEY_ID", "AKIAAGENTTEST").env("AWS_SECRET_ACCESS_KEY", "held-aws-secret");
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

#[test]
fn claude_code_reads_runs_denies_and_keeps_its_key_from_tools() {
    reads_runs_denies_and_keeps_its_key_from_tools(Kind::Claude);
}

/// Codex runs every command as `bash -lc`: a login shell, whose profile resets PATH. Guarded all
/// the same, since guardsh covers every guarded tool's real binary inside the sandbox.
#[test]
fn codex_reads_runs_denies_and_keeps_its_key_from_tools_from_a_login_shell() {
    reads_runs_denies_and_keeps_its_key_from_tools(Kind::Codex);
}

/// An allowed read reaches the model; a deny reaches it as 77 and nothing runs; the model key
/// reaches the agent (it could talk to its model at all) and no tool; the first model request
/// comes within 5 s of `guardsh run` starting; nothing asked.
fn reads_runs_denies_and_keeps_its_key_from_tools(kind: Kind) {
    let Some(a) = agent(kind) else { return };
    let t = world(&a.1);
    let model = Model::start(&t, &["kubectl get pods", "kubectl delete namespace prod", "aws s3 ls"]);
    let (code, err, started) = run_agent(&t, &a, &model, &[]);
    assert_eq!(code, Some(0), "{err}");
    let results = model.results();
    assert_eq!(results.len(), 3, "the model saw three results: {results:?}\n{err}");
    assert!(results[0].contains("fake kubectl ran"), "{results:?}");
    assert!(results[1].contains("77") && results[1].contains("denied"), "{results:?}");
    assert!(!results[1].contains("guardsh approve"), "no approval command reaches the agent: {results:?}");
    assert_eq!(t.saw_args("kubectl").expect("kubectl ran"), ["get", "pods"], "only the read ran");
    for key in ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"] {
        assert!(t.saw_var("aws", key).is_none(), "no tool gets the model key {key}");
    }
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("held-aws-secret"), "aws got its grant");
    let first = model.first_request_after(started).expect("a model request");
    assert!(first < 5.0, "first model request after {first:.2} s");
    assert_eq!(t.audited("requested"), 0, "nothing asked");
    assert!(t.pending_as_agent(0).is_empty());
}

#[test]
fn claude_code_in_a_git_repository_asks_nothing() {
    in_a_git_repository_asks_nothing(Kind::Claude);
}

#[test]
fn codex_in_a_git_repository_asks_nothing() {
    in_a_git_repository_asks_nothing(Kind::Codex);
}

/// Starting in a git repository, with the agent's own git housekeeping, asks nothing.
fn in_a_git_repository_asks_nothing(kind: Kind) {
    let Some(a) = agent(kind) else { return };
    let t = world(&a.1);
    let git = Path::new("/usr/bin/git");
    assert!(git.exists(), "the tests need git");
    std::os::unix::fs::symlink(git, t.real.join("git")).expect("symlink");
    let init = Command::new(git).args(["init", "-q"]).current_dir(&t.cwd).status().expect("git init");
    assert!(init.success());
    let model = Model::start(&t, &["git status --short; git log -n 1 2>&1 | head -1"]);
    let (code, err, _) = run_agent(&t, &a, &model, &[]);
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
    assert!(t.pending_as_agent(0).is_empty());
}

#[test]
fn claude_code_an_ask_approved_from_another_terminal_runs_once() {
    an_ask_approved_from_another_terminal_runs_once(Kind::Claude);
}

#[test]
fn codex_an_ask_approved_from_another_terminal_runs_once() {
    an_ask_approved_from_another_terminal_runs_once(Kind::Codex);
}

/// An ask approved by the human from another terminal runs once, and the agent learns it ran.
fn an_ask_approved_from_another_terminal_runs_once(kind: Kind) {
    let Some(a) = agent(kind) else { return };
    let t = world(&a.1);
    set_wait(&t);
    let t = std::sync::Arc::new(t);
    let model = std::sync::Arc::new(Model::start(&t, &["aws ec2 terminate-instances --instance-ids i-1"]));
    // The agent's user owns its world before anything of it runs (the thread below and the
    // `pending` calls here would otherwise race the hand-over).
    t.hand_to_agent();
    let runner = std::thread::spawn({
        let (t, model) = (std::sync::Arc::clone(&t), std::sync::Arc::clone(&model));
        move || run_agent(&t, &a, &model, &[])
    });
    let id = t.pending_as_agent(1).remove(0);
    assert!(!t.ran("aws"), "nothing ran before the approval");
    t.approve_as_agent(&id);
    let (code, err, _) = runner.join().expect("agent");
    assert_eq!(code, Some(0), "{err}");
    let results = model.results();
    assert!(results.first().is_some_and(|r| r.contains("fake aws ran")), "{results:?}");
    let runs = t.audit_records().into_iter().filter(|r| r["outcome"] == "exec" && r["tool"] == "aws").count();
    assert_eq!(runs, 1);
}

#[test]
fn claude_code_an_unanswered_ask_ends_and_nothing_stays_pending() {
    an_unanswered_ask_ends_and_nothing_stays_pending(Kind::Claude);
}

#[test]
fn codex_an_unanswered_ask_ends_and_nothing_stays_pending() {
    an_unanswered_ask_ends_and_nothing_stays_pending(Kind::Codex);
}

/// An ask nobody answers ends when `--approval-timeout` says; the agent is told it did not run,
/// finishes, and nothing stays pending.
fn an_unanswered_ask_ends_and_nothing_stays_pending(kind: Kind) {
    let Some(a) = agent(kind) else { return };
    let t = world(&a.1);
    set_wait(&t);
    let model = Model::start(&t, &["aws ec2 terminate-instances --instance-ids i-1"]);
    let (code, err, _) = run_agent(&t, &a, &model, &["--approval-timeout", "3s"]);
    assert_eq!(code, Some(0), "{err}");
    let results = model.results();
    assert!(results.first().is_some_and(|r| r.contains("75") && r.contains("did not run")), "{results:?}");
    assert!(!t.ran("aws"));
    assert!(t.pending_as_agent(0).is_empty(), "nothing pending afterwards");
}

/// Claude Code's own tool timeout (2 s here) runs out while the command waits for a human: it
/// moves the command to the background and, in `-p` mode, waits for it. The ask ends when
/// `--approval-timeout` says; the agent exits; nothing stays pending.
#[test]
fn claude_code_an_ask_outlasting_its_tool_timeout_ends_and_nothing_stays_pending() {
    let Some(a) = agent(Kind::Claude) else { return };
    let t = world(&a.1);
    set_wait(&t);
    let model = Model::start_with(
        &t,
        &serde_json::json!([{"command": "aws ec2 terminate-instances --instance-ids i-1", "timeout_ms": 2000}]),
    );
    let started = Instant::now();
    let (code, err, _) = run_agent(&t, &a, &model, &["--approval-timeout", "5s"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "the agent did not wait for the whole approval timeout");
    assert!(!t.ran("aws"));
    assert!(t.pending_as_agent(0).is_empty(), "nothing pending afterwards");
    assert!(model.requests().len() >= 2, "the agent reported back to its model: {:?}", model.requests());
}
