//! The custodian side of `guardsh run`: serves the custody socket and decides, for each peer,
//! from facts it reads itself, whether to release credentials.
//!
//! What the peer says is never evidence. The peer's uid comes from SO_PEERCRED; that it is
//! guardsh, from /proc/PID/exe being the same file as this process's own; its argv, working
//! directory and environment, from /proc while the peer is still readable; that nobody traces it,
//! from /proc/PID/status after it sealed itself; and what it may have, from this process's own
//! evaluation of the policy for those facts, with the approval store consulted when the rule asks.
//! Every release and every refusal is audited, with names, never values.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{Answer, Hello, Sealed, VERSION, Vault};
use crate::approval::{self, Outcome, procinfo};
use crate::audit;
use crate::paths::Paths;
use crate::pipeline::{self, Invocation, Stdin};
use crate::rules::Action;

/// How long one peer may take over its part of the exchange.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Custodian {
    pub vault: Vault,
    pub paths: Paths,
    pub session: String,
    /// The private 0700 directory of the custody socket; per-exchange sockets go in it too.
    dir: PathBuf,
    /// Device and inode of this binary: a peer must be running the same file.
    exe: (u64, u64),
    uid: u32,
    /// guardsh run's own PATH, the human's: where the real tools are looked up, never the
    /// agent's.
    path: Option<OsString>,
}

impl Custodian {
    pub fn new(vault: Vault, paths: Paths, session: String, dir: PathBuf) -> std::io::Result<Self> {
        let m = std::fs::metadata("/proc/self/exe")?;
        Ok(Self {
            vault,
            paths,
            session,
            dir,
            exe: (m.dev(), m.ino()),
            uid: nix::unistd::geteuid().as_raw(),
            path: std::env::var_os("PATH"),
        })
    }
}

/// Peers handled at once; more wait. Bounds what a flood of connections can cost.
const MAX_PEERS: usize = 32;

