//! The broker: for an agent in the sandbox, `guardsh run` is where every guarded command is
//! decided, recorded, asked about and run. A shim inside proposes the command whole
//! (`client::propose`); this file takes it through the same steps as the shim's pipeline
//! outside, but where the agent cannot reach: the policy, the audit log, the approval store and
//! the compiled-policy cache are outside the sandbox, and the real tool starts here, outside it,
//! with the human's files and configuration and only the credentials its rule grants.
//!
//! The proposal is never evidence: the agent can send any words it likes, exactly as it can run
//! a shim with any argv. What is decided is exactly what runs, in the directory the shim passed
//! as a descriptor, so a lie only changes what is decided.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::server::Custodian;
use super::wire::send;
use super::{Answer, Proposal};
use crate::approval::{self, Outcome};
use crate::audit::Record;
use crate::decision::Cause;
use crate::display;
use crate::exit;
use crate::pipeline::{self, Evaluation, Invocation, Stdin};
use crate::rules::{Action, ApprovalMode};

/// What the broker knows of the sandbox it serves.
#[derive(Debug, Default)]
pub struct Sandboxed {
    /// Compiled policies, by the layer files they were compiled from (`policy_for`).
    pub policies: Mutex<HashMap<String, Compiled>>,
    /// Jails built so far, by what they were built from: a ruleset is only read by the kernel
    /// when a tool enters it, so one serves every run with the same inputs.
    pub jails: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<OwnedFd>>>,
    /// Places (in the human's view) the agent can write: the project, its writable state and
    /// caches, and the world-writable temporary directories. A selector naming a file in one of
    /// them would let the agent choose what a tool outside reads.
    pub agent_writable: Vec<PathBuf>,
    /// For the jails of tools started outside (`sandbox::jail`): what they may write, and the
    /// session's temporary directory for them (their TMPDIR).
    pub tool_writable: Vec<PathBuf>,
    pub tool_tmp: PathBuf,
    pub home: PathBuf,
    pub landlock_abi: i32,
}

/// How a proposal ends when the tool does not run: an exit status for the shim, and whether
/// the refusal has been recorded.
struct Stop {
    code: u8,
}

/// What was decided to run: a tool started here, outside the sandbox, or the real binary the
/// shim runs inside it.
enum Run {
    /// Started outside; with the credential minted for it, and the audit record its revocation
    /// is written from.
    Outside(std::process::Child, Option<Box<(crate::mint::Minted, Record)>>),
    Inside(OwnedFd),
}

/// The shim's descriptors: stdin, stdout, stderr and its working directory.
struct Stdio {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    cwd: OwnedFd,
}

impl Stdio {
    /// Tells the agent something, on the shim's stderr. Best effort: a closed stderr must not
    /// change what happens.
    fn say(&self, text: &str) {
        let mut line = text.as_bytes().to_vec();
        line.push(b'\n');
        let _ = (&std::fs::File::from(match self.stderr.try_clone() {
            Ok(fd) => fd,
            Err(_) => return,
        }))
            .write_all(&line);
    }
}

/// What identifies a layer file's content without reading it: device and inode, size, and the
/// modification and change times to the nanosecond. A write changes the change time, which
/// nothing the user can do sets back; so a file whose key is the same has the same content.
pub type FileKey = (u64, u64, u64, i64, i64, i64, i64);

/// A compiled policy and the keys of the files it was compiled from.
pub type Compiled = (Vec<Option<FileKey>>, Arc<crate::rules::Policy>);

fn file_key(path: &Path) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()))
}

