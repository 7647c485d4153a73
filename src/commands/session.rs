//! `guardsh run` and `guardsh shellenv`: put the shim directory first on an agent's PATH and mark
//! its process tree as a guardsh session; `run` also takes the credentials into custody and, by
//! default, starts the agent in a sandbox for which it is the broker of every guarded command.
//! Both refuse when an agent started this way would not be guarded: an invalid policy, a guarded
//! tool without a shim, or (for the sandbox) a kernel below the sandbox's floor.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;

use super::{here, install_hint, load_policy, missing_shims, shim_dir};
use crate::custody;
use crate::display;
use crate::env::{self, EnvPolicy};
use crate::exit;
use crate::pipeline::SESSION_VAR;
use crate::rules::Policy;

/// PATH with `dir` first (and nowhere else), and `tail` last unless PATH already has it.
pub fn path_with_shims(dir: &Path, tail: Option<&Path>, path: Option<&OsStr>) -> anyhow::Result<OsString> {
    let rest: Vec<PathBuf> = path.map(|p| std::env::split_paths(p).filter(|d| d != dir).collect()).unwrap_or_default();
    // guardsh's own directory goes last, so that it can never change which real tool is found.
    let tail = tail.filter(|t| !rest.iter().any(|d| d == t)).map(Path::to_path_buf);
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(rest).chain(tail))
        .context("the shim directory's path cannot be put on PATH (it contains ':')")
}

fn session_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a session id")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The shim directory, the agent's PATH, the session id and the policy.
fn prepare(dir_flag: Option<PathBuf>) -> anyhow::Result<(PathBuf, OsString, String, Policy)> {
    let (paths, cwd) = here()?;
    let policy = load_policy(&paths, &cwd).map_err(super::InvalidPolicy::fix_first)?;
    if let Some(project) = crate::paths::find_project_policy(&cwd) {
        let text = std::fs::read_to_string(&project).unwrap_or_default();
        let path = project.canonicalize().unwrap_or(project);
        if !crate::config::is_trusted(&paths.trust_file(), &path, &text) {
            eprintln!(
                "guardsh: {} is not trusted (new, or changed since you trusted it), so guardsh ignores it; read it, then `guardsh trust` to use it",
                path.display()
            );
        }
    }
    let hint = install_hint(dir_flag.as_deref());
    let dir = shim_dir(dir_flag, &paths, Some(&policy));
    let missing = missing_shims(&policy, &dir)?;
    let guardsh = crate::exec::FileId::current_exe().context("cannot find the guardsh binary")?;
    let other = missing.iter().find_map(|t| match crate::shims::state(&dir.join(t), guardsh) {
        crate::shims::ShimState::OtherGuardsh(target) => Some(target),
        _ => None,
    });
    if let Some(other) = other {
        let me = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "guardsh".into());
        anyhow::bail!(
            "the shims in {} belong to another guardsh ({}), not this one ({me}); start agents with that one, or run `{me} install` to point the shims at this one",
            dir.display(),
            other.display()
        );
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "no guardsh shim for {} in {}: an agent started now would reach the real tool unguarded; run `{hint}` first",
            missing.join(", "),
            dir.display()
        );
    }
    let dir = dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
    let own_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
    let path = path_with_shims(&dir, own_dir.as_deref(), std::env::var_os("PATH").as_deref())?;
    let session = match std::env::var(SESSION_VAR) {
        // A nested `guardsh run` stays in the session it was started from.
        Ok(s) if !s.is_empty() => s,
        _ => session_id()?,
    };
    Ok((dir, path, session, policy))
}

