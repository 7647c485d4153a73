//! Where guardsh's files live: the system, user and project policy files, the state directory,
//! and the default shim directory.
//!
//! User paths follow the XDG base directories (via `directories`), so tests and users can point
//! them elsewhere. That is also why the user layer is within an agent's reach: only the system
//! directory, owned by root, is not.

use std::path::{Path, PathBuf};

/// The system policy directory. Not configurable at run time: an environment variable that moved
/// it would let an agent swap a root-owned policy for its own (or for none at all).
pub const SYSTEM_DIR: &str = "/etc/guardsh";
/// Names a replacement for `SYSTEM_DIR`, read only by a binary built with the `test-system-dir`
/// feature, which only `cargo test` builds have (Cargo.toml): the integration tests point it at
/// a directory of their own so that they never depend on the machine's `/etc/guardsh`. A release
/// build has no code that reads it, so it cannot loosen an installed guardsh.
pub const TEST_SYSTEM_DIR_VAR: &str = "GUARDSH_TEST_SYSTEM_DIR";
pub const POLICY_FILE: &str = "rules.toml";
pub const PROJECT_FILE: &str = ".guardsh.toml";

#[derive(Debug, Clone)]
pub struct Paths {
    pub system_dir: PathBuf,
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
    pub data_dir: PathBuf,
}

/// No home directory could be found, so there is nowhere to keep policy or state.
#[derive(Debug, thiserror::Error)]
#[error("cannot find a home directory for guardsh's configuration and state; set HOME")]
pub struct NoHome;

impl Paths {
    pub fn discover() -> Result<Self, NoHome> {
        let dirs = directories::ProjectDirs::from("", "", "guardsh").ok_or(NoHome)?;
        let data_dir = dirs.data_dir().to_path_buf();
        // `state_dir` is XDG_STATE_HOME on Linux; elsewhere fall back to the data dir.
        let state_dir = dirs.state_dir().map_or_else(|| data_dir.join("state"), Path::to_path_buf);
        Ok(Self { system_dir: system_dir(), config_dir: dirs.config_dir().to_path_buf(), state_dir, data_dir })
    }

    /// Whether this binary was built for guardsh's own tests (see `TEST_SYSTEM_DIR_VAR`).
    pub const TEST_BUILD: bool = cfg!(feature = "test-system-dir");

    pub fn system_policy(&self) -> PathBuf {
        self.system_dir.join(POLICY_FILE)
    }

    pub fn user_policy(&self) -> PathBuf {
        self.config_dir.join(POLICY_FILE)
    }

    /// Project policy files the human trusted (`guardsh trust`), by path and content hash.
    pub fn trust_file(&self) -> PathBuf {
        self.config_dir.join("trusted-projects")
    }

    pub fn audit_log(&self) -> PathBuf {
        self.state_dir.join("audit.jsonl")
    }

    /// Pending and decided approval requests.
    pub fn requests_dir(&self) -> PathBuf {
        self.state_dir.join("requests")
    }

    pub fn default_shim_dir(&self) -> PathBuf {
        self.data_dir.join("shims")
    }
}

/// `/etc/guardsh`, or in a test build the directory the test names (an empty name, or none, is
/// `/etc/guardsh` too).
fn system_dir() -> PathBuf {
    #[cfg(feature = "test-system-dir")]
    if let Some(dir) = std::env::var_os(TEST_SYSTEM_DIR_VAR).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    PathBuf::from(SYSTEM_DIR)
}

/// The nearest `.guardsh.toml` in `cwd` or any parent.
pub fn find_project_policy(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors().map(|dir| dir.join(PROJECT_FILE)).find(|p| p.is_file())
}
