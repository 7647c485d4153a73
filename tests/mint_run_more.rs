//! Minted credentials end to end for the OpenBao and STS providers (issue 15), as
//! tests/mint_run.rs does for PostgreSQL: inside `guardsh run`, with the sandbox and without, a
//! command the policy grants credentials gets a credential minted for it, never the secret
//! `guardsh run` holds; what cannot be minted does not run, and says why.
//!
//! OpenBao: the real psql against tests/mint_bao.rs's world (a dev server whose database engine
//! makes `reader` roles in a throwaway PostgreSQL cluster). guardsh run holds the OpenBao token;
//! psql gets the lease's username and password, the role exists while psql runs and is gone, its
//! lease revoked, when psql ends.
//!
//! STS: the real AWS CLI against tests/mint_sts.rs's moto (signatures checked). guardsh run holds
//! the long-lived keys; aws gets AssumeRole keys with their session token. The CLI reaches moto
//! through a proxy here that holds its first request until the harness has read the tool's
//! environment (root reads any process: the attacker who got hold of the tool), and keeps what
//! the CLI sent, to show which key signed it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::escapes::Mode;
use crate::mint_bao::{TOKEN, World};
use crate::support::Test;

/// The escapes world (shims, example rules, the sandbox's settings), or `None` where the sandbox
/// is needed and cannot run.
fn base(mode: Mode) -> Option<Test> {
    match mode {
        Mode::Sandbox => crate::escapes::sandboxed(),
        Mode::NoSandbox => Some(crate::escapes::world()),
    }
}

/// Puts `real` in place of the fake tool `tool`, and appends `mint` to the rules.
fn with_real_tool(t: &Test, tool: &str, real: &Path, mint: &str) {
    let fake = t.real.join(tool);
    std::fs::remove_file(&fake).expect("remove the fake tool");
    std::os::unix::fs::symlink(real, &fake).expect("symlink the real tool");
    let rules = std::fs::read_to_string(t.config_dir().join("rules.toml")).expect("rules");
    std::fs::write(t.config_dir().join("rules.toml"), rules + mint).expect("rules");
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what} never came");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every process's environment, by pid (what root can read of anyone).
fn environments() -> Vec<(i32, Vec<(String, String)>)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        let vars = environ
            .split(|&b| b == 0)
            .filter_map(|kv| {
                let kv = String::from_utf8_lossy(kv);
                kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        all.push((pid, vars));
    }
    all
}

/// The environment of the process for which `is` holds, once there is one.
fn tool_environment(what: &str, is: impl Fn(&[(String, String)]) -> bool) -> Vec<(String, String)> {
    let mut found = None;
    wait_for(what, || {
        found = environments().into_iter().find(|(_, env)| is(env)).map(|(_, env)| env);
        found.is_some()
    });
    found.expect("found")
}

fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn minted_records(t: &Test) -> Vec<serde_json::Value> {
    t.audit_records().into_iter().filter(|r| r.get("minted").is_some()).collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{}: {e}>", path.display()))
}

// ─────────────────────────────── OpenBao ───────────────────────────────

/// psql, with an OpenBao provider for the world's reader role and no write_path.
fn bao_world(w: &World, mode: Mode) -> Option<Test> {
    let t = base(mode)?;
    let mint = format!(
        "\n[mint.psql]\nprovider = \"openbao\"\naddress = {:?}\nread_path = \"database/creds/reader\"\n\
         env = {{ PGUSER = \"username\", PGPASSWORD = \"password\" }}\n",
        w.address
    );
    with_real_tool(&t, "psql", &w.pg.bin.join("psql"), &mint);
    Some(t)
}

/// A superuser session that holds `t` locked for `seconds`, so that a psql reading it waits.
fn lock_t(w: &World, seconds: u32) -> Child {
    let locker = Command::new(w.pg.bin.join("psql"))
        .args(["-X", "-q", "-h", &w.pg.socket(), "-U", "postgres", "-d", "postgres", "-c"])
        .arg(format!("begin; lock table t in access exclusive mode; select pg_sleep({seconds}); commit;"))
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the locking session");
    wait_for("the lock on t", || {
        w.sql(
            "select count(*) from pg_locks l join pg_class c on c.oid = l.relation \
             where c.relname = 't' and l.mode = 'AccessExclusiveLock' and l.granted",
        ) == "1"
    });
    locker
}

