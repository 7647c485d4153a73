//! The sandbox as a boundary. Every attack that broke `guardsh run` before it had one is run here
//! as the agent, as an unprivileged uid when the tests run as root (CI does): asserted to fail
//! inside the sandbox and, where the attack worked before, asserted to succeed with
//! `--no-sandbox`, so the suite shows what the sandbox closes. Then what must keep working
//! inside it.

use std::io::{BufRead, Read, Write};
use std::path::Path;

use crate::custody::python;
use crate::support::{Test, chown_tree};

const AGENT: u32 = 65534;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Sandbox,
    NoSandbox,
}

/// The shipped rules, fake tools, a shim for every guarded tool, and credential files in the
/// human's home and the project.
pub(crate) fn world() -> Test {
    let t = Test::new().tools(&["aws", "kubectl", "railway", "psql"]).example_rules();
    // The fake tools record what they saw here: a place tools started outside the sandbox may
    // write (see `sandbox::jail`), as the project is.
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    let records = format!("\n[sandbox]\nwritable = [{:?}]\n", t.records.display().to_string());
    std::fs::write(t.config_dir().join("rules.toml"), rules + &records).expect("rules");
    if !nix::unistd::geteuid().is_root() {
        // The fake real tools are this user's own files: trusted explicitly (see custody.rs).
        let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
        let trusting = rules.replacen("[settings]\n", "[settings]\ntrust_user_installed_tools = true\n", 1);
        std::fs::write(t.config_dir().join("rules.toml"), trusting).expect("rules");
    }
    t.guardsh(&["install"]).output().status(0);
    for (rel, text) in [
        (".aws/credentials", "[default]\naws_secret_access_key = aws-file-secret\n"),
        (".railway/config.json", "{\"token\": \"railway-file-secret\"}\n"),
    ] {
        let p = t.home.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    std::fs::write(t.cwd.join(".env"), "DOTENV=dotenv-file-secret\n").expect(".env");
    // (Review 6 and 7: a token in the human's cache, a .env under build/.)
    std::fs::create_dir_all(t.home.join(".cache/huggingface")).expect("mkdir");
    std::fs::write(t.home.join(".cache/huggingface/token"), "hf-cache-secret\n").expect("token");
    std::fs::create_dir_all(t.cwd.join("build")).expect("mkdir");
    std::fs::write(t.cwd.join("build/.env"), "BUILD=build-env-secret\n").expect("build/.env");
    t
}

/// Can this machine run the sandbox for the agent's user? Where it cannot, a test says so and
/// passes (CI must be able to: there it fails instead).
fn sandbox_works(t: &Test) -> bool {
    let mut probe = t.command(crate::support::guardsh());
    probe.cmd.arg("sandbox-probe");
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::process::CommandExt;
        probe.cmd.uid(AGENT).gid(AGENT);
    }
    let out = probe.output().json();
    let ok = out["user_namespaces"] == true && out["landlock_abi"].as_i64().unwrap_or(0) >= 1;
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must be able to run the sandbox: {out}");
        eprintln!("SKIPPED: this machine cannot run guardsh's sandbox for the agent's user ({out})");
    }
    ok
}

/// `world()`, where this machine can run the sandbox for the agent's user.
pub(crate) fn sandboxed() -> Option<Test> {
    let t = world();
    sandbox_works(&t).then_some(t)
}

/// Runs `script` with sh inside `guardsh run` as the agent. Returns (exit code, stdout, stderr).
pub(crate) fn agent(t: &Test, mode: Mode, script: &str) -> (Option<i32>, String, String) {
    agent_with(t, mode, &[], script)
}

pub(crate) fn agent_with(t: &Test, mode: Mode, env: &[(&str, &str)], script: &str) -> (Option<i32>, String, String) {
    let as_root = crate::support::as_root();
    t.hand_to_agent();
    let mut args = vec!["run"];
    if mode == Mode::NoSandbox {
        args.push("--no-sandbox");
    }
    args.extend(["--", "sh", "-c", script]);
    let mut run = t.guardsh(&args);
    for (k, v) in [
        ("AWS_ACCESS_KEY_ID", "AKIAESCAPETEST"),
        ("AWS_SECRET_ACCESS_KEY", "held-aws-secret"),
        ("RAILWAY_TOKEN", "held-railway-token"),
    ]
    .iter()
    .chain(env)
    {
        run = run.env(k, v);
    }
    if as_root {
        use std::os::unix::process::CommandExt;
        run.cmd.uid(AGENT).gid(AGENT);
    }
    let done = run.output();
    (done.code(), done.stdout(), done.stderr())
}

/// Issue 11 "Why" 2 and the quality bar: the agent reads credential files in the human's home
/// and the project's `.env`.
#[test]
fn credential_files_and_the_projects_env_are_out_of_reach() {
    let Some(t) = sandboxed() else { return };
    let script =
        "cat ~/.aws/credentials ~/.railway/config.json .env ~/.cache/huggingface/token build/.env 2>/dev/null; true";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    for secret in
        ["aws-file-secret", "railway-file-secret", "dotenv-file-secret", "hf-cache-secret", "build-env-secret"]
    {
        assert!(!out.contains(secret), "{secret} read inside the sandbox: {out}");
    }
    assert!(err.contains("hidden from the agent") && err.contains(".env"), "guardsh run says what it hid: {err}");
    // The file is still there for the human.
    assert!(std::fs::read_to_string(t.cwd.join(".env")).expect(".env").contains("dotenv-file-secret"));

    let (_, out, _) = agent(&t, Mode::NoSandbox, script);
    for secret in ["aws-file-secret", "railway-file-secret", "dotenv-file-secret"] {
        assert!(out.contains(secret), "without the sandbox the agent reads {secret}: {out}");
    }
}

