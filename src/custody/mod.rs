//! Credential custody: `guardsh run` holds the credentials, and starts the real tool itself,
//! with the credentials its own re-evaluation of a shim's command grants (`server`, `client`,
//! `exposure`). The values never leave `guardsh run` except into that tool's environment.
//!
//! Why the custodian starts the tool rather than hand the values to the shim: any process that
//! receives them can be replaced, with its pid and start time kept, by an exec of the agent's
//! choosing (review findings c1 and c6 in docs/bypasses.md). A process the custodian starts
//! itself, from a binary the agent cannot replace, is the one place they can safely go.
//!
//! This file is the pure part: which variables are taken into custody, and the messages of the
//! socket protocol. One exchange per connection, JSON lines:
//! 1. shim → `Hello`, carrying its stdin, stdout and stderr (SCM_RIGHTS);
//! 2. guardsh run reads the shim's argv, cwd and environment from /proc, re-evaluates, and →
//!    `Refuse`, `Unneeded` (it holds nothing this command is granted: the shim execs as usual),
//!    or `Started` (it started the real tool on the shim's descriptors);
//! 3. while the tool runs, shim → `Forward` for each signal it receives; the tool's end →
//!    `Exited`, and the shim ends the same way.

pub mod agent_keys;
pub mod broker;
pub mod client;
pub mod exposure;
pub mod server;
pub mod wire;

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

/// What a shim sends first, with its descriptors 0, 1 and 2 attached.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    /// The approval request the shim used, when the command needed one.
    pub request: Option<String>,
    /// Descriptor 0 is the sealed copy of SQL the shim read from its stdin (see
    /// `pipeline::Stdin::Captured`), which the custodian reads for itself.
    pub stdin_captured: bool,
    /// Inside the sandbox: the command itself, for guardsh run to decide, record, ask about and
    /// run. Descriptor 3 is the shim's working directory, opened.
    #[serde(default)]
    pub proposal: Option<Proposal>,
}

/// A command a shim inside the sandbox proposes. Nothing in it is evidence of anything: the
/// agent can send whatever it likes, exactly as it can run a shim with any argv. guardsh run
/// decides on these words and runs exactly these words, so a lie only changes what is decided.
#[derive(Debug, Serialize, Deserialize)]
pub struct Proposal {
    /// argv, argv[0] first, as bytes.
    pub argv: Vec<Vec<u8>>,
    /// The working directory as the shim names it.
    pub cwd: Vec<u8>,
    /// The shim's environment (selectors, CI mode); guardsh run takes only what it decides to.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
}

pub const VERSION: u32 = 3;

/// What guardsh run answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "lowercase")]
pub enum Answer {
    Refuse {
        reason: String,
    },
    /// Nothing held is granted to this command: the shim runs it as it would outside a session.
    Unneeded,
    /// guardsh run denies the command (a credential it must mint for it could not be): the shim
    /// exits as denied and does not run the tool, not even without credentials.
    Deny {
        reason: String,
    },
    /// The real tool runs, started by guardsh run on the shim's descriptors.
    Started,
    /// Decided and recorded: the shim runs the tool itself, inside the sandbox, from the real
    /// binary sent along with this answer (its descriptor), with its own environment.
    RunInside,
    /// How it ended: an exit code, or the signal that killed it.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
}

/// A signal the shim received while the tool runs, for the tool.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forward {
    pub signal: i32,
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
