//! Credential custody: inside `guardsh run` the agent holds no credentials, guarded commands get
//! exactly what their rule grants, and nothing else gets anything. When the tests run as root
//! (CI does), the session runs as `nobody`: root can read any process, and the point is what a
//! process of the agent's own user can do.

use std::path::{Path, PathBuf};

use crate::support::Test;

const CREDENTIALS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIACUSTODYTEST"),
    ("AWS_SECRET_ACCESS_KEY", "custody-secret-value"),
    ("GITHUB_TOKEN", "ghp_custodytest"),
    ("RAILWAY_TOKEN", "railway-custody-test"),
    ("PGPASSWORD", "pg-custody-test"),
];

/// Runs `script` with sh inside `guardsh run`, as the agent, with the credentials above in
/// `guardsh run`'s environment. Returns the session's exit code and stderr.
fn session(t: &Test, script: &str) -> (Option<i32>, String) {
    session_with(t, &[], script)
}

fn session_with(t: &Test, options: &[&str], script: &str) -> (Option<i32>, String) {
    session_env(t, &[], options, script)
}

/// `session_with`, with `extra` variables in `guardsh run`'s environment besides the credentials.
fn session_env(t: &Test, extra: &[(&str, &str)], options: &[&str], script: &str) -> (Option<i32>, String) {
    let as_root = crate::support::as_root();
    t.hand_to_agent();
    // This module is the no-sandbox mode's custody (the sandbox's own suite is `escapes.rs`).
    let args: Vec<&str> =
        ["run", "--no-sandbox"].iter().chain(options).chain(&["--", "sh", "-c", script]).copied().collect();
    let mut run = t.guardsh(&args);
    for (k, v) in CREDENTIALS.iter().chain(extra) {
        run = run.env(k, v);
    }
    if as_root {
        use std::os::unix::process::CommandExt;
        run.cmd.uid(65534).gid(65534);
    }
    let done = run.output();
    (done.code(), done.stderr())
}

/// A session script that runs `script` with `python` until its attack writes `done` (at most 30
/// tries, each given 2 s to finish).
fn until_done(python: &Path, script: &Path, done: &Path) -> String {
    format!(
        "i=0; while [ $i -lt 30 ]; do i=$((i+1)); {py} {sc}; n=0; while [ ! -s {d} ] && [ $n -lt 40 ]; do sleep 0.05; n=$((n+1)); done; [ -s {d} ] && break; done",
        py = python.display(),
        sc = script.display(),
        d = done.display()
    )
}

/// The shipped rules, fake aws and kubectl, and a shim for every tool (`guardsh run` refuses to
/// A Python script for the reviewed hand-off attacks: it connects to the custody socket, forks,
/// and execs `shim` with `argv` (outside custody; `path_first`, if given, first on its PATH after
/// the shim's directory). The child waits until the parent is guardsh, stops it, and runs
/// `child` (Python, indented by four spaces; `s` is the connection, `p` the parent's pid).
/// The shim is guardsh for a fraction of a millisecond before it execs the tool: a child that
/// sees the parent become anything else (or end) has missed it and exits, and the session tries
/// again (`until_done`). Before, it waited forever, and with the test's pipes open so did the test.
fn hand_off_script(shim: &Path, argv: &[&str], path_first: Option<&Path>, child: &str) -> String {
    let path = path_first.map_or(String::new(), |d| {
        format!(
            "env[\"PATH\"] = os.path.dirname(shim) + \":\" + {:?} + \":\" + env[\"PATH\"]\n",
            d.display().to_string()
        )
    });
    format!(
        r#"import json, os, signal, socket
shim = {shim:?}
G = os.path.realpath(shim)
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["GUARDSH_CUSTODY"])
s.set_inheritable(False)
p = os.getpid()
before = os.stat(f"/proc/{{p}}/exe").st_ino
if os.fork() == 0:
    while True:
        try:
            now = os.stat(f"/proc/{{p}}/exe").st_ino
        except OSError:
            os._exit(75)
        if now == os.stat(G).st_ino: break
        if now != before: os._exit(75)
    os.kill(p, signal.SIGSTOP)
{child}    os._exit(0)
env = {{k: v for k, v in os.environ.items() if k != "GUARDSH_CUSTODY"}}
{path}os.execve(shim, {argv:?}, env)
"#,
        shim = shim.display().to_string(),
    )
}