/// The role of the database engine's one session there is, once there is one.
fn minted_role(w: &World) -> String {
    let mut role = String::new();
    wait_for("a minted role's session", || {
        role = w.sql("select usename from pg_stat_activity where usename like 'v-%' limit 1");
        !role.is_empty()
    });
    role
}

/// The lease id an audit record's `minted` names ("openbao lease ID (900 s)").
fn lease_id(minted: &str) -> String {
    let rest = minted.strip_prefix("openbao lease ").unwrap_or_else(|| panic!("not an OpenBao lease: {minted}"));
    rest.split(' ').next().expect("an id").to_string()
}

/// The life of one lease: a psql read gets the reader role's username and password, never the
/// held token; the role can read `t` and nothing else; when psql ends the lease is revoked (the
/// server no longer knows it) and the role is gone; both ends are audited with the lease.
fn bao_a_read_gets_a_lease_never_the_token(mode: Mode) {
    let Some(w) = World::start() else { return };
    let Some(t) = bao_world(&w, mode) else { return };
    let t = Arc::new(t);
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let script = format!(
        "psql -X -At -h {h} -d postgres -c 'select count(*) from t' > {o}/count; echo $? > {o}/code",
        h = w.pg.socket(),
        o = out.display()
    );
    let locker = lock_t(&w, 4);
    let runner = std::thread::spawn({
        let t = Arc::clone(&t);
        move || crate::escapes::agent_with(&t, mode, &[("VAULT_TOKEN", TOKEN)], &script)
    });

    // While psql waits for the lock: its role and lease, as the servers see them.
    let role = minted_role(&w);
    assert!(role.contains("reader"), "{role}");
    assert_eq!(w.leases("reader").len(), 1, "one lease while the tool runs");
    let rights = w.sql(&format!(
        "select has_table_privilege('{role}', 't', 'select'), has_table_privilege('{role}', 't', 'delete'), \
         has_table_privilege('{role}', 'other', 'select'), rolsuper from pg_roles where rolname = '{role}'"
    ));
    assert_eq!(rights, "t|f|f|f", "{role}: select t, delete t, select other, superuser");
    let env = tool_environment(&format!("the tool with {role}"), |env| get(env, "PGUSER") == Some(role.as_str()));
    let password = get(&env, "PGPASSWORD").expect("PGPASSWORD").to_string();
    assert!(env.iter().all(|(_, v)| !v.contains(TOKEN)), "the tool got the held token: {env:?}");
    for held in ["VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR"] {
        assert_eq!(get(&env, held), None, "the tool got {held}");
    }

    let (code, _, stderr) = runner.join().expect("session");
    let _ = locker.wait_with_output();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(read(&out.join("code")).trim(), "0", "{stderr}");
    assert_eq!(read(&out.join("count")).trim(), "3", "{stderr}");

    // Gone with the tool: the role, its password, and the lease.
    assert_eq!(w.minted_roles(), "", "the role outlived its tool");
    assert!(w.leases("reader").is_empty(), "the lease outlived its tool");
    assert!(!w.psql(&role, Some(&password), "select 1").status.success(), "the password still logs in");
    let records = minted_records(&t);
    let started = records
        .iter()
        .find(|r| r["outcome"] != "revoked")
        .unwrap_or_else(|| panic!("the start is audited with the lease: {records:?}"));
    let minted = started["minted"].as_str().expect("minted").to_string();
    assert!(minted.starts_with("openbao lease database/creds/reader/"), "{minted}");
    let revoked = records
        .iter()
        .find(|r| r["outcome"] == "revoked")
        .unwrap_or_else(|| panic!("the revocation is audited: {records:?}"));
    assert_eq!(revoked["minted"], minted.as_str(), "{revoked}");
    assert!(revoked["reason"].as_str().is_some_and(|r| r.ends_with("revoked")), "{revoked}");
    let lookup = w.bao(&["write", "sys/leases/lookup", &format!("lease_id={}", lease_id(&minted))]);
    assert!(!lookup.status.success(), "the revoked lease is still known to OpenBao");
    let log = std::fs::read_to_string(t.audit_log()).expect("audit log");
    assert!(!log.contains(&password) && !log.contains(TOKEN), "a secret reached the audit log");
}

