//! The custodian side of `guardsh run`: serves the custody socket, decides for each peer from
//! facts it reads itself, and starts the real tool with the granted credentials.
//!
//! What the peer says is never evidence. The peer's uid comes from SO_PEERCRED; that it is
//! guardsh, from /proc/PID/exe being the same file as this process's own; its argv, working
//! directory and environment, from /proc; that nobody traces it, from /proc/PID/status; what it
//! may have, from this process's own evaluation of the policy for those facts, with the approval
//! store (and, under `approval = "signature"`, the signature) consulted when the rule asks. The
//! tool is then started from the binary this process finds on its own PATH, on exactly those
//! facts: what was decided is what runs. Every release and refusal is audited, by name.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::wire::{PEER_TIMEOUT, read_captured, receive_hello, relay, send, tracer};
use super::{Answer, Hello, VERSION, Vault};
use crate::approval::{self, Outcome, procinfo};
use crate::audit;
use crate::paths::Paths;
use crate::pipeline::{self, Evaluation, Invocation, Stdin};
use crate::rules::{Action, ApprovalMode};

/// How long deciding may take before the tool would start. The shim gives up after 30 s and
/// runs the command itself without credentials; starting it here after that would run it twice
/// (the agent can make the audit append wait, by holding the log's lock).
const DECIDE_DEADLINE: Duration = Duration::from_secs(20);

/// Peers handled at once; more wait. Bounds what a flood of connections can cost.
const MAX_PEERS: usize = 32;

pub struct Custodian {
    pub vault: Vault,
    pub paths: Paths,
    pub session: String,
    /// Device and inode of this binary: a peer must be running the same file.
    pub(super) exe: (u64, u64),
    pub(super) uid: u32,
    /// guardsh run's own PATH, the human's: where the real tools are looked up, never the
    /// agent's.
    pub(super) path: Option<OsString>,
    /// guardsh run's own environment without credentials: the human's, which a tool it starts
    /// gets as its base. From the agent's, only the tool's selectors are taken.
    pub(super) base_env: Vec<(OsString, OsString)>,
    /// Approvals that have released credentials once; no second time (the store's "used"
    /// markers are writable by the agent).
    pub(super) used: Mutex<std::collections::HashSet<String>>,
    /// guardsh run's PATH without the directories the agent could put a program in (see
    /// `exposure::trusted_path_dir`), worked out once at start: the agent cannot add names to a
    /// directory it cannot write, and a link that leads somewhere writable is judged by where
    /// it leads.
    pub(super) trusted_path: OsString,
    /// The PATH directories left out of `trusted_path`, and why, for `guardsh run` to say.
    pub untrusted_path: Vec<String>,
    /// guardsh run's resource limits at its start, for the tools it starts.
    pub(super) limits: crate::exec::Limits,
    /// Set when the agent runs in the sandbox: guardsh run is then the broker for every guarded
    /// command (`broker.rs`), and refuses the custody exchange of a shim outside it.
    pub broker: Option<super::broker::Sandboxed>,
    /// Credentials minted for tools still running, by a number of their own: each is revoked
    /// when its tool ends, and whatever is left when the session ends (a tool the agent left
    /// running) is ended then, with its tool (`end_session`; review finding F1).
    pub(super) live: Mutex<(u64, std::collections::HashMap<u64, LiveMint>)>,
}

/// A minted credential whose tool runs: the tool's pid (its process group: tools are started in
/// their own session), the credential, and the record its revocation is audited in.
pub(super) type LiveMint = (i32, crate::mint::Minted, audit::Record);

impl Custodian {
    pub fn new(
        vault: Vault,
        paths: Paths,
        session: String,
        base_env: Vec<(OsString, OsString)>,
    ) -> std::io::Result<Self> {
        let m = std::fs::metadata("/proc/self/exe")?;
        let uid = nix::unistd::geteuid().as_raw();
        let given = std::env::var_os("PATH").unwrap_or_default();
        let (mut kept, mut untrusted_path) = (Vec::new(), Vec::new());
        for d in std::env::split_paths(&given) {
            if !d.is_absolute() {
                untrusted_path.push(format!("{:?} is not an absolute directory", d.display().to_string()));
                continue;
            }
            match super::exposure::trusted_path_dir(&d, uid) {
                Ok(()) => kept.push(d),
                Err(why) => untrusted_path.push(why),
            }
        }
        // Then the scripts in what is left, their interpreters looked up on what is left (a
        // second pass: `#!/usr/bin/env NAME` finds NAME on the tool's PATH, not the human's).
        let candidates = std::env::join_paths(&kept).unwrap_or_default();
        kept.retain(|d| match super::exposure::trusted_path_dir_with(d, uid, Some(&candidates)) {
            Ok(()) => true,
            Err(why) => {
                untrusted_path.push(why);
                false
            }
        });
        // Nothing left: a PATH that finds nothing (an unset PATH would mean glibc's default).
        let nothing = || OsString::from("/nonexistent");
        let trusted_path =
            if kept.is_empty() { nothing() } else { std::env::join_paths(kept).unwrap_or_else(|_| nothing()) };
        Ok(Self {
            vault,
            paths,
            session,
            exe: (m.dev(), m.ino()),
            uid,
            path: std::env::var_os("PATH"),
            base_env,
            used: Mutex::new(std::collections::HashSet::new()),
            live: Mutex::new((0, std::collections::HashMap::new())),
            trusted_path,
            untrusted_path,
            limits: crate::exec::Limits::current(),
            broker: None,
        })
    }
}