/// start an agent while a guarded tool has none).
fn world() -> Test {
    let t = Test::new().tools(&["aws", "kubectl"]).example_rules();
    // Not root: the fake real tools are this user's own files, which guardsh run rightly will
    // not hand credentials to unless told to trust them (see the test of that below).
    if !nix::unistd::geteuid().is_root() {
        let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
        let trusting = rules.replacen("[settings]\n", "[settings]\ntrust_user_installed_tools = true\n", 1);
        std::fs::write(t.config_dir().join("rules.toml"), trusting).expect("rules");
    }
    t.guardsh(&["install"]).output().status(0);
    t
}

pub(crate) fn python() -> Option<PathBuf> {
    let found = ["/usr/bin/python3", "/usr/local/bin/python3"].iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must provide python3");
        eprintln!("SKIPPED: a custody test needs python3 (as a foreign client or a tracer)");
    }
    found
}

#[test]
fn the_agent_holds_nothing_and_an_allowed_command_gets_exactly_its_grant() {
    let t = world();
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let script = format!(
        "env -0 > {o}/agent.env; \
         aws s3 ls; kubectl get pods; aws s3 rb s3://bucket --force; echo $? > {o}/rb.code; \
         cat /proc/$PPID/environ > /dev/null 2>&1; echo $? > {o}/environ.code; \
         head -c 1 /proc/$PPID/mem > /dev/null 2>&1; echo $? > {o}/mem.code",
        o = out.display()
    );
    let (code, stderr) = session(&t, &script);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("holding"), "guardsh run says what it holds: {stderr}");

    let agent = std::fs::read(out.join("agent.env")).expect("agent env");
    let agent = String::from_utf8_lossy(&agent);
    for (k, v) in CREDENTIALS {
        assert!(!agent.contains(k) && !agent.contains(v), "the agent's environment has {k}");
    }
    assert!(agent.contains("GUARDSH_CUSTODY="), "the agent is told where the custody socket is");

    // aws s3 ls: the AWS credentials, with their values, and no other tool's.
    assert_eq!(t.saw_var("aws", "AWS_ACCESS_KEY_ID").as_deref(), Some("AKIACUSTODYTEST"));
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("custody-secret-value"));
    assert_eq!(t.saw_var("aws", "GITHUB_TOKEN"), None);
    assert_eq!(t.saw_var("aws", "RAILWAY_TOKEN"), None);
    // kubectl get pods is allowed but granted nothing.
    let kubectl = t.saw_env("kubectl").expect("kubectl ran");
    for (k, _) in CREDENTIALS {
        assert!(!kubectl.iter().any(|(n, _)| n == k), "kubectl got {k}");
    }
    // The refused `aws s3 rb` did not run, so nothing got anything for it.
    assert_ne!(std::fs::read_to_string(out.join("rb.code")).expect("rb code").trim(), "0");
    assert_eq!(t.saw_args("aws").expect("aws ran"), ["s3", "ls"]);

    // guardsh run's environment and memory are out of the agent's reach.
    for f in ["environ.code", "mem.code"] {
        let code = std::fs::read_to_string(out.join(f)).expect("code");
        assert_ne!(code.trim(), "0", "the agent could read guardsh run's {f}");
    }

    // One release: kubectl was granted nothing, so guardsh run was not involved.
    let released: Vec<_> = t.audit_records().into_iter().filter(|r| r["outcome"] == "custody_released").collect();
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0]["passed"], serde_json::json!(["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]));
    assert_eq!(released[0]["argv"], serde_json::json!(["aws", "s3", "ls"]));
    assert_eq!(released[0]["rules"], serde_json::json!(["aws-s3-read"]));
    assert!(released[0]["real"].as_str().is_some_and(|r| r.ends_with("real-bin/aws")), "{}", released[0]);
    let log = std::fs::read_to_string(t.audit_log()).expect("audit log");
    assert!(!log.contains("custody-secret-value"), "a value reached the audit log");
}

/// Issue 19 A: an agent that cannot reach its model does nothing, so its model keys go to it,
/// named (never shown) in the banner, and no guarded tool receives them, custodied or not.
#[test]
fn the_agents_model_keys_go_to_the_agent_and_never_to_a_tool() {
    let t = world();
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let keys = [("ANTHROPIC_API_KEY", "sk-ant-model-key-test"), ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")];
    let script = format!("env -0 > {o}/agent.env; aws s3 ls; kubectl get pods", o = out.display());
    let (code, stderr) = session_env(&t, &keys, &[], &script);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("passing the agent its model keys: ANTHROPIC_API_KEY OPENAI_BASE_URL"), "{stderr}");
    assert!(!stderr.contains("sk-ant-model-key-test"), "the banner names keys, never values: {stderr}");
    let agent = String::from_utf8_lossy(&std::fs::read(out.join("agent.env")).expect("agent env")).into_owned();
    assert!(agent.contains("ANTHROPIC_API_KEY=sk-ant-model-key-test"), "the agent reaches its model");
    assert!(!agent.contains("GITHUB_TOKEN"), "tool credentials stay held");
    // aws s3 ls was started by guardsh run with the AWS keys; kubectl was exec'd by its shim.
    assert_eq!(t.saw_var("aws", "AWS_ACCESS_KEY_ID").as_deref(), Some("AKIACUSTODYTEST"));
    for tool in ["aws", "kubectl"] {
        for (k, _) in keys {
            assert_eq!(t.saw_var(tool, k), None, "{tool} got {k}");
        }
    }
    // doctor lists them apart from the credentials guardsh run holds.
    let d = t.guardsh(&["doctor"]).env("ANTHROPIC_API_KEY", "v").env("GH_TOKEN", "w").output().stdout();
    assert!(
        d.contains("the agent's model keys (guardsh run passes them to the agent, never to a tool): ANTHROPIC_API_KEY"),
        "{d}"
    );
    assert!(d.contains("credentials in this environment (names only):\n  GH_TOKEN\n"), "{d}");
}

#[test]
fn a_process_that_is_not_guardsh_gets_nothing_and_is_audited() {
    let Some(python) = python() else { return };
    let t = world();
    let client = t.cwd.join("client.py");
    std::fs::write(
        &client,
        "import os, socket\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.connect(os.environ['GUARDSH_CUSTODY'])\n\
         s.sendall(b'{\"version\":3,\"request\":null,\"stdin_captured\":false}\\n')\n\
         print(s.recv(65536).decode())\n",
    )
    .expect("client");
    let answer = t.cwd.join("answer");
    let (code, stderr) = session(&t, &format!("{} {} > {}", python.display(), client.display(), answer.display()));
    assert_eq!(code, Some(0), "{stderr}");
    let answer = std::fs::read_to_string(answer).expect("answer");
    assert!(answer.contains("\"refuse\"") && answer.contains("not this guardsh binary"), "{answer}");
    assert!(!answer.contains("custody-secret-value"));
    let refused: Vec<_> = t.audit_records().into_iter().filter(|r| r["outcome"] == "custody_refused").collect();
    assert_eq!(refused.len(), 1, "the attempt is audited");
}

#[test]
fn a_traced_shim_gets_nothing() {
    let Some(python) = python() else { return };
    let t = world();
    // A tracer: the child asks to be traced and execs the aws shim; the parent lets it run.
    let tracer = t.cwd.join("tracer.py");
    std::fs::write(
        &tracer,
        format!(
            "import ctypes, os, sys\n\
             libc = ctypes.CDLL(None, use_errno=True)\n\
             pid = os.fork()\n\
             if pid == 0:\n\
             \x20   if libc.ptrace(0, 0, None, None) != 0:\n\
             \x20       os._exit(99)\n\
             \x20   os.execv('{shim}', ['aws', 's3', 'ls'])\n\
             while True:\n\
             \x20   _, status = os.waitpid(pid, 0)\n\
             \x20   if os.WIFEXITED(status):\n\
             \x20       sys.exit(os.WEXITSTATUS(status))\n\
             \x20   if os.WIFSIGNALED(status):\n\
             \x20       sys.exit(128 + os.WTERMSIG(status))\n\
             \x20   sig = os.WSTOPSIG(status)\n\
             \x20   libc.ptrace(7, pid, None, 0 if sig == 5 else sig)\n",
            shim = t.shims.join("aws").display()
        ),
    )
    .expect("tracer");
    let (code, stderr) = session(&t, &format!("{} {}", python.display(), tracer.display()));
    assert_eq!(code, Some(0), "the traced aws still runs, without credentials: {stderr}");
    assert!(t.ran("aws"));
    assert!(stderr.contains("is being traced by process"), "the shim says why it has no credentials: {stderr}");
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY"), None, "a traced shim received a credential");
    assert_eq!(t.saw_var("aws", "AWS_ACCESS_KEY_ID"), None);
    assert!(!t.audit_records().iter().any(|r| r["outcome"] == "custody_released"));
}

#[test]
fn outside_guardsh_run_nothing_changes() {
    let t = world().env("AWS_SECRET_ACCESS_KEY", "ambient");
    t.run("aws", &["s3", "ls"]).output().status(0);
    // As in the gate: the granted credential passes from the environment; no socket is involved.
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("ambient"));
    assert!(!t.audit_records().iter().any(|r| r["outcome"].as_str().is_some_and(|o| o.starts_with("custody"))));
}

