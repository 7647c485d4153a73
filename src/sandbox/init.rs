//! `guardsh sandbox-exec`: carries out a sandbox plan and starts the agent in it.
//!
//! A fresh process (exec'd by `guardsh run`, so it holds no copy of the credentials `guardsh
//! run` keeps in memory, as a forked child would). In order:
//! 1. new user, mount, PID and IPC namespaces; the uid and gid map to themselves;
//! 2. every bind source opened first (`O_PATH`), then the empty tmpfs mounts, then the binds from
//!    those descriptors (`/proc/self/fd/N`), the masks, the read-only spots, guardsh over every
//!    real binary of a guarded tool, the broker's socket directory;
//! 3. a child that is pid 1 of the new PID namespace mounts a fresh `/proc`, starts the agent and
//!    reaps whatever ends in the namespace; when the agent ends, so does everything in it;
//! 4. the agent's process: Landlock, seccomp, exec. It runs as the human's uid without
//!    capabilities (a non-root uid loses them at exec), so it cannot undo a mount.
//!
//! Every failure before the agent's exec ends with a message and exit status 71, and the agent
//! never starts.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use super::{BROKER_DIR, Plan};

/// Exit status when the sandbox could not be set up (EX_OSERR).
pub const SETUP_FAILED: u8 = 71;

/// The entry point of `guardsh sandbox-exec -- PROGRAM ARGS...`, the plan in `PLAN_VAR`.
pub fn run(command: &[OsString]) -> ExitCode {
    let fail = |e: String| {
        eprintln!("guardsh run: the sandbox could not be set up, so the agent was not started: {e}");
        ExitCode::from(SETUP_FAILED)
    };
    let plan_json = std::env::var(super::PLAN_VAR).unwrap_or_default();
    let plan: Plan = match serde_json::from_str(&plan_json) {
        Ok(p) => p,
        Err(e) => return fail(format!("the plan is not valid: {e}")),
    };
    let Some((program, args)) = command.split_first() else { return fail("no command to run".into()) };
    // If guardsh run dies, so does the sandbox (and with it the agent).
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if let Err(e) = enter_namespaces(&plan) {
        return fail(e);
    }
    if let Err(e) = build_view(&plan) {
        return fail(e);
    }
    match fork_init(&plan, program, args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(e),
    }
}

fn enter_namespaces(plan: &Plan) -> Result<(), String> {
    let flags =
        CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWIPC;
    unshare(flags).map_err(|e| format!("cannot create user, mount, PID and IPC namespaces: {e}"))?;
    // The uid and gid stay what they are (files keep their owners); supplementary groups cannot
    // be changed (setgroups must be denied before an unprivileged gid_map is written).
    std::fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("/proc/self/setgroups: {e}"))?;
    std::fs::write("/proc/self/uid_map", format!("{0} {0} 1", plan.uid)).map_err(|e| format!("uid_map: {e}"))?;
    std::fs::write("/proc/self/gid_map", format!("{0} {0} 1", plan.gid)).map_err(|e| format!("gid_map: {e}"))?;
    // Nothing mounted here reaches the human's namespace, and nothing mounted there later
    // reaches this one.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| format!("making / private: {e}"))
}

/// `path` opened without following it to anything but itself (a link is followed: a bind of a
/// link binds its target, which is what the plan names).
fn open_path(path: &Path) -> Result<OwnedFd, String> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_PATH | nix::libc::O_CLOEXEC)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Creates `dst` as an empty directory, or an empty file when `file`, with its parents, if it
/// is missing (inside a tmpfs of the sandbox's own).
fn mount_point(dst: &Path, file: bool) -> Result<(), String> {
    if std::fs::symlink_metadata(dst).is_ok() {
        return Ok(());
    }
    let parent = dst.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    if file {
        std::fs::File::create(dst).map(drop).map_err(|e| format!("{}: {e}", dst.display()))
    } else {
        std::fs::create_dir(dst).map_err(|e| format!("{}: {e}", dst.display()))
    }
}

