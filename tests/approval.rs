//! Human approvals, end to end: a requester in its own session, a human at a real pseudo-terminal
//! in another, and everything that must not count as a human.

use std::time::Duration;

use expectrl::Expect;

use crate::support::{Test, guardsh};

const WAIT: Duration = Duration::from_secs(30);

fn policy(settings: &str) -> String {
    format!(
        "[settings]\n{settings}\n[tools.kubectl]\ndefault = \"ask\"\n\n[[rule]]\nid = \"k-read\"\ntool = \"kubectl\"\naction = \"allow\"\nreason = \"read\"\nargs = [\"get\"]\n\n[[rule]]\nid = \"k-delete\"\ntool = \"kubectl\"\naction = \"ask\"\nreason = \"deletes resources\"\nargs = [\"delete\"]\n"
    )
}

fn waiting() -> Test {
    Test::new().rules(&policy("approval_timeout = 60")).tools(&["kubectl"])
}

#[test]
fn approval_from_another_terminal_runs_the_command_once() {
    let t = waiting();
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);
    assert_eq!(asked.wait(Duration::from_millis(200)), None, "the command waits for the human");
    assert!(!t.ran("kubectl"));

    t.approve(&id);
    assert_eq!(asked.wait(WAIT), Some(0), "{}", asked.stderr());
    assert_eq!(t.saw_args("kubectl").expect("ran"), ["delete", "pod", "x"]);
    let err = asked.stderr();
    assert!(err.contains(&format!("request {id} is waiting for a human")), "{err}");
    assert!(!err.contains("guardsh approve"), "never a runnable approval command: {err}");
    assert_eq!((t.audited("requested"), t.audited("approved"), t.audited("exec")), (1, 1, 1));
    let approved = t.audit_records().into_iter().find(|r| r["outcome"] == "approved").expect("record");
    assert_eq!(approved["request"], id.as_str());
    assert!(approved["by"]["tty"].as_str().is_some_and(|tty| tty.starts_with("/dev/pts/")), "{approved}");

    // The approval is used up: the same command asks again.
    t.forget("kubectl");
    let again = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let second = t.wait_for_pending(1).remove(0);
    assert_ne!(second, id);
    t.guardsh(&["deny", &second, "--reason", "once was enough"]).output().status(0);
    assert_eq!(again.wait(WAIT), Some(77));
    assert!(!t.ran("kubectl"));
}

#[test]
fn a_denial_and_its_reason_reach_the_agent() {
    let t = waiting();
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);
    t.guardsh(&["deny", &id, "--reason", "not on a Friday"]).output().status(0).stdout_has("denied request");
    assert_eq!(asked.wait(WAIT), Some(77));
    assert!(
        asked.stderr().contains("a human denied request") && asked.stderr().contains("not on a Friday"),
        "{}",
        asked.stderr()
    );
    assert!(!t.ran("kubectl"));
    assert_eq!(t.audited("denied_by_human"), 1);
}

#[test]
fn a_human_can_deny_at_the_prompt() {
    let t = waiting();
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);
    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    s.expect("to approve").expect("prompt");
    s.send_line("deny").expect("type");
    s.expect("Reason").expect("reason prompt");
    s.send_line("use staging").expect("type");
    s.expect(format!("denied request {id}")).expect("denied");
    assert_eq!(asked.wait(WAIT), Some(77));
    assert!(asked.stderr().contains("use staging"));
}

#[test]
fn the_wrong_code_leaves_the_request_pending() {
    let t = waiting();
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);
    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    let shown = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("prompt");
    let code = String::from_utf8_lossy(shown.get(1).expect("code")).into_owned();
    // Three wrong answers (issue 16: retry, a bounded number of times, never shown the code).
    for _ in 0..3 {
        s.send_line("yes").expect("type");
    }
    let after = s.expect("left pending").expect("not approved");
    assert!(!String::from_utf8_lossy(after.before()).contains(&code), "the code is not revealed");
    assert_eq!(t.wait_for_pending(1), std::slice::from_ref(&id));
    t.approve(&id);
    assert_eq!(asked.wait(WAIT), Some(0));
}