/// Accepts peers until the listener fails; each is handled on its own thread, so a peer that
/// stalls holds up nobody else.
pub fn serve(listener: UnixListener, custodian: Arc<Custodian>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(conn) = conn else {
            // Out of descriptors, say (the agent can lower this process's limits): do not spin.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        while busy.load(Ordering::SeqCst) >= MAX_PEERS {
            std::thread::sleep(Duration::from_millis(5));
        }
        busy.fetch_add(1, Ordering::SeqCst);
        let (custodian, busy) = (Arc::clone(&custodian), Arc::clone(&busy));
        std::thread::spawn(move || {
            custodian.handle(conn);
            busy.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// What was read about the peer.
struct Peer {
    pid: i32,
    start: u64,
    inv: Invocation,
    /// Its working directory, opened when it was read: the tool starts in that directory even
    /// if a path to it is changed in between.
    cwd: OwnedFd,
}

/// The tool to start: decided on, with the credentials to give it.
struct Launch {
    real: PathBuf,
    env: Vec<(OsString, OsString)>,
    released: Vec<String>,
    /// For the audit record: the rules that decided, and the mode.
    rules: Vec<String>,
    mode: String,
    /// The credential minted for it (`crate::mint`), revoked when it ends.
    minted: Option<crate::mint::Minted>,
}

/// Why a peer gets nothing, what was read about it by then, and whether the command is denied
/// (the shim must not run it without credentials either: a credential the policy has minted for
/// it could not be).
type Refusal = (String, Option<Box<Peer>>, bool);

impl Custodian {
    fn handle(&self, conn: UnixStream) {
        let began = std::time::Instant::now();
        let _ = conn.set_read_timeout(Some(PEER_TIMEOUT));
        let _ = conn.set_write_timeout(Some(PEER_TIMEOUT));
        let cred =
            nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials).map(|c| (c.pid(), c.uid()));
        let (mut hello, fds) = match receive_hello(&conn) {
            Ok(h) => h,
            Err(why) => return self.refuse(&conn, &why, None, cred.ok().map(|c| c.0)),
        };
        match (self.broker.is_some(), hello.proposal.take()) {
            (true, Some(proposal)) => return self.broker(conn, cred.ok(), proposal, fds),
            (false, None) => {}
            // Inside the sandbox every command is proposed whole; the custody exchange would
            // start a tool with facts read from the agent's process (its HOME, say).
            (true, None) => {
                return self.refuse(
                    &conn,
                    "inside the sandbox, commands are proposed whole",
                    None,
                    cred.ok().map(|c| c.0),
                );
            }
            (false, Some(_)) => {
                return self.refuse(
                    &conn,
                    "this guardsh run has no sandbox to broker for",
                    None,
                    cred.ok().map(|c| c.0),
                );
            }
        }
        let (peer, launch) = match self.decide(cred.ok(), &hello, &fds) {
            Ok(Some(decided)) => decided,
            Ok(None) => {
                let _ = send(&conn, &Answer::Unneeded);
                return;
            }
            Err((why, peer, true)) => return self.deny(&conn, &why, peer.as_deref(), cred.ok().map(|c| c.0)),
            Err((why, peer, false)) => return self.refuse(&conn, &why, peer.as_deref(), cred.ok().map(|c| c.0)),
        };
        let [stdin, stdout, stderr]: [OwnedFd; 3] = match fds.try_into() {
            Ok(fds) => fds,
            Err(_) => return self.refuse(&conn, "the shim did not pass its descriptors", Some(&peer), Some(peer.pid)),
        };
        // Piped SQL goes to the tool as a copy of its own of the bytes decided on: the shim's
        // sealed file cannot change, but its read position is shared with anything holding it
        // (an agent that takes a copy of the descriptor could skip the tool past `select`).
        let stdin = match &peer.inv.stdin {
            Stdin::Captured(bytes) => match crate::exec::sealed_copy(bytes) {
                Ok(f) => OwnedFd::from(f),
                Err(e) => {
                    let why = format!("cannot copy the piped input: {e}");
                    return self.refuse(&conn, &why, Some(&peer), Some(peer.pid));
                }
            },
            _ => stdin,
        };
        let mut launch = launch;
        // What ends the credential minted for the tool, with the record it is audited in.
        let rec = self.record_for(&peer.inv, Some(peer.pid), "revoked", "", &[], Some(&launch));
        let minted = launch.minted.take().map(|m| (m, audit::Record { decision: "allow".into(), ..rec }));
        let refuse_minted = |why: &str, minted: Option<(crate::mint::Minted, audit::Record)>| {
            if let Some((m, rec)) = minted {
                self.revoke(m, rec);
            }
            self.refuse(&conn, why, Some(&peer), Some(peer.pid));
        };
        // A release that cannot be audited is not made.
        let identity = minted.as_ref().map(|(m, _)| m.identity.clone());
        if let Err(e) = self.audit_release(&peer, &launch, identity) {
            return refuse_minted(&format!("the audit log cannot be written ({e})"), minted);
        }
        if began.elapsed() > DECIDE_DEADLINE {
            let why = "deciding took too long (the audit log was locked?); the shim runs it without credentials";
            return refuse_minted(why, minted);
        }
        let mut command = std::process::Command::new(&launch.real);
        command
            // The tool's name, not the agent's argv[0]: some binaries find their files from it.
            .arg0(&peer.inv.tool)
            .args(&peer.inv.args)
            .env_clear()
            .envs(std::mem::take(&mut launch.env))
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        crate::exec::prepare_custodied_child(&mut command, peer.cwd.as_raw_fd(), self.limits.clone(), None, vec![]);
        let child = match command.spawn() {
            Ok(c) => c,
            Err(e) => {
                let why = format!("cannot start {}: {e}", launch.real.display());
                return refuse_minted(&why, minted);
            }
        };
        if send(&conn, &Answer::Started).is_err() {
            // The shim is gone: so is whoever waits for the tool.
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGTERM);
        }
        self.relay_minted(conn, child, minted);
    }

    /// A provider that runs the tool's binary with the held secret (postgres's admin connection)
    /// needs a binary the agent cannot replace, whatever `trust_user_installed_tools` says.
    pub(super) fn minting_binary_is_out_of_reach(
        &self,
        plan: &crate::mint::Plan,
        real: &std::path::Path,
        tool: &str,
    ) -> Result<(), String> {
        if !plan.provider.runs_the_tool_with_the_secret() {
            return Ok(());
        }
        super::exposure::replaceable(real, self.uid)
            .and_then(|()| super::exposure::interpreter_replaceable(real, &self.tool_path(false), self.uid))
            .map_err(|why| format!("no credential is minted with a {tool} the agent can replace: {why}"))
    }

    /// `relay` for a tool this process started, with the credential minted for it, if any: kept
    /// in the registry while the tool runs, revoked when it ends (or at the session's end).
    pub(super) fn relay_minted(
        &self,
        conn: UnixStream,
        child: std::process::Child,
        minted: Option<(crate::mint::Minted, audit::Record)>,
    ) {
        let pid = child.id() as i32;
        let kept = minted.map(|(m, rec)| self.keep_minted(pid, m, rec));
        relay(conn, child, || match kept {
            Some(Ok(id)) => self.end_minted(id),
            Some(Err(left)) => {
                let (_, m, rec) = *left;
                self.revoke(m, rec);
            }
            None => {}
        });
    }

    fn audit_release(&self, peer: &Peer, launch: &Launch, minted: Option<String>) -> Result<(), audit::AuditError> {
        let mut rec = self.release_record(peer, launch);
        rec.minted = minted;
        audit::append(&self.paths.audit_log(), &rec)
    }

    /// Keeps a minted credential for the tool `pid` until `end_minted` or `end_session`. `None`
    /// when the registry cannot be used (a poisoned lock): the caller then ends it itself when
    /// the tool ends, as before.
    pub(super) fn keep_minted(
        &self,
        pid: i32,
        minted: crate::mint::Minted,
        rec: audit::Record,
    ) -> Result<u64, Box<LiveMint>> {
        match self.live.lock() {
            Ok(mut live) => {
                live.0 += 1;
                let id = live.0;
                live.1.insert(id, (pid, minted, rec));
                Ok(id)
            }
            Err(_) => Err(Box::new((pid, minted, rec))),
        }
    }

    /// The tool of credential `id` ended: revoke it, unless the session's end already did.
    /// Revoked with the registry locked, so that the session's end waits for a revocation under
    /// way rather than exit in the middle of it (the race: the sandbox's end kills the shims, the
    /// tools end with them, and `guardsh run` returns at the same moment).
    pub(super) fn end_minted(&self, id: u64) {
        if let Ok(mut live) = self.live.lock()
            && let Some((_, minted, rec)) = live.1.remove(&id)
        {
            self.revoke(minted, rec);
        }
    }

    /// The agent has gone: a tool it left running (started in a session of its own, so nothing
    /// else ends it) is killed, and every credential still minted is revoked, so that none
    /// outlives `guardsh run`.
    pub fn end_session(&self) {
        let Ok(mut live) = self.live.lock() else { return };
        for (_, (pid, minted, rec)) in live.1.drain() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-pid), nix::sys::signal::SIGKILL);
            self.revoke(minted, rec);
        }
    }

    /// Ends a credential minted for a tool once the tool has ended (or could not start), and
    /// audits it: `revoked`, or `revoke_failed` with the provider's reason, which the human is
    /// told as well (the credential lives on until its own expiry).
    pub(super) fn revoke(&self, minted: crate::mint::Minted, mut rec: audit::Record) {
        let identity = minted.identity.clone();
        let (outcome, reason) = match minted.revoke() {
            Ok(done) => ("revoked", done),
            Err(why) => {
                eprintln!("guardsh run: {}", crate::display::escape_lines(&why));
                ("revoke_failed", why)
            }
        };
        rec.time = crate::timefmt::rfc3339(std::time::SystemTime::now());
        rec.outcome = outcome.into();
        rec.reason = reason;
        rec.minted = Some(identity);
        rec.exec_argv = None;
        let _ = audit::append(&self.paths.audit_log(), &rec);
    }

    fn refuse(&self, conn: &UnixStream, why: &str, peer: Option<&Peer>, pid: Option<i32>) {
        // Audited before the answer: once the peer has it, this process may be gone (the agent
        // exits, and guardsh run with it).
        let _ = self.audit(peer, pid, "custody_refused", why, &[], None);
        let _ = send(conn, &Answer::Refuse { reason: why.to_string() });
    }

    /// Refuses the command itself: the shim exits as denied, without running the tool.
    fn deny(&self, conn: &UnixStream, why: &str, peer: Option<&Peer>, pid: Option<i32>) {
        let _ = self.audit(peer, pid, "custody_refused", why, &[], None);
        let _ = send(conn, &Answer::Deny { reason: why.to_string() });
    }

    /// What to start for this peer, `None` when nothing held is granted to its command, or why
    /// it gets nothing.
    fn decide(
        &self,
        cred: Option<(i32, u32)>,
        hello: &Hello,
        fds: &[OwnedFd],
    ) -> Result<Option<(Peer, Launch)>, Refusal> {
        let refuse = |why: &str| (why.to_string(), None, false);
        let (pid, uid) = cred.ok_or_else(|| refuse("the peer's credentials (SO_PEERCRED) cannot be read"))?;
        if uid != self.uid {
            return Err(refuse(&format!("the peer runs as uid {uid}, not {}", self.uid)));
        }
        if hello.version != VERSION {
            return Err(refuse("the peer speaks another protocol version"));
        }
        let exe =
            std::fs::metadata(format!("/proc/{pid}/exe")).map_err(|e| refuse(&format!("/proc/{pid}/exe: {e}")))?;
        if (exe.dev(), exe.ino()) != self.exe {
            return Err(refuse(&format!("process {pid} is not this guardsh binary")));
        }
        let start = procinfo::stat(pid).map_err(|e| refuse(&e.to_string()))?.start;
        let stdin = match (hello.stdin_captured, fds.first()) {
            (true, Some(fd)) => Stdin::Captured(read_captured(fd).map_err(|e| refuse(&e))?),
            _ => Stdin::Unknown,
        };
        let peer = self.facts(pid, start, stdin).map_err(|e| refuse(&e))?;
        let refuse_peer = |why: String, peer: Peer| Err((why, Some(Box::new(peer)), false));
        match tracer(pid) {
            Ok(0) => {}
            Ok(t) => return refuse_peer(format!("process {pid} is being traced by process {t}"), peer),
            Err(e) => return refuse_peer(format!("cannot read /proc/{pid}/status: {e}"), peer),
        }

        let eval = match pipeline::evaluate_captured(&self.paths, &peer.inv) {
            Ok(e) => e,
            Err(e) => return refuse_peer(format!("the policy is invalid: {e}"), peer),
        };
        match eval.verdict.action {
            Action::Allow => {}
            Action::Ask => {}
            Action::Deny => return refuse_peer(format!("the policy denies it: {}", eval.verdict.reason), peer),
        }
        let values = self.vault.release(&eval.verdict.grants);
        let minting = eval.mint.as_ref().filter(|_| !eval.verdict.grants.is_empty());
        if values.is_empty() && minting.is_none() {
            return Ok(None);
        }
        let own = match crate::exec::FileId::current_exe() {
            Ok(id) => id,
            Err(e) => return refuse_peer(format!("cannot identify this guardsh binary: {e}"), peer),
        };
        let real = match crate::exec::resolve_real(&peer.inv.tool, self.path.as_deref(), own) {
            Ok(r) => r,
            Err(e) => return refuse_peer(format!("guardsh run cannot find the real {}: {e}", peer.inv.tool), peer),
        };
        if !eval.trust_user_installed_tools {
            let checked = super::exposure::replaceable(&real, self.uid)
                .and_then(|()| super::exposure::interpreter_replaceable(&real, &self.tool_path(false), self.uid));
            if let Err(why) = checked {
                return refuse_peer(why, peer);
            }
        }
        if eval.verdict.action == Action::Ask {
            let checked = self
                .approved(pid, &peer.inv, hello.request.as_deref())
                .and_then(|(req, decision)| self.approval_holds(&peer, &eval, &real, &req, &decision));
            if let Err(why) = checked {
                return refuse_peer(why, peer);
            }
        }
        // A credential minted for this command, in place of the held one (`crate::mint`).
        let (values, minted) = match minting {
            None => (values, None),
            Some(plan) => {
                // The admin connection runs this binary with the held secret (review finding F2).
                if let Err(why) = self.minting_binary_is_out_of_reach(plan, &real, &peer.inv.tool) {
                    return Err((why, Some(Box::new(peer)), true));
                }
                let label = match (eval.verdict.action, hello.request.as_deref()) {
                    (Action::Ask, Some(id)) => id.to_string(),
                    _ => match crate::mint::fresh_label() {
                        Ok(l) => l,
                        Err(why) => return refuse_peer(why, peer),
                    },
                };
                let own: Vec<String> = plan.provider.held().iter().map(|s| s.to_string()).collect();
                let req = crate::mint::Request { label: &label, argv: &eval.argv, real: &real };
                match crate::mint::for_command(plan, &self.vault.release(&own), values, &req) {
                    Ok((rest, m)) => (rest, Some(m)),
                    // Final: run without credentials, the command could still act with whatever
                    // reaches its server without them (a trusted socket, the agent's own files).
                    Err(why) => {
                        let why = format!("no credential could be minted for {}: {why}", peer.inv.tool);
                        return Err((why, Some(Box::new(peer)), true));
                    }
                }
            }
        };
        let released: Vec<String> = values.iter().map(|(k, _)| k.clone()).collect();
        let mut env = self.tool_environment(&eval, &values);
        if let Some(m) = &minted {
            m.apply(&mut env);
        }
        let (rules, mode) = (eval.verdict.matched.clone(), eval.mode.as_str().to_string());
        Ok(Some((peer, Launch { real, env, released, rules, mode, minted })))
    }

    fn facts(&self, pid: i32, start: u64, stdin: Stdin) -> Result<Peer, String> {
        let cwd_fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_PATH | nix::libc::O_DIRECTORY)
            .open(format!("/proc/{pid}/cwd"))
            .map_err(|e| format!("/proc/{pid}/cwd: {e}"))?;
        let read =
            |what: &str| std::fs::read(format!("/proc/{pid}/{what}")).map_err(|e| format!("/proc/{pid}/{what}: {e}"));
        let mut argv = split_nul(read("cmdline")?).into_iter();
        let argv0 = argv.next().ok_or("the peer has no argv")?;
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).map_err(|e| format!("/proc/{pid}/cwd: {e}"))?;
        let vars = split_nul(read("environ")?)
            .into_iter()
            .filter_map(|kv| {
                let bytes = kv.into_vec();
                let eq = bytes.iter().position(|&b| b == b'=')?;
                Some((OsString::from_vec(bytes[..eq].to_vec()), OsString::from_vec(bytes[eq + 1..].to_vec())))
            })
            .collect();
        let tool = PathBuf::from(&argv0).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Peer {
            pid,
            start,
            inv: Invocation { tool, argv0, args: argv.collect(), vars, cwd, stdin },
            cwd: cwd_fd.into(),
        })
    }

    /// The rule asks: the peer must be the process that used an approval of exactly this
    /// command. Returns the request and its decision.
    fn approved(
        &self,
        pid: i32,
        inv: &Invocation,
        request: Option<&str>,
    ) -> Result<(approval::Request, approval::Decision), String> {
        let id = request.ok_or("the command needs an approval, and the shim holds none")?;
        let store = approval::Store::open(&self.paths.requests_dir()).map_err(|e| e.to_string())?;
        let req = store.load(id).map_err(|e| e.to_string())?;
        let decision = store.decision(id).map_err(|e| e.to_string())?;
        let Some(decision) = decision.filter(|d| d.outcome == Outcome::Approved && d.digest == req.digest) else {
            return Err(format!("request {id} is not approved"));
        };
        if !req.is_intact() {
            return Err(format!("request {id} is not approved"));
        }
        if store.consumer(id) != Some(pid) {
            return Err(format!("the approval of {id} was not used by process {pid}"));
        }
        let argv: Vec<Vec<u8>> =
            std::iter::once(&inv.argv0).chain(&inv.args).map(|a| a.as_encoded_bytes().to_vec()).collect();
        let same = req.tool == inv.tool
            && req.argv_bytes().as_ref() == Some(&argv)
            && approval::request::unhex(&req.cwd_hex).as_deref() == Some(inv.cwd.as_os_str().as_encoded_bytes());
        if !same {
            return Err(format!("request {id} is for another command"));
        }
        Ok((req, decision))
    }

    /// The environment of a tool this process starts. The base is guardsh run's own (the
    /// human's, without credentials or loader variables; so its PATH): the agent's environment
    /// can make a tool run the agent's code in more ways than any list of variables to strip
    /// could name (a PATH that finds its `python3`, `PYTHONPLATLIBDIR`, `CLOUDSDK_PYTHON`, ...).
    /// From the agent's, only the tool's selectors (`KUBECONFIG`, `AWS_PROFILE`, ...: what the
    /// command acts on, and what an approval binds) are taken. Then the tool's `set_env`,
    /// guardsh's recursion counter, and the credentials.
    pub(super) fn tool_environment(
        &self,
        eval: &Evaluation,
        values: &[(String, zeroize::Zeroizing<String>)],
    ) -> Vec<(OsString, OsString)> {
        // What an approval binds from the agent's environment (see `pipeline::bound_environment`)
        // is what the tool gets: the selectors, HOME and XDG_CONFIG_HOME, each as the agent has it,
        // unset included (the human's value of an unset selector must not come back). For a
        // sandboxed agent, HOME and XDG_CONFIG_HOME stay the human's: a tool outside the sandbox
        // reads its configuration from the human's files, never from a place the agent wrote.
        let brokered = self.broker.is_some();
        let bound = |name: &str| {
            (!brokered && ["HOME", "XDG_CONFIG_HOME"].contains(&name))
                || eval.selectors.iter().any(|p| crate::env::name_matches(p, name))
        };
        let mut env = crate::env::plan(&self.base_env, &crate::env::EnvPolicy::default(), &[]).vars;
        env.retain(|(k, _)| !bound(k.to_str().unwrap_or("")));
        env.retain(|(k, _)| k != "PATH" && k != "PYTHONNOUSERSITE");
        env.push(("PATH".into(), self.tool_path(eval.trust_user_installed_tools)));
        if !eval.trust_user_installed_tools {
            // Python imports from ~/.local/lib/pythonX.Y/site-packages (usercustomize, .pth)
            // unless told not to: the agent's code, in any Python tool.
            env.push(("PYTHONNOUSERSITE".into(), "1".into()));
        }
        let mut set = |k: &OsString, v: &OsString| {
            env.retain(|(n, _)| n != k);
            env.push((k.clone(), v.clone()));
        };
        for (k, v) in &eval.env.vars {
            let name = k.to_str().unwrap_or("");
            if bound(name) || name == crate::exec::DEPTH_VAR {
                set(k, v);
            }
        }
        for (k, v) in &eval.set_env {
            set(&k.into(), &v.into());
        }
        for (k, v) in values {
            set(&k.into(), &v.as_str().into());
        }
        if let Some(sb) = &self.broker {
            // Outside the sandbox: the session's own temporary directory, and none of the
            // human's session sockets (agents, multiplexers, displays, buses): nothing a tool
            // runs should find the way to them.
            env.retain(|(k, _)| {
                let k = k.to_str().unwrap_or("");
                !SESSION_SOCKETS.contains(&k)
            });
            env.retain(|(k, _)| k != "TMPDIR");
            env.push(("TMPDIR".into(), sb.tool_tmp.clone().into()));
        }
        env
    }

    /// The tool's PATH: guardsh run's own, without the entries the agent could put a program in
    /// (relative or empty entries, which mean the directory the tool runs in, and directories this
    /// user can change: `~/.local/bin`, `~/bin`, ...). Anything the tool runs by name (a
    /// `#!/usr/bin/env` interpreter, `git`, a pager) is found there.
    pub(super) fn tool_path(&self, trust_user_installed: bool) -> OsString {
        if trust_user_installed {
            let given = self.path.clone().unwrap_or_default();
            let kept: Vec<PathBuf> = std::env::split_paths(&given).filter(|d| d.is_absolute()).collect();
            return std::env::join_paths(kept).unwrap_or_else(|_| "/usr/bin:/bin".into());
        }
        self.trusted_path.clone()
    }

    /// Everything `guardsh approve` and the shim hold an approval to, held again here, where the
    /// agent cannot reach: not expired; the command digest (argv, directory, the binary this
    /// process will run and its hash, the bound environment, piped SQL) recomputed from what
    /// this process read; used once; and under `approval = "signature"`, the waiting process
    /// that asked and a valid signature by an allowed signer (a decision file proves nothing:
    /// anything running as the user can write one).
    fn approval_holds(
        &self,
        peer: &Peer,
        eval: &Evaluation,
        real: &std::path::Path,
        req: &approval::Request,
        decision: &approval::Decision,
    ) -> Result<(), String> {
        if req.is_expired(now()) {
            return Err(format!("request {} has expired", req.id));
        }
        let digest = pipeline::command_digest(&peer.inv, eval, real, self.uid).map_err(|e| e.to_string())?;
        if digest != req.command_digest {
            return Err(format!("request {} is for another command, binary or environment", req.id));
        }
        if eval.approval == ApprovalMode::Signature {
            let asker = &req.requester;
            if asker.pid != peer.pid || asker.ancestry.first().map(|p| p.start) != Some(peer.start) {
                return Err(format!("request {} was made by another process", req.id));
            }
            self.signed(eval, req, decision)?;
        }
        let mut used = self.used.lock().map_err(|_| "the record of used approvals is damaged".to_string())?;
        if !used.insert(req.id.clone()) {
            return Err(format!("the approval of {} was already used", req.id));
        }
        Ok(())
    }

    /// A valid signature by an allowed signer on the request.
    pub(super) fn signed(
        &self,
        eval: &Evaluation,
        req: &approval::Request,
        decision: &approval::Decision,
    ) -> Result<(), String> {
        if eval.approval != ApprovalMode::Signature {
            return Ok(());
        }
        let path = approval::signers_path(&self.paths, eval.allowed_signers.as_deref(), eval.system_policy);
        approval::check_signed(&path, req, decision, now()).map_err(|e| match e {
            approval::NotSigned::Setup(why) | approval::NotSigned::Invalid(why) => why,
        })
    }

    fn audit(
        &self,
        peer: Option<&Peer>,
        pid: Option<i32>,
        outcome: &str,
        reason: &str,
        names: &[String],
        launch: Option<&Launch>,
    ) -> Result<(), audit::AuditError> {
        let unknown = Invocation {
            tool: "?".into(),
            argv0: "?".into(),
            args: vec![],
            vars: vec![],
            cwd: PathBuf::new(),
            stdin: Stdin::Unknown,
        };
        let inv = peer.map_or(&unknown, |p| &p.inv);
        let rec = self.record_for(inv, pid, outcome, reason, names, launch);
        audit::append(&self.paths.audit_log(), &rec)
    }

    fn release_record(&self, peer: &Peer, launch: &Launch) -> audit::Record {
        self.record_for(&peer.inv, Some(peer.pid), "custody_released", "", &launch.released, Some(launch))
    }

    fn record_for(
        &self,
        inv: &Invocation,
        pid: Option<i32>,
        outcome: &str,
        reason: &str,
        names: &[String],
        launch: Option<&Launch>,
    ) -> audit::Record {
        let mut rec = pipeline::record(inv, None, outcome, reason);
        rec.pid = pid.and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
        rec.ppid = std::process::id();
        rec.session = Some(self.session.clone());
        rec.decision = if outcome == "custody_released" { "allow" } else { "deny" }.into();
        rec.passed = names.to_vec();
        if let Some(l) = launch {
            rec.rules = l.rules.clone();
            rec.mode = l.mode.clone();
            rec.real = Some(l.real.display().to_string());
            rec.reason = match (names.is_empty(), l.minted.is_some()) {
                (true, true) => "started by guardsh run with a minted credential".to_string(),
                (false, true) => format!("started by guardsh run with a minted credential and {}", names.join(" ")),
                _ => format!("started by guardsh run with {}", names.join(" ")),
            };
        }
        rec
    }
}