#[test]
fn credentials_from_a_source_command_are_held_like_the_environment_s() {
    let t = world();
    let agent = t.cwd.join("agent.env");
    let script = format!("env > {}; aws s3 ls", agent.display());
    // Such files mix secrets and settings: the settings go to the agent (and the tool) as usual.
    let source = "echo '# from a password manager'; echo 'export AWS_SESSION_TOKEN=\"from-the-source\"'; echo AWS_REGION=eu-west-1";
    let (code, stderr) = session_with(&t, &["--credentials-from", source], &script);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(t.saw_var("aws", "AWS_SESSION_TOKEN").as_deref(), Some("from-the-source"));
    assert_eq!(t.saw_var("aws", "AWS_REGION").as_deref(), Some("eu-west-1"));
    let agent = std::fs::read_to_string(&agent).expect("agent env");
    assert!(!agent.contains("from-the-source"), "the agent got the secret");
    assert!(agent.contains("AWS_REGION=eu-west-1"), "the agent got the setting");

    // A source that fails stops everything: the agent does not start.
    let t = world();
    let (code, stderr) = session_with(&t, &["--credentials-from", "exit 3"], &script);
    assert_ne!(code, Some(0));
    assert!(stderr.contains("the agent was not started"), "{stderr}");
    assert!(!t.ran("aws"));
}

