//! Signature approvals: SSH keys generated at test time, tokens exported, signed and imported,
//! CI tokens, and every way a token must fail.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{Detached, Test};

const POLICY: &str = r#"
[settings]
approval = "signature"
approval_timeout = 60

[tools.kubectl]
default = "ask"

[[rule]]
id = "k-delete"
tool = "kubectl"
action = "ask"
reason = "deletes resources"
args = ["delete"]
"#;

/// Generates a key pair; returns the private key's path and the public key line.
fn keygen(t: &Test, name: &str, kind: &str) -> (PathBuf, String) {
    let dir = t.home.join(".ssh");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let key = dir.join(name);
    let mut r = t.command("ssh-keygen");
    r.cmd.args(["-q", "-t", kind, "-N", "", "-C", name, "-f"]).arg(&key);
    r.output().status(0);
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    (key, public.trim().to_string())
}

/// A world in signature mode whose allowed signer is `id_ed25519`.
fn signed() -> (Test, PathBuf) {
    let t = Test::new().rules(POLICY).tools(&["kubectl"]);
    let (key, public) = keygen(&t, "id_ed25519", "ed25519");
    let (_, ecdsa) = keygen(&t, "id_ecdsa", "ecdsa");
    std::fs::write(
        t.config_dir().join("allowed_signers"),
        format!("human@example namespaces=\"guardsh-approval\" {public}\nops@example {ecdsa}\n"),
    )
    .expect("allowed_signers");
    (t, key)
}

fn write(t: &Test, name: &str, text: &str) -> PathBuf {
    let p = t.root.path().join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Runs `kubectl delete pod x` from another terminal; it waits for a signed approval. Returns
/// the waiting command and its request id.
fn ask(t: &Test) -> (Detached, String) {
    let before = t.guardsh(&["pending", "--json"]).output().json().as_array().map_or(0, Vec::len);
    let d = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(before + 1).pop().expect("id");
    (d, id)
}

const WAIT: Duration = Duration::from_secs(20);

fn token_for(t: &Test, request_json: &str, key: &Path) -> String {
    let req = write(t, "request.json", request_json);
    t.guardsh(&["sign", "--key", s(key), s(&req)]).output().status(0).stdout()
}

#[test]
fn a_signed_token_approves_exactly_that_request_once() {
    let (t, key) = signed();
    let (asked, id) = ask(&t);
    let request = t.guardsh(&["export", &id]).output().status(0).stdout();
    let token = token_for(&t, &request, &key);
    let token_file = write(&t, "token.json", &token);
    t.guardsh(&["import", s(&token_file)]).output().status(0).stdout_has("signed by human@example");
    assert_eq!(asked.wait(WAIT), Some(0), "{}", asked.stderr());
    assert!(t.ran("kubectl"));
    let approved = t.audit_records().into_iter().find(|r| r["outcome"] == "approved").expect("audited");
    assert!(approved["by"]["key"].as_str().is_some_and(|k| k.starts_with("SHA256:")), "{approved}");

    // An agent deletes the "used" marker and replays the token: the approval was for the process
    // that waited for it, which is gone, so nothing runs again.
    t.forget("kubectl");
    t.guardsh(&["import", s(&token_file)]).output().status(1).stderr_has("was already used");
    std::fs::remove_file(t.state_dir().join(format!("requests/{id}.consumed"))).expect("the marker existed");
    t.guardsh(&["import", s(&token_file)]).output().status(0).stdout_has("is already approved");
    assert_eq!(t.audited("approved"), 1, "a re-import adds no approval");
    t.run("kubectl", &["delete", "pod", "x"]).env("GUARDSH_MODE", "ci").output().status(77);
    let (again, second) = ask(&t);
    assert_ne!(second, id);
    assert_eq!(again.wait(Duration::from_millis(300)), None, "the re-run waits for its own approval");
    t.guardsh(&["deny", &second, "--reason", "no"]).output().status(0);
    assert_eq!(again.wait(WAIT), Some(77));
    assert!(!t.ran("kubectl"));
}

#[test]
fn an_unsigned_approval_written_into_the_store_is_refused() {
    let (t, _) = signed();
    let (asked, id) = ask(&t);
    // What an agent running as the user could do: write the decision file itself.
    let request: serde_json::Value =
        serde_json::from_str(&t.guardsh(&["export", &id]).output().stdout()).expect("json");
    let forged = serde_json::json!({
        "outcome": "approved", "digest": request["digest"], "reason": null,
        "by": {"uid": 0, "pid": 1, "tty": "/dev/pts/9", "key": null, "principal": null},
        "time": 1, "signature": null
    });
    std::fs::write(t.state_dir().join(format!("requests/{id}.decision")), forged.to_string()).expect("forge");
    assert_eq!(asked.wait(WAIT), Some(75));
    assert!(asked.stderr().contains("is not signed"), "{}", asked.stderr());
    assert!(!t.ran("kubectl"));
}

#[test]
fn approving_at_the_terminal_signs_with_the_humans_key() {
    let t = Test::new().rules(POLICY).tools(&["kubectl"]);
    let (_, public) = keygen(&t, "id_ed25519", "ed25519");
    std::fs::write(t.config_dir().join("allowed_signers"), format!("human@example {public}\n")).expect("write");
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);
    t.approve(&id);
    assert_eq!(asked.wait(WAIT), Some(0), "{}", asked.stderr());
    assert!(t.ran("kubectl"));
}

