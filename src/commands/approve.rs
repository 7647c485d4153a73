//! `guardsh pending`, `approve`, `deny` and `watch`: the human's side of an approval.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use super::here;
use crate::approval::checks::{self, ApproverFacts};
use crate::approval::human::{self, Terminal};
use crate::approval::{DecidedBy, Decision, Outcome, Request, Store, lifecycle};
use crate::audit;
use crate::colour::{Style, paint};
use crate::display;
use crate::exit;
use crate::paths::Paths;
use crate::rules::ApprovalMode;

pub(crate) use crate::timefmt::now_secs as now;

pub(crate) fn store(paths: &Paths) -> anyhow::Result<Store> {
    Ok(Store::open(&paths.requests_dir())?)
}

/// The command line of a request, shell-quoted, with every control or bidi character escaped.
fn command_line(req: &Request) -> String {
    match req.argv_bytes() {
        Some(words) => display::shell_join(words.iter().map(|w| std::ffi::OsStr::from_bytes(w))),
        None => display::escape_text(&req.argv.join(" ")),
    }
}

use std::os::unix::ffi::OsStrExt;

pub(crate) fn json_request(req: &Request) -> serde_json::Value {
    json!({
        "id": req.id,
        "tool": req.tool,
        "argv": req.argv,
        "argv_hex": req.argv_hex,
        "cwd": req.cwd,
        "rule": req.rule,
        "reason": req.reason,
        "grants": req.grants,
        "env": req.env,
        "real": req.real,
        "real_sha256": req.real_sha256,
        "requester": req.requester,
        "created": req.created,
        "expires": req.expires,
        "digest": req.digest,
    })
}

