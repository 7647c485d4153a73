//! `guardsh audit verify` and `guardsh audit tail`.

use std::process::ExitCode;

use serde_json::Value;

use super::here;
use crate::audit;

pub fn verify() -> anyhow::Result<ExitCode> {
    let (paths, _) = here()?;
    let path = paths.audit_log();
    let v = audit::verify(&path)?;
    if !v.exists {
        eprintln!("guardsh: no audit log at {}: nothing has been recorded yet, or it was deleted", path.display());
        return Ok(ExitCode::FAILURE);
    }
    if v.problems.is_empty() {
        println!("ok: {} records in {}, chain intact; head {}", v.records, path.display(), v.head);
        println!("(keep the head hash elsewhere to detect records removed from the end later)");
        return Ok(ExitCode::SUCCESS);
    }
    for (line, problem) in &v.problems {
        eprintln!("{}:{line}: {problem}", path.display());
    }
    let problems =
        if v.problems.len() == 1 { "1 problem".to_string() } else { format!("{} problems", v.problems.len()) };
    eprintln!(
        "guardsh: the audit log has been altered or damaged ({problems} in {} records); keep a copy as evidence",
        v.records
    );
    Ok(ExitCode::FAILURE)
}

/// Which records `audit tail` shows.
#[derive(Debug, Default)]
pub struct Filter {
    /// Only this tool's records.
    pub tool: Option<String>,
    /// Only records whose decision (`allow`, `ask`, `deny`, `error`) or outcome (`exec`,
    /// `approved`, `denied_by_human`, ...) is this.
    pub decision: Option<String>,
    /// Only records from this time on: a duration back from now (`30m`, `2h`, `1d`) or the start
    /// of a UTC time (`2026-12-03`, `2026-12-03T10:00`).
    pub since: Option<String>,
}

impl Filter {
    /// The earliest time shown, in the audit log's own format (which sorts as text).
    fn since(&self) -> anyhow::Result<Option<String>> {
        let Some(text) = self.since.as_deref() else { return Ok(None) };
        let back = match text.strip_suffix('d').and_then(|d| d.parse::<u64>().ok()) {
            Some(days) => Some(days * 86_400),
            None => crate::timefmt::parse_duration(text),
        };
        if let Some(secs) = back {
            let t = std::time::SystemTime::now() - std::time::Duration::from_secs(secs);
            return Ok(Some(crate::timefmt::rfc3339(t)));
        }
        let looks_like_time = text.len() >= 4
            && text.chars().all(|c| c.is_ascii_digit() || "-T:.Z".contains(c))
            && text.starts_with(|c: char| c.is_ascii_digit());
        anyhow::ensure!(
            looks_like_time,
            "--since {text:?}: give a duration back from now (30m, 2h, 1d) or a UTC time (2026-12-03, 2026-12-03T10:00)"
        );
        Ok(Some(text.to_string()))
    }

    fn keeps(&self, r: &serde_json::Map<String, Value>, since: Option<&str>) -> bool {
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        self.tool.as_deref().is_none_or(|t| s("tool") == t)
            && self.decision.as_deref().is_none_or(|d| s("decision") == d || s("outcome") == d)
            && since.is_none_or(|t| s("time") >= t)
    }
}

pub fn tail(n: usize, as_json: bool, filter: &Filter) -> anyhow::Result<ExitCode> {
    let (paths, _) = here()?;
    let since = filter.since()?;
    let all = audit::tail(&paths.audit_log(), usize::MAX)?;
    let kept: Vec<&Value> = all
        .iter()
        .filter(|v| match v {
            Value::Object(r) => filter.keeps(r, since.as_deref()),
            // An unreadable line is shown whatever the filter: it may be what someone hid.
            _ => true,
        })
        .collect();
    for record in &kept[kept.len().saturating_sub(n)..] {
        if as_json {
            println!("{record}");
            continue;
        }
        let Value::Object(r) = record else {
            println!("(unreadable) {}", display::escape_text(&record.to_string()));
            continue;
        };
        println!("{}", line(r, crate::colour::stdout()));
    }
    Ok(ExitCode::SUCCESS)
}

/// One record in words: when, the mode, what the policy decided and what happened (with the
/// approval that let it run), the command, the rules, and the reason a human or a token gave.
fn line(r: &serde_json::Map<String, Value>, colour: bool) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
    let argv: Vec<String> = r
        .get("argv")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|w| w.as_str().map_or_else(|| w.to_string(), |s| display::shell_quote(std::ffi::OsStr::new(s))))
                .collect()
        })
        .unwrap_or_default();
    let rules: Vec<String> = r
        .get("rules")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let outcome = s("outcome");
    let request = r.get("request").and_then(Value::as_str);
    // A run a human or a token approved: the policy said ask (deny, in CI mode), and it ran.
    let decision = match (outcome.as_str(), request) {
        ("exec" | "exec_inside", Some(_)) => format!("{}>approved", s("decision")),
        _ => s("decision"),
    };
    let mut tail = String::new();
    if let Some(id) = request {
        tail.push_str(&format!("  request {id}"));
    }
    if let Some(by) = r.get("by").and_then(Value::as_object) {
        let who = by
            .get("principal")
            .and_then(Value::as_str)
            .map(|p| format!("signed by {p}"))
            .or_else(|| by.get("tty").and_then(Value::as_str).map(|t| format!("on {t}")))
            .or_else(|| by.get("uid").and_then(Value::as_u64).map(|u| format!("uid {u}")));
        if let Some(who) = who {
            tail.push_str(&format!("  by {who}"));
        }
    }
    // The reason, where it says more than the rule: a human's, a token's, a refusal's.
    if matches!(
        outcome.as_str(),
        "approved" | "approved_by_token" | "denied_by_human" | "refused" | "expired" | "withdrawn" | "config_error"
    ) {
        let reason = s("reason");
        if !reason.is_empty() && reason != "-" {
            tail.push_str(&format!("  reason: {reason}"));
        }
    }
    // Everything in a record came from an argv or a policy: escaped before it reaches a terminal,
    // then the decision (guardsh's own word) in colour.
    let esc = |t: &str| display::escape_text(t);
    let padded = format!("{:<14}", esc(&decision));
    let style = if request.is_some() && outcome.starts_with("exec") {
        Some(crate::colour::Style::Allow)
    } else {
        crate::colour::Style::of_decision(&s("decision"))
    };
    let decision = match style {
        Some(style) => crate::colour::paint(colour, style, &padded),
        None => padded,
    };
    format!(
        "{}  {:<11} {decision} {:<17} {}  [{}]{}",
        esc(&s("time")),
        esc(&s("mode")),
        esc(&outcome),
        esc(&argv.join(" ")),
        esc(&rules.join(",")),
        esc(&tail)
    )
}

use crate::display;
