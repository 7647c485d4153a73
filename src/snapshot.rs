//! Input files that decide what a command does (`kubectl -f`, `psql -f`, `helm -f`): read once
//! when guardsh decides, and handed to the tool as that copy, so that what was decided (and
//! approved) is what runs.
//!
//! An approval binds argv, and a file named in argv can change after the decision. So guardsh
//! reads each such file (a regular file, at most `LIMIT` bytes) before deciding; the decision and
//! the approval digest are made from those bytes; and the tool gets them as a sealed in-memory
//! file, named `/dev/fd/N` in place of the path: argv changes in that one word only, and the audit
//! record shows it. What cannot be read that way (a directory, a URL, `-`, a FIFO, a file that is
//! too large) is not snapshotted, and the command is then never allowed by a rule.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::matching::NormalizedArgv;
use crate::tools::ToolSpec;

/// Files larger than this are not snapshotted (the command then needs approval, without a copy).
pub const LIMIT: u64 = 4 << 20;

/// One file argument: where it is in argv, and what guardsh read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInput {
    /// Index of the word in argv (without argv[0]) and the byte offset of the path in it.
    pub index: usize,
    pub offset: usize,
    /// The path as written.
    pub written: String,
    /// The bytes, or why they could not be taken.
    pub content: Result<Vec<u8>, String>,
}

/// One file argument of a command: how it was given (the flag, or `argument` for a positional
/// word), where its path is in argv, and the path as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileArg {
    pub given_as: String,
    pub at: Option<(usize, usize)>,
    pub written: Option<String>,
}

/// Every file argument the tool knowledge says to snapshot in `argv`, in argv order of kind
/// (flags, then positional words). `take` and the decision both start from this list.
pub fn file_arguments(spec: &ToolSpec, argv: &NormalizedArgv) -> Vec<FileArg> {
    if !spec.snapshots_apply(&argv.positionals) {
        return vec![];
    }
    let mut out: Vec<FileArg> = argv
        .flags
        .iter()
        .filter(|f| spec.snapshot_flags.contains(&f.name))
        .map(|f| FileArg { given_as: f.name.clone(), at: f.at, written: f.value.clone() })
        .collect();
    for i in spec.snapshot_positional_words(&argv.positionals) {
        out.push(FileArg {
            given_as: "argument".into(),
            at: argv.positional_at.get(i).map(|&at| (at, 0)),
            written: argv.positionals.get(i).cloned(),
        });
    }
    out
}

/// Reads every file argument of the tool (`file_arguments`), relative to `cwd`.
pub fn take(cwd: &Path, spec: &ToolSpec, argv: &NormalizedArgv) -> Vec<FileInput> {
    // `terraform -chdir=DIR apply plan.bin` reads DIR/plan.bin; given twice, which one the tool
    // uses is its business, so no file is read.
    let bases: Vec<Option<&str>> = spec.snapshot_relative_to.as_ref().map_or(vec![], |f| argv.values(f).collect());
    let base = match bases.as_slice() {
        [] => Ok(cwd.to_path_buf()),
        [Some(dir)] => Ok(cwd.join(dir)),
        _ => Err("the directory it is relative to is given more than once".to_string()),
    };
    file_arguments(spec, argv)
        .into_iter()
        .filter_map(|f| {
            let (index, offset) = f.at?;
            let written = f.written?;
            let content = base.clone().and_then(|base| read(&base, &written));
            Some(FileInput { index, offset, written, content })
        })
        .collect()
}

