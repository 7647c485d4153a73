//! The guarded invocation, in order: argv → policy → decision → environment → audit → exec.
//!
//! The only code that sequences these steps, and the only road to `exec::exec`. `evaluate` is
//! shared with `guardsh check`, so an explanation can never disagree with what the shim does.
//! Every failure before exec ends the process without running the real tool.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::approval;
use crate::audit::{self, Record};
use crate::config::Locations;
use crate::custody;
use crate::decision::{self, Cause, Verdict};
use crate::display;
use crate::env::{self, EnvPlan, EnvPolicy};
use crate::exec::{self, ExecError, FileId};
use crate::exit;
use crate::matching::{self, NormalizedArgv};
use crate::paths::Paths;
use crate::rules::{Action, ApprovalMode, ConfigError, Mode, Policy, Rule};
use crate::snapshot;
use crate::tools::{RawToolSpec, ToolSpec};

/// Marks a process tree started by `guardsh run`.
pub const SESSION_VAR: &str = "GUARDSH_SESSION";
/// `ci` tightens the mode; no value loosens it.
pub const MODE_VAR: &str = "GUARDSH_MODE";
/// A signed approval token for CI mode. It can only authorize the one command it was signed
/// for, by a key in allowed_signers.
pub const APPROVAL_FILE_VAR: &str = "GUARDSH_APPROVAL_FILE";
/// Seconds (or `30s`, `5m`) a request waits, for non-interactive runs (`guardsh run
/// --approval-timeout`). It can only shorten the policy's `approval_timeout`.
pub const APPROVAL_TIMEOUT_VAR: &str = "GUARDSH_APPROVAL_TIMEOUT";

/// Everything about one invocation that comes from outside: read once, at the edge.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub tool: String,
    pub argv0: OsString,
    pub args: Vec<OsString>,
    pub vars: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    pub stdin: Stdin,
}

/// What the command's standard input is, as far as guardsh needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    /// Not looked at (the tool does not read SQL, or this is `guardsh check`).
    Unknown,
    /// A terminal: an interactive session.
    Terminal,
    /// Read in full before deciding; the real tool gets exactly these bytes.
    Captured(Vec<u8>),
    /// Longer than `STDIN_LIMIT`: partly read, so the command must not run.
    TooLarge,
}

/// Piped SQL larger than this is not read: guardsh would have to give the tool part of it.
pub const STDIN_LIMIT: usize = 16 << 20;

impl Invocation {
    fn var(&self, name: &str) -> Option<&OsStr> {
        env::get(&self.vars, name)
    }
}

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

/// Reads standard input when it is not a terminal, up to `STDIN_LIMIT` (beyond it, `Unknown`
/// with nothing kept: the caller refuses, since the tool could no longer get all of it).
fn capture_stdin() -> Stdin {
    capture(&std::io::stdin())
}

/// `capture_stdin` for any readable descriptor.
fn capture<R: std::io::IsTerminal>(input: &R) -> Stdin
where
    for<'a> &'a R: std::io::Read,
{
    use std::io::Read;
    if input.is_terminal() {
        return Stdin::Terminal;
    }
    let mut bytes = Vec::new();
    match input.take(STDIN_LIMIT as u64 + 1).read_to_end(&mut bytes) {
        Ok(n) if n <= STDIN_LIMIT => Stdin::Captured(bytes),
        Ok(_) => Stdin::TooLarge,
        // Closed or unreadable: nothing was taken from it, and nothing counts as a read.
        Err(_) => Stdin::Unknown,
    }
}

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

