//! In-process Rego with regorus: the policy compiled to an RVM program, cached in the state directory, with the interpreter as the fallback.
//!
//! The cache is keyed by regorus's version and the bytes of every policy and data file (and their
//! paths). A program that does not load in full (regorus's `Partial`), does not compile, or any
//! other doubt means the interpreter evaluates instead; a cache problem only costs time. The
//! cache is never used for a policy the system layer names (`Settings::system`): the state
//! directory is the agent's to write, and a forged program could drop the human's stage.

use std::io::Write;
use std::num::NonZeroU32;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regorus::rvm::{Program, RegoVM};
use regorus::utils::limits::ExecutionTimerConfig;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{DECISION, Settings};

/// The regorus release guardsh is built with: compiled programs of another are not read.
pub const REGORUS_VERSION: &str = "0.14.1";

/// The policy's text and data, read once per evaluation.
pub struct Sources {
    pub modules: Vec<(String, String)>,
    pub data: Vec<(String, String)>,
    /// An OPA bundle's `.manifest` revision, if one was read.
    pub revision: Option<String>,
}

impl Sources {
    /// Reads every file `[policy] rego` and `data` name; a `.tar.gz` in `rego` is an OPA bundle
    /// (`super::bundle`). Any failure is the stage's failure.
    pub fn load(settings: &Settings) -> Result<Self, String> {
        let mut sources = Sources { modules: vec![], data: vec![], revision: None };
        for (patterns, is_data) in [(&settings.rego, false), (&settings.data, true)] {
            for p in super::expand(patterns)? {
                let bytes = super::read_file(&p, settings.system)?;
                let name = p.display().to_string();
                if !is_data && name.ends_with(".tar.gz") {
                    let bundle = super::bundle::read(&name, &bytes)?;
                    sources.modules.extend(bundle.modules);
                    for (i, value) in bundle.data.iter().enumerate() {
                        sources.data.push((format!("{name}#data{i}"), value.to_string()));
                    }
                    sources.revision = bundle.revision.or(sources.revision.take());
                    continue;
                }
                let text = String::from_utf8(bytes).map_err(|_| format!("{name} is not UTF-8"))?;
                if is_data { sources.data.push((name, text)) } else { sources.modules.push((name, text)) }
            }
        }
        Ok(sources)
    }

    /// Names a compiled program: regorus's version, the entry point, every file's path and bytes.
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(REGORUS_VERSION.as_bytes());
        h.update(b"\0");
        h.update(DECISION.as_bytes());
        for (kind, list) in [("rego", &self.modules), ("data", &self.data)] {
            for (path, text) in list {
                h.update(format!("\0{kind}\0{}\0{path}\0{}\0", path.len(), text.len()).as_bytes());
                h.update(text.as_bytes());
            }
        }
        crate::approval::request::hex(&h.finalize())
    }
}

fn timer(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig { limit, check_interval: NonZeroU32::new(16).unwrap_or(NonZeroU32::MIN) }
}

/// The value at `data.guardsh.decision` for `input` (`None`: undefined), and how it was
/// evaluated.
pub fn evaluate(
    sources: &Sources,
    input: &Value,
    limit: Duration,
    cache: Option<&Path>,
) -> (Result<Option<Value>, String>, &'static str) {
    let input = regorus::Value::from(input.clone());
    let data = match merged_data(sources) {
        Ok(d) => d,
        Err(e) => return (Err(e), "none"),
    };
    let file = cache.map(|dir| dir.join(format!("{}.rvm", sources.key())));
    if let Some(program) = file.as_deref().and_then(read_program) {
        return (run_program(program, data, input, limit), "rvm (cached)");
    }
    let mut engine = match engine(sources, limit) {
        Ok(e) => e,
        Err(e) => return (Err(e), "none"),
    };
    if let Some(program) = compile(&mut engine) {
        if let (Some(dir), Some(file)) = (cache, file.as_deref()) {
            // Best effort: a cache that cannot be written only costs the next call a compile.
            let _ = write_program(dir, file, &program);
        }
        return (run_program(program, data, input, limit), "rvm");
    }
    engine.set_input(input);
    let result = engine.eval_rule(DECISION.to_string()).map_err(|e| format!("evaluation failed: {}", one_line(&e)));
    (result.and_then(to_json), "interpreter")
}

