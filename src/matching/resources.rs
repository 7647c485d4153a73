//! Reads resource arguments the way kubectl does (`TYPE[.VERSION][.GROUP]`, comma lists,
//! `TYPE/NAME`, short names, kinds, categories such as `all`, and API paths given to `--raw`) and
//! turns them into canonical readings that rules are matched against.
//!
//! Driven by tool knowledge (`resource_verbs`, `resources`, `resource_groups`, `api_path_flags`
//! in `shims/NAME.toml`), so nothing here names a kubectl resource. Pure: words in, readings out.
//!
//! The canonical spelling of a resource type is its plural name in lower case, without version
//! or group: `Secret`, `secret`, `secrets.v1.`, `secrets.v1` all read `secrets`, `ns/prod` reads
//! `namespaces/prod`. Dropping the group can only make a rule apply to more commands (a custom
//! resource called `secrets` is treated like the built-in one), never to fewer.

use crate::tools::Map;
use serde::{Deserialize, Serialize};

use super::NormalizedArgv;

/// What the tool knowledge says about a CLI's resource arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSpec {
    /// Lower-cased operations (their words joined by a space) whose arguments are resources.
    pub verbs: crate::strtable::StrSet,
    /// Lower-cased spellings (singular, short names, kinds) to the canonical plural.
    pub names: crate::strtable::StrMap,
    /// Names that stand for several resource types (`all`), each canonical.
    pub groups: Map<String, Vec<String>>,
    /// Canonical names of flags whose value is an API path (`--raw`).
    pub api_path_flags: Vec<String>,
}

impl ResourceSpec {
    pub fn is_empty(&self) -> bool {
        self.verbs.is_empty() && self.api_path_flags.is_empty()
    }

    /// `TYPE[.VERSION][.GROUP]` in its canonical spelling (see the module comment).
    pub fn canonical_type(&self, written: &str) -> String {
        let lower = written.to_lowercase();
        let base = lower.split('.').next().unwrap_or_default();
        self.names.get(base).map_or_else(|| base.to_string(), str::to_string)
    }

    /// A rule's word pattern (after the operation) with the canonical spelling of every resource
    /// type it names added: `{ns,deploy/*}` also matches `namespaces` and `deployments/*`, since
    /// rules see canonical words. Without this, a policy written with short names would silently
    /// stop matching. `None` when nothing needs adding or the pattern is not a plain word or a
    /// `{a,b}` list (other globs are left as written).
    pub fn widen_pattern(&self, source: &str) -> Option<String> {
        if self.names.is_empty() || source.contains(['[', ']', '\\', '!', '?']) {
            return None;
        }
        let items: Vec<&str> = match source.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(inner) if !inner.contains(['{', '}']) => inner.split(',').collect(),
            None if !source.contains(['{', '}']) => vec![source],
            _ => return None,
        };
        let mut added = Vec::new();
        for item in &items {
            let (ty, rest) = match item.split_once('/') {
                Some((ty, rest)) => (ty, Some(rest)),
                None => (*item, None),
            };
            if ty.contains('*') {
                continue;
            }
            let canonical = self.canonical_type(ty);
            if canonical != ty.to_lowercase() {
                added.push(match rest {
                    Some(rest) => format!("{canonical}/{rest}"),
                    None => canonical,
                });
            }
        }
        if added.is_empty() {
            return None;
        }
        Some(format!("{{{}}}", items.iter().map(|s| s.to_string()).chain(added).collect::<Vec<_>>().join(",")))
    }

    /// The canonical types one comma-list item stands for (a category stands for its members).
    fn expand(&self, written: &str) -> Vec<String> {
        let canonical = self.canonical_type(written);
        match self.groups.get(&canonical) {
            Some(members) => members.clone(),
            None => vec![canonical],
        }
    }
}

