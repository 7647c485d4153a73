//! Loads the policy for one tool through a cache of compiled policies, so that a shim call does
//! not compile every tool's rules.
//!
//! Compiling the whole policy is most of a shim call's cost (BENCHMARKS.md). On a miss the
//! policy is compiled in full, exactly as without a cache, and the part the invoked tool needs
//! (the settings, the merged credential list and that tool's rules) is written under a name
//! derived from the guardsh build, the tool, and every layer's path and stamp (`config::Stamp`:
//! device, inode, size, mode, owner, modification and change times). On a hit that part is read
//! back instead, and no layer is opened: the key costs a `stat` per layer, whatever the policy's
//! size. Any problem with the cache (missing, unreadable, not ours, not valid) is a miss: the
//! cache can make guardsh slower, never decide differently.
//!
//! A stamp names a file's content because every write sets the change time from the kernel's
//! clock and nothing can set it back. The one gap is the clock's tick: two writes of the same
//! size within one tick leave the same stamp (the "racy clean" problem git's index has). So, as
//! git does, an entry is kept only when its own file's modification time, set by the same clock
//! when it was written, is later than every layer's change time: a later write to a layer then
//! falls in a later tick and moves its stamp. It is also kept only when no stamp moved while the
//! layers were read. A policy edited within the current tick is compiled by each call until the
//! clock moves on. Tested by `an_edit_within_one_clock_tick_is_not_missed`.
//!
//! Trust: the cache lives in the user's state directory, which an agent running as the user can
//! write, just like the user policy it was compiled from. A forged entry therefore gives an agent
//! nothing that editing `rules.toml` would not. A root-owned system policy is the one layer an
//! agent cannot change, so when one is present the cache is not used at all.

use std::ffi::OsString;
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::approval::request::hex;
use crate::config::{self, Locations, Stamp};
use crate::matching::index::{self, RuleIndex};
use crate::rules::{ConfigError, Policy, Rule, ToolPolicy};
use serde::{Deserialize, Serialize};

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
const MAGIC: &[u8; 8] = b"gshc\0\0\0\x02";

/// The policy as it applies to this command line of `tool`: every setting, and of the tools
/// only `tool`, with at least every rule that could match `args` (all of them on a miss).
pub fn load_for_invocation(
    locations: &Locations,
    state_dir: &Path,
    tool: &str,
    args: &[OsString],
) -> Result<Policy, ConfigError> {
    load_with(locations, state_dir, tool, args, &written_at)
}

/// When an entry was written, by the clock that stamps the layers: its file's modification time.
fn written_at(file: &File) -> std::io::Result<SystemTime> {
    file.metadata()?.modified()
}

/// `load_for_invocation`, with the entry's clock given (the tests stop it).
fn load_with(
    locations: &Locations,
    state_dir: &Path,
    tool: &str,
    args: &[OsString],
    clock: Clock,
) -> Result<Policy, ConfigError> {
    let Some(cached) = Cached::new(locations, state_dir) else {
        crate::arena::stop();
        return crate::rules::compile(&config::read_sources(locations)?);
    };
    let file = cached.entry(tool);
    if let Some(policy) = read(&file, tool, args) {
        return Ok(policy);
    }
    crate::arena::stop();
    let policy = crate::rules::compile(&config::read_sources(locations)?)?;
    // Best effort: a cache that cannot be written only costs the next call a compile.
    let _ = write(&cached.dir, &cached.key, &file, &policy, tool, |t: &File| cached.may_keep(locations, clock, t));
    Ok(policy)
}

/// When an entry was written, as the file clock tells (`written_at`).
type Clock<'a> = &'a dyn Fn(&File) -> std::io::Result<SystemTime>;

