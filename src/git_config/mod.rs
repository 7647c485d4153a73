//! What a git configuration setting given on the command line (`-c key=value`,
//! `--config-env=key=VAR`) can do: one class per setting, looked up in the table generated from
//! git's own list of keys (`keys.rs`, made by `review.rs`), and the values that only restrict git (`restricting.rs`).
//!
//! Pure. The normaliser records every setting with its class; rules decide what each class may
//! do (`config = [...]` on a rule, see `matching`). A key git does not list is `unknown`, and
//! nothing but a reviewed restricting value makes a setting `safe` that its key does not.

mod keys;
mod restricting;
#[cfg(test)]
mod review;

use serde::{Deserialize, Serialize};

/// What a setting can do, from harmless to unknown. Ordered by strictness: when several of
/// git's key patterns match one key, the strictest class counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigClass {
    /// Display, formatting or read behaviour; or a value that only restricts git.
    Safe,
    /// Names a command git runs only while it lists an alternate repository's refs: fetch and
    /// push negotiation, a server's ref advertisement, `--alternate-refs` (`git help config`,
    /// core.alternateRefsCommand).
    FetchCommand,
    /// Names a program or shell command git runs, or turns one on (pager, editor, hooks,
    /// aliases, textconv, filters, helpers, ssh, gpg).
    Command,
    /// Changes where git reads configuration, objects or repositories from, or where it
    /// connects, sends or writes (remotes, URLs, HTTP, includes, trusted directories).
    Location,
    /// Changes what git writes, keeps or deletes, or how a server side behaves; not reviewed as
    /// harmless.
    Other,
    /// Not a key this git lists.
    Unknown,
}

