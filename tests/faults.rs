//! Fail-closed behaviour when things go wrong: state, PATH, the real tool, argv bytes, loops,
//! and many shims at once.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use crate::gate::world;
use std::path::Path;

use crate::support::{Test, copy_executable, guardsh, write_executable};

#[test]
fn unwritable_state_directory_stops_the_command() {
    let t = world();
    // A file where the state directory should be: no audit log can be created, even by root.
    std::fs::create_dir_all(t.state_dir().parent().expect("parent")).expect("mkdir");
    std::fs::write(t.state_dir(), "not a directory").expect("write");
    t.run("kubectl", &["get", "pods"])
        .output()
        .status(74)
        .stderr_has("cannot write the audit log")
        .stderr_has("nothing was run");
    assert!(!t.ran("kubectl"));
}

#[test]
fn audit_log_that_is_a_symlink_is_refused() {
    let t = world();
    std::fs::create_dir_all(t.state_dir()).expect("mkdir");
    std::os::unix::fs::symlink(t.root.path().join("elsewhere"), t.audit_log()).expect("symlink");
    t.run("kubectl", &["get", "pods"]).output().status(74);
    assert!(!t.ran("kubectl"));
}

#[test]
fn failing_audit_write_stops_the_command() {
    let t = world();
    t.run("kubectl", &["get", "pods"]).output().status(0);
    t.forget("kubectl");
    let size = std::fs::metadata(t.audit_log()).expect("log").len();
    // A file-size limit at the log's current size makes the next append fail with EFBIG (the
    // signal it would raise is ignored so the write itself reports the error). Works for root.
    let blocks = size.div_ceil(512); // dash counts `ulimit -f` in 512-byte blocks
    let script = format!("trap '' XFSZ; ulimit -f {blocks}; exec kubectl get pods");
    t.command("sh").arg_os("-c").arg_os(script).output().status(74).stderr_has("cannot write the audit log");
    assert!(!t.ran("kubectl"));
}

#[test]
fn shim_directory_twice_on_path_still_finds_the_real_tool() {
    let t = world();
    let path = std::env::join_paths([&t.shims, &t.shims, &t.real, &t.sysbin]).expect("PATH");
    t.run("kubectl", &["get", "pods"]).env("PATH", path).output().status(0);
    assert!(t.ran("kubectl"));
}

#[test]
fn relative_path_entries_are_never_searched() {
    let t = world();
    let planted = t.cwd.join("bin");
    std::fs::create_dir_all(&planted).expect("mkdir");
    write_executable(&planted.join("kubectl"), "#!/bin/sh\ntouch planted-ran\n");
    let path = std::env::join_paths([t.shims.clone(), "bin".into(), "".into(), t.real.clone(), t.sysbin.clone()])
        .expect("PATH");
    t.run("kubectl", &["get", "pods"]).env("PATH", path).output().status(0);
    assert!(!t.cwd.join("planted-ran").exists());
    assert!(t.ran("kubectl"));
}

#[test]
fn missing_real_tool_exits_127_with_a_clear_message() {
    let t = world();
    std::fs::remove_file(t.real.join("kubectl")).expect("rm");
    t.run("kubectl", &["get", "pods"]).output().status(127).stderr_has("the real kubectl was not found on PATH");
    // Denied commands are denied before any search.
    t.run("kubectl", &["delete", "ns", "x"]).output().status(77);
}

#[test]
fn a_copy_of_guardsh_posing_as_the_tool_cannot_loop() {
    let t = world();
    let decoy = t.root.path().join("decoy");
    std::fs::create_dir_all(&decoy).expect("mkdir");
    copy_executable(Path::new(guardsh()), &decoy.join("kubectl"));
    std::fs::remove_file(t.real.join("kubectl")).expect("rm");
    let path = std::env::join_paths([&t.shims, &decoy, &t.real, &t.sysbin]).expect("PATH");
    t.run("kubectl", &["get", "pods"]).env("PATH", path).output().status(126).stderr_has("leads back to guardsh");
}

#[test]
fn tampered_depth_counter_refuses() {
    let t = world();
    t.run("kubectl", &["get", "pods"]).env("GUARDSH_DEPTH", "banana").output().status(126);
    assert!(!t.ran("kubectl"));
}

#[test]
fn non_utf8_argv_never_matches_an_allow_rule_and_is_passed_exactly() {
    let t = world();
    let weird = OsString::from_vec(vec![b'p', b'o', 0xff, b'd']);
    t.run("kubectl", &["get"]).arg_os(&weird).output().status(75).stderr_has(r"$'po\xffd'");
    assert!(!t.ran("kubectl"));
    // Under a tool whose default is allow it still needs a human.
    let t = Test::new().rules("[settings]\nwait = false\n[tools.kubectl]\ndefault = \"allow\"\n").tools(&["kubectl"]);
    t.run("kubectl", &["get"]).arg_os(&weird).output().status(75);
    let recs = t.audit_records();
    assert_eq!(recs[0]["argv"][2], serde_json::json!({"hex": "706fff64"}));
}

