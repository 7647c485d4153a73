//! Minted credentials end to end (issue 15): inside `guardsh run`, with the sandbox and without,
//! every psql command the policy grants credentials gets a PostgreSQL role made for it from the
//! held admin password, never that password; the role can do what the command's statements need
//! and nothing else, exists only while the tool runs, and its sessions end with the tool; a mint
//! that fails refuses the command.
//!
//! The real psql, through its shim, against tests/mint_pg.rs's throwaway cluster (password logins
//! for every role but the superuser; `admin` has CREATEROLE and owns `t`). The harness plays the
//! attacker who got hold of the tool's environment (root reads any process): what it finds is a
//! role that is scoped, short-lived and gone when the tool ends.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::escapes::Mode;
use crate::mint_pg::{ADMIN_PASSWORD, Db};
use crate::support::Test;

/// The escapes world (shims, example rules, the sandbox's settings) with the real psql and a
/// `[mint.psql]` provider for the cluster. `None` where the sandbox cannot run (and it is needed).
pub(crate) fn world(db: &Db, mode: Mode) -> Option<Test> {
    let t = match mode {
        Mode::Sandbox => crate::escapes::sandboxed()?,
        Mode::NoSandbox => crate::escapes::world(),
    };
    let real = t.real.join("psql");
    std::fs::remove_file(&real).expect("remove the fake psql");
    std::os::unix::fs::symlink(db.psql(), &real).expect("symlink the real psql");
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    let mint = format!(
        "\n[mint.psql]\nprovider = \"postgres\"\nhost = {:?}\ndbname = \"postgres\"\nadmin_user = \"admin\"\n",
        db.server.socket()
    );
    std::fs::write(t.config_dir().join("rules.toml"), rules + &mint).expect("rules");
    Some(t)
}

/// Runs `script` as the agent inside `guardsh run`, which holds the admin password.
pub(crate) fn session(t: &Test, mode: Mode, script: &str) -> (Option<i32>, String, String) {
    crate::escapes::agent_with(t, mode, &[("PGPASSWORD", ADMIN_PASSWORD)], script)
}