/// Runs as a shim. Returns only when the real tool was not executed.
pub fn run_shim(inv: Invocation) -> ExitCode {
    let fail = |code: u8, message: &str| {
        eprintln!("guardsh: {}", display::escape_lines(message));
        ExitCode::from(code)
    };
    let paths = match Paths::discover() {
        Ok(p) => p,
        Err(e) => return fail(exit::CONFIG, &e.to_string()),
    };
    let audit_path = paths.audit_log();
    let write = |rec: &Record| audit::append(&audit_path, rec);

    let depth = exec::depth(inv.var(exec::DEPTH_VAR));
    if depth >= exec::MAX_DEPTH {
        let e = ExecError::Recursion { tool: inv.tool.clone(), depth };
        let _ = write(&record(&inv, None, "recursion", &e.to_string()));
        return fail(exit::CANNOT_EXEC, &e.to_string());
    }

    let mut inv = inv;
    let eval = match evaluate(&paths, &mut inv, false) {
        Ok(e) => e,
        Err(e) => {
            // Best effort: the refusal stands whether or not it can be recorded.
            let _ = write(&record(&inv, None, "config_error", &e.to_string()));
            // The agent reads this: a human must act, and the policy is not the agent's to
            // edit, so neither the errors nor a way to check them are shown here. The human sees
            // them with `guardsh check-config`, `guardsh doctor` and when `guardsh run` starts.
            return fail(exit::CONFIG, &invalid_policy_message(&inv.tool));
        }
    };

    if inv.stdin == Stdin::TooLarge {
        let why = format!(
            "more than {} MiB was piped to {}: guardsh cannot read it all, and would not pass on the part it read; nothing was run. Use a file (psql -f), which needs approval",
            STDIN_LIMIT >> 20,
            inv.tool
        );
        let _ = write(&record(&inv, Some(&eval), "denied", &why));
        return fail(exit::DENIED, &why);
    }
    // CI cannot ask a human, but a human may have signed this exact command in advance.
    let token_file =
        inv.var(APPROVAL_FILE_VAR).filter(|v| !v.is_empty()).map(PathBuf::from).or(eval.approval_file.clone());
    if let (true, Some(file)) = (eval.verdict.ci_denied, token_file) {
        return run_signed_token(&inv, &eval, &paths, &file, &write);
    }
    let real = match (eval.verdict.action, eval.real.as_ref()) {
        (Action::Deny, _) => {
            eprintln!("{}", refusal_message(&inv, &eval));
            if let Err(e) = write(&record(&inv, Some(&eval), "denied", &eval.verdict.reason)) {
                eprintln!("guardsh: {e}");
            }
            return ExitCode::from(exit::DENIED);
        }
        (_, Some(Ok(real))) => real.clone(),
        (_, Some(Err(e))) => {
            let _ = write(&record(&inv, Some(&eval), "not_found", &e.to_string()));
            return fail(exit::NOT_FOUND, &e.to_string());
        }
        (_, None) => return fail(exit::NOT_FOUND, "internal error: no resolved binary; nothing was run"),
    };
    if eval.verdict.action == Action::Ask {
        return ask_a_human(&inv, &eval, &paths, &real, &write);
    }
    run_real(&inv, &eval, &real, None, &eval.env.vars, &write)
}

