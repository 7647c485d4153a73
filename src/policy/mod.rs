//! The Rego stage: after the rules decide, a Rego policy (in-process, or on an OPA server) may make the decision stricter, never looser.
//!
//! `[policy]` in a base layer names `.rego` files and JSON data (`rego.rs` evaluates them with
//! regorus, through a cached RVM program), and/or an OPA server's Data API (`opa.rs`). Each gets
//! the same input (`input.rs`, documented in docs/rego.md) and must answer at
//! `data.guardsh.decision` with `{"action": "allow"|"ask"|"deny", "reasons": [...]}`. The final
//! decision is the strictest of the rules' and every engine's. Anything else fails closed: a file
//! that does not parse or cannot be read, an undefined decision, an evaluation error, a time
//! limit, an answer of the wrong shape all deny (an OPA server that fails may ask instead, with
//! `on_error = "ask"`), and say why.
//!
//! A policy that is not configured costs one branch: `stage` returns before anything else.

pub mod bundle;
pub mod decision_log;
pub mod input;
pub mod opa;
pub mod rego;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::decision::{Cause, Verdict};
use crate::matching::NormalizedArgv;
use crate::pipeline::Invocation;
use crate::rules::{Action, Mode};
use crate::tools::ToolSpec;

/// Where the decision is, as a rule path and as an OPA Data API path.
pub const DECISION: &str = "data.guardsh.decision";
pub const DECISION_PATH: &str = "guardsh/decision";

/// Default time limits: an in-process evaluation, and an OPA server's answer.
pub const EMBEDDED_TIMEOUT_MS: u64 = 200;
pub const OPA_TIMEOUT_MS: u64 = 500;

/// `[policy]` as compiled from the base layers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Absolute paths or globs of `.rego` files.
    pub rego: Vec<String>,
    /// Absolute paths or globs of JSON data documents.
    pub data: Vec<String>,
    pub opa_url: Option<String>,
    /// What a failing OPA server gives: deny (`None`, the default) or ask.
    pub on_error: Option<Action>,
    pub timeout_ms: Option<u64>,
    pub decision_log: Option<String>,
    /// Named by the root-owned system layer: its files must be root's too, and no compiled
    /// program is read from the user's (agent-writable) state directory.
    pub system: bool,
}

impl Settings {
    pub fn is_configured(&self) -> bool {
        !self.rego.is_empty() || self.opa_url.is_some()
    }
}

/// A decision as the policy gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub reasons: Vec<String>,
}

/// What one engine said, for `check --json`, the decision log and the refusal.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `rego` (in-process) or `opa` (a server).
    pub engine: &'static str,
    /// The value at `data.guardsh.decision`, as the engine gave it; `None` when undefined or failed.
    pub result: Option<Value>,
    /// What guardsh made of it: the decision, or the fail-closed one.
    pub decision: Decision,
    /// Why the engine's answer was not used as given (the fail-closed cases).
    pub error: Option<String>,
    /// How the in-process policy was evaluated: `rvm`, `rvm (cached)`, `interpreter`.
    pub how: Option<String>,
    pub micros: u128,
}

/// The stage's whole story for one invocation.
#[derive(Debug, Clone)]
pub struct Report {
    pub input: Value,
    pub outcomes: Vec<Outcome>,
    /// The strictest of the outcomes.
    pub action: Action,
    /// The stage made the rules' decision stricter.
    pub tightened: bool,
    /// Names the in-process policy's files and bytes (the decision log's bundle revision).
    pub revision: Option<String>,
}

