//! Combines the rules that matched into one verdict: deny beats ask beats allow, unknown tools are
//! denied, uncertain readings never end in allow, and CI mode turns every ask into deny.
//!
//! Pure and total: every input produces a verdict, and `Allow` is never a fallback.

use crate::matching::{self, NormalizedArgv};
use crate::rules::{Action, LayerKind, Mode, ToolPolicy};

/// Why the verdict came out as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The strictest matching rule (first in policy order among equals).
    Rule(String),
    /// No rule matched; the tool's default applied.
    Default,
    /// No rule matched; the posture decided by the command's class in the tool's catalog.
    Catalog,
    /// The policy has no rules for this tool.
    UnknownTool,
    /// The Rego stage (`crate::policy`) made the rules' decision stricter.
    Policy,
}

/// The decision for one invocation. `#[must_use]`: dropping a verdict on the floor is a bug.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    pub cause: Cause,
    /// Shown to the human and the agent.
    pub reason: String,
    /// Ids of every rule that matched, in policy order.
    pub matched: Vec<String>,
    /// Credential variables the tool receives if this runs (for an ask, once approved).
    pub grants: Vec<String>,
    /// Set when CI mode turned an `ask` into this `deny`.
    pub ci_denied: bool,
    /// Set when the invocation could not be read with certainty (and so no allow rule applied).
    pub uncertain: Option<String>,
    /// For `ask`: a winning rule says not to wait for the approval.
    pub no_wait: bool,
    /// What the tool's catalog says of the command (`posture::Reading::describe`), whatever
    /// decided it.
    pub catalog: Option<String>,
}

/// Decides one invocation of `tool`. `policy` is `None` when the policy does not know the tool.
///
/// Every reading of the command (`NormalizedArgv::equivalents`: each resource of
/// `get pods,secrets`, the namespace `delete --raw /api/v1/namespaces/prod` names, each object of
/// a manifest) is decided too, and the strictest verdict wins; among equals, the command as
/// written. The rules that matched any reading are all listed.
pub fn decide(tool: &str, policy: Option<&ToolPolicy>, argv: &NormalizedArgv, mode: Mode) -> Verdict {
    let mut verdict = decide_one(tool, policy, argv, mode);
    for reading in &argv.equivalents {
        let other = decide_one(tool, policy, reading, mode);
        let mut matched = std::mem::take(&mut verdict.matched);
        for id in &other.matched {
            if !matched.contains(id) {
                matched.push(id.clone());
            }
        }
        if other.action > verdict.action {
            verdict = other;
        }
        verdict.matched = matched;
    }
    verdict
}