/// What the agent's environment may change about a tool guardsh run starts: what it acts on
/// (the tool's selectors), not how it runs. The tool gets guardsh run's own PATH, so a
/// `python3` or helper the agent put first on its PATH is never what the tool runs, and
/// variables that load code (`PYTHONPLATLIBDIR`, `CLOUDSDK_PYTHON`, ...) do not reach it.
#[test]
fn the_agent_chooses_the_target_not_the_tools_environment() {
    let t = world();
    let evil = t.cwd.join("evil");
    std::fs::create_dir(&evil).expect("mkdir");
    let script = format!(
        "PATH={}:$PATH PYTHONPLATLIBDIR=../evil CLOUDSDK_PYTHON={}/python3 AWS_PROFILE=staging HTTPS_PROXY=http://127.0.0.1:9 aws s3 ls",
        evil.display(),
        evil.display()
    );
    let (code, stderr) = session(&t, &script);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(t.saw_var("aws", "AWS_PROFILE").as_deref(), Some("staging"), "a selector is the agent's to choose");
    // guardsh run's own PATH, less what the agent's user can write (here, the shim directory in
    // its home; everything is the user's own when the tests do not run as root, and then the
    // test policy trusts it).
    let want = if nix::unistd::geteuid().is_root() {
        std::env::join_paths([&t.real, &t.sysbin]).expect("PATH")
    } else {
        t.path()
    };
    assert_eq!(t.saw_var("aws", "PATH"), Some(want.to_string_lossy().into_owned()));
    for name in ["PYTHONPLATLIBDIR", "CLOUDSDK_PYTHON", "HTTPS_PROXY"] {
        assert_eq!(t.saw_var("aws", name), None, "{name} reached the tool");
    }
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("custody-secret-value"));
    // Python must not import the agent's code from ~/.local/lib/pythonX.Y/site-packages.
    if nix::unistd::geteuid().is_root() {
        assert_eq!(t.saw_var("aws", "PYTHONNOUSERSITE").as_deref(), Some("1"));
    }
}

/// Piped SQL must come as the sealed copy the shim makes: any other file could be rewritten
/// between guardsh run's decision and the tool's read (review finding c9). A genuine guardsh
/// at the connection's pid, with a plain file passed as its stdin, gets nothing.
#[test]
fn piped_sql_that_is_not_a_sealed_copy_gets_nothing() {
    let Some(python) = python() else { return };
    let t = world();
    let out = t.cwd.join("answer");
    let sql = t.cwd.join("sql");
    std::fs::write(&sql, "select 1;").expect("sql");
    let attack = t.cwd.join("swap.py");
    let child = format!(
        r#"    f = os.open({sql:?}, os.O_RDWR)
    socket.send_fds(s, [b'{{"version":3,"request":null,"stdin_captured":true}}\n'], [f, 1, 2])
    answer = s.makefile("rb").readline().decode()
    open({sql:?}, "w").write("drop table users;")
    open({out:?}, "w").write(answer)
    os.kill(p, signal.SIGKILL)
"#,
        sql = sql.display().to_string(),
        out = out.display().to_string()
    );
    std::fs::write(&attack, hand_off_script(&t.shims.join("psql"), &["psql", "-d", "app"], None, &child))
        .expect("swap.py");
    let (_, stderr) = session(&t, &until_done(&python, &attack, &out));
    let answer = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(answer.contains("not a sealed copy"), "{answer}\n{stderr}");
    assert_eq!(t.audited("custody_released"), 0);
}

