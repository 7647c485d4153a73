//! Matches the common kind of rule glob without building a regex, with exactly globset's meaning.
//!
//! globset turns a glob into a regex, and building that regex costs more than the rest of a shim
//! call's matching put together (callgrind: 0.6M instructions for one `{secret,secrets/*}`).
//! Rule globs are short: `*`, `?`, `[...]` classes and `{a,b}` lists over ASCII. Those are
//! compiled here into a few flat alternatives and matched with the classic two-cursor wildcard
//! scan, which is linear in the word for each alternative (an agent controls the words, so a
//! backtracking matcher would let it make guardsh spin). Anything else (`**`, non-ASCII,
//! lists that multiply into more than `MAX_ALTERNATIVES`) returns `None` and stays with globset.
//!
//! The meaning copied from globset with the options `pattern` uses (case-insensitive, `/` not
//! special, backslash escapes): the regex is built in bytes mode, so `?` is one byte, case
//! folding is ASCII only, a class's ranges are folded before a leading `!`/`^` negates them,
//! and an empty alternative is dropped (`{a,}` does not match the empty word). A test checks
//! this module against globset itself.

/// One element of a flat alternative.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Tok {
    /// A lower-cased ASCII byte.
    Byte(u8),
    /// `?`: any one byte.
    AnyByte,
    /// `*`: any run of bytes.
    Star,
    Class {
        negated: bool,
        ranges: Vec<(u8, u8)>,
    },
}

/// A glob as alternatives without lists in them; it matches when any alternative does.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FlatGlob(Vec<Vec<Tok>>);

const MAX_ALTERNATIVES: usize = 64;

impl FlatGlob {
    /// Compiles `source`, which globset has already accepted, or `None` when it is not of the
    /// kind this module handles.
    pub fn new(source: &str) -> Option<Self> {
        if !source.is_ascii() || source.contains("**") {
            return None;
        }
        let mut parser = Parser { bytes: source.as_bytes(), at: 0 };
        let alternatives = parser.sequence(false)?;
        (parser.at == source.len()).then_some(Self(alternatives))
    }

    pub fn is_match(&self, word: &str) -> bool {
        self.0.iter().any(|alt| matches(alt, word.as_bytes()))
    }
}

struct Parser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    /// Parses up to the end, or inside a list up to its `,` or `}`, into flat alternatives.
    fn sequence(&mut self, in_list: bool) -> Option<Vec<Vec<Tok>>> {
        let mut alts: Vec<Vec<Tok>> = vec![vec![]];
        while let Some(&c) = self.bytes.get(self.at) {
            if in_list && (c == b',' || c == b'}') {
                break;
            }
            self.at += 1;
            let tok = match c {
                b'?' => Tok::AnyByte,
                b'*' => Tok::Star,
                b'[' => self.class()?,
                b'{' => {
                    let list = self.list()?;
                    // A list whose alternatives are all empty adds nothing (globset emits no regex).
                    if list.is_empty() {
                        continue;
                    }
                    if alts.len() * list.len() > MAX_ALTERNATIVES {
                        return None;
                    }
                    alts = alts
                        .iter()
                        .flat_map(|a| list.iter().map(move |b| a.iter().chain(b).cloned().collect()))
                        .collect();
                    continue;
                }
                b'}' => return None,
                b'\\' => {
                    let escaped = *self.bytes.get(self.at)?;
                    self.at += 1;
                    Tok::Byte(escaped.to_ascii_lowercase())
                }
                c => Tok::Byte(c.to_ascii_lowercase()),
            };
            for a in &mut alts {
                a.push(tok.clone());
            }
        }
        Some(alts)
    }

    /// After `{`: the list's non-empty alternatives, flattened, through the closing `}`.
    fn list(&mut self) -> Option<Vec<Vec<Tok>>> {
        let mut out = vec![];
        loop {
            let alts = self.sequence(true)?;
            // globset drops an alternative whose regex is empty: one with no elements.
            out.extend(alts.into_iter().filter(|a| !a.is_empty()));
            if out.len() > MAX_ALTERNATIVES {
                return None;
            }
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }

    /// After `[`: globset's class syntax. A `]` or `-` first is literal, a `-` last is literal,
    /// backslash is literal, and an unclosed class was already an error.
    fn class(&mut self) -> Option<Tok> {
        let negated = matches!(self.bytes.get(self.at), Some(b'!' | b'^'));
        if negated {
            self.at += 1;
        }
        let mut ranges: Vec<(u8, u8)> = vec![];
        let (mut first, mut in_range) = (true, false);
        loop {
            let c = *self.bytes.get(self.at)?;
            self.at += 1;
            match c {
                b']' if !first => break,
                b'-' if !first && !in_range => in_range = true,
                c => {
                    match ranges.last_mut() {
                        Some(last) if in_range => {
                            if c < last.0 {
                                return None;
                            }
                            last.1 = c;
                        }
                        _ => ranges.push((c, c)),
                    }
                    in_range = false;
                }
            }
            first = false;
        }
        if in_range {
            ranges.push((b'-', b'-'));
        }
        Some(Tok::Class { negated, ranges })
    }
}

