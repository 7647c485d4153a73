//! Finds the real tool behind a shim and replaces this process with it.
//!
//! This and `shims.rs` are the only places guardsh runs another program's code. The search skips
//! relative PATH entries (a repository an agent controls could plant `./kubectl`) and anything
//! that is guardsh itself, and a depth counter in the environment stops a loop of shims that
//! could still reach one another (a copied binary, say).

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Environment variable counting how many guardsh hops led here.
pub const DEPTH_VAR: &str = "GUARDSH_DEPTH";
/// A legitimate chain (a tool calling another guarded tool) is short; a loop is not.
pub const MAX_DEPTH: u32 = 8;

/// Identity of a file, to recognise guardsh however it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub fn of(path: &Path) -> io::Result<Self> {
        let m = fs::metadata(path)?;
        Ok(Self { dev: m.dev(), ino: m.ino() })
    }

    /// The running guardsh binary.
    pub fn current_exe() -> io::Result<Self> {
        Self::of(&std::env::current_exe()?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(
        "the real {tool} was not found on PATH outside guardsh's shims; install {tool}, or put its directory on PATH after the shim directory"
    )]
    NotFound { tool: String },
    #[error(
        "{tool} leads back to guardsh ({depth} hops): another copy of guardsh stands where the real {tool} should be; run `guardsh doctor`"
    )]
    Recursion { tool: String, depth: u32 },
    #[error("could not run {path}: {source}")]
    Exec { path: PathBuf, source: io::Error },
}

/// Reads the hop counter. A value that does not parse counts as too deep: it can only come from
/// someone tampering, and refusing is the safe reading.
pub fn depth(value: Option<&OsStr>) -> u32 {
    match value {
        None => 0,
        Some(v) => v.to_str().and_then(|s| s.parse().ok()).unwrap_or(u32::MAX),
    }
}

fn is_executable_file(path: &Path) -> Option<fs::Metadata> {
    let m = fs::metadata(path).ok()?;
    (m.is_file() && m.permissions().mode() & 0o111 != 0).then_some(m)
}

/// The first `tool` on `path_var` that is an absolute, executable, regular file and not guardsh.
pub fn resolve_real(tool: &str, path_var: Option<&OsStr>, guardsh: FileId) -> Result<PathBuf, ExecError> {
    let not_found = || ExecError::NotFound { tool: tool.to_string() };
    let path_var = path_var.ok_or_else(not_found)?;
    std::env::split_paths(path_var)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(tool))
        .find(|candidate| {
            is_executable_file(candidate).is_some_and(|m| FileId { dev: m.dev(), ino: m.ino() } != guardsh)
        })
        .ok_or_else(not_found)
}

/// Replaces this process with `real`, giving it the exact original argv and `env`. Returns only
/// if the exec failed.
pub fn exec(real: &Path, argv0: &OsStr, args: &[OsString], env: &[(OsString, OsString)]) -> ExecError {
    restore_sigpipe();
    // The absolute path, never the bare name: a name would be looked up on PATH again and could
    // land back on a shim.
    let source = Command::new(real).arg0(argv0).args(args).env_clear().envs(env.iter().map(|(k, v)| (k, v))).exec();
    ExecError::Exec { path: real.to_path_buf(), source }
}

/// Makes `bytes` this process's standard input, as a sealed in-memory file: what the tool reads
/// is exactly what guardsh read and decided on, and nothing can change it afterwards.
pub fn stdin_from(bytes: &[u8]) -> io::Result<()> {
    let file = sealed_copy(bytes)?;
    // dup2 onto fd 0 clears close-on-exec for the copy, so the tool inherits it.
    nix::unistd::dup2_stdin(&file)?;
    Ok(())
}

/// `bytes` in a new in-memory file (close-on-exec), sealed against every change, positioned at
/// its start.
pub fn sealed_copy(bytes: &[u8]) -> io::Result<fs::File> {
    use std::io::{Seek, SeekFrom, Write};

    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};

    let fd = memfd_create(c"guardsh-stdin", MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)?;
    let mut file = fs::File::from(fd);
    file.write_all(bytes)?;
    let seals = SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
    fcntl(&file, FcntlArg::F_ADD_SEALS(seals))?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// Rust's runtime ignores SIGPIPE, and an ignored disposition survives exec. The real tool must
/// start with the default, or `kubectl get pods | head` would see EPIPE errors instead of quietly
/// ending as it does without guardsh. guardsh's own commands use it too, so that
/// `guardsh audit tail | head` ends quietly instead of panicking in `println!`.
#[allow(unsafe_code)]
pub fn restore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: installing SIG_DFL runs no handler code, and this process is single-threaded and
    // about to exec.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// For `guardsh run` while it waits for the agent: SIGINT and SIGQUIT from the terminal are the
/// agent's to act on (as a shell does for its foreground job).
#[allow(unsafe_code)]
pub fn ignore_terminal_signals() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in [Signal::SIGINT, Signal::SIGQUIT] {
        // SAFETY: SIG_IGN runs no handler code in this process.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
}