#[test]
fn approve_is_refused_without_a_terminal_inside_guardsh_run_and_from_the_agents_own_tree() {
    let t = waiting();
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);

    // No controlling terminal (a new session, and stdin from nowhere).
    let mut r = t.command("/usr/bin/setsid");
    r.cmd.args(["-w", guardsh(), "approve", &id]);
    r.output().status(77).stderr_has("needs a terminal");

    // A terminal, but inside a guardsh run session.
    let mut s = t.in_terminal("/usr/bin/env", &["GUARDSH_SESSION=abc", guardsh(), "approve", &id]);
    s.expect("guardsh run session").expect("refused");

    // The agent runs the command and then approves it from its own shell (same session).
    let t2 = waiting();
    let script = format!("kubectl delete pod y & sleep 1; {g} approve", g = guardsh());
    let mut s = t2.in_terminal("/bin/sh", &["-c", &script]);
    s.expect("same session").expect("refused");

    // The agent starts the command under setsid, then approves from its own terminal.
    let t3 = waiting();
    let script = format!("setsid kubectl delete pod z & sleep 1; {g} approve", g = guardsh());
    let mut s = t3.in_terminal("/bin/sh", &["-c", &script]);
    s.expect("same terminal").expect("refused");

    // The agent orphans the command (so nothing of its own is above it), then approves from a
    // pseudo-terminal it creates itself.
    let t4 = waiting();
    let script = format!(
        "( (sleep 0.3; exec kubectl delete pod o) & ); sleep 1; script -qc '{g} approve' /dev/null",
        g = guardsh()
    );
    let mut s = t4.in_terminal("/bin/sh", &["-c", &script]);
    s.expect("on a terminal created by a program").expect("refused");

    // (When the agent's shell exits, its waiting command is hung up on and withdraws.)
    for world in [&t, &t2, &t3, &t4] {
        assert_eq!(world.audited("approved"), 0);
        assert!(!world.ran("kubectl"));
    }
    assert_eq!((t2.audited("refused"), t3.audited("refused"), t4.audited("refused")), (1, 1, 1));
    // The request is untouched by the refused attempts: a human can still approve it.
    t.approve(&id);
    assert_eq!(asked.wait(WAIT), Some(0));
}

#[test]
fn an_unanswered_request_expires() {
    let t = Test::new().rules(&policy("approval_timeout = 1")).tools(&["kubectl"]);
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    assert_eq!(asked.wait(WAIT), Some(75));
    assert!(asked.stderr().contains("expired"), "{}", asked.stderr());
    assert_eq!(t.audited("expired"), 1);
    assert!(!t.ran("kubectl"));
}

#[test]
fn interrupting_the_wait_withdraws_the_request() {
    let t = waiting();
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let j = {
        t.wait_for_pending(1);
        t.guardsh(&["pending", "--json"]).output().json()
    };
    let pid = j[0]["requester"]["pid"].as_i64().expect("pid");
    let id = j[0]["id"].as_str().expect("id").to_string();
    t.command("sh").arg_os("-c").arg_os(format!("kill -INT {pid}")).output().status(0);
    assert_eq!(asked.wait(WAIT), Some(130));
    assert!(asked.stderr().contains("withdrawn"));
    t.guardsh(&["pending"]).output().status(0).stdout_has("no requests are waiting");
    // A withdrawn request cannot be approved afterwards.
    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    s.expect("was already withdrawn").expect("refused");
    assert!(!t.ran("kubectl"));
}

