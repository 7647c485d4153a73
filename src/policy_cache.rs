//! Loads the policy for one tool through a cache of compiled policies, so that a shim call does
//! not compile every tool's rules.
//!
//! Compiling the whole policy is most of a shim call's cost (BENCHMARKS.md). On a miss the
//! policy is compiled in full, exactly as without a cache, and the part the invoked tool needs
//! (the settings, the merged credential list and that tool's rules) is written under a name
//! derived from the guardsh build, the tool, and every layer's path and bytes. On a hit that part
//! is read back instead. Any problem with the cache (missing, unreadable, not ours, not valid)
//! is a miss: the cache can make guardsh slower, never decide differently.
//!
//! Trust: the cache lives in the user's state directory, which an agent running as the user can
//! write, just like the user policy it was compiled from. A forged entry therefore gives an agent
//! nothing that editing `rules.toml` would not. A root-owned system policy is the one layer an
//! agent cannot change, so when one is present the cache is not used at all.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{self, Locations};
use crate::matching::index::{self, RuleIndex};
use crate::rules::{ConfigError, LayerKind, Policy, Rule, Source, ToolPolicy};

/// What an entry starts with, after `MAGIC` and the header's length. The invoked tool's rules
/// follow it in chunks, one per index bucket (see `matching::index`), each a list of
/// `(rule number, rule)`, so that a call decodes the header and the one or two chunks its
/// command line can match, not every rule. All of it is postcard.
#[derive(Serialize, Deserialize)]
struct Header {
    /// Every setting, and of the tools only the invoked one, with its rules left out.
    policy: Policy,
    /// Byte ranges, from the end of the header, of the rules every lookup needs and of each bucket.
    always: (u64, u64),
    buckets: Vec<(u64, u64)>,
}

/// Names the format: an entry of another layout is a miss, not garbage decoded as rules.
const MAGIC: &[u8; 8] = b"gshc\0\0\0\x01";

/// The policy as it applies to this command line of `tool`: every setting, and of the tools
/// only `tool`, with at least every rule that could match `args` (all of them on a miss).
pub fn load_for_invocation(
    locations: &Locations,
    state_dir: &Path,
    tool: &str,
    args: &[OsString],
) -> Result<Policy, ConfigError> {
    let sources = config::read_sources(locations)?;
    if sources.iter().any(|s| s.layer == LayerKind::System) {
        return crate::rules::compile(&sources);
    }
    let dir = state_dir.join("cache");
    let policy_key = key(&sources);
    let file = entry(&dir, &policy_key, tool);
    if let Some(policy) = read(&file, tool, args) {
        return Ok(policy);
    }
    let policy = crate::rules::compile(&sources)?;
    // Best effort: a cache that cannot be written only costs the next call a compile.
    let _ = write(&dir, &policy_key, &file, &policy, tool);
    Ok(policy)
}

/// Compiles the policy and writes every tool's entry, so that no shim call has to compile it
/// (`guardsh check-config` does this: after the usual edit-and-check, shims only read). Without a
/// cache (a system policy is present), it only compiles.
pub fn warm(locations: &Locations, state_dir: &Path) -> Result<Policy, ConfigError> {
    let sources = config::read_sources(locations)?;
    let policy = crate::rules::compile(&sources)?;
    if sources.iter().any(|s| s.layer == LayerKind::System) {
        return Ok(policy);
    }
    let dir = state_dir.join("cache");
    let policy_key = key(&sources);
    for tool in policy.tools.keys() {
        let file = entry(&dir, &policy_key, tool);
        // Best effort, as on a miss: a shim that finds no entry compiles.
        let _ = write(&dir, &policy_key, &file, &policy, tool);
    }
    Ok(policy)
}

/// The entry for `tool` under the policy named `policy_key`.
fn entry(dir: &Path, policy_key: &str, tool: &str) -> PathBuf {
    dir.join(format!("{policy_key}-{}.bin", hex(&Sha256::digest(tool.as_bytes()))))
}