/// Every reading of `argv` that a rule must also be matched against, besides `argv` itself,
/// whose resource words this canonicalises in place. For `get pods,secrets -o yaml`: `argv`
/// becomes `get pods,secrets` and the readings are `get pods` and `get secrets`; for
/// `delete pod/a ns/prod`: `delete pods/a` and `delete namespaces/prod`; for
/// `delete --raw /api/v1/namespaces/prod`: `delete namespaces/prod`.
pub fn readings(argv: &mut NormalizedArgv, spec: &ResourceSpec, verb_len: usize) -> Vec<NormalizedArgv> {
    let mut out = Vec::new();
    if spec.is_empty() || argv.positionals.len() < verb_len {
        return out;
    }
    let op: Vec<String> = argv.positionals[..verb_len].to_vec();
    let op_key = op.iter().map(|w| w.to_lowercase()).collect::<Vec<_>>().join(" ");
    let reading = |argv: &NormalizedArgv, words: Vec<String>| {
        let mut r = argv.clone();
        r.positionals = op.iter().cloned().chain(words).collect();
        // The words are rebuilt, so no word of a reading stands for an unknown flag's value: each
        // reading is decided as written, which an allow rule must survive too.
        r.maybe_values.clear();
        r.positional_at.clear();
        r
    };
    if spec.verbs.contains(&op_key) && argv.positionals.len() > verb_len {
        let rest: Vec<String> = argv.positionals[verb_len..].to_vec();
        if rest[0].contains('/') {
            // kubectl reads every argument as TYPE/NAME once the first one is.
            for (i, word) in rest.iter().enumerate() {
                let canonical = slash_form(spec, word);
                argv.positionals[verb_len + i] = canonical.clone();
                out.push(reading(argv, vec![canonical]));
            }
        } else {
            let items: Vec<&str> = rest[0].split(',').filter(|t| !t.is_empty()).collect();
            let types: Vec<String> = items.iter().flat_map(|t| spec.expand(t)).collect();
            argv.positionals[verb_len] = items.iter().map(|t| spec.canonical_type(t)).collect::<Vec<_>>().join(",");
            if types.len() > 1 || items.len() > 1 || types.first() != Some(&argv.positionals[verb_len]) {
                for ty in types {
                    out.push(reading(argv, std::iter::once(ty).chain(rest[1..].iter().cloned()).collect()));
                }
            }
        }
        // Without the words that may be an unknown flag's value, another word may be the first
        // resource argument (`get --unknown pods secret.v1.`): that reading is decided too.
        let without: Vec<String> = (verb_len..argv.positionals.len())
            .filter(|i| !argv.maybe_values.contains(i))
            .map(|i| rest[i - verb_len].clone())
            .collect();
        if without.len() < rest.len()
            && let Some(first) = without.first()
        {
            if first.contains('/') {
                for word in &without {
                    out.push(reading(argv, vec![slash_form(spec, word)]));
                }
            } else {
                for ty in first.split(',').filter(|t| !t.is_empty()).flat_map(|t| spec.expand(t)) {
                    out.push(reading(argv, std::iter::once(ty).chain(without[1..].iter().cloned()).collect()));
                }
            }
        }
    }
    for flag in &spec.api_path_flags {
        let paths: Vec<Option<String>> = argv.values(flag).map(|v| v.map(str::to_string)).collect();
        for path in paths {
            match path.as_deref().map(api_path) {
                Some(ApiPath::Resources(words)) => {
                    for w in words {
                        out.push(reading(argv, vec![w]));
                    }
                }
                Some(ApiPath::NotAResource) => {}
                Some(ApiPath::Unreadable(why)) => {
                    argv.ambiguity.get_or_insert_with(|| format!("{flag} {why}"));
                }
                None => {
                    argv.ambiguity.get_or_insert_with(|| format!("{flag} without a path"));
                }
            }
        }
    }
    out
}

/// `TYPE/NAME` with the type canonical; a word without a slash as it is.
fn slash_form(spec: &ResourceSpec, word: &str) -> String {
    match word.split_once('/') {
        Some((ty, name)) => format!("{}/{name}", spec.canonical_type(ty)),
        None => word.to_string(),
    }
}

/// What an API path names.
#[derive(Debug, PartialEq, Eq)]
enum ApiPath {
    /// Canonical `TYPE` (a collection) or `TYPE/NAME` words: more than one when the path can be
    /// read two ways (`namespaces/NS/status` is namespace NS's subresource).
    Resources(Vec<String>),
    /// Not under `/api` or `/apis` (`/healthz`, `/metrics`, `/version`).
    NotAResource,
    Unreadable(String),
}