/// Records the execution and replaces this process with the real tool. Returns only on failure.
fn run_real(
    inv: &Invocation,
    eval: &Evaluation,
    real: &Path,
    approval: Option<&approval::Request>,
    env: &[(OsString, OsString)],
    write: &dyn Fn(&Record) -> Result<(), audit::AuditError>,
) -> ExitCode {
    let mut rec = record(inv, Some(eval), "exec", &eval.verdict.reason);
    rec.request = approval.map(|r| r.id.clone());
    // Input files are handed over as the copies guardsh decided on: argv names `/dev/fd/N` in
    // their place, and the audit record says so.
    let args = if eval.files.is_empty() {
        inv.args.clone()
    } else {
        match snapshot::hand_over(&inv.args, &eval.files) {
            Ok(args) => {
                rec.exec_argv =
                    Some(std::iter::once(&inv.argv0).chain(args.iter()).map(|a| display::json_word(a)).collect());
                args
            }
            Err(e) => {
                rec.outcome = "exec_failed".into();
                rec.reason = format!("cannot hand the input files over: {e}");
                let _ = write(&rec);
                eprintln!("guardsh: cannot hand the input files over to {}: {e}; nothing was run", inv.tool);
                return ExitCode::from(exit::CANNOT_EXEC);
            }
        }
    };
    // The record is written before exec because nothing runs after it; if it cannot be written,
    // the command does not run.
    if let Err(e) = write(&rec) {
        eprintln!("guardsh: {e}");
        return ExitCode::from(exit::AUDIT);
    }
    // Piped input that guardsh read to decide is handed over whole, as the tool's stdin.
    if let Stdin::Captured(bytes) = &inv.stdin
        && let Err(e) = exec::stdin_from(bytes)
    {
        rec.outcome = "exec_failed".into();
        rec.reason = format!("cannot pass the piped input on: {e}");
        let _ = write(&rec);
        eprintln!("guardsh: cannot pass the piped input on to {}: {e}; nothing was run", inv.tool);
        return ExitCode::from(exit::CANNOT_EXEC);
    }
    // Inside `guardsh run`, the credentials this command is granted are held there, not in the
    // environment, and never handed to this process: guardsh run starts the real tool itself,
    // on this process's descriptors, and this process stands in for it until it ends.
    if let Some(socket) = inv.var(custody::SOCKET_VAR).filter(|s| !s.is_empty())
        && !eval.verdict.grants.is_empty()
    {
        let captured = matches!(inv.stdin, Stdin::Captured(_));
        match custody::client::run(Path::new(socket), approval.map(|r| r.id.as_str()), captured) {
            Ok(custody::client::Custodied::Ran(custody::client::Ended::Code(code))) => {
                return ExitCode::from(u8::try_from(code).unwrap_or(1));
            }
            Ok(custody::client::Custodied::Ran(custody::client::Ended::Signal(sig))) => return exec::die_like(sig),
            Ok(custody::client::Custodied::Unneeded) => {}
            Ok(custody::client::Custodied::Denied(why)) => {
                rec.outcome = "refused".into();
                rec.reason = why.clone();
                let _ = write(&rec);
                eprintln!("guardsh: {}; nothing was run", display::escape_lines(&why));
                return ExitCode::from(exit::DENIED);
            }
            Err(why) => eprintln!("guardsh: guardsh run released no credentials for this command: {why}"),
        }
    }
    let e = exec::exec(real, &inv.argv0, &args, env);
    rec.outcome = "exec_failed".into();
    rec.reason = e.to_string();
    let _ = write(&rec);
    eprintln!("guardsh: {e}");
    ExitCode::from(exit::CANNOT_EXEC)
}

use crate::timefmt::now_secs as now;

/// `4m56s`, `56s`.
use crate::timefmt::duration;