impl Report {
    pub fn to_json(&self) -> Value {
        json!({
            "input": self.input,
            "action": self.action.as_str(),
            "tightened": self.tightened,
            "revision": self.revision,
            "engines": self.outcomes.iter().map(|o| json!({
                "engine": o.engine,
                "result": o.result,
                "action": o.decision.action.as_str(),
                "reasons": o.decision.reasons,
                "error": o.error,
                "how": o.how,
                "micros": o.micros as u64,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The one hook, shared by the shim, the broker and `guardsh check` (`pipeline::evaluate_files`):
/// `None` at once when no Rego stage is configured; otherwise evaluates it and makes `verdict`
/// the strictest of the rules' and the stage's decisions.
pub fn stage(
    settings: &Settings,
    inv: &Invocation,
    spec: &ToolSpec,
    argv: &NormalizedArgv,
    mode: Mode,
    verdict: &mut Verdict,
) -> Option<Report> {
    if !settings.is_configured() {
        return None;
    }
    let facts = gather(inv, spec, argv);
    let input = input::build(inv, spec, argv, mode, verdict, &facts);
    let paths = crate::paths::Paths::discover().ok();
    let state_dir = paths.as_ref().map(|p| p.state_dir.as_path());
    let mut report = evaluate(settings, input, state_dir);
    report.tightened = apply(&report, mode, verdict);
    if let Some(log) = &settings.decision_log {
        decision_log::append(Path::new(log), &report, verdict.action);
    }
    Some(report)
}

/// The facts the input needs from the system: who runs this, and the kubeconfig's current
/// context for a tool that reads one (the `--kubeconfig` file, else the first `KUBECONFIG` entry,
/// else `~/.kube/config`).
fn gather(inv: &Invocation, spec: &ToolSpec, argv: &NormalizedArgv) -> input::Facts {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid).ok().flatten().map(|u| u.name);
    let kube_current_context = spec.selectors.iter().any(|s| s == "KUBECONFIG").then(|| {
        let flag = argv.flags.iter().rev().find(|f| f.name == "--kubeconfig").and_then(|f| f.value.clone());
        let var = crate::env::get(&inv.vars, "KUBECONFIG")
            .and_then(|v| v.to_str())
            .and_then(|v| v.split(':').find(|p| !p.is_empty()))
            .map(str::to_string);
        let home = crate::env::get(&inv.vars, "HOME").map(|h| Path::new(h).join(".kube/config"));
        let file = flag.or(var).map(PathBuf::from).or(home)?;
        current_context(&inv.cwd.join(file))
    });
    input::Facts { uid: uid.as_raw(), user, kube_current_context: kube_current_context.flatten() }
}

/// A kubeconfig's top-level `current-context`, read as a line (no YAML parser).
fn current_context(file: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(file).ok()?.take(1 << 20).read_to_string(&mut text).ok()?;
    let line = text.lines().find_map(|l| l.strip_prefix("current-context:"))?;
    let value = line.split(" #").next().unwrap_or("").trim().trim_matches(|c| c == '"' || c == '\'');
    (!value.is_empty()).then(|| value.to_string())
}

/// Evaluates every configured engine on `input`. `state_dir` holds the compiled-program cache.
pub fn evaluate(settings: &Settings, input: Value, state_dir: Option<&Path>) -> Report {
    let mut outcomes = Vec::new();
    let mut revision = None;
    if !settings.rego.is_empty() {
        let start = Instant::now();
        let limit = Duration::from_millis(settings.timeout_ms.unwrap_or(EMBEDDED_TIMEOUT_MS));
        let cache = if settings.system { None } else { state_dir.map(|d| d.join("rego-cache")) };
        let (result, how) = match rego::Sources::load(settings) {
            Ok(sources) => {
                revision = Some(sources.revision.clone().unwrap_or_else(|| sources.key()[..16].to_string()));
                let (r, how) = rego::evaluate(&sources, &input, limit, cache.as_deref());
                (r, Some(how.to_string()))
            }
            Err(e) => (Err(e), None),
        };
        outcomes.push(outcome("rego", result, Action::Deny, how, start));
    }
    if let Some(url) = &settings.opa_url {
        let start = Instant::now();
        let limit = Duration::from_millis(settings.timeout_ms.unwrap_or(OPA_TIMEOUT_MS));
        let result = opa::Target::parse(url).and_then(|t| opa::query(&t, &input, limit));
        outcomes.push(outcome("opa", result, settings.on_error.unwrap_or(Action::Deny), None, start));
    }
    let action = outcomes.iter().map(|o| o.decision.action).max().unwrap_or(Action::Deny);
    Report { input, outcomes, action, tightened: false, revision }
}

fn outcome(
    engine: &'static str,
    result: Result<Option<Value>, String>,
    on_error: Action,
    how: Option<String>,
    start: Instant,
) -> Outcome {
    let (decision, error, result) = match result {
        Ok(value) => match parse_decision(value.as_ref()) {
            Ok(d) => (d, None, value),
            Err(e) => (failed(engine, on_error, &e), Some(e), value),
        },
        Err(e) => (failed(engine, on_error, &e), Some(e), None),
    };
    Outcome { engine, result, decision, error, how, micros: start.elapsed().as_micros() }
}

fn failed(engine: &str, action: Action, why: &str) -> Decision {
    let what = if engine == "opa" { "the OPA server" } else { "the Rego policy" };
    Decision { action, reasons: vec![format!("{what} gave no usable decision ({why}), so guardsh fails closed")] }
}

/// The value at `data.guardsh.decision`, or why it is not a decision.
pub fn parse_decision(value: Option<&Value>) -> Result<Decision, String> {
    let Some(value) = value else {
        return Err(format!("{DECISION} is undefined for this input"));
    };
    let Some(obj) = value.as_object() else {
        return Err(format!("{DECISION} is not an object"));
    };
    let action = match obj.get("action").and_then(Value::as_str) {
        Some("allow") => Action::Allow,
        Some("ask") => Action::Ask,
        Some("deny") => Action::Deny,
        _ => return Err(format!("{DECISION}.action is not \"allow\", \"ask\" or \"deny\"")),
    };
    let reasons = match obj.get("reasons").and_then(Value::as_array) {
        Some(list) => list.iter().map(|r| r.as_str().map(str::to_string)).collect::<Option<Vec<_>>>(),
        None => None,
    };
    let Some(reasons) = reasons else {
        return Err(format!("{DECISION}.reasons is not a list of strings"));
    };
    Ok(Decision { action, reasons })
}

/// Makes `verdict` the strictest of itself and the report. An `ask` in CI mode is a deny that a
/// signed token may authorize, as for the rules.
pub fn apply(report: &Report, mode: Mode, verdict: &mut Verdict) -> bool {
    let mut action = report.action;
    let ci_denied = action == Action::Ask && mode == Mode::Ci;
    if ci_denied {
        action = Action::Deny;
    }
    if action <= verdict.action {
        return false;
    }
    let reasons: Vec<&str> = report
        .outcomes
        .iter()
        .filter(|o| o.decision.action == report.action)
        .flat_map(|o| o.decision.reasons.iter().map(String::as_str))
        .collect();
    verdict.reason = if reasons.is_empty() {
        format!("the policy at {DECISION} says {}", report.action.as_str())
    } else {
        reasons.join("; ")
    };
    verdict.action = action;
    verdict.cause = Cause::Policy;
    verdict.ci_denied = ci_denied;
    verdict.no_wait = false;
    true
}

/// The files `patterns` name, sorted, each once. A pattern that names nothing is an error: a
/// policy that silently lost its files would decide less than its author wrote.
pub fn expand(patterns: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for pattern in patterns {
        let found = if pattern.contains(['*', '?', '[']) { glob_files(pattern)? } else { vec![PathBuf::from(pattern)] };
        if found.is_empty() {
            return Err(format!("{pattern} names no file"));
        }
        out.extend(found);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Files matching a glob whose wildcards are in its last component (`/etc/guardsh/policy/*.rego`).
fn glob_files(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let path = Path::new(pattern);
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(format!("{pattern}: not a path"));
    };
    if dir.to_str().is_some_and(|d| d.contains(['*', '?', '['])) {
        return Err(format!("{pattern}: wildcards only in the file name"));
    }
    let matcher = globset::Glob::new(name).map_err(|e| format!("{pattern}: {e}"))?.compile_matcher();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        if matcher.is_match(e.file_name()) {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// Reads a policy file. One the system layer names must be root's and not writable by group or
/// others, as the system policy is: otherwise an agent could loosen the human's stage.
pub fn read_file(path: &Path, system: bool) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let meta = f.metadata().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if system && (meta.uid() != 0 || meta.mode() & 0o022 != 0) {
        return Err(format!(
            "{} is named by the system policy, so it must be owned by root and not writable by group or others",
            path.display()
        ));
    }
    let mut bytes = Vec::new();
    f.take(16 << 20).read_to_end(&mut bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_decision_of_the_right_shape_is_one() {
        let ok = |v: Value| parse_decision(Some(&v));
        assert_eq!(
            ok(json!({"action": "ask", "reasons": ["prod"]})),
            Ok(Decision { action: Action::Ask, reasons: vec!["prod".into()] })
        );
        assert!(ok(json!({"action": "allow", "reasons": [], "extra": 1})).is_ok());
        for bad in [
            json!(true),
            json!("allow"),
            json!({"action": "Allow", "reasons": []}),
            json!({"action": "permit", "reasons": []}),
            json!({"action": "allow"}),
            json!({"action": "deny", "reasons": "no"}),
            json!({"action": "deny", "reasons": [1]}),
            json!({"reasons": []}),
        ] {
            assert!(ok(bad.clone()).is_err(), "{bad}");
        }
        assert!(parse_decision(None).is_err());
    }

    fn verdict(action: Action) -> Verdict {
        Verdict {
            action,
            cause: Cause::Default,
            reason: "rules".into(),
            matched: vec![],
            grants: vec![],
            ci_denied: false,
            uncertain: None,
            no_wait: false,
            catalog: None,
        }
    }

    fn report(action: Action) -> Report {
        Report {
            input: json!({}),
            outcomes: vec![Outcome {
                engine: "rego",
                result: None,
                decision: Decision { action, reasons: vec!["why".into()] },
                error: None,
                how: None,
                micros: 0,
            }],
            action,
            tightened: false,
            revision: None,
        }
    }

    #[test]
    fn the_stage_only_tightens() {
        use Action::*;
        for (rules, stage, mode, want, ci) in [
            (Allow, Allow, Mode::Interactive, Allow, false),
            (Allow, Ask, Mode::Interactive, Ask, false),
            (Allow, Deny, Mode::Interactive, Deny, false),
            (Ask, Allow, Mode::Interactive, Ask, false),
            (Deny, Allow, Mode::Interactive, Deny, false),
            (Deny, Ask, Mode::Interactive, Deny, false),
            (Allow, Ask, Mode::Ci, Deny, true),
        ] {
            let mut v = verdict(rules);
            apply(&report(stage), mode, &mut v);
            assert_eq!((v.action, v.ci_denied), (want, ci), "{rules:?} {stage:?} {mode:?}");
            assert_eq!(v.cause == Cause::Policy, want != rules, "{rules:?} {stage:?}");
        }
    }
}