fn read(cwd: &Path, written: &str) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    if written == "-" {
        return Err("standard input cannot be read in advance".into());
    }
    if written.contains("://") {
        return Err("a URL is fetched by the tool, not read by guardsh".into());
    }
    // kubectl reads `-f a.yaml,b.yaml` as two files; guardsh does not split it.
    if written.contains(',') {
        return Err("a list of files in one argument".into());
    }
    // Not blocking on a FIFO; the type is checked on what was opened.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(cwd.join(written))
        .map_err(|e| format!("cannot read it: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err(if meta.is_dir() { "a directory".into() } else { "not a regular file".into() });
    }
    if meta.len() > LIMIT {
        return Err(format!("larger than {} MiB", LIMIT >> 20));
    }
    let mut bytes = Vec::new();
    file.take(LIMIT + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > LIMIT {
        return Err(format!("larger than {} MiB", LIMIT >> 20));
    }
    Ok(bytes)
}

/// Puts each snapshot in a sealed in-memory file this process keeps open across exec, and
/// returns argv with each file argument replaced by `/dev/fd/N` (keeping anything before the
/// path in the same word, such as `--filename=`).
pub fn hand_over(args: &[OsString], files: &[FileInput]) -> std::io::Result<Vec<OsString>> {
    use nix::fcntl::{FcntlArg, fcntl};
    let mut out = args.to_vec();
    for f in files {
        let Ok(bytes) = &f.content else {
            return Err(std::io::Error::other(format!("{} was not snapshotted", f.written)));
        };
        let copy = crate::exec::sealed_copy(bytes)?;
        // F_DUPFD gives a descriptor without close-on-exec: the tool inherits it.
        let fd = fcntl(&copy, FcntlArg::F_DUPFD(3))?;
        let word = out.get(f.index).ok_or_else(|| std::io::Error::other("a file argument outside argv"))?;
        let bytes_of_word = word.as_bytes();
        if f.offset > bytes_of_word.len() || &bytes_of_word[f.offset..] != f.written.as_bytes() {
            return Err(std::io::Error::other("a file argument is not where it was read"));
        }
        let mut new = bytes_of_word[..f.offset].to_vec();
        new.extend_from_slice(format!("/dev/fd/{fd}").as_bytes());
        out[f.index] = OsString::from_vec(new);
        // `fd` stays open until exec and then in the tool; `copy` (close-on-exec) may go.
        drop(copy);
    }
    Ok(out)
}

/// For a tool started by another process (guardsh run's broker, which has threads of its own):
/// each snapshot as a sealed in-memory file that stays close-on-exec here, and argv naming
/// `/dev/fd/N` by its own number. The caller keeps the files open until the tool has started
/// and clears close-on-exec on exactly these descriptors in the child (`exec::prepare_custodied_child`).
pub fn hand_over_to_child(
    args: &[OsString],
    files: &[FileInput],
) -> std::io::Result<(Vec<OsString>, Vec<std::os::fd::OwnedFd>)> {
    use std::os::fd::AsRawFd;
    let mut out = args.to_vec();
    let mut kept = Vec::new();
    for f in files {
        let Ok(bytes) = &f.content else {
            return Err(std::io::Error::other(format!("{} was not snapshotted", f.written)));
        };
        let copy = std::os::fd::OwnedFd::from(crate::exec::sealed_copy(bytes)?);
        let word = out.get(f.index).ok_or_else(|| std::io::Error::other("a file argument outside argv"))?;
        let bytes_of_word = word.as_bytes();
        if f.offset > bytes_of_word.len() || &bytes_of_word[f.offset..] != f.written.as_bytes() {
            return Err(std::io::Error::other("a file argument is not where it was read"));
        }
        let mut new = bytes_of_word[..f.offset].to_vec();
        new.extend_from_slice(format!("/dev/fd/{}", copy.as_raw_fd()).as_bytes());
        out[f.index] = OsString::from_vec(new);
        kept.push(copy);
    }
    Ok((out, kept))
}

/// Reads what the snapshots of the command's input files say: for Kubernetes manifests, one
/// reading per object (`kubectl delete -f x.yaml` holding a Namespace is also
/// `kubectl delete namespaces/NAME`); a file argument without a snapshot, or whose content cannot
/// be read with certainty, makes the reading uncertain. Returns what an approval binds for them.
pub fn read_inputs(spec: &ToolSpec, argv: &mut NormalizedArgv, files: &[FileInput]) -> Vec<(String, String)> {
    use crate::tools::SnapshotFormat;
    let mut bindings = Vec::new();
    let mut readings = Vec::new();
    let mut doubts = Vec::new();
    for f in argv.flags.iter().filter(|f| spec.unsnapshottable_flags.contains(&f.name)) {
        doubts.push(format!("{} names input guardsh cannot copy before deciding", f.name));
    }
    let verb_len = spec.verb_len(&argv.positionals).min(argv.positionals.len());
    for arg in file_arguments(spec, argv) {
        let written = arg.written.as_deref().unwrap_or("");
        let found = arg.at.and_then(|(i, o)| files.iter().find(|f| f.index == i && f.offset == o));
        let bytes = match found.map(|f| &f.content) {
            Some(Ok(bytes)) => bytes,
            Some(Err(why)) => {
                doubts.push(format!("{} {written}: {why}, so guardsh cannot decide on a copy of it", arg.given_as));
                continue;
            }
            None => {
                doubts.push(format!("{} {written} was not read before deciding", arg.given_as));
                continue;
            }
        };
        let summary = match spec.snapshot_format {
            SnapshotFormat::Bytes => String::new(),
            SnapshotFormat::Sql => {
                let text = String::from_utf8_lossy(bytes);
                let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
                let shown: String = one_line.chars().take(2000).collect();
                let more = if shown.len() < one_line.len() { " ..." } else { "" };
                format!(": {shown}{more}")
            }
            SnapshotFormat::Kubernetes => match crate::manifest::objects(bytes) {
                Ok(objects) => {
                    for o in &objects {
                        let mut r = argv.clone();
                        r.equivalents.clear();
                        r.maybe_values.clear();
                        r.positional_at.clear();
                        let ty = spec.resources.canonical_type(&o.kind);
                        let word = o.name.as_ref().map_or(ty.clone(), |n| format!("{ty}/{n}"));
                        r.positionals = argv.positionals[..verb_len].iter().cloned().chain([word]).collect();
                        if let (Some(ns), Some(flag)) = (&o.namespace, spec.canonical_flag("--namespace")) {
                            r.flags.push(crate::matching::normalize::Flag {
                                name: flag.into(),
                                value: Some(ns.clone()),
                                at: None,
                            });
                        }
                        readings.push(r);
                    }
                    let listed: Vec<String> = objects.iter().map(crate::manifest::Object::describe).collect();
                    format!(": {} object(s): {}", objects.len(), listed.join(", "))
                }
                Err(why) => {
                    doubts.push(format!("{} {written}: {why}", arg.given_as));
                    String::new()
                }
            },
        };
        let name = format!("(file {written})");
        bindings.push((name, format!("{}, {} bytes{summary}", sha256(bytes), bytes.len())));
    }
    if let Some(first) = doubts.into_iter().next() {
        argv.ambiguity.get_or_insert(first);
    }
    argv.equivalents.extend(readings);
    // What made the command uncertain makes every reading of it uncertain.
    if let Some(why) = argv.ambiguity.clone() {
        for r in &mut argv.equivalents {
            r.ambiguity.get_or_insert_with(|| why.clone());
        }
    }
    bindings
}

/// `sha256:HEX` of a snapshot.
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("sha256:{}", crate::approval::request::hex(&Sha256::digest(bytes)))
}
