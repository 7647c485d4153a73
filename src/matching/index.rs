//! Groups a tool's rules by the first word they need, so that a shim call reads back only the
//! rules that could match its command line.
//!
//! Matching is unchanged: the rules a lookup returns are still matched one by one. The index
//! only leaves out rules that cannot match, so it must over-approximate, never under: a rule
//! whose first pattern is a plain word or a `{a,b}` list can only match when the command's first
//! positional word (under either reading of unknown flags' values, see `matching`) is one of
//! them; every other rule (no positional patterns, or a glob first) is in every lookup. Words
//! are hashed into buckets, so a bucket may hold rules for other words too; that only costs a
//! little matching.

use super::NormalizedArgv;
use crate::rules::Rule;

/// About this many rules share a bucket: few enough that a lookup matches a handful of rules,
/// few enough buckets that the table stays small.
const RULES_PER_BUCKET: usize = 8;

/// How many buckets a tool with `rules` rules has.
pub fn buckets_for(rules: usize) -> usize {
    (rules / RULES_PER_BUCKET).max(1)
}

/// The buckets (of `n`) that hold `rule`, each once; `None` when every lookup needs it (an
/// empty list of words, which no pattern has today, included).
pub fn place(rule: &Rule, n: usize) -> Option<Vec<usize>> {
    let words = rule.args.first().and_then(|p| p.words()).filter(|w| !w.is_empty())?;
    let mut buckets: Vec<usize> = words.iter().map(|w| bucket(w, n.max(1))).collect();
    // A list may hash two of its words to one bucket.
    buckets.sort_unstable();
    buckets.dedup();
    Some(buckets)
}

/// The buckets (of `n`) that hold every rule with a word-list first pattern that could match.
pub fn lookup(argv: &NormalizedArgv, n: usize) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    // Every reading is decided (see `decision::decide`), so each one's rules are needed.
    for argv in argv.all_readings() {
        let with_values = argv.positionals.first();
        let without_values =
            argv.positionals.iter().enumerate().find(|(i, _)| !argv.maybe_values.contains(i)).map(|(_, w)| w);
        out.extend(with_values.into_iter().chain(without_values).map(|w| bucket(&w.to_lowercase(), n.max(1))));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// FNV-1a: stable within a build, which is all the cache needs (its key names the build).
fn bucket(lowercase_word: &str, n: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in lowercase_word.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::{buckets_for, lookup, place};
    use crate::matching::{hits, normalize};
    use crate::rules::{Action, LayerKind, Pattern, Rule};
    use crate::tools::ToolSpec;

    /// Rule indices (into the tool's rule list, ascending) per bucket, and those every lookup
    /// needs, as an entry lays them out.
    struct RuleIndex {
        always: Vec<usize>,
        buckets: Vec<Vec<usize>>,
    }

    fn build(rules: &[Rule]) -> RuleIndex {
        let n = buckets_for(rules.len());
        let mut index = RuleIndex { always: vec![], buckets: vec![vec![]; n] };
        for (i, rule) in rules.iter().enumerate() {
            match place(rule, n) {
                Some(buckets) => buckets.into_iter().for_each(|b| index.buckets[b].push(i)),
                None => index.always.push(i),
            }
        }
        index
    }

    fn rule(i: usize, args: &[&str]) -> Rule {
        Rule {
            id: format!("r{i}-{}", args.join(" ")),
            action: [Action::Allow, Action::Ask, Action::Deny][i % 3],
            reason: String::new(),
            layer: LayerKind::User,
            origin: String::new(),
            args: args.iter().map(|a| Pattern::new(a).expect("pattern")).collect(),
            flags: vec![],
            grant: vec![],
            wait: None,
            sql_read: false,
            sql_additive: false,
            config: vec![],
            exception: false,
            holds_dry_runs: false,
        }
    }

    /// The rules a lookup returns hit exactly as the whole list does, for first patterns of
    /// every kind and command lines with case, non-ASCII, unknown flags and no words at all.
    #[test]
    fn a_lookup_finds_every_rule_that_matches() {
        let firsts = ["get", "GET", "{get,delete}", "{Apply,x}", "del*", "*", "[gd]et", "ÉTAT", "k\u{212a}"];
        let mut rules: Vec<Rule> = vec![rule(0, &[])];
        for (i, first) in firsts.iter().enumerate() {
            rules.push(rule(i, &[first]));
            rules.push(rule(i + 1, &[first, "pods"]));
        }
        for i in 0..200 {
            rules.push(rule(i, &[&format!("verb-{i}")]));
        }
        let index = build(&rules);
        assert!(index.buckets.len() > 1);
        let spec = ToolSpec::default();
        let lines: &[&[&str]] = &[
            &[],
            &["get", "pods"],
            &["Get"],
            &["DELETE", "pods"],
            &["apply"],
            &["état"],
            &["kk"],
            &["--unknown", "get", "pods"],
            &["x", "--unknown", "get"],
            &["verb-17"],
            &["describe"],
        ];
        for line in lines {
            let args: Vec<std::ffi::OsString> = line.iter().map(Into::into).collect();
            let argv = normalize(&args, &spec);
            let mut picked: Vec<usize> = index.always.clone();
            for b in lookup(&argv, index.buckets.len()) {
                picked.extend(&index.buckets[b]);
            }
            picked.sort_unstable();
            picked.dedup();
            let subset: Vec<Rule> = picked.iter().map(|&i| rules[i].clone()).collect();
            let want: Vec<&str> = hits(&rules, &argv).into_iter().map(|i| rules[i].id.as_str()).collect();
            let got: Vec<&str> = hits(&subset, &argv).into_iter().map(|i| subset[i].id.as_str()).collect();
            assert_eq!(got, want, "{line:?}");
            assert!(want.is_empty() || picked.len() < rules.len() / 2, "{line:?} looked at {} rules", picked.len());
        }
    }
}
