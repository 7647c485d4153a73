//! Minted PostgreSQL roles against a real server, through the library (`guardsh::mint`): a role
//! minted for a run can do what its statements need and nothing else, lives while the tool
//! runs, and is gone with its sessions after revoking; a failed mint leaves nothing behind.
//!
//! The server is tests/postgres.rs's throwaway cluster with password (SCRAM) logins for every
//! role but the superuser, and an admin role with CREATEROLE (not superuser) that owns `t` and
//! holds `other` WITH GRANT OPTION. Skipped, with a message, where no PostgreSQL is installed;
//! under `CI=true` that is a failure.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use guardsh::mint::pg_scope::{Scope, scope};
use guardsh::mint::postgres::{Config, Minted, mint};

use crate::postgres::Server;

pub(crate) const ADMIN_PASSWORD: &str = "admin-secret-pw";

pub(crate) struct Db {
    pub(crate) server: Server,
    cfg: Config,
}

impl Db {
    pub(crate) fn start() -> Option<Db> {
        let server = Server::start()?;
        let cfg = Config {
            host: server.socket(),
            dbname: "postgres".into(),
            admin_user: "admin".into(),
            ..Config::default()
        };
        let db = Db { server, cfg };
        // Passwords for everyone but the superuser, who sets the cluster up over the socket.
        let hba = db.superuser("show hba_file");
        std::fs::write(&hba, "local all postgres trust\nlocal all all scram-sha-256\n").expect("write pg_hba.conf");
        db.superuser("select pg_reload_conf()");
        db.superuser(&format!(
            "create role admin login createrole password '{ADMIN_PASSWORD}';
             create table t (id int primary key, n int); insert into t select g, g from generate_series(1, 5) g;
             alter table t owner to admin;
             create table other (id int); insert into other values (1), (2);
             grant all on other to admin with grant option;
             create table secret (id int); insert into secret values (1);
             create role bystander"
        ));
        // The reload reaches new connections shortly after.
        let deadline = Instant::now() + Duration::from_secs(10);
        while db.login("admin", "wrong", "select 1").status.success() {
            assert!(Instant::now() < deadline, "pg_hba.conf was not reloaded");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(db)
    }

    pub(crate) fn psql(&self) -> PathBuf {
        self.server.bin.join("psql")
    }

    /// Runs SQL as the superuser and returns its unaligned output.
    pub(crate) fn superuser(&self, sql: &str) -> String {
        let out = Command::new(self.psql())
            .args(["-h", &self.server.socket(), "-U", "postgres", "-d", "postgres", "-X", "-q", "-At"])
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The real psql as `user` with `password`, as the tool would run with a minted credential.
    fn login_command(&self, user: &str, password: &str, sql: &str) -> Command {
        let mut c = Command::new(self.psql());
        c.env_clear()
            .env("PGHOST", self.server.socket())
            .env("PGDATABASE", "postgres")
            .env("PGUSER", user)
            .env("PGPASSWORD", password)
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        c
    }

    pub(crate) fn login(&self, user: &str, password: &str, sql: &str) -> Output {
        self.login_command(user, password, sql).output().expect("run psql")
    }

    fn minted_roles(&self) -> String {
        self.superuser("select count(*) from pg_roles where rolname like 'guardsh\\_%'")
    }

    fn mint(&self, cfg: &Config, sql: &str, label: &str) -> Minted {
        let s = scope(&[sql]).expect("scopes");
        mint(cfg, &self.psql(), ADMIN_PASSWORD, &s, label).expect("mints")
    }
}

fn ran(out: &Output) -> String {
    assert!(out.status.success(), "refused: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn refused(out: &Output, what: &str) {
    assert!(!out.status.success(), "{what} was allowed: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn mint_pg_a_delete_role_deletes_and_does_nothing_else() {
    let Some(db) = Db::start() else { return };
    let m = db.mint(&db.cfg, "DELETE FROM t WHERE id = 1", "req-7f3a");
    assert!(m.role.starts_with("guardsh_req7f3a_"), "{}", m.role);
    assert_eq!(m.lease.role(), m.role);
    assert!(!format!("{m:?}").contains(m.password.as_str()), "Debug shows the password");
    let as_minted = |sql: &str| db.login(&m.role, &m.password, sql);

    ran(&as_minted("DELETE FROM t WHERE id = 1"));
    assert_eq!(db.superuser("select count(*) from t"), "4");
    for sql in [
        "DROP TABLE t",
        "SELECT * FROM other",
        "DELETE FROM other",
        "SELECT * FROM secret",
        "INSERT INTO t VALUES (9, 9)",
        "UPDATE t SET n = 0",
        "TRUNCATE t",
        "CREATE TABLE x ()",
        "SET ROLE admin",
        "GRANT SELECT ON other TO bystander",
        "ALTER ROLE CURRENT_USER VALID UNTIL 'infinity'",
        "CREATE ROLE another",
    ] {
        refused(&as_minted(sql), sql);
    }
    // A GRANT of what it holds is only a warning in PostgreSQL: it must give nothing.
    let _ = as_minted("GRANT DELETE ON t TO bystander");
    assert_eq!(db.superuser("select has_table_privilege('bystander', 't', 'DELETE')"), "f");
    assert_eq!(db.superuser("select count(*) from pg_tables where tablename in ('t', 'other')"), "2");

    let role = m.role.clone();
    m.lease.revoke().expect("revokes");
    assert_eq!(db.superuser(&format!("select count(*) from pg_roles where rolname = '{role}'")), "0");
    assert_eq!(db.minted_roles(), "0");
}

#[test]
fn mint_pg_a_read_role_reads_and_cannot_write() {
    let Some(db) = Db::start() else { return };
    let m = db.mint(&db.cfg, "select count(*) from t", "reads");
    assert_eq!(ran(&db.login(&m.role, &m.password, "select count(*) from t")), "5");
    for sql in ["DELETE FROM t", "INSERT INTO t VALUES (9, 9)", "UPDATE t SET n = 0", "SELECT * FROM other"] {
        refused(&db.login(&m.role, &m.password, sql), sql);
    }
    m.lease.revoke().expect("revokes");

    // With a read role, a reads scope gets that role instead of table grants.
    db.superuser("create role readers nologin; grant select on t, other to readers");
    let cfg = Config { read_role: Some("readers".into()), ..db.cfg.clone() };
    let m = db.mint(&cfg, "select * from t", "reads");
    assert_eq!(ran(&db.login(&m.role, &m.password, "select count(*) from other")), "2");
    refused(&db.login(&m.role, &m.password, "DELETE FROM t"), "DELETE with the read role");
    m.lease.revoke().expect("revokes");
    assert_eq!(
        db.superuser(
            "select count(*) from pg_auth_members m join pg_roles r on r.oid = m.roleid where r.rolname = 'readers'"
        ),
        "0"
    );
    assert_eq!(db.minted_roles(), "0");
}

#[test]
fn mint_pg_revoking_ends_the_session_and_the_role() {
    let Some(db) = Db::start() else { return };
    let m = db.mint(&db.cfg, "select n from t where id = 2", "long-run");
    // "The tool": a session that outlasts the test unless it is ended.
    let mut tool = db
        .login_command(&m.role, &m.password, "select n from t where id = 2; select pg_sleep(60)")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start psql");
    let role = m.role.clone();
    let sessions = format!("select count(*) from pg_stat_activity where usename = '{role}'");
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.superuser(&sessions) != "1" {
        assert!(Instant::now() < deadline, "the tool's session never appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(db.superuser(&format!("select count(*) from pg_roles where rolname = '{role}'")), "1");
    // One connection: a second login is refused while the tool runs.
    refused(&db.login(&role, &m.password, "select 1"), "a second connection");

    let password = m.password.clone();
    let started = Instant::now();
    m.lease.revoke().expect("revokes");
    let status = loop {
        if let Some(status) = tool.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the tool's session was not ended");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "the session ended normally");
    assert_eq!(db.superuser(&sessions), "0");
    assert_eq!(db.superuser(&format!("select count(*) from pg_roles where rolname = '{role}'")), "0");
    let again = db.login(&role, &password, "select 1");
    refused(&again, "a login after revoking");
    assert!(String::from_utf8_lossy(&again.stderr).contains("password authentication failed"));

    // Revoking a role that is already gone is fine.
    let m = db.mint(&db.cfg, "select 1", "gone");
    db.superuser(&format!("drop owned by {0}; drop role {0}", m.role));
    m.lease.revoke().expect("a role already gone is revoked");
    // A lease dropped without revoking revokes.
    let m = db.mint(&db.cfg, "select 1", "dropped");
    drop(m);
    assert_eq!(db.minted_roles(), "0");
}

#[test]
fn mint_pg_failures_say_why_and_leave_no_role() {
    let Some(db) = Db::start() else { return };
    let s = scope(&["delete from t where id = 1"]).expect("scopes");
    let err = mint(&db.cfg, &db.psql(), "wrong-password", &s, "x").expect_err("a wrong admin password");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");

    let down = tempfile::tempdir().expect("tempdir");
    let cfg = Config { host: down.path().display().to_string(), ..db.cfg.clone() };
    let err = mint(&cfg, &db.psql(), ADMIN_PASSWORD, &s, "x").expect_err("no server");
    assert!(err.contains("connection to server") || err.contains("No such file"), "{err}");

    // A table the admin cannot grant: the whole mint rolls back.
    let s = scope(&["select * from secret"]).expect("scopes");
    let err = mint(&db.cfg, &db.psql(), ADMIN_PASSWORD, &s, "x").expect_err("no grant option");
    assert!(err.contains("secret") && err.contains("could not mint"), "{err}");
    // Granted without GRANT OPTION: PostgreSQL only warns; the check before commit refuses.
    db.superuser("grant select on secret to admin");
    let err = mint(&db.cfg, &db.psql(), ADMIN_PASSWORD, &s, "x").expect_err("no grant option");
    assert!(err.contains("could not grant SELECT on \"secret\""), "{err}");
    let err = mint(&db.cfg, &PathBuf::from("psql"), ADMIN_PASSWORD, &s, "x").expect_err("relative psql");
    assert!(err.contains("absolute"), "{err}");
    assert_eq!(db.minted_roles(), "0");
}

#[test]
fn mint_pg_hostile_names_are_quoted() {
    let Some(db) = Db::start() else { return };
    let name = "x\"; drop table t; --'";
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    db.superuser(&format!(
        "create table {quoted} (id int); insert into {quoted} values (1), (2); alter table {quoted} owner to admin"
    ));
    let sql = format!("delete from {quoted} where id = 1");
    let m = db.mint(&db.cfg, &sql, "'; drop role admin; --");
    ran(&db.login(&m.role, &m.password, &sql));
    assert_eq!(db.superuser(&format!("select count(*) from {quoted}")), "1");
    assert_eq!(db.superuser("select count(*) from pg_tables where tablename = 't'"), "1");
    assert_eq!(db.superuser("select count(*) from pg_roles where rolname = 'admin'"), "1");
    m.lease.revoke().expect("revokes");
    assert_eq!(db.minted_roles(), "0");
}

#[test]
fn mint_pg_upsert_into_a_serial_table() {
    let Some(db) = Db::start() else { return };
    db.superuser("create table s (id serial primary key, n int); alter table s owner to admin");
    let sql = "insert into s (n) values (1) on conflict (id) do update set n = excluded.n returning id";
    let m = db.mint(&db.cfg, sql, "upsert");
    assert_eq!(ran(&db.login(&m.role, &m.password, sql)).lines().next(), Some("1"));
    refused(&db.login(&m.role, &m.password, "delete from s"), "DELETE after an upsert scope");
    m.lease.revoke().expect("revokes");
    assert_eq!(db.minted_roles(), "0");
}

/// Mint and revoke, ten times each: medians printed (`--nocapture`) for the record.
#[test]
fn mint_pg_latency() {
    let Some(db) = Db::start() else { return };
    let s = scope(&["delete from t where id = 1", "select * from other"]).expect("scopes");
    let (mut minting, mut revoking) = (Vec::new(), Vec::new());
    for n in 0..10 {
        let started = Instant::now();
        let m = mint(&db.cfg, &db.psql(), ADMIN_PASSWORD, &s, &format!("lat{n}")).expect("mints");
        minting.push(started.elapsed());
        let started = Instant::now();
        m.lease.revoke().expect("revokes");
        revoking.push(started.elapsed());
    }
    minting.sort();
    revoking.sort();
    eprintln!("mint median {:?} (min {:?}, max {:?})", minting[5], minting[0], minting[9]);
    eprintln!("revoke median {:?} (min {:?}, max {:?})", revoking[5], revoking[0], revoking[9]);
    assert!(minting[5] < Duration::from_secs(5) && revoking[5] < Duration::from_secs(5));
    assert_eq!(db.minted_roles(), "0");
}

/// pg_scope's reading checked against the server itself: for each statement, a role minted
/// with its scope can run it, and a role minted with any one privilege of that scope taken away
/// cannot (so the scope holds nothing the statement does not need).
#[test]
fn mint_pg_each_scope_suffices_and_each_privilege_is_needed() {
    let Some(db) = Db::start() else { return };
    db.superuser(
        "create table archive (id int, n int); insert into archive values (1, 1), (2, 2); alter table archive owner to admin;
         create schema s; create table s.u (id int); alter schema s owner to admin; alter table s.u owner to admin",
    );
    let statements = [
        "select * from t",
        "select * from t join other on other.id = t.id",
        "select * from t where id in (select id from other)",
        "with x as (select * from t) select * from x",
        "select * from s.u",
        "insert into t values (100, 1) on conflict do nothing",
        "insert into archive select * from t",
        "insert into t values (101, 1) returning id",
        "insert into t values (1, 1) on conflict (id) do update set n = excluded.n",
        "update t set n = 1",
        "update t set n = 2 where id = 2",
        "update t set n = other.id from other where other.id = t.id",
        "update s.u set id = 1 returning id",
        "delete from t where id = 3",
        "delete from archive",
        "delete from t using other where other.id = t.id and t.id = 4",
        "truncate archive",
        "select * from t for update",
        "select * from t for share",
        "with d as (delete from archive where id = 1 returning *) select * from d",
        "copy t to stdout",
    ];
    let mut wrong = Vec::new();
    for sql in statements {
        let full = scope(&[sql]).expect("scopes");
        let run = |s: &Scope| {
            let m = mint(&db.cfg, &db.psql(), ADMIN_PASSWORD, s, "exact").expect("mints");
            let out = db.login(&m.role, &m.password, sql);
            m.lease.revoke().expect("revokes");
            out
        };
        let out = run(&full);
        if !out.status.success() {
            wrong.push(format!("{sql}: refused with its scope {full:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        for (n, table) in full.tables.iter().enumerate() {
            for privilege in &table.privileges {
                let mut less = full.clone();
                less.tables[n].privileges.remove(privilege);
                let out = run(&less);
                if out.status.success() {
                    wrong.push(format!("{sql}: ran without {privilege:?} on {}", table.table));
                } else {
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(err.contains("permission denied"), "{sql} without {privilege:?}: {err}");
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(db.minted_roles(), "0");
}

/// A server that takes the admin's connection and then stalls (another transaction holds the
/// catalog row the GRANT must change): the mint is killed at its time limit, says so, and
/// leaves no role behind.
#[test]
fn mint_pg_a_stalled_server_times_out_without_a_role() {
    let Some(db) = Db::start() else { return };
    let mut holder = Command::new(db.psql())
        .args(["-h", &db.server.socket(), "-U", "postgres", "-d", "postgres", "-X", "-q"])
        .args(["-c", "begin; grant select on t to bystander; select pg_sleep(14); commit"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start the holding session");
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.superuser(
        "select count(*) from pg_stat_activity where query like '%pg_sleep(14)%' and pid <> pg_backend_pid()",
    ) != "1"
    {
        assert!(Instant::now() < deadline, "the holding session never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = scope(&["delete from t"]).expect("scopes");
    let started = Instant::now();
    let err = mint(&db.cfg, &db.psql(), ADMIN_PASSWORD, &s, "stall").expect_err("a stalled server");
    let took = started.elapsed();
    assert!(err.contains("did not answer within 10 s"), "{err}");
    assert!(took >= Duration::from_secs(10) && took < Duration::from_secs(14), "{took:?}");
    assert!(holder.wait().expect("wait").success());
    // The killed admin session's transaction never commits.
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.superuser("select count(*) from pg_stat_activity where application_name = 'guardsh-mint'") != "0" {
        assert!(Instant::now() < deadline, "the killed admin session stayed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(db.minted_roles(), "0");
}