#[test]
fn tokens_that_must_not_approve_are_refused_with_their_reason() {
    let (t, key) = signed();
    let (_asked, id) = ask(&t);
    let request = t.guardsh(&["export", &id]).output().status(0).stdout();
    let good = token_for(&t, &request, &key);
    let good_json: serde_json::Value = serde_json::from_str(&good).expect("json");

    // Signs the request's approval message with `key` in `namespace`, as ssh-keygen would for
    // anyone (guardsh sign itself refuses a key that is not an allowed signer).
    let raw_sign = |key: &Path, namespace: &str| {
        let digest = good_json["request"]["digest"].as_str().expect("digest");
        let msg = write(&t, "message", &format!("guardsh-approval-v1\n{digest}\n"));
        let _ = std::fs::remove_file(msg.with_extension("sig"));
        let mut r = t.command("ssh-keygen");
        r.cmd.args(["-Y", "sign", "-q", "-n", namespace, "-f"]).arg(key).arg(&msg);
        r.output().status(0);
        let mut token = good_json.clone();
        token["signature"] = serde_json::json!(std::fs::read_to_string(msg.with_extension("sig")).expect("sig"));
        token.to_string()
    };

    // A signature by a key that is not an allowed signer.
    let (stranger, _) = keygen(&t, "stranger", "ed25519");
    let unknown = raw_sign(&stranger, "guardsh-approval");

    // The request altered after signing: another argument.
    let mut altered = good_json.clone();
    altered["request"]["argv_hex"][3] = serde_json::json!("79");
    // The signature of another request, by an allowed key.
    let other = t.guardsh(&["request", "--", "kubectl", "delete", "pod", "other"]).output().status(0).stdout();
    let mut swapped = good_json.clone();
    swapped["signature"] =
        serde_json::from_str::<serde_json::Value>(&token_for(&t, &other, &key)).expect("json")["signature"].clone();

    // A signature over the right message in another namespace.
    let other_ns = raw_sign(&key, "git");

    // An ECDSA key listed as a signer is fine (and the namespaces option of the ed25519 line
    // does not apply to it).
    let ecdsa = token_for(&t, &request, &t.home.join(".ssh/id_ecdsa"));

    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("unknown signer", unknown.clone(), Some("is not in the allowed signers file")),
        ("altered request", altered.to_string(), Some("altered after it was made")),
        ("signature of another request", swapped.to_string(), Some("does not match the request")),
        ("wrong namespace", other_ns, Some("namespace \"git\"")),
        ("not a token", "{}".to_string(), Some("not a guardsh approval token")),
        ("ecdsa signer", ecdsa, None),
    ];
    for (what, token, want) in cases {
        let f = write(&t, "case.json", &token);
        let out = t.guardsh(&["import", s(&f)]).output();
        match want {
            Some(fragment) => {
                assert_eq!(out.code(), Some(1), "{what}: {}", out.stdout());
                assert!(out.stderr().contains(fragment), "{what}: {}", out.stderr());
            }
            None => assert_eq!(out.code(), Some(0), "{what}: {}", out.stderr()),
        }
    }
    assert!(t.audited("refused") >= 3);

    // Expired: a request that lives a few seconds (long enough to sign on a loaded CI machine),
    // signed in time and imported too late.
    let short =
        t.guardsh(&["request", "--ttl", "5", "--", "kubectl", "delete", "pod", "late"]).output().status(0).stdout();
    let late = token_for(&t, &short, &key);
    std::thread::sleep(Duration::from_millis(6100));
    let f = write(&t, "late.json", &late);
    t.guardsh(&["import", s(&f)]).output().status(1).stderr_has("has expired");
}