/// The `ask` path: use an approval this exact command already has, or file a request and wait
/// for a human (or, in no-wait mode, exit 75 so that an identical re-run can use the approval).
fn ask_a_human(
    inv: &Invocation,
    eval: &Evaluation,
    paths: &Paths,
    real: &Path,
    write: &dyn Fn(&Record) -> Result<(), audit::AuditError>,
) -> ExitCode {
    let fail = |code: u8, message: &str| {
        eprintln!("guardsh: {}", display::escape_lines(message));
        ExitCode::from(code)
    };
    let audit_req = |req: &approval::Request, outcome: &str, reason: &str, by: Option<serde_json::Value>| {
        let mut rec = record(inv, Some(eval), outcome, reason);
        rec.request = Some(req.id.clone());
        rec.by = by;
        write(&rec)
    };
    let store = match approval::Store::open(&paths.requests_dir()) {
        Ok(s) => s,
        Err(e) => return fail(exit::AUDIT, &format!("{e}; nothing was run")),
    };
    let real_sha256 = match approval::sha256_file(real) {
        Ok(h) => h,
        Err(e) => return fail(exit::CANNOT_EXEC, &format!("cannot read {}: {e}; nothing was run", real.display())),
    };
    let argv = argv_bytes(inv);
    let uid = nix::unistd::getuid().as_raw();
    let bound = approval_binding(inv, eval);
    let cmd = command(inv, &argv, real, &real_sha256, uid, &bound);
    let now = now();
    store.cleanup(now, 86_400);
    // Requests whose waiters all died are withdrawn by whoever looks next (`lifecycle`).
    if let Ok(withdrawn) = approval::lifecycle::withdraw_abandoned(&store, now) {
        for old in withdrawn {
            let rec = approval::lifecycle::record(&old, "withdrawn", approval::lifecycle::ABANDONED, None);
            if let Err(e) = write(&rec) {
                return fail(exit::AUDIT, &e.to_string());
            }
        }
    }
    // This process, as the store records a waiter: pid and start time, so that a reused pid
    // does not keep a dead request alive.
    let will_wait = eval.wait || eval.approval == ApprovalMode::Signature;
    let me = match approval::procinfo::stat(std::process::id() as i32) {
        Ok(s) => s,
        Err(e) => return fail(exit::AUDIT, &format!("cannot read this process's start time: {e}; nothing was run")),
    };
    let add_waiter = |id: &str| if will_wait { store.add_waiter(id, me.pid, me.start) } else { Ok(()) };
    // Under signature approvals a process only ever uses the request it made itself (see
    // `use_approval`), so it neither joins nor inherits another process's request.
    let signed = eval.approval == ApprovalMode::Signature;
    let existing = match if signed { Ok(None) } else { store.find_command(&cmd.digest(), now) } {
        Ok(found) => found,
        Err(e) => return fail(exit::AUDIT, &format!("{e}; nothing was run")),
    };

    // An approved request serves an identical re-run only if nobody ever waited for it (no-wait
    // mode): a request that had waiters belongs to them, and is withdrawn when they die.
    let existing = existing.filter(|(req, d)| {
        d.as_ref().is_none_or(|d| d.outcome != approval::Outcome::Approved)
            || approval::lifecycle::waiting(&store, &req.id).serves_reruns()
    });
    let req = match existing {
        // An identical command was approved earlier in no-wait mode: this run uses the
        // approval, exactly once.
        Some((req, Some(d))) if d.outcome == approval::Outcome::Approved => {
            return use_approval(inv, eval, paths, &store, &req, &d, real, write);
        }
        // The same command is already waiting for a decision: wait on that request too.
        Some((req, _)) => {
            if let Err(e) = add_waiter(&req.id) {
                return fail(exit::AUDIT, &format!("{e}; nothing was run"));
            }
            req
        }
        None => {
            let requester =
                match approval::procinfo::requester(inv.var(SESSION_VAR).map(|s| s.to_string_lossy().into_owned())) {
                    Ok(r) => r,
                    Err(e) => {
                        return fail(
                            exit::AUDIT,
                            &format!("cannot describe this process for the request: {e}; nothing was run"),
                        );
                    }
                };
            let id = match crate::random::token(12) {
                Ok(id) => id,
                Err(e) => return fail(exit::AUDIT, &format!("cannot make a request id: {e}; nothing was run")),
            };
            let rule = match &eval.verdict.cause {
                Cause::Rule(id) => Some(id.clone()),
                Cause::Default | Cause::Catalog | Cause::UnknownTool | Cause::Policy => None,
            };
            let ctx = approval::Context {
                id,
                rule,
                reason: eval.verdict.reason.clone(),
                grants: shown_grants(inv, eval),
                requester,
                created: now,
                expires: now + eval.approval_timeout,
            };
            let req = approval::Request::new(cmd, ctx);
            // Recorded before the request exists, so that it never looks abandoned.
            if let Err(e) = add_waiter(&req.id) {
                return fail(exit::AUDIT, &format!("{e}; nothing was run"));
            }
            if let Err(e) = store.create(&req) {
                return fail(exit::AUDIT, &format!("{e}; nothing was run"));
            }
            if let Err(e) = audit_req(&req, "requested", &eval.verdict.reason, None) {
                return fail(exit::AUDIT, &e.to_string());
            }
            req
        }
    };

    let left = req.expires.saturating_sub(now);
    eprintln!("{}", refusal_message(inv, eval));
    if !eval.wait && !signed {
        eprintln!(
            "guardsh: request {} is waiting for a human to approve it from their own terminal; nothing was run. Once they have, run exactly the same command again (within {}).",
            req.id,
            duration(left)
        );
        return ExitCode::from(exit::APPROVAL);
    }
    eprintln!(
        "guardsh: request {} is waiting for a human to approve it from their own terminal; it has not run, and runs only if they approve (waiting up to {}; if nobody does, it does not run).",
        req.id,
        duration(left)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(left);
    let waited = match approval::wait(&store, &req.id, deadline) {
        Ok(w) => w,
        Err(e) => return fail(exit::AUDIT, &format!("{e}; nothing was run")),
    };
    let finish = |outcome: approval::Outcome| {
        let d = approval::Decision {
            outcome,
            digest: req.digest.clone(),
            reason: None,
            by: approval::DecidedBy { uid, pid: std::process::id() as i32, ..Default::default() },
            time: self::now(),
            signature: None,
        };
        store.decide(&req.id, &d)
    };
    let decision = match waited {
        approval::Waited::Decided(d) => d,
        approval::Waited::TimedOut => match finish(approval::Outcome::Expired) {
            // An approval can land in the instant between the deadline and our "expired".
            Ok(d) => d,
            Err(approval::store::StoreError::Corrupt { file, .. }) => {
                let _ = audit_req(&req, "refused", "damaged decision file", None);
                return fail(
                    exit::APPROVAL,
                    &format!("request {} has a damaged decision ({}); nothing was run", req.id, file.display()),
                );
            }
            Err(e) => return fail(exit::AUDIT, &format!("{e}; nothing was run")),
        },
        // Only the broker watches a peer; this process is the one that waits.
        approval::Waited::PeerGone => {
            let _ = finish(approval::Outcome::Withdrawn);
            let _ = audit_req(&req, "withdrawn", "the requester went away", None);
            return ExitCode::from(exit::APPROVAL);
        }
        approval::Waited::Interrupted(sig) => {
            let _ = finish(approval::Outcome::Withdrawn);
            let _ = audit_req(&req, "withdrawn", &format!("interrupted by {sig}"), None);
            eprintln!("guardsh: request {} withdrawn ({sig}); nothing was run", req.id);
            return ExitCode::from(128 + u8::try_from(sig as i32).unwrap_or(0));
        }
    };
    match decision.outcome {
        approval::Outcome::Approved => use_approval(inv, eval, paths, &store, &req, &decision, real, write),
        approval::Outcome::Denied => {
            let why = decision.reason.as_deref().map(display::escape_text).unwrap_or_else(|| "no reason given".into());
            let _ = audit_req(&req, "denied", &why, serde_json::to_value(&decision.by).ok());
            fail(
                exit::DENIED,
                &format!("a human denied request {}: {why}. Do not try to reach the same result another way.", req.id),
            )
        }
        approval::Outcome::Expired => {
            let _ = audit_req(&req, "expired", "no decision in time", None);
            fail(
                exit::APPROVAL,
                &format!(
                    "nobody approved request {} within {}, so it expired: the command did not run, and this request can no longer be approved. Running the same command again asks a human again; or tell the user what you need it for and go on without it.",
                    req.id,
                    duration(req.expires.saturating_sub(req.created))
                ),
            )
        }
        approval::Outcome::Withdrawn => fail(
            exit::APPROVAL,
            &format!(
                "request {} was withdrawn ({}): the command did not run. Running the same command again asks a human again.",
                req.id,
                decision.reason.as_deref().map_or_else(|| "interrupted".to_string(), display::escape_text)
            ),
        ),
    }
}

/// Runs an approved request, once: the approval must be for this request's digest, the request
/// intact and unexpired, the real binary unchanged, and this run the one that consumes it.
#[allow(clippy::too_many_arguments)]
fn use_approval(
    inv: &Invocation,
    eval: &Evaluation,
    paths: &Paths,
    store: &approval::Store,
    req: &approval::Request,
    decision: &approval::Decision,
    real: &Path,
    write: &dyn Fn(&Record) -> Result<(), audit::AuditError>,
) -> ExitCode {
    let refuse = |why: String| {
        let mut rec = record(inv, Some(eval), "refused", &why);
        rec.request = Some(req.id.clone());
        let _ = write(&rec);
        eprintln!("guardsh: {}; nothing was run", display::escape_text(&why));
        ExitCode::from(exit::APPROVAL)
    };
    if decision.digest != req.digest || !req.is_intact() {
        return refuse(format!("the approval for request {} does not match the request", req.id));
    }
    // A signed approval is for the one process that asked and is waiting: its pid and start time
    // are in the signed digest, and once it has run the command it is gone. Anything that relied
    // on a "used" marker in the store (which the agent can delete) would let one signature run the
    // command again and again.
    if eval.approval == ApprovalMode::Signature {
        let me = std::process::id() as i32;
        let started = approval::procinfo::stat(me).map(|s| s.start).ok();
        let asker = &req.requester;
        if asker.pid != me || asker.ancestry.first().map(|p| p.start) != started {
            return refuse(format!(
                "request {} was made by another process; a signed approval is used only by the command that waits for it",
                req.id
            ));
        }
    }
    if req.is_expired(now()) {
        return refuse(format!("request {} has expired", req.id));
    }
    // Under `approval = "signature"` a decision file proves nothing by itself (anything running
    // as the user can write one); only a signature by an allowed signer does.
    if eval.approval == ApprovalMode::Signature {
        let path = approval::signers_path(paths, eval.allowed_signers.as_deref(), eval.system_policy);
        match approval::check_signed(&path, req, decision, now()) {
            Ok(()) => {}
            Err(approval::NotSigned::Setup(e)) => {
                let mut rec = record(inv, Some(eval), "refused", &e);
                rec.request = Some(req.id.clone());
                let _ = write(&rec);
                return refuse("signature approvals are not set up here (see `guardsh doctor`)".into());
            }
            Err(approval::NotSigned::Invalid(why)) => return refuse(why),
        }
    }
    match approval::sha256_file(real) {
        Ok(h) if h == req.real_sha256 => {}
        _ => return refuse(format!("{} changed since request {} was made", real.display(), req.id)),
    }
    match store.consume(&req.id, std::process::id()) {
        Ok(true) => {}
        Ok(false) => return refuse(format!("the approval of request {} was already used", req.id)),
        Err(e) => return refuse(e.to_string()),
    }
    eprintln!("guardsh: a human approved request {}; running it", req.id);
    run_real(inv, eval, real, Some(req), &eval.env.vars, write)
}

/// The exact argv bytes, argv[0] first.
pub(crate) fn argv_bytes(inv: &Invocation) -> Vec<&[u8]> {
    std::iter::once(inv.argv0.as_encoded_bytes()).chain(inv.args.iter().map(|a| a.as_encoded_bytes())).collect()
}

pub(crate) fn command<'a>(
    inv: &'a Invocation,
    argv: &'a [&'a [u8]],
    real: &'a Path,
    sha: &'a str,
    uid: u32,
    env: &'a [(String, String)],
) -> approval::Command<'a> {
    approval::Command {
        uid,
        tool: &inv.tool,
        argv,
        cwd: inv.cwd.as_os_str().as_encoded_bytes(),
        real: real.as_os_str().as_encoded_bytes(),
        real_sha256: sha,
        env,
    }
}

