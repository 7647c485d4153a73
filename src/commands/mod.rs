//! The implementations of `guardsh`'s subcommands: the binary's edge, where anyhow is the error type.

pub mod approve;
pub mod audit;
pub mod check;
pub mod doctor;
pub mod policy;
pub mod remove;
pub mod session;
pub mod shellcheck;
pub mod shims;
pub mod tokens;
pub mod trust;

use std::path::PathBuf;

use anyhow::Context;

use crate::config::{self, Locations};
use crate::paths::Paths;
use crate::pipeline::Invocation;
use crate::rules::{ConfigError, Policy};

/// `guardsh run`'s options beyond where the shims are and where credentials come from.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// `--approval-timeout`: seconds a request waits, at most (only shortens the policy's).
    pub approval_timeout: Option<u64>,
    /// `--warn-unguarded-shells`: start the agent even when one of its shells would miss the
    /// shims (`shellcheck`), with a warning.
    pub warn_unguarded_shells: bool,
    /// Start the agent in the sandbox (the default; `--no-sandbox` turns it off).
    pub sandboxed: bool,
}

impl RunOptions {
    /// Variables to set in the agent's environment. A timeout already inherited (a nested
    /// `guardsh run`) is kept if it is shorter.
    pub fn agent_env(&self) -> Vec<(&'static str, String)> {
        let inherited = std::env::var_os(crate::pipeline::APPROVAL_TIMEOUT_VAR);
        self.approval_timeout
            .map(|t| crate::pipeline::effective_timeout(t, inherited.as_deref()))
            .map(|t| (crate::pipeline::APPROVAL_TIMEOUT_VAR, t.to_string()))
            .into_iter()
            .collect()
    }
}

/// The policy is invalid: the command stops with exit 78 (the README's table), and says what the
/// human must do. Only commands a human runs use it; the agent's message is the shim's.
#[derive(Debug, thiserror::Error)]
#[error("{errors}\nthe policy is invalid, so every guarded command is refused; {advice}")]
pub(crate) struct InvalidPolicy {
    pub errors: ConfigError,
    pub advice: &'static str,
}

impl InvalidPolicy {
    /// What to do about it, for a command that needs a valid policy to go on.
    pub fn fix_first(errors: ConfigError) -> Self {
        InvalidPolicy { errors, advice: "fix the file and line named above, then check with `guardsh check-config`" }
    }
}

/// The process's own view of the world, read once.
pub(crate) fn here() -> anyhow::Result<(Paths, PathBuf)> {
    let paths = Paths::discover()?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok((paths, cwd))
}

pub(crate) fn load_policy(paths: &Paths, cwd: &std::path::Path) -> Result<Policy, ConfigError> {
    config::load(&Locations::new(paths, cwd))
}

/// The shim directory: `--dir`, else the policy's `shim_dir`, else the XDG data directory.
pub(crate) fn shim_dir(dir: Option<PathBuf>, paths: &Paths, policy: Option<&Policy>) -> PathBuf {
    dir.or_else(|| policy.and_then(|p| p.shim_dir.as_ref()).map(PathBuf::from))
        .unwrap_or_else(|| paths.default_shim_dir())
}

/// The install command to suggest, with `--dir` when the user gave one.
pub(crate) fn install_hint(dir_flag: Option<&std::path::Path>) -> String {
    match dir_flag {
        Some(d) => format!("guardsh install --dir {}", crate::display::shell_quote(d.as_os_str())),
        None => "guardsh install".to_string(),
    }
}

/// Tools the policy guards that have no guardsh shim in `dir`.
pub(crate) fn missing_shims(policy: &Policy, dir: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let guardsh = crate::exec::FileId::current_exe().context("cannot find the guardsh binary")?;
    Ok(policy
        .tools
        .keys()
        .filter(|t| crate::shims::state(&dir.join(t), guardsh) != crate::shims::ShimState::Ours)
        .cloned()
        .collect())
}

/// One line describing how approvals are proven, and a problem if signature approvals cannot work.
pub(crate) fn approval_status(paths: &Paths, policy: &Policy) -> (String, Option<String>) {
    use crate::rules::{ApprovalMode, LayerKind};
    let timing =
        format!("requests wait {}s{}", policy.approval_timeout, if policy.wait { "" } else { " (no-wait mode)" });
    if policy.approval != ApprovalMode::Signature {
        return (format!("approval: interactive (guardsh approve at a terminal); {timing}"), None);
    }
    let system = policy.sources.iter().any(|(l, _)| *l == LayerKind::System);
    let path =
        crate::approval::signers_path(paths, policy.allowed_signers.as_deref().map(std::path::Path::new), system);
    match crate::approval::load_signers(&path) {
        Ok(signers) if signers.is_empty() => (
            format!("approval: signature; {timing}"),
            Some(format!(
                "{} lists no keys, so nothing can be approved; add the approvers' public keys",
                path.display()
            )),
        ),
        Ok(signers) => {
            (format!("approval: signature, {} allowed signer(s) in {}; {timing}", signers.len(), path.display()), None)
        }
        Err(e) => (format!("approval: signature; {timing}"), Some(e)),
    }
}

/// An invocation as the shim would see it, from this process's environment.
pub(crate) fn invocation(argv: &[std::ffi::OsString], cwd: PathBuf) -> anyhow::Result<Invocation> {
    let (argv0, args) = argv.split_first().context("nothing to check: give a command line after `--`")?;
    let tool = std::path::Path::new(argv0).file_name().unwrap_or(argv0).to_string_lossy().into_owned();
    Ok(Invocation {
        tool,
        argv0: argv0.clone(),
        args: args.to_vec(),
        vars: std::env::vars_os().collect(),
        cwd,
        // `check` cannot see the standard input the command will have.
        stdin: crate::pipeline::Stdin::Unknown,
    })
}
