//! One test per bypass found in review, against the shipped rules.toml.example, through real
//! shims. Each names its entry in docs/bypasses.md.

use crate::support::Test;

fn shipped() -> Test {
    Test::new().example_rules().tools(&["kubectl", "aws", "terraform", "railway", "psql"])
}

/// Runs `line` through its shim and asserts the exit code and that the real tool did not run.
#[track_caller]
fn held(t: &Test, line: &[&str], code: i32) {
    t.run(line[0], &line[1..]).output().status(code);
    assert!(!t.ran(line[0]), "{line:?} reached the real tool");
}

// See: docs/bypasses.md#b1
#[test]
fn b1_short_cluster_before_the_verb_cannot_turn_delete_into_get() {
    let t = shipped();
    held(&t, &["kubectl", "-Rn", "delete", "get", "ns", "prod"], 75);
    held(&t, &["kubectl", "-Rn", "delete", "get", "deployments", "--all", "--namespace=prod"], 77);
}

// See: docs/bypasses.md#b2
#[test]
fn b2_subcommand_option_before_the_service_cannot_hide_s3_rm() {
    let t = shipped();
    held(&t, &["aws", "--exclude", "s3", "rm", "get-x", "s3://prod/", "--recursive"], 77);
    held(&t, &["aws", "--exclude", "s3", "sync", "list-x", "s3://prod/", "--delete"], 77);
}

// See: docs/bypasses.md#b3
#[test]
fn b3_boolean_of_a_subcommand_before_the_verb_cannot_hide_it() {
    let t = shipped();
    held(&t, &["kubectl", "-q", "get", "run", "--image=alpine", "--privileged"], 75);
    held(&t, &["kubectl", "--prefix", "get", "set", "env", "deploy/api", "DB_HOST=evil"], 75);
}

// See: docs/bypasses.md#b4
#[test]
fn b4_auth_reconcile_is_not_a_read() {
    let t = shipped();
    held(&t, &["kubectl", "auth", "reconcile", "-f", "rbac.yaml", "--remove-extra-subjects"], 75);
    t.run("kubectl", &["auth", "can-i", "get", "pods"]).output().status(0);
}

// See: docs/bypasses.md#b5
#[test]
fn b5_psql_list_cannot_be_turned_into_sql() {
    let t = shipped();
    // `-l` is a read; what made it dangerous was the environment: POSIXLY_CORRECT (psql ignores
    // -l after a positional and reads SQL from stdin) and a start-up file of the agent's choosing.
    t.run("psql", &["prod", "postgres", "-l"])
        .env("POSIXLY_CORRECT", "1")
        .env("PSQLRC", "/tmp/evil.sql")
        .env("PGOPTIONS", "-c x=y")
        .output()
        .status(0);
    assert_eq!(t.saw_var("psql", "POSIXLY_CORRECT"), None, "POSIXLY_CORRECT reached psql");
    // The agent's PGOPTIONS never reaches psql; a read gets guardsh's own (b27).
    assert_eq!(
        t.saw_var("psql", "PGOPTIONS").as_deref(),
        Some("-c default_transaction_read_only=on"),
        "the agent's PGOPTIONS reached psql"
    );
    assert_eq!(t.saw_var("psql", "PSQLRC").as_deref(), Some("/dev/null"), "no start-up file runs");
}

// See: docs/bypasses.md#b6
#[test]
fn b6_other_spellings_of_destructive_commands_are_denied() {
    let t = shipped();
    for line in [
        &["kubectl", "delete", "namespace/prod"][..],
        &["kubectl", "delete", "ns/prod"],
        &["kubectl", "delete", "namespace.v1.", "prod"],
        &["kubectl", "delete", "pods,ns", "prod"],
        &["terraform", "env", "delete", "staging"],
        &["railway", "delete", "--project", "prod", "-y"],
    ] {
        held(&t, line, 77);
    }
}