fn bind(src: &Path, dst: &Path) -> Result<(), String> {
    mount(Some(src), dst, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .map_err(|e| format!("binding {} at {}: {e}", src.display(), dst.display()))
}

/// Remounts a bind read-only. The flags the kernel locked on the original mount (nosuid,
/// nodev, noexec, atime behaviour) must be kept, or an unprivileged remount is refused.
fn read_only(dst: &Path) -> Result<(), String> {
    use nix::sys::statvfs::{FsFlags, statvfs};
    let have = statvfs(dst).map_err(|e| format!("{}: {e}", dst.display()))?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        // ST_RELATIME by number: Linux's value, which musl's headers (the static build) lack.
        (FsFlags::from_bits_retain(4096), MsFlags::MS_RELATIME),
    ] {
        if have.contains(fs) {
            flags |= ms;
        }
    }
    mount(None::<&str>, dst, None::<&str>, flags, None::<&str>)
        .map_err(|e| format!("making {} read-only: {e}", dst.display()))
}

fn build_view(plan: &Plan) -> Result<(), String> {
    // Every source first: the tmpfs mounts below hide most of them.
    let sources: Vec<OwnedFd> = plan.binds.iter().map(|b| open_path(&b.src)).collect::<Result<_, _>>()?;
    let broker = open_path(&plan.broker_dir)?;
    let guardsh = open_path(&plan.guardsh)?;
    let null = open_path(Path::new("/dev/null"))?;
    let replacements: Vec<OwnedFd> = plan.replace.iter().map(|r| open_path(&r.src)).collect::<Result<_, _>>()?;
    let caches: Vec<Option<OwnedFd>> = plan.overlays.iter().map(|c| open_path(c).ok()).collect();

    for dir in &plan.tmpfs {
        // /var/run is usually a link to /run: mounting on it would mount on /run again.
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => continue,
            Ok(_) => {}
            Err(_) => mount_point(dir, false)?,
        }
        let mode = if dir == Path::new("/tmp") || dir == Path::new("/var/tmp") || dir == Path::new("/dev/shm") {
            "mode=1777"
        } else {
            "mode=0755"
        };
        mount(Some("tmpfs"), dir, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some(mode))
            .map_err(|e| format!("an empty {}: {e}", dir.display()))?;
    }
    for (b, fd) in plan.binds.iter().zip(&sources) {
        let is_file = std::fs::metadata(fd_path(fd)).is_ok_and(|m| !m.is_dir());
        mount_point(&b.dst, is_file)?;
        bind(&fd_path(fd), &b.dst)?;
        if !b.writable {
            read_only(&b.dst)?;
        }
    }
    overlays(plan, &caches)?;
    let dir = Path::new(BROKER_DIR);
    mount_point(dir, false)?;
    bind(&fd_path(&broker), dir)?;
    read_only(dir)?;
    for m in &plan.masks {
        bind(&fd_path(&null), m)?;
    }
    for p in &plan.pinned {
        bind(p, p)?;
    }
    for p in &plan.read_only {
        bind(p, p)?;
        read_only(p)?;
    }
    for (r, fd) in plan.replace.iter().zip(&replacements) {
        bind(&fd_path(fd), &r.dst)?;
        read_only(&r.dst)?;
    }
    for c in &plan.cover {
        bind(&fd_path(&guardsh), c)?;
        read_only(c)?;
    }
    login_profiles(plan)
}