/// Compiles the policy and writes every tool's entry, so that no shim call has to compile it
/// (`guardsh check-config` does this: after the usual edit-and-check, shims only read). Without a
/// cache (a system policy is present), or while the policy has not settled, it only compiles.
pub fn warm(locations: &Locations, state_dir: &Path) -> Result<Policy, ConfigError> {
    let cached = Cached::new(locations, state_dir);
    let policy = crate::rules::compile(&config::read_sources(locations)?)?;
    if let Some(cached) = cached {
        for tool in policy.tools.keys() {
            // Best effort, as on a miss: a shim that finds no entry compiles.
            let keep = |t: &File| cached.may_keep(locations, &written_at, t);
            let _ = write(&cached.dir, &cached.key, &cached.entry(tool), &policy, tool, keep);
        }
    }
    Ok(policy)
}

/// The cache as it applies to the policy on disk now: its directory and the key that names the
/// policy, from the layers' stamps taken before anything is read.
struct Cached<'a> {
    dir: PathBuf,
    key: String,
    stamps: Vec<(&'a Path, Option<Stamp>)>,
}

impl<'a> Cached<'a> {
    /// `None` when the cache is not used: a system policy is present (the one layer an agent
    /// cannot write; see the module comment), or a layer cannot even be examined.
    fn new(locations: &'a Locations, state_dir: &Path) -> Option<Self> {
        let stamps = config::stamps(locations)?;
        if stamps.first().is_some_and(|(_, s)| s.is_some()) {
            return None;
        }
        Some(Cached { dir: state_dir.join("cache"), key: key(&stamps), stamps })
    }

    /// The entry for `tool` under this policy.
    fn entry(&self, tool: &str) -> PathBuf {
        self.dir.join(format!("{}-{}.bin", self.key, hex(&hash128(tool))))
    }

    /// Whether an entry written (to its temporary file) at `written`, by the file clock, may be
    /// kept under this key: every layer changed before that tick, and no stamp has moved since
    /// the stamps were taken. A later write to a layer then gets a later change time than the
    /// one in the key, so it cannot hide behind it.
    fn may_keep(&self, locations: &Locations, clock: Clock, entry: &File) -> bool {
        let Ok(written) = clock(entry) else { return false };
        let settled = self.stamps.iter().filter_map(|(_, s)| s.as_ref()).all(|s| {
            let nanos = u32::try_from(s.ctime.1).unwrap_or(0).min(999_999_999);
            let changed = UNIX_EPOCH + Duration::new(s.ctime.0.max(0).unsigned_abs(), nanos);
            changed < written
        });
        settled && config::stamps(locations).as_ref() == Some(&self.stamps)
    }
}

/// Names the compiled policy: the guardsh build (its version and the identity of this binary, so
/// an upgrade never reads an older build's entry) and each layer's path and stamp.
fn key(stamps: &[(&Path, Option<Stamp>)]) -> String {
    let exe = std::fs::metadata("/proc/self/exe").map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec())).ok();
    hex(&hash128((env!("CARGO_PKG_VERSION"), exe, stamps)))
}

/// 128 bits of SipHash over `value`: a name for a cache entry, not a security check (an agent
/// that can write the cache can write the policy it came from).
fn hash128(value: impl Hash) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (seed, half) in out.chunks_mut(8).enumerate() {
        let mut h = DefaultHasher::new();
        (seed, &value).hash(&mut h);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
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
        mint,
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
        mint: mint.clone(),
    }
}

