//! guardsh: a fail-closed gate between AI coding agents and the dangerous CLIs they can reach.
//!
//! One binary, two personalities chosen by the name it was started under (argv[0]), as rustup's
//! proxies are: called `guardsh` it is the admin CLI; called anything else (a shim such as
//! `kubectl` in the shim directory) it guards that tool. See ARCHITECTURE.md for the data flow and
//! README.md for the threat model.

mod approval;
mod arena;
mod audit;
mod catalog;
mod cli;
mod colour;
mod commands;
mod config;
mod custody;
mod decision;
mod display;
mod env;
mod exec;
mod exit;
mod git_config;
mod helpers;
mod manifest;
mod matching;
mod memcopy;
// Public only so that tests/ can drive the credential providers against real servers.
#[doc(hidden)]
pub mod mint;
mod paths;
mod pipeline;
mod policy;
mod policy_cache;
mod posture;
mod random;
mod rules;
mod sandbox;
mod shims;
mod snapshot;
mod sql;
mod startup;
mod strtable;
mod timefmt;
mod tools;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: arena::Allocator = arena::Allocator;

/// Replaces what Rust's start-up would do for guardsh; `main.rs` calls it first.
pub fn startup() {
    startup::standard_fds();
}

/// The entry point: dispatches on argv[0], then reads argv and the environment once. `args` is
/// the process's argv, borrowed; a shim call copies it only once the arena is on, so that it
/// allocates nothing from the system allocator (under musl its first use maps memory).
pub fn main<'a>(args: impl Iterator<Item = &'a [u8]>) -> ExitCode {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut args = args.peekable();
    let argv0 = std::ffi::OsStr::from_bytes(args.peek().copied().unwrap_or_default());
    let owned = |a: &[u8]| OsString::from_vec(a.to_vec());
    if Path::new(argv0).file_name().unwrap_or(argv0).as_bytes().starts_with(b"guardsh") {
        return cli::main(args.map(owned));
    }
    arena::use_for_this_call();
    let argv: Vec<OsString> = args.map(owned).collect();
    let argv0 = argv.first().cloned().unwrap_or_default();
    let name = Path::new(&argv0).file_name().unwrap_or(argv0.as_os_str()).to_string_lossy().into_owned();
    // Inside the sandbox a shim only proposes its command to guardsh run, which decides and runs
    // it outside. The socket is also found where the sandbox puts it, for a shell that cleared
    // the environment (`env -i`); only root can create it anywhere else.
    let in_sandbox = || {
        let s = Path::new(sandbox::BROKER_DIR).join("socket");
        s.exists().then(|| s.into_os_string())
    };
    if let Some(socket) = std::env::var_os(sandbox::BROKER_VAR).filter(|s| !s.is_empty()).or_else(in_sandbox) {
        return match custody::client::propose(Path::new(&socket), &argv) {
            custody::client::Ended::Code(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            custody::client::Ended::Signal(sig) => exec::die_like(sig),
        };
    }
    let rest: Vec<OsString> = argv.into_iter().skip(1).collect();
    let Ok(cwd) = std::env::current_dir() else {
        eprintln!("guardsh: cannot read the current directory, so {name} was not run; cd somewhere that exists");
        return ExitCode::from(exit::CONFIG);
    };
    let vars = std::env::vars_os().collect();
    pipeline::run_shim(pipeline::Invocation {
        tool: name,
        argv0,
        args: rest,
        vars,
        cwd,
        stdin: pipeline::Stdin::Unknown,
    })
}