/// Issue 20 class 3: a descriptor whatever started `guardsh run` left open (a credential file
/// opened earlier) passes every mount mask and Landlock rule. guardsh run passes on only the
/// descriptors it means to.
#[test]
fn a_descriptor_inherited_by_guardsh_run_reaches_neither_agent_nor_tool() {
    let Some(t) = sandboxed() else { return };
    crate::support::write_executable(
        &t.real.join("kubectl"),
        "#!/bin/sh
cat <&7 2>/dev/null | grep -q aws-file-secret && echo TOOL_READ_FD
",
    );
    let creds = t.home.join(".aws/credentials");
    let script = "cat <&7 2>/dev/null | grep -q aws-file-secret && echo AGENT_READ_FD; kubectl get pods; true";
    for mode in [Mode::Sandbox, Mode::NoSandbox] {
        let as_root = crate::support::as_root();
        t.hand_to_agent();
        // `exec 7<file` in the shell that starts guardsh run: open, and not closed on exec.
        let mut args = vec!["run"];
        if mode == Mode::NoSandbox {
            args.push("--no-sandbox");
        }
        let mut r = t.command("/bin/sh");
        r.cmd.arg("-c").arg("exec 7<\"$1\"; shift; exec \"$@\"").arg("sh").arg(&creds).arg(crate::support::guardsh());
        r.cmd.args(&args).args(["--", "sh", "-c", script]);
        if as_root {
            use std::os::unix::process::CommandExt;
            r.cmd.uid(AGENT).gid(AGENT);
        }
        let done = r.output();
        assert_eq!(done.code(), Some(0), "{mode:?}: {}", done.stderr());
        let out = done.stdout();
        assert!(!out.contains("AGENT_READ_FD"), "{mode:?}: the agent read the inherited descriptor: {out}");
        assert!(!out.contains("TOOL_READ_FD"), "{mode:?}: the tool read the inherited descriptor: {out}");
    }
}

/// Issue 20 class 2: a tool outside the sandbox that runs what the agent wrote. The agent moves
/// the read-only `.git` aside, makes a `.git` of its own whose `core.fsmonitor` is its script,
/// and runs `git status`. git runs inside the sandbox (decided and recorded by the broker), so
/// the script runs with the agent's reach, not the human's.
#[test]
fn git_runs_inside_so_repository_configuration_runs_with_the_agents_reach() {
    let Some(t) = sandboxed() else { return };
    let git = Path::new("/usr/bin/git");
    if !git.exists() {
        assert!(std::env::var_os("CI").is_none(), "CI has git");
        eprintln!("SKIPPED: needs /usr/bin/git");
        return;
    }
    std::os::unix::fs::symlink(git, t.real.join("git")).expect("symlink");
    let init = std::process::Command::new(git).args(["init", "-q"]).current_dir(&t.cwd).status().expect("git init");
    assert!(init.success());
    let script = r#"export PATH="$PATH:/usr/bin:/bin"
        mv .git .git-real && cp -r .git-real .git
        printf '#!/bin/sh
cat "$HOME/.aws/credentials" > "%s/leak" 2>/dev/null
exit 1
' "$PWD" > hook.sh; chmod +x hook.sh
        printf '[core]
	fsmonitor = %s/hook.sh
' "$PWD" >> .git/config
        git status >/dev/null 2>&1; echo code=$?"#;
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("code=0"),
        "git status works inside: {out}
{err}"
    );
    let leak = std::fs::read_to_string(t.cwd.join("leak")).unwrap_or_default();
    assert!(!leak.contains("aws-file-secret"), "the agent's hook read the human's files: {leak}");
    assert!(t.audited("exec_inside") >= 1, "the broker decided and recorded it");
    let (_, _, _) = agent(&t, Mode::NoSandbox, "rm -rf .git; mv .git-real .git; true");
    let (_, _, err) = agent(&t, Mode::NoSandbox, script);
    let leak = std::fs::read_to_string(t.cwd.join("leak")).unwrap_or_default();
    assert!(
        leak.contains("aws-file-secret"),
        "without the sandbox the hook reads them: {leak}
{err}"
    );
}

/// Issue 20 class 7: the agent writes the project's `.guardsh.toml`. An invalid one used to stop
/// the human's next session from starting; a project file now counts only once the human trusted
/// exactly its content (`guardsh trust`), and only until it changes.
#[test]
fn a_project_policy_counts_only_as_the_human_trusted_it() {
    let t = world();
    std::fs::write(t.cwd.join(".guardsh.toml"), "this is [[[ not a policy").expect("write");
    let (code, out, err) = agent(&t, Mode::NoSandbox, "kubectl get pods");
    assert_eq!(code, Some(0), "an invalid, untrusted project file stops nothing: {err}");
    assert!(
        out.contains("fake kubectl ran") && err.contains("is not trusted"),
        "{out}
{err}"
    );

    let tighter =
        "[[rule]]\nid = \"no-get\"\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"not here\"\nargs = [\"get\"]\n";
    std::fs::write(t.cwd.join(".guardsh.toml"), tighter).expect("write");
    t.guardsh(&["check", "--", "kubectl", "get", "pods"]).output().stdout_has("allow");
    t.guardsh(&["trust"]).output().status(0).stdout_has("trusted");
    t.guardsh(&["check", "--", "kubectl", "get", "pods"]).output().stdout_has("deny");
    // A file that does not compile with the policy is never trusted (it would refuse everything).
    let loosening =
        "[[rule]]\nid = \"loose\"\ntool = \"kubectl\"\naction = \"allow\"\nreason = \"r\"\nargs = [\"delete\"]\n";
    std::fs::write(t.cwd.join(".guardsh.toml"), loosening).expect("write");
    t.guardsh(&["trust"]).output().status(1).stderr_has("is not trusted");
    std::fs::write(t.cwd.join(".guardsh.toml"), tighter).expect("write");
    t.guardsh(&["trust"]).output().status(0);
    // The agent changes the trusted file: it is ignored again until the human looks.
    std::fs::write(t.cwd.join(".guardsh.toml"), format!("{tighter}# changed\n")).expect("write");
    t.guardsh(&["check", "--", "kubectl", "get", "pods"]).output().stdout_lacks("deny");
}

