//! One glob from a rule, matched case-insensitively, with plain words and `{a,b}` lists answered
//! without building a regex.
//!
//! Every pattern is parsed by globset when the policy is compiled, so an invalid glob anywhere
//! in the policy is a configuration error. Building globset's matcher compiles a regex, which
//! costs far more than the comparison itself: plain words and lists are compared directly, the
//! usual globs are matched by `glob::FlatGlob` (globset's meaning, no regex), and only the rest
//! build globset's matcher, the first time a rule of the invoked tool needs it.

use std::sync::OnceLock;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use super::glob::FlatGlob;

/// Stored (in the policy cache) as compiled, so that a shim call reading its rules parses no
/// glob again; only a pattern left to globset is built anew from its source.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Stored")]
pub struct Pattern {
    source: String,
    kind: Kind,
}

/// A pattern as the policy cache stores it.
#[derive(Deserialize)]
struct Stored {
    source: String,
    kind: StoredKind,
}

#[derive(Deserialize)]
enum StoredKind {
    Any,
    OneOf(Vec<String>),
    Flat(FlatGlob),
    Glob,
}

impl TryFrom<Stored> for Pattern {
    type Error = String;
    fn try_from(Stored { source, kind }: Stored) -> Result<Self, String> {
        let kind = match kind {
            StoredKind::Any => Kind::Any,
            StoredKind::OneOf(words) => Kind::OneOf(words),
            StoredKind::Flat(flat) => Kind::Flat(flat),
            StoredKind::Glob => return Pattern::new(&source),
        };
        Ok(Self { source, kind })
    }
}

/// `Stored`, borrowed: written without copying the pattern (a large policy's cache entry holds
/// tens of thousands). Same fields and variants in the same order, so it reads back as `Stored`.
#[derive(Serialize)]
struct StoredRef<'a> {
    source: &'a str,
    kind: StoredKindRef<'a>,
}

#[derive(Serialize)]
enum StoredKindRef<'a> {
    Any,
    OneOf(&'a [String]),
    Flat(&'a FlatGlob),
    Glob,
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let kind = match &self.kind {
            Kind::Any => StoredKindRef::Any,
            Kind::OneOf(words) => StoredKindRef::OneOf(words),
            Kind::Flat(flat) => StoredKindRef::Flat(flat),
            Kind::Glob(..) => StoredKindRef::Glob,
        };
        StoredRef { source: &self.source, kind }.serialize(serializer)
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Any,
    /// Lower-cased alternatives; a plain word is a list of one.
    OneOf(Vec<String>),
    Flat(FlatGlob),
    /// Boxed: a glob and its matcher are ten times the size of the other kinds, and a large
    /// policy holds tens of thousands of patterns, nearly none of them globs.
    Glob(Box<(Glob, OnceLock<GlobMatcher>)>),
}

const META: &[char] = &['*', '?', '[', ']', '{', '}', '\\', '!'];

impl Pattern {
    /// Parses `source`; the error is globset's own message. A plain word or a `{a,b}` list of
    /// plain words cannot be an invalid glob, so only real globs are handed to globset.
    pub fn new(source: &str) -> Result<Self, String> {
        let kind = if source == "*" {
            Kind::Any
        } else if !source.contains(META) {
            Kind::OneOf(vec![source.to_lowercase()])
        } else if let Some(inner) = source.strip_prefix('{').and_then(|s| s.strip_suffix('}'))
            && !inner.contains(META)
        {
            Kind::OneOf(inner.split(',').map(str::to_lowercase).collect())
        } else if let Some(flat) = FlatGlob::new(source) {
            // FlatGlob accepts only globs globset accepts (tested in `glob`), so this skips
            // nothing but the cost of globset's parse on every shim call's rules.
            Kind::Flat(flat)
        } else {
            let glob = GlobBuilder::new(source)
                .case_insensitive(true)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("invalid glob {source:?}: {}", e.kind()))?;
            Kind::Glob(Box::new((glob, OnceLock::new())))
        };
        Ok(Self { source: source.to_string(), kind })
    }

    /// The lower-cased words this pattern can match, when it is a plain word or a `{a,b}` list
    /// (`None` for `*` and globs). See `matching::index`.
    pub fn words(&self) -> Option<&[String]> {
        match &self.kind {
            Kind::OneOf(words) => Some(words),
            _ => None,
        }
    }

    pub fn is_match(&self, word: &str) -> bool {
        match &self.kind {
            Kind::Any => true,
            Kind::OneOf(words) if word.is_ascii() => words.iter().any(|w| w.eq_ignore_ascii_case(word)),
            Kind::OneOf(words) => {
                let lower = word.to_lowercase();
                words.contains(&lower)
            }
            Kind::Flat(flat) => flat.is_match(word),
            Kind::Glob(g) => g.1.get_or_init(|| g.0.compile_matcher()).is_match(word),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    #[test]
    fn every_kind_reads_back_from_the_cache_as_it_was_compiled() {
        for source in ["*", "Delete", "{get,describe}", "secret*", "[a-c]?x", "**/prod", "ünï*"] {
            let p = Pattern::new(source).expect("valid");
            let bytes = postcard::to_stdvec(&p).expect("encode");
            let back: Pattern = postcard::from_bytes(&bytes).expect("decode");
            assert_eq!(
                format!("{p:?}").replace("OnceLock(<uninit>)", ""),
                format!("{back:?}").replace("OnceLock(<uninit>)", "")
            );
            for word in ["delete", "get", "secrets", "bzx", "a/b/prod", "ünïcode", "x"] {
                assert_eq!(p.is_match(word), back.is_match(word), "{source} against {word}");
            }
        }
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str, bool)] = &[
            ("delete", "delete", true),
            ("delete", "DELETE", true),
            ("delete", "deleted", false),
            ("{ns,namespace,namespaces}", "NS", true),
            ("{ns,namespace,namespaces}", "pods", false),
            ("{client,server}", "none", false),
            ("*", "", true),
            ("prod*", "production", true),
            ("prod*", "staging", false),
            ("s3://prod-*", "S3://PROD-db/x", true),
            ("*prod*", "my-prod/x", true),
            ("[0-9]*", "7days", true),
            ("{get,describe}*", "describes", true),
        ];
        for (pat, word, want) in cases {
            let p = Pattern::new(pat).expect("valid");
            assert_eq!(p.is_match(word), *want, "{pat:?} vs {word:?}");
        }
    }

    #[test]
    fn invalid_globs_are_errors() {
        assert!(Pattern::new("[unclosed").is_err());
        assert!(Pattern::new("{a,b").is_err());
    }
}
