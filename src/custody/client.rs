//! The shim's side of custody: hands its command to `guardsh run`, which starts the real tool
//! with the credentials it holds for it, then relays signals to the tool and ends as it ends.

use std::io::BufReader;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::wire::{read, send, tracer};
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
    let hello = Hello { version: VERSION, request: request.map(str::to_string), stdin_captured };
    send_with_stdio(&conn, &hello).map_err(|e| format!("talking to guardsh run: {e}"))?;
    let mut reader = BufReader::new(&conn);
    match read::<Answer>(&mut reader)? {
        Answer::Started => {}
        Answer::Unneeded => return Ok(Custodied::Unneeded),
        Answer::Refuse { reason } => return Err(reason),
        Answer::Exited { .. } => return Err("guardsh run answered out of turn".into()),
    }
    // The tool runs. From here on every way out reports how it ended, never an error that would
    // let the caller run the command a second time.
    let _ = conn.set_read_timeout(None);
    Ok(Custodied::Ran(relay(&conn, &mut reader)))
}

/// The Hello line, with descriptors 0, 1 and 2 attached.
fn send_with_stdio(conn: &UnixStream, hello: &Hello) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let mut line = serde_json::to_vec(hello).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let fds = [0, 1, 2];
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
/// guardsh run goes away first, the tool ended with it (it ends the tools it started).
fn relay(conn: &UnixStream, reader: &mut BufReader<&UnixStream>) -> Ended {
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        signals.add(s);
    }
    let gone = Ended::Signal(nix::libc::SIGKILL);
    let Ok(old) = signals.thread_swap_mask(SigmaskHow::SIG_BLOCK) else { return gone };
    let _restore = Restore(old);
    let Ok(sfd) = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else { return gone };
    loop {
        // A whole line may already be buffered; poll only when nothing is.
        if reader.buffer().is_empty() {
            let mut fds = [PollFd::new(conn.as_fd(), PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(_) => return gone,
            }
            if let Ok(Some(info)) = sfd.read_signal() {
                let _ = send(conn, &Forward { signal: i32::try_from(info.ssi_signo).unwrap_or(0) });
                continue;
            }
            let readable = fds[0].revents().is_some_and(|r| !r.is_empty());
            if !readable {
                continue;
            }
        }
        return match read::<Answer>(reader) {
            Ok(Answer::Exited { code: Some(code), .. }) => Ended::Code(code),
            Ok(Answer::Exited { signal: Some(sig), .. }) => Ended::Signal(sig),
            _ => gone,
        };
    }
}

/// Restores the signal mask when dropped.
struct Restore(SigSet);

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = self.0.thread_set_mask();
    }
}
