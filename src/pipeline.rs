//! The guarded invocation, in order: argv → policy → decision → environment → audit → exec.
//!
//! The only code that sequences these steps, and the only road to `exec::exec`. `evaluate` is
//! shared with `guardsh check`, so an explanation can never disagree with what the shim does.
//! Every failure before exec ends the process without running the real tool.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::audit::{self, Record};
use crate::config::{self, Locations};
use crate::decision::{self, Cause, Verdict};
use crate::display;
use crate::env::{self, EnvPlan, EnvPolicy};
use crate::exec::{self, ExecError, FileId};
use crate::exit;
use crate::matching::{self, NormalizedArgv};
use crate::paths::Paths;
use crate::rules::{Action, ConfigError, Mode, Policy, Rule};
use crate::tools::{RawToolSpec, ToolSpec};

/// Marks a process tree started by `guardsh run`.
pub const SESSION_VAR: &str = "GUARDSH_SESSION";
/// `ci` tightens the mode; no value loosens it.
pub const MODE_VAR: &str = "GUARDSH_MODE";

/// Everything about one invocation that comes from outside: read once, at the edge.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub tool: String,
    pub argv0: OsString,
    pub args: Vec<OsString>,
    pub vars: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
}

impl Invocation {
    fn var(&self, name: &str) -> Option<&OsStr> {
        env::get(&self.vars, name)
    }
}

/// What guardsh would do with an invocation, and why.
#[must_use]
#[derive(Debug)]
pub struct Evaluation {
    pub argv: NormalizedArgv,
    pub verdict: Verdict,
    pub mode: Mode,
    pub env: EnvPlan,
    /// The rules that matched, for explanations.
    pub matched: Vec<Rule>,
    /// The real binary, when it will be needed (allow) or asked about (check).
    pub real: Option<Result<PathBuf, ExecError>>,
}

impl Evaluation {
    /// The exit status the shim ends with when it does not exec.
    pub fn refusal_code(&self) -> Option<u8> {
        match self.verdict.action {
            Action::Allow => None,
            Action::Ask => Some(exit::APPROVAL),
            Action::Deny => Some(exit::DENIED),
        }
    }
}

/// CI mode comes from the policy, `GUARDSH_MODE=ci`, or a CI environment (`CI` set and not
/// false). Environment variables can only switch CI mode on: an unknown `GUARDSH_MODE` value
/// counts as `ci`, and no value switches it off.
pub fn effective_mode(configured: Mode, guardsh_mode: Option<&OsStr>, ci: Option<&OsStr>) -> Mode {
    let from_var = match guardsh_mode.map(|v| v.to_string_lossy().to_ascii_lowercase()) {
        None => Mode::Interactive,
        Some(v) if v.is_empty() || v == "interactive" => Mode::Interactive,
        Some(_) => Mode::Ci,
    };
    let from_ci = match ci.map(|v| v.to_string_lossy().to_ascii_lowercase()) {
        Some(v) if !v.is_empty() && v != "false" && v != "0" => Mode::Ci,
        _ => Mode::Interactive,
    };
    configured.max(from_var).max(from_ci)
}

/// The tool's knowledge: from the policy when it knows the tool, else what guardsh ships.
fn spec_for<'a>(policy: &'a Policy, tool: &str) -> Cow<'a, ToolSpec> {
    if let Some(t) = policy.tools.get(tool) {
        return Cow::Borrowed(&t.spec);
    }
    Cow::Owned(
        crate::tools::builtin(tool)
            .and_then(|text| RawToolSpec::parse(text).ok())
            .and_then(|raw| raw.build().ok())
            .unwrap_or_default(),
    )
}