fn byte_matches(tok: &Tok, b: u8) -> bool {
    match tok {
        Tok::Byte(want) => b.to_ascii_lowercase() == *want,
        Tok::AnyByte => true,
        Tok::Star => false,
        Tok::Class { negated, ranges } => {
            let within = |x: u8| ranges.iter().any(|&(lo, hi)| lo <= x && x <= hi);
            let folded = within(b) || within(b.to_ascii_lowercase()) || within(b.to_ascii_uppercase());
            folded != *negated
        }
    }
}

/// The two-cursor wildcard scan: on a mismatch, only the most recent `*` needs to take one more
/// byte, so the work is at most the word's length times the alternative's.
fn matches(toks: &[Tok], word: &[u8]) -> bool {
    let (mut t, mut w) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while w < word.len() {
        match toks.get(t) {
            Some(Tok::Star) => {
                star = Some((t + 1, w));
                t += 1;
                continue;
            }
            Some(tok) if byte_matches(tok, word[w]) => {
                t += 1;
                w += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((after, from)) => {
                star = Some((after, from + 1));
                t = after;
                w = from + 1;
            }
            None => return false,
        }
    }
    toks[t..].iter().all(|tok| *tok == Tok::Star)
}

#[cfg(test)]
mod tests {
    use super::FlatGlob;
    use globset::GlobBuilder;

    /// Every pattern here that this module handles matches exactly the words globset matches.
    #[test]
    fn agrees_with_globset() {
        let patterns = [
            "prod*",
            "*prod*",
            "s3://prod-*",
            "[0-9]*",
            "{get,describe}*",
            "{secret,secrets,secret/*,secrets/*}",
            "{ns[./\\,]*,namespace[./\\,]*,*\\,ns,*\\,ns[./\\,]*}",
            "a?c",
            "?",
            "*",
            "*a*a*b",
            "[!a-c]x",
            "[^a-c]x",
            "[]a]",
            "[-a]",
            "[a-]",
            "[a\\]",
            "[Z-a]",
            "[A-Z]*",
            "{a,}",
            "{,}",
            "x{}y",
            "{a,{b,c}d}e",
            "{{},a}",
            "\\*x",
            "\\{a,b\\}",
            "a,b",
            "{A,B}?",
            "*[.]*",
            "[!/]*",
            "p*d",
            "*-*-*",
        ];
        let words = [
            "",
            "a",
            "b",
            "ab",
            "abc",
            "aXc",
            "A?C",
            "prod",
            "PROD-db",
            "production",
            "my-prod/x",
            "s3://prod-x",
            "S3://PROD-y/z",
            "7days",
            "days",
            "get",
            "describes",
            "secret",
            "Secrets/x",
            "ns.v1",
            "ns",
            "a,ns",
            "pods,ns/x",
            "namespace/prod",
            "aaaaab",
            "aaaa",
            "dx",
            "bx",
            "]",
            "-",
            "\\",
            "z",
            "_",
            "`",
            "A",
            "Zed",
            "bde",
            "ce",
            "e",
            "xy",
            "*x",
            "{a,b}",
            "a,b",
            "a?",
            "Bz",
            "a.b",
            "/x",
            "prod-é",
            "é",
            "\u{212a}",
            "p/d",
            "a-b-c",
            "a--",
        ];
        let mut handled = 0;
        for p in patterns {
            let Some(flat) = FlatGlob::new(p) else { continue };
            handled += 1;
            let oracle = GlobBuilder::new(p)
                .case_insensitive(true)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .expect("globset accepts it")
                .compile_matcher();
            for w in words {
                assert_eq!(flat.is_match(w), oracle.is_match(w), "{p:?} vs {w:?}");
            }
        }
        assert_eq!(handled, patterns.len(), "every pattern above is one this module handles");
    }

    /// `Pattern` trusts a glob this module accepts without asking globset, so it must accept
    /// nothing globset rejects.
    #[test]
    fn rejects_what_globset_rejects() {
        for p in ["[unclosed", "[z-a]", "a}", "{a,b", "a\\", "[]", "[!]", "x[a-", "{a,[b}", "{{a}", "}{"] {
            let globset = GlobBuilder::new(p).backslash_escape(true).build();
            assert!(globset.is_err(), "globset accepts {p:?}");
            assert!(FlatGlob::new(p).is_none(), "{p:?}");
        }
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        for p in ["**", "a/**/b", "é*", "{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}"] {
            assert!(FlatGlob::new(p).is_none(), "{p:?}");
        }
    }

    #[test]
    fn long_words_against_many_stars_stay_linear() {
        let flat = FlatGlob::new("*a*a*a*a*b").expect("handled");
        let word = "a".repeat(100_000);
        assert!(!flat.is_match(&word));
    }
}