pub fn pending(as_json: bool) -> anyhow::Result<ExitCode> {
    let (paths, _) = here()?;
    let store = store(&paths)?;
    withdraw_abandoned(&paths, &store)?;
    let now = now();
    let mut good = Vec::new();
    for entry in store.pending(now)? {
        match entry {
            Ok(r) => good.push(r),
            Err(e) => eprintln!("guardsh: {}", display::escape_text(&e.to_string())),
        }
    }
    if as_json {
        let entries = good
            .iter()
            .map(|r| {
                let mut v = json_request(r);
                let w = lifecycle::waiting(&store, &r.id);
                v["waited_secs"] = json!(now.saturating_sub(r.created));
                v["waiters"] = json!(w.alive);
                v["reruns"] = json!(w.serves_reruns());
                v
            })
            .collect();
        println!("{}", serde_json::Value::Array(entries));
        return Ok(ExitCode::SUCCESS);
    }
    if good.is_empty() {
        println!("no requests are waiting for a decision");
    }
    for r in &good {
        println!("{}", display::escape_text(&summary(r, now, lifecycle::waiting(&store, &r.id))));
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per request: enough to tell apart two requests for the same argv.
fn summary(req: &Request, now: u64, waiting: lifecycle::Waiting) -> String {
    let mut context = vec![format!("in {}", req.cwd)];
    // Every bound variable, HOME included: what the human does not see, the agent can choose
    // (`KUBECONFIG=sha256:/prod/kubeconfig` once hid a production cluster here).
    context.extend(req.shown_environment());
    context.push(format!("waited {}", crate::timefmt::duration(now.saturating_sub(req.created))));
    context.push(waiting.describe());
    context.push(format!("expires in {}s", req.expires.saturating_sub(now)));
    format!("{}  {}  ({})", req.id, command_line(req), context.join("; "))
}

/// The whole request, for the human to read before deciding.
pub(crate) fn describe(req: &Request, now: u64) -> String {
    let who = &req.requester;
    let chain: Vec<String> = who.ancestry.iter().take(6).map(|p| format!("{} ({})", p.comm, p.pid)).collect();
    let rule = req.rule.as_deref().map_or("no rule (the tool's default)".to_string(), |r| format!("rule {r}"));
    // Variables on one line; what guardsh read before deciding (piped input, input files, with
    // what they hold) one per line below.
    let (inputs, shown_env): (Vec<String>, Vec<String>) =
        req.shown_environment().into_iter().partition(|e| e.starts_with('['));
    // The configuration files that decide the target (approval::target) as `target:` lines.
    let inputs = inputs.iter().map(|i| {
        let inner = i.trim_start_matches('[').trim_end_matches(']');
        match inner.strip_prefix("target: ") {
            Some(target) => format!("  target:    {target}"),
            None => format!("  input:     {inner}"),
        }
    });
    let lines = [
        format!("request {}  (expires in {}s)", req.id, req.expires.saturating_sub(now)),
        format!("  command:   {}", command_line(req)),
        format!("  in:        {}", req.cwd),
        format!("  because:   {rule}: {}", req.reason),
        format!("  runs:      {} (sha256 {})", req.real, req.real_sha256.get(..16).unwrap_or(&req.real_sha256)),
        format!(
            "  with:      {}",
            if shown_env.is_empty() { "(no selector variables set)".to_string() } else { shown_env.join(" ") }
        ),
        format!(
            "  receives:  {}",
            if req.grants.is_empty() { "no credentials".to_string() } else { req.grants.join(" ") }
        ),
        format!(
            "  asked by:  {} on {}{}",
            chain.join(" <- "),
            who.tty.as_deref().unwrap_or("no terminal"),
            who.session.as_ref().map_or(String::new(), |s| format!(", guardsh run session {s}"))
        ),
    ];
    lines.into_iter().chain(inputs).map(|l| display::escape_text(&l) + "\n").collect()
}

fn approver_facts() -> (ApproverFacts, Option<Terminal>) {
    let terminal = Terminal::open().ok();
    (human::facts(terminal.is_some()), terminal)
}

fn decided_by(facts: &ApproverFacts) -> DecidedBy {
    DecidedBy { uid: facts.uid, pid: std::process::id() as i32, tty: facts.tty.clone(), key: None, principal: None }
}

/// An audit record about a request, written by the approving side.
pub(crate) fn audit_decision(paths: &Paths, req: &Request, outcome: &str, reason: &str, by: &DecidedBy) {
    let rec = lifecycle::record(req, outcome, reason, serde_json::to_value(by).ok());
    if let Err(e) = audit::append(&paths.audit_log(), &rec) {
        eprintln!("guardsh: warning: {e}");
    }
}

/// Withdraws the requests whose waiting processes have all died (`lifecycle`), and audits each:
/// they are gone from `pending` and can never be approved.
pub(crate) fn withdraw_abandoned(paths: &Paths, store: &Store) -> anyhow::Result<()> {
    for req in lifecycle::withdraw_abandoned(store, now())? {
        let rec = lifecycle::record(&req, "withdrawn", lifecycle::ABANDONED, None);
        if let Err(e) = audit::append(&paths.audit_log(), &rec) {
            eprintln!("guardsh: warning: {e}");
        }
    }
    Ok(())
}

/// Early refusals that do not depend on the request.
fn refuse_early(facts: &ApproverFacts) -> Option<checks::Refusal> {
    if !facts.has_terminal {
        return Some(checks::Refusal::NoTerminal);
    }
    facts.in_guardsh_session.then_some(checks::Refusal::InGuardshSession)
}

/// What approving needs, set up once for `approve` and `watch`.
struct Approver {
    paths: Paths,
    signing: Option<Signing>,
    facts: ApproverFacts,
    tty: Terminal,
    store: Store,
}

/// Sets up an approver, or refuses early (no terminal, inside `guardsh run`) with the exit code.
fn approver(key: Option<PathBuf>) -> anyhow::Result<Result<Approver, ExitCode>> {
    let (paths, cwd) = here()?;
    let signing = signing_for(&paths, &cwd, key)?;
    let (facts, terminal) = approver_facts();
    if let Some(refusal) = refuse_early(&facts) {
        eprintln!("guardsh: {refusal}");
        return Ok(Err(ExitCode::from(exit::DENIED)));
    }
    let tty = terminal.context("the terminal disappeared")?;
    let store = store(&paths)?;
    Ok(Ok(Approver { paths, signing, facts, tty, store }))
}

pub fn approve(id: Option<String>, key: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let Approver { paths, signing, facts, mut tty, store } = match approver(key)? {
        Ok(a) => a,
        Err(code) => return Ok(code),
    };
    withdraw_abandoned(&paths, &store)?;
    let id = match id {
        Some(id) => id,
        None => match pick(&store, &tty)? {
            Some(id) => id,
            None => return Ok(ExitCode::SUCCESS),
        },
    };
    decide_interactively(&paths, &store, &facts, &mut tty, &id, signing.as_ref())
}

/// In signature mode: the key to sign with and the allowed signers to check it against.
pub(crate) struct Signing {
    pub key: PathBuf,
    pub signers: Vec<crate::approval::signature::Signer>,
}

/// What approving needs under the policy in force here: `None` in interactive mode.
pub(crate) fn signing_for(
    paths: &Paths,
    cwd: &std::path::Path,
    key: Option<PathBuf>,
) -> anyhow::Result<Option<Signing>> {
    let policy = super::load_policy(paths, cwd).map_err(super::InvalidPolicy::fix_first)?;
    if policy.approval != ApprovalMode::Signature {
        return Ok(None);
    }
    let system = policy.sources.iter().any(|(l, _)| *l == crate::rules::LayerKind::System);
    let path =
        crate::approval::signers_path(paths, policy.allowed_signers.as_deref().map(std::path::Path::new), system);
    Ok(Some(Signing {
        key: key_or_default(key)?,
        signers: crate::approval::load_signers(&path).map_err(anyhow::Error::msg)?,
    }))
}

pub(crate) fn key_or_default(key: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    key.or_else(|| std::env::var_os("HOME").and_then(|h| crate::approval::sign::default_key(std::path::Path::new(&h))))
        .context("no SSH key to sign with: give one with --key (a FIDO key, id_ed25519_sk, is best)")
}

/// Signs `req` and checks the signature against the allowed signers, so that an approver whose
/// key is not listed learns it now rather than when the approval is refused.
pub(crate) fn sign_request(
    signing: &Signing,
    req: &Request,
) -> anyhow::Result<(String, crate::approval::signature::Verified)> {
    let sig = crate::approval::sign::sign(&signing.key, &req.digest).map_err(anyhow::Error::msg)?;
    let verified = crate::approval::signature::verify(&sig, &req.digest, &signing.signers, now())
        .with_context(|| format!("the signature made with {} would not be accepted", signing.key.display()))?;
    Ok((sig, verified))
}

/// Lets the human pick one of the pending requests. `None` when there are none, or they chose none.
fn pick(store: &Store, tty: &Terminal) -> anyhow::Result<Option<String>> {
    let now = now();
    let pending: Vec<Request> = store.pending(now)?.into_iter().filter_map(Result::ok).collect();
    match pending.as_slice() {
        [] => {
            println!("no requests are waiting for a decision");
            Ok(None)
        }
        [only] => Ok(Some(only.id.clone())),
        many => {
            let items: Vec<String> =
                many.iter().map(|r| display::escape_text(&summary(r, now, lifecycle::waiting(store, &r.id)))).collect();
            let choice = dialoguer::Select::new()
                .with_prompt("Which request?")
                .items(&items)
                .default(0)
                .interact_on_opt(&tty.term()?)
                .context("cannot show the list of requests")?;
            Ok(choice.map(|i| many[i].id.clone()))
        }
    }
}

fn decide_interactively(
    paths: &Paths,
    store: &Store,
    facts: &ApproverFacts,
    tty: &mut Terminal,
    id: &str,
    signing: Option<&Signing>,
) -> anyhow::Result<ExitCode> {
    let req = store.load(id)?;
    let now = now();
    if let Some(d) = store.decision(id)? {
        tty.say(&format!("request {id} was already {}\n", d.outcome))?;
        return Ok(ExitCode::FAILURE);
    }
    if req.is_expired(now) {
        tty.say(&format!("request {id} has expired; the command has to be run again\n"))?;
        return Ok(ExitCode::FAILURE);
    }
    let by = decided_by(facts);
    let explained = match matches_policy(paths, &req, now) {
        Ok(explained) => explained,
        Err(why) => {
            audit_decision(paths, &req, "refused", &why, &by);
            eprintln!("guardsh: {}", display::escape_text(&why));
            return Ok(ExitCode::from(exit::DENIED));
        }
    };
    if let Err(refusal) = checks::may_approve(facts, &req) {
        audit_decision(paths, &req, "refused", &refusal.to_string(), &by);
        eprintln!("guardsh: {refusal}");
        return Ok(ExitCode::from(exit::DENIED));
    }
    let on = crate::colour::tty();
    tty.say(&paint_screen(&describe(&req, now), on))?;
    if let Some(what) = explained {
        tty.say(&(display::escape_text(&format!("  what:      {what}")) + "\n"))?;
    }
    // The values escaped, the line's own newline not.
    let waiting = display::escape_text(&format!(
        "  waiting:   {}; {}",
        crate::timefmt::duration(now.saturating_sub(req.created)),
        lifecycle::waiting(store, id).describe()
    ));
    tty.say(&format!("{waiting}\n"))?;
    // A code shown only now, on this terminal: nothing could have typed it in advance.
    let code = crate::random::token(4)?;
    tty.say(&paint(
        on,
        Style::Strong,
        &format!("Type {code} to approve, \"deny\" to deny, or Enter to leave it pending: "),
    ))?;
    // While the prompt waits, the request can go: its command died (withdrawn), another approver
    // decided, or it expired. Then the prompt goes too, without a key press.
    let gone = || {
        lifecycle::waiting(store, id).abandoned()
            || store.decision(id).ok().flatten().is_some()
            || req.is_expired(crate::timefmt::now_secs())
    };
    let mut tries = CODE_TRIES;
    let (outcome, reason) = loop {
        let Some(answer) = tty.read_line_unless(std::time::Duration::from_millis(250), gone)? else {
            withdraw_abandoned(paths, store)?;
            let now_state = match store.decision(id).ok().flatten() {
                Some(d) => format!("was {} elsewhere", d.outcome),
                None if req.is_expired(crate::timefmt::now_secs()) => "expired".to_string(),
                None => format!("was withdrawn: {}", lifecycle::ABANDONED),
            };
            tty.say(&format!("\nrequest {id} {now_state}; nothing to decide\n"))?;
            return Ok(ExitCode::FAILURE);
        };
        let answer = answer.trim();
        if answer == code {
            break (Outcome::Approved, None);
        } else if matches!(answer, "deny" | "d" | "n" | "no") {
            tty.say("Reason (shown to the agent): ")?;
            break (Outcome::Denied, Some(tty.read_line()?).filter(|r| !r.trim().is_empty()));
        } else if answer.is_empty() {
            tty.say("left pending\n")?;
            return Ok(ExitCode::FAILURE);
        }
        // A mistyped code: try again, a bounded number of times; the code is never shown again
        // in reply (what was typed may not be the human's).
        tries -= 1;
        if tries == 0 {
            tty.say(&format!("that is not the code: request {id} is left pending, NOT approved\n"))?;
            return Ok(ExitCode::FAILURE);
        }
        tty.say(&format!(
            "that is not the code; type it again ({tries} {} left), \"deny\", or Enter to leave it pending: ",
            if tries == 1 { "try" } else { "tries" }
        ))?;
    };
    let mut by = by;
    let mut signature = None;
    if let (Outcome::Approved, Some(signing)) = (outcome, signing) {
        tty.say(&format!("signing with {}\n", signing.key.display()))?;
        let (sig, verified) = sign_request(signing, &req)?;
        by.key = Some(verified.fingerprint);
        by.principal = Some(verified.principals);
        signature = Some(sig);
    }
    // The requester may have died while the human read the request: an approval now would run
    // nothing for it, so the request is withdrawn instead.
    if outcome == Outcome::Approved && lifecycle::waiting(store, id).abandoned() {
        withdraw_abandoned(paths, store)?;
        tty.say(&format!("request {id} was withdrawn: {}; it was NOT approved\n", lifecycle::ABANDONED))?;
        return Ok(ExitCode::FAILURE);
    }
    let decision = Decision { outcome, digest: req.digest.clone(), reason, by: by.clone(), time: now, signature };
    let standing = store.decide(id, &decision)?;
    if standing.outcome != outcome || standing.time != decision.time {
        tty.say(&format!("request {id} was already {} (while you were looking at it)\n", standing.outcome))?;
        return Ok(ExitCode::FAILURE);
    }
    let (word, audit_outcome, style) = match outcome {
        Outcome::Approved => ("approved", "approved", Style::Allow),
        _ => ("denied", "denied_by_human", Style::Deny),
    };
    audit_decision(paths, &req, audit_outcome, decision.reason.as_deref().unwrap_or(""), &by);
    tty.say(&format!("{}\n", paint(on, style, &format!("{word} request {id}"))))?;
    Ok(ExitCode::SUCCESS)
}

/// The approval screen with its first line (the request) in bold and the rule's reason in the
/// ask colour; applied to escaped text, so only to guardsh's own lines.
fn paint_screen(screen: &str, on: bool) -> String {
    screen
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let line = if i == 0 {
                paint(on, Style::Strong, l)
            } else if l.starts_with("  because:") {
                paint(on, Style::Ask, l)
            } else {
                l.to_string()
            };
            line + "\n"
        })
        .collect()
}