/// The home inside is empty, so a login shell (Codex runs every command as `bash -lc`) reads only
/// /etc/profile, which sets PATH afresh: guarded tools would still reach guardsh (their real
/// binaries are covered), but tools installed outside the system's directories would not be
/// found at all. A profile of the sandbox's own puts the shims first again.
fn login_profiles(plan: &Plan) -> Result<(), String> {
    let Some(shims) = plan.shim_dir.to_str().filter(|s| !s.contains(['\'', '\n'])) else { return Ok(()) };
    let text = format!(
        "# Written by guardsh run for its sandbox: guarded tools' shims first, as for the agent.\nPATH='{shims}':\"$PATH\"; export PATH\n"
    );
    for name in [".profile", ".bash_profile", ".zprofile"] {
        let p = plan.home.join(name);
        if std::fs::symlink_metadata(&p).is_err() {
            std::fs::write(&p, &text).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// Each cache as an overlay: the real one underneath, read-only; what the agent writes on top,
/// in a tmpfs of the session's own. A cache that cannot be shown this way is not shown at all
/// (never read-write).
fn overlays(plan: &Plan, caches: &[Option<OwnedFd>]) -> Result<(), String> {
    if plan.overlays.is_empty() {
        return Ok(());
    }
    // Upper and work directories on one tmpfs, under the sandbox's own /run.
    let base = Path::new("/run/guardsh-overlays");
    mount_point(base, false)?;
    mount(Some("tmpfs"), base, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0700"))
        .map_err(|e| format!("a tmpfs for overlays: {e}"))?;
    for (n, (cache, fd)) in plan.overlays.iter().zip(caches).enumerate() {
        let Some(fd) = fd else { continue };
        let (upper, work) = (base.join(format!("{n}/upper")), base.join(format!("{n}/work")));
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        mount_point(cache, false)?;
        let options =
            format!("lowerdir={},upperdir={},workdir={}", fd_path(fd).display(), upper.display(), work.display());
        if mount(
            Some("overlay"),
            cache,
            Some("overlay"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some(options.as_str()),
        )
        .is_err()
        {
            // Not shown, then: the empty directory in the home's tmpfs stays.
            continue;
        }
    }
    Ok(())
}

/// Forks pid 1 of the new PID namespace, which starts the agent, and waits for it.
#[allow(unsafe_code)]
fn fork_init(plan: &Plan, program: &OsString, args: &[OsString]) -> Result<u8, String> {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    // This process's terminal signals are the agent's to act on, as they are guardsh run's.
    crate::exec::ignore_terminal_signals();
    // SAFETY: this process is single-threaded (a fresh exec that started no thread), so the
    // child may do anything the parent could.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            let code = init(plan, program, args);
            std::process::exit(i32::from(code));
        }
        ForkResult::Parent { child } => loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(u8::try_from(code).unwrap_or(1)),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128u8.saturating_add(sig as u8)),
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(format!("waiting for the sandbox: {e}")),
            }
        },
    }
}

/// Pid 1: a fresh /proc, the agent, and a reaper. Returns the agent's exit status.
#[allow(unsafe_code)]
fn init(plan: &Plan, program: &OsString, args: &[OsString]) -> u8 {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use nix::unistd::{ForkResult, fork};

    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    let report = |e: String| {
        eprintln!("guardsh run: the sandbox could not be set up, so the agent was not started: {e}");
        SETUP_FAILED
    };
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if let Err(e) = mount(Some("proc"), "/proc", Some("proc"), proc_flags, None::<&str>) {
        return report(format!("a fresh /proc: {e}"));
    }
    let mut signals = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGWINCH] {
        signals.add(s);
    }
    let old = match signals.thread_swap_mask(SigmaskHow::SIG_BLOCK) {
        Ok(old) => old,
        Err(e) => return report(format!("signal mask: {e}")),
    };
    // The agent's own terminal, when this session has one (`pty.rs`).
    let pty = match super::pty::open() {
        Ok(p) => p,
        Err(e) => return report(e),
    };
    // SAFETY: single-threaded, as above.
    let agent = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = old.thread_set_mask();
            if let Some(p) = &pty
                && let Err(e) = super::pty::attach(p)
            {
                std::process::exit(i32::from(report(e)));
            }
            drop(pty);
            let (e, code) = start_agent(plan, program, args);
            eprintln!("guardsh run: {e}");
            std::process::exit(i32::from(code));
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return report(format!("fork: {e}")),
    };
    let master = pty.map(|p| p.master);
    let Ok(sfd) = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) else {
        let _ = kill(agent, Signal::SIGKILL);
        return report("signalfd".into());
    };
    relay_and_reap(agent, master.as_ref(), &sfd)
}