/// Issue 20 class 1: an allowed command run outside the sandbox as a reader of the human's
/// files. A client-side dry run of `kubectl create secret --from-file=~/.aws/credentials` prints
/// the file. Tools outside run in a jail of their own: the system, what the agent sees, and
/// their own configuration (`own_files`: kubectl's `~/.kube`), not the rest of the home.
#[test]
fn a_tool_outside_reaches_its_own_configuration_and_not_the_humans_other_files() {
    let Some(t) = sandboxed() else { return };
    std::fs::create_dir_all(t.home.join(".kube")).expect("mkdir");
    std::fs::write(t.home.join(".kube/config"), "kube-config-of-the-human\n").expect("kubeconfig");
    crate::support::write_executable(
        &t.real.join("kubectl"),
        "#!/bin/sh\ncat \"$HOME/.kube/config\"\nfor a in \"$@\"; do case \"$a\" in --from-file=*) cat \"${a#--from-file=}\";; esac; done\n",
    );
    // (Review 3: a file of the human's in their /tmp, which the agent's private /tmp hides.)
    let human_tmp = tempfile::Builder::new().prefix("guardsh-escape-").tempdir_in("/tmp").expect("tmp");
    let ticket = human_tmp.path().join("krb5cc");
    std::fs::write(&ticket, "kerberos-ticket-secret\n").expect("ticket");
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(human_tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        chown_tree(human_tmp.path(), AGENT);
    }
    let script = format!(
        "kubectl create secret generic x --from-file=$HOME/.aws/credentials --dry-run=client -o yaml; \
         kubectl create secret generic y --from-file={} --dry-run=client -o yaml",
        ticket.display()
    );
    let (code, out, err) = agent(&t, Mode::Sandbox, &script);
    assert!(out.contains("kube-config-of-the-human"), "its own kubeconfig works: {out}\n{err} ({code:?})");
    assert!(!out.contains("aws-file-secret"), "the human's other file was read: {out}");
    assert!(!out.contains("kerberos-ticket-secret"), "the human's /tmp was read: {out}");
    // (Review 8: an input file the agent cannot see is not read for it.)
    let (_, out, err) =
        agent(&t, Mode::Sandbox, "kubectl apply -f ~/.railway/config.json --dry-run=client; echo code=$?");
    assert!(out.contains("code=75") || out.contains("code=77"), "not allowed: {out}\n{err}");
    assert!(!err.contains("railway-file-secret") && !out.contains("railway-file-secret"), "{err}");
    let (_, out, _) = agent(&t, Mode::NoSandbox, &script);
    assert!(out.contains("aws-file-secret"), "without the sandbox the allowed dry run prints it: {out}");
}