/// How many times a mistyped approval code may be typed again before the request is left pending.
const CODE_TRIES: u32 = 3;

/// Checks what a request claims about itself against the policy: anything running as the user
/// can rewrite a request file, so the rule, reason and lifetime shown to the human are only
/// trusted when the policy, asked afresh about that argv in that directory, says the same.
///
/// Returns what made the command a write as the policy sees it (`pipeline::explanation`), for the
/// human; not for SQL piped on stdin, which only the shim read (the request shows its hash).
fn matches_policy(paths: &Paths, req: &Request, now: u64) -> Result<Option<String>, String> {
    use std::os::unix::ffi::OsStringExt;
    let tampered = |what: String| {
        format!("request {} {what}; it may have been tampered with, so it is not shown for approval", req.id)
    };
    let argv = req.argv_bytes().ok_or_else(|| tampered("has an unreadable argv".into()))?;
    let cwd =
        crate::approval::request::unhex(&req.cwd_hex).ok_or_else(|| tampered("has an unreadable directory".into()))?;
    let cwd = PathBuf::from(std::ffi::OsString::from_vec(cwd));
    let policy = crate::config::load(&crate::config::Locations::new(paths, &cwd)).map_err(|e| e.to_string())?;
    if req.created > now + 60 || req.expires <= req.created || req.expires - req.created > policy.approval_timeout {
        return Err(tampered(format!(
            "claims to stay approvable for {}s, and the policy allows {}s",
            req.expires.saturating_sub(req.created),
            policy.approval_timeout
        )));
    }
    let mut words = argv.into_iter().map(std::ffi::OsString::from_vec);
    let argv0 = words.next().ok_or_else(|| tampered("has an empty argv".into()))?;
    // The variables the request binds (selectors, HOME; not credentials, which it holds only as
    // hashes): a Rego stage may decide by them (the kube context a KUBECONFIG names), and they are
    // what the approved command will run with.
    let vars = req
        .env
        .iter()
        .filter(|(k, v)| !k.starts_with('(') && !req.is_credential(k) && !v.starts_with("sha256:"))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let inv = crate::pipeline::Invocation {
        tool: req.tool.clone(),
        argv0,
        args: words.collect(),
        vars,
        cwd,
        stdin: crate::pipeline::Stdin::Unknown,
    };
    // Input files are read again, so that the policy decides as the shim did (the request binds
    // and shows the copy the shim holds, which is what runs).
    let eval = crate::pipeline::evaluate_reading_files(&policy, &inv, false, None);
    let rule = match &eval.verdict.cause {
        crate::decision::Cause::Rule(id) => Some(id.clone()),
        _ => None,
    };
    if eval.verdict.action != crate::rules::Action::Ask {
        return Err(tampered(format!(
            "is for a command the policy does not ask about ({})",
            eval.verdict.action.as_str()
        )));
    }
    if rule != req.rule || eval.verdict.reason != req.reason {
        return Err(tampered(format!(
            "claims {:?}: {:?}, and the policy says {:?}: {:?}",
            req.rule, req.reason, rule, eval.verdict.reason
        )));
    }
    let piped = req.env.iter().any(|(k, _)| k == "(stdin)");
    Ok(if piped { None } else { crate::pipeline::explanation(&eval.argv) })
}

