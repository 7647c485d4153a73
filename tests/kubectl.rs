//! The real kubectl through its shim: a client-only read runs it for real, and deletes are held
//! before it starts (no cluster is needed to see that it never ran).
//!
//! `.ci/run` installs kubectl (Debian's kubernetes-client) when missing; elsewhere the test is
//! skipped, with a message, when there is no kubectl on PATH.

use std::path::PathBuf;

use crate::support::Test;

fn real_kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("kubectl")).find(|p| p.is_file())?.canonicalize().ok()
}

#[test]
fn deletes_are_held_before_the_real_kubectl_starts() {
    let Some(kubectl) = real_kubectl() else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide kubectl (.ci/run installs it)");
        eprintln!("skipping the real-kubectl test: no kubectl on PATH");
        return;
    };
    let t = Test::new().example_rules();
    t.shim("kubectl");
    std::os::unix::fs::symlink(&kubectl, t.real.join("kubectl")).expect("symlink the real kubectl");
    // A kubeconfig pointing at nothing: anything that reached the real kubectl and talked to a
    // cluster would fail with kubectl's own connection error.
    std::fs::write(
        t.home.join("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: t}\n",
    )
    .expect("write kubeconfig");
    let kc = t.home.join("kubeconfig");
    t.run("kubectl", &["version", "--client"]).env("KUBECONFIG", &kc).output().status(0).stdout_has("Client Version");
    for line in
        [&["delete", "ns", "prod"][..], &["-n", "prod", "delete", "deploy", "api"], &["delete", "namespace/prod"]]
    {
        for ci in [true, false] {
            let mut run = t.run("kubectl", line).env("KUBECONFIG", &kc);
            if ci {
                run = run.env("CI", "true");
            }
            let held = run.output();
            assert!(matches!(held.code(), Some(75 | 77)), "kubectl {line:?}: {}", held.stderr());
            assert!(!held.stderr().contains("127.0.0.1:1"), "the real kubectl ran: {}", held.stderr());
        }
    }
    // The same kubeconfig does reach kubectl's connection error when kubectl runs.
    let direct = std::process::Command::new(&kubectl)
        .args(["get", "ns", "--request-timeout=2s"])
        .env("KUBECONFIG", &kc)
        .output()
        .expect("run kubectl");
    assert!(String::from_utf8_lossy(&direct.stderr).contains("127.0.0.1:1"), "the check above would be vacuous");
}
