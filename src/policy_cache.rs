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

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::{self, Locations};
use crate::rules::{ConfigError, LayerKind, Policy, Source};

/// The policy as it applies to `tool`: every setting, and of the tools only `tool`.
pub fn load_for_tool(locations: &Locations, state_dir: &Path, tool: &str) -> Result<Policy, ConfigError> {
    let sources = config::read_sources(locations)?;
    if sources.iter().any(|s| s.layer == LayerKind::System) {
        return crate::rules::compile(&sources);
    }
    let dir = state_dir.join("cache");
    let policy_key = key(&sources);
    let file = dir.join(format!("{policy_key}-{}.json", hex(&Sha256::digest(tool.as_bytes()))));
    if let Some(policy) = read(&file) {
        return Ok(policy);
    }
    let policy = crate::rules::compile(&sources)?;
    let mut part = policy.clone();
    part.tools.retain(|name, _| name == tool);
    // Best effort: a cache that cannot be written only costs the next call a compile.
    let _ = write(&dir, &policy_key, &file, &part);
    Ok(policy)
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
fn read(file: &Path) -> Option<Policy> {
    let meta = std::fs::symlink_metadata(file).ok()?;
    let ours = meta.file_type().is_file() && meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o022 == 0;
    if !ours {
        return None;
    }
    serde_json::from_slice(&std::fs::read(file).ok()?).ok()
}

/// Writes the entry under a temporary name and renames it into place, so that a concurrent
/// shim (the race: two calls missing at once) reads either nothing or a whole entry. Entries
/// for other policy keys are removed first: they belong to policies that no longer exist.
fn write(dir: &Path, policy_key: &str, file: &Path, policy: &Policy) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            let current = e.file_name().to_str().is_some_and(|n| n.starts_with(policy_key));
            if !current && p.extension().is_some_and(|x| x == "json") {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let tmp: PathBuf = dir.join(format!(".{}.{}", std::process::id(), crate::random::token(8)?));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let written = f.write_all(&serde_json::to_vec(policy).map_err(std::io::Error::other)?);
    let renamed = written.and_then(|()| std::fs::rename(&tmp, file));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}
