//! The command catalogs embedded at build time (`catalogs/*.tsv`, `build.rs`): which command a
//! line of positional words names, and that command's class and flags.
//!
//! Pure: static tables in, values out. What a class is allowed to do is `posture`'s job.

use serde::{Deserialize, Serialize};

/// What running a command does (catalogs/README.md has the rubric). Ordered so that the stricter
/// of two readings is the greater, with `Group` (runs nothing) lowest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Group,
    Read,
    Local,
    Write,
    Destroy,
    Credential,
    Code,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Group => "group",
            Class::Read => "read",
            Class::Local => "local",
            Class::Write => "write",
            Class::Destroy => "destroy",
            Class::Credential => "credential",
            Class::Code => "code",
        }
    }
}

/// One CLI's catalog, as `build.rs` embeds it. Rows are sorted by path.
#[derive(Debug)]
pub struct Catalog {
    pub name: &'static str,
    /// The shims it serves. A shim finds its catalog through `TOOL_INDEX`, made from these.
    #[cfg_attr(not(test), allow(dead_code))]
    pub tools: &'static [&'static str],
    pub source: &'static str,
    /// A long flag the row does not list takes a value (aws).
    pub value_default: bool,
    /// Every row's path, one after the other, in row order: what a lookup's binary search reads,
    /// kept together so that it touches a few pages (each page first touched costs a call a
    /// page fault).
    pub paths: &'static str,
    /// Every row's flags and note, one after the other, in row order.
    pub text: &'static str,
    /// For each row, sorted by path: where its path starts and ends in `paths`, and where its
    /// flags and its note end in `text` (they start where the row before ends). Offsets rather
    /// than `&str`s: a static table of pointers needs one dynamic
    /// relocation per pointer in a position-independent binary, tens of thousands of them
    /// applied at every start-up (two milliseconds and seven MiB of touched pages per shim call,
    /// measured), where integers need none.
    pub rows: &'static [[u32; 4]],
    pub classes: &'static [Class],
}

/// One row of a catalog: path, class, flags, note.
pub type Row = (&'static str, Class, &'static str, &'static str);

include!(concat!(env!("OUT_DIR"), "/catalogs.rs"));

/// The catalog of the CLI a shim named `tool` runs, if there is one.
pub fn for_tool(tool: &str) -> Option<&'static Catalog> {
    // Bytes, not `lines()`: its char searcher was most of a catalog lookup's instructions.
    let index = TOOL_INDEX.as_bytes().split(|&b| b == b'\n').find_map(|line| {
        let number = line.strip_prefix(tool.as_bytes())?.strip_prefix(b" ")?;
        std::str::from_utf8(number).ok()?.parse::<usize>().ok()
    });
    index.and_then(|i| CATALOGS.get(i))
}

/// The catalog entry a command line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub path: &'static str,
    pub class: Class,
    flags: &'static str,
    pub note: &'static str,
    /// How many positional words the path took.
    pub depth: usize,
    value_default: bool,
    /// The command runs by itself (a group only prints help).
    pub runnable: bool,
}

impl Entry {
    /// Whether the command accepts `flag` (as spelt on the command line, without a value).
    pub fn accepts(&self, flag: &str) -> bool {
        self.flags.split(',').any(|f| f.strip_suffix('=').unwrap_or(f) == flag)
    }

    /// Whether `flag` takes a value at this command: `Some(true)` or `Some(false)` when the
    /// catalog says, `None` when it does not know the flag.
    pub fn takes_value(&self, flag: &str) -> Option<bool> {
        for f in self.flags.split(',') {
            match f.strip_suffix('=') {
                Some(name) if name == flag => return Some(true),
                None if f == flag => return Some(false),
                _ => {}
            }
        }
        (self.value_default && flag.starts_with("--")).then_some(true)
    }
}

/// What the catalog says of a line of positional words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The words name this command (words after its path are its arguments).
    Known(Entry),
    /// The words start with a group and go on with a word that is none of its children: a
    /// typo, a plugin or an extension, an alias of the user's. The group is the deepest known.
    Unknown { near: Option<&'static str> },
}

