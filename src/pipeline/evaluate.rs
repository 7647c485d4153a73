//! Decides one invocation: the policy, its normalised argv, the statements or files it reads, and
//! the verdict (`Evaluation`). Shared by the shim, `guardsh check` and the broker.

use crate::config::Locations;
use crate::decision::{self, Verdict};
use crate::env::{self, EnvPlan, EnvPolicy};
use crate::exec::{self, ExecError, FileId};
use crate::exit;
use crate::matching::{self, NormalizedArgv};
use crate::paths::Paths;
use crate::rules::{Action, ApprovalMode, ConfigError, Mode, Policy, Rule};
use crate::snapshot;
use crate::tools::{RawToolSpec, ToolSpec};
use std::borrow::Cow;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::{APPROVAL_TIMEOUT_VAR, Invocation, MODE_VAR, STDIN_LIMIT, Stdin, capture, capture_stdin};

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
    /// The real binary, when it will be needed (allow, ask) or asked about (check).
    pub real: Option<Result<PathBuf, ExecError>>,
    /// From the policy: how long a request waits and stays approvable, and whether to wait.
    pub approval_timeout: u64,
    pub wait: bool,
    /// What proves a human approved, and where the allowed signers and a CI token live.
    pub approval: ApprovalMode,
    pub allowed_signers: Option<PathBuf>,
    pub approval_file: Option<PathBuf>,
    /// A system policy is in force (so the allowed signers come from the system directory).
    pub system_policy: bool,
    /// For an ask that CI mode denied: the environment a signed approval token would give.
    pub approval_env: Option<EnvPlan>,
    /// The tool's selector variables (see `bound_environment`).
    pub selectors: Vec<String>,
    /// `guardsh run` may release credentials to a real tool this user can replace.
    pub trust_user_installed_tools: bool,
    /// Variables the tool's knowledge sets for it (`set_env`).
    pub set_env: Vec<(String, String)>,
    /// Inside guardsh run's sandbox the tool runs there, not outside (`runs_inside`).
    pub runs_inside: bool,
    /// What of the human's home the tool may reach when started outside the sandbox.
    pub own_files: Vec<String>,
    /// Flags naming configuration files the tool reads (`--kubeconfig`).
    pub selector_flags: Vec<String>,
    /// Input files read before deciding (`snapshot`): the tool gets exactly these bytes.
    pub files: Vec<snapshot::FileInput>,
    /// What the approval binds for them: `(file PATH)` and its hash, size and summary.
    pub file_bindings: Vec<(String, String)>,
    /// The Rego stage's input and answers, when one is configured (`crate::policy`).
    pub policy_stage: Option<crate::policy::Report>,
    /// `[mint.TOOL]`: what minting a credential for this command needs (`crate::mint`).
    pub mint: Option<crate::mint::Plan>,
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

/// CI mode comes from the policy, `GUARDSH_MODE=ci`, or a CI environment (`CI` set, even empty,
/// and not `false`/`0`). Environment variables can only switch CI mode on: an unknown `GUARDSH_MODE` value
/// counts as `ci`, and no value switches it off.
pub fn effective_mode(configured: Mode, guardsh_mode: Option<&OsStr>, ci: Option<&OsStr>) -> Mode {
    let from_var = match guardsh_mode.map(|v| v.to_string_lossy().to_ascii_lowercase()) {
        None => Mode::Interactive,
        Some(v) if v.is_empty() || v == "interactive" => Mode::Interactive,
        Some(_) => Mode::Ci,
    };
    let from_ci = match ci.map(|v| v.to_string_lossy().to_ascii_lowercase()) {
        // Set at all, even empty (`CI=`), is a CI environment, as the README says.
        Some(v) if v != "false" && v != "0" => Mode::Ci,
        _ => Mode::Interactive,
    };
    configured.max(from_var).max(from_ci)
}

