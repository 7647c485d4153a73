//! The shim's side of custody: hands its command to `guardsh run`, which starts the real tool
//! with the credentials it holds for it, then relays signals to the tool and ends as it ends.
//! Inside the sandbox (`propose`) the shim is only this: it hands over the whole command and
//! never runs a tool itself.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::wire::{receive_answer, send, tracer};
use super::{Answer, Forward, Hello, VERSION};

/// How the tool guardsh run started ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Code(i32),
    Signal(i32),
}

/// What came of asking guardsh run.
#[derive(Debug)]
pub enum Custodied {
    /// guardsh run holds nothing this command is granted: run it as usual.
    Unneeded,
    /// guardsh run ran it; this is how it ended.
    Ran(Ended),
    /// guardsh run denied it, for this reason: it must not run at all.
    Denied(String),
}

/// Asks guardsh run to run this process's command with what it holds for it. `request` is the
/// approval this shim used; `stdin_captured`, that descriptor 0 is the sealed copy of piped SQL.
/// `Err` is why guardsh run refused (or could not be asked); the command has not run.
pub fn run(socket: &Path, request: Option<&str>, stdin_captured: bool) -> Result<Custodied, String> {
    let me = i32::try_from(std::process::id()).map_err(|e| e.to_string())?;
    match tracer(me) {
        Ok(0) => {}
        Ok(pid) => return Err(format!("this guardsh is being traced by process {pid}")),
        Err(e) => return Err(format!("cannot tell whether this guardsh is traced: {e}")),
    }
    let conn =
        UnixStream::connect(socket).map_err(|e| format!("cannot reach guardsh run at {}: {e}", socket.display()))?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let hello = Hello { version: VERSION, request: request.map(str::to_string), stdin_captured, proposal: None };
    send_with_stdio(&conn, &hello, None).map_err(|e| format!("talking to guardsh run: {e}"))?;
    let (answer, _, rest) = receive_answer(&conn)?;
    match answer {
        Answer::Started => {}
        Answer::Unneeded => return Ok(Custodied::Unneeded),
        Answer::Refuse { reason } => return Err(reason),
        Answer::Deny { reason } => return Ok(Custodied::Denied(reason)),
        Answer::Exited { .. } | Answer::RunInside => return Err("guardsh run answered out of turn".into()),
    }
    // The tool runs. From here on every way out reports how it ended, never an error that would
    // let the caller run the command a second time.
    let _ = conn.set_read_timeout(None);
    Ok(Custodied::Ran(relay(&conn, rest)))
}

/// Inside the sandbox: proposes this process's command (argv, working directory, environment,
/// descriptors 0-2) to guardsh run at `socket`, which decides, records, asks a human if the
/// policy says so, and runs the real tool outside the sandbox on these descriptors. Returns how
/// that ended (or guardsh run's refusal, already explained on stderr by guardsh run). `argv` is
/// this process's own, argv[0] included.
pub fn propose(socket: &Path, argv: &[OsString]) -> Ended {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let unreachable = |why: String| {
        eprintln!(
            "guardsh: {}; the command was not run. guardsh run, which decides for this sandbox, may have ended: the human needs to restart the session",
            crate::display::escape_text(&why)
        );
        Ended::Code(i32::from(crate::exit::CANNOT_EXEC))
    };
    let cwd = std::env::current_dir().map(|d| d.into_os_string().into_vec()).unwrap_or_default();
    let proposal = super::Proposal {
        argv: argv.iter().map(|a| a.clone().into_vec()).collect(),
        cwd,
        env: std::env::vars_os().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect(),
    };
    // The directory itself, not its name: guardsh run starts the tool in exactly this one.
    let dir = match std::fs::File::open(".") {
        Ok(d) => d,
        Err(e) => return unreachable(format!("cannot open the working directory: {e}")),
    };
    let conn = match UnixStream::connect(socket) {
        Ok(c) => c,
        Err(e) => return unreachable(format!("cannot reach guardsh run at {}: {e}", socket.display())),
    };
    let hello = Hello { version: VERSION, request: None, stdin_captured: false, proposal: Some(proposal) };
    if let Err(e) = send_with_stdio(&conn, &hello, Some(dir.as_raw_fd())) {
        return unreachable(format!("talking to guardsh run: {e}"));
    }
    drop(dir);
    // No time limit: guardsh run may be waiting for a human. Until the tool starts, a signal
    // ends this process as usual, and guardsh run withdraws what it was waiting for.
    match receive_answer(&conn) {
        Ok((Answer::Started, _, rest)) => relay(&conn, rest),
        Ok((Answer::RunInside, fds, _)) => match fds.into_iter().next() {
            Some(real) => unreachable(run_inside(&real, argv)),
            None => unreachable("guardsh run sent no binary to run".into()),
        },
        Ok((Answer::Exited { code: Some(code), .. }, _, _)) => Ended::Code(code),
        Ok((Answer::Exited { signal: Some(sig), .. }, _, _)) => Ended::Signal(sig),
        Ok((Answer::Refuse { reason } | Answer::Deny { reason }, _, _)) => {
            eprintln!("guardsh: {}", crate::display::escape_text(&reason));
            Ended::Code(i32::from(crate::exit::DENIED))
        }
        Ok(_) => unreachable("guardsh run answered out of turn".into()),
        Err(e) => unreachable(e),
    }
}

