//! Credential custody: `guardsh run` holds the credentials, and releases to a shim only those its
//! own re-evaluation of that shim's command grants (`server`, `client`, `exposure`).
//!
//! This file is the pure part: which variables are taken into custody, and the messages of the
//! socket protocol. One exchange per connection, one JSON line each way:
//! 1. shim → `Hello` (its approval request, if an approval let it run; SQL it read from stdin);
//! 2. guardsh run reads the shim's facts from /proc while the shim can still be read, then → `Seal`;
//! 3. shim makes itself non-dumpable, checks nobody traces it → `Sealed`;
//! 4. guardsh run checks the same process is sealed and untraced, re-evaluates, and →
//!    `Connect` (a socket made for this exchange), or `Refuse`;
//! 5. the shim connects there; if that connection is from the same process, → `Release` on it.

pub mod client;
pub mod exposure;
pub mod server;

/// Why the credentials must not go to `real`: the binary, or a directory on the way to it,
/// could have been replaced by a process of `uid` (the agent), as could anything a symlink on
/// the way points through. The binary guardsh run found is only worth trusting if the agent
/// could not have put it there.
pub fn replaceable(real: &std::path::Path, uid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let canonical = real.canonicalize().map_err(|e| format!("{}: {e}", real.display()))?;
    let mut checked: Vec<std::path::PathBuf> = Vec::new();
    for path in [real, canonical.as_path()] {
        for p in path.ancestors().filter(|p| !p.as_os_str().is_empty()) {
            if checked.iter().any(|c| c == p) {
                continue;
            }
            checked.push(p.to_path_buf());
            let m = std::fs::symlink_metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let sticky = m.mode() & 0o1000 != 0;
            let writable = m.uid() == uid || (m.mode() & 0o022 != 0 && !(m.is_dir() && sticky));
            if writable && uid != 0 {
                return Err(format!(
                    "the real binary {} is replaceable by this user ({} is writable by it), so an agent could have put its own there; install the tool where only root can write (a system package), or set trust_user_installed_tools (README \"Credential custody\")",
                    real.display(),
                    p.display()
                ));
            }
        }
    }
    Ok(())
}

use std::ffi::{OsStr, OsString};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Names the custody socket in the agent's environment.
pub const SOCKET_VAR: &str = "GUARDSH_CUSTODY";

/// Credentials held in memory, each wiped when dropped.
#[derive(Default)]
pub struct Vault {
    values: Vec<(String, Zeroizing<String>)>,
}

impl Vault {
    pub fn names(&self) -> Vec<&str> {
        self.values.iter().map(|(k, _)| k.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn insert(&mut self, name: String, value: Zeroizing<String>) {
        self.values.retain(|(k, _)| *k != name);
        self.values.push((name, value));
    }

    /// The held values whose names `grants` cover (a grant may be a pattern, `TF_TOKEN_*`, as
    /// the tool's credentials are), sorted by name.
    pub fn release(&self, grants: &[String]) -> Vec<(String, Zeroizing<String>)> {
        let mut out: Vec<_> = self
            .values
            .iter()
            .filter(|(k, _)| grants.iter().any(|g| crate::env::name_matches(g, k)))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// Splits the environment: credential variables (as `is_credential` says) go into the vault,
/// everything else stays for the agent. A credential that is not UTF-8 cannot be handed on
/// through the protocol, so it is dropped from both, and named in the second list.
pub fn take(
    vars: Vec<(OsString, OsString)>,
    is_credential: impl Fn(&OsStr) -> bool,
) -> (Vault, Vec<(OsString, OsString)>, Vec<String>) {
    let mut vault = Vault::default();
    let mut rest = Vec::new();
    let mut dropped = Vec::new();
    for (k, v) in vars {
        if !is_credential(&k) {
            rest.push((k, v));
            continue;
        }
        match (k.into_string(), v.into_string()) {
            (Ok(k), Ok(v)) => vault.insert(k, Zeroizing::new(v)),
            (k, _) => dropped.push(k.unwrap_or_else(|k| k.to_string_lossy().into_owned())),
        }
    }
    (vault, rest, dropped)
}

/// What a shim sends first.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// The approval request the shim consumed, when the command needed one.
    pub request: Option<String>,
    /// SQL the shim read from its stdin and will hand to the tool, hex.
    pub stdin_hex: Option<String>,
}

pub const VERSION: u32 = 2;

/// What guardsh run answers, one per step.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "lowercase")]
pub enum Answer {
    /// Make yourself unreadable and untraceable, then say so.
    Seal,
    /// Connect to this new socket: the values come over that connection only.
    Connect {
        path: String,
    },
    /// The values, for `real`: the binary guardsh run found for the tool on its own PATH. The
    /// shim hands them only to that binary (the agent controls the shim's PATH).
    Release {
        values: Vec<(String, String)>,
        real: String,
    },
    Refuse {
        reason: String,
    },
}

/// The shim's confirmation that it sealed itself.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sealed {
    pub sealed: bool,
}

#[cfg(test)]
mod tests {
    use super::take;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn credentials_go_to_the_vault_and_nothing_else_does() {
        let vars: Vec<(OsString, OsString)> = vec![
            ("AWS_SECRET_ACCESS_KEY".into(), "s3cret".into()),
            ("PATH".into(), "/bin".into()),
            ("GITHUB_TOKEN".into(), OsString::from_vec(vec![0xff])),
            ("AWS_PROFILE".into(), "dev".into()),
        ];
        let (vault, rest, dropped) =
            take(vars, |k| k.to_str().is_some_and(|k| k.contains("SECRET") || k.contains("TOKEN")));
        assert_eq!(vault.names(), ["AWS_SECRET_ACCESS_KEY"]);
        let names: Vec<_> = rest.iter().map(|(k, _)| k.to_str().unwrap_or("?")).collect();
        assert_eq!(names, ["PATH", "AWS_PROFILE"]);
        assert_eq!(dropped, ["GITHUB_TOKEN"]);
        let released = vault.release(&["AWS_SECRET_ACCESS_KEY".into(), "NOT_HELD".into()]);
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].1.as_str(), "s3cret");
    }

    #[test]
    fn a_grant_pattern_releases_every_name_it_covers() {
        let vars: Vec<(OsString, OsString)> = vec![
            ("TF_TOKEN_app_terraform_io".into(), "a".into()),
            ("TF_TOKEN_example_com".into(), "b".into()),
            ("TF_HTTP_PASSWORD".into(), "c".into()),
        ];
        let (vault, _, _) = take(vars, |_| true);
        let names: Vec<String> = vault.release(&["TF_TOKEN_*".into()]).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["TF_TOKEN_app_terraform_io", "TF_TOKEN_example_com"]);
    }
}