/// Variables that lead to the human's session sockets.
const SESSION_SOCKETS: &[&str] = &[
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "DBUS_SESSION_BUS_ADDRESS",
    "TMUX",
    "TMUX_PANE",
    "STY",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_RUNTIME_DIR",
    "KITTY_LISTEN_ON",
    "WEZTERM_UNIX_SOCKET",
];

/// NUL-terminated strings (argv, environ), empty ones included: `aws s3 "" ls` is not `aws s3 ls`.
fn split_nul(bytes: Vec<u8>) -> Vec<OsString> {
    let body = bytes.strip_suffix(&[0]).unwrap_or(&bytes);
    if body.is_empty() {
        return vec![];
    }
    body.split(|&b| b == 0).map(|w| OsString::from_vec(w.to_vec())).collect()
}

use crate::timefmt::now_secs as now;

#[cfg(test)]
mod tests {
    use super::{Custodian, Invocation, Stdin, Vault};
    use crate::approval::request::{Command, Context, Requester};
    use crate::approval::{DecidedBy, Decision, Outcome, Request, Store};
    use crate::paths::Paths;

    fn request(id: &str) -> Request {
        let argv: &[&[u8]] = &[b"aws", b"s3", b"rb", b"s3://b"];
        let cmd = Command { uid: 1, tool: "aws", argv, cwd: b"/w", real: b"/aws", real_sha256: "x", env: &[] };
        let requester = Requester { uid: 1, pid: 2, sid: 2, tty: None, session: None, ancestry: vec![] };
        let ctx = Context {
            id: id.into(),
            rule: None,
            reason: "r".into(),
            grants: vec![],
            requester,
            created: 1,
            expires: 9,
        };
        Request::new(cmd, ctx)
    }

