//! The agent's own pseudo-terminal, relayed to the human's. When `guardsh run` starts on a
//! terminal, the agent gets a new one as its controlling terminal and never holds a descriptor of
//! the human's: whatever it does to its terminal (TIOCSTI, which seccomp refuses anyway, mode
//! changes, reading input meant for something else) stays inside it. Pid 1 of the sandbox,
//! outside the agent's Landlock domain, relays bytes both ways and forwards window sizes; the
//! human's terminal is in raw mode meanwhile, so its keys (Ctrl-C included) reach the agent's
//! terminal as bytes and become signals there.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::termios::{self, SetArg, Termios};

/// The pair, when standard input is a terminal.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

#[allow(unsafe_code)]
fn stdin() -> BorrowedFd<'static> {
    // SAFETY: descriptor 0 is open for the life of the process (start-up makes sure 0-2 are),
    // and nothing here closes it.
    unsafe { BorrowedFd::borrow_raw(0) }
}

/// A new pseudo-terminal sized like the human's, or None when stdin is not a terminal.
pub fn open() -> Result<Option<Pty>, String> {
    if !nix::unistd::isatty(stdin()).unwrap_or(false) {
        return Ok(None);
    }
    let size = window_size(stdin());
    let pair = nix::pty::openpty(size.as_ref(), None).map_err(|e| format!("a terminal for the agent: {e}"))?;
    Ok(Some(Pty { master: pair.master, slave: pair.slave }))
}

#[allow(unsafe_code)]
fn window_size(fd: BorrowedFd<'_>) -> Option<nix::pty::Winsize> {
    let mut ws = nix::pty::Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we pass, which lives for the call.
    let r = unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some(ws)
}

/// Copies the human's window size to the agent's terminal (on start and on SIGWINCH).
#[allow(unsafe_code)]
pub fn forward_size(master: &OwnedFd) {
    if let Some(ws) = window_size(stdin()) {
        // SAFETY: TIOCSWINSZ reads one winsize from the struct we pass.
        let _ = unsafe { nix::libc::ioctl(master.as_raw_fd(), nix::libc::TIOCSWINSZ, &ws) };
    }
}

/// In the agent's process before exec: a session of its own with the new terminal as its
/// controlling terminal, on descriptors 0-2.
#[allow(unsafe_code)]
pub fn attach(pty: &Pty) -> Result<(), String> {
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // SAFETY: TIOCSCTTY takes an integer argument; the descriptor is open.
    if unsafe { nix::libc::ioctl(pty.slave.as_raw_fd(), nix::libc::TIOCSCTTY, 0) } != 0 {
        return Err(format!("a controlling terminal: {}", std::io::Error::last_os_error()));
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto 0-2 replaces those descriptors with the new terminal; both are ours.
        if unsafe { nix::libc::dup2(pty.slave.as_raw_fd(), target) } < 0 {
            return Err(format!("dup2: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The human's terminal in raw mode until dropped (then as it was).
pub struct Raw(Option<Termios>);

impl Raw {
    pub fn enter() -> Self {
        let Ok(saved) = termios::tcgetattr(stdin()) else { return Raw(None) };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin(), SetArg::TCSANOW, &raw);
        Raw(Some(saved))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(stdin(), SetArg::TCSADRAIN, saved);
        }
    }
}

/// Saved terminal mode for `guardsh run` to restore after the sandbox ends, whatever happened
/// to pid 1 (killed, the terminal left raw).
pub fn saved_mode() -> Option<Termios> {
    termios::tcgetattr(stdin()).ok()
}

pub fn restore_mode(saved: &Termios) {
    let _ = termios::tcsetattr(stdin(), SetArg::TCSADRAIN, saved);
}

/// Moves what is readable on `from` to `to`. Returns false when `from` has ended.
pub fn pump(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> bool {
    let mut buf = [0u8; 8192];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                match nix::unistd::write(to, rest) {
                    Ok(w) => rest = &rest[w..],
                    Err(nix::Error::EINTR) => {}
                    Err(_) => return true,
                }
            }
            true
        }
        Err(nix::Error::EINTR | nix::Error::EAGAIN) => true,
        // EIO on the master: every process holding the agent's terminal has closed it.
        Err(_) => false,
    }
}