/// Resource limits as `guardsh run` started with them: a process of the agent's user can change
/// a running `guardsh run`'s limits (prlimit needs only the same uid), and a tool it starts
/// must not inherit those (an approved `terraform apply` cut short by `RLIMIT_FSIZE`).
#[derive(Debug, Clone)]
pub struct Limits(Vec<(nix::sys::resource::Resource, u64, u64)>);

impl Limits {
    /// This process's limits now (core dumps aside: see `no_core_dumps`).
    pub fn current() -> Self {
        use nix::sys::resource::{Resource, getrlimit};
        let all = [
            Resource::RLIMIT_AS,
            Resource::RLIMIT_CPU,
            Resource::RLIMIT_DATA,
            Resource::RLIMIT_FSIZE,
            Resource::RLIMIT_LOCKS,
            Resource::RLIMIT_MEMLOCK,
            Resource::RLIMIT_MSGQUEUE,
            Resource::RLIMIT_NICE,
            Resource::RLIMIT_NOFILE,
            Resource::RLIMIT_NPROC,
            Resource::RLIMIT_RTPRIO,
            Resource::RLIMIT_SIGPENDING,
            Resource::RLIMIT_STACK,
        ];
        Self(all.into_iter().filter_map(|r| getrlimit(r).ok().map(|(soft, hard)| (r, soft, hard))).collect())
    }
}

/// For `guardsh run` at start: every descriptor above 2 that whatever started it left open (a
/// credential file opened earlier, a socket) is closed at every exec from here on, so it reaches
/// neither the agent nor a tool: guardsh run passes exactly the descriptors it means to.
#[allow(unsafe_code)]
pub fn close_inherited_on_exec() -> io::Result<()> {
    // The raw system call, not libc's wrapper: musl (the static build, see install.sh) has none.
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets a flag on this process's own
    // descriptors; it reads and writes no memory of ours.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_close_range,
            3u32,
            u32::MAX,
            nix::libc::CLOSE_RANGE_CLOEXEC as nix::libc::c_uint,
        )
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// For `guardsh run` at start: no core dump can ever hold what it keeps in memory (a hard limit
/// of 0 cannot be raised again without privilege).
pub fn no_core_dumps() {
    let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
}

/// For a tool `guardsh run` starts: it starts in the directory `cwd` (a descriptor, opened when
/// the directory was decided on, so a path swapped in between does not move it), with the
/// limits `guardsh run` started with (`limits`; if they cannot be restored, because the agent
/// lowered a hard limit, the tool does not start), and with the default disposition of the
/// signals `guardsh run` ignores (an ignored disposition survives exec; Ctrl-C must stop it).
#[allow(unsafe_code)]
pub fn prepare_custodied_child(
    command: &mut std::process::Command,
    cwd: std::os::fd::RawFd,
    limits: Limits,
    jail: Option<std::os::fd::RawFd>,
    inherit: Vec<std::os::fd::RawFd>,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the child between fork and exec, and only calls fchdir(2), setrlimit(2)
    // and signal(2), which are async-signal-safe; it reads the limits allocated before the fork,
    // allocates nothing and takes no locks. `cwd` stays open in the parent until the child has
    // been spawned.
    unsafe {
        command.pre_exec(move || {
            use nix::sys::signal::{SigHandler, Signal, signal};
            if nix::libc::fchdir(cwd) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A session of its own: the human's terminal is not its controlling terminal (nothing
            // it runs can type into it), and its process group ends with it (`wire::relay`).
            if nix::libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for &(r, soft, hard) in &limits.0 {
                nix::sys::resource::setrlimit(r, soft, hard)?;
            }
            for sig in [Signal::SIGINT, Signal::SIGQUIT] {
                let _ = signal(sig, SigHandler::SigDfl);
            }
            // The jail's rules are for the tool, not for getting it started.
            if let Some(ruleset) = jail {
                crate::sandbox::jail::enter(ruleset)?;
            }
            // Input files' sealed copies, named in argv as /dev/fd/N: kept across exec.
            for &fd in &inherit {
                if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Ends this process the way a tool it stood for ended: killed by `signal` (its default action,
/// after unblocking it), as an agent waiting on the shim would have seen the tool end.
#[allow(unsafe_code)]
pub fn die_like(signal: i32) -> ExitCode {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, raise, signal as set};
    if let Ok(sig) = Signal::try_from(signal) {
        // SAFETY: SIG_DFL runs no handler code; the process ends on the raise below.
        let _ = unsafe { set(sig, SigHandler::SigDfl) };
        let mut one = SigSet::empty();
        one.add(sig);
        let _ = one.thread_swap_mask(SigmaskHow::SIG_UNBLOCK);
        let _ = raise(sig);
    }
    // A signal that does not end a process by default (or none): the shell convention.
    ExitCode::from(u8::try_from(128 + signal).unwrap_or(u8::MAX))
}