/// Writes the entry under a temporary name and renames it into place, so that a concurrent
/// shim (the race: two calls missing at once) reads either nothing or a whole entry; the entry
/// is dropped instead when `keep`, shown the written file, says so. Entries for other policy
/// keys are removed first: they belong to policies that no longer exist.
fn write(
    dir: &Path,
    policy_key: &str,
    file: &Path,
    policy: &Policy,
    tool: &str,
    keep: impl Fn(&File) -> bool,
) -> std::io::Result<()> {
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
    let renamed = f.write_all(&bytes).and_then(|()| match keep(&f) {
        true => std::fs::rename(&tmp, file),
        false => Err(std::io::Error::other("the policy changed within the file clock's current tick")),
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user layer in a temporary HOME, and where its cache goes.
    struct World {
        _dir: tempfile::TempDir,
        locations: Locations,
        state: PathBuf,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let locations = Locations {
            system: dir.path().join("system/rules.toml"),
            user: dir.path().join("rules.toml"),
            project: None,
            trust: dir.path().join("trusted"),
        };
        let state = dir.path().join("state");
        World { _dir: dir, locations, state }
    }

    /// A policy whose only difference between versions is one digit of the approval timeout,
    /// so that every version has the same size.
    fn policy(timeout: u64) -> String {
        format!("[settings]\npacks = []\napproval_timeout = {timeout}\n[tools.kubectl]\ndefault = \"ask\"\n")
    }

    /// The policy's timeout as a shim call reads it, with the entry's file clock saying `now`.
    fn timeout(w: &World, now: SystemTime) -> u64 {
        let args = [OsString::from("get"), OsString::from("pods")];
        load_with(&w.locations, &w.state, "kubectl", &args, &|_| Ok(now)).expect("policy").approval_timeout
    }

    /// The tick in which the user layer last changed.
    fn changed(w: &World) -> SystemTime {
        let m = std::fs::metadata(&w.locations.user).expect("stat");
        UNIX_EPOCH + Duration::new(m.ctime().unsigned_abs(), u32::try_from(m.ctime_nsec()).expect("nanoseconds"))
    }

    fn entries(w: &World) -> usize {
        std::fs::read_dir(w.state.join("cache")).map_or(0, |d| d.flatten().count())
    }

    /// Rewrites the user layer in place and puts its modification time back, as an edit within
    /// one tick of a coarse clock would leave it. Only the change time (which no call can set)
    /// still differs, and the cache must not need even that while the edit is recent.
    fn rewrite_keeping_mtime(w: &World, text: &str) {
        let before = std::fs::metadata(&w.locations.user).expect("stat");
        std::fs::write(&w.locations.user, text).expect("write");
        let f = std::fs::File::options().write(true).open(&w.locations.user).expect("open");
        f.set_modified(before.modified().expect("mtime")).expect("utimensat");
    }

    #[test]
    fn an_edit_within_one_clock_tick_is_not_missed() {
        let w = world();
        std::fs::write(&w.locations.user, policy(100)).expect("write");
        // The entry is written in the tick the policy changed in: compiled, and not kept,
        // because a second edit in the same tick could leave the same stamp.
        let now = changed(&w);
        assert_eq!(timeout(&w, now), 100);
        assert_eq!(entries(&w), 0, "an entry was kept for a policy changed in its own tick");
        rewrite_keeping_mtime(&w, &policy(200));
        assert_eq!(timeout(&w, now), 200, "the edit was missed");
        // The same holds with the change time forced equal: the unsettled policy was never cached.
        assert_eq!(timeout(&w, now), 200);
    }

    #[test]
    fn a_settled_policy_is_read_from_its_entry_and_every_edit_is_seen() {
        let w = world();
        std::fs::write(&w.locations.user, policy(100)).expect("write");
        let later = changed(&w) + Duration::from_millis(10);
        assert_eq!(timeout(&w, later), 100);
        assert_eq!(entries(&w), 1, "a settled policy is kept");
        // The entry is what a hit reads: a forged one (ours, not writable by others) is used.
        let cached = Cached::new(&w.locations, &w.state).expect("cache in use");
        let mut forged = crate::rules::compile(&config::read_sources(&w.locations).expect("read")).expect("compile");
        forged.approval_timeout = 7;
        write(&cached.dir, &cached.key, &cached.entry("kubectl"), &forged, "kubectl", |_| true).expect("write entry");
        assert_eq!(timeout(&w, later), 7, "a hit did not read the entry");
        // An edit moves the change time, so the key no longer names that entry.
        rewrite_keeping_mtime(&w, &policy(300));
        assert_eq!(timeout(&w, changed(&w) + Duration::from_millis(10)), 300);
    }

    #[test]
    fn a_system_policy_is_never_cached() {
        let w = world();
        std::fs::write(&w.locations.user, policy(100)).expect("write");
        std::fs::create_dir_all(w.locations.system.parent().expect("parent")).expect("mkdir");
        std::fs::write(&w.locations.system, "").expect("write");
        assert!(Cached::new(&w.locations, &w.state).is_none());
    }
}