#[test]
fn doctor_lists_credential_files_an_agent_could_read_without_their_values() {
    let t = world();
    std::fs::create_dir_all(t.home.join(".aws")).expect("mkdir");
    std::fs::write(t.home.join(".aws/credentials"), "[default]\naws_secret_access_key = doctor-secret\n")
        .expect("write");
    std::fs::create_dir_all(t.cwd.join("app")).expect("mkdir");
    std::fs::write(t.cwd.join("app/.env"), "DATABASE_URL=postgres://doctor-secret@prod/db\n").expect("write");
    std::fs::write(t.cwd.join(".env.example"), "DATABASE_URL=\n").expect("write");
    let out = t.guardsh(&["doctor"]).output();
    let text = out.stdout();
    assert!(text.contains(".aws/credentials (AWS access keys)"), "{text}");
    assert!(text.contains("app/.env (an environment file)"), "{text}");
    assert!(!text.contains(".env.example"), "a template is not a finding: {text}");
    assert!(!text.contains("doctor-secret"), "a value was printed: {text}");
}

/// The agent controls the shim's PATH. A program of its own named like the tool, found before
/// the real one, must not receive what guardsh run holds: guardsh run starts the binary it finds
/// on its own PATH.
#[test]
fn credentials_never_go_to_a_binary_the_agent_put_on_path() {
    let t = world();
    let evil = t.cwd.join("evil");
    std::fs::create_dir(&evil).expect("mkdir");
    let seen = t.cwd.join("evil.env");
    crate::support::write_executable(&evil.join("aws"), &format!("#!/bin/sh\nenv > {}\n", seen.display()));
    let script = format!("PATH=\"${{PATH%%:*}}:{}:$PATH\" aws s3 ls", evil.display());
    let (code, stderr) = session(&t, &script);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!seen.exists(), "the agent's aws ran with: {}", std::fs::read_to_string(&seen).unwrap_or_default());
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("custody-secret-value"));
}

/// A rule that asks: the command gets its grant once a human has approved exactly it, and the
/// first, unapproved attempt got nothing.
#[test]
fn an_approved_command_gets_its_grant() {
    use expectrl::Expect;
    let t = std::sync::Arc::new(world());
    let flag = t.cwd.join("approved");
    let codes = t.cwd.join("codes");
    // No-wait mode (the test policy): the first run exits 75 with a request; after the human
    // approves, the identical re-run uses the approval. setsid: the agent's commands have no
    // terminal a human's could be confused with.
    let script = format!(
        "setsid aws ec2 terminate-instances --instance-ids i-1; echo $? > {c}; \
         while [ ! -e {f} ]; do sleep 0.05; done; \
         setsid aws ec2 terminate-instances --instance-ids i-1; echo $? >> {c}",
        c = codes.display(),
        f = flag.display()
    );
    let runner = std::thread::spawn({
        let t = std::sync::Arc::clone(&t);
        move || session(&t, &script)
    });
    // Only after the agent's first run: `guardsh pending` here runs as root, and must not be
    // the one to create the state directories the agent's user writes.
    let start = std::time::Instant::now();
    while !codes.exists() {
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "the first run never finished");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let id = t.wait_for_pending(1).remove(0);
    assert!(!t.ran("aws"), "nothing ran before the approval");
    // The human approves as the agent's user (root may not write into nobody's store for it).
    let (program, mut args): (&str, Vec<&str>) = if nix::unistd::geteuid().is_root() {
        ("/usr/bin/setpriv", vec!["--reuid=65534", "--regid=65534", "--clear-groups", crate::support::guardsh()])
    } else {
        (crate::support::guardsh(), vec![])
    };
    args.extend(["approve", &id]);
    let mut s = t.in_terminal(program, &args);
    let found = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("the prompt");
    let screen = String::from_utf8_lossy(found.before()).into_owned();
    assert!(
        screen.contains("AWS_SECRET_ACCESS_KEY (from guardsh run)"),
        "the human sees what it will receive: {screen}"
    );
    let code = String::from_utf8_lossy(found.get(1).expect("code")).into_owned();
    s.send_line(code).expect("type");
    s.expect(format!("approved request {id}")).expect("approved");
    std::fs::write(&flag, "").expect("flag");
    let (code, stderr) = runner.join().expect("session");
    assert_eq!(code, Some(0), "{stderr}");
    let codes = std::fs::read_to_string(&codes).expect("codes");
    assert_eq!(codes.split_whitespace().collect::<Vec<_>>(), ["75", "0"], "{stderr}");
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("custody-secret-value"));
    let released: Vec<_> = t.audit_records().into_iter().filter(|r| r["outcome"] == "custody_released").collect();
    assert_eq!(released.len(), 1, "{released:?}");
}