    /// guardsh's directories, all inside `dir`.
    fn paths_in(dir: &std::path::Path) -> Paths {
        Paths {
            system_dir: dir.join("etc"),
            config_dir: dir.join("config"),
            state_dir: dir.join("state"),
            data_dir: dir.join("data"),
        }
    }

    /// `inv` evaluated against a user policy with these `[settings]` lines and aws asking.
    fn evaluate(settings: &str, inv: &Invocation) -> crate::pipeline::Evaluation {
        let text = format!("[settings]\n{settings}\n[tools.aws]\ndefault = \"ask\"\n");
        let source = crate::rules::Source { layer: crate::rules::LayerKind::User, path: "t.toml".into(), text };
        let policy = crate::rules::compile(&[source]).expect("policy");
        crate::pipeline::evaluate_with(&policy, inv, false, None)
    }

    fn inv(args: &[&str], cwd: &str) -> Invocation {
        Invocation {
            tool: "aws".into(),
            argv0: "aws".into(),
            args: args.iter().map(Into::into).collect(),
            vars: vec![],
            cwd: cwd.into(),
            stdin: Stdin::Unknown,
        }
    }

    /// An approval releases credentials once, for the command, binary and environment it was
    /// made for, until it expires; under signature approvals, only to the process that asked.
    #[test]
    fn an_approval_holds_once_for_exactly_its_command() {
        use super::Peer;
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = paths_in(dir.path());
        let custodian = Custodian::new(Vault::default(), paths, "s".into(), vec![]).expect("custodian");
        let real = std::path::Path::new("/bin/sh");
        let peer = |args: &[&str], profile: &str| {
            let mut i = inv(args, "/");
            i.vars.push(("AWS_PROFILE".into(), profile.into()));
            let cwd = std::fs::File::open("/").expect("/");
            Peer { pid: 4242, start: 7, inv: i, cwd: cwd.into() }
        };
        let eval_for = |p: &Peer, mode: &str| evaluate(&format!("approval = \"{mode}\""), &p.inv);
        let this = peer(&["s3", "rb", "s3://b"], "dev");
        let eval = eval_for(&this, "interactive");
        let mut req = request("eeee5555");
        req.expires = u64::MAX;
        req.command_digest = crate::pipeline::command_digest(&this.inv, &eval, real, custodian.uid).expect("digest");
        let decision = Decision {
            outcome: Outcome::Approved,
            digest: req.digest.clone(),
            reason: None,
            by: DecidedBy::default(),
            time: 1,
            signature: None,
        };
        let other_profile = peer(&["s3", "rb", "s3://b"], "prod");
        let other_eval = eval_for(&other_profile, "interactive");
        assert!(
            custodian.approval_holds(&other_profile, &other_eval, real, &req, &decision).is_err(),
            "another AWS_PROFILE"
        );
        assert!(
            custodian.approval_holds(&this, &eval, std::path::Path::new("/bin/true"), &req, &decision).is_err(),
            "another binary"
        );
        let mut expired = req.clone();
        expired.expires = 1;
        assert!(custodian.approval_holds(&this, &eval, real, &expired, &decision).is_err(), "expired");
        let signed_mode = eval_for(&this, "signature");
        assert!(
            custodian
                .approval_holds(&this, &signed_mode, real, &req, &decision)
                .is_err_and(|e| e.contains("another process")),
            "under signatures, only the process that asked"
        );
        assert_eq!(custodian.approval_holds(&this, &eval, real, &req, &decision), Ok(()));
        assert!(
            custodian.approval_holds(&this, &eval, real, &req, &decision).is_err_and(|e| e.contains("already used"))
        );
    }

