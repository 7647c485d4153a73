//! `guardsh run` and `guardsh shellenv`: put the shim directory first on an agent's PATH and mark
//! its process tree as a guardsh session. Both refuse when an agent started this way would not
//! be guarded: an invalid policy, or a guarded tool without a shim.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;

use super::{here, install_hint, load_policy, missing_shims, shim_dir};
use crate::display;
use crate::exit;
use crate::pipeline::SESSION_VAR;

/// PATH with `dir` first (and nowhere else), and `tail` last unless PATH already has it.
pub fn path_with_shims(dir: &Path, tail: Option<&Path>, path: Option<&OsStr>) -> anyhow::Result<OsString> {
    let rest: Vec<PathBuf> = path.map(|p| std::env::split_paths(p).filter(|d| d != dir).collect()).unwrap_or_default();
    // guardsh's own directory goes last, so that it can never change which real tool is found.
    let tail = tail.filter(|t| !rest.iter().any(|d| d == t)).map(Path::to_path_buf);
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(rest).chain(tail))
        .context("the shim directory's path cannot be put on PATH (it contains ':')")
}

fn session_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a session id")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The shim directory, the agent's PATH and the session id.
fn prepare(dir_flag: Option<PathBuf>) -> anyhow::Result<(PathBuf, OsString, String)> {
    let (paths, cwd) = here()?;
    let policy = load_policy(&paths, &cwd).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nthe policy is invalid, so every guarded command would be refused; fix it first (guardsh check-config)"
        )
    })?;
    let hint = install_hint(dir_flag.as_deref());
    let dir = shim_dir(dir_flag, &paths, Some(&policy));
    let missing = missing_shims(&policy, &dir)?;
    if !missing.is_empty() {
        anyhow::bail!(
            "no guardsh shim for {} in {}: an agent started now would reach the real tool unguarded; run `{hint}` first",
            missing.join(", "),
            dir.display()
        );
    }
    let dir = dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
    let own_dir = std::env::current_exe().ok().and_then(|e| e.parent().map(Path::to_path_buf));
    let path = path_with_shims(&dir, own_dir.as_deref(), std::env::var_os("PATH").as_deref())?;
    let session = match std::env::var(SESSION_VAR) {
        // A nested `guardsh run` stays in the session it was started from.
        Ok(s) if !s.is_empty() => s,
        _ => session_id()?,
    };
    Ok((dir, path, session))
}

pub fn run(dir: Option<PathBuf>, command: &[OsString]) -> anyhow::Result<ExitCode> {
    let (_, path, session) = prepare(dir)?;
    let (program, args) = command.split_first().context("give the command to run after `--`")?;
    let err = Command::new(program).args(args).env("PATH", &path).env(SESSION_VAR, &session).exec();
    eprintln!("guardsh: cannot start {}: {err}", display::shell_quote(program));
    // Shell conventions: 127 for a command that was not found, 126 for one that could not run.
    let code = if err.kind() == std::io::ErrorKind::NotFound { exit::NOT_FOUND } else { exit::CANNOT_EXEC };
    Ok(ExitCode::from(code))
}

pub fn shellenv(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (_, path, session) = prepare(dir)?;
    // The whole PATH, computed here, rather than "DIR:$PATH": evaluating the line twice then
    // leaves one copy of the shim directory, and it is always first.
    println!("export PATH={}", display::shell_quote(&path));
    println!("export {SESSION_VAR}={session}");
    Ok(ExitCode::SUCCESS)
}
