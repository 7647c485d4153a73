//! `guardsh doctor`: is every guarded tool really guarded here, is the policy valid, and which
//! credentials sit in this environment where an agent can read them.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{here, install_hint, load_policy, shim_dir};
use crate::colour::{Style, paint};
use crate::env;
use crate::exec::{self, FileId};
use crate::shims::{self, ShimState};

#[derive(Default)]
struct Report {
    problems: usize,
    warnings: usize,
}

impl Report {
    fn problem(&mut self, msg: &str) {
        self.problems += 1;
        println!("    {}: {msg}", paint(crate::colour::stdout(), Style::Problem, "PROBLEM"));
    }

    fn warning(&mut self, msg: &str) {
        self.warnings += 1;
        println!("    {}: {msg}", paint(crate::colour::stdout(), Style::Warning, "warning"));
    }
}

pub fn run(dir_flag: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let mut report = Report::default();
    // What this kernel offers guardsh run's sandbox (reported below).
    use crate::sandbox::{self, Floor};
    let exe = std::env::current_exe().unwrap_or_default();
    let simulate = std::env::var(sandbox::SIMULATE_VAR).ok();
    let support = sandbox::simulate(sandbox::probe::support(&exe), simulate.as_deref());
    let sandbox_available = matches!(sandbox::floor(support), Floor::Run { .. });

    println!("policy:");
    let policy = load_policy(&paths, &cwd);
    match &policy {
        Ok(p) => {
            for (layer, path) in &p.sources {
                println!("  {:<8} {path}", layer.as_str());
            }
            println!("  ok: {} tools, mode {}", p.tools.len(), p.mode.as_str());
            let (approval, problem) = super::approval_status(&paths, p);
            println!("  {approval}");
            if let Some(problem) = problem {
                report.problem(&problem);
            }
        }
        Err(e) => {
            println!("{e}");
            report.problem("the policy is invalid, so every guarded command is refused; fix the errors above");
        }
    }

    if crate::paths::Paths::TEST_BUILD {
        report.warning(&format!(
            "this guardsh was built for guardsh's own tests: it takes its system policy directory from {}, \
             which an agent can set; install a release build (install.sh)",
            crate::paths::TEST_SYSTEM_DIR_VAR
        ));
    }

    let hint = install_hint(dir_flag.as_deref());
    let dir = shim_dir(dir_flag, &paths, policy.as_ref().ok());
    let guardsh = FileId::current_exe()?;
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let on_path = std::env::split_paths(&path_var).any(|d| d == dir);
    println!("shims: {}", dir.display());
    let effective_path = if on_path {
        path_var.clone()
    } else {
        report.warning(
            "this shell's PATH does not include the shim directory: an agent started from this shell is NOT guarded. \
             Start agents with `guardsh run -- AGENT`; the tools below are checked as `guardsh run` would set PATH",
        );
        super::session::path_with_shims(&dir, None, Some(&path_var))?
    };
    let status_word = if on_path { "guarded" } else { "guarded under `guardsh run`" };

    if let Ok(policy) = &policy {
        println!("tools:");
        for tool in policy.tools.keys() {
            let state = shims::state(&dir.join(tool), guardsh);
            let first = which::which_in(tool, Some(&effective_path), &cwd).ok();
            let guarded = first.as_ref().is_some_and(|f| FileId::of(f).is_ok_and(|id| id == guardsh));
            let resolved = exec::resolve_real(tool, Some(&effective_path), guardsh).ok();
            let real = resolved.as_ref().map_or_else(|| "not installed".to_string(), |p| p.display().to_string());
            let on = crate::colour::stdout();
            let status =
                if guarded { paint(on, Style::Ok, status_word) } else { paint(on, Style::Problem, "NOT GUARDED") };
            println!("  {tool:<12} {status}  real: {real}");
            let uid = nix::unistd::geteuid().as_raw();
            if let Some(p) = &resolved
                && !policy.trust_user_installed_tools
                && let Err(why) = crate::custody::exposure::replaceable(p, uid)
            {
                report.warning(&format!("inside guardsh run, {tool} gets no held credentials: {why}"));
            }
            match state {
                ShimState::Missing => report.problem(&format!("no shim for {tool}; run `{hint}`")),
                ShimState::OtherGuardsh(t) => report
                    .problem(&format!("the {tool} shim points at another guardsh ({}); run `{hint}`", t.display())),
                ShimState::Foreign => report.problem(&format!(
                    "{} is not a guardsh shim; move it away and run `{hint}`",
                    dir.join(tool).display()
                )),
                ShimState::Ours if !guarded => {
                    if let Some(first) = first {
                        report.problem(&format!(
                            "the first {tool} on PATH is {}, not the shim; put {} before it on PATH",
                            first.display(),
                            dir.display()
                        ));
                    }
                }
                ShimState::Ours => {}
            }
        }
        // The shells an agent runs commands in must reach the shims too (commands/shellcheck.rs),
        // where nothing else covers them: without the sandbox (`--no-sandbox`, `shellenv`). With
        // it, each guarded tool's real binary is covered, so this is a warning.
        let mut shell_env: Vec<(std::ffi::OsString, std::ffi::OsString)> =
            std::env::vars_os().filter(|(k, _)| k != "PATH").collect();
        shell_env.push(("PATH".into(), effective_path.clone()));
        if !shell_env.iter().any(|(k, _)| k == crate::pipeline::SESSION_VAR) {
            shell_env.push((crate::pipeline::SESSION_VAR.into(), "doctor".into()));
        }
        // A tool without its shim is reported above already.
        let tools: Vec<String> =
            policy.tools.keys().filter(|t| shims::state(&dir.join(t), guardsh) == ShimState::Ours).cloned().collect();
        let shells = super::shellcheck::shells(super::shellcheck::login_shell().as_deref());
        let labels: Vec<&str> = shells.iter().map(|s| s.label.as_str()).collect();
        println!("agent shells: {}", labels.join(", "));
        for failure in super::shellcheck::check(&shells, &tools, &shell_env, &cwd, &dir, guardsh) {
            let text = format!(
                "{} would not reach the shims: {}; fix: {}",
                failure.shell,
                failure.what.join("; "),
                failure.fixes.join("; or ")
            );
            if sandbox_available {
                report.warning(&format!("without the sandbox (--no-sandbox, shellenv) only: {text}"));
            } else {
                report.problem(&text);
            }
        }
        for (name, state) in shims::list(&dir, guardsh)? {
            if state == ShimState::Ours && !policy.tools.contains_key(&name) {
                println!("  {name:<12} shim, but not in the policy");
                report.warning(&format!(
                    "every {name} command is denied: add a [tools.{name}] table or rules, or remove the shim"
                ));
            }
        }
    }

    // With an invalid policy, the built-in patterns alone.
    let fallback = crate::rules::Policy::default();
    let env_policy = env::EnvPolicy::of(policy.as_ref().unwrap_or(&fallback));
    // The agent's model keys are listed apart: guardsh run passes them to the agent (issue 19 A).
    let agent_keys = crate::custody::agent_keys::patterns(env_policy.agent_keys);
    let model_keys = crate::custody::agent_keys::present(&std::env::vars_os().collect::<Vec<_>>(), &agent_keys);
    let is_credential = crate::custody::agent_keys::held_by_custody(env::is_credential(&env_policy), &agent_keys);
    let mut present: Vec<String> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| is_credential(std::ffi::OsStr::new(k)))
        .collect();
    present.sort();
    if !model_keys.is_empty() {
        println!(
            "the agent's model keys (guardsh run passes them to the agent, never to a tool): {}",
            model_keys.join(" ")
        );
    }
    println!("credentials in this environment (names only):");
    if present.is_empty() {
        println!("  none found");
    } else {
        println!("  {}", present.join(" "));
        report.warning(
            "guardsh strips these before running a tool, but an agent started from this shell can read them itself; \
             start agents with `guardsh run -- AGENT`, which holds them and gives the agent none",
        );
    }

    if let Ok(exe) = std::fs::read_link("/proc/self/exe") {
        let uid = nix::unistd::geteuid().as_raw();
        for dir in crate::helpers::writable_before(&path_var, &exe, uid) {
            report.warning(&format!(
                "{} comes before {} on PATH and this user can write to it: an agent can put a `guardsh` there that runs when you type `guardsh approve`; put {} first, or run guardsh by its full path",
                if dir.as_os_str().is_empty() { ".".into() } else { dir.display().to_string() },
                exe.parent().map(|p| p.display().to_string()).unwrap_or_default(),
                exe.parent().map(|p| p.display().to_string()).unwrap_or_default(),
            ));
        }
    }
    // The PATH entries tools guardsh run starts outside the sandbox leave out (custody/server.rs).
    let uid = nix::unistd::geteuid().as_raw();
    for d in std::env::split_paths(&path_var).filter(|d| d.is_absolute() && d.is_dir()) {
        if let Err(why) = crate::custody::exposure::trusted_path_dir(&d, uid) {
            report.warning(&format!(
                "tools guardsh run starts outside the sandbox do not search the PATH entry {why}: an agent could put its own programs there; what a tool needs from it must be installed where only root can write"
            ));
        }
    }
    for w in [crate::custody::exposure::ptrace_warning(), crate::custody::exposure::own_binary_warning()]
        .into_iter()
        .flatten()
    {
        report.warning(&w);
    }
    // The sandbox guardsh run starts agents in: what this kernel offers it.
    println!("sandbox (guardsh run's default):");
    println!(
        "  Landlock ABI {}, unprivileged user namespaces {}",
        support.landlock_abi,
        if support.user_namespaces { "available" } else { "not available" }
    );
    let sandboxed = match sandbox::floor(support) {
        Floor::Refuse(why) => {
            report.problem(&format!("{why}; guardsh run will not start an agent here without --no-sandbox"));
            false
        }
        Floor::Run { gaps } => {
            println!(
                "  ok: agents started with `guardsh run` cannot reach your files, credentials, processes or terminals"
            );
            for g in gaps {
                report.warning(&format!("not enforced on this kernel: {g}"));
            }
            true
        }
    };
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let files = crate::custody::exposure::scan(&home, &cwd);
    if sandboxed {
        println!("credential files hidden from sandboxed agents, readable with --no-sandbox or shellenv:");
    } else {
        println!("credential files an agent running as this user can read:");
    }
    if files.is_empty() {
        println!("  none found");
    }
    for f in &files {
        if sandboxed {
            println!("  {} ({})", f.path.display(), f.what);
        } else {
            report.warning(&format!("{} ({}): {}", f.path.display(), f.what, f.advice));
        }
    }

    let plural = |n: usize, what: &str| if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") };
    let on = crate::colour::stdout();
    let summary = format!("{}, {}", plural(report.problems, "problem"), plural(report.warnings, "warning"));
    let style = if report.problems > 0 {
        Style::Problem
    } else if report.warnings > 0 {
        Style::Warning
    } else {
        Style::Ok
    };
    println!("{}", paint(on, style, &summary));
    Ok(if report.problems > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