#[test]
fn no_wait_mode_lets_an_identical_rerun_use_the_approval_exactly_once() {
    let t = Test::new().rules(&policy("wait = false")).tools(&["kubectl"]);
    // The agent runs in its own terminal (a child of this test process would share an ancestor
    // with the approving terminal, and be refused).
    let first = t.run_detached("kubectl", &["delete", "pod", "x"]);
    assert_eq!(first.wait(WAIT), Some(75));
    assert!(first.stderr().contains("run exactly the same command again"), "{}", first.stderr());
    let id = t.wait_for_pending(1).remove(0);
    // A different command does not match the approval.
    t.run("kubectl", &["delete", "pod", "other"]).output().status(75);
    t.approve(&id);

    // Identical re-runs race for the approval: exactly one runs.
    let children: Vec<_> = (0..6)
        .map(|_| {
            let mut r = t.run("kubectl", &["delete", "pod", "x"]);
            r.cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
            r.cmd.spawn().expect("spawn")
        })
        .collect();
    let codes: Vec<i32> = children.into_iter().map(|mut c| c.wait().expect("wait").code().unwrap_or(-1)).collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 0 || *c == 75), "{codes:?}");
    assert_eq!(t.audited("exec"), 1);
}

#[test]
fn an_agent_killing_the_waiting_command_withdraws_its_request() {
    let t = waiting();
    let _asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    t.wait_for_pending(1);
    let j = t.guardsh(&["pending", "--json"]).output().json();
    let (pid, id) = (j[0]["requester"]["pid"].as_i64().expect("pid"), j[0]["id"].as_str().expect("id").to_string());
    // An agent's tool timeout kills the waiting shim outright. (Before issue 19 an approval given
    // now served an identical re-run; now a request belongs to the processes that wait for it.)
    t.command("sh").arg_os("-c").arg_os(format!("kill -KILL {pid}")).output().status(0);
    std::thread::sleep(Duration::from_millis(100));
    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    s.expect(format!("request {id} was already withdrawn")).expect("refused");
    t.run("kubectl", &["delete", "pod", "x"]).env("GUARDSH_APPROVAL_TIMEOUT", "1").output().status(75);
    assert!(!t.ran("kubectl"));
}

#[test]
fn the_request_shows_the_command_with_escapes_and_what_it_will_receive() {
    let t = Test::new()
        .rules(
            &policy("approval_timeout = 60")
                .replace("reason = \"deletes resources\"", "reason = \"deletes resources\"\ngrant = []"),
        )
        .tools(&["kubectl"]);
    let _asked = t.run_detached("kubectl", &["delete", "pod", "evil\u{1b}[2J\u{202e}name"]);
    let id = t.wait_for_pending(1).remove(0);
    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    let shown = s.expect("to approve").expect("prompt");
    let screen = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(screen.contains(r"kubectl delete pod $'evil\x1b[2J\u202ename'"), "{screen}");
    // guardsh's own colours (issue 16) aside, no escape reaches the terminal.
    let mut plain = screen.clone();
    for own in ["\x1b[1m", "\x1b[33m", "\x1b[0m"] {
        plain = plain.replace(own, "");
    }
    assert!(!plain.contains('\u{1b}') && !plain.contains('\u{202e}'), "{screen:?}");
    for want in ["rule k-delete: deletes resources", "receives:  no credentials", "asked by:", "runs:"] {
        assert!(screen.contains(want), "lacks {want:?}: {screen}");
    }
}

#[test]
fn fifty_concurrent_requests_are_each_resolved_as_decided() {
    let t = waiting();
    let asked: Vec<_> = (0..50).map(|i| t.run_detached("kubectl", &["delete", "pod", &format!("p{i}")])).collect();
    let ids = t.wait_for_pending(50);
    let j = t.guardsh(&["pending", "--json"]).output().json();
    for r in j.as_array().expect("array") {
        let id = r["id"].as_str().expect("id");
        let pod = r["argv"][3].as_str().expect("pod").to_string();
        let n: usize = pod[1..].parse().expect("n");
        if n.is_multiple_of(2) {
            t.approve(id);
        } else {
            t.guardsh(&["deny", id, "--reason", &format!("not {pod}")]).output().status(0);
        }
    }
    assert_eq!(ids.len(), 50);
    for (i, a) in asked.iter().enumerate() {
        let want = if i % 2 == 0 { 0 } else { 77 };
        assert_eq!(a.wait(WAIT), Some(want), "p{i}: {}", a.stderr());
        if want == 77 {
            assert!(a.stderr().contains(&format!("not p{i}")), "p{i} got its own reason: {}", a.stderr());
        }
    }
    assert_eq!(t.audited("exec"), 25);
}

