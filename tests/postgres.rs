//! psql through its shim against a real PostgreSQL server: reads reach the database and print,
//! writes (inline, from a file, piped, or hidden in a function) never do until a human approves
//! them, and a start-up file cannot run.
//!
//! The server is a throwaway cluster in a temporary directory, listening only on a Unix socket
//! there. `.ci/run` installs PostgreSQL; elsewhere the test is skipped, with a message, when no
//! server binaries are found.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Test;

/// A running throwaway cluster, stopped when dropped (tests/differential.rs uses it too).
pub(crate) struct Server {
    dir: tempfile::TempDir,
    pub(crate) bin: PathBuf,
}

/// The directory with initdb, pg_ctl and psql: Debian keeps them off PATH.
fn server_binaries() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("pg_ctl"))
        .find(|p| p.exists())
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let debian = || {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|d| d.join("pg_ctl").exists())
            .collect();
        dirs.sort();
        dirs.pop()
    };
    on_path.filter(|d| d.join("psql").exists() && d.join("initdb").exists()).or_else(debian)
}

impl Server {
    pub(crate) fn start() -> Option<Server> {
        let Some(bin) = server_binaries() else {
            assert!(std::env::var_os("CI").is_none(), "CI must provide PostgreSQL (.ci/run installs it)");
            eprintln!("skipping the real-PostgreSQL test: no initdb/pg_ctl found");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // PostgreSQL refuses to run as root (CI runs the tests as root): the cluster is owned by
        // and run as `nobody`.
        let as_root = nix::unistd::geteuid().is_root();
        if as_root {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
            nix::unistd::chown(dir.path(), Some(65534.into()), Some(65534.into())).expect("chown to nobody");
        }
        let server = Server { dir, bin };
        let data = server.dir.path().join("data");
        let sock = server.dir.path().display().to_string();
        let data_dir = data.to_str().expect("utf-8");
        let init = ["-U", "postgres", "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"];
        server.admin(&[&["initdb", "-D", data_dir][..], &init].concat());
        let options = format!("-c listen_addresses='' -k {sock} -c fsync=off");
        let log = server.dir.path().join("log").display().to_string();
        server.admin(&["pg_ctl", "-D", data_dir, "-o", &options, "-l", &log, "-w", "start"]);
        Some(server)
    }

    /// Runs a server program (`command[0]`, from the server's bin directory), as `nobody` when
    /// the tests run as root.
    fn admin(&self, command: &[&str]) {
        let exe = self.bin.join(command[0]);
        let mut c = if nix::unistd::geteuid().is_root() {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        c.args(&command[1..]).current_dir(self.dir.path()).env("LC_ALL", "C");
        let out = c.output().expect("run a PostgreSQL server program");
        assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    pub(crate) fn socket(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// Connection arguments for psql.
    fn conn(&self) -> Vec<String> {
        vec!["-h".into(), self.socket(), "-U".into(), "postgres".into(), "-d".into(), "postgres".into()]
    }

    /// Runs SQL with the real psql, not through guardsh, and returns its unaligned output.
    fn sql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(self.conn())
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("run psql");
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = std::panic::catch_unwind(|| {
            self.admin(&["pg_ctl", "-D", data.to_str().unwrap_or_default(), "-m", "immediate", "stop"]);
        });
    }
}

#[test]
fn reads_reach_postgres_and_writes_never_do() {
    let Some(db) = Server::start() else { return };
    db.sql("create table users (id int); insert into users select generate_series(1, 3)");
    db.sql("create function purge() returns bigint language sql as 'with d as (delete from users returning 1) select count(*) from d'");

    let t = Test::new().example_rules();
    t.shim("psql");
    std::os::unix::fs::symlink(db.bin.join("psql"), t.real.join("psql")).expect("symlink real psql");
    let psql = |args: &[&str]| {
        let mut all: Vec<String> = db.conn();
        all.extend(args.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        t.run("psql", &refs)
    };

    // A read runs the real psql, whose output and exit code come through.
    let read = psql(&["-At", "-c", "select count(*) from users"]).output().status(0);
    assert_eq!(read.stdout().trim(), "3");
    psql(&["-At", "-c", "select * from no_such_table"]).output().status(1);

    // Piped statements are read by guardsh, then by psql from the same bytes.
    let piped = t
        .command("sh")
        .arg_os("-c")
        .arg_os(format!("printf 'select count(*) from users;' | psql -At -h '{}' -U postgres postgres", db.socket()))
        .output()
        .status(0);
    assert_eq!(piped.stdout().trim(), "3");

    // Writes, and a function that writes, need a human (75) or are denied in CI (77).
    for sql in ["drop table users", "delete from users", "select purge()", "select * from purge()"] {
        psql(&["-c", sql]).output().status(75).stderr_has("needs human approval");
        psql(&["-c", sql]).env("CI", "true").output().status(77);
    }
    // A statement file is read once, decided on, and psql runs that copy (a10).
    std::fs::write(t.cwd.join("count.sql"), "select count(*) from users;\n").expect("write count.sql");
    let from_file = psql(&["-At", "-f", "count.sql"]).output().status(0);
    assert_eq!(from_file.stdout().trim(), "3");
    // The same DROP from a file and from a pipe, in CI mode.
    std::fs::write(t.cwd.join("drop.sql"), "DROP TABLE users;\n").expect("write drop.sql");
    psql(&["-f", "drop.sql"]).env("CI", "true").output().status(77);
    t.command("sh")
        .arg_os("-c")
        .arg_os(format!("printf 'DROP TABLE users;' | psql -h '{}' -U postgres postgres", db.socket()))
        .env("CI", "true")
        .output()
        .status(77);
    // psql pastes its own variables into piped input and reads them again: LAST_ERROR_MESSAGE
    // holds server text the first statement chose (found in review, docs/bypasses.md#b22).
    let error_text =
        "select (chr(34) || '; drop table users; select ' || chr(34))::int;\nselect :LAST_ERROR_MESSAGE;\n";
    t.command("sh")
        .arg_os("-c")
        .arg_os(format!("printf '%s' \"$INPUT\" | psql -h '{}' -U postgres postgres", db.socket()))
        .env("INPUT", error_text)
        .output()
        .status(75);
    assert_eq!(db.sql("select count(*) from users"), "3", "a write reached the database");

    // ~/.psqlrc runs before -c for the real psql, and not when guardsh runs it.
    std::fs::write(t.home.join(".psqlrc"), "\\echo PSQLRC-RAN\n").expect("write psqlrc");
    let direct = Command::new(db.bin.join("psql"))
        .args(db.conn())
        .args(["-c", "select 1"])
        .env("HOME", &t.home)
        .output()
        .expect("run psql");
    assert!(String::from_utf8_lossy(&direct.stdout).contains("PSQLRC-RAN"), "the start-up file check would be vacuous");
    psql(&["-c", "select 1"]).output().status(0).stdout_lacks("PSQLRC-RAN");
}

#[test]
fn a_drop_a_human_approves_really_runs() {
    let Some(db) = Server::start() else { return };
    db.sql("create table users (id int); insert into users select generate_series(1, 3)");
    // The shipped policy as is: an ask waits for a human.
    let t = Test::new().rules_with_pack(include_str!("../rules.toml.example"));
    t.shim("psql");
    std::os::unix::fs::symlink(db.bin.join("psql"), t.real.join("psql")).expect("symlink real psql");
    let socket = db.socket();
    let asked = t.run_detached("psql", &["-h", &socket, "-U", "postgres", "-c", "DROP TABLE users", "postgres"]);
    let id = t.wait_for_pending(1).remove(0);
    assert_eq!(db.sql("select count(*) from users"), "3", "the DROP ran before it was approved");
    t.approve(&id);
    assert_eq!(asked.wait(std::time::Duration::from_secs(20)), Some(0), "{}", asked.stderr());
    assert_eq!(
        db.sql("select count(*) from pg_tables where tablename = 'users'"),
        "0",
        "the approved DROP did not run"
    );
}

/// b27: a "read" that writes. A READ WRITE transaction and a function called by field selection
/// (`u.purge` is `purge(users)`) were a read; so was a connection string whose options turn the
/// read-only default off. Reads now also run in a session the server holds to read-only.
#[test]
fn b27_a_read_cannot_write_through_transaction_modes_field_selection_or_options() {
    let Some(db) = Server::start() else { return };
    db.sql("create table users (id int); insert into users select generate_series(1, 3)");
    db.sql("create function purge(users) returns bigint language sql as 'with d as (delete from users returning 1) select count(*) from d'");

    let t = Test::new().example_rules();
    t.shim("psql");
    std::os::unix::fs::symlink(db.bin.join("psql"), t.real.join("psql")).expect("symlink real psql");
    let psql = |args: &[&str]| {
        let mut all: Vec<String> = db.conn();
        all.extend(args.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        t.run("psql", &refs)
    };

    psql(&["-c", "START TRANSACTION READ WRITE", "-c", "select u.purge from users u", "-c", "COMMIT"])
        .output()
        .status(75);
    psql(&["-c", "select u.purge from users u"]).output().status(75);
    psql(&["-c", "set default_transaction_read_only = off", "-c", "select 1"]).output().status(75);
    let conninfo =
        format!("host={} user=postgres dbname=postgres options='-c default_transaction_read_only=off'", db.socket());
    t.run("psql", &[conninfo.as_str(), "-c", "select 1"]).output().status(75);
    t.run("psql", &["-h", &db.socket(), "-U", "postgres", "-d", &conninfo, "-c", "select 1"]).output().status(75);
    psql(&["-c", "select 1"]).env("PGSERVICE", "prod").output().status(75);
    assert_eq!(db.sql("select count(*) from users"), "3", "a write reached the database");

    // What guardsh lets run as a read, the server holds to reading.
    let shown = psql(&["-At", "-c", "show default_transaction_read_only"]).output().status(0);
    assert_eq!(shown.stdout().trim(), "on");
    let plain = format!("host={} user=postgres dbname=postgres", db.socket());
    let shown = t.run("psql", &[plain.as_str(), "-At", "-c", "show default_transaction_read_only"]).output().status(0);
    assert_eq!(shown.stdout().trim(), "on");
}