impl Custodian {
    /// The policy for a directory, compiled once and kept in this process's memory (where the
    /// agent cannot reach it) until one of its layer files, or the list of trusted project files,
    /// changes: a proposal pays a few stat calls, not a read and a decode of the policy.
    fn policy_for(&self, cwd: &Path) -> Result<Arc<crate::rules::Policy>, crate::rules::ConfigError> {
        let locations = crate::config::Locations::new(&self.paths, cwd);
        let files: Vec<PathBuf> =
            [Some(&locations.system), Some(&locations.user), locations.project.as_ref(), Some(&locations.trust)]
                .into_iter()
                .flatten()
                .cloned()
                .collect();
        let name = format!("{files:?}");
        let key: Vec<Option<FileKey>> = files.iter().map(|f| file_key(f)).collect();
        if let Some(sb) = &self.broker
            && let Ok(cache) = sb.policies.lock()
            && let Some((k, policy)) = cache.get(&name)
            && *k == key
        {
            return Ok(Arc::clone(policy));
        }
        let policy = Arc::new(crate::config::load(&locations)?);
        // Compiled from what the files held when read; if one changed meanwhile, its key (taken
        // before the read) no longer matches and the next proposal compiles again.
        if let Some(sb) = &self.broker
            && let Ok(mut cache) = sb.policies.lock()
        {
            cache.insert(name, (key, Arc::clone(&policy)));
        }
        Ok(policy)
    }

