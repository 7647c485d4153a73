//! The append-only, hash-chained audit log: one JSON line per guarded invocation, written before
//! anything runs, so a record that cannot be written stops the command.
//!
//! Each line ends in `"hash":"H"}` where H is the SHA-256 of the line without that field (the
//! body), and every body carries `prev`, the hash of the line before it, and `seq`. An edit,
//! deletion or reordering anywhere breaks the chain at that point. Removing whole records from the
//! end cannot be seen from the file alone; `verify` prints the head hash so it can be kept
//! elsewhere.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HASH_FIELD: &str = ",\"hash\":\"";

/// What happened to one guarded invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub time: String,
    pub tool: String,
    pub argv: Vec<Value>,
    pub cwd: Value,
    pub pid: u32,
    pub ppid: u32,
    pub session: Option<String>,
    pub rules: Vec<String>,
    /// `allow`, `ask`, `deny`, or `error` when no decision could be made.
    pub decision: String,
    pub mode: String,
    pub reason: String,
    pub stripped: Vec<String>,
    pub passed: Vec<String>,
    /// `exec`, `denied`, `not_found`, `config_error`, `recursion`, `exec_failed`, and for
    /// approvals `requested`, `approved`, `denied_by_human`, `expired`, `withdrawn`, `refused`.
    pub outcome: String,
    pub real: Option<String>,
    /// The approval request this record is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Who decided it (uid, terminal, key fingerprint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<Value>,
    /// The argv the real tool got, when it differs from `argv`: input files replaced by the
    /// sealed copies guardsh decided on (`/dev/fd/N`; see `snapshot`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec_argv: Option<Vec<Value>>,
    /// The credential minted for the tool (`crate::mint`): its role, lease or session name,
    /// never its secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minted: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    prev: &'a str,
    #[serde(flatten)]
    record: &'a Record,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot write the audit log {path}: {source}; nothing was run (fix the state directory, then retry)")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read the audit log {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

fn sha256_hex(bytes: &[u8]) -> String {
    crate::approval::request::hex(&Sha256::digest(bytes))
}

/// Splits a line into its body (the hash field removed) and the stated hash.
fn split_line(line: &str) -> Option<(String, &str)> {
    let at = line.rfind(HASH_FIELD)?;
    let hash = line[at + HASH_FIELD.len()..].strip_suffix("\"}")?;
    (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| (format!("{}}}", &line[..at]), hash))
}

/// Creates the state directory private to the user (0700).
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Appends one record. Holds an exclusive lock on the file from reading the chain head to
/// finishing the write: without it, two shims starting together would both read the same head
/// and write records that claim the same predecessor.
pub fn append(path: &Path, record: &Record) -> Result<(), AuditError> {
    let err = |source| AuditError::Write { path: path.to_path_buf(), source };
    let open = || {
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            // A symlink here would let someone redirect our appends to a file of their choosing.
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
    };
    // The directory is created only when it is missing, not checked on every call: creating
    // an existing one is a failing system call on every guarded command.
    let mut file = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                ensure_dir(dir).map_err(err)?;
            }
            open()
        }
        other => other,
    }
    .map_err(err)?;
    file.lock().map_err(err)?;
    let (seq, prev, ends_mid_line) = head(&mut file).map_err(err)?;
    let body =
        serde_json::to_string(&Body { seq: seq + 1, prev: &prev, record }).map_err(|e| err(io::Error::other(e)))?;
    let hash = sha256_hex(body.as_bytes());
    // After a crash mid-write the file can end inside a line; start ours on a line of its own so
    // the damage stays confined to that one line.
    let mut line = if ends_mid_line { String::from("\n") } else { String::new() };
    line.push_str(&body);
    line.truncate(line.len() - 1); // the closing brace, put back after the hash
    line.push_str(HASH_FIELD);
    line.push_str(&hash);
    line.push_str("\"}\n");
    // One write of the whole line: O_APPEND places it at the end atomically with respect to other
    // appenders, and the lock keeps the chain in order.
    file.write_all(line.as_bytes()).map_err(err)?;
    Ok(())
}

/// The last record's `seq` and hash, read from the end of the file, and whether the file ends
/// without a newline.
fn head(file: &mut File) -> io::Result<(u64, String, bool)> {
    let len = file.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Ok((0, GENESIS.to_string(), false));
    }
    let mut window: u64 = 8192;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
        file.read_to_end(&mut buf)?;
        let ends_mid_line = !buf.ends_with(b"\n");
        let trimmed = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line_start = trimmed.iter().rposition(|&b| b == b'\n').map(|i| i + 1);
        if line_start.is_some() || start == 0 {
            let last = &trimmed[line_start.unwrap_or(0)..];
            let text = String::from_utf8_lossy(last);
            // A damaged last line still chains: the next record names the damage's hash, and
            // `verify` reports the damaged line itself.
            return Ok(match split_line(&text) {
                Some((body, hash)) => (seq_of(&body), hash.to_string(), ends_mid_line),
                None => (0, sha256_hex(last), ends_mid_line),
            });
        }
        window *= 4;
    }
}

/// A record's `seq`. Records start with it, as `append` writes them, so it is read from there
/// without parsing the line; anything else is parsed as JSON.
fn seq_of(body: &str) -> u64 {
    let digits = body.strip_prefix("{\"seq\":").map(|rest| rest.split(',').next().unwrap_or(""));
    match digits.filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).map(str::parse) {
        Some(Ok(seq)) => seq,
        _ => serde_json::from_str::<Value>(body).ok().and_then(|v| v["seq"].as_u64()).unwrap_or(0),
    }
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// False when there is no log file at all.
    pub exists: bool,
    pub records: u64,
    pub head: String,
    /// `(line number, problem)` for every break found.
    pub problems: Vec<(usize, String)>,
}