/// A real tool the agent's user can replace (installed in ~/.local/bin, by pip --user, ...) could
/// be the agent's own program: guardsh run does not hand it credentials unless the policy says
/// to trust such tools.
#[test]
fn a_real_tool_the_agent_could_replace_gets_nothing() {
    let t = Test::new().tools(&["aws", "kubectl"]).example_rules();
    t.guardsh(&["install"]).output().status(0);
    if nix::unistd::geteuid().is_root() {
        crate::support::chown_tree(&t.real, 65534);
    }
    let (code, stderr) = session(&t, "aws s3 ls");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(t.ran("aws"));
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY"), None, "a replaceable tool received a credential");
    assert!(stderr.contains("is replaceable by this user"), "{stderr}");
    assert_eq!(t.audited("custody_refused"), 1);
}

/// The reviewed attacks on the earlier protocols (c1, c6): a process connects, forks, and execs
/// the aws shim for an allowed `aws s3 ls`, which, outside custody and with the agent's own
/// `aws` first on its PATH, execs the agent's program with the same pid. The child, holding the
/// first connection, speaks for it. guardsh run checks the genuine guardsh it finds at that pid,
/// and then starts the real aws itself: nothing the agent runs ever holds the keys.
#[test]
fn a_connection_handed_to_another_process_gets_nothing() {
    let Some(python) = python() else { return };
    let t = world();
    let out = t.cwd.join("stolen");
    let evil = t.cwd.join("evil");
    std::fs::create_dir(&evil).expect("mkdir");
    let evil_env = t.cwd.join("evil.env");
    crate::support::write_executable(&evil.join("aws"), &format!("#!/bin/sh\nenv > {}\n", evil_env.display()));
    let steal = t.cwd.join("steal.py");
    let child = format!(
        r#"    r, w = os.pipe()
    hello = b'{{"version":3,"request":null,"stdin_captured":false}}\n'
    socket.send_fds(s, [hello], [0, w, w])
    os.close(w)
    # P stays stopped until guardsh run has answered: its /proc entries must still be there.
    got = s.makefile("rb").read().decode() + os.read(r, 65536).decode()
    os.kill(p, signal.SIGCONT)
    open({out:?}, "w").write(got)
"#,
        out = out.display().to_string()
    );
    std::fs::write(&steal, hand_off_script(&t.shims.join("aws"), &["aws", "s3", "ls"], Some(&evil), &child))
        .expect("steal.py");
    let (_, stderr) = session(&t, &until_done(&python, &steal, &out));
    let got = std::fs::read_to_string(&out).unwrap_or_default();
    let evil_saw = std::fs::read_to_string(&evil_env).unwrap_or_default();
    for secret in ["custody-secret-value", "AKIACUSTODYTEST"] {
        assert!(!got.contains(secret), "the child got the keys: {got}\n{stderr}");
        assert!(!evil_saw.contains(secret), "the agent's program got the keys: {evil_saw}");
    }
    // Both parts of the attack did run: the agent's program (as the same pid), and, for the
    // child's request, the real aws, started by guardsh run with the keys.
    assert!(evil_saw.contains("PATH="), "the agent's program ran: {stderr}");
    assert!(got.contains("\"started\"") && got.contains("fake aws ran"), "{got}");
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("custody-secret-value"));
}

/// A tool guardsh run starts stands in for the one the shim would have exec'd: the agent sees its
/// exit code, its death by a signal, and a signal sent to the shim reaches it.
#[test]
fn a_tool_guardsh_run_starts_ends_as_the_agent_sees_it() {
    let t = world();
    let marks = t.cwd.join("marks");
    crate::support::write_executable(
        &t.real.join("aws"),
        &format!(
            "#!/bin/sh\ncase \"$3\" in\n  exit7) exit 7 ;;\n  die) kill -TERM $$ ;;\n  wait) trap 'echo TERM >> {m}; exit 3' TERM; echo ready >> {m}; while :; do sleep 0.05; done ;;\nesac\n",
            m = marks.display()
        ),
    );
    let codes = t.cwd.join("codes");
    let script = format!(
        "aws s3 ls exit7; echo $? >> {c}; aws s3 ls die; echo $? >> {c}; \
         aws s3 ls wait & n=0; while ! grep -q ready {m} 2>/dev/null && [ $n -lt 100 ]; do sleep 0.05; n=$((n+1)); done; \
         kill -TERM $!; wait $!; echo $? >> {c}",
        c = codes.display(),
        m = marks.display()
    );
    let (code, stderr) = session(&t, &script);
    assert_eq!(code, Some(0), "{stderr}");
    let codes = std::fs::read_to_string(&codes).expect("codes");
    assert_eq!(codes.split_whitespace().collect::<Vec<_>>(), ["7", "143", "3"], "{stderr}");
    assert!(std::fs::read_to_string(&marks).expect("marks").contains("TERM"), "the tool got the signal");
    assert_eq!(t.audited("custody_released"), 3);
}

