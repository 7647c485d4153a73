//! The approving human's side: the facts `checks` needs about this process, and the terminal the
//! answer is read from. Answers come from /dev/tty, never from stdin, which an agent can feed.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};

use super::checks::ApproverFacts;
use super::procinfo;
use crate::pipeline::SESSION_VAR;

/// Gathers the facts about this process. `terminal` is whether /dev/tty could be opened.
pub fn facts(terminal: bool) -> ApproverFacts {
    let me = std::process::id() as i32;
    let ancestry = procinfo::ancestry(me);
    let own = procinfo::stat(me).ok();
    // The variable as this process sees it, and as every ancestor was started with it: an agent
    // can unset its own copy, not the one its ancestors were started with.
    let in_session = std::env::var_os(SESSION_VAR).is_some_and(|v| !v.is_empty())
        || ancestry.iter().any(|p| procinfo::started_with_var(p.pid, SESSION_VAR));
    ApproverFacts {
        uid: nix::unistd::getuid().as_raw(),
        sid: own.as_ref().map_or(-1, |s| s.sid),
        has_terminal: terminal,
        tty: own.and_then(|s| procinfo::tty_name(s.tty_nr)),
        ancestry,
        in_guardsh_session: in_session,
    }
}

/// The controlling terminal, opened for reading and writing.
#[derive(Debug)]
pub struct Terminal {
    file: File,
    reader: BufReader<File>,
}

impl Terminal {
    /// Opens /dev/tty and makes it this process's stdin as well, so that any library reading
    /// "stdin" (dialoguer does) reads the terminal and nothing an agent piped in.
    pub fn open() -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
        nix::unistd::dup2_stdin(&file).map_err(io::Error::from)?;
        let reader = BufReader::new(file.try_clone()?);
        Ok(Self { file, reader })
    }

    pub fn say(&mut self, text: &str) -> io::Result<()> {
        self.file.write_all(text.as_bytes())?;
        self.file.flush()
    }

    /// Reads one line typed at the terminal, without its newline.
    pub fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the terminal closed"));
        }
        Ok(line.trim_end_matches(['\n', '\r']).to_string())
    }

    /// A line from the terminal, or `None` once `gone` says there is nothing left to answer
    /// (asked every `every` while nothing is typed): a request withdrawn while its prompt is on
    /// screen goes away without a key press.
    pub fn read_line_unless(
        &mut self,
        every: std::time::Duration,
        mut gone: impl FnMut() -> bool,
    ) -> io::Result<Option<String>> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let timeout = PollTimeout::try_from(every).unwrap_or(PollTimeout::MAX);
        // Typed ahead and already buffered: no need to wait for the device.
        while self.reader.buffer().is_empty() {
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(0) => {
                    if gone() {
                        return Ok(None);
                    }
                }
                // Readable (a canonical-mode terminal: a whole line), closed or in error: the
                // read says which.
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        self.read_line().map(Some)
    }

    /// A dialoguer terminal on the same device.
    pub fn term(&self) -> io::Result<dialoguer::console::Term> {
        Ok(dialoguer::console::Term::read_write_pair(self.file.try_clone()?, self.file.try_clone()?))
    }
}
