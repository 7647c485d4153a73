//! Creates, removes and lists the shim symlinks (`DIR/kubectl -> guardsh`), never touching a file
//! that is not a guardsh shim.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, symlink};
use std::path::{Path, PathBuf};

use crate::exec::FileId;

/// What a name in the shim directory currently is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShimState {
    Missing,
    /// A symlink to this guardsh.
    Ours,
    /// A symlink to a guardsh binary somewhere else (an older install); safe to replace.
    OtherGuardsh(PathBuf),
    /// Anything else: a real binary, a script, a symlink elsewhere. Never replaced or removed.
    Foreign,
}

/// A shim is a symlink whose target is guardsh: this binary, or any file named `guardsh`.
pub fn state(path: &Path, guardsh: FileId) -> ShimState {
    let Ok(meta) = fs::symlink_metadata(path) else { return ShimState::Missing };
    if !meta.file_type().is_symlink() {
        return ShimState::Foreign;
    }
    let Ok(target) = fs::read_link(path) else { return ShimState::Foreign };
    if FileId::of(path).is_ok_and(|id| id == guardsh) {
        return ShimState::Ours;
    }
    if target.file_name().is_some_and(|n| n == "guardsh") {
        return ShimState::OtherGuardsh(target);
    }
    ShimState::Foreign
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Replaced,
    AlreadyThere,
    /// Refused: something that is not a guardsh shim already has this name.
    Skipped,
    Removed,
}

/// Links `dir/tool` to `guardsh` for each tool. Idempotent.
pub fn install(dir: &Path, guardsh: &Path, tools: &[String]) -> io::Result<Vec<(String, Outcome)>> {
    fs::DirBuilder::new().recursive(true).mode(0o755).create(dir)?;
    let id = FileId::of(guardsh)?;
    let mut out = Vec::new();
    for tool in tools {
        let path = dir.join(tool);
        let outcome = match state(&path, id) {
            ShimState::Ours => Outcome::AlreadyThere,
            ShimState::Foreign => Outcome::Skipped,
            ShimState::Missing => {
                symlink(guardsh, &path)?;
                Outcome::Created
            }
            ShimState::OtherGuardsh(_) => {
                // Build the new link beside the old one and rename it into place, so the name is
                // never missing (a shim call in between would fall through to the real tool).
                let tmp = dir.join(format!(".{tool}.guardsh-new"));
                let _ = fs::remove_file(&tmp);
                symlink(guardsh, &tmp)?;
                fs::rename(&tmp, &path)?;
                Outcome::Replaced
            }
        };
        out.push((tool.clone(), outcome));
    }
    Ok(out)
}

/// Removes every guardsh shim in `dir`, leaving everything else.
pub fn uninstall(dir: &Path, guardsh: FileId) -> io::Result<Vec<(String, Outcome)>> {
    let mut out = Vec::new();
    for (name, state) in list(dir, guardsh)? {
        if matches!(state, ShimState::Ours | ShimState::OtherGuardsh(_)) {
            fs::remove_file(dir.join(&name))?;
            out.push((name, Outcome::Removed));
        }
    }
    Ok(out)
}

/// Every entry of `dir` with its state, sorted by name. A missing directory lists as empty.
pub fn list(dir: &Path, guardsh: FileId) -> io::Result<Vec<(String, ShimState)>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        out.push((name, state(&entry.path(), guardsh)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