pub fn deny(id: &str, reason: Option<String>) -> anyhow::Result<ExitCode> {
    let (paths, _) = here()?;
    let store = store(&paths)?;
    let req = store.load(id)?;
    // Denying only ever tightens, so anyone (the agent included) may deny or withdraw a request.
    let facts = human::facts(false);
    let by = decided_by(&facts);
    let decision = Decision {
        outcome: Outcome::Denied,
        digest: req.digest.clone(),
        reason,
        by: by.clone(),
        time: now(),
        signature: None,
    };
    let standing = store.decide(id, &decision)?;
    if standing.outcome != Outcome::Denied {
        eprintln!("guardsh: request {id} was already {}", standing.outcome);
        return Ok(ExitCode::FAILURE);
    }
    audit_decision(&paths, &req, "denied_by_human", decision.reason.as_deref().unwrap_or(""), &by);
    println!("denied request {id}");
    Ok(ExitCode::SUCCESS)
}

/// Shows requests as they arrive (with a bell) and asks about each in turn, until interrupted.
pub fn watch(key: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

    let Approver { paths, signing, facts, mut tty, store } = match approver(key)? {
        Ok(a) => a,
        Err(code) => return Ok(code),
    };
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
    inotify.add_watch(store.dir(), AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)?;
    let mut seen = std::collections::HashSet::new();
    tty.say("watching for requests (Ctrl-C to stop)\n")?;
    loop {
        withdraw_abandoned(&paths, &store)?;
        for req in store.pending(now())?.into_iter().filter_map(Result::ok) {
            if !seen.insert(req.id.clone()) {
                continue;
            }
            tty.say("\x07")?;
            decide_interactively(&paths, &store, &facts, &mut tty, &req.id, signing.as_ref())?;
        }
        // Blocks until something is created in the store.
        inotify.read_events()?;
    }
}
