//! `guardsh check` (explain a decision without running anything) and `guardsh check-config`.

use std::ffi::OsString;
use std::process::ExitCode;

use serde_json::json;

use super::{here, invocation, load_policy};
use crate::decision::Cause;
use crate::display;
use crate::exec::FileId;
use crate::exit;
use crate::pipeline::{self, Evaluation, Invocation};

pub fn run(argv: &[OsString], as_json: bool) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let inv = invocation(argv, cwd)?;
    let policy = match load_policy(&paths, &inv.cwd) {
        Ok(p) => p,
        Err(e) => {
            if as_json {
                println!(
                    "{}",
                    json!({ "decision": "deny", "rules": [], "reason": format!("invalid policy: {e}"), "exit_code": exit::CONFIG })
                );
            } else {
                eprintln!("guardsh: the policy is invalid, so every guarded command is refused:\n{e}");
            }
            return Ok(ExitCode::from(exit::CONFIG));
        }
    };
    let eval = pipeline::evaluate_reading_files(&policy, &inv, true, FileId::current_exe().ok());
    let notes = notes(&inv, &super::shim_dir(None, &paths, Some(&policy)));
    if as_json {
        let mut v = to_json(&inv, &eval);
        v["notes"] = json!(notes);
        println!("{v}");
    } else {
        // Positional words, flag values and policy text all reach the terminal here.
        let text = display::escape_lines(&explain(&inv, &eval));
        print!("{}", paint_decision(&text, crate::colour::stdout()));
        for note in notes {
            println!("note:        {}", display::escape_text(&note));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `check` cannot see from the argv alone: whether this command line would reach guardsh.
fn notes(inv: &Invocation, shim_dir: &std::path::Path) -> Vec<String> {
    let tool = &inv.tool;
    if inv.argv0.as_encoded_bytes().contains(&b'/') {
        return vec![format!(
            "a command run by its path does not go through guardsh's shims; this is what the {tool} shim would decide"
        )];
    }
    let Ok(guardsh) = FileId::current_exe() else { return vec![] };
    if crate::shims::state(&shim_dir.join(tool), guardsh) != crate::shims::ShimState::Ours {
        return vec![format!(
            "there is no guardsh shim for {tool} in {}, so {tool} does not go through guardsh (run `guardsh install {tool}`)",
            shim_dir.display()
        )];
    }
    vec![]
}

fn cause(c: &Cause) -> (&'static str, Option<&str>) {
    match c {
        Cause::Rule(id) => ("rule", Some(id.as_str())),
        Cause::Default => ("default", None),
        Cause::Catalog => ("catalog", None),
        Cause::UnknownTool => ("unknown_tool", None),
        Cause::Policy => ("policy", None),
    }
}

fn to_json(inv: &Invocation, eval: &Evaluation) -> serde_json::Value {
    let v = &eval.verdict;
    let (cause, rule) = cause(&v.cause);
    let real = eval.real.as_ref().map(|r| match r {
        Ok(p) => json!(p.display().to_string()),
        Err(_) => serde_json::Value::Null,
    });
    json!({
        "tool": inv.tool,
        "argv": std::iter::once(&inv.argv0).chain(&inv.args).map(|a| display::json_word(a)).collect::<Vec<_>>(),
        "normalized": {
            "positionals": eval.argv.positionals,
            "flags": eval.argv.flags.iter().map(|f| json!({"name": f.name, "value": f.value})).collect::<Vec<_>>(),
            "config": eval.argv.config.iter().map(|c| json!({"key": c.key, "value": c.value, "class": c.class.as_str(), "reason": c.reason})).collect::<Vec<_>>(),
        },
        "uncertain": v.uncertain,
        "decision": v.action.as_str(),
        "cause": cause,
        "rule": rule,
        "rules": v.matched,
        "matches": eval.matched.iter().map(|r| json!({"id": r.id, "action": r.action.as_str(), "reason": r.reason, "origin": r.origin, "layer": r.layer.as_str()})).collect::<Vec<_>>(),
        "reason": v.reason,
        "catalog": v.catalog,
        "sql": eval.argv.sql.as_ref().map(|c| match c {
            crate::sql::SqlClass::Read => json!({"class": "read"}),
            crate::sql::SqlClass::Add(why) => json!({"class": "add", "why": why}),
            crate::sql::SqlClass::Write(why) => json!({"class": "write", "why": why}),
            crate::sql::SqlClass::Unknown(why) => json!({"class": "unknown", "why": why}),
        }),
        "mode": eval.mode.as_str(),
        "ci_denied": v.ci_denied,
        "env": { "stripped": eval.env.stripped, "passed": eval.env.passed },
        "real": real,
        "exit_code": eval.refusal_code(),
        "policy": eval.policy_stage.as_ref().map(crate::policy::Report::to_json),
    })
}

fn explain(inv: &Invocation, eval: &Evaluation) -> String {
    use std::fmt::Write;
    let v = &eval.verdict;
    let mut s = String::new();
    let line =
        display::shell_join(std::iter::once(inv.argv0.as_os_str()).chain(inv.args.iter().map(OsString::as_os_str)));
    let _ = writeln!(s, "command:     {line}");
    let _ = writeln!(
        s,
        "verb words:  {}",
        if eval.argv.positionals.is_empty() { "(none)".into() } else { eval.argv.positionals.join(" ") }
    );
    let flags: Vec<String> = eval
        .argv
        .flags
        .iter()
        .map(|f| f.value.as_ref().map_or(f.name.clone(), |v| format!("{}={v}", f.name)))
        .collect();
    let _ = writeln!(s, "flags:       {}", if flags.is_empty() { "(none)".into() } else { flags.join(" ") });
    // Each configuration setting (git's `-c`) with its class: what a rule's `config` tests.
    for (i, c) in eval.argv.config.iter().enumerate() {
        let label = if i == 0 { "settings:" } else { "" };
        let value = c.value.as_deref().map_or_else(|| "(from the environment)".to_string(), display::escape_text);
        let _ =
            writeln!(s, "{label:<12} {}={value}: {} ({})", display::escape_text(&c.key), c.class.as_str(), c.reason);
    }
    for reading in &eval.argv.equivalents {
        let _ = writeln!(s, "also read as: {}", reading.positionals.join(" "));
    }
    for (what, read) in &eval.file_bindings {
        let _ = writeln!(s, "input:       {}: {read}", what.trim_start_matches('(').trim_end_matches(')'));
    }
    if let Some(u) = &v.uncertain {
        let _ = writeln!(s, "uncertain:   {u} (allow rules do not apply)");
    }
    let _ = writeln!(s, "mode:        {}", eval.mode.as_str());
    if eval.matched.is_empty() {
        let _ = writeln!(s, "matched:     no rule");
    }
    for (i, r) in eval.matched.iter().enumerate() {
        let label = if i == 0 { "matched:" } else { "" };
        let _ = writeln!(
            s,
            "{label:<12} {} [{}] {} ({}, {})",
            r.id,
            r.action.as_str(),
            r.reason,
            r.layer.as_str(),
            r.origin
        );
    }
    let why = match &v.cause {
        Cause::Rule(id) if eval.matched.len() > 1 => {
            format!("rule {id}, the strictest of {} matching rules (deny > ask > allow)", eval.matched.len())
        }
        Cause::Rule(id) => format!("rule {id}"),
        Cause::Default => "no rule matched; the tool's default applies".into(),
        Cause::Catalog => "no rule matched; the posture for the command's class applies".into(),
        Cause::UnknownTool => "the policy has no rules for this tool".into(),
        Cause::Policy => format!("the Rego policy ({}), stricter than the rules", crate::policy::DECISION),
    };
    let _ = writeln!(
        s,
        "decision:    {}: {why}{}",
        v.action.as_str().to_uppercase(),
        if v.ci_denied { "; CI mode turned ask into deny" } else { "" }
    );
    let _ = writeln!(s, "reason:      {}", v.reason);
    if let Some(c) = &v.catalog {
        let _ = writeln!(s, "catalog:     {c}");
    }
    // For a database client: which statement made it more than a read.
    match &eval.argv.sql {
        Some(crate::sql::SqlClass::Read) => {
            let _ = writeln!(s, "sql:         only reads");
        }
        Some(crate::sql::SqlClass::Add(why)) => {
            let _ = writeln!(s, "sql:         only adds ({why})");
        }
        Some(crate::sql::SqlClass::Write(why)) => {
            let _ = writeln!(s, "sql:         writes: {why}");
        }
        Some(crate::sql::SqlClass::Unknown(why)) => {
            let _ = writeln!(s, "sql:         not certain: {why}");
        }
        None => {}
    }
    if let Some(stage) = &eval.policy_stage {
        for o in &stage.outcomes {
            let _ = writeln!(
                s,
                "policy:      {} ({}{}): {}{}",
                o.decision.action.as_str(),
                o.engine,
                o.how.as_deref().map_or(String::new(), |h| format!(", {h}")),
                if o.decision.reasons.is_empty() { "no reasons given".into() } else { o.decision.reasons.join("; ") },
                o.error.as_deref().map_or(String::new(), |e| format!(" [{e}]")),
            );
        }
    }
    let _ = writeln!(s, "exit:        {}", eval.refusal_code().map_or("runs the real tool".into(), |c| c.to_string()));
    let list = |l: &[String]| if l.is_empty() { "(none)".to_string() } else { l.join(" ") };
    let _ = writeln!(s, "env strips:  {}", list(&eval.env.stripped));
    let _ = writeln!(s, "env passes:  {}", list(&pipeline::shown_grants(inv, eval)));
    if let Some(real) = &eval.real {
        let _ = writeln!(
            s,
            "real tool:   {}",
            real.as_ref().map_or_else(|e| format!("not found ({e})"), |p| p.display().to_string())
        );
    }
    s
}

pub fn config() -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    // Checking also fills the compiled-policy cache for every tool, so shims need not compile.
    match crate::policy_cache::warm(&crate::config::Locations::new(&paths, &cwd), &paths.state_dir) {
        Ok(policy) => {
            match &policy.pack {
                Some(pack) => println!("{:<8} built-in pack {pack}", "pack"),
                None => println!("{:<8} no built-in pack", "pack"),
            }
            for (layer, path) in &policy.sources {
                println!("{:<8} {path}", layer.as_str());
            }
            if let Some(note) = &policy.pack_note {
                eprintln!("guardsh: {note}");
            }
            let catalogued: Vec<String> = policy
                .tools
                .iter()
                .filter(|(_, t)| t.posture.is_some())
                .filter_map(|(name, _)| crate::catalog::for_tool(name).map(|c| format!("{name} ({})", c.source)))
                .collect();
            if catalogued.is_empty() {
                println!("posture: none (commands no rule matches fall to each tool's default)");
            } else {
                println!("catalogs: {}", catalogued.join("; "));
            }
            // The Rego stage: a policy that does not load denies every command, so say so here.
            if !policy.rego.rego.is_empty() {
                match crate::policy::rego::check(&policy.rego) {
                    Ok(what) => println!("rego: {what}"),
                    Err(e) => {
                        eprintln!("guardsh: the Rego policy does not load: {}", crate::display::escape_text(&e));
                        eprintln!("guardsh: every guarded command is denied until it does");
                        return Ok(ExitCode::from(exit::CONFIG));
                    }
                }
            }
            if let Some(url) = &policy.rego.opa_url {
                println!("opa: {url} (asked on every guarded command)");
            }
            let rules: usize = policy.tools.values().map(|t| t.rules.len()).sum();
            let (approval, problem) = super::approval_status(&paths, &policy);
            println!("{approval}");
            if let Some(problem) = problem {
                eprintln!("guardsh: {problem}");
                eprintln!("guardsh: the policy requires signature approvals, and they cannot work until this is fixed");
                return Ok(ExitCode::from(exit::CONFIG));
            }
            println!(
                "ok: {} tools ({}), {rules} rules, mode {}",
                policy.tools.len(),
                policy.tools.keys().cloned().collect::<Vec<_>>().join(", "),
                policy.mode.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            eprintln!("guardsh: the policy is invalid; every guarded command is refused until these are fixed");
            Ok(ExitCode::from(exit::CONFIG))
        }
    }
}

/// The explanation with its decision word in colour (after escaping: only guardsh's own word).
fn paint_decision(text: &str, on: bool) -> String {
    use crate::colour::{Style, paint};
    text.lines()
        .map(|l| match l.strip_prefix("decision:    ").and_then(|rest| rest.split_once(':')) {
            Some((word, rest)) if on => match Style::of_decision(word) {
                Some(style) => format!("decision:    {}:{rest}\n", paint(true, style, word)),
                None => format!("{l}\n"),
            },
            _ => format!("{l}\n"),
        })
        .collect()
}
