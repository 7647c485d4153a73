//! Asking a human (a pending request, its approval, or a signed token in CI) and what an approval
//! is bound to: the command, its grants and environment, and the digest of all of it.

use crate::approval;
use crate::audit::{self, Record};
use crate::custody;
use crate::decision::Cause;
use crate::display;
use crate::env::{self, EnvPlan};
use crate::exit;
use crate::paths::Paths;
use crate::rules::ApprovalMode;
use std::path::Path;
use std::process::ExitCode;

use super::{Evaluation, Invocation, SESSION_VAR, Stdin, command_line, record, refusal_message, run_real};
use crate::timefmt::{duration, now_secs as now};

/// The `ask` path: use an approval this exact command already has, or file a request and wait
/// for a human (or, in no-wait mode, exit 75 so that an identical re-run can use the approval).
pub(super) fn ask_a_human(
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
pub(super) fn run_signed_token(
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
