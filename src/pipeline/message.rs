//! What guardsh says and records about an invocation: the audit record, the command line as
//! shown, the explanation of a reading, and the messages of a refusal or an invalid policy.

use crate::audit::Record;
use crate::decision::Cause;
use crate::display;
use crate::matching::NormalizedArgv;
use crate::rules::Action;
use std::ffi::{OsStr, OsString};

use super::{Evaluation, Invocation, SESSION_VAR};

pub(crate) fn record(inv: &Invocation, eval: Option<&Evaluation>, outcome: &str, reason: &str) -> Record {
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
        request: None,
        by: None,
        exec_argv: None,
        minted: None,
    }
}

pub(crate) fn command_line(inv: &Invocation) -> String {
    display::shell_join(std::iter::once(OsStr::new(&inv.tool)).chain(inv.args.iter().map(OsString::as_os_str)))
}

/// What made a command a write, beyond the rule's reason: for SQL, the statement and what it
/// does. Shown to the agent and the approver; kept out of the reason, which an approval checks
/// against the approver's own evaluation (that cannot see piped SQL).
pub fn explanation(argv: &NormalizedArgv) -> Option<String> {
    use crate::sql::SqlClass;
    match argv.sql.as_ref()? {
        SqlClass::Read => None,
        SqlClass::Add(why) => Some(format!("the SQL adds: {why}")),
        SqlClass::Write(why) => Some(format!("the SQL writes: {why}")),
        SqlClass::Unknown(why) => Some(format!("the SQL cannot be read with certainty: {why}")),
    }
}

/// What the agent reads when it is refused: one line, the rule's reason (and what made the command
/// a write), no way to approve.
pub fn refusal_message(inv: &Invocation, eval: &Evaluation) -> String {
    let verdict = &eval.verdict;
    let cmd = command_line(inv);
    let by = match &verdict.cause {
        Cause::Rule(id) => format!(" (rule {id})"),
        Cause::Policy => " (Rego policy)".to_string(),
        Cause::Default | Cause::Catalog | Cause::UnknownTool => String::new(),
    };
    let reason = match explanation(&eval.argv) {
        Some(what) => display::escape_text(&format!("{}; {what}", verdict.reason)),
        None => display::escape_text(&verdict.reason),
    };
    match verdict.action {
        Action::Deny if verdict.ci_denied => format!(
            "guardsh: denied in CI mode: `{cmd}` needs human approval ({reason}{by}), and nothing in CI can give it. Do not try to reach the same result another way."
        ),
        // A hard deny has no approval: saying it "needs a human decision" would send the agent
        // (and the human) looking for one.
        Action::Deny => format!(
            "guardsh: denied: `{cmd}`: {reason}{by}. The policy forbids this outright; no approval exists for it. Do not try to reach the same result another way."
        ),
        _ => format!(
            "guardsh: `{cmd}` needs human approval: {reason}{by}. Tell the human what you need and why; do not try to reach the same result another way."
        ),
    }
}

/// What the agent reads when the policy is invalid: a human must fix it (never how).
pub fn invalid_policy_message(tool: &str) -> String {
    format!(
        "the guardsh policy is invalid, so {tool} was not run, and no guarded command runs until a human fixes it. Tell the human; do not try to reach the same result another way."
    )
}
