//! Blocks until a request is decided, times out, or the requester is interrupted (or, for the
//! broker, the shim that asked has gone), and wakes within milliseconds of the decision: inotify
//! on the store directory and a signalfd for SIGINT/SIGTERM/SIGHUP or the shim's connection, in
//! one poll(2).

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::store::{Decision, Store, StoreError};

#[derive(Debug)]
pub enum Waited {
    Decided(Decision),
    TimedOut,
    Interrupted(Signal),
    /// The broker's shim closed its connection: nobody waits any more.
    PeerGone,
}

#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("cannot wait for the approval: {0}")]
    Os(#[from] nix::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Restores the signal mask when dropped, so that signals blocked for the signalfd are delivered
/// normally again (before exec, and on every other way out).
struct MaskGuard(SigSet);

impl Drop for MaskGuard {
    fn drop(&mut self) {
        let _ = self.0.thread_set_mask();
    }
}

/// Waits for a decision on `id` until `deadline`.
///
/// (Measured by `benches/approve_latency.rs`: about 1 ms from a decision landing to the real tool
/// having run, with a tail of 10-25 ms in some rounds, which is the kernel retiring the inotify
/// watch when the descriptor is closed. Leaving the descriptor to close-on-exec does not avoid it.)
pub fn wait(store: &Store, id: &str, deadline: Instant) -> Result<Waited, WaitError> {
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    // Blocked signals queue up for the signalfd instead of killing us, so an interrupted wait
    // can withdraw its request before exiting.
    let _restore = MaskGuard(signals.thread_swap_mask(SigmaskHow::SIG_BLOCK)?);
    let sfd = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    wait_on(store, id, deadline, Ended::Signals(&sfd))
}

/// Waits for a decision on `id` until `deadline`, or until `peer` (the connection of the shim
/// that asked, which sends nothing while it waits) is closed: the broker's wait, in a thread
/// that must not touch the process's signals.
pub fn wait_for_peer(store: &Store, id: &str, deadline: Instant, peer: BorrowedFd<'_>) -> Result<Waited, WaitError> {
    wait_on(store, id, deadline, Ended::Peer(peer))
}

/// What else ends a wait besides a decision and the deadline.
enum Ended<'a> {
    Signals(&'a SignalFd),
    Peer(BorrowedFd<'a>),
}

fn wait_on(store: &Store, id: &str, deadline: Instant, other: Ended<'_>) -> Result<Waited, WaitError> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
    // IN_CLOSE_WRITE as well as creation: guardsh publishes decisions complete (link(2)), but a
    // file written in place by anything else is only readable once it is closed.
    inotify.add_watch(
        store.dir(),
        AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE,
    )?;
    loop {
        // Checked after the watch is in place: a decision landing between the two is seen by
        // one or the other.
        match store.decision(id) {
            Ok(Some(d)) => return Ok(Waited::Decided(d)),
            Ok(None) => {}
            // A decision file that does not parse (half written by something else, or damaged)
            // is not a decision; keep waiting.
            Err(StoreError::Corrupt { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Waited::TimedOut);
        }
        let timeout = PollTimeout::try_from(left.max(Duration::from_millis(1))).unwrap_or(PollTimeout::MAX);
        let second = match &other {
            Ended::Signals(sfd) => sfd.as_fd(),
            Ended::Peer(fd) => *fd,
        };
        let mut fds = [PollFd::new(inotify.as_fd(), PollFlags::POLLIN), PollFd::new(second, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        match &other {
            Ended::Signals(sfd) => {
                if let Some(info) = sfd.read_signal()?
                    && let Ok(sig) = Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0))
                {
                    return Ok(Waited::Interrupted(sig));
                }
            }
            // The shim sends nothing while it waits: anything readable is its end (or a peer
            // breaking the protocol, which ends the wait the same way).
            Ended::Peer(_) => {
                if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                    return Ok(Waited::PeerGone);
                }
            }
        }
        // Drain the events; the loop re-reads the store either way.
        let _ = inotify.read_events();
    }
}
