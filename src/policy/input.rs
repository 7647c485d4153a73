//! The Rego stage's input document (docs/rego.md): what guardsh knows of one invocation, as JSON.
//!
//! Pure: the invocation, the tool's knowledge, the normalised command line, the rules' verdict and
//! the few facts read from the system (`Facts`) in; a `serde_json::Value` out. Version 1: fields
//! may be added, never renamed or given another meaning.

use serde_json::{Map, Value, json};

use crate::decision::{Cause, Verdict};
use crate::matching::NormalizedArgv;
use crate::pipeline::{Invocation, Stdin};
use crate::rules::Mode;
use crate::tools::ToolSpec;

/// The input's version: `input.version`.
pub const VERSION: u64 = 1;

/// What the input needs from outside the invocation (read by `super::gather`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub uid: u32,
    pub user: Option<String>,
    /// The kubeconfig's `current-context`, for a tool that reads one.
    pub kube_current_context: Option<String>,
}

/// The input document for `inv`.
pub fn build(
    inv: &Invocation,
    spec: &ToolSpec,
    argv: &NormalizedArgv,
    mode: Mode,
    verdict: &Verdict,
    facts: &Facts,
) -> Value {
    let mut flags: Map<String, Value> = Map::new();
    for f in &argv.flags {
        let values = flags.entry(f.name.clone()).or_insert_with(|| Value::Array(vec![]));
        if let Value::Array(list) = values {
            list.push(f.value.as_ref().map_or(Value::Null, |v| Value::String(v.clone())));
        }
    }
    let reading = crate::posture::read(&inv.tool, spec, argv);
    let catalog = reading.as_ref().map(|r| {
        json!({
            "command": r.entry().map(|e| e.path),
            "class": r.class().map(|c| c.as_str()),
            "known": r.entry().is_some(),
            "form": match &r.form {
                Some(crate::posture::Form::Help) => Some("help"),
                Some(crate::posture::Form::DryRun(_)) => Some("dry_run"),
                None => None,
            },
        })
    });
    let (cause, rule) = match &verdict.cause {
        Cause::Rule(id) => ("rule", Some(id.as_str())),
        Cause::Default => ("default", None),
        Cause::Catalog => ("catalog", None),
        Cause::UnknownTool => ("unknown_tool", None),
        Cause::Policy => ("policy", None),
    };
    json!({
        "version": VERSION,
        "tool": inv.tool,
        "argv": std::iter::once(&inv.argv0).chain(&inv.args).map(|a| crate::display::json_word(a)).collect::<Vec<_>>(),
        "words": argv.positionals,
        "flags": flags,
        "config": argv.config.iter().map(|c| json!({"key": c.key, "value": c.value, "class": c.class.as_str()})).collect::<Vec<_>>(),
        "uncertain": verdict.uncertain,
        "catalog": catalog,
        "sql": sql(inv, spec, argv),
        "cwd": crate::display::json_word(inv.cwd.as_os_str()),
        "selectors": selectors(inv, spec),
        "kube": kube(spec, argv, facts),
        "mode": mode.as_str(),
        "user": {"uid": facts.uid, "name": facts.user},
        "toml": {
            "action": verdict.action.as_str(),
            "reason": verdict.reason,
            "cause": cause,
            "rule": rule,
            "rules": verdict.matched,
            "ci_denied": verdict.ci_denied,
        },
    })
}

/// Whether `name` is one of the tool's selector variables (`AWS_ENDPOINT_URL_*` patterns too).
fn is_selector(spec: &ToolSpec, name: &str) -> bool {
    spec.selectors.iter().any(|s| match s.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => s == name,
    })
}

fn selectors(inv: &Invocation, spec: &ToolSpec) -> Value {
    let mut out = Map::new();
    for (k, v) in &inv.vars {
        if let Some(k) = k.to_str().filter(|k| is_selector(spec, k)) {
            out.insert(k.to_string(), crate::display::json_word(v));
        }
    }
    Value::Object(out)
}

