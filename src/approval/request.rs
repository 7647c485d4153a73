//! What a human is asked to approve: the exact command, where and why it runs, who asked, and the
//! digests that bind them.
//!
//! Pure: built from values, hashed from values. Two digests: `command_digest` identifies the
//! command itself (uid, tool, exact argv bytes, cwd, real binary and its SHA-256), so that an
//! identical re-run can find an approval; `digest` binds the whole request (id, command, rule,
//! reason, grants, requester, times), and is what a signature covers.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One process in the requester's ancestry. `start` (clock ticks after boot) tells a process
/// from a later one that reused its pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
    pub sid: i32,
    /// Its controlling terminal, if it has one.
    pub tty: Option<String>,
    pub comm: String,
}

/// Who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub uid: u32,
    pub pid: i32,
    pub sid: i32,
    /// The controlling terminal, e.g. `/dev/pts/3`.
    pub tty: Option<String>,
    /// `GUARDSH_SESSION`, when the agent was started by `guardsh run`.
    pub session: Option<String>,
    /// The requesting process first, then its parent, up to pid 1.
    pub ancestry: Vec<Proc>,
}

/// A command waiting for (or given) a human decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    pub id: String,
    pub tool: String,
    /// The exact argv (argv[0] first), each word hex-encoded: any bytes survive the round trip.
    pub argv_hex: Vec<String>,
    /// The same words for reading (lossy where a word is not UTF-8).
    pub argv: Vec<String>,
    pub cwd_hex: String,
    pub cwd: String,
    pub rule: Option<String>,
    pub reason: String,
    /// Credential variables the command will receive if approved.
    pub grants: Vec<String>,
    /// The environment that decides what the command acts on (see `Command::env`).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    pub real: String,
    pub real_sha256: String,
    pub requester: Requester,
    /// Seconds since the epoch.
    pub created: u64,
    pub expires: u64,
    pub command_digest: String,
    pub digest: String,
}

/// The command being approved, as raw bytes.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    pub uid: u32,
    pub tool: &'a str,
    pub argv: &'a [&'a [u8]],
    pub cwd: &'a [u8],
    pub real: &'a [u8],
    pub real_sha256: &'a str,
    /// Variables that choose what the command acts on (`KUBECONFIG=...`), and each granted
    /// credential as `sha256:` of its value: re-running an approved command pointed at another
    /// cluster, or with another token, is another command.
    pub env: &'a [(String, String)],
}

/// The rest of a request.
#[derive(Debug, Clone)]
pub struct Context {
    pub id: String,
    pub rule: Option<String>,
    pub reason: String,
    pub grants: Vec<String>,
    pub requester: Requester,
    pub created: u64,
    pub expires: u64,
}

pub const VERSION: u32 = 1;

/// Length-prefixed fields, so that no two different field lists hash alike.
#[derive(Default)]
struct Canonical(Sha256);

impl Canonical {
    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update(u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes());
        self.0.update(bytes);
        self
    }

    fn number(&mut self, n: u64) -> &mut Self {
        self.field(&n.to_be_bytes())
    }

    fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]).map(char::from).collect()
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

impl Command<'_> {
    /// Identifies the command, independent of who asked or when.
    pub fn digest(&self) -> String {
        let mut c = Canonical::default();
        c.field(b"guardsh-command-v1").number(u64::from(self.uid)).field(self.tool.as_bytes());
        c.number(self.argv.len() as u64);
        for word in self.argv {
            c.field(word);
        }
        c.field(self.cwd).field(self.real).field(self.real_sha256.as_bytes());
        c.number(self.env.len() as u64);
        for (name, value) in self.env {
            c.field(name.as_bytes()).field(value.as_bytes());
        }
        c.finish()
    }
}

impl Request {
    /// Builds a request and its digests.
    pub fn new(cmd: Command<'_>, ctx: Context) -> Self {
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut r = Request {
            version: VERSION,
            id: ctx.id,
            tool: cmd.tool.to_string(),
            argv_hex: cmd.argv.iter().map(|w| hex(w)).collect(),
            argv: cmd.argv.iter().map(|w| lossy(w)).collect(),
            cwd_hex: hex(cmd.cwd),
            cwd: lossy(cmd.cwd),
            rule: ctx.rule,
            reason: ctx.reason,
            grants: ctx.grants,
            env: cmd.env.to_vec(),
            real: lossy(cmd.real),
            real_sha256: cmd.real_sha256.to_string(),
            requester: ctx.requester,
            created: ctx.created,
            expires: ctx.expires,
            command_digest: cmd.digest(),
            digest: String::new(),
        };
        r.digest = r.compute_digest();
        r
    }