#[test]
fn mint_run_more_bao_a_read_gets_a_lease_never_the_token_in_the_sandbox() {
    bao_a_read_gets_a_lease_never_the_token(Mode::Sandbox);
}

#[test]
fn mint_run_more_bao_a_read_gets_a_lease_never_the_token_without_the_sandbox() {
    bao_a_read_gets_a_lease_never_the_token(Mode::NoSandbox);
}

/// A write without a write_path, and any read with a token OpenBao refuses: nothing runs, the
/// provider's reason is said, no lease or role is left, and the refusals are audited.
fn bao_what_cannot_be_minted_does_not_run(mode: Mode) {
    let Some(w) = World::start() else { return };
    let Some(t) = bao_world(&w, mode) else { return };
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let psql = |sql: &str, name: &str| {
        format!(
            "psql -X -At -h {h} -d postgres -c '{sql}' > {o}/{name}; echo $? > {o}/{name}.code",
            h = w.pg.socket(),
            o = out.display()
        )
    };

    let (code, _, write) =
        crate::escapes::agent_with(&t, mode, &[("VAULT_TOKEN", TOKEN)], &psql("insert into t values (4)", "insert"));
    assert_eq!(code, Some(0), "{write}");
    assert_eq!(read(&out.join("insert.code")).trim(), "77", "{write}");
    assert_eq!(read(&out.join("insert")), "", "{write}");
    assert!(write.contains("no credential could be minted for psql"), "{write}");
    assert!(write.contains("no write_path"), "{write}");
    assert_eq!(w.sql("select count(*) from t"), "3", "the insert ran");

    let wrong = "not-the-held-token";
    let (code, _, refused) =
        crate::escapes::agent_with(&t, mode, &[("VAULT_TOKEN", wrong)], &psql("select count(*) from t", "wrong"));
    assert_eq!(code, Some(0), "{refused}");
    assert_eq!(read(&out.join("wrong.code")).trim(), "77", "{refused}");
    assert_eq!(read(&out.join("wrong")), "", "{refused}");
    assert!(refused.contains("no credential could be minted for psql"), "{refused}");
    assert!(refused.contains("403") && refused.contains("permission denied"), "{refused}");
    assert!(!refused.contains(wrong), "the token was shown: {refused}");

    assert_eq!(w.minted_roles(), "", "a refused mint left a role");
    assert!(w.leases("reader").is_empty() && w.leases("writer").is_empty(), "a refused mint left a lease");
    let audited: Vec<_> = t
        .audit_records()
        .into_iter()
        .filter(|r| r["reason"].as_str().is_some_and(|s| s.contains("no credential could be minted")))
        .collect();
    assert!(audited.len() >= 2, "each refusal is audited: {audited:?}");
    assert!(minted_records(&t).is_empty(), "nothing was minted: {:?}", minted_records(&t));
}

#[test]
fn mint_run_more_bao_what_cannot_be_minted_does_not_run_in_the_sandbox() {
    bao_what_cannot_be_minted_does_not_run(Mode::Sandbox);
}

#[test]
fn mint_run_more_bao_what_cannot_be_minted_does_not_run_without_the_sandbox() {
    bao_what_cannot_be_minted_does_not_run(Mode::NoSandbox);
}

// ─────────────────────────────── STS ───────────────────────────────

/// The bin directory with an aws and moto_server the agent's user can run (guardsh run, and so
/// the tool, runs as that user): `None`, with a message, where there is none (under CI a
/// failure).
fn aws_bin() -> Option<PathBuf> {
    let bin = crate::mint_sts::moto_bin()?;
    if crate::support::as_root() {
        let runs = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin.join("aws"))
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !runs {
            assert!(std::env::var_os("CI").is_none(), "CI must install the AWS CLI where the agent's user can run it");
            eprintln!(
                "skipping the STS test through guardsh run: the agent's user cannot run {} (put a venv it can read first on PATH)",
                bin.join("aws").display()
            );
            return None;
        }
    }
    Some(bin)
}