/// The policy's approval timeout, shortened by `GUARDSH_APPROVAL_TIMEOUT` when that is a shorter
/// duration. A value that does not parse changes nothing: the variable may only tighten.
pub fn effective_timeout(configured: u64, var: Option<&OsStr>) -> u64 {
    let asked = var.and_then(OsStr::to_str).and_then(crate::timefmt::parse_duration);
    asked.map_or(configured, |a| a.min(configured))
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
    evaluate_files(policy, inv, vec![], resolve, guardsh)
}

/// `evaluate_with`, after reading the command's input files (`snapshot::take`) as the shim does:
/// what `guardsh check`, `approve` (re-asking the policy about a request) and `request` use, so
/// that they decide as the shim did.
pub fn evaluate_reading_files(policy: &Policy, inv: &Invocation, resolve: bool, guardsh: Option<FileId>) -> Evaluation {
    let spec = spec_for(policy, &inv.tool);
    let files = if spec.snapshot_flags.is_empty() && spec.snapshot_positionals.is_empty() {
        vec![]
    } else {
        snapshot::take(&inv.cwd, &spec, &matching::normalize(&inv.args, &spec))
    };
    evaluate_files(policy, inv, files, resolve, guardsh)
}

/// `evaluate_with`, given the snapshots of the command's input files (`snapshot::take`). A file
/// argument without one is not read with certainty, so no allow rule applies.
pub fn evaluate_files(
    policy: &Policy,
    inv: &Invocation,
    files: Vec<snapshot::FileInput>,
    resolve: bool,
    guardsh: Option<FileId>,
) -> Evaluation {
    let tool_policy = policy.tools.get(&inv.tool);
    let spec = spec_for(policy, &inv.tool);
    let mut argv = matching::normalize(&inv.args, &spec);
    let file_bindings = snapshot::read_inputs(&spec, &mut argv, &files);
    if let Some(client) = spec.sql {
        let mut class = sql_of(client, &argv, &inv.stdin, &spec, &files);
        if class == crate::sql::SqlClass::Read
            && let Some(why) = read_undone(client, &spec, &argv, inv)
        {
            class = crate::sql::SqlClass::Unknown(why);
        }
        for reading in &mut argv.equivalents {
            reading.sql = Some(class.clone());
        }
        argv.sql = Some(class);
    }
    // A run decided as a read gets what makes the server hold it to that (`read_env`).
    let mut set_env = spec.set_env.clone();
    if argv.sql == Some(crate::sql::SqlClass::Read) {
        set_env.extend(spec.read_env.iter().cloned());
    }
    let mode = effective_mode(policy.mode, inv.var(MODE_VAR), inv.var("CI"));
    let mut verdict = decision::decide(&inv.tool, tool_policy, &argv, mode);
    // The Rego stage, if configured: only ever stricter (`crate::policy`).
    let policy_stage = crate::policy::stage(&policy.rego, inv, &spec, &argv, mode, &mut verdict);
    let matched = tool_policy
        .map(|t| t.rules.iter().filter(|r| verdict.matched.contains(&r.id)).cloned().collect())
        .unwrap_or_default();

    let env_policy = EnvPolicy::of(policy);
    let grants: &[String] = if verdict.action == Action::Deny { &[] } else { &verdict.grants };
    let mut env = env::plan(&inv.vars, &env_policy, grants);
    // What a signed approval token would release for an ask that CI mode denied.
    let mut approval_env = verdict.ci_denied.then(|| env::plan(&inv.vars, &env_policy, &verdict.grants));
    let depth = exec::depth(inv.var(exec::DEPTH_VAR));
    for plan in std::iter::once(&mut env).chain(approval_env.as_mut()) {
        plan.vars.retain(|(k, _)| k != exec::DEPTH_VAR && !set_env.iter().any(|(n, _)| k == n.as_str()));
        plan.vars.push((exec::DEPTH_VAR.into(), depth.saturating_add(1).to_string().into()));
        plan.vars.extend(set_env.iter().map(|(k, v)| (k.into(), v.into())));
    }

    let real = (resolve || verdict.action != Action::Deny || verdict.ci_denied).then(|| match guardsh {
        Some(id) => exec::resolve_real(&inv.tool, inv.var("PATH"), id),
        None => Err(ExecError::NotFound { tool: inv.tool.clone() }),
    });
    let wait = policy.wait && !verdict.no_wait;
    // Only a tool with a provider pays for this (never the shim's allow path otherwise).
    let mint = policy.mint.get(&inv.tool).map(|provider| {
        let class = crate::posture::read(&inv.tool, &spec, &argv).and_then(|r| r.class());
        crate::mint::Plan {
            provider: provider.clone(),
            reads_only: match &argv.sql {
                Some(sql) => *sql == crate::sql::SqlClass::Read,
                None => class == Some(crate::catalog::Class::Read),
            },
            class,
            statements: spec.sql.and_then(|client| statements_held(client, &argv, &inv.stdin, &files)),
        }
    });
    Evaluation {
        argv,
        verdict,
        mode,
        env,
        approval_env,
        matched,
        real,
        approval_timeout: effective_timeout(policy.approval_timeout, inv.var(APPROVAL_TIMEOUT_VAR)),
        wait,
        approval: policy.approval,
        allowed_signers: policy.allowed_signers.as_ref().map(PathBuf::from),
        approval_file: policy.approval_file.as_ref().map(PathBuf::from),
        system_policy: policy.sources.iter().any(|(l, _)| *l == crate::rules::LayerKind::System),
        selectors: spec.selectors.clone(),
        trust_user_installed_tools: policy.trust_user_installed_tools,
        set_env,
        files,
        file_bindings,
        runs_inside: spec.runs_inside,
        own_files: spec.own_files.clone(),
        selector_flags: spec.selector_flags.clone(),
        policy_stage,
        mint,
    }
}

