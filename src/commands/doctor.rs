//! `guardsh doctor`: is every guarded tool really guarded here, is the policy valid, and which
//! credentials sit in this environment where an agent can read them.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{here, load_policy, shim_dir};
use crate::env;
use crate::exec::{self, FileId};
use crate::shims::{self, ShimState};

pub fn run(dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let mut problems = 0;
    let mut problem = |msg: String| {
        problems += 1;
        println!("  PROBLEM: {msg}");
    };

    println!("policy:");
    let policy = load_policy(&paths, &cwd);
    match &policy {
        Ok(p) => {
            for (layer, path) in &p.sources {
                println!("  {:<8} {path}", layer.as_str());
            }
            println!("  ok: {} tools, mode {}", p.tools.len(), p.mode.as_str());
        }
        Err(e) => {
            println!("{e}");
            problem("the policy is invalid, so every guarded command is refused; fix the errors above".into());
        }
    }

    let dir = shim_dir(dir, &paths, policy.as_ref().ok());
    let guardsh = FileId::current_exe()?;
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path_var).any(|d| d == dir);
    println!("shims: {}", dir.display());
    let effective_path = if on_path {
        println!("  on this PATH: yes");
        path_var.clone()
    } else {
        println!("  on this PATH: no (checked below as `guardsh run` would set PATH)");
        super::session::path_with_shims(&dir, Some(&path_var))?
    };

    if let Ok(policy) = &policy {
        println!("tools:");
        for tool in policy.tools.keys() {
            let shim = dir.join(tool);
            match shims::state(&shim, guardsh) {
                ShimState::Ours => {}
                ShimState::Missing => problem(format!("{tool}: no shim in {}; run `guardsh install`", dir.display())),
                ShimState::OtherGuardsh(t) => problem(format!(
                    "{tool}: the shim points at another guardsh ({}); run `guardsh install`",
                    t.display()
                )),
                ShimState::Foreign => problem(format!(
                    "{tool}: {} is not a guardsh shim; move it away and run `guardsh install`",
                    shim.display()
                )),
            }
            let first = which::which_in(tool, Some(&effective_path), &cwd).ok();
            let guarded = first.as_ref().is_some_and(|f| FileId::of(f).is_ok_and(|id| id == guardsh));
            let real = exec::resolve_real(tool, Some(&effective_path), guardsh);
            let real_text = real.as_ref().map_or_else(|_| "not installed".to_string(), |p| p.display().to_string());
            println!("  {tool:<12} {}  real: {real_text}", if guarded { "guarded" } else { "NOT GUARDED" });
            if !guarded && let Some(first) = first {
                problem(format!(
                    "{tool}: the first {tool} on PATH is {}, not the shim; put {} before it on PATH",
                    first.display(),
                    dir.display()
                ));
            }
        }
    }

    let credentials: Vec<String> = env::DEFAULT_CREDENTIALS
        .iter()
        .map(|s| (*s).to_string())
        .chain(
            policy
                .as_ref()
                .map(|p| p.all_credentials.iter().chain(&p.strip).cloned().collect::<Vec<_>>())
                .unwrap_or_default(),
        )
        .collect();
    let present: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| credentials.iter().any(|p| env::name_matches(p, k)))
        .collect();
    println!("credentials in this environment (names only):");
    if present.is_empty() {
        println!("  none found");
    } else {
        println!("  {}", present.join(" "));
        println!(
            "  guardsh strips these before running a tool, but an agent started from this shell can read them itself;"
        );
        println!("  start agents from an environment without them");
    }

    if problems > 0 {
        println!("{problems} problem(s) found");
        return Ok(ExitCode::FAILURE);
    }
    println!("no problems found");
    Ok(ExitCode::SUCCESS)
}