/// Subresources of a namespace: `namespaces/NS/finalize` acts on namespace NS itself.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Maps `/api/v1/...` and `/apis/GROUP/VERSION/...` (with `namespaces/NS/RESOURCE/NAME` or
/// `RESOURCE/NAME`, then an optional subresource) to the resource it names. The path is cleaned
/// as kubectl's client does (`path.Join`: empty, `.` and `..` segments); a query is ignored; a
/// percent sign (which the server may decode) makes it unreadable.
fn api_path(path: &str) -> ApiPath {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.contains('%') {
        return ApiPath::Unreadable(format!("path {path:?} has percent-escapes"));
    }
    let mut segments: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let lower: Vec<String> = segments.iter().map(|s| s.to_lowercase()).collect();
    let rest = match lower.first().map(String::as_str) {
        Some("api") if lower.len() >= 2 => &segments[2..],
        Some("apis") if lower.len() >= 3 => &segments[3..],
        Some("api" | "apis") => return ApiPath::NotAResource,
        _ => return ApiPath::NotAResource,
    };
    // `watch` in the old `/api/v1/watch/...` form is a read of what follows.
    let rest = match rest.first() {
        Some(w) if w.eq_ignore_ascii_case("watch") => &rest[1..],
        _ => rest,
    };
    let word = |ty: &str, name: Option<&str>| match name {
        Some(n) => format!("{}/{n}", ty.to_lowercase()),
        None => ty.to_lowercase(),
    };
    let is_namespaces = |s: &str| s.eq_ignore_ascii_case("namespaces");
    match rest {
        [] => ApiPath::NotAResource,
        [ty] => ApiPath::Resources(vec![word(ty, None)]),
        [ty, name] => ApiPath::Resources(vec![word(ty, Some(name))]),
        [ns, name, sub] if is_namespaces(ns) && NAMESPACE_SUBRESOURCES.iter().any(|s| sub.eq_ignore_ascii_case(s)) => {
            ApiPath::Resources(vec![word(ns, Some(name)), word(sub, None)])
        }
        [ns, _, ty] if is_namespaces(ns) => ApiPath::Resources(vec![word(ty, None)]),
        [ns, _, ty, name, ..] if is_namespaces(ns) => ApiPath::Resources(vec![word(ty, Some(name))]),
        // A cluster-scoped resource's subresource (`nodes/x/proxy/...`).
        [ty, name, ..] => ApiPath::Resources(vec![word(ty, Some(name))]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_patterns_also_name_the_canonical_types() {
        let spec = ResourceSpec {
            names: [("ns", "namespaces"), ("deploy", "deployments"), ("secret", "secrets")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ..Default::default()
        };
        assert_eq!(spec.widen_pattern("ns").as_deref(), Some("{ns,namespaces}"));
        assert_eq!(spec.widen_pattern("{secret,deploy/*}").as_deref(), Some("{secret,deploy/*,secrets,deployments/*}"));
        assert_eq!(spec.widen_pattern("{pods,namespaces}"), None);
        assert_eq!(spec.widen_pattern("ns[./]*"), None);
        assert_eq!(spec.widen_pattern("*"), None);
    }

    #[test]
    fn api_paths_name_their_resource() {
        let r = |p: &str| match api_path(p) {
            ApiPath::Resources(w) => w.join(" "),
            ApiPath::NotAResource => "-".into(),
            ApiPath::Unreadable(_) => "?".into(),
        };
        assert_eq!(r("/api/v1/namespaces/prod"), "namespaces/prod");
        assert_eq!(r("/api/v1/namespaces/prod/"), "namespaces/prod");
        assert_eq!(r("/api/v1/namespaces/x/../prod"), "namespaces/prod");
        assert_eq!(r("//api//v1/./namespaces/prod?gracePeriodSeconds=0"), "namespaces/prod");
        assert_eq!(r("/api/v1/namespaces/prod/finalize"), "namespaces/prod finalize");
        assert_eq!(r("/api/v1/namespaces/prod/secrets"), "secrets");
        assert_eq!(r("/api/v1/namespaces/prod/secrets/db"), "secrets/db");
        assert_eq!(r("/apis/apps/v1/namespaces/prod/deployments/web/scale"), "deployments/web");
        assert_eq!(r("/apis/rbac.authorization.k8s.io/v1/clusterroles/admin"), "clusterroles/admin");
        assert_eq!(r("/api/v1/watch/namespaces/prod"), "namespaces/prod");
        assert_eq!(r("/api/v1/namespaces/pr%6fd"), "?");
        assert_eq!(r("/healthz"), "-");
        assert_eq!(r("/api/v1"), "-");
    }
}