/// Every statement a database client will run, when guardsh holds them all (command strings,
/// the copies of statement files, captured stdin): what a minted credential's privileges are
/// derived from. `None` when any comes from elsewhere (a terminal, a file without a copy).
fn statements_held(
    client: crate::tools::SqlClient,
    argv: &NormalizedArgv,
    stdin: &Stdin,
    files: &[snapshot::FileInput],
) -> Option<Vec<String>> {
    let mut texts = Vec::new();
    for f in argv.flags.iter().filter(|f| client.file_flags().contains(&f.name.as_str())) {
        let copy = f.at.and_then(|(i, o)| files.iter().find(|s| s.index == i && s.offset == o))?;
        let bytes = copy.content.as_ref().ok()?;
        texts.push(String::from_utf8(bytes.clone()).ok()?);
    }
    for c in client.command_flags().iter().flat_map(|f| argv.values(f)) {
        texts.push(c?.to_string());
    }
    if reads_statements_from_stdin(client, argv) {
        match stdin {
            Stdin::Captured(bytes) => texts.push(String::from_utf8(bytes.clone()).ok()?),
            _ => return None,
        }
    }
    Some(texts)
}

/// What the SQL a database client is about to run does. Only SQL guardsh holds can make it a
/// read: command strings (in argv) and captured stdin; a file could change after guardsh reads it.
fn sql_of(
    client: crate::tools::SqlClient,
    argv: &NormalizedArgv,
    stdin: &Stdin,
    spec: &ToolSpec,
    files: &[snapshot::FileInput],
) -> crate::sql::SqlClass {
    use crate::sql::SqlClass;
    if client.runs_scripts(&argv.positionals) {
        return SqlClass::Unknown("statements from a file, which can change after guardsh reads them".into());
    }
    // A statement file is a read only when guardsh holds a copy of it (and the tool gets that
    // copy: `snapshot`), and what the copy holds only reads.
    let mut added: Option<String> = None;
    for f in argv.flags.iter().filter(|f| client.file_flags().contains(&f.name.as_str())) {
        let snapshot = spec
            .snapshot_flags
            .contains(&f.name)
            .then(|| f.at.and_then(|(i, o)| files.iter().find(|s| s.index == i && s.offset == o)))
            .flatten();
        let class = match snapshot.map(|s| &s.content) {
            Some(Ok(bytes)) => match std::str::from_utf8(bytes) {
                Ok(text) => client.classify(text),
                Err(_) => SqlClass::Unknown("a statement file that is not UTF-8".into()),
            },
            _ => SqlClass::Unknown("statements from a file, which can change after guardsh reads them".into()),
        };
        match class {
            SqlClass::Read => {}
            SqlClass::Add(why) => {
                added.get_or_insert(why);
            }
            other => return other,
        }
    }
    for c in client.command_flags().iter().flat_map(|f| argv.values(f)) {
        match c.map(|c| client.classify(c)) {
            Some(SqlClass::Read) => {}
            Some(SqlClass::Add(why)) => {
                added.get_or_insert(why);
            }
            Some(other) => return other,
            None => return SqlClass::Unknown("a command flag without a command".into()),
        }
    }
    // Everything so far reads, or only adds: the strictest of them, unless stdin says more.
    let so_far = || added.clone().map_or(SqlClass::Read, SqlClass::Add);
    if !reads_statements_from_stdin(client, argv) {
        return so_far();
    }
    // No flag replaces stdin: the client reads statements from it as well.
    match stdin {
        Stdin::Captured(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => match client.classify(text) {
                SqlClass::Read => so_far(),
                SqlClass::Add(why) => SqlClass::Add(added.clone().unwrap_or(why)),
                other => other,
            },
            Err(_) => SqlClass::Unknown("piped input that is not UTF-8".into()),
        },
        Stdin::Terminal => SqlClass::Unknown("an interactive session".into()),
        Stdin::Unknown => {
            SqlClass::Unknown("statements from standard input, which is read when the command runs".into())
        }
        Stdin::TooLarge => SqlClass::Unknown(format!("more than {} MiB of piped input", STDIN_LIMIT >> 20)),
    }
}