/// The credentials an approved run receives, for the human approving it: those passed from the
/// environment, and inside `guardsh run` those the rule grants from what it holds.
pub(crate) fn shown_grants(inv: &Invocation, eval: &Evaluation) -> Vec<String> {
    let mut out = eval.env.passed.clone();
    if inv.var(custody::SOCKET_VAR).is_some_and(|s| !s.is_empty()) {
        out.extend(granted_by_run(eval));
    }
    out
}

/// What `guardsh run` gives the command of what it holds, in words for the approver: the grants,
/// or in place of a provider's own secret, a credential minted for this command.
pub(crate) fn granted_by_run(eval: &Evaluation) -> Vec<String> {
    let grants = &eval.verdict.grants;
    match eval.mint.as_ref().filter(|_| !grants.is_empty()) {
        None => grants.iter().map(|g| format!("{g} (from guardsh run)")).collect(),
        Some(plan) => {
            let own = plan.provider.held();
            std::iter::once(format!(
                "a {} credential minted for this command only ({})",
                plan.provider.name(),
                if plan.reads_only { "reads only" } else { "only what this command does" }
            ))
            .chain(grants.iter().filter(|g| !own.contains(&g.as_str())).map(|g| format!("{g} (from guardsh run)")))
            .collect()
        }
    }
}

