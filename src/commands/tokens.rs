//! Portable approvals: `guardsh request` (make a request for a command, e.g. a CI step),
//! `export` (a waiting request as text), `sign` (with your SSH key, on any machine) and `import`
//! (a signed token, which approves the request here).

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::approve::{self, Signing, key_or_default, now, sign_request};
use super::{here, invocation, load_policy};
use crate::approval::{self, DecidedBy, Decision, Outcome, Request, Token, procinfo};
use crate::decision::Cause;
use crate::display;
use crate::exec::FileId;
use crate::pipeline;
use crate::rules::Action;

fn read_input(file: Option<&Path>) -> anyhow::Result<String> {
    let mut text = String::new();
    match file {
        Some(f) if f != Path::new("-") => {
            text = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        _ => {
            std::io::stdin().read_to_string(&mut text).context("cannot read standard input")?;
        }
    }
    Ok(text)
}

/// Makes a request for a command as it would run here (this directory, this PATH), without
/// running it, for someone to sign in advance.
pub fn request(argv: &[OsString], ttl: Option<u64>) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let inv = invocation(argv, cwd)?;
    let policy = load_policy(&paths, &inv.cwd).map_err(super::InvalidPolicy::fix_first)?;
    let eval = pipeline::evaluate_reading_files(&policy, &inv, true, FileId::current_exe().ok());
    if eval.verdict.action == Action::Deny && !eval.verdict.ci_denied {
        anyhow::bail!("the policy denies this command outright; no approval can run it: {}", eval.verdict.reason);
    }
    if eval.verdict.action == Action::Allow {
        anyhow::bail!("the policy already allows this command; it needs no approval");
    }
    let real = match &eval.real {
        Some(Ok(r)) => r.clone(),
        Some(Err(e)) => anyhow::bail!("{e}"),
        None => anyhow::bail!("internal error: no resolved binary"),
    };
    let sha = approval::sha256_file(&real).with_context(|| format!("cannot read {}", real.display()))?;
    let argv: Vec<&[u8]> =
        std::iter::once(inv.argv0.as_encoded_bytes()).chain(inv.args.iter().map(|a| a.as_encoded_bytes())).collect();
    let mut bound =
        pipeline::bound_environment(&inv.tool, eval.approval_env.as_ref().unwrap_or(&eval.env), &eval.selectors);
    // The input files as they are now: the token is for these bytes (see `snapshot`).
    bound.extend(eval.file_bindings.iter().cloned());
    let cmd = approval::Command {
        uid: nix::unistd::getuid().as_raw(),
        tool: &inv.tool,
        argv: &argv,
        cwd: inv.cwd.as_os_str().as_encoded_bytes(),
        real: real.as_os_str().as_encoded_bytes(),
        real_sha256: &sha,
        env: &bound,
    };
    let now = now();
    let ctx = approval::Context {
        id: crate::random::token(12)?,
        rule: match &eval.verdict.cause {
            Cause::Rule(id) => Some(id.clone()),
            _ => None,
        },
        reason: eval.verdict.reason.clone(),
        grants: eval.approval_env.as_ref().map_or(eval.env.passed.clone(), |e| e.passed.clone()),
        requester: procinfo::requester(std::env::var(pipeline::SESSION_VAR).ok())?,
        created: now,
        expires: now + ttl.unwrap_or(policy.approval_timeout),
    };
    let req = Request::new(cmd, ctx);
    println!("{}", serde_json::to_string_pretty(&req)?);
    eprintln!(
        "guardsh: request {} stays approvable for {}s (--ttl to change). Next: guardsh sign --key KEY FILE > token, then give the command GUARDSH_APPROVAL_FILE=token",
        req.id,
        req.expires - req.created
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a stored request, for signing elsewhere.
pub fn export(id: &str) -> anyhow::Result<ExitCode> {
    let (paths, _) = here()?;
    let req = approve::store(&paths)?.load(id)?;
    println!("{}", serde_json::to_string_pretty(&req)?);
    Ok(ExitCode::SUCCESS)
}

/// Signs a request (from FILE or stdin) with your key and prints the token.
pub fn sign(file: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let req: Request = serde_json::from_str(&read_input(file.as_deref())?).context("not a guardsh request")?;
    if !req.is_intact() {
        anyhow::bail!("request {} was altered after it was made; refusing to sign it", display::escape_text(&req.id));
    }
    if req.is_expired(now()) {
        anyhow::bail!("request {} has expired", req.id);
    }
    // Show the human what they sign, on stderr (the token goes to stdout).
    eprint!("{}", approve::describe(&req, now()));
    let signers = match approve::signing_for(&paths, &cwd, key.clone())? {
        Some(s) => s.signers,
        // Signing on a machine whose own policy is interactive: check against its signers file
        // if there is one, else sign without the early check.
        None => crate::approval::load_signers(&paths.config_dir.join("allowed_signers")).unwrap_or_default(),
    };
    let signing = Signing { key: key_or_default(key)?, signers };
    let signature = if signing.signers.is_empty() {
        crate::approval::sign::sign(&signing.key, &req.digest).map_err(anyhow::Error::msg)?
    } else {
        sign_request(&signing, &req)?.0
    };
    let token = Token { guardsh_token: crate::approval::token::VERSION, request: req, signature };
    println!("{}", serde_json::to_string_pretty(&token)?);
    Ok(ExitCode::SUCCESS)
}

/// Imports a signed token: checks it, and records the request as approved here.
pub fn import(file: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let token = Token::parse(&read_input(file.as_deref())?)?;
    let policy = load_policy(&paths, &cwd).map_err(super::InvalidPolicy::fix_first)?;
    let system = policy.sources.iter().any(|(l, _)| *l == crate::rules::LayerKind::System);
    let signers_file = approval::signers_path(&paths, policy.allowed_signers.as_deref().map(Path::new), system);
    let signers = approval::load_signers(&signers_file).map_err(anyhow::Error::msg)?;
    let verified = match token.check(&signers, now()) {
        Ok(v) => v,
        Err(e) => {
            let by = DecidedBy { uid: nix::unistd::getuid().as_raw(), ..Default::default() };
            approve::audit_decision(&paths, &token.request, "refused", &e.to_string(), &by);
            anyhow::bail!("{e}");
        }
    };
    let store = approve::store(&paths)?;
    let id = &token.request.id;
    if store.is_consumed(id) {
        anyhow::bail!("request {id} was already used; an approval runs its command once");
    }
    if let Some(d) = store.decision(id)? {
        if d.outcome == Outcome::Approved && d.digest == token.request.digest {
            println!("request {id} is already approved");
            return Ok(ExitCode::SUCCESS);
        }
        anyhow::bail!("request {id} was already {}", d.outcome);
    }
    match store.load(id) {
        Ok(existing) if existing.digest != token.request.digest => {
            anyhow::bail!("request {id} here is not the request that was signed")
        }
        Ok(_) => {}
        Err(approval::store::StoreError::NoSuchRequest { .. }) => store.create(&token.request)?,
        Err(e) => return Err(e.into()),
    }
    let by = DecidedBy {
        uid: nix::unistd::getuid().as_raw(),
        pid: std::process::id() as i32,
        tty: None,
        key: Some(verified.fingerprint.clone()),
        principal: Some(verified.principals.clone()),
    };
    let decision = Decision {
        outcome: Outcome::Approved,
        digest: token.request.digest.clone(),
        reason: None,
        by: by.clone(),
        time: now(),
        signature: Some(token.signature.clone()),
    };
    let standing = store.decide(id, &decision)?;
    if standing.outcome != Outcome::Approved {
        anyhow::bail!("request {id} was already {}", standing.outcome);
    }
    approve::audit_decision(&paths, &token.request, "approved", &format!("signed by {}", verified.principals), &by);
    println!(
        "approved request {id} (signed by {}, {})",
        display::escape_text(&verified.principals),
        verified.fingerprint
    );
    Ok(ExitCode::SUCCESS)
}