/// Why statements that only read could still write here, if they could: a variable that can undo
/// the read-only session (`read_undo_vars`), or a psql connection argument that sets options.
fn read_undone(
    client: crate::tools::SqlClient,
    spec: &ToolSpec,
    argv: &NormalizedArgv,
    inv: &Invocation,
) -> Option<String> {
    if let Some(name) = spec.read_undo_vars.iter().find(|n| inv.var(n).is_some_and(|v| !v.is_empty())) {
        return Some(format!("{name} is set (a connection service can undo the read-only session)"));
    }
    if client != crate::tools::SqlClient::Psql {
        return None;
    }
    let dbnames = argv.values("--dbname").flatten();
    argv.positionals.iter().map(String::as_str).chain(dbnames).find_map(crate::sql::psql_connection_overrides)
}

/// Does this invocation read SQL from its standard input?
fn reads_sql_from_stdin(policy: &Policy, inv: &Invocation) -> bool {
    let spec = spec_for(policy, &inv.tool);
    let Some(client) = spec.sql else { return false };
    reads_statements_from_stdin(client, &matching::normalize(&inv.args, &spec))
}

/// Does the client take statements from stdin, besides any command flags? Not when a flag
/// replaces stdin (`-c`, `-f`, `-l`, `--eval`) or it runs script files.
fn reads_statements_from_stdin(client: crate::tools::SqlClient, argv: &NormalizedArgv) -> bool {
    client.stdin_off_flags().iter().all(|f| argv.values(f).next().is_none()) && !client.runs_scripts(&argv.positionals)
}