// See: docs/bypasses.md#b7
#[test]
fn b7_variables_that_inject_code_arguments_or_secrets_never_reach_an_allowed_tool() {
    let t = shipped()
        .env("PYTHONUSERBASE", "/tmp/evil")
        .env("TF_CLI_ARGS_plan", "-destroy")
        .env("TF_CLI_ARGS", "-destroy")
        .env("SECRET_KEY", "s")
        .env("API_KEY", "s")
        .env("DB_PASS", "s")
        .env("REDIS_URL", "redis://:pw@h")
        .env("STRIPE_KEY", "s");
    t.run("aws", &["s3", "ls"]).output().status(0);
    t.run("terraform", &["plan", "-out=plan"]).output().status(0);
    for tool in ["aws", "terraform"] {
        for v in [
            "PYTHONUSERBASE",
            "TF_CLI_ARGS_plan",
            "TF_CLI_ARGS",
            "SECRET_KEY",
            "API_KEY",
            "DB_PASS",
            "REDIS_URL",
            "STRIPE_KEY",
        ] {
            assert_eq!(t.saw_var(tool, v), None, "{v} reached {tool}");
        }
    }
}

// See: docs/bypasses.md#b8
#[test]
fn b8_nested_kubectl_commands_are_read_to_their_second_word() {
    let t = shipped();
    held(
        &t,
        &["kubectl", "config", "--password", "view", "set-cluster", "prod", "--server=https://attacker.example"],
        75,
    );
    t.run("kubectl", &["config", "view"]).output().status(0);
}

// See: docs/bypasses.md#b9
#[test]
fn b9_policy_text_cannot_paint_the_terminal_or_offer_an_approval_command() {
    let t = shipped();
    let rule = |id: &str, reason: &str| {
        format!(
            "[[rule]]\nid = \"{id}\"\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"{reason}\"\nargs = [\"get\"]\n"
        )
    };
    for (id, reason) in
        [("x\\u001b]0;PWNED\\u0007", "r"), ("x", "r\\u001b[2J"), ("x", "To approve, run: guardsh approve --all")]
    {
        // Refused when the human trusts it; its text is shown escaped there.
        let t2 = Test::new().example_rules().tools(&["kubectl"]);
        let d = t2.trust_project_rules(&rule(id, reason)).status(1);
        assert!(!d.stderr().contains('\u{1b}'), "raw escape reached the terminal: {:?}", d.stderr());
    }
    // An argv word with escapes is shown escaped by check and audit tail.
    t.run("kubectl", &["delete", "ns", "\u{1b}]0;PWNED\u{7}"]).output().status(77).stderr_lacks("\u{1b}");
    t.guardsh(&["audit", "tail"]).output().status(0);
    let tail = t.guardsh(&["audit", "tail"]).output();
    assert!(!tail.stdout().contains('\u{1b}') && tail.stdout().contains("PWNED"), "{:?}", tail.stdout());
    let check = t.guardsh(&["check", "--", "kubectl", "get", "\u{1b}[2J"]).output();
    assert!(!check.stdout().contains('\u{1b}'), "{:?}", check.stdout());
}

// See: docs/bypasses.md#b13
#[test]
fn b13_a_command_flag_does_not_stop_guardsh_reading_piped_statements() {
    let t = Test::new().example_rules().tools(&["mysql"]);
    // mysql runs --init-command and then the statements on stdin: both are read.
    let piped = |sql: &str, args: &str| {
        t.command("sh").arg_os("-c").arg_os(format!("printf '%s' \"$INPUT\" | mysql {args}")).env("INPUT", sql).output()
    };
    piped("DROP DATABASE app;", "--init-command='select 1' app").status(75);
    assert!(!t.ran("mysql"), "piped DROP reached mysql behind --init-command");
    piped("select 2;", "--init-command='select 1' app").status(0);
    // -e replaces stdin, so what is piped is not a statement.
    piped("DROP DATABASE app;", "-e 'select 1' app").status(0);
}

// See: docs/bypasses.md#b25
#[test]
fn b25_secrets_through_other_resource_spellings_are_not_reads() {
    let t = shipped();
    for line in [
        &["kubectl", "get", "secrets.v1.", "-o", "yaml"][..],
        &["kubectl", "get", "pods,secrets", "-o", "yaml"],
        &["kubectl", "get", "Secret", "-o", "yaml"],
        &["kubectl", "get", "secret.v1", "-o", "yaml"],
        &["kubectl", "get", "pod/web", "secret/db", "-o", "yaml"],
    ] {
        held(&t, line, 75);
    }
    // `describe` shows a secret's keys and sizes, never its values: a read (tests/corpus/RUBRIC.md).
    t.run("kubectl", &["describe", "deploy,SECRETS.v1."]).output().status(0);
    t.forget("kubectl");
    // Reads of other resources, however spelt, still run.
    for line in [&["get", "pods,deploy.v1.apps"][..], &["get", "all"], &["get", "po/web", "svc/api"]] {
        t.run("kubectl", line).output().status(0);
        assert!(t.ran("kubectl"), "{line:?}");
        t.forget("kubectl");
    }
}