/// Piped SQL: guardsh run reads the sealed copy the shim made, decides on those bytes, and the
/// tool it starts gets exactly them, with the password; a write gets neither.
#[test]
fn piped_sql_is_decided_and_delivered_by_guardsh_run() {
    let t = world();
    let got = t.cwd.join("psql.stdin");
    let pw = t.cwd.join("psql.pw");
    crate::support::write_executable(
        &t.real.join("psql"),
        &format!("#!/bin/sh\ncat > {}\necho \"$PGPASSWORD\" > {}\n", got.display(), pw.display()),
    );
    let codes = t.cwd.join("codes");
    let script = format!(
        "printf 'select count(*) from users;\\n' | psql; echo $? >> {c}; printf 'drop table users;' | psql; echo $? >> {c}",
        c = codes.display()
    );
    let (code, stderr) = session(&t, &script);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(&codes).expect("codes").split_whitespace().collect::<Vec<_>>(), ["0", "75"]);
    assert_eq!(std::fs::read_to_string(&got).expect("stdin"), "select count(*) from users;\n");
    assert_eq!(std::fs::read_to_string(&pw).expect("password").trim(), "pg-custody-test");
    assert_eq!(t.audited("custody_released"), 1, "the DROP asked, and nothing was released for it");
}

/// The sealed copy's read position is shared by everything holding it: an agent that takes a
/// copy of the shim's descriptor (pidfd_getfd, allowed on its own children) and moves it must
/// not make the tool read less than was decided on (review finding c14). The tool reads a copy
/// of its own.
#[test]
fn the_tool_reads_all_of_the_piped_sql_that_was_decided_on() {
    let Some(python) = python() else { return };
    let t = world();
    let got = t.cwd.join("psql.stdin");
    crate::support::write_executable(&t.real.join("psql"), &format!("#!/bin/sh\nsleep 0.3; cat > {}\n", got.display()));
    let seek = t.cwd.join("seek.py");
    std::fs::write(
        &seek,
        r#"import os, subprocess, ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
p = subprocess.Popen(["psql"], stdin=subprocess.PIPE)
p.stdin.write(b"select ';drop table users;--'\n"); p.stdin.close()
pidfd = os.pidfd_open(p.pid)
end = time.time() + 5
while time.time() < end and p.poll() is None:
    fd = libc.syscall(438, pidfd, 0, 0)
    if fd < 0: continue
    try:
        if "memfd:guardsh-stdin" in os.readlink(f"/proc/self/fd/{fd}"):
            os.lseek(fd, 8, os.SEEK_SET)
    except OSError: pass
    os.close(fd)
p.wait()
"#,
    )
    .expect("seek.py");
    let (code, stderr) = session(&t, &format!("{} {}", python.display(), seek.display()));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(&got).expect("stdin"), "select ';drop table users;--'\n", "{stderr}");
    assert_eq!(t.audited("custody_released"), 1);
}

/// A peer that never finishes its first line, or sends a huge one, holds a place for at most a
/// few seconds and costs bounded memory; the custody socket keeps working.
#[test]
fn a_peer_that_floods_or_stalls_is_cut_off() {
    let Some(python) = python() else { return };
    let t = world();
    let out = t.cwd.join("answer");
    let flood = t.cwd.join("flood.py");
    std::fs::write(
        &flood,
        format!(
            r#"import os, socket
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["GUARDSH_CUSTODY"])
try:
    s.sendall(b"x" * (4 << 20))
except OSError:
    pass
open({out:?}, "w").write(s.makefile("rb").read().decode(errors="replace"))
"#,
            out = out.display().to_string()
        ),
    )
    .expect("flood.py");
    let (code, stderr) = session(&t, &format!("{} {}; aws s3 ls", python.display(), flood.display()));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(std::fs::read_to_string(&out).expect("answer").contains("too long or too slow"));
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("custody-secret-value"), "still working");
}