/// Issue 12 item 2 through the broker: a manifest is decided on its content, read where the shim
/// runs, and the tool started outside reads the copy decided on, not the file the agent can
/// still change.
#[test]
fn input_files_are_decided_and_handed_over_as_copies_through_the_broker() {
    let Some(t) = sandboxed() else { return };
    crate::support::write_executable(
        &t.real.join("kubectl"),
        &format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in /dev/fd/*) cat \"$a\" > {r}/kubectl.input;; esac; done\necho ran\n",
            r = t.records.display()
        ),
    );
    std::fs::write(t.cwd.join("pod.yaml"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n").expect("pod");
    std::fs::write(t.cwd.join("ns.yaml"), "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n").expect("ns");
    let script = "kubectl apply -f pod.yaml --dry-run=client; echo code=$?; kubectl delete -f ns.yaml; echo code=$?";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("code=0") && out.contains("code=77"), "{out}\n{err}");
    let input = std::fs::read_to_string(t.records.join("kubectl.input")).expect("the tool read a copy");
    assert!(input.contains("name: web-1"), "{input}");
    let exec = t.audit_records().into_iter().find(|r| r["outcome"] == "exec").expect("exec record");
    assert!(exec["exec_argv"].to_string().contains("/dev/fd/"), "{exec}");
}

/// Issue 11: the agent gets a terminal of its own, relayed to the human's: it holds no descriptor
/// of the human's terminal, and what the human types still reaches it.
#[test]
fn the_agent_has_a_terminal_of_its_own_relayed_to_the_humans() {
    use expectrl::Expect;
    let Some(t) = sandboxed() else { return };
    t.hand_to_agent();
    // Every terminal descriptor the agent holds, and a line typed by the human.
    let script = "me=$(readlink /proc/self/fd/0); echo \"agent-tty:$me\"; \
                  for fd in /proc/self/fd/*; do l=$(readlink $fd); case $l in /dev/pts/*) [ \"$l\" != \"$me\" ] && echo \"other-tty:$l\";; esac; done; \
                  echo listed; read line; echo \"got:$line\"";
    let mut args: Vec<&str> = vec!["-c", "echo \"human-tty:$(readlink /proc/self/fd/0)\"; exec \"$@\"", "sh"];
    if nix::unistd::geteuid().is_root() {
        args.extend(["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    }
    args.extend([crate::support::guardsh(), "run", "--", "sh", "-c", script]);
    let mut s = t.in_terminal("/bin/sh", &args);
    let found = s.expect(expectrl::Regex("human-tty:(/dev/pts/[0-9]+)")).expect("the human's terminal");
    let human_tty = String::from_utf8_lossy(found.get(1).expect("tty")).into_owned();
    let found = s.expect(expectrl::Regex("agent-tty:(/dev/pts/[0-9]+)")).expect("the agent's terminal");
    let agent_tty = String::from_utf8_lossy(found.get(1).expect("tty")).into_owned();
    assert_ne!(agent_tty, human_tty, "the agent runs on a terminal of its own");
    let listed = s.expect("listed").expect("the agent's descriptors");
    let before = String::from_utf8_lossy(listed.before()).into_owned();
    assert!(!before.contains("other-tty:"), "the agent holds another terminal: {before}");
    s.send_line("hello").expect("type");
    s.expect("got:hello").expect("what the human types reaches the agent");
}

/// Issue 20 class 5: a token in a remote URL of the project's `.git/config`, which git inside
/// (and so the agent) reads.
#[test]
fn a_token_in_a_git_remote_url_is_hidden() {
    let Some(t) = sandboxed() else { return };
    let git = Path::new("/usr/bin/git");
    if !git.exists() {
        return;
    }
    let run = |args: &[&str]| {
        let ok = std::process::Command::new(git).args(args).current_dir(&t.cwd).status().expect("git");
        assert!(ok.success(), "{args:?}");
    };
    run(&["init", "-q"]);
    run(&["remote", "add", "origin", "https://x-access-token:ghp_tokenintheurl@github.com/o/r.git"]);
    let (code, out, err) = agent(&t, Mode::Sandbox, "cat .git/config");
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("ghp_tokenintheurl"), "{out}");
    assert!(out.contains("url = https://github.com/o/r.git"), "the agent still sees the remote: {out}");
    assert!(err.contains("hidden from the agent: the credentials in"), "{err}");
    let (_, out, _) = agent(&t, Mode::NoSandbox, "cat .git/config");
    assert!(out.contains("ghp_tokenintheurl"), "without the sandbox it reads the token: {out}");
}

/// Issue 20 class 6: files that editors and tools run by themselves, left in the project for
/// later; `guardsh run` names them when the session ends.
#[test]
fn files_that_run_later_are_named_when_the_session_ends() {
    let Some(t) = sandboxed() else { return };
    let script = "/bin/mkdir -p .vscode && echo '{\"tasks\": []}' > .vscode/tasks.json && echo 'eval evil' > .envrc";
    let (code, _, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("read them before you open the project outside the sandbox"), "{err}");
    assert!(err.contains(".vscode/tasks.json (created)") && err.contains(".envrc (created)"), "{err}");
}

/// Review finding 4: the read-only `.git/config` and `.git/hooks` were sidestepped by renaming
/// `.git` and putting a `.git` of the agent's own (with a `core.fsmonitor` the human's own git
/// would later run) in its place. `.git` is a mount point inside: it cannot be renamed.
#[test]
fn the_projects_git_directory_cannot_be_swapped() {
    let Some(t) = sandboxed() else { return };
    let git = Path::new("/usr/bin/git");
    if !git.exists() {
        return;
    }
    let init = std::process::Command::new(git).args(["init", "-q"]).current_dir(&t.cwd).status().expect("git");
    assert!(init.success());
    let before = std::fs::read(t.cwd.join(".git/config")).expect("config");
    let script =
        "/bin/mv .git .git-real; echo mv=$?; /bin/rm -rf .git 2>/dev/null; echo x >> .git/config 2>/dev/null; true";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("mv=0"), "{out}");
    assert!(!t.cwd.join(".git-real").exists(), "{out}");
    assert_eq!(
        std::fs::read(t.cwd.join(".git/config")).expect("config"),
        before,
        "the human's .git/config is as it was"
    );
}

/// Review finding 5: a raw client names one directory and passes another; the audit log and the
/// approval would show the one it named. The broker refuses a tool outside unless they are the
/// same directory.
#[test]
fn a_proposal_cannot_name_another_directory_than_it_passes() {
    let Some(python) = python() else { return };
    let Some(t) = sandboxed() else { return };
    for d in ["staging", "prod"] {
        std::fs::create_dir_all(t.cwd.join(d)).expect("mkdir");
    }
    let client = r#"
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["GUARDSH_BROKER"])
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
w = lambda t: list(t.encode())
msg = {"version": 3, "request": None, "stdin_captured": False,
       "proposal": {"argv": [w("kubectl"), w("get"), w("pods")], "cwd": w(sys.argv[2]), "env": []}}
socket.send_fds(s, [json.dumps(msg).encode() + b"\n"], [0, 1, 2, d])
print("ANSWER", s.recv(4096).decode().strip())
"#;
    std::fs::write(t.cwd.join("lie.py"), client).expect("client");
    let script = format!("{} lie.py $PWD/prod $PWD/staging", python.display());
    let (code, out, err) = agent(&t, Mode::Sandbox, &script);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("\"code\":77"), "refused: {out}\n{err}");
    assert!(!t.ran("kubectl"), "{out}");
    assert!(err.contains("is not a directory it shares with the outside"), "{err}");
}

/// Issue 20 class 6: a package cache under the human's home (a poisoned `build.rs` in
/// `~/.cargo/registry` runs later, in the human's own builds, outside). The agent sees the
/// cache; what it writes there is its own overlay, gone when the session ends.
#[test]
fn what_the_agent_writes_into_a_shared_cache_stays_in_its_session() {
    let Some(t) = sandboxed() else { return };
    let registry = t.home.join(".cargo/registry/src/crate-1.0");
    std::fs::create_dir_all(&registry).expect("mkdir");
    std::fs::write(registry.join("build.rs"), "fn main() {}\n").expect("build.rs");
    let script = "cat ~/.cargo/registry/src/crate-1.0/build.rs && \
                  echo 'fn main() { evil() }' > ~/.cargo/registry/src/crate-1.0/build.rs && \
                  touch ~/.cargo/registry/planted && echo WROTE";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("fn main() {}") && out.contains("WROTE"), "the agent sees and uses its cache: {out}\n{err}");
    assert_eq!(std::fs::read_to_string(registry.join("build.rs")).expect("build.rs"), "fn main() {}\n");
    assert!(!t.home.join(".cargo/registry/planted").exists());
    let _ = agent(&t, Mode::NoSandbox, script);
    assert!(t.home.join(".cargo/registry/planted").exists(), "without the sandbox it persists");
}

/// Review finding s17: terraform runs the project's code (providers, `data "external"`); run
/// outside by the broker, that code had terraform's reach of the human's files. Granted nothing,
/// terraform runs inside.
#[test]
fn terraform_granted_nothing_runs_inside() {
    let Some(t) = sandboxed() else { return };
    t.fake_tool("terraform");
    let (code, out, err) = agent(&t, Mode::Sandbox, "terraform plan; echo code=$?");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("code=0"), "{out}\n{err}");
    let plan = t.audit_records().into_iter().find(|r| r["tool"] == "terraform").expect("audited");
    assert_eq!(plan["outcome"], "exec_inside", "{plan}");
}

/// guardsh run keeps the compiled policy in memory; an edit the human makes during the session
/// counts from the next command on.
#[test]
fn a_policy_changed_during_the_session_counts_at_once() {
    let Some(t) = sandboxed() else { return };
    let t = std::sync::Arc::new(t);
    let flag = t.cwd.join("go-on");
    let script = format!(
        "kubectl get pods >/dev/null; echo code=$?; while [ ! -e {f} ]; do sleep 0.05; done; kubectl get pods >/dev/null; echo code=$?",
        f = flag.display()
    );
    // The agent's user owns its world before anything of it runs (the thread below and the
    // `pending` calls here would otherwise race the hand-over).
    t.hand_to_agent();
    let runner = std::thread::spawn({
        let t = std::sync::Arc::clone(&t);
        move || agent(&t, Mode::Sandbox, &script)
    });
    let start = std::time::Instant::now();
    while !t.ran("kubectl") {
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "the first call never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    let tighter = rules
        + "\n[[rule]]\nid = \"no-get-now\"\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"changed\"\nargs = [\"get\"]\n";
    std::fs::write(t.config_dir().join("rules.toml"), tighter).expect("rules");
    std::fs::write(&flag, "").expect("flag");
    let (code, out, err) = runner.join().expect("agent");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("code=0") && out.contains("code=77"), "{out}\n{err}");
}

/// Issue 11 "Why" 1: an allowed command granted credentials blocks on a pipe nobody reads; the
/// agent reads `/proc/<tool>/environ`.
#[test]
fn a_granted_tools_environment_cannot_be_read_while_it_runs() {
    let Some(t) = sandboxed() else { return };
    crate::support::write_executable(&t.real.join("aws"), "#!/bin/sh\nsleep 2\n");
    let script = "aws s3 ls & sleep 1; \
                  for p in /proc/[0-9]*; do grep -a -q held-aws-secret $p/environ 2>/dev/null && echo FOUND; done; wait";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("FOUND"), "the granted tool's environment was read: {out}");
    let (_, out, _) = agent(&t, Mode::NoSandbox, script);
    assert!(out.contains("FOUND"), "without the sandbox the tool's environ is readable: {out}");
}

/// Issue 11 "Why" 3 and the quality bar: the agent writes the request store, the policy, the
/// audit log, the cache and the shim directory.
#[test]
fn guardshs_policy_state_and_shims_cannot_be_written() {
    let Some(t) = sandboxed() else { return };
    let rules_before = std::fs::read(t.config_dir().join("rules.toml")).expect("rules");
    std::fs::create_dir_all(t.home.join(".local/bin")).expect("~/.local/bin");
    // One guarded call first, so that the state directory, audit log and cache exist.
    let script = "kubectl get pods >/dev/null; \
                  echo '[settings]' >> ~/.config/guardsh/rules.toml; \
                  echo forged >> ~/.local/state/guardsh/audit.jsonl; \
                  mkdir -p ~/.local/state/guardsh/requests && echo forged > ~/.local/state/guardsh/requests/forged.decision; \
                  touch ~/.local/state/guardsh/cache/forged; \
                  ln -sf /bin/true ~/.local/share/guardsh/shims/kubectl; \
                  echo evil > ~/.local/bin/kubectl; \
                  kubectl get pods; true";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read(t.config_dir().join("rules.toml")).expect("rules"), rules_before, "policy unchanged");
    let audit = std::fs::read_to_string(t.audit_log()).expect("audit log");
    assert!(!audit.contains("forged"), "audit log untouched");
    assert!(!t.state_dir().join("requests/forged.decision").exists());
    assert!(!t.state_dir().join("cache/forged").exists());
    let shim = std::fs::read_link(t.shims.join("kubectl")).expect("shim");
    assert_eq!(shim, Path::new(crate::support::guardsh()), "shim untouched");
    assert!(!t.home.join(".local/bin/kubectl").exists(), "nothing planted in ~/.local/bin");
    assert_eq!(out.matches("fake kubectl ran").count(), 1, "the last call still went through the broker: {out}");
    t.guardsh(&["audit", "verify"]).output().status(0);

    let (_, _, _) = agent(&t, Mode::NoSandbox, script);
    assert_ne!(
        std::fs::read(t.config_dir().join("rules.toml")).expect("rules"),
        rules_before,
        "without the sandbox the agent edits the policy"
    );
}

/// A Unix socket of the human's in a new directory under `parent`: whether the agent reaches it
/// (inside the sandbox, then without it).
fn humans_socket(parent: &str) -> Option<(bool, bool)> {
    let python = python()?;
    let t = world();
    if !sandbox_works(&t) {
        return None;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("guardsh-escape-").tempdir_in(parent).expect("dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = dir.path().join("default");
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    listener.set_nonblocking(true).expect("nonblocking");
    let script = format!(
        "{py} -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(\"CONNECTED\")' {sock} 2>/dev/null; true",
        py = python.display(),
        sock = socket.display()
    );
    let (code, inside, err) = agent(&t, Mode::Sandbox, &script);
    assert_eq!(code, Some(0), "{err}");
    assert!(listener.accept().is_err() || !inside.contains("CONNECTED"), "{inside}");
    let (_, outside, _) = agent(&t, Mode::NoSandbox, &script);
    Some((inside.contains("CONNECTED"), outside.contains("CONNECTED")))
}

/// Issue 11 "Why" 3: the human's tmux (or screen, ssh-agent, D-Bus) socket in /tmp, which would
/// let the agent type into the human's `guardsh watch`.
#[test]
fn the_humans_sockets_in_tmp_are_out_of_reach() {
    if let Some((inside, outside)) = humans_socket("/tmp") {
        assert!(!inside, "the agent reached the human's socket");
        assert!(outside, "without the sandbox it does");
    }
}

/// Issue 11 "Why" 5 and the quality bar: ptrace or signal `guardsh run`, or read the memory of
/// the human's shell that started it.
#[test]
fn guardsh_run_and_the_humans_processes_are_out_of_reach() {
    let Some(t) = sandboxed() else { return };
    let script = "for p in /proc/[0-9]*; do \
                    if sed 's/\\x00/ /g' $p/cmdline 2>/dev/null | grep -q '^[^ ]*guardsh run'; then \
                      echo VISIBLE; kill -0 ${p#/proc/} 2>/dev/null && echo SIGNALLED; \
                      head -c1 $p/mem >/dev/null 2>&1 && echo MEMORY; \
                    fi; done; \
                  kill -0 1 2>/dev/null && echo INIT_SIGNALLED; true";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    for what in ["VISIBLE", "SIGNALLED", "MEMORY", "INIT_SIGNALLED"] {
        assert!(!out.contains(what), "{what}: {out}");
    }
    let (_, out, _) = agent(&t, Mode::NoSandbox, script);
    assert!(out.contains("VISIBLE") && out.contains("SIGNALLED"), "without the sandbox guardsh run is in reach: {out}");
}

/// Issue 20 class 4: Unix sockets of the human's outside /tmp: under /run (docker's, a
/// database's, the user's runtime directory). Only when the tests run as root, which can make one
/// there.
#[test]
fn the_humans_sockets_in_run_are_out_of_reach() {
    if !crate::support::as_root() {
        return;
    }
    if let Some((inside, outside)) = humans_socket("/run") {
        assert!(!inside, "the agent reached the human's socket");
        assert!(outside, "without the sandbox it does");
    }
}

/// Issue 11 quality bar: TIOCSTI, typing into a terminal as if the human had.
#[test]
fn typing_into_a_terminal_is_refused() {
    let Some(python) = python() else { return };
    let Some(t) = sandboxed() else { return };
    let probe = r#"
import os, fcntl, termios
m, s = os.openpty(); name = os.ttyname(s)
pid = os.fork()
if pid == 0:
    os.setsid(); fd = os.open(name, os.O_RDWR)
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b'x'); print("TIOCSTI_OK", flush=True)
    except OSError as e:
        print("TIOCSTI_ERR", e.errno, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"#;
    std::fs::write(t.cwd.join("tiocsti.py"), probe).expect("write");
    let script = format!("{} tiocsti.py", python.display());
    let (code, out, err) = agent(&t, Mode::Sandbox, &script);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("TIOCSTI_ERR 1"), "seccomp refuses TIOCSTI with EPERM: {out}\n{err}");
    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").is_ok_and(|v| v.trim() == "1");
    if legacy {
        let (_, out, _) = agent(&t, Mode::NoSandbox, &script);
        assert!(out.contains("TIOCSTI_OK"), "without the sandbox TIOCSTI works on this kernel: {out}");
    }
}

/// Issue 11 quality bar: the real binary by its absolute path, and a shell that resets PATH.
#[test]
fn a_guarded_tool_by_absolute_path_or_a_reset_path_reaches_guardsh() {
    let Some(t) = sandboxed() else { return };
    let script = format!(
        "{real}/kubectl delete namespace prod; echo code=$?; PATH=/usr/bin:/bin:{real} kubectl delete namespace prod; echo code=$?",
        real = t.real.display()
    );
    let (code, out, err) = agent(&t, Mode::Sandbox, &script);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.matches("code=77").count(), 2, "both denied: {out}\n{err}");
    assert!(!t.ran("kubectl"), "the real kubectl never ran");
    assert!(err.contains("deleting a namespace"), "the agent hears the rule's reason: {err}");
    let (_, out, _) = agent(&t, Mode::NoSandbox, &script);
    assert!(out.contains("code=0") && t.ran("kubectl"), "without the sandbox the absolute path runs it: {out}");
}

/// Issue 19 B: whatever a shell does to PATH (a login shell's /etc/profile, `env -i`, an
/// absolute path), a guarded tool inside the sandbox reaches guardsh, never the real binary.
#[test]
fn login_shells_and_cleared_environments_still_reach_guardsh() {
    let Some(t) = sandboxed() else { return };
    let kubectl = t.real.join("kubectl");
    let script = format!(
        "/bin/bash -lc 'kubectl delete namespace prod'; echo code=$?; \
         /bin/sh -lc 'kubectl delete namespace prod'; echo code=$?; \
         /usr/bin/env -i /bin/sh -c 'kubectl delete namespace prod'; echo code=$?; \
         /usr/bin/env -i {k} delete namespace prod; echo code=$?",
        k = kubectl.display()
    );
    let (code, out, err) = agent(&t, Mode::Sandbox, &script);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.matches("code=77").count(), 4, "each one denied by the broker: {out}\n{err}");
    assert!(!t.ran("kubectl"), "the fake real kubectl never ran");
    assert!(!err.contains("couldn't get current server"), "the machine's real kubectl never ran: {err}");
}

/// Issue 11 "Why" 2 and the quality bar: a token from a file, sent with an HTTP client straight
/// to (a local stand-in of) the provider's API.
#[test]
fn a_token_from_a_file_never_reaches_the_providers_api() {
    let Some(python) = python() else { return };
    let Some(t) = sandboxed() else { return };
    let server = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let seen = std::sync::Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in server.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut reader = std::io::BufReader::new(&conn);
                let mut head = String::new();
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    head.push_str(&line);
                    line.clear();
                }
                let mut body = [0u8; 64];
                let _ = reader.read(&mut body);
                seen.lock().expect("lock").push(head);
                let _ = (&conn).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
            }
        });
    }
    let script = format!(
        "T=$(cat ~/.railway/config.json 2>/dev/null); {py} -c 'import urllib.request,sys; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b\"mutation{{volumeDelete}}\", headers={{\"Authorization\": \"Bearer \" + sys.argv[2]}}), timeout=5); print(\"SENT\")' http://127.0.0.1:{port}/graphql \"$T\"",
        py = python.display()
    );
    let (code, out, err) = agent(&t, Mode::Sandbox, &script);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("SENT"), "the network stays open (the agent needs its model): {out}{err}");
    let heads = seen.lock().expect("lock").clone();
    assert!(!heads.iter().any(|h| h.contains("railway-file-secret")), "the token reached the API: {heads:?}");
    let (_, _, _) = agent(&t, Mode::NoSandbox, &script);
    let heads = seen.lock().expect("lock").clone();
    assert!(heads.iter().any(|h| h.contains("railway-file-secret")), "without the sandbox it does: {heads:?}");
}

/// Issue 11 "Why" 4: a tool started outside with the agent's HOME reads configuration the agent
/// wrote (an aws CLI alias that prints the keys). Outside, tools get the human's HOME.
#[test]
fn a_tool_outside_reads_the_humans_configuration_not_the_agents() {
    let Some(t) = sandboxed() else { return };
    let script = "/bin/mkdir -p fakehome/.aws/cli && HOME=$PWD/fakehome aws s3 ls >/dev/null; true";
    let (code, _, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    let home = t.home.display().to_string();
    assert_eq!(t.saw_var("aws", "HOME").as_deref(), Some(home.as_str()), "the human's HOME: {err}");
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("held-aws-secret"), "and its grant");
    t.forget("aws");
    std::fs::remove_file(t.records.join("aws.env")).expect("the record");
    let _ = agent(&t, Mode::NoSandbox, script);
    let fake = t.cwd.join("fakehome").display().to_string();
    assert_eq!(t.saw_var("aws", "HOME").as_deref(), Some(fake.as_str()), "without the sandbox: the agent's HOME");
}

/// A selector that names a file the agent can write would let it choose what a tool outside
/// reads (a kubeconfig's exec plugin): refused.
#[test]
fn a_selector_naming_a_file_the_agent_wrote_is_refused() {
    let Some(t) = sandboxed() else { return };
    // (Review 1: a bare name that is a file here, and the agent's own stdin, are files too.)
    let script = "echo 'users: [{user: {exec: {command: /bin/sh}}}]' > kc; KUBECONFIG=$PWD/kc kubectl get pods; echo code=$?; \
                  kubectl --kubeconfig=$PWD/kc get pods; echo code=$?; kubectl get pods --kubeconfig kc; echo code=$?; \
                  KUBECONFIG=kc kubectl get pods; echo code=$?; cat kc | KUBECONFIG=/dev/stdin kubectl get pods; echo code=$?; \
                  KUBECONFIG=/proc/self/fd/0 kubectl get pods < kc; echo code=$?";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.matches("code=77").count(), 6, "variables, flags, bare names and streams: {out}\n{err}");
    assert!(err.contains("which the agent can write"), "{err}");
    assert!(!t.ran("kubectl"));
}

/// Issue 11 "Why" 3: the agent forges a decision in the request store. Inside the sandbox the
/// store is not there to write.
#[test]
fn the_request_store_cannot_be_forged() {
    let Some(t) = sandboxed() else { return };
    let script = "kubectl delete pod web-1; echo code=$?; \
                  ls ~/.local/state/guardsh/requests 2>/dev/null | grep -c request > /dev/null && echo STORE_VISIBLE; \
                  kubectl delete pod web-1; echo code=$?";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.matches("code=75").count(), 2, "asked twice, never ran: {out}\n{err}");
    assert!(!out.contains("STORE_VISIBLE"), "{out}");
    assert!(!t.ran("kubectl"));
    assert_eq!(t.pending_as_agent(1).len(), 1, "one request, joined by the identical second call");
}

/// What must keep working: an allowed read runs and prints; exit codes and signals pass through.
#[test]
fn an_allowed_read_runs_and_its_exit_status_and_signal_pass_through() {
    let Some(t) = sandboxed() else { return };
    crate::support::write_executable(&t.real.join("railway"), "#!/bin/sh\necho railway says hi\nkill -TERM $$\n");
    let script = "kubectl get pods; echo code=$?; railway status; echo code=$?";
    let (code, out, err) = agent_with(&t, Mode::Sandbox, &[("FAKE_EXIT", "7")], script);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("fake kubectl ran"), "{out}");
    assert!(out.contains("code=7"), "the tool's exit status (FAKE_EXIT comes from the human's environment): {out}");
    assert!(out.contains("railway says hi") && out.contains("code=143"), "killed by SIGTERM: {out}\n{err}");
    assert_eq!(t.saw_args("kubectl").expect("ran"), ["get", "pods"]);
    let exec = t.audit_records().into_iter().filter(|r| r["outcome"] == "exec").count();
    assert_eq!(exec, 2, "each run recorded outside the sandbox");
}

/// What must keep working: piped SQL reaches psql byte for byte, decided on by the broker.
#[test]
fn piped_sql_reaches_psql_byte_for_byte() {
    let Some(t) = sandboxed() else { return };
    let got = t.records.join("psql.stdin");
    crate::support::write_executable(&t.real.join("psql"), &format!("#!/bin/sh\ncat > {}\n", got.display()));
    let script =
        "printf 'select count(*) from users;\\n' | psql; echo code=$?; printf 'drop table users;' | psql; echo code=$?";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("code=0") && out.contains("code=75"), "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&got).expect("stdin"), "select count(*) from users;\n");
}

/// What must keep working: an ask approved by the human outside runs once, while the agent's
/// command waits (the default), although the shim that asked lives in another PID namespace.
#[test]
fn an_ask_approved_outside_runs_once() {
    let Some(t) = sandboxed() else { return };
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    std::fs::write(t.config_dir().join("rules.toml"), rules.replacen("wait = false\n", "wait = true\n", 1))
        .expect("rules");
    let t = std::sync::Arc::new(t);
    let codes = t.cwd.join("codes");
    // setsid: the agent's command is not in the session of the test process, which is also
    // the approving terminal's parent here (a human's terminals share no such ancestor).
    let script = format!("setsid aws ec2 terminate-instances --instance-ids i-1; echo $? > {c}", c = codes.display());
    // The agent's user owns its world before anything of it runs (the thread below and the
    // `pending` calls here would otherwise race the hand-over).
    t.hand_to_agent();
    let runner = std::thread::spawn({
        let t = std::sync::Arc::clone(&t);
        move || agent(&t, Mode::Sandbox, &script)
    });
    let id = t.pending_as_agent(1).remove(0);
    assert!(!t.ran("aws"), "nothing ran before the approval");
    t.approve_as_agent(&id);
    let (code, _, err) = runner.join().expect("agent");
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(std::fs::read_to_string(&codes).expect("codes").trim(), "0", "{err}");
    assert_eq!(t.saw_args("aws").expect("ran"), ["ec2", "terminate-instances", "--instance-ids", "i-1"]);
    assert_eq!(t.saw_var("aws", "AWS_SECRET_ACCESS_KEY").as_deref(), Some("held-aws-secret"), "its grant");
    let runs = t.audit_records().into_iter().filter(|r| r["outcome"] == "exec" && r["tool"] == "aws").count();
    assert_eq!(runs, 1, "ran once");
    assert!(err.contains("a human approved request"), "{err}");
}

/// A request whose shim is gone is withdrawn: never approvable afterwards.
#[test]
fn a_request_whose_shim_is_gone_is_withdrawn() {
    let Some(t) = sandboxed() else { return };
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    std::fs::write(t.config_dir().join("rules.toml"), rules.replacen("wait = false\n", "wait = true\n", 1))
        .expect("rules");
    let script = "aws ec2 terminate-instances --instance-ids i-1 & sleep 1.5; kill $!; wait; sleep 0.5";
    let (code, _, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{err}");
    let withdrawn = t.audit_records().into_iter().filter(|r| r["outcome"] == "withdrawn").count();
    assert_eq!(withdrawn, 1, "{err}");
    assert!(t.pending_as_agent(0).is_empty(), "nothing pending");
}

/// Below the floor guardsh run refuses and names `--no-sandbox`; above it, it says what this
/// kernel leaves out, and the sandbox still holds.
#[test]
fn a_kernel_below_the_floor_is_refused_and_one_above_it_is_reported() {
    let Some(t) = sandboxed() else { return };
    for knob in ["no-userns", "landlock-abi=0"] {
        let (code, _, err) = agent_with(&t, Mode::Sandbox, &[("GUARDSH_SANDBOX_SIMULATE", knob)], "touch started");
        assert_eq!(code, Some(1), "{knob}: {err}");
        assert!(err.contains("--no-sandbox") && err.contains("the agent was not started"), "{knob}: {err}");
        assert!(!t.cwd.join("started").exists(), "{knob}: the agent never started");
    }
    let (code, out, err) = agent_with(
        &t,
        Mode::Sandbox,
        &[("GUARDSH_SANDBOX_SIMULATE", "landlock-abi=4")],
        "cat ~/.aws/credentials; true",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("not enforced on this kernel") && err.contains("abstract Unix sockets"), "{err}");
    assert!(!out.contains("aws-file-secret"), "{out}");
}

/// What must keep working: building a small Rust crate and a small Node project, offline,
/// inside the sandbox.
#[test]
fn a_small_rust_crate_and_node_project_build_inside() {
    let Some(t) = sandboxed() else { return };
    let (cargo, npm) = (Path::new("/usr/bin/cargo"), Path::new("/usr/bin/npm"));
    if !cargo.exists() || !npm.exists() {
        assert!(std::env::var_os("CI").is_none(), "CI installs cargo and npm in /usr/bin");
        eprintln!("SKIPPED: building inside the sandbox needs /usr/bin/cargo and /usr/bin/npm");
        return;
    }
    let krate = t.cwd.join("hello");
    std::fs::create_dir_all(krate.join("src")).expect("mkdir");
    std::fs::write(krate.join("Cargo.toml"), "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n")
        .expect("toml");
    std::fs::write(krate.join("src/main.rs"), "fn main() { println!(\"hello from the sandbox\"); }\n").expect("main");
    let node = t.cwd.join("web");
    std::fs::create_dir_all(&node).expect("mkdir");
    std::fs::write(
        node.join("package.json"),
        r#"{"name":"web","version":"1.0.0","scripts":{"build":"node build.js"}}"#,
    )
    .expect("pkg");
    std::fs::write(node.join("build.js"), "require('fs').writeFileSync('out.txt', 'built ' + (1 + 1));\n").expect("js");
    let script = "export PATH=/usr/bin:/bin:$PATH; cd hello && CARGO_HOME=$PWD/.cargo-home /usr/bin/cargo build --offline -q && ./target/debug/hello; \
                  cd ../web && /usr/bin/npm run build --offline --silent && cat out.txt";
    let (code, out, err) = agent(&t, Mode::Sandbox, script);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("hello from the sandbox"), "{out}\n{err}");
    assert!(out.contains("built 2"), "{out}\n{err}");
}