/// Pid 1's loop: relays the agent's terminal (if it has one of its own) and reaps whatever
/// ends in the namespace; returns the agent's exit status once it has ended.
fn relay_and_reap(agent: nix::unistd::Pid, master: Option<&OwnedFd>, sfd: &nix::sys::signalfd::SignalFd) -> u8 {
    use std::os::fd::AsFd;

    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::{Signal, kill};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use nix::unistd::Pid;

    use super::pty;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let _raw = master.map(|m| {
        pty::forward_size(m);
        pty::Raw::enter()
    });
    let (mut from_human, mut from_agent) = (master.is_some(), master.is_some());
    let drain = |m: &OwnedFd| {
        // What the agent wrote last, before its terminal is gone.
        loop {
            let mut fds = [PollFd::new(m.as_fd(), PollFlags::POLLIN)];
            if !matches!(poll(&mut fds, PollTimeout::from(50u16)), Ok(n) if n > 0)
                || !pty::pump(m.as_fd(), stdout.as_fd())
            {
                break;
            }
        }
    };
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let (true, Some(m)) = (from_agent, master) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if let (true, Some(_)) = (from_human, master) {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(_) => {}
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().is_some_and(|r| !r.is_empty())).collect();
        drop(fds);
        let mut at = 1;
        if let (true, Some(m)) = (from_agent, master) {
            if ready.get(at) == Some(&true) {
                from_agent = pty::pump(m.as_fd(), stdout.as_fd());
            }
            at += 1;
        }
        if let (true, Some(m)) = (from_human, master)
            && ready.get(at) == Some(&true)
        {
            from_human = pty::pump(stdin.as_fd(), m.as_fd());
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0)) {
                Ok(Signal::SIGCHLD) => loop {
                    match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::Exited(pid, code)) if pid == agent => {
                            if let Some(m) = master {
                                drain(m);
                            }
                            return u8::try_from(code).unwrap_or(1);
                        }
                        Ok(WaitStatus::Signaled(pid, sig, _)) if pid == agent => {
                            if let Some(m) = master {
                                drain(m);
                            }
                            return 128u8.saturating_add(sig as u8);
                        }
                        Ok(WaitStatus::StillAlive) | Err(_) => break,
                        Ok(_) => {}
                    }
                },
                Ok(Signal::SIGWINCH) => {
                    if let Some(m) = master {
                        pty::forward_size(m);
                    }
                }
                // The terminal's Ctrl-C reaches the agent through its own terminal (raw mode
                // here), or directly when it has none (same process group).
                Ok(Signal::SIGINT | Signal::SIGQUIT) => {}
                Ok(sig) => {
                    let _ = kill(agent, sig);
                }
                Err(_) => {}
            }
        }
    }
}

/// The agent's process: Landlock, seccomp, exec. Returns only why it could not, and the exit
/// status that says so (127 and 126 as a shell has them for a missing or unrunnable command).
fn start_agent(plan: &Plan, program: &OsString, args: &[OsString]) -> (String, u8) {
    use std::os::unix::process::CommandExt;
    let setup =
        |e: String| (format!("the sandbox could not be set up, so the agent was not started: {e}"), SETUP_FAILED);
    if let Err(e) = std::env::set_current_dir(&plan.cwd) {
        return setup(format!("cannot enter {}: {e}", plan.cwd.display()));
    }
    if let Err(e) = super::landlock::restrict(plan) {
        return setup(e);
    }
    if let Err(e) = super::seccomp::install(plan.nested_user_namespaces) {
        return setup(e);
    }
    // Signals ignored by the sandbox's own processes must not stay ignored for the agent.
    restore_terminal_signals();
    let e = std::process::Command::new(program).args(args).env_remove(super::PLAN_VAR).exec();
    if e.kind() == std::io::ErrorKind::NotFound {
        let hint = "not found inside the sandbox; if it is installed somewhere the sandbox does not show (under your home, say), add that directory to [sandbox] readable in your policy";
        return (format!("cannot start {}: {hint}", crate::display::shell_quote(program)), crate::exit::NOT_FOUND);
    }
    (format!("cannot start {}: {e}", crate::display::shell_quote(program)), crate::exit::CANNOT_EXEC)
}

#[allow(unsafe_code)]
fn restore_terminal_signals() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGPIPE] {
        // SAFETY: SIG_DFL runs no handler code; this process execs next.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
}