impl ConfigClass {
    pub const ALL: [ConfigClass; 6] = [
        ConfigClass::Safe,
        ConfigClass::FetchCommand,
        ConfigClass::Command,
        ConfigClass::Location,
        ConfigClass::Other,
        ConfigClass::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConfigClass::Safe => "safe",
            ConfigClass::FetchCommand => "fetch-command",
            ConfigClass::Command => "command",
            ConfigClass::Location => "location",
            ConfigClass::Other => "other",
            ConfigClass::Unknown => "unknown",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// One setting from the command line, as git will read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigSetting {
    /// The key as written.
    pub key: String,
    /// `None` when the value is not on the command line (`--config-env` names a variable).
    pub value: Option<String>,
    pub class: ConfigClass,
    /// Why the setting has its class; shown by `guardsh check`.
    pub reason: String,
}

/// Classifies one setting. `value` is `None` when it comes from a variable (`--config-env`).
/// `-c key` without `=` is git's boolean true: pass `Some("true")`.
pub fn classify(key: &str, value: Option<&str>) -> ConfigSetting {
    let (class, reason) = key_class(key);
    let (class, reason) = match value.and_then(|v| restricting::restricting(key, v)) {
        Some(why) if class != ConfigClass::Safe => (ConfigClass::Safe, format!("the value only restricts git: {why}")),
        _ => (class, reason),
    };
    ConfigSetting { key: key.to_string(), value: value.map(str::to_string), class, reason }
}

/// The class of a key, whatever its value: the strictest of every pattern in git's list that
/// matches it, or `Unknown`.
pub fn key_class(key: &str) -> (ConfigClass, String) {
    let mut best: Option<(ConfigClass, &str)> = None;
    for (pattern, class, reason) in keys::KEYS {
        if key_matches(pattern, key) && best.is_none_or(|(c, _)| *class > c) {
            best = Some((*class, reason));
        }
    }
    match best {
        Some((class, reason)) => (class, reason.to_string()),
        None => (ConfigClass::Unknown, format!("git {} does not list this key", keys::GIT_VERSION)),
    }
}

/// A key split as git reads it: section and name are case-insensitive, the subsection (everything
/// between the first and the last dot) is not.
fn split(key: &str) -> Option<(&str, Option<&str>, &str)> {
    let (section, rest) = key.split_once('.')?;
    match rest.rsplit_once('.') {
        Some((sub, name)) => Some((section, Some(sub), name)),
        None => Some((section, None, rest)),
    }
}

fn is_placeholder(s: &str) -> bool {
    s.starts_with('<') && s.ends_with('>')
}

/// Does a key from the command line match one of git's documented keys? `<name>` in git's list
/// stands for any one subsection or name, and a final `*` for anything after its prefix
/// (`alias.*`, `http.<url>.*`).
pub fn key_matches(pattern: &str, key: &str) -> bool {
    let Some((k_section, k_sub, k_name)) = split(key) else { return false };
    if k_section.is_empty() || k_name.is_empty() {
        return false;
    }
    let Some((p_section, p_rest)) = pattern.split_once('.') else { return false };
    if !p_section.eq_ignore_ascii_case(k_section) {
        return false;
    }
    if p_rest == "*" {
        return true;
    }
    let (p_sub, p_name) = match p_rest.split_once('.') {
        Some((sub, name)) => (Some(sub), name),
        None => (None, p_rest),
    };
    let sub_ok = match (p_sub, k_sub) {
        (None, None) => true,
        (Some(p), Some(k)) => is_placeholder(p) || p == k,
        _ => false,
    };
    let name_ok = p_name == "*" || is_placeholder(p_name) || p_name.eq_ignore_ascii_case(k_name);
    sub_ok && name_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(key: &str, value: Option<&str>) -> ConfigClass {
        classify(key, value).class
    }

    /// key, value, class: one scenario per line.
    #[test]
    fn table() {
        use ConfigClass::*;
        let cases: &[(&str, Option<&str>, ConfigClass)] = &[
            // Claude Code's and Codex's housekeeping prefixes.
            ("core.hooksPath", Some("/dev/null"), Safe),
            ("core.fsmonitor", Some(""), Safe),
            ("core.fsmonitor", Some("false"), Safe),
            ("core.askPass", Some(""), Safe),
            ("protocol.ext.allow", Some("never"), Safe),
            ("protocol.file.allow", Some("never"), Safe),
            ("safe.bareRepository", Some("explicit"), Safe),
            ("submodule.recurse", Some("false"), Safe),
            ("gc.auto", Some("0"), Safe),
            ("maintenance.auto", Some("false"), Safe),
            ("log.showSignature", Some("false"), Safe),
            ("diff.autoRefreshIndex", Some("false"), Safe),
            ("format.pretty", Some("%H%x00%s"), Safe),
            ("core.ignorecase", Some("false"), Safe),
            ("hook.pre-commit.enabled", Some("false"), Safe),
            ("color.ui", Some("never"), Safe),
            ("core.alternateRefsCommand", Some("f() { git for-each-ref; }; f"), FetchCommand),
            // The same keys with values that loosen, and keys that run or redirect.
            ("core.hooksPath", Some("/tmp/h"), Command),
            ("core.fsmonitor", Some("./x"), Command),
            ("core.fsmonitor", None, Command),
            ("core.askPass", Some("/tmp/pw"), Command),
            ("protocol.ext.allow", Some("always"), Location),
            ("safe.bareRepository", Some("all"), Location),
            ("hook.pre-commit.enabled", Some("true"), Unknown),
            ("hook.pre-commit.command", Some("sh"), Unknown),
            ("alias.st", Some("!rm -rf ~"), Command),
            ("core.pager", Some("less"), Command),
            ("core.pager", Some("cat"), Safe),
            ("pager.log", Some("evil"), Command),
            ("pager.log", Some("false"), Safe),
            ("core.sshCommand", Some("sh"), Command),
            ("CORE.SSHCOMMAND", Some("sh"), Command),
            ("diff.pdf.textconv", Some("sh"), Command),
            ("diff.external", Some("sh"), Command),
            ("filter.lfs.smudge", Some("sh"), Command),
            ("credential.helper", Some("store"), Command),
            ("credential.https://x.helper", Some("store"), Command),
            ("core.editor", Some("vim"), Command),
            ("sequence.editor", Some("vim"), Command),
            ("gpg.program", Some("sh"), Command),
            ("gpg.ssh.program", Some("sh"), Command),
            ("include.path", Some("/tmp/c"), Location),
            ("includeIf.gitdir:~/.path", Some("/tmp/c"), Location),
            ("remote.origin.url", Some("https://evil"), Location),
            ("url.https://evil/.insteadOf", Some("https://github.com/"), Location),
            ("http.proxy", Some("http://evil"), Location),
            ("http.https://github.com.proxy", Some("http://evil"), Location),
            ("uploadpack.packObjectsHook", Some("sh"), Command),
            ("receive.denyDeletes", Some("false"), Other),
            ("gc.pruneExpire", Some("now"), Other),
            ("no.such.key", Some("x"), Unknown),
            ("nodot", Some("x"), Unknown),
        ];
        for (key, value, want) in cases {
            let got = classify(key, *value);
            assert_eq!(got.class, *want, "{key}={value:?}: {}", got.reason);
        }
    }

    #[test]
    fn patterns_match_like_git_reads_keys() {
        assert!(key_matches("alias.*", "alias.st"));
        assert!(key_matches("diff.<driver>.textconv", "diff.a.b.textconv"));
        assert!(!key_matches("diff.external", "diff.x.external"));
        assert!(key_matches("core.hooksPath", "core.hookspath"));
        // Subsections are case-sensitive in git.
        assert!(!key_matches("maintenance.commit-graph.auto", "maintenance.COMMIT-GRAPH.auto"));
        assert!(key_matches("http.<url>.*", "http.https://x.y/.sslVerify"));
        assert_eq!(class("alias", Some("x")), ConfigClass::Unknown);
    }
}