/// Starts the agent as a child, without the credentials in this environment, and stays as its
/// parent holding them (see `custody`): non-dumpable, so no process of this user can read this
/// one's memory or environment, and serving them on a private socket to shims that qualify.
/// When the agent exits, so does this process, and the credentials are gone.
pub fn run(
    dir: Option<PathBuf>,
    sources: &[String],
    command: &[OsString],
    options: &super::RunOptions,
) -> anyhow::Result<ExitCode> {
    // Before anything else: from here on this process holds credentials.
    nix::sys::prctl::set_dumpable(false).context("cannot make guardsh run unreadable to other processes")?;
    crate::exec::no_core_dumps();
    crate::exec::close_inherited_on_exec().context("cannot keep inherited descriptors from the agent")?;
    let (shim_dir, path, session, policy) = prepare(dir)?;
    let (program, args) = command.split_first().context("give the command to run after `--`")?;
    let (paths, cwd) = here()?;

    let env_policy = EnvPolicy::of(&policy);
    // Issue 19 A: the agent's model keys go to the agent, not into custody (custody/agent_keys.rs).
    let agent_keys = custody::agent_keys::patterns(&policy.agent_keys);
    let is_credential = custody::agent_keys::held_by_custody(env::is_credential(&env_policy), &agent_keys);
    let (mut vault, mut agent_env, dropped) = custody::take(std::env::vars_os().collect(), &is_credential);
    let from_environment = !vault.is_empty();
    // The policy's sources first, then the command line's: a later value of a name wins.
    for source in policy.credentials_from.iter().chain(sources) {
        agent_env.extend(credentials_from(source, &is_credential, &mut vault)?);
    }
    let held = vault.names().join(" ");
    if vault.is_empty() {
        eprintln!("guardsh run: no credentials in this environment to hold");
    } else {
        eprintln!(
            "guardsh run: holding {held}; the agent gets none of them, guarded commands get what their rule grants"
        );
    }
    let model_keys = custody::agent_keys::present(&agent_env, &agent_keys);
    if !model_keys.is_empty() {
        eprintln!(
            "guardsh run: passing the agent its model keys: {}; no guarded tool receives them",
            model_keys.join(" ")
        );
    }
    if !dropped.is_empty() {
        eprintln!("guardsh run: dropped (not UTF-8, cannot be handed on): {}", dropped.join(" "));
    }
    if options.sandboxed {
        drop(is_credential);
        // Tools the broker starts get the human's environment without the agent's model keys.
        let tools_env = custody::agent_keys::without(&agent_env, &agent_keys);
        let extra: Vec<(OsString, OsString)> =
            options.agent_env().into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        // Inside the sandbox every guarded tool's real binary is covered by guardsh, so a shell
        // that resets PATH (a login shell) still reaches it: no shell check is needed.
        return run_sandboxed(
            Sandboxed { shim_dir, path, session, policy, paths, cwd, vault, agent_env, tools_env, extra },
            program,
            args,
        );
    }
    // Start-up warnings: one line each, what and where; `guardsh doctor` says what to do.
    let mut warnings = Vec::new();
    if from_environment {
        warnings.push(
            "the shell that started guardsh run still holds those credentials (--credentials-from keeps them out of shells)"
                .to_string(),
        );
    }
    for w in [custody::exposure::ptrace_warning(), custody::exposure::own_binary_warning()].into_iter().flatten() {
        warnings.push(first_clause(&w).to_string());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let readable: Vec<String> =
        custody::exposure::scan(&home, &cwd).iter().map(|f| format!("{} ({})", f.path.display(), f.what)).collect();
    if !readable.is_empty() {
        warnings.push(format!("the agent can read {} credential file(s): {}", readable.len(), readable.join(", ")));
    }
    for w in &warnings {
        eprintln!("guardsh run: warning: {w}");
    }
    if !warnings.is_empty() {
        eprintln!("guardsh run: `guardsh doctor` explains each warning and what to do about it");
    }

    // Issue 19 B: would the agent's shells reach the shims? (commands/shellcheck.rs)
    let mut shell_env = agent_env.clone();
    shell_env.extend([("PATH".into(), path.clone()), (SESSION_VAR.into(), session.clone().into())]);
    shell_env.extend(options.agent_env().into_iter().map(|(k, v)| (k.into(), v.into())));
    let tools: Vec<String> = policy.tools.keys().cloned().collect();
    super::shellcheck::require(&shim_dir, &tools, &shell_env, &cwd, options.warn_unguarded_shells)?;

    let private = private_dir()?;
    let socket = private.path.join("socket");
    let listener = UnixListener::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    let tools_env = custody::agent_keys::without(&agent_env, &agent_keys);
    let custodian = custody::server::Custodian::new(vault, paths, session.clone(), tools_env)
        .context("cannot identify this guardsh binary (/proc/self/exe)")?;
    if !custodian.untrusted_path.is_empty() {
        eprintln!(
            "guardsh run: tools started with credentials do not search these PATH entries: {} (guardsh doctor)",
            custodian.untrusted_path.join("; ")
        );
    }
    let custodian = std::sync::Arc::new(custodian);
    let serving = std::sync::Arc::clone(&custodian);
    std::thread::spawn(move || custody::server::serve(listener, serving));

    let child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(agent_env)
        .env("PATH", &path)
        .env(SESSION_VAR, &session)
        .envs(options.agent_env())
        .env(custody::SOCKET_VAR, &socket)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(err) => {
            eprintln!("guardsh: cannot start {}: {err}", display::shell_quote(program));
            // Shell conventions: 127 for a command that was not found, 126 for one that could not run.
            let code = if err.kind() == std::io::ErrorKind::NotFound { exit::NOT_FOUND } else { exit::CANNOT_EXEC };
            return Ok(ExitCode::from(code));
        }
    };
    // A terminal's Ctrl-C reaches the agent too; it decides whether to end. This process stays
    // until the agent has gone (set after spawning: an ignored signal would be inherited).
    crate::exec::ignore_terminal_signals();
    let status = child.wait().context("waiting for the agent")?;
    // Credentials minted for tools the agent left running end with the session.
    custodian.end_session();
    drop(private);
    let code =
        status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// What `run` hands to the sandboxed start.
struct Sandboxed {
    shim_dir: PathBuf,
    path: OsString,
    session: String,
    policy: Policy,
    paths: crate::paths::Paths,
    cwd: PathBuf,
    vault: custody::Vault,
    agent_env: Vec<(OsString, OsString)>,
    /// The base environment of the tools the broker starts (the human's, less model keys).
    tools_env: Vec<(OsString, OsString)>,
    /// Set in the agent's environment too (`--approval-timeout`).
    extra: Vec<(OsString, OsString)>,
}

/// The default start: the agent in a sandbox (see `crate::sandbox`), this process outside it as
/// the broker of every guarded command the agent proposes (`custody::broker`).
fn run_sandboxed(s: Sandboxed, program: &OsString, args: &[OsString]) -> anyhow::Result<ExitCode> {
    use crate::sandbox::{self, Floor, Plan, probe, scan};
    let guardsh = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find this guardsh binary (/proc/self/exe)")?;
    let simulate = std::env::var(sandbox::SIMULATE_VAR).ok();
    let support = sandbox::simulate(probe::support(&guardsh), simulate.as_deref());
    let gaps = match sandbox::floor(support) {
        Floor::Refuse(why) => anyhow::bail!(
            "the agent was not started: {why}.\nguardsh run --no-sandbox -- ... starts it without a sandbox, where it can read your files and credentials (README: threat model)"
        ),
        Floor::Run { gaps } => gaps,
    };
    let home = std::env::var_os("HOME").map(PathBuf::from).and_then(|h| h.canonicalize().ok()).context(
        "HOME is not set to an existing directory; the sandbox hides it from the agent, so it must be known",
    )?;
    let cwd = s.cwd.canonicalize().with_context(|| format!("cannot resolve {}", s.cwd.display()))?;
    // An agent started for the first time keeps what it writes of its own state (a login,
    // settings, history) only if its places exist when the sandbox is planned.
    agent_state(&home, program);
    let path_dirs: Vec<PathBuf> = std::env::split_paths(&s.path).filter(|d| d.is_absolute()).collect();
    let own = crate::exec::FileId::current_exe().context("cannot identify the guardsh binary")?;
    let tools: Vec<String> = s.policy.tools.keys().cloned().collect();
    let real_tools = scan::real_tools(&tools, &path_dirs, own);
    let (secrets, partly) = scan::secrets(&cwd);
    let git_protected = scan::git_protected(&cwd);
    let git_dir = scan::git_dir(&cwd);

    let private = private_dir()?;
    let socket = private.path.join("socket");
    let listener = UnixListener::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
    let exists = |p: &Path| p.exists();
    let plan = Plan::build(&sandbox::Inputs {
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        home: &home,
        cwd: &cwd,
        path_dirs: &path_dirs,
        shim_dir: &s.shim_dir,
        guardsh: &guardsh,
        broker_dir: &private.path,
        existing: &exists,
        real_tools: &real_tools,
        secrets: &secrets,
        git_protected: &git_protected,
        git_dir: git_dir.as_deref(),
        settings: &s.policy.sandbox,
        landlock_abi: support.landlock_abi,
    })?;

    // A token in a remote URL of the project's .git/config (git inside reads that file): the
    // agent sees a copy without it.
    let mut plan = plan;
    for config in git_protected.iter().filter(|p| p.ends_with(".git/config")) {
        let Some(clean) = std::fs::read_to_string(config).ok().and_then(|t| scan::without_url_credentials(&t)) else {
            continue;
        };
        let copy = private.path.join("git-config");
        std::fs::write(&copy, clean).with_context(|| format!("cannot write {}", copy.display()))?;
        plan.replace.push(sandbox::Bind { src: copy, dst: config.clone(), writable: false });
        eprintln!(
            "guardsh run: hidden from the agent: the credentials in {}'s remote URLs (it sees the URLs without them)",
            config.display()
        );
    }
    let autorun_before = scan::autorun_state(&cwd);
    eprintln!(
        "guardsh run: sandbox on (Landlock ABI {}, user/mount/PID/IPC namespaces, seccomp): the agent sees {}, its own state and caches, and system files; guardsh decides and runs every guarded command outside it",
        support.landlock_abi,
        cwd.display()
    );
    if !secrets.is_empty() {
        let names: Vec<String> =
            secrets.iter().map(|p| p.strip_prefix(&cwd).unwrap_or(p).display().to_string()).take(8).collect();
        let more = secrets.len().saturating_sub(names.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        eprintln!("guardsh run: hidden from the agent (empty inside the sandbox): {}{more}", names.join(", "));
    }
    if partly {
        eprintln!(
            "guardsh run: warning: the project is too large to search whole for secret files; only the first levels were searched"
        );
    }
    for gap in &gaps {
        eprintln!("guardsh run: not enforced on this kernel: {gap} (guardsh doctor)");
    }

    let mut custodian = custody::server::Custodian::new(s.vault, s.paths, s.session.clone(), s.tools_env)
        .context("cannot identify this guardsh binary (/proc/self/exe)")?;
    if !custodian.untrusted_path.is_empty() {
        eprintln!(
            "guardsh run: tools started outside the sandbox do not search these PATH entries: {} (guardsh doctor)",
            custodian.untrusted_path.join("; ")
        );
    }
    let mut agent_writable: Vec<PathBuf> =
        plan.landlock_write.iter().filter(|p| !p.starts_with("/dev") && **p != home).cloned().collect();
    agent_writable.extend(["/tmp", "/var/tmp", "/dev/shm"].iter().map(PathBuf::from));
    let tool_tmp = private.path.join("tmp");
    std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(&tool_tmp)
        .with_context(|| format!("cannot create {}", tool_tmp.display()))?;
    // Tools outside write the project and `[sandbox] writable`, and their own temporary files.
    let mut tool_writable = vec![cwd.clone(), tool_tmp.clone()];
    for w in &s.policy.sandbox.writable {
        tool_writable.extend(sandbox::setting_path(&home, w).ok().filter(|p| p.exists()));
    }
    custodian.broker = Some(custody::broker::Sandboxed {
        policies: Default::default(),
        jails: Default::default(),
        tool_writable,
        tool_tmp,
        agent_writable,
        home: home.clone(),
        landlock_abi: support.landlock_abi,
    });
    let custodian = std::sync::Arc::new(custodian);

    let plan_json = serde_json::to_string(&plan).context("cannot write the sandbox plan")?;
    let inside_socket = Path::new(sandbox::BROKER_DIR).join("socket");
    let child = Command::new(&guardsh)
        .arg0("guardsh")
        .args(["sandbox-exec", "--"])
        .arg(program)
        .args(args)
        .env_clear()
        .envs(s.agent_env.into_iter().filter(|(k, _)| k != "XDG_RUNTIME_DIR" && k != "TMPDIR"))
        .env("PATH", &s.path)
        .env(SESSION_VAR, &s.session)
        .env(sandbox::BROKER_VAR, &inside_socket)
        .env(sandbox::PLAN_VAR, &plan_json)
        .envs(s.extra)
        .env("TMPDIR", "/tmp")
        .spawn();
    let mut child = child.with_context(|| format!("cannot start {}", guardsh.display()))?;
    // The sandbox's pid 1 puts this terminal in raw mode while it relays the agent's own; it is
    // restored here too, whatever happened in there.
    let terminal = sandbox::pty::saved_mode();
    // Served from here on: the agent can propose commands as soon as it runs.
    let serving = std::sync::Arc::clone(&custodian);
    std::thread::spawn(move || custody::server::serve(listener, serving));
    crate::exec::ignore_terminal_signals();
    let status = child.wait().context("waiting for the agent")?;
    // Credentials minted for tools the agent left running end with the session.
    custodian.end_session();
    if let Some(mode) = &terminal {
        sandbox::pty::restore_mode(mode);
    }
    drop(private);
    // What the agent left in the project that editors and tools run by themselves, outside any
    // sandbox, later.
    let changes = scan::autorun_changes(&autorun_before, &scan::autorun_state(&cwd));
    if !changes.is_empty() {
        let list: Vec<String> = changes
            .iter()
            .map(|(p, what)| format!("{} ({what})", p.strip_prefix(&cwd).unwrap_or(p).display()))
            .collect();
        eprintln!(
            "guardsh run: the agent created or changed files that editors and tools run by themselves; read them before you open the project outside the sandbox: {}",
            list.join(", ")
        );
    }
    let code =
        status.code().unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Creates the state directory of a known agent (`claude`, `codex`) that has none yet: the
/// sandbox binds back only places that exist. Best effort; nothing depends on it.
fn agent_state(home: &Path, program: &OsStr) {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let name = Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (dir, file) = match name.as_str() {
        "claude" => (".claude", Some(".claude.json")),
        "codex" => (".codex", None),
        _ => return,
    };
    let _ = std::fs::DirBuilder::new().mode(0o700).create(home.join(dir));
    if let Some(file) = file {
        // create_new: never over one that exists.
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(home.join(file)) {
            let _ = std::io::Write::write_all(&mut f, b"{}\n");
        }
    }
}

/// Runs a credential source (`sh -c CMD`, its stderr and terminal left to it for prompts) and
/// takes the NAME=VALUE lines it prints: credentials (as the policy sees them) into the vault;
/// anything else (`AWS_REGION=...`, which such files often hold too) is returned for the agent's
/// environment.
fn credentials_from(
    source: &str,
    is_credential: impl Fn(&OsStr) -> bool,
    vault: &mut custody::Vault,
) -> anyhow::Result<Vec<(OsString, OsString)>> {
    let out = Command::new("/bin/sh")
        .args(["-c", source])
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run the credential source `{source}`"))?;
    if !out.status.success() {
        anyhow::bail!("the credential source `{source}` failed ({}); the agent was not started", out.status);
    }
    let text = zeroize::Zeroizing::new(String::from_utf8(out.stdout).map_err(|_| {
        anyhow::anyhow!(
            "the credential source `{source}` printed something that is not UTF-8; the agent was not started"
        )
    })?);
    let mut plain = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=').map(|(n, v)| (n.trim(), unquote(v.trim()))) else {
            anyhow::bail!(
                "line {} of the credential source `{source}`'s output is not NAME=VALUE; the agent was not started",
                n + 1
            );
        };
        if is_credential(OsStr::new(name)) {
            vault.insert(name.to_string(), zeroize::Zeroizing::new(value.to_string()));
        } else {
            plain.push((name.into(), value.into()));
        }
    }
    Ok(plain)
}

/// A value as .env files write it: surrounding single or double quotes are removed (nothing
/// inside them is interpreted).
fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

/// A 0700 directory for the socket, removed when dropped. In the temporary directory, not the
/// state directory: a Unix socket's path is limited to 107 bytes.
struct PrivateDir {
    path: PathBuf,
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn private_dir() -> anyhow::Result<PrivateDir> {
    use std::os::unix::fs::DirBuilderExt;
    let path = std::env::temp_dir().join(format!("guardsh-run-{}", crate::random::token(8)?));
    // `create`, not `recursive`: a name someone else made first is an error, never shared (the
    // race: another user pre-creating the directory in /tmp to receive the socket).
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(PrivateDir { path })
}

pub fn shellenv(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (_, path, session, _) = prepare(dir)?;
    // The whole PATH, computed here, rather than "DIR:$PATH": evaluating the line twice then
    // leaves one copy of the shim directory, and it is always first.
    println!("export PATH={}", display::shell_quote(&path));
    println!("export {SESSION_VAR}={session}");
    Ok(ExitCode::SUCCESS)
}

/// A warning's first clause: what is wrong, without the remedy (`guardsh doctor` gives that).
fn first_clause(warning: &str) -> &str {
    warning.split("; ").next().unwrap_or(warning)
}
