//! The values that only restrict git, whatever their key could otherwise do
//! (`core.hooksPath=/dev/null`, `protocol.ext.allow=never`): reviewed by hand, each with why.
//!
//! Pure.

/// git's boolean false (`git_parse_maybe_bool`): also the empty value.
fn is_false(v: &str) -> bool {
    ["false", "no", "off", "0", ""].iter().any(|f| f.eq_ignore_ascii_case(v))
}

/// `(key pattern as in git's list, is the value restricting?, why)`. Reviewed by hand: each
/// value turns something off or narrows it, so the setting is harmless whatever its key's class.
/// Applies to keys this git does not list too (`hook.<name>.enabled` is newer than 2.47).
type Restricting = (&'static str, fn(&str) -> bool, &'static str);
pub const RESTRICTING: &[Restricting] = &[
    ("core.hooksPath", |v| v == "/dev/null", "hooks are looked up in /dev/null, so none run"),
    ("core.fsmonitor", is_false, "the file-system monitor is off"),
    ("core.askPass", str::is_empty, "no password program"),
    ("core.pager", |v| v.is_empty() || v == "cat", "no pager (git does not run one for \"\" or cat)"),
    ("pager.<cmd>", is_false, "no pager"),
    ("protocol.<name>.allow", |v| v == "never", "the transport is forbidden"),
    ("protocol.allow", |v| v == "never", "every transport not allowed by name is forbidden"),
    ("hook.<name>.enabled", is_false, "the hook is off"),
    ("safe.bareRepository", |v| v == "explicit", "bare repositories only when named"),
    ("submodule.recurse", is_false, "no submodule recursion"),
    ("fetch.recurseSubmodules", is_false, "no submodule recursion"),
    ("gc.auto", |v| v == "0", "no automatic gc"),
    ("gc.autoDetach", is_false, "gc does not detach"),
    ("maintenance.auto", is_false, "no automatic maintenance"),
    ("maintenance.autoDetach", is_false, "maintenance does not detach"),
    ("log.showSignature", is_false, "signatures are not verified"),
    ("commit.gpgSign", is_false, "no signing"),
    ("tag.gpgSign", is_false, "no signing"),
    ("push.gpgSign", is_false, "no signing"),
    ("credential.helper", str::is_empty, "no credential helper"),
    ("core.untrackedCache", is_false, "no untracked cache is written"),
    ("core.splitIndex", is_false, "no split index is written"),
    ("fetch.writeCommitGraph", is_false, "no commit graph is written"),
    ("gc.writeCommitGraph", is_false, "no commit graph is written"),
];

/// Why `value` for `key` only restricts git, if it does.
pub fn restricting(key: &str, value: &str) -> Option<&'static str> {
    RESTRICTING.iter().find(|(pattern, restricts, _)| super::key_matches(pattern, key) && restricts(value)).map(|r| r.2)
}
