//! Adversarial review of the posture, shared forms and additive SQL (review-posture branch).
//! Each case is a command line the shipped rules.toml.example ALLOWS today although the real
//! tool prints a secret, runs code or deletes data. They fail until fixed.

use std::process::Command;

fn decision(argv: &[&str]) -> String {
    let home = std::env::temp_dir().join(format!("guardsh-review-posture-{}", std::process::id()));
    let cfg = home.join(".config/guardsh");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/rules.toml.example"), cfg.join("rules.toml")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_guardsh"))
        .args(["check", "--json", "--"])
        .args(argv)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".state"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let at = text.find("\"decision\":\"").expect("json with a decision") + 12;
    text[at..].split('"').next().unwrap().to_string()
}

#[track_caller]
fn not_allowed(argv: &[&str]) {
    assert_ne!(decision(argv), "allow", "{argv:?} is allowed");
}

/// gh: `-h` is `--hostname` (`-h=` in the gh catalog rows), not help, for auth token/status/
/// refresh/login, config get/set, repo create/edit (homepage). cobra drops the help shorthand
/// when a command declares its own `-h`.
#[test]
fn gh_hostname_short_flag_is_not_help() {
    not_allowed(&["gh", "auth", "token", "-h", "github.com"]);
    not_allowed(&["gh", "auth", "token", "-h=github.com"]);
    not_allowed(&["gh", "auth", "status", "--show-token", "-h", "github.com"]);
    not_allowed(&["gh", "auth", "refresh", "-h", "github.com", "-s", "delete_repo"]);
}

/// helm: a dry run still renders the chart and runs the post-renderer (pkg/action/install.go
/// calls renderResources with i.PostRenderer before the dry-run return); --dry-run=server also
/// runs the templates' `lookup` against the cluster (secrets into the printed manifest).
#[test]
fn helm_dry_run_still_runs_the_post_renderer() {
    not_allowed(&["helm", "install", "x", "./chart", "--dry-run", "--post-renderer", "./evil.sh"]);
    not_allowed(&["helm", "upgrade", "x", "./chart", "--dry-run=server", "--post-renderer", "evil"]);
}

/// mongosh: a TTL index makes the server delete every document older than the threshold.
#[test]
fn mongosh_ttl_index_is_not_additive() {
    not_allowed(&["mongosh", "--eval", "db.users.createIndex({createdAt:1}, {expireAfterSeconds:1})"]);
    not_allowed(&["mongosh", "--eval", "db.users.createIndexes([{createdAt:1}], {expireAfterSeconds:0})"]);
}

/// git: the pack's `git-dry-run` exception only asks that `--dry-run` be present; git's
/// parse-options accepts `--no-dry-run` and the last one wins (a real push deleting `main`), and
/// a dry-run push to a local path still runs `--receive-pack`/`--exec` locally.
#[test]
fn git_dry_run_exception_is_undone_by_no_dry_run_and_receive_pack() {
    not_allowed(&["git", "push", "--dry-run", "--no-dry-run", "origin", ":main"]);
    not_allowed(&["git", "clean", "--dry-run", "-ffdx", "--no-dry-run"]);
    not_allowed(&["git", "push", "--dry-run", "--receive-pack=touch /tmp/pwned; git-receive-pack", "../r.git", "HEAD:x"]);
}

/// redis: CONFIG GET takes several parameters since Redis 7.0; the exception matches the first.
#[test]
fn redis_config_get_of_a_setting_then_a_secret() {
    not_allowed(&["redis-cli", "config", "get", "maxmemory", "requirepass"]);
    not_allowed(&["redis-cli", "config", "get", "maxmemory", "masterauth"]);
}