    /// Is the bound variable `name` a credential the command receives (so its bound value is a
    /// hash of the secret, not the secret)? Decided by the variable's name, from the request's
    /// grants, never by what its value looks like: `KUBECONFIG=sha256:/prod` is a path list
    /// that must be shown as it is.
    pub fn is_credential(&self, name: &str) -> bool {
        self.grants.iter().any(|g| g == name)
    }

    /// The bound environment as a human must read it before approving: every variable with its
    /// real value, shell-quoted (control and bidi characters escaped), a credential as
    /// `NAME=<credential, sha256 PREFIX>`, and entries that are not variables (piped input, file
    /// snapshots) by what they are.
    pub fn shown_environment(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|(k, v)| {
                if let Some(what) = k.strip_prefix('(').and_then(|k| k.strip_suffix(')')) {
                    return format!("[{}: {}]", crate::display::escape_text(what), crate::display::escape_text(v));
                }
                let name = crate::display::escape_text(k);
                if self.is_credential(k) {
                    let hash = v.strip_prefix("sha256:").unwrap_or(v);
                    format!("{name}=<credential, sha256 {}>", crate::display::escape_text(short(hash)))
                } else {
                    format!("{name}={}", crate::display::shell_quote(std::ffi::OsStr::new(v)))
                }
            })
            .collect()
    }

    /// The exact argv bytes.
    pub fn argv_bytes(&self) -> Option<Vec<Vec<u8>>> {
        self.argv_hex.iter().map(|w| unhex(w)).collect()
    }

    /// Recomputes both digests from the fields; a stored request whose digests do not match was
    /// altered (or is corrupt) and must never be treated as approvable.
    pub fn is_intact(&self) -> bool {
        let (Some(argv), Some(cwd)) = (self.argv_bytes(), unhex(&self.cwd_hex)) else { return false };
        let words: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let cmd = Command {
            uid: self.requester.uid,
            tool: &self.tool,
            argv: &words,
            cwd: &cwd,
            real: self.real.as_bytes(),
            real_sha256: &self.real_sha256,
            env: &self.env,
        };
        self.version == VERSION && cmd.digest() == self.command_digest && self.compute_digest() == self.digest
    }

    fn compute_digest(&self) -> String {
        let mut c = Canonical::default();
        c.field(b"guardsh-request-v1").field(self.id.as_bytes()).field(self.command_digest.as_bytes());
        c.field(self.rule.as_deref().unwrap_or("").as_bytes()).field(self.reason.as_bytes());
        c.number(self.grants.len() as u64);
        for g in &self.grants {
            c.field(g.as_bytes());
        }
        let r = &self.requester;
        c.number(u64::from(r.uid)).number(r.pid as u64).number(r.sid as u64);
        c.field(r.tty.as_deref().unwrap_or("").as_bytes()).field(r.session.as_deref().unwrap_or("").as_bytes());
        c.number(r.ancestry.len() as u64);
        for p in &r.ancestry {
            c.number(p.pid as u64).number(p.start).number(p.sid as u64);
            c.field(p.tty.as_deref().unwrap_or("").as_bytes()).field(p.comm.as_bytes());
        }
        c.number(self.created).number(self.expires);
        c.finish()
    }

    /// What differs between the command this request is for and `cmd`, in words, for a user who
    /// needs to know why an approval does not apply.
    pub fn differences(&self, cmd: &Command<'_>) -> Vec<String> {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let quote = |words: &[&[u8]]| crate::display::shell_join(words.iter().map(|w| OsStr::from_bytes(w)));
        let mut out = Vec::new();
        if let Some(argv) = self.argv_bytes() {
            let mine: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            if mine != cmd.argv {
                out.push(format!("it is for `{}`, and this is `{}`", quote(&mine), quote(cmd.argv)));
            }
        }
        if unhex(&self.cwd_hex).as_deref() != Some(cmd.cwd) {
            out.push(format!("it was made in {}, and this runs in {}", self.cwd, String::from_utf8_lossy(cmd.cwd)));
        }
        if self.real.as_bytes() != cmd.real || self.real_sha256 != cmd.real_sha256 {
            out.push(format!(
                "it is for {} (sha256 {}), and this runs {} (sha256 {})",
                self.real,
                short(&self.real_sha256),
                String::from_utf8_lossy(cmd.real),
                short(cmd.real_sha256)
            ));
        }
        let shown = |name: &str, v: Option<&String>| match v {
            None => "unset".to_string(),
            Some(_) if self.is_credential(name) => "a credential".to_string(),
            Some(v) => crate::display::shell_quote(std::ffi::OsStr::new(v)),
        };
        let mut names: Vec<&String> = self.env.iter().map(|(k, _)| k).chain(cmd.env.iter().map(|(k, _)| k)).collect();
        names.sort();
        names.dedup();
        for name in names {
            let (theirs, mine) = (self.env.iter().find(|(k, _)| k == name), cmd.env.iter().find(|(k, _)| k == name));
            if theirs.map(|(_, v)| v) != mine.map(|(_, v)| v) {
                out.push(format!(
                    "it was made with {name} {}, and this has {}",
                    shown(name, theirs.map(|(_, v)| v)),
                    shown(name, mine.map(|(_, v)| v))
                ));
            }
        }
        if self.requester.uid != cmd.uid {
            out.push(format!("it is for uid {}, and this runs as uid {}", self.requester.uid, cmd.uid));
        }
        out
    }

    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(argv: &[&[u8]], cwd: &[u8]) -> Request {
        let cmd =
            Command { uid: 1000, tool: "kubectl", argv, cwd, real: b"/usr/bin/kubectl", real_sha256: "ab", env: &[] };
        let requester = Requester { uid: 1000, pid: 42, sid: 40, tty: None, session: None, ancestry: vec![] };
        let ctx = Context {
            id: "abc".into(),
            rule: Some("r".into()),
            reason: "why".into(),
            grants: vec![],
            requester,
            created: 10,
            expires: 20,
        };
        Request::new(cmd, ctx)
    }

    #[test]
    fn digests_bind_every_byte_of_the_command() {
        let base = request(&[b"kubectl", b"delete", b"pod", b"x"], b"/repo");
        let variants = [
            request(&[b"kubectl", b"delete", b"pod", b"y"], b"/repo"),
            request(&[b"kubectl", b"delete", b"pod x"], b"/repo"),
            request(&[b"kubectl", b"delete", b"pod", b"x", b""], b"/repo"),
            request(&[b"kubectl", b"delete", b"pod", b"x"], b"/other"),
            request(&[b"kubectl", b"delete", b"pod", b"\xff"], b"/repo"),
        ];
        for v in &variants {
            assert_ne!(v.command_digest, base.command_digest, "{:?}", v.argv);
            assert_ne!(v.digest, base.digest);
        }
        assert_eq!(request(&[b"kubectl", b"delete", b"pod", b"x"], b"/repo").command_digest, base.command_digest);
        let env = [("KUBECONFIG".to_string(), "/prod".to_string())];
        let pointed_elsewhere = Command {
            uid: 1000,
            tool: "kubectl",
            argv: &[b"kubectl", b"delete", b"pod", b"x"],
            cwd: b"/repo",
            real: b"/usr/bin/kubectl",
            real_sha256: "ab",
            env: &env,
        };
        assert_ne!(pointed_elsewhere.digest(), base.command_digest, "the environment is part of the command");
    }

    #[test]
    fn a_request_survives_json_and_any_edit_is_detected() {
        let r = request(&[b"kubectl", b"delete", b"\xff\x00"], b"/r");
        let back: Request = serde_json::from_str(&serde_json::to_string(&r).expect("ser")).expect("de");
        assert!(back.is_intact());
        assert_eq!(back.argv_bytes().expect("hex")[2], b"\xff\x00");
        let mut edited = back.clone();
        edited.argv_hex[1] = hex(b"get");
        assert!(!edited.is_intact(), "argv edit");
        let mut edited = back.clone();
        edited.expires += 100;
        assert!(!edited.is_intact(), "expiry edit");
        let mut edited = back;
        edited.grants.push("AWS_SECRET_ACCESS_KEY".into());
        assert!(!edited.is_intact(), "grant edit");
    }

    #[test]
    fn every_bound_value_is_shown_and_credentials_are_known_by_name() {
        let mut r = request(&[b"kubectl", b"delete", b"pod", b"x"], b"/r");
        r.grants = vec!["KUBE_TOKEN".into()];
        r.env = vec![
            ("KUBECONFIG".into(), "sha256:/prod/kubeconfig".into()),
            ("HOME".into(), "/home/u\x1b]0;x".into()),
            ("KUBE_TOKEN".into(), "sha256:0123456789abcdef0123".into()),
            ("(stdin)".into(), "sha256:feed".into()),
        ];
        let shown = r.shown_environment();
        assert_eq!(shown[0], "KUBECONFIG=sha256:/prod/kubeconfig");
        assert!(!shown[1].contains('\u{1b}'), "escaped: {:?}", shown[1]);
        assert_eq!(shown[2], "KUBE_TOKEN=<credential, sha256 0123456789ab>");
        assert_eq!(shown[3], "[stdin: sha256:feed]");
    }
}