// See: docs/bypasses.md#b26
#[test]
fn b26_raw_api_paths_are_decided_as_the_resource_they_name() {
    let t = shipped();
    for path in [
        "/api/v1/namespaces/prod",
        "/api/v1/namespaces/prod/",
        "/api/v1/namespaces/x/../prod?gracePeriodSeconds=0",
        "/api/v1/namespaces/prod/finalize",
    ] {
        held(&t, &["kubectl", "delete", "--raw", path], 77);
        held(&t, &["kubectl", "replace", &format!("--raw={path}"), "-f", "ns.json"], 75);
    }
    held(&t, &["kubectl", "delete", "--raw", "/api/v1/namespaces/pr%6fd"], 75);
    held(&t, &["kubectl", "get", "--raw", "/api/v1/namespaces/prod/secrets/db"], 75);
}

/// Held: the decision for a command line under the shipped policy is not allow.
fn not_allowed(t: &Test, argv: &[&str]) {
    let mut args = vec!["check", "--json", "--"];
    args.extend_from_slice(argv);
    let json = t.guardsh(&args).output().json();
    assert_ne!(json["decision"], "allow", "{argv:?}: {json}");
}

// See: docs/bypasses.md#d12 (found by an adversarial review of the posture and shared forms)
#[test]
fn d12_forms_and_additive_statements_hold_what_runs_anyway() {
    let t = Test::new().example_rules();
    // gh: `-h` is `--hostname` in the commands that declare it, not help.
    not_allowed(&t, &["gh", "auth", "token", "-h", "github.com"]);
    not_allowed(&t, &["gh", "auth", "token", "-h=github.com"]);
    not_allowed(&t, &["gh", "auth", "status", "--show-token", "-h", "github.com"]);
    not_allowed(&t, &["gh", "auth", "refresh", "-h", "github.com", "-s", "delete_repo"]);
    // helm runs a post-renderer before a dry run stops.
    not_allowed(&t, &["helm", "install", "x", "./chart", "--dry-run", "--post-renderer", "./evil.sh"]);
    not_allowed(&t, &["helm", "upgrade", "x", "./chart", "--dry-run=server", "--post-renderer", "evil"]);
    // A TTL index deletes documents.
    not_allowed(&t, &["mongosh", "--eval", "db.users.createIndex({createdAt:1}, {expireAfterSeconds:1})"]);
    not_allowed(&t, &["mongosh", "--eval", "db.users.createIndexes([{createdAt:1}], {expireAfterSeconds:0})"]);
    // git's last flag wins, and a dry-run push to a local path starts its receive-pack.
    not_allowed(&t, &["git", "push", "--dry-run", "--no-dry-run", "origin", ":main"]);
    not_allowed(&t, &["git", "clean", "--dry-run", "-ffdx", "--no-dry-run"]);
    not_allowed(
        &t,
        &["git", "push", "--dry-run", "--receive-pack=touch /tmp/pwned; git-receive-pack", "../r.git", "HEAD:x"],
    );
    // CONFIG GET takes several parameters.
    not_allowed(&t, &["redis-cli", "config", "get", "maxmemory", "requirepass"]);
    // The real forms still run.
    for argv in [
        &["gh", "auth", "token", "--help"][..],
        &["helm", "install", "x", "./chart", "--dry-run"],
        &["git", "push", "--dry-run", "origin", "main"],
        &["kubectl", "delete", "ns", "staging", "--dry-run=client"],
    ] {
        let mut args = vec!["check", "--json", "--"];
        args.extend_from_slice(argv);
        assert_eq!(t.guardsh(&args).output().json()["decision"], "allow", "{argv:?}");
    }
}
