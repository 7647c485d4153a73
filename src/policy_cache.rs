//! Loads the policy for one tool through a cache of compiled policies, so that a shim call does
//! not compile every tool's rules.
//!
//! Compiling the whole policy is most of a shim call's cost (BENCHMARKS.md). On a miss the
//! policy is compiled in full (every rule of every layer checked, as without a cache), and the
//! part the invoked tool needs (the settings, the merged credential list and that tool's rules)
//! is written as its rules are compiled, while the call keeps only what a hit on that entry
//! would read back (`compile_for`): a miss decides from what a hit would. The entry's name is
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
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::approval::request::hex;
use crate::config::{self, Locations, Stamp};
use crate::matching::index;
use crate::rules::{ConfigError, Policy, Rule, RuleSink, ToolPolicy};
use crate::tools::ToolSpec;
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
/// only `tool`, with at least every rule that could match `args` (the rules of the index
/// buckets a lookup for `args` reads: on a hit, on a miss, and with a system policy present, when
/// there is no cache, alike).
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
        return compile_for(locations, tool, args, false).map(|(policy, _)| policy);
    };
    let file = cached.entry(tool);
    if let Some(policy) = read(&file, tool, args) {
        return Ok(policy);
    }
    crate::arena::stop();
    let (policy, chunks) = compile_for(locations, tool, args, true)?;
    // Best effort: a cache that cannot be written only costs the next call a compile.
    if let Some(chunks) = chunks {
        let keep = |t: &File| cached.may_keep(locations, clock, t);
        let _ = write(&cached.dir, &cached.key, &file, &policy, tool, &chunks, keep);
    }
    Ok(policy)
}

/// Compiles the policy for one call of `tool` on a miss: the policy a hit on the entry written
/// from it would give (every setting; of the tools only `tool`, with the rules a lookup for
/// `args` reads), and, to write that entry (`lay_out`), `tool`'s chunks (`None` when one could
/// not be encoded). Each rule is placed in its chunks as it is compiled and then dropped unless
/// this call needs it, so that a compiling call never holds the whole policy's rules
/// (`rules::compile_each`).
fn compile_for(
    locations: &Locations,
    tool: &str,
    args: &[OsString],
    lay_out: bool,
) -> Result<(Policy, Option<Chunks>), ConfigError> {
    let mut miss = Miss { tool, args, lay_out, buckets: 0, wanted: Vec::new(), kept: Vec::new(), chunks: None };
    let policy = crate::rules::compile_each(&config::read_sources(locations)?, crate::rules::PACKS, &mut miss)?;
    let mut part = settings_only(&policy);
    if let Some(t) = policy.tools.get(tool) {
        part.tools.insert(tool.to_string(), ToolPolicy { rules: miss.kept, ..t.clone_without_rules() });
    }
    let chunks = match miss.chunks {
        // No rules: the entry has the empty chunks of a tool without any.
        None => lay_out.then(|| Chunks::new(0)),
        Some(chunks) => chunks.ok(),
    };
    Ok((part, chunks))
}

/// A compiling call's sink (`compile_for`).
struct Miss<'a> {
    tool: &'a str,
    args: &'a [OsString],
    lay_out: bool,
    /// How many buckets `tool`'s rules are in (known at its first rule).
    buckets: usize,
    /// The buckets a lookup for `args` reads.
    wanted: Vec<usize>,
    /// The rules of `tool` this call needs.
    kept: Vec<Rule>,
    /// `tool`'s chunks so far, when laid out; `Err` once a rule could not be encoded.
    chunks: Option<postcard::Result<Chunks>>,
}