/// For kubectl and helm: the context and namespace the command will use, where guardsh knows them.
fn kube(spec: &ToolSpec, argv: &NormalizedArgv, facts: &Facts) -> Value {
    if !spec.selectors.iter().any(|s| s == "KUBECONFIG") {
        return Value::Null;
    }
    let last = |names: &[&str]| {
        argv.flags.iter().rev().find(|f| names.contains(&f.name.as_str())).and_then(|f| f.value.clone())
    };
    let flag_context = last(&["--context", "--kube-context"]);
    let namespace = last(&["--namespace"]);
    let (context, from) = match (flag_context, &facts.kube_current_context) {
        (Some(c), _) => (Some(c), Some("flag")),
        (None, Some(c)) => (Some(c.clone()), Some("kubeconfig")),
        (None, None) => (None, None),
    };
    json!({
        "context": context,
        "context_from": from,
        "namespace": namespace,
        "all_namespaces": argv.flags.iter().any(|f| f.name == "--all-namespaces"),
    })
}

/// For a database client: the class guardsh gave its statements, and each statement it holds
/// (command flags, piped input) with its kind.
fn sql(inv: &Invocation, spec: &ToolSpec, argv: &NormalizedArgv) -> Value {
    let (Some(client), Some(class)) = (spec.sql, &argv.sql) else { return Value::Null };
    let (name, why) = match class {
        crate::sql::SqlClass::Read => ("read", None),
        crate::sql::SqlClass::Add(w) => ("add", Some(w)),
        crate::sql::SqlClass::Write(w) => ("write", Some(w)),
        crate::sql::SqlClass::Unknown(w) => ("unknown", Some(w)),
    };
    let mut texts: Vec<String> =
        client.command_flags().iter().flat_map(|f| argv.values(f)).flatten().map(str::to_string).collect();
    if let Stdin::Captured(bytes) = &inv.stdin
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        texts.push(text.to_string());
    }
    let statements: Vec<Value> = texts.iter().flat_map(|t| statements(client, t)).collect();
    json!({"class": name, "why": why, "text": texts.join("\n"), "statements": statements})
}

/// Each SQL statement in `text` and its kind (`SELECT`, `DELETE`, `DROP TABLE`, ...); for text
/// that does not parse as SQL, one entry of kind `UNKNOWN`.
fn statements(client: crate::tools::SqlClient, text: &str) -> Vec<Value> {
    use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
    let dialect: &dyn Dialect = match client {
        crate::tools::SqlClient::Mysql => &MySqlDialect {},
        crate::tools::SqlClient::Psql => &PostgreSqlDialect {},
        crate::tools::SqlClient::Mongosh => return vec![json!({"kind": "SCRIPT", "text": text})],
    };
    match sqlparser::parser::Parser::parse_sql(dialect, text) {
        Ok(list) => list
            .iter()
            .map(|s| {
                let text = s.to_string();
                json!({"kind": kind(&text), "text": text})
            })
            .collect(),
        Err(_) => vec![json!({"kind": "UNKNOWN", "text": text})],
    }
}

/// A statement's kind: its first keyword, and the object kind for `CREATE`, `DROP`, `ALTER`,
/// `TRUNCATE` (`DROP TABLE`).
fn kind(statement: &str) -> String {
    let words: Vec<String> = statement.split_whitespace().take(4).map(str::to_ascii_uppercase).collect();
    let Some(first) = words.first() else { return "UNKNOWN".into() };
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => {
            let object = words[1..].iter().find(|w| {
                !matches!(
                    w.as_str(),
                    "OR" | "REPLACE" | "TEMPORARY" | "TEMP" | "UNIQUE" | "GLOBAL" | "LOCAL" | "UNLOGGED"
                )
            });
            object.map_or_else(|| first.clone(), |o| format!("{first} {o}"))
        }
        _ => first.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_kinds() {
        for (sql, want) in [
            ("select 1", "SELECT"),
            ("DROP TABLE t", "DROP TABLE"),
            ("create or replace function f() returns int as 'select 1' language sql", "CREATE FUNCTION"),
            ("delete from t", "DELETE"),
            ("", "UNKNOWN"),
        ] {
            assert_eq!(kind(sql), want, "{sql}");
        }
        let got = statements(crate::tools::SqlClient::Psql, "select 1; drop table users");
        let kinds: Vec<&str> = got.iter().filter_map(|s| s["kind"].as_str()).collect();
        assert_eq!(kinds, ["SELECT", "DROP TABLE"]);
        assert_eq!(statements(crate::tools::SqlClient::Psql, "\\dt; nonsense(")[0]["kind"], "UNKNOWN");
    }
}