    /// Takes one proposal from start to end. Every way out answers the shim with an exit status
    /// (after the tool ended, or instead of it); nothing runs without a decision recorded first.
    pub(super) fn broker(&self, conn: UnixStream, cred: Option<(i32, u32)>, proposal: Proposal, fds: Vec<OwnedFd>) {
        let exited = |code: u8| Answer::Exited { code: Some(i32::from(code)), signal: None };
        let Ok([stdin, stdout, stderr, cwd]) = <[OwnedFd; 4]>::try_from(fds) else {
            let _ = send(&conn, &Answer::Refuse { reason: "the shim did not pass its descriptors".into() });
            return;
        };
        let io = Stdio { stdin, stdout, stderr, cwd };
        let Some((pid, _)) = cred.filter(|(_, uid)| *uid == self.uid) else {
            let _ = send(&conn, &Answer::Refuse { reason: "the peer runs as another user".into() });
            return;
        };
        let mut inv = match invocation(&proposal, self.path.as_ref()) {
            Ok(inv) => inv,
            Err(why) => {
                io.say(&format!("guardsh: {why}; nothing was run"));
                let _ = send(&conn, &exited(exit::USAGE));
                return;
            }
        };
        match self.decide_and_start(&conn, pid, &mut inv, &io) {
            Ok(Run::Inside(real)) => {
                let _ = super::wire::send_with_fd(&conn, &Answer::RunInside, real.as_raw_fd());
            }
            Ok(Run::Outside(child, minted)) => {
                if send(&conn, &Answer::Started).is_err() {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(child.id() as i32),
                        nix::sys::signal::SIGTERM,
                    );
                }
                self.relay_minted(conn, child, minted.map(|m| *m));
            }
            Err(Stop { code }) => {
                let _ = send(&conn, &exited(code));
            }
        }
    }

    /// The pipeline for one proposal, up to the started tool (or the binary the shim runs).
    fn decide_and_start(&self, conn: &UnixStream, pid: i32, inv: &mut Invocation, io: &Stdio) -> Result<Run, Stop> {
        let say_stop = |code: u8, message: &str| {
            io.say(&format!("guardsh: {}", display::escape_lines(message)));
            Stop { code }
        };
        let dir = std::fs::metadata(format!("/proc/self/fd/{}", io.cwd.as_raw_fd()));
        if !dir.is_ok_and(|m| m.is_dir()) {
            return Err(say_stop(
                exit::USAGE,
                "the working directory the shim passed is not a directory; nothing was run",
            ));
        }
        let own = crate::exec::FileId::current_exe()
            .map_err(|e| say_stop(exit::CANNOT_EXEC, &format!("cannot identify this guardsh binary: {e}")))?;
        let stdin = std::fs::File::from(io.stdin.try_clone().map_err(|e| say_stop(exit::CANNOT_EXEC, &e.to_string()))?);
        let dir_of_shim = PathBuf::from(format!("/proc/self/fd/{}", io.cwd.as_raw_fd()));
        let visible = |p: &Path| match &self.broker {
            Some(sb) => sb.tool_writable.iter().any(|w| p.starts_with(w)),
            None => false,
        };
        let evaluated = self
            .policy_for(&inv.cwd)
            .map(|policy| pipeline::evaluate_proposed(&policy, inv, &stdin, own, &dir_of_shim, &visible));
        let inv: &Invocation = inv;
        let write = |rec: &Record| crate::audit::append(&self.paths.audit_log(), rec);
        let record = |eval: Option<&Evaluation>, outcome: &str, reason: &str| {
            let mut rec = pipeline::record(inv, eval, outcome, reason);
            rec.pid = u32::try_from(pid).unwrap_or(0);
            rec.ppid = std::process::id();
            rec.session = Some(self.session.clone());
            rec
        };
        let stop = say_stop;
        let eval = match evaluated {
            Ok(e) => e,
            Err(e) => {
                let _ = write(&record(None, "config_error", &e.to_string()));
                // The agent is told that a human must act, not how: the policy is not its to fix.
                return Err(stop(exit::CONFIG, &pipeline::invalid_policy_message(&inv.tool)));
            }
        };
        if inv.stdin == Stdin::TooLarge {
            let why = format!(
                "more than {} MiB was piped to {}: guardsh cannot read it all, and would not pass on the part it read; nothing was run",
                pipeline::STDIN_LIMIT >> 20,
                inv.tool
            );
            let _ = write(&record(Some(&eval), "denied", &why));
            return Err(stop(exit::DENIED, &why));
        }
        if eval.verdict.action == Action::Deny {
            io.say(&pipeline::refusal_message(inv, &eval));
            // A signed CI token names a file the agent chose inside its sandbox; the broker does
            // not read files on the agent's word, so inside the sandbox CI mode simply denies.
            let _ = write(&record(Some(&eval), "denied", &eval.verdict.reason));
            return Err(Stop { code: exit::DENIED });
        }
        let real = match eval.real.as_ref() {
            Some(Ok(r)) => r.clone(),
            Some(Err(e)) => {
                let _ = write(&record(Some(&eval), "not_found", &e.to_string()));
                return Err(stop(exit::NOT_FOUND, &e.to_string()));
            }
            None => return Err(stop(exit::NOT_FOUND, "internal error: no resolved binary; nothing was run")),
        };
        let refuse = |why: String| {
            let _ = write(&record(Some(&eval), "refused", &why));
            stop(exit::DENIED, &format!("{why}; nothing was run"))
        };
        if !eval.trust_user_installed_tools {
            super::exposure::replaceable(&real, self.uid)
                .and_then(|()| super::exposure::interpreter_replaceable(&real, &self.tool_path(false), self.uid))
                .map_err(refuse)?;
        }
        // A tool that needs nothing from outside runs inside, with the agent's reach; what it
        // reads there (its configuration, hooks) is then the agent's to choose, harmlessly.
        // (Not with input files: the shim would read them afresh, not the copies decided on.)
        let minting = eval.mint.as_ref().filter(|_| !eval.verdict.grants.is_empty());
        let inside = eval.runs_inside
            && eval.files.is_empty()
            && minting.is_none()
            && self.vault.release(&eval.verdict.grants).is_empty();
        // A tool outside starts in the directory the shim passed, which must be the very
        // directory the shim names (the project, as both sides see it): the name is what is
        // audited, shown to the approver, and what relative selectors and the project policy are
        // read from.
        let outside = if inside { None } else { outside_view(&inv.cwd, &io.cwd) };
        if !inside && outside.is_none() {
            return Err(refuse(format!(
                "{} runs outside the sandbox, and {} is not a directory it shares with the outside; run it from the project directory",
                inv.tool,
                inv.cwd.display()
            )));
        }
        let selected =
            if inside { vec![] } else { self.selectors_outside_the_agents_reach(inv, &eval).map_err(refuse)? };

        let request = if eval.verdict.action == Action::Ask {
            Some(self.ask(conn, pid, inv, &eval, &real, io, &write, &record)?)
        } else {
            None
        };
        if inside {
            let binary = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_PATH)
                .open(&real)
                .map_err(|e| stop(exit::CANNOT_EXEC, &format!("cannot open {}: {e}", real.display())))?;
            let mut rec = record(Some(&eval), "exec_inside", &eval.verdict.reason);
            rec.request = request;
            rec.real = Some(real.display().to_string());
            write(&rec).map_err(|e| stop(exit::AUDIT, &format!("{e}; nothing was run")))?;
            return Ok(Run::Inside(OwnedFd::from(binary)));
        }

        let tool_stdin = match &inv.stdin {
            // The tool reads its own sealed copy of exactly the bytes decided on.
            Stdin::Captured(bytes) => OwnedFd::from(
                crate::exec::sealed_copy(bytes)
                    .map_err(|e| stop(exit::CANNOT_EXEC, &format!("cannot copy the piped input: {e}")))?,
            ),
            _ => io.stdin.try_clone().map_err(|e| stop(exit::CANNOT_EXEC, &e.to_string()))?,
        };
        let mut rec = record(Some(&eval), "exec", &eval.verdict.reason);
        rec.request = request.clone();
        rec.real = Some(real.display().to_string());
        // Input files go to the tool as the copies decided on, named /dev/fd/N in argv.
        let (args, copies) = if eval.files.is_empty() {
            (inv.args.clone(), vec![])
        } else {
            let (args, copies) = crate::snapshot::hand_over_to_child(&inv.args, &eval.files).map_err(|e| {
                stop(exit::CANNOT_EXEC, &format!("cannot hand the input files over: {e}; nothing was run"))
            })?;
            rec.exec_argv =
                Some(std::iter::once(&inv.argv0).chain(args.iter()).map(|a| display::json_word(a)).collect());
            (args, copies)
        };
        // The tool's jail, built before the fork (see `sandbox::jail`).
        let jail = match &self.broker {
            Some(sb) => {
                let path_dirs: Vec<PathBuf> =
                    std::env::split_paths(&self.tool_path(eval.trust_user_installed_tools)).collect();
                let jail = crate::sandbox::jail::Jail {
                    landlock_abi: sb.landlock_abi,
                    home: &sb.home,
                    writable: &sb.tool_writable,
                    path_dirs: &path_dirs,
                    real: &real,
                    own_files: &eval.own_files,
                    selected: &selected,
                };
                let key = format!("{real:?}\0{:?}\0{selected:?}\0{path_dirs:?}", eval.own_files);
                let cached = sb.jails.lock().ok().and_then(|j| j.get(&key).cloned());
                let ruleset = match cached {
                    Some(r) => r,
                    None => {
                        let r = std::sync::Arc::new(
                            jail.ruleset().map_err(|e| stop(exit::CANNOT_EXEC, &format!("{e}; nothing was run")))?,
                        );
                        if let Ok(mut j) = sb.jails.lock() {
                            j.insert(key, std::sync::Arc::clone(&r));
                        }
                        r
                    }
                };
                Some(ruleset)
            }
            None => None,
        };
        let mut values = self.vault.release(&eval.verdict.grants);
        // A credential minted for this command, in place of the held one (`crate::mint`): made
        // last, when nothing but the audit record and the start itself can fail.
        let mut minted = None;
        if let Some(plan) = minting {
            // The admin connection runs this binary with the held secret (review finding F2).
            self.minting_binary_is_out_of_reach(plan, &real, &inv.tool).map_err(refuse)?;
            let label = match &request {
                Some(id) => id.clone(),
                None => crate::mint::fresh_label().map_err(refuse)?,
            };
            let own: Vec<String> = plan.provider.held().iter().map(|s| s.to_string()).collect();
            let req = crate::mint::Request { label: &label, argv: &eval.argv, real: &real };
            let (rest, m) = crate::mint::for_command(plan, &self.vault.release(&own), values, &req)
                .map_err(|why| refuse(format!("no credential could be minted for {}: {why}", inv.tool)))?;
            values = rest;
            minted = Some(m);
        }
        rec.passed = values.iter().map(|(k, _)| k.clone()).collect();
        rec.minted = minted.as_ref().map(|m| m.identity.clone());
        let mut env = self.tool_environment(&eval, &values);
        if let Some(m) = &minted {
            m.apply(&mut env);
        }
        // Recorded before it starts; if it cannot be recorded, it does not start (and what was
        // minted for it is ended).
        if let Err(e) = write(&rec) {
            if let Some(m) = minted {
                self.revoke(m, rec.clone());
            }
            return Err(stop(exit::AUDIT, &format!("{e}; nothing was run")));
        }
        let mut command = std::process::Command::new(&real);
        command
            .arg0(&inv.tool)
            .args(&args)
            .env_clear()
            .envs(env)
            .stdin(tool_stdin)
            .stdout(io.stdout.try_clone().map_err(|e| stop(exit::CANNOT_EXEC, &e.to_string()))?)
            .stderr(io.stderr.try_clone().map_err(|e| stop(exit::CANNOT_EXEC, &e.to_string()))?);
        // The tool starts in that directory as this process sees it, so that it can name its
        // working directory (getcwd) as the human would.
        crate::exec::prepare_custodied_child(
            &mut command,
            outside.as_ref().map_or(io.cwd.as_raw_fd(), |d| d.as_raw_fd()),
            self.limits.clone(),
            jail.as_deref().map(AsRawFd::as_raw_fd),
            copies.iter().map(AsRawFd::as_raw_fd).collect(),
        );
        match command.spawn() {
            Ok(child) => Ok(Run::Outside(child, minted.map(|m| Box::new((m, rec))))),
            Err(e) => {
                let why = format!("cannot start {}: {e}", real.display());
                let mut failed = rec.clone();
                failed.outcome = "exec_failed".into();
                failed.reason = why.clone();
                let _ = write(&failed);
                if let Some(m) = minted {
                    self.revoke(m, rec);
                }
                Err(stop(exit::CANNOT_EXEC, &why))
            }
        }
    }

    /// A selector whose value names a file the agent can write (a `KUBECONFIG` in the project, an
    /// `AWS_CONFIG_FILE` in a cache) would let the agent choose what a tool outside reads: its
    /// exec plugins, aliases, credential processes. Each path in such a value (a `:`-separated
    /// list counts piece by piece) must lie outside every place the agent can write.
    fn selectors_outside_the_agents_reach(&self, inv: &Invocation, eval: &Evaluation) -> Result<Vec<PathBuf>, String> {
        let mut selected = Vec::new();
        let Some(sandbox) = &self.broker else { return Ok(selected) };
        // Selector variables, and flags that name a configuration file, alike.
        // (name, value, whether the value is a path even without a `/`: a flag's always is).
        let mut named: Vec<(String, OsString, bool)> = inv
            .vars
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.clone(), false)))
            .filter(|(k, _, _)| eval.selectors.iter().any(|p| crate::env::name_matches(p, k)))
            .collect();
        for flag in &eval.selector_flags {
            for value in eval.argv.all_readings().flat_map(|r| r.values(flag)) {
                // A flag without a value where one is needed: the tool decides what it reads.
                let Some(value) = value else { return Err(format!("{flag} without a file")) };
                named.push((flag.to_string(), OsString::from(value), true));
            }
        }
        for (name, v, is_path) in &named {
            for piece in std::env::split_paths(v) {
                // A bare word is a name (`AWS_PROFILE=prod`), unless a file of that name is where
                // the tool runs (`KUBECONFIG=kc`): then it is that file. (The caller has made sure
                // `inv.cwd` is the very directory the tool starts in.)
                let here = inv.cwd.join(&piece);
                let bare = !piece.as_os_str().as_encoded_bytes().contains(&b'/');
                if !is_path && bare && std::fs::symlink_metadata(&here).is_err() {
                    continue;
                }
                let full = if piece.is_absolute() { piece.clone() } else { here };
                // The agent's own streams and processes: `/dev/stdin`, `/proc/self/fd/0`.
                if ["/dev", "/proc", "/sys"].iter().any(|d| full.starts_with(d)) {
                    return Err(format!(
                        "{name}={} names a stream or process file, which the agent controls; a tool outside the sandbox only reads configuration from the human's own files",
                        display::escape_text(&v.to_string_lossy())
                    ));
                }
                // Where it really is: a link out of the project is judged by its target, a link
                // into it by where it leads; a missing file by its nearest existing parent.
                let real = full
                    .ancestors()
                    .find_map(|a| a.canonicalize().ok().map(|c| c.join(full.strip_prefix(a).unwrap_or(Path::new("")))))
                    .unwrap_or(full.clone());
                if let Some(w) = sandbox.agent_writable.iter().find(|w| real.starts_with(w) || full.starts_with(w)) {
                    return Err(format!(
                        "{name}={} names a file in {}, which the agent can write; a tool outside the sandbox only reads configuration from the human's own files",
                        display::escape_text(&v.to_string_lossy()),
                        w.display()
                    ));
                }
                selected.push(real);
            }
        }
        Ok(selected)
    }

    /// The `ask` path, in the broker: use an approval this exact command already has, or file a
    /// request and wait for a human while the shim waits. Returns the request id to run under.
    #[allow(clippy::too_many_arguments)]
    fn ask(
        &self,
        conn: &UnixStream,
        pid: i32,
        inv: &Invocation,
        eval: &Evaluation,
        real: &Path,
        io: &Stdio,
        write: &dyn Fn(&Record) -> Result<(), crate::audit::AuditError>,
        record: &dyn Fn(Option<&Evaluation>, &str, &str) -> Record,
    ) -> Result<String, Stop> {
        let stop = |code: u8, message: &str| {
            io.say(&format!("guardsh: {}", display::escape_lines(message)));
            Stop { code }
        };
        let audit_req = |req: &approval::Request, outcome: &str, reason: &str, by: Option<serde_json::Value>| {
            let mut rec = record(Some(eval), outcome, reason);
            rec.request = Some(req.id.clone());
            rec.by = by;
            write(&rec)
        };
        let store = approval::Store::open(&self.paths.requests_dir())
            .map_err(|e| stop(exit::AUDIT, &format!("{e}; nothing was run")))?;
        let sha = approval::sha256_file(real)
            .map_err(|e| stop(exit::CANNOT_EXEC, &format!("cannot read {}: {e}; nothing was run", real.display())))?;
        let argv = pipeline::argv_bytes(inv);
        let bound = pipeline::approval_binding(inv, eval);
        let cmd = pipeline::command(inv, &argv, real, &sha, self.uid, &bound);
        let now = crate::timefmt::now_secs();
        store.cleanup(now, 86_400);
        // Requests whose waiters all died are withdrawn by whoever looks next (`lifecycle`).
        if let Ok(withdrawn) = approval::lifecycle::withdraw_abandoned(&store, now) {
            for old in withdrawn {
                let mut rec = approval::lifecycle::record(&old, "withdrawn", approval::lifecycle::ABANDONED, None);
                rec.session = Some(self.session.clone());
                write(&rec).map_err(|e| stop(exit::AUDIT, &e.to_string()))?;
            }
        }
        // The shim that asked is the waiter, as this process sees it (its pid outside the
        // sandbox's PID namespace, and its start time): `pending` and `approve` outside can tell
        // when it is gone.
        let signed = eval.approval == ApprovalMode::Signature;
        let will_wait = eval.wait || signed;
        let shim = approval::procinfo::stat(pid)
            .map_err(|e| stop(exit::AUDIT, &format!("cannot read the shim's start time: {e}; nothing was run")))?;
        let add_waiter = |id: &str| {
            if will_wait { store.add_waiter(id, shim.pid, shim.start) } else { Ok(()) }
                .map_err(|e| stop(exit::AUDIT, &format!("{e}; nothing was run")))
        };
        let existing = if signed { Ok(None) } else { store.find_command(&cmd.digest(), now) };
        let existing = existing.map_err(|e| stop(exit::AUDIT, &format!("{e}; nothing was run")))?;
        // An approved request serves an identical re-run only if nobody ever waited for it.
        let existing = existing.filter(|(req, d)| {
            d.as_ref().is_none_or(|d| d.outcome != Outcome::Approved)
                || approval::lifecycle::waiting(&store, &req.id).serves_reruns()
        });
        let req = match existing {
            Some((req, Some(d))) if d.outcome == Outcome::Approved => {
                self.use_approval(pid, eval, real, &store, &req, &d).map_err(|why| {
                    let _ = audit_req(&req, "refused", &why, None);
                    stop(exit::APPROVAL, &format!("{why}; nothing was run"))
                })?;
                io.say(&format!("guardsh: a human approved request {}; running it", req.id));
                return Ok(req.id);
            }
            Some((req, _)) => req,
            None => {
                let requester =
                    approval::procinfo::requester_of(pid, self.uid, Some(self.session.clone())).map_err(|e| {
                        stop(exit::AUDIT, &format!("cannot describe the process that asked: {e}; nothing was run"))
                    })?;
                let id = crate::random::token(12)
                    .map_err(|e| stop(exit::AUDIT, &format!("cannot make a request id: {e}; nothing was run")))?;
                let rule = match &eval.verdict.cause {
                    Cause::Rule(id) => Some(id.clone()),
                    Cause::Default | Cause::Catalog | Cause::UnknownTool | Cause::Policy => None,
                };
                let grants = pipeline::granted_by_run(eval);
                let ctx = approval::Context {
                    id,
                    rule,
                    reason: eval.verdict.reason.clone(),
                    grants,
                    requester,
                    created: now,
                    expires: now + eval.approval_timeout,
                };
                let req = approval::Request::new(cmd, ctx);
                // Recorded before the request exists, so that it never looks abandoned.
                add_waiter(&req.id)?;
                store.create(&req).map_err(|e| stop(exit::AUDIT, &format!("{e}; nothing was run")))?;
                audit_req(&req, "requested", &eval.verdict.reason, None)
                    .map_err(|e| stop(exit::AUDIT, &e.to_string()))?;
                req
            }
        };
        let left = req.expires.saturating_sub(now);
        io.say(&pipeline::refusal_message(inv, eval));
        if !eval.wait {
            io.say(&format!(
                "guardsh: request {} is waiting for a human to approve it from their own terminal; nothing was run. Once they have, run exactly the same command again (within {}).",
                req.id,
                crate::timefmt::duration(left)
            ));
            return Err(Stop { code: exit::APPROVAL });
        }
        io.say(&format!(
            "guardsh: request {} is waiting for a human to approve it from their own terminal; it has not run, and runs only if they approve (waiting up to {}).",
            req.id,
            crate::timefmt::duration(left)
        ));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(left);
        let waited = approval::wait::wait_for_peer(&store, &req.id, deadline, conn.as_fd())
            .map_err(|e| stop(exit::AUDIT, &format!("{e}; nothing was run")))?;
        let finish = |outcome: Outcome| {
            let d = approval::Decision {
                outcome,
                digest: req.digest.clone(),
                reason: None,
                by: approval::DecidedBy { uid: self.uid, pid: std::process::id() as i32, ..Default::default() },
                time: crate::timefmt::now_secs(),
                signature: None,
            };
            store.decide(&req.id, &d)
        };
        let decision = match waited {
            approval::Waited::Decided(d) => d,
            approval::Waited::TimedOut => {
                finish(Outcome::Expired).map_err(|e| stop(exit::APPROVAL, &format!("{e}; nothing was run")))?
            }
            // The shim went away (the agent gave up on it, or was stopped): nobody waits, so the
            // request can never be approved any more; an approval landing now would otherwise
            // pre-approve an identical command later.
            approval::Waited::PeerGone | approval::Waited::Interrupted(_) => {
                let _ = finish(Outcome::Withdrawn);
                let _ = audit_req(&req, "withdrawn", "the command that asked is gone", None);
                return Err(Stop { code: exit::APPROVAL });
            }
        };
        match decision.outcome {
            Outcome::Approved => {
                self.use_approval(pid, eval, real, &store, &req, &decision).map_err(|why| {
                    let _ = audit_req(&req, "refused", &why, None);
                    stop(exit::APPROVAL, &format!("{why}; nothing was run"))
                })?;
                io.say(&format!("guardsh: a human approved request {}; running it", req.id));
                Ok(req.id)
            }
            Outcome::Denied => {
                let why =
                    decision.reason.as_deref().map(display::escape_text).unwrap_or_else(|| "no reason given".into());
                let _ = audit_req(&req, "denied", &why, serde_json::to_value(&decision.by).ok());
                Err(stop(
                    exit::DENIED,
                    &format!(
                        "a human denied request {}: {why}. Do not try to reach the same result another way.",
                        req.id
                    ),
                ))
            }
            Outcome::Expired => {
                let _ = audit_req(&req, "expired", "no decision in time", None);
                Err(stop(
                    exit::APPROVAL,
                    &format!(
                        "nobody approved request {} within {}, so it expired: the command did not run, and this request can no longer be approved. Running the same command again asks a human again; or tell the user what you need it for and go on without it.",
                        req.id,
                        crate::timefmt::duration(req.expires.saturating_sub(req.created))
                    ),
                ))
            }
            Outcome::Withdrawn => {
                Err(stop(exit::APPROVAL, &format!("request {} was withdrawn; nothing was run", req.id)))
            }
        }
    }

    /// An approval counts once, for exactly the request it decides, before it expires, for the
    /// binary it was made for; under `approval = "signature"`, with a valid signature, and only
    /// for the shim the request was made for.
    fn use_approval(
        &self,
        pid: i32,
        eval: &Evaluation,
        real: &Path,
        store: &approval::Store,
        req: &approval::Request,
        decision: &approval::Decision,
    ) -> Result<(), String> {
        if decision.digest != req.digest || !req.is_intact() {
            return Err(format!("the approval for request {} does not match the request", req.id));
        }
        if req.is_expired(crate::timefmt::now_secs()) {
            return Err(format!("request {} has expired", req.id));
        }
        if eval.approval == ApprovalMode::Signature {
            if req.requester.pid != pid {
                return Err(format!("request {} was made for another command", req.id));
            }
            self.signed(eval, req, decision)?;
        }
        match approval::sha256_file(real) {
            Ok(h) if h == req.real_sha256 => {}
            _ => return Err(format!("{} changed since request {} was made", real.display(), req.id)),
        }
        // Once in this process's memory (the agent cannot reach it), and once in the store (so
        // a shim outside the sandbox cannot use it a second time either).
        let mut used = self.used.lock().map_err(|_| "the record of used approvals is damaged".to_string())?;
        if !used.insert(req.id.clone()) {
            return Err(format!("the approval of request {} was already used", req.id));
        }
        match store.consume(&req.id, std::process::id()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("the approval of request {} was already used", req.id)),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `path` opened in this process's view, if it is the very directory `fd` is (device and inode).
fn outside_view(path: &Path, fd: &OwnedFd) -> Option<OwnedFd> {
    use std::os::unix::fs::MetadataExt;
    let inside = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let outside = dir.metadata().ok()?;
    ((inside.dev(), inside.ino()) == (outside.dev(), outside.ino())).then(|| OwnedFd::from(dir))
}

/// The invocation a proposal describes, with PATH set to guardsh run's own (the real tool is
/// looked up there, never on the agent's PATH).
fn invocation(p: &Proposal, path: Option<&OsString>) -> Result<Invocation, String> {
    let mut argv = p.argv.iter().map(|a| OsString::from_vec(a.clone()));
    let argv0 = argv.next().ok_or("the proposal has no argv")?;
    let tool = Path::new(&argv0).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if tool.is_empty() || tool.starts_with("guardsh") {
        return Err(format!("{:?} is not a guarded tool", display::escape_text(&argv0.to_string_lossy())));
    }
    let mut vars: Vec<(OsString, OsString)> = p
        .env
        .iter()
        .filter(|(k, _)| k.as_slice() != b"PATH")
        .map(|(k, v)| (OsString::from_vec(k.clone()), OsString::from_vec(v.clone())))
        .collect();
    vars.push(("PATH".into(), path.cloned().unwrap_or_default()));
    Ok(Invocation {
        tool,
        argv0,
        args: argv.collect(),
        vars,
        cwd: PathBuf::from(OsString::from_vec(p.cwd.clone())),
        stdin: Stdin::Unknown,
    })
}
