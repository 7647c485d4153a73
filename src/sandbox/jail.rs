//! The jail of a tool the broker starts outside the sandbox: it runs with the human's rights and
//! files, so Landlock keeps it to what it needs. The system, its install directories, the
//! project, temporary files, and its own configuration in the human's home as its tool
//! knowledge declares it (`own_files`: `~/.kube`, `~/.aws`, ...) and as its selectors name it
//! (`KUBECONFIG=...`). An allowed command that names another of the human's files
//! (`--from-file=~/.ssh/id_ed25519`) finds it out of reach.
//!
//! The ruleset is built before the fork (it allocates); between fork and exec the child only
//! sets no_new_privs and enters it, two system calls.

use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, path_beneath_rules,
};

use super::SYSTEM_READABLE;

/// The only devices a tool outside opens: no terminal (a tool that made one of the human's its
/// controlling terminal could type into it), no /dev/shm of the human's.
const JAIL_DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/// What the jail is built from.
pub struct Jail<'a> {
    pub landlock_abi: i32,
    pub home: &'a Path,
    /// What the tool may write: the project, `[sandbox] writable`, and a temporary directory of
    /// the session's own (never the human's /tmp, where their sockets and tickets are).
    pub writable: &'a [PathBuf],
    /// The tool's PATH (its helpers and interpreters), and the real binary.
    pub path_dirs: &'a [PathBuf],
    pub real: &'a Path,
    pub own_files: &'a [String],
    /// Files its selectors name (a kubeconfig outside the project).
    pub selected: &'a [PathBuf],
}

impl Jail<'_> {
    /// A Landlock ruleset for the tool, as a descriptor for `enter`.
    pub fn ruleset(&self) -> Result<OwnedFd, String> {
        let abi = ABI::from(self.landlock_abi);
        let fail = |e: &dyn std::fmt::Display| format!("the tool's jail: {e}");
        let mut read: Vec<PathBuf> = SYSTEM_READABLE.iter().filter(|d| **d != "/dev").map(PathBuf::from).collect();
        for d in self.path_dirs.iter().chain(std::iter::once(&self.real.to_path_buf())) {
            read.push(d.clone());
            // A tool's install root (`venv/bin/aws` reads `venv/lib`), unless that is the home.
            if let Some(root) = d.parent().filter(|r| !self.home.starts_with(r)) {
                read.push(root.to_path_buf());
            }
        }
        if let Ok(real) = self.real.canonicalize()
            && let Some(root) = real.parent().and_then(Path::parent).filter(|r| !self.home.starts_with(r))
        {
            read.push(root.to_path_buf());
        }
        let mut write: Vec<PathBuf> = self.writable.to_vec();
        write.extend(JAIL_DEVICES.iter().map(PathBuf::from));
        write.extend(self.own_files.iter().map(|f| self.home.join(f)));
        write.extend(self.selected.iter().cloned());
        // Nothing here may hold the whole home directory.
        read.retain(|p| !self.home.starts_with(p));
        write.retain(|p| !self.home.starts_with(p));
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(abi))
            .map_err(|e| fail(&e))?;
        // No signals to, or abstract sockets of, processes outside the tool's own domain.
        if self.landlock_abi >= 6 {
            ruleset = ruleset.scope(Scope::from_all(abi)).map_err(|e| fail(&e))?;
        }
        let created = ruleset
            .create()
            .map_err(|e| fail(&e))?
            .add_rules(path_beneath_rules(&read, AccessFs::from_read(abi)))
            .map_err(|e| fail(&e))?
            .add_rules(path_beneath_rules(&write, AccessFs::from_all(abi)))
            .map_err(|e| fail(&e))?;
        Option::<OwnedFd>::from(created).ok_or_else(|| "the tool's jail: this kernel has no Landlock".to_string())
    }
}

/// In the tool's process, between fork and exec: enters the jail. Async-signal-safe: two
/// system calls, no allocation.
#[allow(unsafe_code)]
pub fn enter(ruleset: RawFd) -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) and landlock_restrict_self take integers only and touch
    // no memory of this process.
    unsafe {
        if nix::libc::prctl(nix::libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if nix::libc::syscall(nix::libc::SYS_landlock_restrict_self, ruleset, 0u32) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