#[test]
fn a_thousand_concurrent_shims_keep_the_audit_chain_intact() {
    let t = world();
    let n = 1000;
    let batch = 50;
    let mut spawned = 0;
    while spawned < n {
        let children: Vec<_> = (0..batch)
            .map(|i| {
                let args: &[&str] = if (spawned + i) % 2 == 0 { &["get", "pods"] } else { &["delete", "ns", "x"] };
                let mut r = t.run("kubectl", args);
                r.cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
                r.cmd.spawn().expect("spawn")
            })
            .collect();
        for mut c in children {
            let code = c.wait().expect("wait").code();
            assert!(matches!(code, Some(0 | 77)), "{code:?}");
        }
        spawned += batch;
    }
    let recs = t.audit_records();
    assert_eq!(recs.len(), n);
    let mut seqs: Vec<u64> = recs.iter().map(|r| r["seq"].as_u64().expect("seq")).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=n as u64).collect::<Vec<_>>());
    t.guardsh(&["audit", "verify"]).output().status(0).stdout_has(&format!("ok: {n} records"));
}

/// The compiled-policy cache may make a call faster, never decide differently: a changed policy,
/// a corrupt entry, an entry another user could have written, and an entry that is not a file
/// all fall back to compiling the policy.
#[test]
fn the_policy_cache_never_changes_a_decision() {
    let t = Test::new().tools(&["kubectl"]);
    let allow = "[tools.kubectl]\ndefault = \"ask\"\n[[rule]]\nid = \"get\"\ntool = \"kubectl\"\naction = \"allow\"\nreason = \"reads\"\nargs = [\"get\"]\n";
    let t = t.rules(&format!("[settings]\nwait = false\n{allow}")).settle();
    t.run("kubectl", &["get", "pods"]).output().status(0);
    let cache = t.state_dir().join("cache");
    let entries = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&cache).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
    };
    assert_eq!(entries().len(), 1, "the first call writes one entry for kubectl");
    t.run("kubectl", &["get", "pods"]).output().status(0);
    let forged = std::fs::read(&entries()[0]).expect("entry");

    // The policy changes: the old entry is not used, and is replaced.
    let t = t.rules(&format!("[settings]\nwait = false\n{}", allow.replace("\"allow\"", "\"deny\""))).settle();
    t.run("kubectl", &["get", "pods"]).output().status(77);
    assert_eq!(entries().len(), 1, "the stale entry was removed");

    // A forged entry that allows the command (the allowing policy's own entry, saved earlier),
    // written over the current one: read back only when it is a regular file of this user that
    // no one else can write, and then it is this user's own policy, which the user could equally
    // have edited (see src/policy_cache.rs).
    let entry = entries().remove(0);
    for (what, prepare) in [
        (
            "corrupt",
            Box::new(|p: &Path| std::fs::write(p, &forged[..forged.len() / 2]).expect("write")) as Box<dyn Fn(&Path)>,
        ),
        (
            "group-writable",
            Box::new(|p: &Path| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::write(p, &forged).expect("write");
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o620)).expect("chmod");
            }),
        ),
        (
            "a symlink",
            Box::new(|p: &Path| {
                let target = p.with_extension("target");
                std::fs::write(&target, &forged).expect("write");
                std::os::unix::fs::symlink(&target, p).expect("symlink");
            }),
        ),
    ] {
        let _ = std::fs::remove_file(&entry);
        prepare(&entry);
        t.forget("kubectl");
        t.run("kubectl", &["get", "pods"]).output().status(77);
        assert!(!t.ran("kubectl"), "a {what} cache entry changed the decision");
    }
    // Control: the same forged entry as a plain 0600 file of this user is read, so the refusals
    // above are the checks at work and not a forgery that failed to parse.
    let _ = std::fs::remove_file(&entry);
    std::fs::write(&entry, &forged).expect("write");
    t.run("kubectl", &["get", "pods"]).output().status(0);
}

/// `guardsh check-config` writes every tool's compiled entry, so the next shim call reads it
/// instead of compiling (a compile would replace the file: a new inode).
#[test]
fn check_config_fills_the_policy_cache_for_every_tool() {
    use std::os::unix::fs::MetadataExt;
    let t = Test::new().tools(&["kubectl"]).example_rules().settle();
    t.guardsh(&["check-config"]).output().status(0);
    let cache = t.state_dir().join("cache");
    let entries: Vec<std::path::PathBuf> =
        std::fs::read_dir(&cache).expect("cache").flatten().map(|e| e.path()).collect();
    assert_eq!(entries.len(), 21, "one entry per tool of the shipped rules");
    let inodes = || entries.iter().map(|p| std::fs::metadata(p).expect("entry").ino()).collect::<Vec<_>>();
    let before = inodes();
    t.run("kubectl", &["get", "pods"]).output().status(0);
    assert_eq!(inodes(), before, "the shim read the entries check-config wrote");
}
