//! `guardsh install`, `uninstall` and `list`: the shim directory as the user sees it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::{here, load_policy, shim_dir};
use crate::exec::FileId;
use crate::shims::{self, Outcome, ShimState};

fn guardsh_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the guardsh binary")?;
    exe.canonicalize().context("cannot resolve the guardsh binary's path")
}

pub fn install(dir: Option<PathBuf>, tools: Vec<String>) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let policy = load_policy(&paths, &cwd);
    let tools = if tools.is_empty() {
        let policy = policy
            .as_ref()
            .map_err(|e| super::InvalidPolicy {
                errors: e.clone(),
                advice: "fix the file and line named above (check with `guardsh check-config`), or name the tools to install",
            })?;
        policy.tools.keys().cloned().collect()
    } else {
        tools
    };
    if let Some(bad) =
        tools.iter().find(|t| t.is_empty() || t.contains('/') || t.starts_with('.') || t.starts_with("guardsh"))
    {
        anyhow::bail!("{bad:?} is not a tool name");
    }
    let dir = shim_dir(dir, &paths, policy.as_ref().ok());
    let results = shims::install(&dir, &guardsh_exe()?, &tools)
        .with_context(|| format!("cannot write shims in {}", dir.display()))?;
    let mut skipped = false;
    for (tool, outcome) in results {
        let what = match outcome {
            Outcome::Created => "created",
            Outcome::Replaced => "updated (pointed at another guardsh)",
            Outcome::AlreadyThere => "already installed",
            Outcome::Removed => "removed",
            Outcome::Skipped => {
                skipped = true;
                "SKIPPED: a file that is not a guardsh shim has this name; move it away and re-run"
            }
        };
        println!("{tool:<12} {what}");
    }
    println!("shims are in {}", dir.display());
    if let Ok(policy) = &policy {
        for tool in tools.iter().filter(|t| !policy.tools.contains_key(*t)) {
            eprintln!(
                "guardsh: warning: the policy does not know {tool}, so every {tool} command will be denied until you add a [tools.{tool}] table or rules"
            );
        }
    }
    Ok(if skipped { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub fn uninstall(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let dir = shim_dir(dir, &paths, load_policy(&paths, &cwd).ok().as_ref());
    let removed = shims::uninstall(&dir, FileId::current_exe()?)
        .with_context(|| format!("cannot remove shims from {}", dir.display()))?;
    for (tool, _) in &removed {
        println!("{tool:<12} removed");
    }
    println!("{} shims removed from {}", removed.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}

pub fn list(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let policy = load_policy(&paths, &cwd);
    let dir = shim_dir(dir, &paths, policy.as_ref().ok());
    let entries = shims::list(&dir, FileId::current_exe()?)?;
    println!("shim directory: {}", dir.display());
    for (name, state) in &entries {
        let what = match state {
            ShimState::Ours => "shim".to_string(),
            ShimState::OtherGuardsh(t) => format!("shim to another guardsh ({})", t.display()),
            ShimState::Foreign => "not a guardsh shim (left alone)".to_string(),
            ShimState::Missing => continue,
        };
        println!("  {name:<12} {what}");
    }
    match policy {
        Ok(policy) => {
            let missing: Vec<&String> = policy
                .tools
                .keys()
                .filter(|t| !entries.iter().any(|(n, s)| n == *t && *s == ShimState::Ours))
                .collect();
            if !missing.is_empty() {
                println!(
                    "tools in the policy without a shim: {} (run `guardsh install`)",
                    missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                );
            }
        }
        Err(e) => println!("policy invalid:\n{e}"),
    }
    Ok(ExitCode::SUCCESS)
}