fn decide_one(tool: &str, policy: Option<&ToolPolicy>, argv: &NormalizedArgv, mode: Mode) -> Verdict {
    let uncertain =
        if argv.non_utf8 { Some("an argument is not valid UTF-8".to_string()) } else { argv.ambiguity.clone() };
    let Some(policy) = policy else {
        return Verdict {
            action: Action::Deny,
            cause: Cause::UnknownTool,
            reason: format!("the guardsh policy has no rules for {tool}, so it is not allowed to run"),
            matched: vec![],
            grants: vec![],
            ci_denied: false,
            uncertain,
            no_wait: false,
            catalog: None,
        };
    };
    let reading = policy.posture.and_then(|_| crate::posture::read(tool, &policy.spec, argv));
    let resolved = reading.as_ref().and_then(|r| r.entry()).and_then(|e| crate::posture::resolve_values(argv, e));
    let argv = resolved.as_ref().unwrap_or(argv);
    let mut hits = matching::hits(&policy.rules, argv);
    if let Some(form) = reading.as_ref().and_then(|r| r.form.as_ref()) {
        // Help and true dry runs run nothing: the pack's rules say what commands do when they
        // run, so they do not apply, except those whose danger comes before a dry run stops
        // (`holds_dry_runs`). The human's and the platform team's own rules still do.
        let help = *form == crate::posture::Form::Help;
        hits.retain(|&i| {
            let r = &policy.rules[i];
            r.layer != LayerKind::Pack || (!help && r.holds_dry_runs)
        });
    }
    // An exception sets aside the asks and denies of its own layer and the looser ones below it,
    // never those of a tighter layer.
    if let Some(top) = hits.iter().filter(|&&i| policy.rules[i].exception).map(|&i| policy.rules[i].layer).max() {
        hits.retain(|&i| policy.rules[i].exception || policy.rules[i].layer > top);
    }
    let matched = hits.iter().map(|&i| policy.rules[i].id.clone()).collect();
    let strictest = hits.iter().map(|&i| policy.rules[i].action).max();
    // The posture is the pack's verdict on the command's class: it counts with the rules (an
    // allow rule does not let a destroy run), unless an exception matched, which sets aside the
    // pack and everything below its own layer.
    let excepted = hits.iter().any(|&i| policy.rules[i].exception);
    let classed = match (policy.posture, &reading) {
        (Some(posture), Some(r)) if !excepted => r.class().map(|c| (r, c, posture.action(c))),
        _ => None,
    };
    let catalog_wins = classed.as_ref().is_some_and(|(_, _, p)| strictest.is_none_or(|a| *p > a));
    let mut no_wait = false;
    let (mut action, cause, reason, mut grants) = match strictest {
        Some(action) if !catalog_wins => {
            let winners: Vec<_> = hits.iter().map(|&i| &policy.rules[i]).filter(|r| r.action == action).collect();
            let first = winners[0];
            let mut grants: Vec<String> = winners.iter().flat_map(|r| r.grant.iter().cloned()).collect();
            grants.sort();
            grants.dedup();
            no_wait = winners.iter().any(|r| r.wait == Some(false));
            (action, Cause::Rule(first.id.clone()), first.reason.clone(), grants)
        }
        _ if let Some((r, class, posture_action)) = classed.filter(|_| catalog_wins) => {
            let mut action = posture_action;
            let mut reason = format!(
                "{}; {} commands {}",
                r.describe(),
                class.as_str(),
                match action {
                    Action::Allow => "run",
                    Action::Ask => "need a human's approval",
                    Action::Deny => "are not allowed",
                }
            );
            if let Some(why) = &uncertain {
                if action == Action::Allow {
                    reason = format!(
                        "guardsh could not read this {tool} command line with certainty ({why}), so it is not allowed without approval"
                    );
                }
                action = action.max(Action::Ask);
            }
            (action, Cause::Catalog, reason, policy.default_grant.clone())
        }
        _ => {
            let mut action = policy.default;
            let reason = match (&uncertain, argv.non_utf8) {
                // Say what made the reading uncertain: "no rule matches" would send the agent
                // looking for the wrong fix.
                (Some(why), non_utf8) => {
                    action = action.max(Action::Ask);
                    let hint = if non_utf8 { "" } else { "; write the option as --option=VALUE, or after the verb" };
                    format!(
                        "guardsh could not read this {tool} command line with certainty ({why}), so no allow rule applies{hint}"
                    )
                }
                // The reason is part of what an approval checks against the policy again, so it
                // holds nothing the approver's own evaluation cannot see (piped SQL): `check`
                // shows what the statements do.
                (None, _) => match &reading {
                    Some(r) => format!("{}; the default for {tool} is {}", r.describe(), action.as_str()),
                    None => {
                        format!("no rule matches this {tool} invocation; the default for {tool} is {}", action.as_str())
                    }
                },
            };
            (action, Cause::Default, reason, policy.default_grant.clone())
        }
    };
    let mut ci_denied = false;
    if action == Action::Ask && mode == Mode::Ci {
        action = Action::Deny;
        ci_denied = true;
    }
    // A denial passes nothing. An ask that CI mode denied keeps its grants: a signed approval
    // token can still release them (see `Evaluation::approval_env`).
    if action == Action::Deny && !ci_denied {
        grants.clear();
    }
    let catalog = reading.as_ref().map(crate::posture::Reading::describe);
    Verdict { action, cause, reason, matched, grants, ci_denied, uncertain, no_wait, catalog }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;
    use crate::rules::{LayerKind, Policy, Source, compile_with_packs};

    fn compile(sources: &[Source]) -> Result<Policy, crate::rules::ConfigError> {
        compile_with_packs(sources, &[])
    }

    const POLICY: &str = include_str!("../tests/fixtures/policy.toml");

    fn policy() -> Policy {
        compile(&[Source { layer: LayerKind::User, path: "t.toml".into(), text: POLICY.into() }]).expect("valid")
    }

    fn verdict(p: &Policy, line: &str, mode: Mode) -> Verdict {
        let mut words = line.split_whitespace();
        let tool = words.next().expect("tool");
        let args: Vec<OsString> = words.map(OsString::from).collect();
        let tp = p.tools.get(tool);
        let spec = tp.map(|t| t.spec.clone()).unwrap_or_default();
        decide(tool, tp, &crate::matching::normalize(&args, &spec), mode)
    }

    macro_rules! check {
        ($want:ident, $line:expr) => {
            check!($want, $line, Mode::Interactive)
        };
        ($want:ident, $line:expr, $mode:expr) => {{
            let v = verdict(&policy(), $line, $mode);
            assert_eq!(v.action, Action::$want, "{}: {:?}", $line, v);
        }};
    }

    /// A policy with a posture over the embedded catalogs, a deny, an exception and a plain allow
    /// of a `code` command, all in one base layer.
    const POSTURE: &str = r#"
[posture]
read = "allow"
local = "allow"
write = "allow"
destroy = "ask"
credential = "ask"
code = "ask"

[tools.aws]
[tools.gh]
[tools.vercel]

[[rule]]
id = "no-namespace-deletes"
tool = "kubectl"
action = "deny"
reason = "namespaces"
args = ["delete", "namespaces"]

[[rule]]
id = "dev-pods"
tool = "kubectl"
action = "allow"
exception = true
reason = "dev pods are disposable"
args = ["delete", "pods"]
flags = { "--namespace" = "dev" }

[[rule]]
id = "plain-allow-exec"
tool = "kubectl"
action = "allow"
reason = "a plain allow does not let a held class run"
args = ["exec"]
"#;

    /// Classes decide what no rule holds; forms (help, true dry runs, version) run nothing; an
    /// exception sets aside the asks below it; a plain allow does not loosen a held class.
    #[test]
    fn posture_table() {
        let p =
            compile(&[Source { layer: LayerKind::User, path: "p.toml".into(), text: POSTURE.into() }]).expect("valid");
        let cases: &[(&str, Action, Mode)] = &[
            ("kubectl get pods", Action::Allow, Mode::Interactive),
            ("kubectl create deployment web --image=nginx", Action::Allow, Mode::Interactive),
            ("kubectl scale deploy web --replicas=3", Action::Allow, Mode::Interactive),
            ("kubectl delete pod web-1", Action::Ask, Mode::Interactive),
            ("kubectl delete pod web-1", Action::Deny, Mode::Ci),
            ("kubectl delete pods web-1 -n dev", Action::Allow, Mode::Interactive),
            ("kubectl delete pods web-1 -n prod", Action::Ask, Mode::Interactive),
            ("kubectl delete ns staging", Action::Deny, Mode::Interactive),
            // The human's own deny still holds for a dry run; only the pack's rules step aside.
            ("kubectl delete ns staging --dry-run=server", Action::Deny, Mode::Interactive),
            ("kubectl delete pod web-1 --dry-run=client", Action::Allow, Mode::Interactive),
            ("kubectl delete pod web-1 --dry-run=none", Action::Ask, Mode::Interactive),
            ("kubectl delete pod web-1 --dry-run", Action::Ask, Mode::Interactive),
            ("kubectl delete --help", Action::Allow, Mode::Interactive),
            ("kubectl delete pod web-1 -h", Action::Allow, Mode::Interactive),
            ("kubectl help delete", Action::Allow, Mode::Interactive),
            ("kubectl exec -it web-1 -- sh", Action::Ask, Mode::Interactive),
            ("kubectl create secret generic s --from-literal=a=b", Action::Ask, Mode::Interactive),
            ("kubectl config set-cluster prod --server=https://evil.example", Action::Ask, Mode::Interactive),
            // Not in the catalog: a typo, a plugin, an alias. Its --help is the plugin's to read.
            ("kubectl frobnicate", Action::Ask, Mode::Interactive),
            ("kubectl frobnicate --help", Action::Ask, Mode::Interactive),
            ("aws ec2 describe-instances", Action::Allow, Mode::Interactive),
            ("aws ec2 terminate-instances --instance-ids i-1", Action::Ask, Mode::Interactive),
            ("aws ec2 terminate-instances --instance-ids i-1 --dry-run", Action::Allow, Mode::Interactive),
            ("aws ec2 terminate-instances --instance-ids i-1 --dry-run --no-dry-run", Action::Ask, Mode::Interactive),
            ("aws ec2 terminate-instances --no-dry-run --instance-ids i-1 --dry-run", Action::Allow, Mode::Interactive),
            ("aws ec2 terminate-instances help", Action::Allow, Mode::Interactive),
            // `help` as one of the command's own arguments is not a request for help.
            ("aws s3 rm s3://bucket/help help", Action::Ask, Mode::Interactive),
            ("aws s3 rm s3://bucket/x --dryrun", Action::Allow, Mode::Interactive),
            ("aws iam get-role --role-name delete-old-role", Action::Allow, Mode::Interactive),
            ("aws secretsmanager get-secret-value --secret-id prod/db", Action::Ask, Mode::Interactive),
            ("aws ec2 nosuch-operation", Action::Ask, Mode::Interactive),
            ("gh --version", Action::Allow, Mode::Interactive),
            ("gh repo delete octo/app --help", Action::Allow, Mode::Interactive),
            ("gh repo delete octo/app", Action::Ask, Mode::Interactive),
            ("gh pr create --title x", Action::Allow, Mode::Interactive),
            // vercel's default command: no command word, or a path, deploys.
            ("vercel", Action::Allow, Mode::Interactive),
            ("vercel ./site --prod", Action::Allow, Mode::Interactive),
            ("vercel rm my-app", Action::Ask, Mode::Interactive),
        ];
        for (line, want, mode) in cases {
            let v = verdict(&p, line, *mode);
            assert_eq!(v.action, *want, "{line} ({mode:?}): {v:?}");
        }
        let v = verdict(&p, "kubectl rollout undo deploy/web", Mode::Interactive);
        assert_eq!(v.cause, Cause::Catalog);
        assert!(v.reason.starts_with("`rollout undo`: write, kubectl catalog"), "{}", v.reason);
    }

    #[test]
    fn table() {
        check!(Allow, "kubectl get pods");
        check!(Allow, "kubectl GET pods");
        check!(Allow, "kubectl describe deploy delete-me");
        check!(Ask, "kubectl delete pod x");
        check!(Deny, "kubectl delete ns x");
        check!(Deny, "kubectl -n prod delete ns x");
        check!(Deny, "kubectl delete ns x -n prod");
        check!(Deny, "kubectl --namespace=prod delete ns x");
        check!(Deny, "kubectl DELETE Namespace x");
        check!(Allow, "kubectl delete pod x --dry-run=client");
        check!(Allow, "kubectl delete pod x --dry-run=server");
        check!(Ask, "kubectl delete pod x --dry-run=none");
        check!(Ask, "kubectl delete pod x --dry-run=client --dry-run=none");
        check!(Ask, "kubectl delete --dry-run pod x");
        check!(Deny, "kubectl delete pod x --dry-run=client --force");
        check!(Ask, "kubectl -n prod get pods");
        check!(Ask, "kubectl -n staging -n prod get pods");
        check!(Allow, "kubectl -n staging get pods");
        check!(Ask, "kubectl apply -f x.yaml");
        check!(Ask, "kubectl");
        check!(Ask, "kubectl --bogus get pods");
        check!(Deny, "kubectl delete pod x", Mode::Ci);
        check!(Allow, "kubectl get pods", Mode::Ci);
        check!(Deny, "kubectl apply -f x.yaml", Mode::Ci);
        check!(Allow, "terraform plan");
        check!(Ask, "terraform plan -destroy");
        check!(Ask, "terraform plan --destroy");
        check!(Ask, "terraform apply");
        check!(Deny, "helm uninstall x");
        check!(Allow, "aws s3 ls");
        check!(Ask, "aws --bogus s3 ls");
        check!(Deny, "aws --bogus s3 ls", Mode::Ci);
        check!(Deny, "aws s3 rb s3://b --force");
    }

    #[test]
    fn precedence_does_not_depend_on_rule_order() {
        let p = policy();
        let mut reversed = p.clone();
        for t in reversed.tools.values_mut() {
            t.rules.reverse();
        }
        for line in [
            "kubectl delete ns x",
            "kubectl -n prod get pods",
            "kubectl delete pod x --dry-run=client --force",
            "kubectl get pods",
        ] {
            assert_eq!(
                verdict(&p, line, Mode::Interactive).action,
                verdict(&reversed, line, Mode::Interactive).action,
                "{line}"
            );
        }
    }

    #[test]
    fn the_default_grants_what_default_grant_names() {
        let text = "[tools.aws]\ndefault = \"ask\"\ndefault_grant = [\"AWS_SECRET_ACCESS_KEY\"]\n[[rule]]\nid = \"ls\"\ntool = \"aws\"\naction = \"allow\"\nreason = \"r\"\nargs = [\"s3\", \"ls\"]\n";
        let p = compile(&[Source { layer: LayerKind::User, path: "t.toml".into(), text: text.into() }]).expect("valid");
        let v = verdict(&p, "aws ec2 terminate-instances", Mode::Interactive);
        assert_eq!(
            (v.action, v.cause, v.grants),
            (Action::Ask, Cause::Default, vec!["AWS_SECRET_ACCESS_KEY".to_string()])
        );
        // A rule that decides grants only what it names.
        assert!(verdict(&p, "aws s3 ls", Mode::Interactive).grants.is_empty());
    }

    #[test]
    fn verdict_explains_itself() {
        let v = verdict(&policy(), "kubectl -n prod delete ns x", Mode::Interactive);
        assert_eq!(v.cause, Cause::Rule("k-delete-ns".into()));
        assert_eq!(v.matched, ["k-delete", "k-delete-ns", "k-prod"]);
        assert!(v.reason.contains("namespace"));
        let v = verdict(&policy(), "helm list", Mode::Interactive);
        assert_eq!(v.cause, Cause::UnknownTool);
        let v = verdict(&policy(), "kubectl delete pod x", Mode::Ci);
        assert!(v.ci_denied);
    }

    #[test]
    fn a_default_of_allow_never_allows_an_uncertain_reading() {
        let p = compile(&[Source {
            layer: LayerKind::User,
            path: "t.toml".into(),
            text: "[tools.aws]\ndefault = \"allow\"\n".into(),
        }])
        .expect("valid");
        assert_eq!(verdict(&p, "aws s3 ls", Mode::Interactive).action, Action::Allow);
        let v = verdict(&p, "aws --bogus s3 ls", Mode::Interactive);
        assert_eq!(v.action, Action::Ask);
        assert!(v.reason.contains("could not read this aws command line with certainty"), "{}", v.reason);
    }

    #[test]
    fn non_utf8_never_matches_allow() {
        use std::os::unix::ffi::OsStringExt;
        let p = policy();
        let tp = &p.tools["kubectl"];
        let args = vec![OsString::from("get"), OsString::from_vec(vec![0xff])];
        let v = decide("kubectl", Some(tp), &crate::matching::normalize(&args, &tp.spec), Mode::Interactive);
        assert_eq!(v.action, Action::Ask);
        assert!(v.uncertain.is_some());
    }
}