/// Everything besides argv, directory and binary that an approval binds: the environment a human
/// approves (see `bound_environment`) and, for SQL piped on stdin, those bytes and no others.
pub(crate) fn approval_binding(inv: &Invocation, eval: &Evaluation) -> Vec<(String, String)> {
    let mut bound = bound_environment(&inv.tool, &eval.env, &eval.selectors);
    // The input files' snapshots: an approval is for these bytes and no others.
    bound.extend(eval.file_bindings.iter().cloned());
    if let Stdin::Captured(bytes) = &inv.stdin {
        use sha2::{Digest, Sha256};
        bound.push(("(stdin)".into(), format!("sha256:{}", approval::request::hex(&Sha256::digest(bytes)))));
    }
    bound
}

/// The command digest an approval of this invocation, run by `real`, carries: what
/// `guardsh run` recomputes before it lets an approval release credentials.
pub(crate) fn command_digest(inv: &Invocation, eval: &Evaluation, real: &Path, uid: u32) -> std::io::Result<String> {
    let sha = approval::sha256_file(real)?;
    let argv = argv_bytes(inv);
    let bound = approval_binding(inv, eval);
    Ok(command(inv, &argv, real, &sha, uid, &bound).digest())
}

/// The part of the environment a human approves along with the command: the tool's selectors, a
/// hash of each credential the command receives, and what `HOME` and `XDG_CONFIG_HOME` decide:
/// for a tool `approval::target` knows, the content of the configuration files that choose its
/// target (not their paths, so a request made under one HOME runs under another with the same
/// configuration); for any other tool, those two paths.
pub fn bound_environment(tool: &str, plan: &EnvPlan, selectors: &[String]) -> Vec<(String, String)> {
    use sha2::{Digest, Sha256};
    let var = |name: &str| plan.vars.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.to_str().map(String::from));
    let targets = approval::target::files(tool, &var);
    let by_path = |k: &str| match targets {
        Some(_) => approval::target::PATH_SELECTORS.contains(&k),
        None => false,
    };
    let mut out: Vec<(String, String)> = plan
        .vars
        .iter()
        .filter_map(|(k, v)| Some((k.to_str()?, v)))
        .filter(|(k, _)| {
            (targets.is_none() && ["HOME", "XDG_CONFIG_HOME"].contains(k))
                || (selectors.iter().any(|p| env::name_matches(p, k)) && !by_path(k))
                || plan.passed.iter().any(|p| p == k)
        })
        .map(|(k, v)| {
            let value = if plan.passed.iter().any(|p| p == k) {
                format!("sha256:{}", approval::request::hex(&Sha256::digest(v.as_encoded_bytes())))
            } else {
                v.to_string_lossy().into_owned()
            };
            (k.to_string(), value)
        })
        .collect();
    for f in targets.unwrap_or_default() {
        // Only a regular file is read (a FIFO or a device named by a selector would block or
        // never end); unreadable is neither absent nor any content.
        let value = match std::fs::metadata(&f.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || f.path.as_os_str().is_empty() => {
                approval::target::describe(&f.label, None)
            }
            Err(e) => format!("unreadable ({})", e.kind()),
            Ok(m) if !m.is_file() => "not a regular file".to_string(),
            Ok(m) if m.len() > 4 << 20 => approval::sha256_file(&f.path)
                .map_or_else(|e| format!("unreadable ({})", e.kind()), |h| format!("sha256:{h}")),
            Ok(_) => match std::fs::read(&f.path) {
                Ok(bytes) => approval::target::describe(&f.label, Some(&bytes)),
                Err(e) => format!("unreadable ({})", e.kind()),
            },
        };
        out.push((format!("(target: {})", f.label), value));
    }
    out.sort();
    out
}