/// Loads the policy for the invocation's working directory, then evaluates. When the tool would
/// read SQL from a pipe, reads it first (see `Stdin::Captured`).
pub fn evaluate(paths: &Paths, inv: &mut Invocation, resolve: bool) -> Result<Evaluation, ConfigError> {
    let policy = load_policy(paths, inv)?;
    if inv.stdin == Stdin::Unknown && reads_sql_from_stdin(&policy, inv) {
        inv.stdin = capture_stdin();
    }
    let evaluation = evaluate_reading_files(&policy, inv, resolve, FileId::current_exe().ok());
    // Every caller execs or exits soon after: freeing a compiled policy's thousands of small
    // allocations cost 7% of a shim call (callgrind), more than the decision, so it is leaked.
    std::mem::forget(policy);
    Ok(evaluation)
}

/// Evaluates an invocation whose stdin is already known (`Captured`) or not to be read
/// (`Unknown`): what `guardsh run` does for a shim asking for credentials, which must never read
/// its own stdin.
pub fn evaluate_captured(paths: &Paths, inv: &Invocation) -> Result<Evaluation, ConfigError> {
    Ok(evaluate_with(&load_policy(paths, inv)?, inv, false, None))
}

/// The broker's evaluation of a proposed command: the policy loaded once, SQL the tool would read
/// from its stdin taken from `stdin` (the shim's descriptor 0) first, the real binary resolved on
/// the invocation's PATH (which the broker sets to its own).
pub fn evaluate_proposed(
    policy: &Policy,
    inv: &mut Invocation,
    stdin: &std::fs::File,
    guardsh: FileId,
    files_dir: &Path,
    visible: &dyn Fn(&Path) -> bool,
) -> Evaluation {
    if reads_sql_from_stdin(policy, inv) {
        inv.stdin = capture(stdin);
    }
    // Input files are read relative to the directory the shim passed (`files_dir`, its
    // descriptor), where the tool will run.
    let spec = spec_for(policy, &inv.tool);
    let mut files = if spec.snapshot_flags.is_empty() && spec.snapshot_positionals.is_empty() {
        vec![]
    } else {
        snapshot::take(files_dir, &spec, &matching::normalize(&inv.args, &spec))
    };
    // Only a file the agent itself can see is read for it: guardsh run reads with the human's
    // rights, and what it read would reach the agent (in its summary, in a parse error).
    for f in &mut files {
        let written = Path::new(&f.written);
        let full = if written.is_absolute() { written.to_path_buf() } else { files_dir.join(written) };
        if !full.canonicalize().is_ok_and(|p| visible(&p)) {
            f.content = Err("not a file the agent can see".into());
        }
    }
    evaluate_files(policy, inv, files, false, Some(guardsh))
}

/// The policy that applies where the invocation runs, as far as its command line needs it.
fn load_policy(paths: &Paths, inv: &Invocation) -> Result<Policy, ConfigError> {
    crate::policy_cache::load_for_invocation(&Locations::new(paths, &inv.cwd), &paths.state_dir, &inv.tool, &inv.args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_can_only_shorten_the_approval_timeout() {
        let s = |v: &'static str| Some(OsStr::new(v));
        assert_eq!(effective_timeout(300, None), 300);
        assert_eq!(effective_timeout(300, s("30s")), 30);
        assert_eq!(effective_timeout(300, s("30")), 30);
        assert_eq!(effective_timeout(300, s("1h")), 300);
        assert_eq!(effective_timeout(300, s("0")), 300);
        assert_eq!(effective_timeout(300, s("soon")), 300);
        assert_eq!(effective_timeout(300, s("")), 300);
    }

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
            (Mode::Interactive, None, s(""), Mode::Ci),
            (Mode::Interactive, None, s("0"), Mode::Interactive),
            (Mode::Interactive, s(""), None, Mode::Interactive),
        ];
        for (configured, var, ci, want) in cases {
            assert_eq!(effective_mode(*configured, *var, *ci), *want, "{configured:?} {var:?} {ci:?}");
        }
    }
}