/// For `guardsh check-config`: loads, parses and compiles the configured policy, and says what
/// it found, or why every command would be denied.
pub fn check(settings: &Settings) -> Result<String, String> {
    let sources = Sources::load(settings)?;
    let mut engine = engine(&sources, Duration::from_secs(5))?;
    let how =
        if compile(&mut engine).is_some() { "compiled to an RVM program" } else { "evaluated by the interpreter" };
    Ok(format!("{} Rego files, {} data documents, {how}", sources.modules.len(), sources.data.len()))
}

/// The interpreter, for `evaluate` and for tests that compare it with the RVM program.
pub fn interpret(sources: &Sources, input: &Value, limit: Duration) -> Result<Option<Value>, String> {
    let mut engine = engine(sources, limit)?;
    engine.set_input(regorus::Value::from(input.clone()));
    engine.eval_rule(DECISION.to_string()).map_err(|e| format!("evaluation failed: {}", one_line(&e))).and_then(to_json)
}

fn one_line(e: &impl std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

fn engine(sources: &Sources, limit: Duration) -> Result<regorus::Engine, String> {
    let mut engine = regorus::Engine::new();
    // A builtin's error is an evaluation error (so a deny), not an undefined value that another
    // rule could turn into an allow: fail closed, as OPA does with strict builtin errors.
    engine.set_strict_builtin_errors(true);
    engine.set_execution_timer_config(timer(limit));
    for (path, text) in &sources.modules {
        engine
            .add_policy(path.clone(), text.clone())
            .map_err(|e| format!("{path} does not parse: {}", one_line(&e)))?;
    }
    for (path, text) in &sources.data {
        let value = regorus::Value::from_json_str(text).map_err(|e| format!("{path} is not JSON: {}", one_line(&e)))?;
        engine.add_data(value).map_err(|e| format!("{path}: {}", one_line(&e)))?;
    }
    Ok(engine)
}

/// All data documents merged, as the VM wants them (the engine merges them itself).
fn merged_data(sources: &Sources) -> Result<regorus::Value, String> {
    if sources.data.is_empty() {
        return Ok(regorus::Value::new_object());
    }
    let mut engine = regorus::Engine::new();
    for (path, text) in &sources.data {
        let value = regorus::Value::from_json_str(text).map_err(|e| format!("{path} is not JSON: {}", one_line(&e)))?;
        engine.add_data(value).map_err(|e| format!("{path}: {}", one_line(&e)))?;
    }
    Ok(engine.get_data())
}

/// The RVM program for the decision, or `None` when regorus cannot compile this policy to one.
fn compile(engine: &mut regorus::Engine) -> Option<Arc<Program>> {
    let compiled = engine.compile_with_entrypoint(&DECISION.into()).ok()?;
    regorus::languages::rego::compiler::Compiler::compile_from_policy(&compiled, &[DECISION]).ok()
}

fn run_program(
    program: Arc<Program>,
    data: regorus::Value,
    input: regorus::Value,
    limit: Duration,
) -> Result<Option<Value>, String> {
    let mut vm = RegoVM::new();
    vm.set_max_instructions(usize::MAX);
    vm.set_execution_timer_config(Some(timer(limit)));
    vm.set_strict_builtin_errors(true);
    vm.load_program(program);
    vm.set_data(data).map_err(|e| format!("data: {}", one_line(&e)))?;
    vm.set_input(input);
    vm.execute_entry_point_by_name(DECISION)
        .map_err(|e| format!("evaluation failed: {}", one_line(&e)))
        .and_then(to_json)
}

fn to_json(v: regorus::Value) -> Result<Option<Value>, String> {
    if v == regorus::Value::Undefined {
        return Ok(None);
    }
    let text = v.to_json_str().map_err(|e| format!("the result is not JSON: {}", one_line(&e)))?;
    serde_json::from_str(&text).map(Some).map_err(|e| format!("the result is not JSON: {e}"))
}

/// A cached program: a regular file of ours nobody else can write, that loads in full.
fn read_program(file: &Path) -> Option<Arc<Program>> {
    use std::io::Read;
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(file).ok()?;
    let meta = f.metadata().ok()?;
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return None;
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    match Program::deserialize_binary(&bytes).ok()? {
        regorus::rvm::program::DeserializationResult::Complete(p) => Some(Arc::new(p)),
        regorus::rvm::program::DeserializationResult::Partial(_) => None,
    }
}

/// Publishes a program: a new file (0600) in a 0700 directory, renamed into place.
fn write_program(dir: &Path, file: &Path, program: &Program) -> std::io::Result<()> {
    let bytes = program.serialize_binary().map_err(std::io::Error::other)?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        // Programs of older policies go: one current entry per policy is enough.
        let mut old: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "rvm"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        old.sort();
        let excess = old.len().saturating_sub(8);
        for (_, p) in old.into_iter().take(excess) {
            let _ = std::fs::remove_file(p);
        }
    }
    let tmp = dir.join(format!(".{}.{}", std::process::id(), crate::random::token(8)?));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let renamed = f.write_all(&bytes).and_then(|()| std::fs::rename(&tmp, file));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sources(text: &str) -> Sources {
        Sources { modules: vec![("p.rego".into(), text.into())], data: vec![], revision: None }
    }

    const POLICY: &str = r#"package guardsh
default decision := {"action": "allow", "reasons": []}
decision := {"action": "deny", "reasons": [sprintf("no %s in prod", [input.tool])]} if {
    input.flags["--namespace"][_] == "prod"
}
decision := {"action": "ask", "reasons": ["drop"]} if {
    regex.match(`(?i)\bdrop\s+table\b`, input.sql.text)
}
"#;

    #[test]
    fn program_cached_program_and_interpreter_agree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = sources(POLICY);
        let limit = Duration::from_secs(2);
        for input in [
            json!({"tool": "kubectl", "flags": {"--namespace": ["prod"]}}),
            json!({"tool": "kubectl", "flags": {"--namespace": ["dev"]}}),
            json!({"tool": "psql", "flags": {}, "sql": {"text": "Drop  TABLE x"}}),
            json!({}),
        ] {
            let interpreted = interpret(&s, &input, limit);
            let (fresh, how) = evaluate(&s, &input, limit, Some(dir.path()));
            assert_eq!(how, "rvm");
            let (cached, how) = evaluate(&s, &input, limit, Some(dir.path()));
            assert_eq!(how, "rvm (cached)");
            assert_eq!(fresh, interpreted, "{input}");
            assert_eq!(cached, interpreted, "{input}");
            std::fs::remove_dir_all(dir.path()).expect("clear cache");
        }
        let deny = interpret(&s, &json!({"tool": "kubectl", "flags": {"--namespace": ["prod"]}}), limit);
        assert_eq!(deny, Ok(Some(json!({"action": "deny", "reasons": ["no kubectl in prod"]}))));
        // `(?i)\b...\s+`: needs regex's Unicode features (without them, an "invalid regex").
        let ask = evaluate(&s, &json!({"tool": "psql", "flags": {}, "sql": {"text": "Drop  TABLE x"}}), limit, None).0;
        assert_eq!(ask, Ok(Some(json!({"action": "ask", "reasons": ["drop"]}))));
    }

    #[test]
    fn a_forged_or_foreign_cache_entry_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = sources(POLICY);
        let file = dir.path().join(format!("{}.rvm", s.key()));
        std::fs::write(&file, b"garbage").expect("write");
        let (r, how) = evaluate(&s, &json!({}), Duration::from_secs(2), Some(dir.path()));
        assert_eq!(how, "rvm");
        assert_eq!(r, Ok(Some(json!({"action": "allow", "reasons": []}))));
    }

    #[test]
    fn failures_are_errors_or_undefined() {
        let limit = Duration::from_secs(2);
        let no_default = sources("package guardsh\ndecision := {\"action\": \"allow\"} if input.x\n");
        assert_eq!(evaluate(&no_default, &json!({}), limit, None).0, Ok(None));
        assert_eq!(interpret(&no_default, &json!({}), limit), Ok(None));
        let broken = sources("package guardsh\ndecision := {\n");
        assert!(evaluate(&broken, &json!({}), limit, None).0.is_err());
        let slow = sources(
            "package guardsh\ndecision := {\"action\": \"allow\", \"reasons\": [], \"n\": count([x | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); x := i * j])}\n",
        );
        let (r, _) = evaluate(&slow, &json!({}), Duration::from_millis(5), None);
        assert!(r.as_ref().is_err_and(|e| e.contains("evaluation failed") && e.contains("time")), "{r:?}");
        assert!(interpret(&slow, &json!({}), Duration::from_millis(5)).is_err());
    }
}