/// Names the compiled policy: the guardsh build (its version and the identity of this binary, so
/// an upgrade never reads an older build's entry) and each layer's kind, path and text.
fn key(sources: &[Source]) -> String {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    if let Ok(m) = std::fs::metadata("/proc/self/exe") {
        h.update(format!("\0{}:{}:{}:{}", m.dev(), m.ino(), m.size(), m.mtime()).as_bytes());
    }
    for s in sources {
        h.update(format!("\0{:?}\0{}\0{}\0", s.layer, s.path.len(), s.path).as_bytes());
        h.update(s.text.len().to_le_bytes());
        h.update(s.text.as_bytes());
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cached policy, if there is a regular file of ours that nobody else can write and it parses.
fn read(file: &Path, tool: &str, args: &[OsString]) -> Option<Policy> {
    // O_NOFOLLOW, then the checks on what was opened: a symlink is never followed to a file
    // that passes them.
    let f = std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NOFOLLOW).open(file).ok()?;
    let meta = f.metadata().ok()?;
    let ours = meta.file_type().is_file() && meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o022 == 0;
    if !ours {
        return None;
    }
    let mut head = [0u8; 12];
    f.read_exact_at(&mut head, 0).ok()?;
    if head[..8] != MAGIC[..] {
        return None;
    }
    let header_len = u64::from(u32::from_le_bytes(head[8..].try_into().ok()?));
    let mut header = vec![0; usize::try_from(header_len).ok()?];
    f.read_exact_at(&mut header, 12).ok()?;
    let Header { mut policy, always, buckets } = postcard::from_bytes(&header).ok()?;
    let body = 12 + header_len;
    let Some(tool_policy) = policy.tools.get_mut(tool) else {
        return Some(policy);
    };
    let argv = crate::matching::normalize(args, &tool_policy.spec);
    let mut rules: Vec<(usize, Rule)> = chunk(&f, body, always)?;
    for b in index::lookup(&argv, buckets.len()) {
        rules.extend(chunk(&f, body, *buckets.get(b)?)?);
    }
    // Back in policy order, each once (a `{a,b}` rule can be in two buckets).
    rules.sort_by_key(|(i, _)| *i);
    rules.dedup_by_key(|(i, _)| *i);
    tool_policy.rules = rules.into_iter().map(|(_, r)| r).collect();
    Some(policy)
}

fn chunk(f: &File, body: u64, (offset, len): (u64, u64)) -> Option<Vec<(usize, Rule)>> {
    let mut bytes = vec![0; usize::try_from(len).ok()?];
    f.read_exact_at(&mut bytes, body.checked_add(offset)?).ok()?;
    postcard::from_bytes(&bytes).ok()
}

/// Lays out `tool`'s part of `policy` as an entry: magic, header length, header, chunks.
fn encode(policy: &Policy, tool: &str) -> postcard::Result<Vec<u8>> {
    let rules: &[Rule] = policy.tools.get(tool).map_or(&[], |t| &t.rules);
    let RuleIndex { always, buckets } = index::build(rules);
    let mut body = Vec::new();
    let mut put = |members: &[usize]| -> postcard::Result<(u64, u64)> {
        let start = body.len();
        let chunk: Vec<(usize, &Rule)> = members.iter().map(|&i| (i, &rules[i])).collect();
        body.extend(postcard::to_stdvec(&chunk)?);
        Ok((start as u64, (body.len() - start) as u64))
    };
    let always = put(&always)?;
    let buckets = buckets.iter().map(|b| put(b)).collect::<postcard::Result<Vec<_>>>()?;
    let mut part = settings_only(policy);
    if let Some(t) = policy.tools.get(tool) {
        part.tools.insert(tool.to_string(), ToolPolicy { rules: vec![], ..t.clone_without_rules() });
    }
    let header = postcard::to_stdvec(&Header { policy: part, always, buckets })?;
    let len = u32::try_from(header.len()).map_err(|_| postcard::Error::SerializeBufferFull)?;
    let mut out = Vec::with_capacity(12 + header.len() + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend(header);
    out.extend(body);
    Ok(out)
}

/// `policy` without its tools (cloning them all to drop them would cost a miss dearly).
fn settings_only(policy: &Policy) -> Policy {
    let Policy {
        mode,
        strip,
        keep,
        shim_dir,
        approval_timeout,
        wait,
        approval,
        allowed_signers,
        approval_file,
        trust_user_installed_tools,
        credentials_from,
        sandbox,
        agent_keys,
        tools: _,
        pack,
        pack_note,
        all_credentials,
        sources,
        rego,
    } = policy;
    Policy {
        mode: *mode,
        strip: strip.clone(),
        keep: keep.clone(),
        shim_dir: shim_dir.clone(),
        approval_timeout: *approval_timeout,
        wait: *wait,
        approval: *approval,
        allowed_signers: allowed_signers.clone(),
        approval_file: approval_file.clone(),
        trust_user_installed_tools: *trust_user_installed_tools,
        credentials_from: credentials_from.clone(),
        sandbox: sandbox.clone(),
        agent_keys: agent_keys.clone(),
        tools: Default::default(),
        pack: pack.clone(),
        pack_note: pack_note.clone(),
        all_credentials: all_credentials.clone(),
        sources: sources.clone(),
        rego: rego.clone(),
    }
}

/// Writes the entry under a temporary name and renames it into place, so that a concurrent
/// shim (the race: two calls missing at once) reads either nothing or a whole entry. Entries
/// for other policy keys are removed first: they belong to policies that no longer exist.
fn write(dir: &Path, policy_key: &str, file: &Path, policy: &Policy, tool: &str) -> std::io::Result<()> {
    let bytes = encode(policy, tool).map_err(std::io::Error::other)?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let current = e.file_name().to_str().is_some_and(|n| n.starts_with(policy_key));
            if !current && p.extension().is_some_and(|x| x == "bin" || x == "json") {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let tmp: PathBuf = dir.join(format!(".{}.{}", std::process::id(), crate::random::token(8)?));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let renamed = f.write_all(&bytes).and_then(|()| std::fs::rename(&tmp, file));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}
