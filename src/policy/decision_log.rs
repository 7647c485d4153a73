//! Decision logs in OPA's shape (`decision_id`, `path`, `input`, `result`, `timestamp`, `bundles`), one JSON line per evaluation, beside the hash-chained audit log.
//!
//! For pipelines that already ingest OPA's decision logs. Best effort, like OPA's own: the audit
//! log is the record guardsh stands behind; a decision log that cannot be written changes no
//! decision.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::{Value, json};

use super::Report;
use crate::rules::Action;

/// One decision log event for `report`, whose final decision (with the rules') was `final_action`.
pub fn event(report: &Report, final_action: Action, decision_id: &str, timestamp: &str) -> Value {
    // OPA logs one query's result; guardsh's is the strictest engine's, and each engine's is kept.
    let result = report
        .outcomes
        .iter()
        .find(|o| o.decision.action == report.action && o.error.is_none())
        .and_then(|o| o.result.clone());
    let error = report.outcomes.iter().find_map(|o| o.error.clone());
    let revision = report.revision.clone().unwrap_or_else(|| "opa".into());
    let mut event = json!({
        "decision_id": decision_id,
        "path": super::DECISION_PATH,
        "input": report.input,
        "result": result,
        "timestamp": timestamp,
        "labels": {"app": "guardsh", "version": env!("CARGO_PKG_VERSION")},
        "bundles": {"guardsh": {"revision": revision}},
        "metrics": {"timer_rego_query_eval_ns": report.outcomes.iter().map(|o| o.micros as u64 * 1000).sum::<u64>()},
        "guardsh": {
            "final": final_action.as_str(),
            "stage": report.action.as_str(),
            "tightened": report.tightened,
            "engines": report.outcomes.iter().map(|o| json!({"engine": o.engine, "action": o.decision.action.as_str(), "error": o.error})).collect::<Vec<_>>(),
        },
    });
    if result.is_none()
        && let Some(obj) = event.as_object_mut()
    {
        obj.remove("result");
    }
    if let (Some(e), Some(obj)) = (error, event.as_object_mut()) {
        obj.insert("error".into(), json!({"code": "guardsh_fail_closed", "message": e}));
    }
    event
}

/// Appends the event for `report` to `file` (created 0600; a symlink is not followed).
pub fn append(file: &Path, report: &Report, final_action: Action) {
    let id = crate::random::token(16).unwrap_or_default();
    let now = crate::timefmt::rfc3339(std::time::SystemTime::now());
    let mut line = event(report, final_action, &id, &now).to_string();
    line.push('\n');
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(file);
    if let Ok(mut f) = opened {
        // One write: lines of concurrent shims do not interleave (O_APPEND).
        let _ = f.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Decision, Outcome};

    #[test]
    fn an_event_has_opas_fields() {
        let report = Report {
            input: json!({"version": 1, "tool": "kubectl"}),
            outcomes: vec![Outcome {
                engine: "rego",
                result: Some(json!({"action": "deny", "reasons": ["prod"]})),
                decision: Decision { action: Action::Deny, reasons: vec!["prod".into()] },
                error: None,
                how: Some("rvm".into()),
                micros: 12,
            }],
            action: Action::Deny,
            tightened: true,
            revision: Some("abc".into()),
        };
        let e = event(&report, Action::Deny, "id1", "2026-01-01T00:00:00Z");
        for field in ["decision_id", "path", "input", "result", "timestamp", "bundles", "labels"] {
            assert!(e.get(field).is_some(), "{field} in {e}");
        }
        assert_eq!(e["path"], "guardsh/decision");
        assert_eq!(e["result"]["action"], "deny");
        assert!(e["bundles"]["guardsh"]["revision"].is_string());
    }
}