/// aws, with an STS provider for the setup's role at `endpoint`.
fn sts_world(bin: &Path, s: &crate::mint_sts::Setup, mode: Mode, endpoint: &str) -> Option<Test> {
    let t = base(mode)?;
    let mint = format!(
        "\n[mint.aws]\nprovider = \"sts\"\nrole_arn = {:?}\nregion = \"us-east-1\"\nendpoint = {endpoint:?}\n",
        s.role_arn
    );
    with_real_tool(&t, "aws", &bin.join("aws"), &mint);
    Some(t)
}

/// A TCP proxy to `upstream` that holds every connection until `release`, and keeps what clients
/// sent. Stops accepting when dropped.
struct Proxy {
    endpoint: String,
    connections: Arc<AtomicUsize>,
    released: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
        listener.set_nonblocking(true).expect("nonblocking");
        let endpoint = format!("http://{}", listener.local_addr().expect("address"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let p = Proxy {
            endpoint,
            connections: Arc::default(),
            released: Arc::default(),
            sent: Arc::default(),
            stop: Arc::default(),
        };
        let (connections, released, sent, stop) =
            (Arc::clone(&p.connections), Arc::clone(&p.released), Arc::clone(&p.sent), Arc::clone(&p.stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let (released, sent, upstream) = (Arc::clone(&released), Arc::clone(&sent), upstream.clone());
                std::thread::spawn(move || {
                    let _ = client.set_nonblocking(false);
                    while !released.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    let Ok(server) = TcpStream::connect(&upstream) else { return };
                    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { return };
                    std::thread::spawn(move || pipe(s2, c2, None));
                    pipe(client, server, Some(sent));
                });
            }
        });
        p
    }

    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().expect("sent")).into_owned()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, seen: Option<Arc<Mutex<Vec<u8>>>>) {
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(seen) = &seen
            && let Ok(mut s) = seen.lock()
        {
            s.extend_from_slice(&buf[..n]);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// guardsh run holding the setup's long-lived keys, the agent's aws pointed at `endpoint`.
fn sts_session(
    t: &Test,
    mode: Mode,
    keys: &(String, String),
    endpoint: &str,
    script: &str,
) -> (Option<i32>, String, String) {
    let held = [
        ("AWS_ACCESS_KEY_ID", keys.0.as_str()),
        ("AWS_SECRET_ACCESS_KEY", keys.1.as_str()),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint),
    ];
    crate::escapes::agent_with(t, mode, &held, script)
}

/// `aws s3 ls` runs with keys STS made for it: its environment has a session token and another
/// access key than the held one, never the held secret; moto accepts them (the listing) and the
/// request is signed with the minted key; the audit names the session.
fn sts_a_read_runs_with_minted_keys(mode: Mode) {
    let Some(bin) = aws_bin() else { return };
    let s = crate::mint_sts::setup(&bin);
    let Some(t) = sts_world(&bin, &s, mode, &s.moto.endpoint) else { return };
    let t = Arc::new(t);
    let proxy = Proxy::start(&s.moto.endpoint);
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let script = format!("aws s3 ls > {o}/ls; echo $? > {o}/code", o = out.display());
    let runner = std::thread::spawn({
        let (t, endpoint) = (Arc::clone(&t), proxy.endpoint.clone());
        let keys = (s.access_key_id.clone(), s.secret_access_key.clone());
        move || sts_session(&t, mode, &keys, &endpoint, &script)
    });

    // While its first request is held: the tool's environment.
    wait_for("the CLI's request", || proxy.connections.load(Ordering::SeqCst) > 0);
    let env = tool_environment("the aws with a session token", |env| {
        get(env, "AWS_ENDPOINT_URL") == Some(proxy.endpoint.as_str()) && get(env, "AWS_SESSION_TOKEN").is_some()
    });
    proxy.released.store(true, Ordering::SeqCst);
    let key = get(&env, "AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID").to_string();
    assert_ne!(key, s.access_key_id, "the tool got the held access key");
    assert!(key.starts_with("ASIA"), "{key}");
    assert!(!get(&env, "AWS_SESSION_TOKEN").unwrap_or_default().is_empty());
    assert!(env.iter().all(|(_, v)| !v.contains(&s.secret_access_key)), "the tool got the held secret");

    let (code, _, stderr) = runner.join().expect("session");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(read(&out.join("code")).trim(), "0", "{stderr}");
    assert!(read(&out.join("ls")).contains("reports"), "{}: {stderr}", read(&out.join("ls")));
    let sent = proxy.sent();
    assert!(sent.contains(&format!("Credential={key}/")), "not signed with the minted key: {sent}");
    assert!(!sent.contains(&s.access_key_id), "the held key reached the tool's request");
    assert!(sent.to_ascii_lowercase().contains("x-amz-security-token:"), "no session token sent: {sent}");

    let records = minted_records(&t);
    let started = records
        .iter()
        .find(|r| r["outcome"] != "revoked")
        .unwrap_or_else(|| panic!("the start is audited with the session: {records:?}"));
    let minted = started["minted"].as_str().expect("minted");
    assert!(minted.starts_with("sts session guardsh-") && minted.contains(&key), "{minted}");
    assert!(
        records.iter().any(|r| r["outcome"] == "revoked"
            && r["minted"] == minted
            && r["reason"].as_str().is_some_and(|r| r.contains("lapses by itself"))),
        "the end is audited: {records:?}"
    );
    let log = std::fs::read_to_string(t.audit_log()).expect("audit log");
    assert!(!log.contains(&s.secret_access_key), "the held secret reached the audit log");
    let secret = get(&env, "AWS_SECRET_ACCESS_KEY").expect("the minted secret");
    assert!(!log.contains(secret), "the minted secret reached the audit log");
}

#[test]
fn mint_run_more_sts_a_read_runs_with_minted_keys_in_the_sandbox() {
    sts_a_read_runs_with_minted_keys(Mode::Sandbox);
}

#[test]
fn mint_run_more_sts_a_read_runs_with_minted_keys_without_the_sandbox() {
    sts_a_read_runs_with_minted_keys(Mode::NoSandbox);
}

/// A command naming a --profile (whose keys botocore would use instead of the minted ones), and
/// any command when STS cannot be reached: nothing runs, and the reason is said.
fn sts_what_cannot_be_minted_does_not_run(mode: Mode) {
    let Some(bin) = aws_bin() else { return };
    let s = crate::mint_sts::setup(&bin);
    let proxy = Proxy::start(&s.moto.endpoint);
    proxy.released.store(true, Ordering::SeqCst);
    let keys = (s.access_key_id.clone(), s.secret_access_key.clone());
    let Some(t) = sts_world(&bin, &s, mode, &s.moto.endpoint) else { return };
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let script = format!("aws --profile x s3 ls > {o}/ls; echo $? > {o}/code", o = out.display());
    let (code, _, stderr) = sts_session(&t, mode, &keys, &proxy.endpoint, &script);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(read(&out.join("code")).trim(), "77", "{stderr}");
    assert_eq!(read(&out.join("ls")), "", "{stderr}");
    assert!(stderr.contains("no credential could be minted for aws") && stderr.contains("--profile"), "{stderr}");

    // Nothing listens where STS should be.
    let gone = format!("http://127.0.0.1:{}", crate::mint_bao::free_port());
    let Some(t) = sts_world(&bin, &s, mode, &gone) else { return };
    let out = t.cwd.join("out");
    std::fs::create_dir(&out).expect("mkdir");
    let script = format!("aws s3 ls > {o}/ls; echo $? > {o}/code", o = out.display());
    let (code, _, stderr) = sts_session(&t, mode, &keys, &proxy.endpoint, &script);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(read(&out.join("code")).trim(), "77", "{stderr}");
    assert_eq!(read(&out.join("ls")), "", "{stderr}");
    assert!(stderr.contains("no credential could be minted for aws") && stderr.contains("STS call"), "{stderr}");
    assert!(!stderr.contains(&s.secret_access_key), "{stderr}");
    assert_eq!(proxy.connections.load(Ordering::SeqCst), 0, "a refused aws reached the endpoint");
    assert!(minted_records(&t).is_empty(), "{:?}", minted_records(&t));
}

#[test]
fn mint_run_more_sts_what_cannot_be_minted_does_not_run_in_the_sandbox() {
    sts_what_cannot_be_minted_does_not_run(Mode::Sandbox);
}

#[test]
fn mint_run_more_sts_what_cannot_be_minted_does_not_run_without_the_sandbox() {
    sts_what_cannot_be_minted_does_not_run(Mode::NoSandbox);
}
