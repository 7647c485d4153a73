//! Matches compiled rules against a normalised invocation and returns every rule that matched.

pub mod index;
pub mod normalize;
pub mod resources;

use crate::rules::{Action, FlagTest, Rule};
pub use normalize::{NormalizedArgv, normalize};

/// Does `rule` describe this invocation?
///
/// Flag tests are read in the direction that is stricter for the rule's action: a rule that
/// restricts (`deny`, `ask`) matches if *any* occurrence of a repeated flag satisfies it, a rule
/// that permits (`allow`) only if *every* occurrence does. `kubectl delete --dry-run=client
/// --dry-run=none` therefore matches neither the allow rule for client dry runs nor escapes the
/// ask rule for real deletes.
pub fn rule_matches(rule: &Rule, argv: &NormalizedArgv) -> bool {
    // Each pattern needs a word, in order; runs for every rule on every call, so no allocation.
    let args_match = |words: &mut dyn Iterator<Item = &String>| {
        rule.args.iter().all(|p| words.next().is_some_and(|w| p.is_match(w)))
    };
    // The words after an unknown flag may be its value or positionals: a permitting rule must
    // hold under both readings, a restricting rule under either (`--exclude describe` must not
    // make `gcloud storage rsync` look like a `describe`).
    let all = || argv.positionals.iter();
    let without =
        || argv.positionals.iter().enumerate().filter(|(i, _)| !argv.maybe_values.contains(i)).map(|(_, w)| w);
    let positions_match = if argv.maybe_values.is_empty() {
        args_match(&mut all())
    } else if rule.action == Action::Allow {
        args_match(&mut all()) && args_match(&mut without())
    } else {
        args_match(&mut all()) || args_match(&mut without())
    };
    if !positions_match {
        return false;
    }
    if rule.sql_read && argv.sql != Some(crate::sql::SqlClass::Read) {
        return false;
    }
    if rule.sql_additive && !matches!(argv.sql, Some(crate::sql::SqlClass::Read | crate::sql::SqlClass::Add(_))) {
        return false;
    }
    let permits = rule.action == Action::Allow;
    config_test(rule, argv, permits) && rule.flags.iter().all(|test| flag_test(test, argv, permits))
}

/// Configuration settings on the command line (git's `-c`): a permitting rule holds only when
/// every setting is `safe` or of a class it names, so an allow rule written without `config`
/// never lets a setting that runs a command through. A restricting rule that names classes
/// matches when any setting is of one of them.
fn config_test(rule: &Rule, argv: &NormalizedArgv, permits: bool) -> bool {
    use crate::git_config::ConfigClass;
    if permits {
        argv.config.iter().all(|s| s.class == ConfigClass::Safe || rule.config.contains(&s.class))
    } else {
        rule.config.is_empty() || argv.config.iter().any(|s| rule.config.contains(&s.class))
    }
}

fn flag_test(test: &FlagTest, argv: &NormalizedArgv, permits: bool) -> bool {
    let values: Vec<&str> = argv.values(&test.name).map(|v| v.unwrap_or("")).collect();
    let present = !values.is_empty();
    let all = present && values.iter().all(|v| test.pattern.is_match(v));
    let any = values.iter().any(|v| test.pattern.is_match(v));
    // "is set to a matching value" and its negation, quantified per the rule's direction.
    let is_set = if permits { all } else { any };
    let is_not_set = if permits { !any } else { !all };
    if test.negated { is_not_set } else { is_set }
}

/// Indices (into `rules`) of every rule that matches. Permitting rules are skipped when the
/// invocation could not be read with certainty: an `allow` must never rest on a guess.
pub fn hits(rules: &[Rule], argv: &NormalizedArgv) -> Vec<usize> {
    rules
        .iter()
        .enumerate()
        .filter(|(_, r)| !(r.action == Action::Allow && argv.is_uncertain()))
        .filter(|(_, r)| rule_matches(r, argv))
        .map(|(i, _)| i)
        .collect()
}
