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

pub fn tail(n: usize, as_json: bool) -> anyhow::Result<ExitCode> {
    let (paths, _) = here()?;
    for record in audit::tail(&paths.audit_log(), n)? {
        if as_json {
            println!("{record}");
            continue;
        }
        let Value::Object(r) = &record else {
            println!("(unreadable) {}", display::escape_text(&record.to_string()));
            continue;
        };
        let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
        let argv: Vec<String> = r
            .get("argv")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|w| {
                        w.as_str().map_or_else(|| w.to_string(), |s| display::shell_quote(std::ffi::OsStr::new(s)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rules: Vec<String> = r
            .get("rules")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        // Everything in a record came from an argv or a policy; escape it before it reaches a terminal.
        let request = r.get("request").and_then(Value::as_str).map_or(String::new(), |id| format!("  request {id}"));
        let line = format!(
            "{}  {:<5} {:<17} {}  [{}]{request}",
            s("time"),
            s("decision"),
            s("outcome"),
            argv.join(" "),
            rules.join(",")
        );
        println!("{}", display::escape_text(&line));
    }
    Ok(ExitCode::SUCCESS)
}

use crate::display;