#[test]
fn watch_shows_new_requests_with_a_bell_and_approves_them_there() {
    let t = waiting();
    let mut s = t.in_terminal(guardsh(), &["watch"]);
    s.expect("watching for requests").expect("started");
    let asked = t.run_detached("kubectl", &["delete", "pod", "watched"]);
    let found = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("prompt for the new request");
    let screen = String::from_utf8_lossy(found.before()).into_owned();
    assert!(screen.contains('\u{7}'), "rings the bell: {screen:?}");
    assert!(screen.contains("kubectl delete pod watched"), "{screen}");
    let code = String::from_utf8_lossy(found.get(1).expect("code")).into_owned();
    s.send_line(code).expect("type");
    s.expect("approved request").expect("approved");
    assert_eq!(asked.wait(WAIT), Some(0), "{}", asked.stderr());
    assert_eq!(t.saw_args("kubectl").expect("ran"), ["delete", "pod", "watched"]);
}

#[test]
fn approve_without_an_id_lets_the_human_pick_from_the_waiting_requests() {
    let t = waiting();
    let first = t.run_detached("kubectl", &["delete", "pod", "first"]);
    t.wait_for_pending(1);
    let second = t.run_detached("kubectl", &["delete", "pod", "second"]);
    t.wait_for_pending(2);
    let mut s = t.in_terminal(guardsh(), &["approve"]);
    s.expect("Which request?").expect("a list to pick from");
    s.send("\r").expect("enter picks the first");
    let found = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("prompt");
    assert!(String::from_utf8_lossy(found.before()).contains("kubectl delete pod first"));
    let code = String::from_utf8_lossy(found.get(1).expect("code")).into_owned();
    s.send_line(code).expect("type");
    s.expect("approved request").expect("approved");
    assert_eq!(first.wait(WAIT), Some(0), "{}", first.stderr());
    assert_eq!(second.wait(Duration::from_millis(300)), None, "the other one still waits");
    t.guardsh(&["pending"]).output().status(0).stdout_has("kubectl delete pod second");
}

#[test]
fn an_approval_does_not_follow_the_command_to_another_cluster() {
    // Two kubeconfigs; the approval binds what KUBECONFIG leads to (its content), not the path.
    let root = tempfile::tempdir().expect("tempdir");
    let (staging, prod) = (root.path().join("staging"), root.path().join("prod"));
    std::fs::write(&staging, "apiVersion: v1\ncurrent-context: staging\n").expect("write");
    std::fs::write(&prod, "apiVersion: v1\ncurrent-context: prod\n").expect("write");
    let t = Test::new().rules(&policy("wait = false")).tools(&["kubectl"]).env("KUBECONFIG", &staging);
    let first = t.run_detached("kubectl", &["delete", "pod", "x"]);
    assert_eq!(first.wait(WAIT), Some(75));
    let id = t.wait_for_pending(1).remove(0);
    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    let shown = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("prompt");
    assert!(
        String::from_utf8_lossy(shown.before()).contains("target:    kubeconfig: current-context staging, sha256:"),
        "the human sees the target"
    );
    let code = String::from_utf8_lossy(shown.get(1).expect("code")).into_owned();
    s.send_line(code).expect("type");
    s.expect("approved request").expect("approved");

    // The same argv, pointed at production, is another command.
    t.run("kubectl", &["delete", "pod", "x"]).env("KUBECONFIG", &prod).output().status(75);
    assert!(!t.ran("kubectl"));
    t.run("kubectl", &["delete", "pod", "x"]).output().status(0);
    assert!(t.ran("kubectl"));
}