    #[test]
    fn empty_arguments_are_arguments() {
        let words = |b: &[u8]| super::split_nul(b.to_vec());
        assert_eq!(words(b"aws\0s3\0\0ls\0"), ["aws", "s3", "", "ls"]);
        assert_eq!(words(b"aws\0\0"), ["aws", ""]);
        assert!(words(b"").is_empty());
    }

    /// For a rule that asks, credentials go only to the process that used an approval of exactly
    /// its command.
    #[test]
    fn an_approval_counts_only_for_its_command_and_the_process_that_used_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let paths = paths_in(dir.path());
        let store = Store::open(&paths.requests_dir()).expect("store");
        let custodian = Custodian::new(Vault::default(), paths, "s".into(), vec![]).expect("custodian");
        let (approved, pending, denied) = (request("aaaa1111"), request("bbbb2222"), request("cccc3333"));
        for r in [&approved, &pending, &denied] {
            store.create(r).expect("create");
        }
        let decide = |r: &Request, outcome| Decision {
            outcome,
            digest: r.digest.clone(),
            reason: None,
            by: DecidedBy::default(),
            time: 5,
            signature: None,
        };
        store.decide(&approved.id, &decide(&approved, Outcome::Approved)).expect("decide");
        store.decide(&denied.id, &decide(&denied, Outcome::Denied)).expect("decide");
        assert!(store.consume(&approved.id, 4242).expect("consume"));
        assert!(store.consume(&denied.id, 4242).expect("consume"));

