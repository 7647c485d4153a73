//! Policy files: strict validation with file:line:col errors, refusal while invalid, and the
//! tighten-only project layer.

use crate::gate::{POLICY, world};
use crate::support::Test;

#[test]
fn invalid_policy_refuses_every_guarded_command_with_78() {
    let bad = format!("{POLICY}\n[[rule]]\nid = \"typo\"\ntool = \"kubectl\"\naction = \"alow\"\nreason = \"r\"\n");
    let t = Test::new().rules_with_pack(&bad).tools(&["kubectl"]);
    // The agent is told a human must fix it (tests/ux.rs); the errors are in the audit log and
    // in what the human runs.
    t.run("kubectl", &["get", "pods"]).output().status(78).stderr_has("a human fixes it");
    let path = t.config_dir().join("rules.toml");
    let line = bad.lines().count() - 1;
    let want = format!("{}:{line}:10: unknown variant `alow`", path.display());
    let audited = t.audit_records();
    assert!(audited[0]["reason"].as_str().is_some_and(|r| r.contains(&want)), "{audited:?}");
    assert!(!t.ran("kubectl"));

    let c = t.guardsh(&["check-config"]).output().status(78);
    assert!(c.stderr().contains(&format!("{}:{line}:10:", path.display())), "{}", c.stderr());
}

#[test]
fn every_kind_of_mistake_is_reported_at_its_place() {
    let cases: &[(&str, &str)] = &[
        ("[settings]\nmodee = \"ci\"\n", ":2:1: unknown field `modee`"),
        (
            "[[rule]]\nid = \"a\"\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"r\"\nargs = [\"{get\"]\n",
            ":6:9: invalid glob",
        ),
        (
            "[[rule]]\nid = \"a\"\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"r\"\n[[rule]]\nid = \"a\"\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"r\"\n",
            ":7:6: duplicate rule id",
        ),
        (
            "[[rule]]\nid = \"a\"\ntool = \"kubectl\"\naction = \"maybe\"\nreason = \"r\"\n",
            ":4:10: unknown variant `maybe`",
        ),
    ];
    for (text, want) in cases {
        // As written: the built-in pack is valid and changes no line of the user's file.
        let t = Test::new().rules_with_pack(text).tools(&["kubectl"]);
        t.run("kubectl", &["get", "pods"]).output().status(78);
        t.guardsh(&["check-config"]).output().status(78).stderr_has(want);
    }
}

#[test]
fn missing_policy_refuses_and_says_how_to_fix_it() {
    let t = Test::new().tools(&["kubectl"]);
    t.run("kubectl", &["get", "pods"]).output().status(78).stderr_has("a human fixes it");
    t.guardsh(&["check-config"]).output().status(78).stderr_has("no guardsh policy found");
}

#[test]
fn unreadable_policy_is_not_treated_as_absent() {
    let t = Test::new().tools(&["kubectl"]);
    // A directory where the file should be cannot be read, even by root.
    std::fs::create_dir(t.config_dir().join("rules.toml")).expect("mkdir");
    t.run("kubectl", &["get", "pods"]).output().status(78);
    assert!(!t.ran("kubectl"));
}

#[test]
fn project_layer_tightens_from_any_parent_directory() {
    let t = world().project_rules("[[rule]]\nid = \"no-prod-reads\"\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"this repo never touches prod\"\nflags = { \"-n\" = \"prod\" }\n");
    let sub = t.cwd.join("deep/inside");
    std::fs::create_dir_all(&sub).expect("mkdir");
    t.run("kubectl", &["get", "pods", "-n", "prod"])
        .cwd(&sub)
        .output()
        .status(77)
        .stderr_has("this repo never touches prod");
    t.run("kubectl", &["get", "pods", "-n", "dev"]).cwd(&sub).output().status(0);
}

#[test]
fn project_layer_cannot_allow_more() {
    // A project file that would loosen is never trusted (guardsh trust says why), and while it
    // is not trusted it is not used: the base policy decides.
    let t = world();
    let sneaky = "[[rule]]\nid = \"sneaky\"\ntool = \"kubectl\"\naction = \"allow\"\nreason = \"trust me\"\nargs = [\"delete\"]\n";
    t.trust_project_rules(sneaky).status(1).stderr_has("may only tighten");
    assert_ne!(t.run("kubectl", &["delete", "ns", "prod"]).output().code(), Some(0));
    assert!(!t.ran("kubectl"));

    let t = world();
    t.trust_project_rules("[tools.kubectl]\ndefault = \"allow\"\n").status(1).stderr_has("cannot tighten anything");

    let t = world().project_rules("[settings]\nmode = \"interactive\"\n");
    t.run("kubectl", &["delete", "pod", "x"]).env("CI", "1").output().status(77);
}

#[test]
fn a_misspelt_tool_or_flag_in_a_deny_rule_is_an_error_not_a_rule_that_never_fires() {
    let rule = |tool: &str, flag: &str| {
        format!("[[rule]]\nid = \"p\"\ntool = \"{tool}\"\naction = \"deny\"\nreason = \"r\"\npresent = [\"{flag}\"]\n")
    };
    // Such a project file is refused when the human trusts it, with the error.
    let t = world();
    t.trust_project_rules(&rule("kubeclt", "--force")).status(1).stderr_has("does not guard \"kubeclt\"");
    let t = world();
    t.trust_project_rules(&rule("kubectl", "--froce")).status(1).stderr_has("kubectl has no option \"--froce\"");
}

#[test]
fn project_layer_can_make_a_default_stricter() {
    let t = world().project_rules("[tools.kubectl]\ndefault = \"deny\"\n");
    t.run("kubectl", &["apply", "-f", "x"]).output().status(77);
    t.run("kubectl", &["get", "pods"]).output().status(0);
}

/// A policy file from before the rules shipped in the binary (a full copy of them) keeps deciding
/// as it did, alone, and `check-config` says which pack is in force and how to slim the file.
#[test]
fn a_full_copy_of_the_shipped_rules_keeps_working_and_is_told_how_to_slim() {
    let copy = format!("[settings]\nwait = false\n{}", include_str!("../packs/default.toml"));
    let t = Test::new().rules_with_pack(&copy).tools(&["kubectl"]);
    let c = t.guardsh(&["check-config"]).output().status(0);
    assert!(c.stdout().contains("no built-in pack"), "{}", c.stdout());
    assert!(c.stderr().contains("full copy") && c.stderr().contains("delete the copied ones"), "{}", c.stderr());
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.run("kubectl", &["delete", "ns", "prod"]).output().status(77);

    // The slim example: the pack, its version, and the catalogs in force.
    let t = Test::new().example_rules().tools(&["kubectl"]);
    let c = t.guardsh(&["check-config"]).output().status(0);
    assert!(c.stdout().contains("built-in pack default"), "{}", c.stdout());
    assert!(c.stdout().contains("catalogs: ") && c.stdout().contains("kubectl (kubernetes/kubectl"), "{}", c.stdout());
    assert!(!c.stderr().contains("full copy"), "{}", c.stderr());
}