/// The agent can lower a running guardsh run's limits (prlimit needs only the same uid); a
/// tool guardsh run starts gets the limits guardsh run started with.
#[test]
fn a_tool_gets_the_limits_guardsh_run_started_with() {
    let Some(python) = python() else { return };
    let t = world();
    let limit = t.cwd.join("nofile");
    crate::support::write_executable(&t.real.join("aws"), &format!("#!/bin/sh\nulimit -n > {}\n", limit.display()));
    // (Lowering its file-size limit instead would only kill guardsh run, which the agent can do
    // anyway: the credentials die with it.)
    let lower = format!(
        "{} -c 'import resource, sys; h = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.prlimit(int(sys.argv[1]), resource.RLIMIT_NOFILE, (64, h))' $PPID",
        python.display()
    );
    let before = std::process::Command::new("sh").args(["-c", "ulimit -n"]).output().expect("sh");
    let (code, stderr) = session(&t, &format!("{lower}; aws s3 ls"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&limit).expect("limit").trim(),
        String::from_utf8_lossy(&before.stdout).trim(),
        "{stderr}"
    );
}

/// What runs is what an approval would bind: a selector the agent unsets stays unset (the
/// human's value does not come back), and HOME is the agent's, as the approval shows it.
#[test]
fn an_unset_selector_stays_unset() {
    let t = world().env("AWS_PROFILE", "prod-admin");
    let home = t.cwd.join("h");
    let (code, stderr) = session(&t, &format!("env -u AWS_PROFILE HOME={} aws s3 ls", home.display()));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(t.saw_var("aws", "AWS_PROFILE"), None, "the human's profile came back");
    assert_eq!(t.saw_var("aws", "HOME"), Some(home.display().to_string()));
}

/// `[settings] credentials_from` runs at every `guardsh run`, like `--credentials-from`.
#[test]
fn credential_sources_can_be_configured_in_the_policy() {
    let t = world();
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    let configured =
        rules.replacen("[settings]\n", "[settings]\ncredentials_from = [\"echo AWS_SESSION_TOKEN=configured\"]\n", 1);
    std::fs::write(t.config_dir().join("rules.toml"), configured).expect("rules");
    let (code, stderr) = session(&t, "aws s3 ls");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(t.saw_var("aws", "AWS_SESSION_TOKEN").as_deref(), Some("configured"));
}

/// What a tool started with credentials runs next must not be the agent's either (review
/// findings c21, c22): a link in a root-owned PATH directory that leads somewhere the user can
/// write takes that directory off the tool's PATH, and a script whose interpreter the user can
/// replace gets nothing. Needs files of different owners, so only as root (as CI runs).
#[test]
fn what_the_tool_runs_next_cannot_be_the_agents() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root, to give the agent's files and the system's different owners");
        return;
    }
    let t = world();
    // The agent's program, reachable through a root-owned link in the tools' directory.
    let helper = t.cwd.join("helper");
    let leak = t.cwd.join("leak");
    crate::support::write_executable(&helper, &format!("#!/bin/sh\nenv > {}\n", leak.display()));
    std::os::unix::fs::symlink(&helper, t.real.join("helper")).expect("symlink");
    crate::support::write_executable(&t.real.join("aws"), "#!/bin/sh\nhelper\n");
    let (code, stderr) = session(&t, "aws s3 ls; true");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("do not search these PATH entries"), "{stderr}");
    let leaked = std::fs::read_to_string(&leak).unwrap_or_default();
    assert!(!leaked.contains("custody-secret-value"), "the agent's helper got the key");
    assert_eq!(t.audited("custody_released"), 1, "aws itself was started, without its helper");

    // A root-owned script whose interpreter the agent can replace.
    let t = world();
    let interp = t.cwd.join("interp");
    crate::support::write_executable(&interp, &format!("#!/bin/sh\nenv > {}\n", leak.display()));
    crate::support::write_executable(&t.real.join("aws"), &format!("#!{}\n", interp.display()));
    let (code, stderr) = session(&t, "aws s3 ls; true");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("is replaceable by this user"), "{stderr}");
    assert_eq!(t.audited("custody_released"), 0);

    // A root-owned helper script the tool runs by name, whose interpreter the agent can replace
    // (review finding c25): its directory is left off the tool's PATH.
    let t = world();
    let interp = t.cwd.join("interp2");
    crate::support::write_executable(&interp, &format!("#!/bin/sh\nenv > {}\n", leak.display()));
    crate::support::write_executable(&t.real.join("awshelper"), &format!("#!{}\n", interp.display()));
    crate::support::write_executable(&t.real.join("aws"), "#!/bin/sh\nawshelper\n");
    let _ = std::fs::remove_file(&leak);
    let (code, stderr) = session(&t, "aws s3 ls; true");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("runs an interpreter this user can change"), "{stderr}");
    assert!(!std::fs::read_to_string(&leak).unwrap_or_default().contains("custody-secret-value"));
}