impl Catalog {
    fn path(&self, i: usize) -> &'static str {
        let [start, end, ..] = self.rows[i];
        &self.paths[start as usize..end as usize]
    }

    /// Row `i`: path, class, flags, note.
    pub fn get(&self, i: usize) -> Row {
        let [_, _, flags_end, note_end] = self.rows[i];
        let flags_start = i.checked_sub(1).map_or(0, |before| self.rows[before][3]);
        let part = |a: u32, b: u32| &self.text[a as usize..b as usize];
        (self.path(i), self.classes[i], part(flags_start, flags_end), part(flags_end, note_end))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    fn row(&self, path: &str) -> Option<Row> {
        let i = self.partition(|p| p < path);
        (i < self.rows.len() && self.path(i) == path).then(|| self.get(i))
    }

    /// The first row whose path is not `before`.
    fn partition(&self, before: impl Fn(&str) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.rows.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if before(self.path(mid)) { lo = mid + 1 } else { hi = mid }
        }
        lo
    }

    /// The longest path of the catalog that `words` start with. A group followed by more words
    /// is `Unknown`; a group on its own runs nothing (it prints help) and reads as `Read`.
    pub fn lookup(&self, words: &[String]) -> Lookup {
        let mut path = String::new();
        let mut best: Option<(usize, Row)> = None;
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                path.push(' ');
            }
            path.push_str(w);
            match self.row(&path) {
                Some(row) => best = Some((i + 1, row)),
                // Paths are prefix-closed in every generated catalog, but a missing middle level
                // must not make a deeper row unreachable: keep looking while a longer path could
                // still exist.
                None if !self.has_prefix(&path) => break,
                None => {}
            }
        }
        let Some((depth, (p, class, flags, note))) = best else { return Lookup::Unknown { near: None } };
        if class == Class::Group && depth < words.len() {
            return Lookup::Unknown { near: Some(p) };
        }
        let runnable = class != Class::Group;
        let class = if runnable { class } else { Class::Read };
        Lookup::Known(Entry { path: p, class, flags, note, depth, value_default: self.value_default, runnable })
    }

    /// How many words the command of `words` (the positional words read so far) takes: the
    /// path's length when the words reach a command with no subcommands; one more than the words
    /// when they are a path that goes on. `None` when the words leave the catalog.
    pub fn command_len(&self, words: &[String]) -> Option<usize> {
        let mut path = String::new();
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                path.push(' ');
            }
            path.push_str(w);
            let row = self.row(&path);
            if !self.has_prefix(&path) {
                return row.map(|_| i + 1);
            }
        }
        (!words.is_empty() || !self.rows.is_empty()).then_some(words.len() + 1)
    }

    /// Whether some row is a command below `path` (`set env` below `set`).
    fn has_prefix(&self, path: &str) -> bool {
        let below = format!("{path} ");
        let start = self.partition(|p| p < below.as_str());
        start < self.rows.len() && self.path(start).starts_with(below.as_str())
    }

    /// A short name for explanations: "kubectl catalog (kubernetes v1.31.0)".
    pub fn describe(&self) -> String {
        format!("{} catalog ({})", self.name, self.source.split(" (").next().unwrap_or(self.source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog built at run time from rows, as `build.rs` lays them out.
    fn catalog(rows: &[Row]) -> Catalog {
        let mut paths = String::new();
        let mut text = String::new();
        let mut offsets = Vec::new();
        let mut classes = Vec::new();
        for (path, class, flags, note) in rows {
            let start = paths.len() as u32;
            paths.push_str(path);
            let path_end = paths.len() as u32;
            text.push_str(flags);
            let flags_end = text.len() as u32;
            text.push_str(note);
            offsets.push([start, path_end, flags_end, text.len() as u32]);
            classes.push(*class);
        }
        Catalog {
            name: "t",
            tools: &["t"],
            source: "test v1 (commit x)",
            value_default: false,
            paths: Box::leak(paths.into_boxed_str()),
            text: Box::leak(text.into_boxed_str()),
            rows: Box::leak(offsets.into_boxed_slice()),
            classes: Box::leak(classes.into_boxed_slice()),
        }
    }

    static TEST: std::sync::LazyLock<Catalog> = std::sync::LazyLock::new(|| {
        catalog(&[
            ("config", Class::Group, "", ""),
            ("config view", Class::Read, "--raw", ""),
            ("create", Class::Write, "--filename=,-f=,--dry-run=", ""),
            ("create secret", Class::Group, "", ""),
            ("create secret generic", Class::Write, "--from-literal=", ""),
            ("delete", Class::Destroy, "--dry-run=,--force", ""),
        ])
    });

    fn look(line: &str) -> Lookup {
        TEST.lookup(&line.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn longest_path_wins_and_arguments_follow() {
        let cases: &[(&str, Option<(&str, Class)>)] = &[
            ("delete pod x", Some(("delete", Class::Destroy))),
            ("create secret generic s", Some(("create secret generic", Class::Write))),
            // A runnable command with children takes other words as arguments.
            ("create deployment x", Some(("create", Class::Write))),
            // A group alone prints help.
            ("config", Some(("config", Class::Read))),
            ("config view", Some(("config view", Class::Read))),
            // A group followed by a word that is none of its children is not known.
            ("config frobnicate", None),
            ("create secret tls x", None),
            ("plugin-thing", None),
            ("", None),
        ];
        for (line, want) in cases {
            let got = match look(line) {
                Lookup::Known(e) => Some((e.path, e.class)),
                Lookup::Unknown { .. } => None,
            };
            assert_eq!(got, *want, "{line:?}");
        }
    }

    /// Where the command words end: at a command with nothing below it; one more while the words
    /// so far lead deeper (a group, or a command with subcommands).
    #[test]
    fn command_len_follows_the_tree() {
        let len = |line: &str| TEST.command_len(&line.split_whitespace().map(String::from).collect::<Vec<_>>());
        assert_eq!(len("delete pod x"), Some(1));
        assert_eq!(len("create secret generic s"), Some(3));
        assert_eq!(len("create secret"), Some(3));
        assert_eq!(len("create"), Some(2));
        assert_eq!(len("config view"), Some(2));
        assert_eq!(len(""), Some(1));
        assert_eq!(len("plugin-thing x"), None);
    }

    #[test]
    fn flags_say_whether_they_take_a_value() {
        let Lookup::Known(e) = look("delete x") else { panic!("known") };
        assert_eq!(e.takes_value("--dry-run"), Some(true));
        assert_eq!(e.takes_value("--force"), Some(false));
        assert_eq!(e.takes_value("--other"), None);
        assert!(e.accepts("--dry-run") && !e.accepts("--filename"));
    }

    #[test]
    fn every_embedded_catalog_is_sorted_and_names_its_tools() {
        for c in CATALOGS {
            assert!(!c.tools.is_empty(), "{}", c.name);
            assert!((1..c.len()).all(|i| c.get(i - 1).0 < c.get(i).0), "{}", c.name);
            assert_eq!(c.rows.len(), c.classes.len(), "{}", c.name);
            for t in c.tools {
                assert!(std::ptr::eq(for_tool(t).expect("found"), c), "{t} has one catalog");
            }
        }
    }
}