/// CI mode with a signed approval token: runs this command only if the token was signed for
/// exactly it, by an allowed signer, has not expired and has not been used.
fn run_signed_token(
    inv: &Invocation,
    eval: &Evaluation,
    paths: &Paths,
    file: &Path,
    write: &dyn Fn(&Record) -> Result<(), audit::AuditError>,
) -> ExitCode {
    let refuse = |why: String, request: Option<String>| {
        let mut rec = record(inv, Some(eval), "refused", &why);
        rec.request = request;
        let _ = write(&rec);
        eprintln!(
            "guardsh: denied in CI mode: `{}` needs human approval, and the approval token in {} does not authorize it: {}",
            command_line(inv),
            display::escape_text(&file.display().to_string()),
            display::escape_text(&why)
        );
        ExitCode::from(exit::DENIED)
    };
    let real = match eval.real.as_ref() {
        Some(Ok(r)) => r.clone(),
        Some(Err(e)) => return refuse(e.to_string(), None),
        None => return refuse("internal error: no resolved binary".into(), None),
    };
    let token = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| approval::Token::parse(&t).map_err(|e| e.to_string()))
    {
        Ok(t) => t,
        Err(e) => return refuse(e, None),
    };
    let id = Some(token.request.id.clone());
    let signers_file = approval::signers_path(paths, eval.allowed_signers.as_deref(), eval.system_policy);
    let signers = match approval::load_signers(&signers_file) {
        Ok(s) => s,
        Err(e) => {
            let mut rec = record(inv, Some(eval), "refused", &e);
            rec.request = id;
            let _ = write(&rec);
            eprintln!("{}", refusal_message(inv, eval));
            eprintln!("guardsh: signature approvals are not set up here (see `guardsh doctor`)");
            return ExitCode::from(exit::DENIED);
        }
    };
    let verified = match token.check(&signers, now()) {
        Ok(v) => v,
        Err(e) => return refuse(e.to_string(), id),
    };
    let sha = match approval::sha256_file(&real) {
        Ok(h) => h,
        Err(e) => return refuse(format!("cannot read {}: {e}", real.display()), id),
    };
    let argv = argv_bytes(inv);
    let plan = eval.approval_env.as_ref().unwrap_or(&eval.env);
    let mut bound = bound_environment(&inv.tool, plan, &eval.selectors);
    bound.extend(eval.file_bindings.iter().cloned());
    let this = command(inv, &argv, &real, &sha, nix::unistd::getuid().as_raw(), &bound);
    if this.digest() != token.request.command_digest {
        let mut differences = token.request.differences(&this);
        if differences.is_empty() {
            differences.push("its digest does not match".into());
        }
        let other =
            approval::TokenError::OtherCommand { id: token.request.id.clone(), differences: differences.join("; ") };
        return refuse(other.to_string(), id);
    }
    let store = match approval::Store::open(&paths.requests_dir()) {
        Ok(s) => s,
        Err(e) => return refuse(e.to_string(), id),
    };
    match store.consume(&token.request.id, std::process::id()) {
        Ok(true) => {}
        Ok(false) => {
            return refuse(format!("request {} was already used; a token runs its command once", token.request.id), id);
        }
        Err(e) => return refuse(e.to_string(), id),
    }
    let env = eval.approval_env.as_ref().map_or(&eval.env.vars, |e| &e.vars);
    let mut rec = record(
        inv,
        Some(eval),
        "approved_by_token",
        &format!("signed by {} ({})", verified.principals, verified.fingerprint),
    );
    rec.request = id;
    rec.by = Some(serde_json::json!({ "key": verified.fingerprint, "principal": verified.principals }));
    eprintln!(
        "guardsh: approval token for request {} (signed by {}) accepted; running it",
        token.request.id,
        display::escape_text(&verified.principals)
    );
    if let Err(e) = write(&rec) {
        eprintln!("guardsh: {e}");
        return ExitCode::from(exit::AUDIT);
    }
    run_real(inv, eval, &real, Some(&token.request), env, write)
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