/// Accepts peers until the listener fails; each is handled on its own thread, so a peer that
/// stalls holds up nobody else.
pub fn serve(listener: UnixListener, custodian: Arc<Custodian>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
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

/// Credentials released to a peer, and the only binary they are for.
type Released = (Vec<(String, zeroize::Zeroizing<String>)>, PathBuf);
/// Why a peer gets nothing, and what was read about it by then.
type Refusal = (String, Option<Box<Peer>>);

/// What was read about the peer before it sealed itself.
struct Peer {
    start: u64,
    inv: Invocation,
}

impl Custodian {
    fn handle(&self, conn: UnixStream) {
        let _ = conn.set_read_timeout(Some(PEER_TIMEOUT));
        let _ = conn.set_write_timeout(Some(PEER_TIMEOUT));
        let pid =
            nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials).map(|c| (c.pid(), c.uid()));
        let (outcome, peer, released) = match self.exchange(&conn, pid.ok()) {
            Ok((peer, (values, real), fresh)) => {
                let names: Vec<String> = values.iter().map(|(k, _)| k.clone()).collect();
                let values = values.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
                let answer = Answer::Release { values, real: real.display().to_string() };
                // A release that cannot be audited is not made.
                match self.audit(Some(&peer), pid.ok().map(|p| p.0), "custody_released", "", &names) {
                    Ok(()) => {
                        let _ = send(&fresh, &answer);
                        return;
                    }
                    Err(e) => (format!("the audit log cannot be written ({e})"), Some(Box::new(peer)), names),
                }
            }
            Err((reason, peer)) => (reason, peer, vec![]),
        };
        // Audited before the answer: once the peer has it, this process may be gone (the agent
        // exits, and guardsh run with it).
        let _ = self.audit(peer.as_deref(), pid.ok().map(|p| p.0), "custody_refused", &outcome, &released);
        let _ = send(&conn, &Answer::Refuse { reason: outcome });
    }

    /// The whole exchange with one peer: the credentials to release and the fresh connection
    /// to send them on, or why not.
    fn exchange(&self, conn: &UnixStream, cred: Option<(i32, u32)>) -> Result<(Peer, Released, UnixStream), Refusal> {
        let refuse = |why: &str| (why.to_string(), None);
        let (pid, uid) = cred.ok_or_else(|| refuse("the peer's credentials (SO_PEERCRED) cannot be read"))?;
        if uid != self.uid {
            return Err(refuse(&format!("the peer runs as uid {uid}, not {}", self.uid)));
        }
        let mut reader = BufReader::new(conn);
        let hello: Hello = read(&mut reader).map_err(|e| refuse(&e))?;
        if hello.version != VERSION {
            return Err(refuse("the peer speaks another protocol version"));
        }
        // Everything about the peer is read now, while it can still be read.
        let exe =
            std::fs::metadata(format!("/proc/{pid}/exe")).map_err(|e| refuse(&format!("/proc/{pid}/exe: {e}")))?;
        if (exe.dev(), exe.ino()) != self.exe {
            return Err(refuse(&format!("process {pid} is not this guardsh binary")));
        }
        let peer = self.facts(pid, &hello).map_err(|e| refuse(&e))?;
        let refuse_peer = |why: String, peer: Peer| Err((why, Some(Box::new(peer))));

        send(conn, &Answer::Seal).map_err(|e| refuse(&e.to_string()))?;
        let sealed: Sealed = match read(&mut reader) {
            Ok(s) => s,
            Err(e) => return refuse_peer(e, peer),
        };
        if !sealed.sealed {
            return refuse_peer("the shim could not seal itself".into(), peer);
        }
        if let Err(why) = self.still_sealed(pid, peer.start) {
            return refuse_peer(why, peer);
        }

        let eval = match pipeline::evaluate_captured(&self.paths, &peer.inv) {
            Ok(e) => e,
            Err(e) => return refuse_peer(format!("the policy is invalid: {e}"), peer),
        };
        match eval.verdict.action {
            Action::Allow => {}
            Action::Ask => {
                if let Err(why) = self.approved(pid, &peer.inv, hello.request.as_deref()) {
                    return refuse_peer(why, peer);
                }
            }
            Action::Deny => return refuse_peer(format!("the policy denies it: {}", eval.verdict.reason), peer),
        }
        let own = match crate::exec::FileId::current_exe() {
            Ok(id) => id,
            Err(e) => return refuse_peer(format!("cannot identify this guardsh binary: {e}"), peer),
        };
        let real = match crate::exec::resolve_real(&peer.inv.tool, self.path.as_deref(), own) {
            Ok(r) => r,
            Err(e) => return refuse_peer(format!("guardsh run cannot find the real {}: {e}", peer.inv.tool), peer),
        };
        if !eval.trust_user_installed_tools
            && let Err(why) = super::replaceable(&real, self.uid)
        {
            return refuse_peer(why, peer);
        }
        let fresh = match self.fresh_connection(conn, pid, peer.start) {
            Ok(c) => c,
            Err(why) => return refuse_peer(why, peer),
        };
        let values = self.vault.release(&eval.verdict.grants);
        Ok((peer, (values, real), fresh))
    }

    /// The peer is the same process (not a reused pid), nobody traces it, and it is sealed:
    /// nobody can start tracing it or read its memory (checked by trying to read its working
    /// directory, which a non-dumpable process's owner cannot; root can, so not for root).
    fn still_sealed(&self, pid: i32, start: u64) -> Result<(), String> {
        match procinfo::stat(pid) {
            Ok(s) if s.start == start => {}
            _ => return Err(format!("process {pid} ended or was replaced")),
        }
        match tracer(pid) {
            Ok(0) => {}
            Ok(t) => return Err(format!("process {pid} is being traced by process {t}")),
            Err(e) => return Err(format!("cannot read /proc/{pid}/status: {e}")),
        }
        if self.uid != 0 && std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok() {
            return Err(format!("process {pid} says it sealed itself, and has not"));
        }
        Ok(())
    }

    /// The values go over a connection the peer opens now, to a socket that did not exist
    /// before this exchange, and which must come from the peer's own pid. The first connection
    /// cannot carry them: it may have been opened before the peer exec'd guardsh and shared
    /// with another process (the race: connect, fork, exec guardsh; the child then holds the
    /// same connection and reads the answer). A connection opened after the peer became sealed
    /// guardsh can only be guardsh's.
    fn fresh_connection(&self, conn: &UnixStream, pid: i32, start: u64) -> Result<UnixStream, String> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = self.dir.join(format!("x-{}", crate::random::token(8).map_err(|e| e.to_string())?));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let _remove = RemoveDir(dir.clone());
        let path = dir.join("s");
        let listener = UnixListener::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        send(conn, &Answer::Connect { path: path.display().to_string() }).map_err(|e| e.to_string())?;
        let fresh = accept_within(&listener, PEER_TIMEOUT)?;
        let cred = nix::sys::socket::getsockopt(&fresh, nix::sys::socket::sockopt::PeerCredentials)
            .map_err(|e| format!("SO_PEERCRED: {e}"))?;
        if cred.pid() != pid || cred.uid() != self.uid {
            return Err(format!("the second connection came from process {}, not {pid}", cred.pid()));
        }
        self.still_sealed(pid, start)?;
        let _ = fresh.set_write_timeout(Some(PEER_TIMEOUT));
        Ok(fresh)
    }

    fn facts(&self, pid: i32, hello: &Hello) -> Result<Peer, String> {
        let start = procinfo::stat(pid).map_err(|e| e.to_string())?.start;
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
        let stdin = match &hello.stdin_hex {
            Some(hex) => Stdin::Captured(approval::request::unhex(hex).ok_or("the peer's stdin is not hex")?),
            None => Stdin::Unknown,
        };
        let tool = PathBuf::from(&argv0).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Peer { start, inv: Invocation { tool, argv0, args: argv.collect(), vars, cwd, stdin } })
    }

    /// The rule asks: the peer must be the process that used an approval of exactly this command.
    fn approved(&self, pid: i32, inv: &Invocation, request: Option<&str>) -> Result<(), String> {
        let id = request.ok_or("the command needs an approval, and the shim holds none")?;
        let store = approval::Store::open(&self.paths.requests_dir()).map_err(|e| e.to_string())?;
        let req = store.load(id).map_err(|e| e.to_string())?;
        let decision = store.decision(id).map_err(|e| e.to_string())?;
        if !decision.is_some_and(|d| d.outcome == Outcome::Approved && d.digest == req.digest) || !req.is_intact() {
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
        Ok(())
    }

    fn audit(
        &self,
        peer: Option<&Peer>,
        pid: Option<i32>,
        outcome: &str,
        reason: &str,
        names: &[String],
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
        let mut rec = pipeline::record(inv, None, outcome, reason);
        rec.pid = pid.and_then(|p| u32::try_from(p).ok()).unwrap_or(0);
        rec.ppid = std::process::id();
        rec.session = Some(self.session.clone());
        rec.decision = if outcome == "custody_released" { "allow" } else { "deny" }.into();
        rec.passed = names.to_vec();
        audit::append(&self.paths.audit_log(), &rec)
    }
}