#[test]
fn a_request_that_no_longer_matches_the_policy_is_not_shown_for_approval() {
    let t = waiting();
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);
    // What the request says about itself (rule, reason, lifetime) is checked against the policy,
    // asked afresh: here the policy changed; an agent rewriting the file looks the same.
    let t = t.rules(&policy("approval_timeout = 60").replace("deletes resources", "deletes pods in production"));
    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    s.expect("may have been tampered with").expect("refused");
    assert_eq!(t.audited("refused"), 1);
    assert_eq!(asked.wait(Duration::from_millis(200)), None, "still waiting, not approved");
    t.guardsh(&["deny", &id]).output().status(0);
    assert_eq!(asked.wait(WAIT), Some(77));
}

#[test]
fn a_damaged_decision_file_is_never_an_approval() {
    let t = Test::new().rules(&policy("approval_timeout = 2")).tools(&["kubectl"]);
    let asked = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);
    std::fs::write(t.state_dir().join(format!("requests/{id}.decision")), "{\"outcome\": \"approved\"")
        .expect("damage");
    assert_eq!(asked.wait(WAIT), Some(75));
    assert!(asked.stderr().contains("damaged decision"), "{}", asked.stderr());
    assert!(!t.ran("kubectl"));
}

/// The pid of the shim that made request `id` (from `guardsh pending --json`).
fn requester_pid(t: &Test, id: &str) -> i32 {
    let j = t.guardsh(&["pending", "--json"]).output().status(0).json();
    let r = j.as_array().expect("array").iter().find(|r| r["id"] == id).expect("the request").clone();
    r["requester"]["pid"].as_i64().expect("pid") as i32
}