/// Decides an invocation against an already loaded policy. Pure apart from the PATH search
/// (`resolve`), which only runs when asked for.
pub fn evaluate_with(policy: &Policy, inv: &Invocation, resolve: bool, guardsh: Option<FileId>) -> Evaluation {
    let tool_policy = policy.tools.get(&inv.tool);
    let spec = spec_for(policy, &inv.tool);
    let argv = matching::normalize(&inv.args, &spec);
    let mode = effective_mode(policy.mode, inv.var(MODE_VAR), inv.var("CI"));
    let verdict = decision::decide(&inv.tool, tool_policy, &argv, mode);
    let matched = tool_policy
        .map(|t| t.rules.iter().filter(|r| verdict.matched.contains(&r.id)).cloned().collect())
        .unwrap_or_default();

    let credentials: Vec<&str> = env::DEFAULT_CREDENTIALS
        .iter()
        .copied()
        .chain(policy.all_credentials.iter().map(String::as_str))
        .chain(policy.strip.iter().map(String::as_str))
        .collect();
    let env_policy = EnvPolicy { credentials, keep: &policy.keep };
    let mut env = env::plan(&inv.vars, &env_policy, &verdict.grants);
    let depth = exec::depth(inv.var(exec::DEPTH_VAR));
    env.vars.retain(|(k, _)| k != exec::DEPTH_VAR);
    env.vars.push((exec::DEPTH_VAR.into(), depth.saturating_add(1).to_string().into()));

    let real = (resolve || verdict.action == Action::Allow).then(|| match guardsh {
        Some(id) => exec::resolve_real(&inv.tool, inv.var("PATH"), id),
        None => Err(ExecError::NotFound { tool: inv.tool.clone() }),
    });
    Evaluation { argv, verdict, mode, env, matched, real }
}

/// Loads the policy for the invocation's working directory, then evaluates.
pub fn evaluate(paths: &Paths, inv: &Invocation, resolve: bool) -> Result<Evaluation, ConfigError> {
    let policy = config::load(&Locations::new(paths, &inv.cwd))?;
    Ok(evaluate_with(&policy, inv, resolve, FileId::current_exe().ok()))
}

fn record(inv: &Invocation, eval: Option<&Evaluation>, outcome: &str, reason: &str) -> Record {
    let mut words = vec![display::json_word(&inv.argv0)];
    words.extend(inv.args.iter().map(|a| display::json_word(a)));
    Record {
        time: crate::timefmt::rfc3339(std::time::SystemTime::now()),
        tool: inv.tool.clone(),
        argv: words,
        cwd: display::json_word(inv.cwd.as_os_str()),
        pid: std::process::id(),
        ppid: std::os::unix::process::parent_id(),
        session: inv.var(SESSION_VAR).map(|s| s.to_string_lossy().into_owned()),
        rules: eval.map(|e| e.verdict.matched.clone()).unwrap_or_default(),
        decision: eval.map_or("error", |e| e.verdict.action.as_str()).to_string(),
        mode: eval.map_or("unknown", |e| e.mode.as_str()).to_string(),
        reason: reason.to_string(),
        stripped: eval.map(|e| e.env.stripped.clone()).unwrap_or_default(),
        passed: eval.map(|e| e.env.passed.clone()).unwrap_or_default(),
        outcome: outcome.to_string(),
        real: eval.and_then(|e| e.real.as_ref()).and_then(|r| r.as_ref().ok()).map(|p| p.display().to_string()),
    }
}

fn command_line(inv: &Invocation) -> String {
    display::shell_join(std::iter::once(OsStr::new(&inv.tool)).chain(inv.args.iter().map(OsString::as_os_str)))
}

/// What the agent reads when it is refused: one line, the rule's reason, no way to approve.
pub fn refusal_message(inv: &Invocation, verdict: &Verdict) -> String {
    let cmd = command_line(inv);
    let by = match &verdict.cause {
        Cause::Rule(id) => format!(" (rule {id})"),
        Cause::Default | Cause::UnknownTool => String::new(),
    };
    let reason = display::escape_text(&verdict.reason);
    match verdict.action {
        Action::Deny if verdict.ci_denied => format!(
            "guardsh: denied in CI mode: `{cmd}` needs human approval ({reason}{by}), and nothing in CI can give it. Do not try to reach the same result another way."
        ),
        Action::Deny => format!(
            "guardsh: denied: `{cmd}`: {reason}{by}. This needs a human decision; do not try to reach the same result another way."
        ),
        _ => format!(
            "guardsh: `{cmd}` needs human approval: {reason}{by}. It was not run. Tell the human what you need and why; do not try to reach the same result another way."
        ),
    }
}

