//! The guarded invocation, in order: argv → policy → decision → environment → audit → exec.
//!
//! The only code that sequences these steps, and the only road to `exec::exec`. `evaluate` is
//! shared with `guardsh check`, so an explanation can never disagree with what the shim does.
//! Every failure before exec ends the process without running the real tool.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::approval;
use crate::audit::{self, Record};
use crate::custody;
use crate::display;
use crate::env;
use crate::exec::{self, ExecError};
use crate::exit;
use crate::paths::Paths;
use crate::rules::Action;
use crate::snapshot;

mod asking;
mod evaluate;
mod message;

use asking::{ask_a_human, run_signed_token};

pub use asking::bound_environment;
pub(crate) use asking::{approval_binding, argv_bytes, command, command_digest, granted_by_run, shown_grants};
pub use evaluate::{
    Evaluation, effective_timeout, evaluate, evaluate_captured, evaluate_proposed, evaluate_reading_files,
    evaluate_with,
};
pub(crate) use message::{command_line, record};
pub use message::{explanation, invalid_policy_message, refusal_message};

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
