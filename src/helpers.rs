//! Finds the helper programs guardsh runs itself (`ssh-keygen`) in system directories this user
//! cannot change, never through PATH.
//!
//! `guardsh approve` signs with the human's key by running `ssh-keygen`. Found on PATH, that is
//! whatever an agent put first on it (`~/.local/bin/ssh-keygen`), and a wrapper there can sign a
//! request of its own with the key the human unlocks or touches. A helper is therefore looked up
//! in a fixed list of system directories, and used only if the file, every directory above it and
//! every symlink on the way are root's and not writable by anyone else
//! (`custody::exposure::replaceable` judges that for this user).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where helpers are looked for, in order. Not configurable: a setting would be the agent's.
pub const SYSTEM_DIRS: &[&str] = &["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"];

/// The helper `name` from `SYSTEM_DIRS`, or why none may be used.
pub fn system_helper(name: &str) -> Result<PathBuf, String> {
    let uid = nix::unistd::geteuid().as_raw();
    let mut refused = Vec::new();
    for dir in SYSTEM_DIRS {
        let candidate = Path::new(dir).join(name);
        if !candidate.exists() {
            continue;
        }
        match trusted(&candidate, uid) {
            Ok(()) => return Ok(candidate),
            Err(why) => refused.push(why),
        }
    }
    if refused.is_empty() {
        Err(format!("{name} was not found in {}; install it as a system package", SYSTEM_DIRS.join(", ")))
    } else {
        Err(format!("no {name} that only root can change was found: {}", refused.join("; ")))
    }
}

/// The file (after every symlink) is root's regular executable, not writable by group or others,
/// and nothing on the way to it can be replaced by `uid`.
fn trusted(path: &Path, uid: u32) -> Result<(), String> {
    crate::custody::exposure::replaceable(path, uid)?;
    let m = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.is_file() || m.uid() != 0 || m.mode() & 0o022 != 0 {
        return Err(format!("{} is not a root-owned file that only root can write", path.display()));
    }
    Ok(())
}

/// Directories on `path` before the one holding `guardsh` (this binary) that `uid` can change:
/// a `guardsh` put there runs when the human types `guardsh approve`. Relative and empty entries
/// (the current directory) count as changeable.
pub fn writable_before(path: &std::ffi::OsStr, guardsh: &Path, uid: u32) -> Vec<PathBuf> {
    let Some(own) = guardsh.parent() else { return vec![] };
    let mut out = Vec::new();
    for dir in std::env::split_paths(path) {
        if dir == own || (dir.canonicalize().ok().is_some_and(|d| own.canonicalize().ok() == Some(d))) {
            return out;
        }
        // A directory that does not exist is as changeable as the nearest one above it that does
        // (where it could be created).
        let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(&dir);
        if dir.as_os_str().is_empty() || crate::custody::exposure::replaceable(existing, uid).is_err() {
            out.push(dir);
        }
    }
    // guardsh's directory is not on PATH at all: nothing comes before it.
    vec![]
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_system_shell_is_found_by_absolute_path() {
        let sh = super::system_helper("sh").expect("sh is in a system directory");
        assert!(sh.is_absolute() && super::SYSTEM_DIRS.iter().any(|d| sh.starts_with(d)), "{}", sh.display());
        assert!(super::system_helper("no-such-helper-guardsh").is_err());
    }
}