impl RuleSink for Miss<'_> {
    fn rule(&mut self, tool: &str, spec: &ToolSpec, rules_of_tool: usize, rule: Rule) {
        if tool != self.tool {
            return;
        }
        if self.buckets == 0 {
            self.buckets = index::buckets_for(rules_of_tool);
            self.wanted = index::lookup(&crate::matching::normalize(self.args, spec), self.buckets);
            self.chunks = self.lay_out.then(|| Ok(Chunks::new(rules_of_tool)));
        }
        let placed = index::place(&rule, self.buckets);
        if let Some(Ok(chunks)) = &mut self.chunks
            && let Err(e) = chunks.add(&rule, placed.as_deref())
        {
            self.chunks = Some(Err(e));
        }
        let everywhere = placed.as_ref().is_none_or(Vec::is_empty);
        if everywhere || placed.is_some_and(|buckets| buckets.iter().any(|b| self.wanted.binary_search(b).is_ok())) {
            self.kept.push(rule);
        }
    }

    fn forget(&mut self) {
        self.buckets = 0;
        self.kept.clear();
        self.chunks = None;
    }
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
        for (tool, t) in &policy.tools {
            // Best effort, as on a miss: a shim that finds no entry compiles.
            let Ok(chunks) = Chunks::of(&t.rules) else { continue };
            let keep = |f: &File| cached.may_keep(locations, &written_at, f);
            let _ = write(&cached.dir, &cached.key, &cached.entry(tool), &policy, tool, &chunks, keep);
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

/// A tool's rules laid out as an entry's chunks (see `Header`), one rule at a time: each chunk
/// is a postcard list of `(rule number, rule)`, kept as its length and its elements' bytes
/// until it is written.
struct Chunks {
    always: Chunk,
    buckets: Vec<Chunk>,
    /// The number the next rule gets.
    next: usize,
}

#[derive(Clone, Default)]
struct Chunk {
    len: usize,
    elements: Vec<u8>,
}

impl Chunk {
    /// The chunk as postcard encodes a list: its length (a varint), then its elements.
    fn prefix(&self) -> postcard::Result<Vec<u8>> {
        postcard::to_stdvec(&self.len)
    }
}

impl Chunks {
    /// The chunks of a tool with `rules` rules.
    fn new(rules: usize) -> Self {
        Self { always: Chunk::default(), buckets: vec![Chunk::default(); index::buckets_for(rules)], next: 0 }
    }

    /// The chunks of a list of rules.
    fn of(rules: &[Rule]) -> postcard::Result<Self> {
        let mut chunks = Self::new(rules.len());
        for rule in rules {
            chunks.add(rule, index::place(rule, chunks.buckets.len()).as_deref())?;
        }
        Ok(chunks)
    }

    /// Adds the next rule to the buckets `index::place` put it in (`None`: the chunk every
    /// lookup reads).
    fn add(&mut self, rule: &Rule, placed: Option<&[usize]>) -> postcard::Result<()> {
        let number = self.next;
        self.next += 1;
        let (first, more) = match placed {
            // `index::place` gives no empty list; one would be read by every lookup too.
            None | Some([]) => (&mut self.always, &[][..]),
            Some([b, more @ ..]) => (self.buckets.get_mut(*b).ok_or(postcard::Error::SerializeBufferFull)?, more),
        };
        // Encoded once, in place, at the end of the first chunk; a `{a,b}` rule's other bucket
        // gets a copy of those bytes.
        let start = first.elements.len();
        first.elements = postcard::to_extend(&(number, rule), std::mem::take(&mut first.elements))?;
        first.len += 1;
        if !more.is_empty() {
            let element = first.elements[start..].to_vec();
            for &b in more {
                let chunk = self.buckets.get_mut(b).ok_or(postcard::Error::SerializeBufferFull)?;
                chunk.len += 1;
                chunk.elements.extend_from_slice(&element);
            }
        }
        Ok(())
    }

    /// Every chunk in the order they are written: the one every lookup reads, then the buckets.
    fn in_order(&self) -> impl Iterator<Item = &Chunk> {
        std::iter::once(&self.always).chain(&self.buckets)
    }
}

/// Writes `tool`'s entry of `policy`, with `chunks` as its rules: magic, header length, header,
/// chunks. Nothing is assembled in memory first (with 10,000 rules that was a second megabyte).
fn encode(out: &mut impl Write, policy: &Policy, tool: &str, chunks: &Chunks) -> std::io::Result<()> {
    let mut ranges = Vec::with_capacity(chunks.buckets.len() + 1);
    let mut offset = 0u64;
    for chunk in chunks.in_order() {
        let len = (chunk.prefix().map_err(std::io::Error::other)?.len() + chunk.elements.len()) as u64;
        ranges.push((offset, len));
        offset += len;
    }
    let mut part = settings_only(policy);
    if let Some(t) = policy.tools.get(tool) {
        part.tools.insert(tool.to_string(), t.clone_without_rules());
    }
    let always = ranges.first().copied().unwrap_or_default();
    let buckets = ranges.get(1..).unwrap_or_default().to_vec();
    let header = postcard::to_stdvec(&Header { policy: part, always, buckets }).map_err(std::io::Error::other)?;
    let len = u32::try_from(header.len()).map_err(std::io::Error::other)?;
    out.write_all(MAGIC)?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(&header)?;
    for chunk in chunks.in_order() {
        out.write_all(&chunk.prefix().map_err(std::io::Error::other)?)?;
        out.write_all(&chunk.elements)?;
    }
    Ok(())
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
    chunks: &Chunks,
    keep: impl Fn(&File) -> bool,
) -> std::io::Result<()> {
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
    let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let mut out = BufWriter::with_capacity(64 << 10, f);
    let written = encode(&mut out, policy, tool, chunks).and_then(|()| out.into_inner().map_err(|e| e.into_error()));
    let renamed = written.and_then(|f| match keep(&f) {
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
        let chunks = Chunks::new(0);
        write(&cached.dir, &cached.key, &cached.entry("kubectl"), &forged, "kubectl", &chunks, |_| true)
            .expect("write entry");
        assert_eq!(timeout(&w, later), 7, "a hit did not read the entry");
        // An edit moves the change time, so the key no longer names that entry.
        rewrite_keeping_mtime(&w, &policy(300));
        assert_eq!(timeout(&w, changed(&w) + Duration::from_millis(10)), 300);
    }

    /// A compiling call decides from exactly the policy a hit on the entry it wrote reads back:
    /// the same settings and, of the many rules (in buckets, in two buckets, in the chunk every
    /// lookup reads), the same ones in the same order, for command lines of every kind.
    #[test]
    fn a_miss_decides_from_what_a_hit_reads() {
        let w = world();
        let mut text = String::from("[settings]\napproval_timeout = 60\n");
        let firsts = ["get", "{delete,rm}", "apply", "*", "d*", "[gs]et", "Logs"];
        for i in 0..400 {
            let first = firsts.get(i % 9).map_or_else(|| format!("verb-{i}"), |f| f.to_string());
            text.push_str(&format!(
                "[[rule]]\nid = \"r{i}\"\ntool = \"kubectl\"\naction = \"ask\"\nreason = \"r\"\nargs = [\"{first}\", \"*\"]\n"
            ));
        }
        text.push_str("[[rule]]\nid = \"no-args\"\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"r\"\n");
        std::fs::write(&w.locations.user, text).expect("write");
        let later = changed(&w) + Duration::from_millis(10);
        let lines: &[&[&str]] =
            &[&["get", "pods"], &["RM", "x"], &["verb-37"], &["-n", "prod", "delete", "ns"], &[], &["logs"], &["état"]];
        let mut needed = 0;
        for line in lines {
            let args: Vec<OsString> = line.iter().map(Into::into).collect();
            let _ = std::fs::remove_dir_all(w.state.join("cache"));
            let missed = load_with(&w.locations, &w.state, "kubectl", &args, &|_| Ok(later)).expect("miss");
            assert_eq!(entries(&w), 1, "the miss wrote no entry");
            let hit = load_with(&w.locations, &w.state, "kubectl", &args, &|_| Ok(later)).expect("hit");
            assert_eq!(format!("{missed:?}"), format!("{hit:?}"), "{line:?}");
            let rules = &missed.tools["kubectl"].rules;
            assert!(rules.len() < 200, "{line:?}: {} rules read back", rules.len());
            needed += rules.len();
            // Every rule that matches the command line is there.
            let whole = crate::rules::compile(&config::read_sources(&w.locations).expect("read")).expect("compile");
            let all = &whole.tools["kubectl"];
            let argv = crate::matching::normalize(&args, &all.spec);
            let want: Vec<&str> =
                crate::matching::hits(&all.rules, &argv).into_iter().map(|i| all.rules[i].id.as_str()).collect();
            let got: Vec<&str> =
                crate::matching::hits(rules, &argv).into_iter().map(|i| rules[i].id.as_str()).collect();
            assert_eq!(got, want, "{line:?}");
        }
        assert!(needed > lines.len(), "no rules were read back at all");

        // With a system policy the cache is not used, and each call compiles, keeping the same
        // rules a hit would read: every rule that matches is still there.
        std::fs::create_dir_all(w.locations.system.parent().expect("parent")).expect("mkdir");
        std::fs::write(&w.locations.system, "").expect("write");
        let _ = std::fs::remove_dir_all(w.state.join("cache"));
        let whole = crate::rules::compile(&config::read_sources(&w.locations).expect("read")).expect("compile");
        let all = &whole.tools["kubectl"];
        for line in lines {
            let args: Vec<OsString> = line.iter().map(Into::into).collect();
            let policy = load_with(&w.locations, &w.state, "kubectl", &args, &|_| Ok(later)).expect("compile");
            assert_eq!(entries(&w), 0, "an entry was written under a system policy");
            let rules = &policy.tools["kubectl"].rules;
            assert!(rules.len() < 200, "{line:?}: {} rules kept", rules.len());
            let argv = crate::matching::normalize(&args, &all.spec);
            let ids = |rules: &[Rule]| -> Vec<String> {
                crate::matching::hits(rules, &argv).into_iter().map(|i| rules[i].id.clone()).collect()
            };
            assert_eq!(ids(rules), ids(&all.rules), "{line:?}");
        }
    }

    /// A chunk built one rule at a time is what postcard makes of the whole list.
    #[test]
    fn chunks_are_postcard_lists() {
        let policy = crate::rules::compile(&[crate::rules::Source {
            layer: crate::rules::LayerKind::User,
            path: "user.toml".into(),
            text: String::new(),
        }])
        .expect("the shipped pack compiles");
        for t in policy.tools.values() {
            let chunks = Chunks::of(&t.rules).expect("encode");
            let mut members: Vec<Vec<(usize, &Rule)>> = vec![Vec::new(); chunks.buckets.len() + 1];
            for (i, rule) in t.rules.iter().enumerate() {
                match index::place(rule, chunks.buckets.len()) {
                    None => members[0].push((i, rule)),
                    Some(buckets) => buckets.into_iter().for_each(|b| members[b + 1].push((i, rule))),
                }
            }
            for (chunk, list) in chunks.in_order().zip(&members) {
                let mut bytes = chunk.prefix().expect("prefix");
                bytes.extend_from_slice(&chunk.elements);
                assert_eq!(bytes, postcard::to_stdvec(list).expect("encode"));
            }
        }
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
