//! `guardsh run` and `guardsh shellenv`: put the shim directory first on an agent's PATH and mark
//! its process tree as a guardsh session.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Context;

use super::{here, load_policy, shim_dir};
use crate::display;
use crate::pipeline::SESSION_VAR;

/// PATH with `dir` first and every other occurrence of it removed.
pub fn path_with_shims(dir: &Path, path: Option<&OsStr>) -> anyhow::Result<OsString> {
    let rest = path.map(|p| std::env::split_paths(p).filter(|d| d != dir).collect::<Vec<_>>()).unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(rest))
        .context("the shim directory's path cannot be put on PATH (it contains ':')")
}

fn session_id() -> anyhow::Result<String> {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a session id")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn prepare(dir: Option<PathBuf>) -> anyhow::Result<(PathBuf, OsString, String)> {
    let (paths, cwd) = here()?;
    let dir = shim_dir(dir, &paths, load_policy(&paths, &cwd).ok().as_ref());
    if !dir.is_dir() {
        anyhow::bail!("the shim directory {} does not exist; run `guardsh install` first", dir.display());
    }
    let dir = dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
    let path = path_with_shims(&dir, std::env::var_os("PATH").as_deref())?;
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
    Err(anyhow::anyhow!("cannot start {}: {err}", display::shell_quote(program)))
}

pub fn shellenv(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (dir, _, session) = prepare(dir)?;
    println!("export PATH={}:\"$PATH\"", display::shell_quote(dir.as_os_str()));
    println!("export {SESSION_VAR}={session}");
    Ok(ExitCode::SUCCESS)
}
