//! The custody socket's wire, for both sides: a peer's first line with the descriptors sent
//! along, JSON lines, the sealed SQL copy, a process's tracer, and relaying a started tool's
//! signals and exit status.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Answer, Forward, Hello};
use crate::pipeline;

/// How long a peer may take to say what it wants.
pub(super) const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// The SQL on a sealed copy the shim passed as its stdin, read without moving its offset (the
/// tool reads it from the start).
pub(super) fn read_captured(fd: &OwnedFd) -> Result<Vec<u8>, String> {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    // Only a sealed copy cannot change between this read and the tool's: the agent could pass
    // any file and rewrite it after the decision.
    let all = SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
    let seals = fcntl(fd, FcntlArg::F_GET_SEALS).map_err(|_| "the piped input is not a sealed copy".to_string())?;
    if !SealFlag::from_bits_truncate(seals).contains(all) {
        return Err("the piped input is not a sealed copy".into());
    }
    let file = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?);
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    if len > pipeline::STDIN_LIMIT as u64 {
        return Err("the piped input is larger than guardsh reads".into());
    }
    let mut bytes = vec![0; usize::try_from(len).map_err(|e| e.to_string())?];
    file.read_exact_at(&mut bytes, 0).map_err(|e| format!("reading the piped input: {e}"))?;
    Ok(bytes)
}

/// The first line, and the descriptors sent with it.
pub(super) fn receive_hello(conn: &UnixStream) -> Result<(Hello, Vec<OwnedFd>), String> {
    let (line, fds, _) = receive_line(conn, 8 << 20, Some(PEER_TIMEOUT))?;
    let hello = serde_json::from_slice(&line).map_err(|e| format!("the peer's message is not valid: {e}"))?;
    Ok((hello, fds))
}

/// The shim's side: guardsh run's first answer, the descriptors sent with it (the real binary,
/// for `RunInside`), and whatever arrived after it (the tool may have ended already).
pub(super) fn receive_answer(conn: &UnixStream) -> Result<(Answer, Vec<OwnedFd>, Vec<u8>), String> {
    let (line, fds, rest) = receive_line(conn, 64 << 10, None)?;
    let answer = serde_json::from_slice(&line).map_err(|e| format!("guardsh run's message is not valid: {e}"))?;
    Ok((answer, fds, rest))
}

/// A line, the descriptors that came with it, and the bytes after it.
type Line = (Vec<u8>, Vec<OwnedFd>, Vec<u8>);

/// One line (without its newline) read with recvmsg, so that descriptors sent with it arrive;
/// at most `limit` bytes, all of it within `timeout` if given (a peer sending a byte at a time
/// must not hold a place for ever). Bytes after the line are returned apart.
#[allow(unsafe_code)]
fn receive_line(conn: &UnixStream, limit: usize, timeout: Option<Duration>) -> Result<Line, String> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    let mut buf = Vec::new();
    let mut fds = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    while !buf.contains(&b'\n') {
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err("the peer's message is too long or too slow".into());
            }
            conn.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        }
        if buf.len() > limit {
            return Err("the peer's message is too long or too slow".into());
        }
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
        let mut iov = [std::io::IoSliceMut::new(&mut chunk)];
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC).map_err(
            |e| match e {
                nix::Error::EAGAIN => "the peer's message is too long or too slow".to_string(),
                e => format!("reading from the peer: {e}"),
            },
        )?;
        for c in msg.cmsgs().map_err(|e| format!("reading from the peer: {e}"))? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for fd in raw {
                    // SAFETY: the kernel just installed these descriptors in this process for
                    // this message; nothing else owns them.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        let n = msg.bytes;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let rest = buf.get(end + 1..).map(<[u8]>::to_vec).unwrap_or_default();
    buf.truncate(end);
    Ok((buf, fds, rest))
}

/// A JSON line with one descriptor attached.
pub(super) fn send_with_fd<T: serde::Serialize>(
    conn: &UnixStream,
    msg: &T,
    fd: std::os::fd::RawFd,
) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let iov = [std::io::IoSlice::new(&line)];
    let sent = sendmsg::<()>(conn.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&[fd])], MsgFlags::empty(), None)?;
    if sent != line.len() {
        (&*conn).write_all(&line[sent..])?;
    }
    Ok(())
}

/// While the tool runs: signals the shim forwards go to the tool, and if the shim goes away (it
/// was killed) the tool is ended too. Then `ended` runs (a minted credential is revoked), and
/// only then is the shim told how the tool ended: when the agent learns the tool is done, its
/// credential is gone.
pub(super) fn relay(conn: UnixStream, mut child: std::process::Child, ended: impl FnOnce()) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let pid = Pid::from_raw(child.id() as i32);
    // `None` once the tool is reaped: its pid may then be anyone's.
    let running = Arc::new(Mutex::new(Some(pid)));
    if let Ok(reader) = conn.try_clone() {
        let running = Arc::clone(&running);
        let _ = reader.set_read_timeout(None);
        std::thread::spawn(move || {
            let signal_tool = |sig: Signal| {
                if let Ok(guard) = running.lock()
                    && let Some(pid) = *guard
                {
                    let _ = kill(pid, sig);
                }
            };
            let mut reader = BufReader::new(reader);
            loop {
                // Lines of at most 256 bytes: a shim forwards small messages, nothing else.
                let mut line = Vec::new();
                match std::io::Read::take(&mut reader, 256).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if !line.ends_with(b"\n") => break,
                    Ok(_) => {}
                }
                if let Ok(f) = serde_json::from_slice::<Forward>(&line)
                    && let Ok(sig) = Signal::try_from(f.signal)
                {
                    signal_tool(sig);
                }
            }
            signal_tool(Signal::SIGTERM);
        });
    }
    // Wait without reaping, mark the pid as no longer ours to signal, then reap.
    let _ = nix::sys::wait::waitid(
        nix::sys::wait::Id::Pid(pid),
        nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT,
    );
    if let Ok(mut guard) = running.lock() {
        *guard = None;
    }
    // Whatever the tool left running in its process group ends with it (killed while the tool,
    // not yet reaped, still holds the group's id, so it cannot be anyone else's).
    let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
    let status = child.wait();
    ended();
    let (code, signal) = match status {
        Ok(s) => (s.code(), s.signal()),
        Err(_) => (None, Some(nix::libc::SIGKILL)),
    };
    let _ = conn.set_write_timeout(Some(PEER_TIMEOUT));
    let _ = send(&conn, &Answer::Exited { code, signal });
    // The forwarding thread holds a copy of the connection: shutting it down ends that thread,
    // and tells the peer there is nothing more.
    let _ = conn.shutdown(std::net::Shutdown::Both);
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