/// Runs as a shim. Returns only when the real tool was not executed.
pub fn run_shim(inv: Invocation) -> ExitCode {
    let fail = |code: u8, message: &str| {
        eprintln!("guardsh: {message}");
        ExitCode::from(code)
    };
    let paths = match Paths::discover() {
        Ok(p) => p,
        Err(e) => return fail(exit::CONFIG, &e.to_string()),
    };
    let audit_path = paths.audit_log();
    let write = |rec: &Record| audit::append(&audit_path, rec);

    let depth = exec::depth(inv.var(exec::DEPTH_VAR));
    if depth >= exec::MAX_DEPTH {
        let e = ExecError::Recursion { tool: inv.tool.clone(), depth };
        let _ = write(&record(&inv, None, "recursion", &e.to_string()));
        return fail(exit::CANNOT_EXEC, &e.to_string());
    }

    let eval = match evaluate(&paths, &inv, false) {
        Ok(e) => e,
        Err(e) => {
            // Best effort: the refusal stands whether or not it can be recorded.
            let _ = write(&record(&inv, None, "config_error", &e.to_string()));
            eprintln!("guardsh: the guardsh policy is invalid, so {} was not run:\n{e}", inv.tool);
            return fail(exit::CONFIG, "fix the errors above (check with `guardsh check-config`)");
        }
    };

    if let Some(code) = eval.refusal_code() {
        let outcome = if code == exit::DENIED { "denied" } else { "approval_required" };
        let message = refusal_message(&inv, &eval.verdict);
        eprintln!("{message}");
        if let Err(e) = write(&record(&inv, Some(&eval), outcome, &eval.verdict.reason)) {
            eprintln!("guardsh: {e}");
        }
        return ExitCode::from(code);
    }

    let real = match eval.real.as_ref() {
        Some(Ok(real)) => real.clone(),
        Some(Err(e)) => {
            let _ = write(&record(&inv, Some(&eval), "not_found", &e.to_string()));
            return fail(exit::NOT_FOUND, &e.to_string());
        }
        None => return fail(exit::NOT_FOUND, "internal error: allowed without a resolved binary; nothing was run"),
    };
    // The record is written before exec because nothing runs after it; if it cannot be written,
    // the command does not run.
    if let Err(e) = write(&record(&inv, Some(&eval), "exec", &eval.verdict.reason)) {
        return fail(exit::AUDIT, &e.to_string());
    }
    let e = exec::exec(&real, &inv.argv0, &inv.args, &eval.env.vars);
    let _ = write(&record(&inv, Some(&eval), "exec_failed", &e.to_string()));
    fail(exit::CANNOT_EXEC, &e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_can_only_tighten_the_mode() {
        let s = |v: &'static str| Some(OsStr::new(v));
        let cases: &[(Mode, Option<&OsStr>, Option<&OsStr>, Mode)] = &[
            (Mode::Interactive, None, None, Mode::Interactive),
            (Mode::Interactive, s("ci"), None, Mode::Ci),
            (Mode::Interactive, s("CI"), None, Mode::Ci),
            (Mode::Interactive, s("bogus"), None, Mode::Ci),
            (Mode::Ci, s("interactive"), None, Mode::Ci),
            (Mode::Ci, None, s("false"), Mode::Ci),
            (Mode::Interactive, None, s("true"), Mode::Ci),
            (Mode::Interactive, None, s("1"), Mode::Ci),
            (Mode::Interactive, None, s("false"), Mode::Interactive),
            (Mode::Interactive, None, s(""), Mode::Interactive),
        ];
        for (configured, var, ci, want) in cases {
            assert_eq!(effective_mode(*configured, *var, *ci), *want, "{configured:?} {var:?} {ci:?}");
        }
    }
}