/// NUL-terminated strings (argv, environ), empty ones included: `aws s3 "" ls` is not `aws s3 ls`.
fn split_nul(bytes: Vec<u8>) -> Vec<OsString> {
    let body = bytes.strip_suffix(&[0]).unwrap_or(&bytes);
    if body.is_empty() {
        return vec![];
    }
    body.split(|&b| b == 0).map(|w| OsString::from_vec(w.to_vec())).collect()
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One connection within `limit`, or an error.
fn accept_within(listener: &UnixListener, limit: Duration) -> Result<UnixStream, String> {
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((c, _)) => {
                c.set_nonblocking(false).map_err(|e| e.to_string())?;
                return Ok(c);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(format!("the peer did not connect again: {e}")),
        }
    }
}

/// The TracerPid of a process (0: not traced).
pub fn tracer(pid: i32) -> std::io::Result<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no TracerPid line"))
}

pub(super) fn send<T: serde::Serialize>(mut conn: &UnixStream, msg: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    conn.write_all(&line)
}

/// One JSON line, at most 64 MiB (piped SQL, hex).
pub(super) fn read<T: serde::de::DeserializeOwned>(reader: &mut impl BufRead) -> Result<T, String> {
    let mut line = Vec::new();
    let limit = (crate::pipeline::STDIN_LIMIT as u64) * 2 + 4096;
    std::io::Read::take(&mut *reader, limit)
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("reading from the peer: {e}"))?;
    serde_json::from_slice(&line).map_err(|e| format!("the peer's message is not valid: {e}"))
}

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
        let paths = Paths {
            system_dir: dir.path().join("etc"),
            config_dir: dir.path().join("config"),
            state_dir: dir.path().join("state"),
            data_dir: dir.path().join("data"),
        };
        let store = Store::open(&paths.requests_dir()).expect("store");
        let custodian = Custodian::new(Vault::default(), paths, "s".into(), dir.path().into()).expect("custodian");
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
        assert_eq!(custodian.approved(4242, &this, Some("aaaa1111")), Ok(()));
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
    }
}