/// A superuser session that holds `t` locked for `seconds`, so that a psql reading it waits.
pub(crate) fn lock_t(db: &Db, seconds: u32) -> Child {
    let locker = Command::new(db.psql())
        .args(["-h", &db.server.socket(), "-U", "postgres", "-d", "postgres", "-X", "-q"])
        .arg("-c")
        .arg(format!("begin; lock table t in access exclusive mode; select pg_sleep({seconds}); commit;"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start the locking session");
    wait_for(db, "the lock on t", || {
        db.superuser(
            "select count(*) from pg_locks l join pg_class c on c.oid = l.relation \
             where c.relname = 't' and l.mode = 'AccessExclusiveLock' and l.granted",
        ) == "1"
    });
    locker
}

fn wait_for(db: &Db, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what} never came ({})", db.minted_sessions());
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Db {
    fn minted_sessions(&self) -> String {
        self.superuser(
            "select string_agg(usename || ':' || state, ',') from pg_stat_activity where usename like 'guardsh\\_%'",
        )
    }

    /// The role of the one minted session there is, once there is one.
    pub(crate) fn minted_role(&self) -> String {
        let mut role = String::new();
        wait_for(self, "a minted role's session", || {
            role = self.superuser("select usename from pg_stat_activity where usename like 'guardsh\\_%' limit 1");
            !role.is_empty()
        });
        role
    }

    pub(crate) fn role_exists(&self, role: &str) -> bool {
        self.superuser(&format!("select count(*) from pg_roles where rolname = '{role}'")) == "1"
    }
}

/// The process whose environment names `role` as its user (the tool), and that environment.
pub(crate) fn tool_with(role: &str) -> (i32, Vec<(String, String)>) {
    tool_where(&format!("the minted role {role}"), |k, v| k == "PGUSER" && v == role)
}

/// The process with a variable for which `is` holds, and its environment.
fn tool_where(what: &str, is: impl Fn(&str, &str) -> bool) -> (i32, Vec<(String, String)>) {
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let vars: Vec<(String, String)> = environ
            .split(|&b| b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        if vars.iter().any(|(k, v)| is(k, v)) {
            return (pid, vars);
        }
    }
    panic!("no process with {what}");
}

fn minted_records(t: &Test) -> Vec<serde_json::Value> {
    t.audit_records().into_iter().filter(|r| r.get("minted").is_some()).collect()
}

/// The whole life of one minted role: made for `select count(*) from t` with SELECT on `t` and
/// nothing else; the tool holds it, never the admin password; someone who takes it from the
/// tool's environment gets no further; when the tool ends it is gone, and audited both ways.
fn a_read_gets_a_role_for_its_table_only(mode: Mode) {
    let Some(db) = Db::start() else { return };
    let Some(t) = world(&db, mode) else { return };
    let t = std::sync::Arc::new(t);
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let script = format!("psql -At -c 'select count(*) from t' > {o}/count; echo $? > {o}/code", o = out.display());
    let locker = lock_t(&db, 4);
    let runner = std::thread::spawn({
        let t = std::sync::Arc::clone(&t);
        move || session(&t, mode, &script)
    });

    // While the tool waits for the lock: the role it was given, as the server sees it.
    let role = db.minted_role();
    let rights = db.superuser(&format!(
        "select has_table_privilege('{role}', 't', 'select'), has_table_privilege('{role}', 't', 'delete'), \
         has_table_privilege('{role}', 'other', 'select'), has_table_privilege('{role}', 'secret', 'select'), \
         rolsuper, rolcreaterole, rolvaliduntil is not null from pg_roles where rolname = '{role}'"
    ));
    assert_eq!(rights, "t|f|f|f|f|f|t", "{role}: select t, delete t, other, secret, super, createrole, expires");
    let (_, env) = tool_with(&role);
    let password = env.iter().find(|(k, _)| k == "PGPASSWORD").map(|(_, v)| v.clone()).expect("PGPASSWORD");
    assert!(env.iter().all(|(_, v)| !v.contains(ADMIN_PASSWORD)), "the tool got the held admin password");
    assert_ne!(password, ADMIN_PASSWORD);
    // Taken from the tool: one connection only (the tool's), and no reach beyond `t` anyway.
    let stolen = db.login(&role, &password, "select * from other");
    assert!(!stolen.status.success(), "the minted role read another table");

    let (code, _, stderr) = runner.join().expect("session");
    let _ = locker.wait_with_output();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(std::fs::read_to_string(out.join("code")).expect("code").trim(), "0", "{stderr}");
    assert_eq!(std::fs::read_to_string(out.join("count")).expect("count").trim(), "5", "{stderr}");
    // Gone with the tool, and the password with it.
    assert!(!db.role_exists(&role), "{role} outlived its tool");
    assert!(!db.login(&role, &password, "select 1").status.success(), "the password still logs in");
    let records = minted_records(&t);
    let named = format!("postgres role {role}");
    assert!(
        records.iter().any(|r| r["minted"] == named.as_str() && r["outcome"] != "revoked"),
        "the start is audited with the role: {records:?}"
    );
    assert!(
        records.iter().any(|r| r["minted"] == named.as_str() && r["outcome"] == "revoked"),
        "the revocation is audited: {records:?}"
    );
    let log = std::fs::read_to_string(t.audit_log()).expect("audit log");
    assert!(!log.contains(&password) && !log.contains(ADMIN_PASSWORD), "a secret reached the audit log");
}

#[test]
fn mint_run_a_read_gets_a_role_for_its_table_only_in_the_sandbox() {
    a_read_gets_a_role_for_its_table_only(Mode::Sandbox);
}

#[test]
fn mint_run_a_read_gets_a_role_for_its_table_only_without_the_sandbox() {
    a_read_gets_a_role_for_its_table_only(Mode::NoSandbox);
}

/// A tool killed while its query waits leaves its server session behind (the server does not
/// notice a client gone while it waits for a lock): revoking the role ends that session, while
/// the lock it waits for is still held, so it is the revocation that ended it.
fn a_killed_tools_session_ends_with_its_role(mode: Mode) {
    let Some(db) = Db::start() else { return };
    let Some(t) = world(&db, mode) else { return };
    let t = std::sync::Arc::new(t);
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let script = format!("psql -At -c 'select count(*) from t'; echo $? > {o}/code", o = out.display());
    let mut locker = lock_t(&db, 60);
    let runner = std::thread::spawn({
        let t = std::sync::Arc::clone(&t);
        move || session(&t, mode, &script)
    });
    let role = db.minted_role();
    let (pid, _) = tool_with(&role);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).expect("kill the tool");
    let (code, _, stderr) = runner.join().expect("session");
    assert_eq!(code, Some(0), "{stderr}");
    assert_ne!(std::fs::read_to_string(out.join("code")).expect("code").trim(), "0", "the killed psql succeeded");
    let still_locked = locker.try_wait().expect("locker").is_none();
    assert!(still_locked, "the lock was released before the check");
    let sessions = db.superuser(&format!("select count(*) from pg_stat_activity where usename = '{role}'"));
    assert_eq!(sessions, "0", "the killed tool's session outlived its role");
    assert!(!db.role_exists(&role), "{role} outlived its tool");
    let _ = locker.kill();
    let _ = locker.wait();
}

#[test]
fn mint_run_a_killed_tools_session_ends_with_its_role_in_the_sandbox() {
    a_killed_tools_session_ends_with_its_role(Mode::Sandbox);
}

#[test]
fn mint_run_a_killed_tools_session_ends_with_its_role_without_the_sandbox() {
    a_killed_tools_session_ends_with_its_role(Mode::NoSandbox);
}

/// What cannot be minted does not run, and says why: a table the admin cannot grant, another
/// server, a named user. Nothing is left behind, and the held password is never the fallback.
#[test]
fn mint_run_what_cannot_be_minted_does_not_run() {
    let Some(db) = Db::start() else { return };
    let mode = if crate::escapes::sandboxed().is_some() { Mode::Sandbox } else { Mode::NoSandbox };
    let Some(t) = world(&db, mode) else { return };
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let script = format!(
        "psql -At -c 'select count(*) from secret' > {o}/secret; echo $? >> {o}/codes; \
         psql -At -h /tmp -c 'select count(*) from t' > {o}/host; echo $? >> {o}/codes; \
         psql -At -U postgres -c 'select count(*) from t' > {o}/user; echo $? >> {o}/codes",
        o = out.display()
    );
    let (code, _, stderr) = session(&t, mode, &script);
    assert_eq!(code, Some(0), "{stderr}");
    let codes = std::fs::read_to_string(out.join("codes")).expect("codes");
    assert_eq!(codes.split_whitespace().collect::<Vec<_>>(), ["77", "77", "77"], "{stderr}");
    for f in ["secret", "host", "user"] {
        assert_eq!(std::fs::read_to_string(out.join(f)).expect("output"), "", "{f} ran: {stderr}");
    }
    assert!(stderr.contains("no credential could be minted for psql"), "{stderr}");
    assert!(stderr.contains("names a user"), "{stderr}");
    assert_eq!(db.superuser("select count(*) from pg_roles where rolname like 'guardsh\\_%'"), "0");
    let refused: Vec<_> =
        t.audit_records().into_iter().filter(|r| r["reason"].as_str().is_some_and(|s| s.contains("minted"))).collect();
    assert!(refused.len() >= 3, "each refusal is audited: {refused:?}");
}

/// The attack minting answers, shown on a policy without a provider: the agent's user reads the
/// environment of the tool guardsh run started (without the sandbox it can) and finds the held
/// admin password itself, which works everywhere until someone rotates it.
#[test]
fn mint_run_without_a_provider_the_tool_holds_the_long_lived_password() {
    let Some(db) = Db::start() else { return };
    let t = crate::escapes::world();
    let real = t.real.join("psql");
    std::fs::remove_file(&real).expect("remove the fake psql");
    std::os::unix::fs::symlink(db.psql(), &real).expect("symlink the real psql");
    let t = std::sync::Arc::new(t);
    let script = format!("psql -h {:?} -U admin -d postgres -At -c 'select count(*) from t'", db.server.socket());
    let locker = lock_t(&db, 3);
    let runner = std::thread::spawn({
        let t = std::sync::Arc::clone(&t);
        move || session(&t, Mode::NoSandbox, &script)
    });
    wait_for(&db, "the tool's session", || {
        db.superuser("select count(*) from pg_stat_activity where usename = 'admin'") == "1"
    });
    let (_, env) = tool_where("the admin password", |k, v| k == "PGPASSWORD" && v == ADMIN_PASSWORD);
    assert!(env.iter().any(|(k, _)| k == "PGPASSWORD"));
    let (code, _, stderr) = runner.join().expect("session");
    let _ = locker.wait_with_output();
    assert_eq!(code, Some(0), "{stderr}");
    // Taken from the tool, it still works after the tool is gone.
    assert!(db.login("admin", ADMIN_PASSWORD, "select count(*) from other").status.success());
}