/// Becomes the tool guardsh run decided on, inside the sandbox: the real binary it sent (a
/// descriptor: the binary's path is covered by guardsh here), this process's own argv and
/// environment, argv[0] the tool's name. Returns only why it could not.
fn run_inside(real: &std::os::fd::OwnedFd, args: &[OsString]) -> String {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let tool = args.first().and_then(|a| Path::new(a).file_name().map(|n| n.as_bytes().to_vec())).unwrap_or_default();
    let argv: Result<Vec<CString>, _> =
        std::iter::once(tool).chain(args.iter().skip(1).map(|a| a.as_bytes().to_vec())).map(CString::new).collect();
    let env: Result<Vec<CString>, _> = std::env::vars_os()
        .filter(|(k, _)| k != crate::sandbox::BROKER_VAR)
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .collect();
    let (Ok(argv), Ok(env)) = (argv, env) else { return "an argument holds a NUL byte".into() };
    // A script's interpreter opens it as /dev/fd/N: the descriptor must survive the exec.
    let _ = nix::fcntl::fcntl(real, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()));
    crate::exec::restore_sigpipe();
    match nix::unistd::fexecve(real, &argv, &env) {
        Ok(never) => match never {},
        Err(e) => format!("cannot run the real tool inside the sandbox: {e}"),
    }
}

/// The Hello line, with descriptors 0, 1 and 2 (and the working directory) attached.
fn send_with_stdio(conn: &UnixStream, hello: &Hello, cwd: Option<std::os::fd::RawFd>) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let mut line = serde_json::to_vec(hello).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut fds = vec![0, 1, 2];
    fds.extend(cwd);
    let iov = [std::io::IoSlice::new(&line)];
    let sent = sendmsg::<()>(conn.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)?;
    if sent != line.len() {
        // A short write of a few hundred bytes on a fresh Unix socket does not happen; if it
        // did, the rest goes as plain bytes.
        std::io::Write::write_all(&mut &*conn, &line[sent..])?;
    }
    Ok(())
}

/// Forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to the tool until guardsh run says it ended. If
/// guardsh run goes away first, the tool ended with it (it ends the tools it started). `buf`
/// holds what already arrived after the answer that started the tool.
fn relay(conn: &UnixStream, mut buf: Vec<u8>) -> Ended {
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        signals.add(s);
    }
    let gone = Ended::Signal(nix::libc::SIGKILL);
    let Ok(old) = signals.thread_swap_mask(SigmaskHow::SIG_BLOCK) else { return gone };
    let _restore = Restore(old);
    let Ok(sfd) = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else { return gone };
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            return match serde_json::from_slice::<Answer>(&buf[..end]) {
                Ok(Answer::Exited { code: Some(code), .. }) => Ended::Code(code),
                Ok(Answer::Exited { signal: Some(sig), .. }) => Ended::Signal(sig),
                _ => gone,
            };
        }
        if buf.len() > 64 << 10 {
            return gone;
        }
        let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(_) => return gone,
        }
        if let Ok(Some(info)) = sfd.read_signal() {
            let _ = send(conn, &Forward { signal: i32::try_from(info.ssi_signo).unwrap_or(0) });
            continue;
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            match std::io::Read::read(&mut &*conn, &mut chunk) {
                Ok(0) | Err(_) => return gone,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Restores the signal mask when dropped.
struct Restore(SigSet);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = self.0.thread_set_mask();
    }
}