/// Checks every line's hash, sequence number and link to its predecessor.
pub fn verify(path: &Path) -> Result<Verification, AuditError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Verification { exists: false, records: 0, head: GENESIS.into(), problems: vec![] });
        }
        Err(source) => return Err(AuditError::Read { path: path.to_path_buf(), source }),
    };
    let mut out = Verification { exists: true, records: 0, head: GENESIS.into(), problems: vec![] };
    // After a damaged line the next sequence number cannot be known; accept whatever follows.
    let mut expect_seq = Some(1);
    let raw_lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    for (i, raw) in raw_lines.iter().copied().enumerate() {
        let n = i + 1;
        if raw.is_empty() {
            // The only empty piece allowed is the one after the final newline.
            if n < raw_lines.len() {
                out.problems.push((n, "empty line".into()));
            }
            continue;
        }
        out.records += 1;
        let line = String::from_utf8_lossy(raw);
        let Some((body, hash)) = split_line(&line) else {
            out.problems.push((n, "damaged: not a complete guardsh audit record".into()));
            out.head = sha256_hex(raw);
            expect_seq = None;
            continue;
        };
        let parsed = serde_json::from_str::<Value>(&body);
        let Ok(v) = parsed else {
            out.problems.push((n, "damaged: not a complete guardsh audit record".into()));
            out.head = hash.to_string();
            expect_seq = None;
            continue;
        };
        if sha256_hex(body.as_bytes()) != hash {
            out.problems.push((n, "record was modified after it was written (hash mismatch)".into()));
        }
        let seq = v["seq"].as_u64().unwrap_or(0);
        if v["prev"].as_str() != Some(out.head.as_str()) {
            out.problems.push((
                n,
                format!("does not follow the record before it (seq {seq}): a record was removed, inserted or moved"),
            ));
        }
        if let Some(expected) = expect_seq
            && seq != expected
        {
            out.problems.push((n, format!("sequence number {seq}, expected {expected}")));
        }
        expect_seq = Some(seq + 1);
        out.head = hash.to_string();
    }
    Ok(out)
}

/// The last `n` records, parsed (lines that do not parse are returned as `Value::String`).
pub fn tail(path: &Path, n: usize) -> Result<Vec<Value>, AuditError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(AuditError::Read { path: path.to_path_buf(), source }),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    Ok(lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String((*l).to_string())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tool: &str) -> Record {
        Record {
            time: "t".into(),
            tool: tool.into(),
            argv: vec![Value::String("get".into())],
            cwd: Value::String("/".into()),
            pid: 1,
            ppid: 0,
            session: None,
            rules: vec![],
            decision: "allow".into(),
            mode: "interactive".into(),
            reason: "r".into(),
            stripped: vec![],
            passed: vec![],
            outcome: "exec".into(),
            real: None,
            request: None,
            by: None,
            exec_argv: None,
            minted: None,
        }
    }

    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/audit.jsonl");
        for i in 0..n {
            append(&path, &record(&format!("tool{i}"))).expect("append");
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).expect("read").lines().map(str::to_string).collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).expect("write");
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (_d, path) = log_with(5);
        let v = verify(&path).expect("verify");
        assert_eq!(v.records, 5);
        assert!(v.problems.is_empty(), "{:?}", v.problems);
        let last = lines(&path).pop().expect("a line");
        assert!(last.ends_with(&format!("\"hash\":\"{}\"}}", v.head)));
    }

    #[test]
    fn edits_deletions_and_reorderings_are_found_where_they_are() {
        let (_d, path) = log_with(5);
        let original = lines(&path);

        let mut edited = original.clone();
        edited[2] = edited[2].replace("tool2", "tool9");
        write_lines(&path, &edited);
        assert_eq!(verify(&path).expect("verify").problems[0].0, 3, "edit of line 3");

        let mut deleted = original.clone();
        deleted.remove(1);
        write_lines(&path, &deleted);
        assert_eq!(verify(&path).expect("verify").problems[0].0, 2, "deletion before line 2");

        let mut reordered = original.clone();
        reordered.swap(3, 4);
        write_lines(&path, &reordered);
        assert_eq!(verify(&path).expect("verify").problems[0].0, 4, "swap of lines 4 and 5");

        let mut first_gone = original;
        first_gone.remove(0);
        write_lines(&path, &first_gone);
        assert_eq!(verify(&path).expect("verify").problems[0].0, 1, "first record removed");
    }

    #[test]
    fn appending_after_damage_keeps_the_damage_visible() {
        let (_d, path) = log_with(2);
        let mut l = lines(&path);
        l[1] = "garbage".into();
        write_lines(&path, &l);
        append(&path, &record("after")).expect("append still works");
        let v = verify(&path).expect("verify");
        assert_eq!(v.problems.iter().map(|p| p.0).collect::<Vec<_>>(), [2], "only the damaged line: {:?}", v.problems);
    }

    #[test]
    fn a_half_written_last_line_does_not_swallow_the_next_record() {
        let (_d, path) = log_with(2);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"{\"partial\":").expect("write");
        append(&path, &record("after")).expect("append");
        let v = verify(&path).expect("verify");
        assert_eq!(v.records, 4);
        assert_eq!(v.problems, [(3, "damaged: not a complete guardsh audit record".to_string())]);
        assert!(lines(&path)[3].contains("\"tool\":\"after\""));
    }

    #[test]
    fn a_long_last_line_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let mut big = record("big");
        big.argv = vec![Value::String("x".repeat(100_000))];
        append(&path, &big).expect("append");
        append(&path, &record("next")).expect("append");
        assert!(verify(&path).expect("verify").problems.is_empty());
    }
}
