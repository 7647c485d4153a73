//! `guardsh policy test`: runs the Rego stage against a table of invocations with expected decisions, as `opa test` does for a policy.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Deserialize;
use serde_json::json;

use super::{here, load_policy};
use crate::pipeline::{self, Invocation, Stdin};
use crate::rules::Action;

/// The table: `[[case]]` entries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[serde(default)]
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: Option<String>,
    /// The command line, tool first.
    argv: Vec<String>,
    /// The invocation's environment (only these variables).
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    /// Piped standard input (SQL for a database client).
    stdin: Option<String>,
    /// The working directory (default: here).
    cwd: Option<PathBuf>,
    /// The final decision: the rules' and the Rego stage's, the strictest.
    expect: Option<Action>,
    /// The Rego stage's decision alone.
    rego: Option<Action>,
}

pub fn test(table: &Path, rego: &[PathBuf], data: &[PathBuf], as_json: bool) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let mut policy = match load_policy(&paths, &cwd) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("guardsh: the policy is invalid, so there is nothing to test against:\n{e}");
            return Ok(ExitCode::from(crate::exit::CONFIG));
        }
    };
    if !rego.is_empty() {
        let absolute = |p: &PathBuf| cwd.join(p).display().to_string();
        policy.rego = crate::policy::Settings {
            rego: rego.iter().map(absolute).collect(),
            data: data.iter().map(absolute).collect(),
            ..Default::default()
        };
    }
    // A test is not a decision: nothing goes to the decision log.
    policy.rego.decision_log = None;
    if !policy.rego.is_configured() {
        eprintln!("guardsh: no Rego policy to test: name one with --rego FILE, or with [policy] rego in your policy");
        return Ok(ExitCode::from(crate::exit::USAGE));
    }
    let text = std::fs::read_to_string(table).with_context(|| format!("cannot read {}", table.display()))?;
    let table: Table =
        toml::from_str(&text).with_context(|| format!("{} is not a table of [[case]]s", table.display()))?;
    let sources =
        if policy.rego.rego.is_empty() { None } else { Some(crate::policy::rego::Sources::load(&policy.rego)) };
    let (mut passed, mut failed) = (0usize, 0usize);
    for (i, case) in table.case.iter().enumerate() {
        let name = case.name.clone().unwrap_or_else(|| format!("case {}", i + 1));
        let Some((argv0, args)) = case.argv.split_first() else {
            anyhow::bail!("{name}: argv is empty");
        };
        let inv = Invocation {
            tool: Path::new(argv0).file_name().map_or(argv0.clone(), |n| n.to_string_lossy().into_owned()),
            argv0: argv0.into(),
            args: args.iter().map(OsString::from).collect(),
            vars: case.env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            cwd: case.cwd.as_ref().map_or(cwd.clone(), |c| cwd.join(c)),
            stdin: case.stdin.as_ref().map_or(Stdin::Unknown, |s| Stdin::Captured(s.clone().into_bytes())),
        };
        let eval = pipeline::evaluate_with(&policy, &inv, false, None);
        let stage = eval.policy_stage.as_ref();
        let stage_action = stage.map(|s| s.action);
        let mut problems = Vec::new();
        if let Some(want) = case.expect
            && want != eval.verdict.action
        {
            problems.push(format!("expected {}, got {}", want.as_str(), eval.verdict.action.as_str()));
        }
        if let Some(want) = case.rego
            && Some(want) != stage_action
        {
            problems.push(format!(
                "expected the Rego stage to say {}, it said {}",
                want.as_str(),
                stage_action.map_or("nothing", Action::as_str)
            ));
        }
        // The program guardsh ran and regorus's interpreter must agree.
        let rego_outcome = stage.and_then(|s| s.outcomes.iter().find(|o| o.engine == "rego"));
        if let (Some(Ok(sources)), Some(o), Some(s)) = (&sources, rego_outcome, stage) {
            let limit = std::time::Duration::from_millis(
                policy.rego.timeout_ms.unwrap_or(crate::policy::EMBEDDED_TIMEOUT_MS).max(1000),
            );
            // An evaluation that failed (a time limit) is not compared; an undefined one is.
            let comparable = o.error.as_ref().is_none_or(|e| e.contains("is undefined"));
            if let Ok(interpreted) = crate::policy::rego::interpret(sources, &s.input, limit)
                && comparable
                && interpreted != o.result
            {
                problems.push(format!(
                    "the compiled program and the interpreter disagree: {:?} and {:?}",
                    o.result, interpreted
                ));
            }
        }
        if problems.is_empty() {
            passed += 1;
        } else {
            failed += 1;
        }
        if as_json {
            println!(
                "{}",
                json!({
                    "name": name,
                    "final": eval.verdict.action.as_str(),
                    "reason": eval.verdict.reason,
                    "policy": stage.map(crate::policy::Report::to_json),
                    "pass": problems.is_empty(),
                    "problems": problems,
                })
            );
        } else if problems.is_empty() {
            println!("PASS {name}: {}", eval.verdict.action.as_str());
        } else {
            println!("FAIL {name}: {} ({})", problems.join("; "), crate::display::escape_text(&eval.verdict.reason));
        }
    }
    if !as_json {
        println!("{passed} passed, {failed} failed");
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