#[test]
fn in_ci_a_token_runs_exactly_its_command_once() {
    let (t, key) = signed();
    let request =
        t.guardsh(&["request", "--ttl", "600", "--", "kubectl", "delete", "pod", "x"]).output().status(0).stdout();
    let token = write(&t, "ci-token.json", &token_for(&t, &request, &key));
    let ci = |args: &[&str], token: Option<&Path>| {
        let mut r = t.run("kubectl", args).env("CI", "true");
        if let Some(tk) = token {
            r = r.env("GUARDSH_APPROVAL_FILE", tk);
        }
        r.output()
    };
    ci(&["delete", "pod", "x"], None).status(77);
    ci(&["delete", "pod", "y"], Some(&token))
        .status(77)
        .stderr_has("is for another command: it is for `kubectl delete pod x`, and this is `kubectl delete pod y`");
    let elsewhere = t.root.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("mkdir");
    t.run("kubectl", &["delete", "pod", "x"])
        .env("CI", "true")
        .env("GUARDSH_APPROVAL_FILE", &token)
        .cwd(&elsewhere)
        .output()
        .status(77)
        .stderr_has(&format!("it was made in {}, and this runs in {}", t.cwd.display(), elsewhere.display()));
    assert!(!t.ran("kubectl"));
    ci(&["delete", "pod", "x"], Some(&token)).status(0);
    assert_eq!(t.saw_args("kubectl").expect("ran"), ["delete", "pod", "x"]);
    t.forget("kubectl");
    ci(&["delete", "pod", "x"], Some(&token)).status(77).stderr_has("already used");
    assert!(!t.ran("kubectl"));
    assert_eq!(t.audited("approved_by_token"), 1);
}

#[test]
fn check_config_and_doctor_say_when_signature_approvals_cannot_work() {
    let (t, _) = signed();
    t.guardsh(&["check-config"]).output().status(0).stdout_has("approval: signature, 2 allowed signer(s)");
    std::fs::remove_file(t.config_dir().join("allowed_signers")).expect("rm");
    t.guardsh(&["check-config"]).output().status(78).stderr_has("cannot read the allowed signers file");
    t.guardsh(&["doctor"]).output().status(1).stdout_has("PROBLEM: cannot read the allowed signers file");
}

/// a11: `guardsh sign` (and `approve` in signature mode) ran the `ssh-keygen` first on PATH; a
/// wrapper the agent put in `~/.local/bin` got a request of its own signed with the human's key.
#[test]
fn signing_never_runs_an_ssh_keygen_found_on_path() {
    let (t, key) = signed();
    let (_asked, id) = ask(&t);
    let request = t.guardsh(&["export", &id]).output().status(0).stdout();
    let req = write(&t, "request.json", &request);
    let bin = t.home.join(".local/bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let marker = t.root.path().join("wrapper-ran");
    crate::support::write_executable(
        &bin.join("ssh-keygen"),
        &format!("#!/bin/sh\ntouch '{}'\nexec /usr/bin/ssh-keygen \"$@\"\n", marker.display()),
    );
    let path = std::env::join_paths([&bin, &t.shims, &t.real, &t.sysbin]).expect("PATH");
    t.guardsh(&["sign", "--key", s(&key), s(&req)]).env("PATH", path).output().status(0).stdout_has("SSH SIGNATURE");
    assert!(!marker.exists(), "guardsh ran the ssh-keygen it found on PATH");
}

/// A kubeconfig whose current context is `context`, in `home`.
fn kubeconfig(home: &Path, context: &str) {
    std::fs::create_dir_all(home.join(".kube")).expect("mkdir");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {context}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\nclusters:\n- name: {context}\n  cluster:\n    server: https://{context}.example:6443\n"
    );
    std::fs::write(home.join(".kube/config"), text).expect("kubeconfig");
}