/// Issue 19 D: an agent kills a command it stopped caring about; the request it left must not
/// stay approvable (an approval would run a command nobody waits for).
#[test]
fn a_request_whose_waiters_all_died_is_withdrawn_and_cannot_be_approved() {
    let t = waiting();
    let first = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let id = t.wait_for_pending(1).remove(0);
    // A second, identical command joins the same request and waits too.
    let second = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let start = std::time::Instant::now();
    let waiters = loop {
        let j = t.guardsh(&["pending", "--json"]).output().status(0).json();
        let w = j[0]["waiters"].as_u64().expect("waiters");
        if w == 2 || start.elapsed() > WAIT {
            break j;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(waiters[0]["waiters"], 2, "{waiters}");
    assert_eq!(waiters[0]["reruns"], false);
    assert!(waiters[0]["waited_secs"].as_u64().is_some());
    let text = t.guardsh(&["pending"]).output().status(0).stdout();
    assert!(text.contains("2 processes wait") && text.contains("waited "), "{text}");

    // One dies: the other still waits, and the request stays.
    let pid = requester_pid(&t, &id);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).expect("kill");
    assert_eq!(first.wait(WAIT), Some(137));
    let j = t.guardsh(&["pending", "--json"]).output().status(0).json();
    assert_eq!(j[0]["waiters"], 1, "{j}");
    assert!(t.guardsh(&["pending"]).output().status(0).stdout().contains("1 process waits"));

    // The other dies too: withdrawn, audited, gone from pending, and approve refuses it.
    let others: Vec<i32> = std::fs::read_dir(t.state_dir().join("requests"))
        .expect("store")
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_prefix(&format!("{id}.waiter-"))?.split_once('-')?.0.parse().ok())
        .filter(|p| *p != pid)
        .collect();
    assert_eq!(others.len(), 1, "{others:?}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(others[0]), nix::sys::signal::SIGKILL).expect("kill");
    assert_eq!(second.wait(WAIT), Some(137));
    t.guardsh(&["pending"]).output().status(0).stdout_has("no requests are waiting");
    let withdrawn: Vec<_> = t.audit_records().into_iter().filter(|r| r["outcome"] == "withdrawn").collect();
    assert_eq!(withdrawn.len(), 1, "{withdrawn:?}");
    assert_eq!(withdrawn[0]["request"], id.as_str());
    assert_eq!(withdrawn[0]["reason"], "every process waiting for it has ended");
    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    s.expect(format!("request {id} was already withdrawn")).expect("refused");
    assert_eq!(t.audited("approved"), 0);

    // The same command again asks afresh and runs nothing by itself.
    let again = t.run_detached("kubectl", &["delete", "pod", "x"]);
    let fresh = t.wait_for_pending(1).remove(0);
    assert_ne!(fresh, id);
    t.guardsh(&["deny", &fresh]).output().status(0);
    assert_eq!(again.wait(WAIT), Some(77));
    assert!(!t.ran("kubectl"));
}

/// A short wait for unattended agents: `GUARDSH_APPROVAL_TIMEOUT` (set by `guardsh run
/// --approval-timeout`) shortens the policy's timeout and never lengthens it; the agent is told
/// plainly that the command did not run and what to do next.
#[test]
fn a_short_approval_timeout_only_shortens_and_says_what_happens_next() {
    let t = waiting();
    let begun = std::time::Instant::now();
    let done = t.run("kubectl", &["delete", "pod", "x"]).env("GUARDSH_APPROVAL_TIMEOUT", "1s").output().status(75);
    assert!(begun.elapsed() < Duration::from_secs(20), "waited the policy's 60s");
    let err = done.stderr();
    assert!(err.contains("within 1s, so it expired: the command did not run"), "{err}");
    assert!(err.contains("Running the same command again asks a human again"), "{err}");
    assert!(!err.contains("guardsh approve"), "{err}");
    assert!(!t.ran("kubectl"));

    // Longer than the policy's, or not a duration: the policy's 2s stands.
    let t = Test::new().rules(&policy("approval_timeout = 2")).tools(&["kubectl"]);
    for value in ["1h", "soon"] {
        let begun = std::time::Instant::now();
        let done = t.run("kubectl", &["delete", "pod", "x"]).env("GUARDSH_APPROVAL_TIMEOUT", value).output().status(75);
        assert!(begun.elapsed() < Duration::from_secs(20), "{value}");
        assert!(done.stderr().contains("within 2s"), "{value}: {}", done.stderr());
    }
}

#[test]
fn guardsh_run_approval_timeout_reaches_the_agent() {
    let t = waiting();
    t.guardsh(&["install"]).output().status(0);
    let out = t.cwd.join("timeout");
    let script = format!("echo \"$GUARDSH_APPROVAL_TIMEOUT\" > {}", out.display());
    t.guardsh(&["run", "--approval-timeout", "30s", "--", "sh", "-c", &script]).output().status(0);
    assert_eq!(std::fs::read_to_string(&out).expect("written").trim(), "30");
    t.guardsh(&["run", "--approval-timeout", "soon", "--", "true"]).output().status(2);
}

/// a9: a selector whose value looks like a credential hash was hidden from the human, who
/// approved a delete that kubectl then ran against the production kubeconfig in that value.
#[test]
fn the_approver_sees_every_bound_variable_whatever_its_value_looks_like() {
    // A selector bound by value (KUBECONFIG is bound by what it leads to, approval::target).
    let prod = "sha256:/srv/prod-kubeconfig";
    let rules =
        policy("wait = false").replace("default = \"ask\"\n", "default = \"ask\"\nselectors = [\"KUBE_TARGET\"]\n");
    let t = Test::new().rules(&rules).tools(&["kubectl"]).env("KUBE_TARGET", prod);
    let asked = t.run_detached("kubectl", &["delete", "pod", "web-1"]);
    assert_eq!(asked.wait(WAIT), Some(75));
    let id = t.wait_for_pending(1).remove(0);
    t.guardsh(&["pending"]).output().status(0).stdout_has(&format!("KUBE_TARGET={prod}"));
    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    let shown = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("prompt");
    let screen = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(screen.contains(&format!("KUBE_TARGET={prod}")), "the human sees the target: {screen}");
}

/// a10: the human approved `kubectl delete -f cleanup.yaml` after seeing a Pod in it; the agent
/// then put a Namespace in the file, and kubectl read that. The approval is for the copy guardsh
/// read when the request was made, and that copy is what kubectl gets.
#[test]
fn an_approved_manifest_is_the_manifest_that_runs() {
    let t = Test::new().rules_with_pack(include_str!("../rules.toml.example")).tools(&["kubectl"]);
    // A kubectl that keeps the manifest it was given.
    let kept = t.records.join("manifest");
    crate::support::write_executable(
        &t.real.join("kubectl"),
        &format!(
            "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > '{args}'\ncat \"$3\" > '{kept}'\n",
            args = t.records.join("kubectl.args").display(),
            kept = kept.display()
        ),
    );
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n";
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n";
    std::fs::write(t.cwd.join("cleanup.yaml"), pod).expect("write");
    let asked = t.run_detached("kubectl", &["delete", "-f", "cleanup.yaml"]);
    let id = t.wait_for_pending(1).remove(0);

    let mut s = t.in_terminal(guardsh(), &["approve", &id]);
    let shown = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("prompt");
    let screen = String::from_utf8_lossy(shown.before()).into_owned();
    assert!(
        screen.contains("file cleanup.yaml") && screen.contains("Pod web-1"),
        "the human sees the objects: {screen}"
    );
    // After the human has read the screen, the agent swaps the file.
    std::fs::write(t.cwd.join("cleanup.yaml"), namespace).expect("swap");
    let code = String::from_utf8_lossy(shown.get(1).expect("code")).into_owned();
    s.send_line(code).expect("type");
    s.expect("approved request").expect("approved");
    assert_eq!(asked.wait(WAIT), Some(0), "{}", asked.stderr());

    assert_eq!(std::fs::read_to_string(&kept).expect("kubectl read a manifest"), pod, "kubectl got another manifest");
    let args = t.saw_args("kubectl").expect("ran");
    assert_eq!(args.len(), 3);
    assert!(args[2].to_string_lossy().starts_with("/dev/fd/"), "{args:?}");
    let exec = t.audit_records().into_iter().find(|r| r["outcome"] == "exec").expect("exec record");
    assert_eq!(exec["argv"][3], "cleanup.yaml");
    assert!(exec["exec_argv"][3].as_str().is_some_and(|w| w.starts_with("/dev/fd/")), "{exec}");

    // Run again with the Namespace in the file: that is `kubectl delete namespace prod`.
    t.run("kubectl", &["delete", "-f", "cleanup.yaml"]).output().status(77);
}

/// a10, no-wait mode: an approval given for one manifest does not run the same argv once the
/// file holds another.
#[test]
fn an_approval_does_not_follow_a_file_that_changed() {
    let t = Test::new().example_rules().tools(&["kubectl"]);
    std::fs::write(t.cwd.join("cleanup.yaml"), "kind: Pod\nmetadata:\n  name: web-1\n").expect("write");
    let first = t.run_detached("kubectl", &["delete", "-f", "cleanup.yaml"]);
    assert_eq!(first.wait(WAIT), Some(75));
    let id = t.wait_for_pending(1).remove(0);
    t.approve(&id);
    std::fs::write(t.cwd.join("cleanup.yaml"), "kind: Pod\nmetadata:\n  name: db-0\n").expect("swap");
    t.run("kubectl", &["delete", "-f", "cleanup.yaml"]).output().status(75);
    assert!(!t.ran("kubectl"), "the approval for web-1 ran a delete of db-0");
    std::fs::write(t.cwd.join("cleanup.yaml"), "kind: Pod\nmetadata:\n  name: web-1\n").expect("restore");
    t.run("kubectl", &["delete", "-f", "cleanup.yaml"]).output().status(0);
    assert!(t.ran("kubectl"));
}