        let this = inv(&["s3", "rb", "s3://b"], "/w");
        assert!(custodian.approved(4242, &this, Some("aaaa1111")).is_ok());
        let refused = [
            (4243, this.clone(), Some("aaaa1111"), "another process"),
            (4242, inv(&["s3", "rb", "s3://other"], "/w"), Some("aaaa1111"), "another argv"),
            (4242, inv(&["s3", "rb", "s3://b"], "/elsewhere"), Some("aaaa1111"), "another directory"),
            (4242, this.clone(), Some("bbbb2222"), "not decided"),
            (4242, this.clone(), Some("cccc3333"), "denied"),
            (4242, this.clone(), Some("dddd4444"), "no such request"),
            (4242, this.clone(), None, "no request"),
        ];
        for (pid, inv, id, what) in refused {
            assert!(custodian.approved(pid, &inv, id).is_err(), "{what}");
        }

        // Under signature approvals, the decision file alone proves nothing.
        let (req, decision) = custodian.approved(4242, &this, Some("aaaa1111")).expect("approved");
        let signers = dir.path().join("allowed_signers");
        std::fs::write(&signers, "# nobody yet\n").expect("signers");
        let eval_for = |mode: &str| {
            evaluate(&format!("approval = \"{mode}\"\nallowed_signers = {:?}", signers.display().to_string()), &this)
        };
        assert!(custodian.signed(&eval_for("interactive"), &req, &decision).is_ok());
        let unsigned = custodian.signed(&eval_for("signature"), &req, &decision);
        assert!(unsigned.as_ref().is_err_and(|e| e.contains("is not signed")), "{unsigned:?}");
    }
}