/// Issue 16: a CI token binds what decides the target, not where HOME is. Made on one "machine"
/// (one HOME, one XDG_CONFIG_HOME), it runs on another with the same kubeconfig; a token made for
/// context staging never runs against prod, whether prod comes from the runner's HOME or from
/// KUBECONFIG.
#[test]
fn a_ci_token_runs_under_another_home_but_never_against_another_target() {
    let (t, key) = signed();
    kubeconfig(&t.home, "staging");
    let request =
        t.guardsh(&["request", "--ttl", "600", "--", "kubectl", "delete", "pod", "x"]).output().status(0).stdout();
    assert!(request.contains("current-context staging, sha256:"), "{request}");
    assert!(!request.contains(&format!("\"{}\"", t.home.display())), "HOME itself is not bound: {request}");
    let token = write(&t, "ci-token.json", &token_for(&t, &request, &key));

    // The CI runner: another HOME and XDG directories, with guardsh's policy and signers.
    let runner = t.root.path().join("runner");
    let config = runner.join(".config/guardsh");
    std::fs::create_dir_all(&config).expect("mkdir");
    for f in ["rules.toml", "allowed_signers"] {
        std::fs::copy(t.config_dir().join(f), config.join(f)).expect("copy");
    }
    let on_runner = |extra: Option<(&str, &Path)>| {
        let mut r = t
            .run("kubectl", &["delete", "pod", "x"])
            .env("CI", "true")
            .env("GUARDSH_APPROVAL_FILE", &token)
            .env("HOME", &runner)
            .env("XDG_CONFIG_HOME", runner.join(".config"))
            .env("XDG_STATE_HOME", runner.join(".local/state"));
        if let Some((k, v)) = extra {
            r = r.env(k, v);
        }
        r.output()
    };

    // The attack: the runner's kubeconfig is for prod.
    kubeconfig(&runner, "prod");
    on_runner(None).status(77).stderr_has("kubeconfig");
    // Or KUBECONFIG names a prod kubeconfig somewhere else.
    let elsewhere = t.root.path().join("elsewhere");
    kubeconfig(&elsewhere, "prod");
    on_runner(Some(("KUBECONFIG", &elsewhere.join(".kube/config")))).status(77);
    // No kubeconfig at all is another target too.
    std::fs::remove_file(runner.join(".kube/config")).expect("rm");
    on_runner(None).status(77);
    assert!(!t.ran("kubectl"));

    // The same kubeconfig, found through the runner's HOME or named by KUBECONFIG: it runs, once.
    let staging = t.root.path().join("staging-kubeconfig");
    std::fs::copy(t.home.join(".kube/config"), &staging).expect("copy");
    on_runner(Some(("KUBECONFIG", &staging))).status(0);
    assert!(t.ran("kubectl"));
    t.forget("kubectl");
    kubeconfig(&runner, "staging");
    on_runner(None).status(77).stderr_has("already used");

    // The audit log says the run was CI mode, approved by the token, and by whom.
    let tail = t
        .guardsh(&["audit", "tail", "--decision", "approved_by_token"])
        .env("XDG_STATE_HOME", runner.join(".local/state"))
        .output()
        .status(0)
        .stdout();
    assert!(tail.contains("ci          deny") && tail.contains("by signed by human@example"), "{tail}");
    let ran = t
        .guardsh(&["audit", "tail", "--decision", "exec"])
        .env("XDG_STATE_HOME", runner.join(".local/state"))
        .output()
        .status(0)
        .stdout();
    assert!(ran.contains("ci          deny>approved  exec"), "{ran}");
}
