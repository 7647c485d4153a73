//! Mints a short-lived PostgreSQL login role granted one run's [`Scope`], and revokes it after.
//!
//! guardsh holds an admin credential (a role with `CREATEROLE` that owns, or holds `WITH GRANT
//! OPTION`, the tables agents may touch). For one approved psql run, [`mint`] creates a role
//! `<prefix><label>_<random>` with a random password, valid for `ttl_seconds`, allowed one
//! connection, granted `CONNECT` on the database, `USAGE` on the schemas named, and the table
//! privileges of the [`Scope`]; all in one transaction, checked with `has_*_privilege` before it
//! commits (a `GRANT` the admin cannot make is only a warning in PostgreSQL). The tool is then
//! started with that role and password instead of the held secret; [`Lease::revoke`] ends its
//! sessions and drops it when the tool exits.
//!
//! The admin connection is the given psql binary with a cleared environment, the connection in
//! `PG*` variables and the password in `PGPASSWORD` (never argv), the SQL on stdin, and a time
//! limit. The role's password never reaches the server: it gets a SCRAM-SHA-256 verifier
//! (RFC 5802/7677) computed here, which is what PostgreSQL stores anyway, so a statement log
//! shows no password.
//!
//! `read_role`: when the run only reads and a read role is configured (`pg_read_all_data`, or a
//! role of the site's own), the minted role is granted that role *instead of* per-table SELECTs
//! and schema USAGE: the read role is the site's own statement of what a reader may see, and it
//! lets reads of tables the admin cannot grant on (views owned by others, catalogs of
//! extensions) work. Without one, reads are granted table by table like writes.
//!
//! Safe set-up, and what a minted role is not:
//! - Use PostgreSQL 16 or later, where a `CREATEROLE` role can only grant roles it holds with
//!   ADMIN OPTION. On 15 and earlier a `CREATEROLE` holder can grant any non-superuser role (a
//!   leaked admin credential can make itself `pg_read_all_data`, `pg_write_all_data`,
//!   `pg_execute_server_program`): there, mint through a `SECURITY DEFINER` function owned by
//!   a role that may only do this, or upgrade.
//! - PostgreSQL 14 or later (revoking waits for sessions with `pg_terminate_backend(pid, timeout)`).
//!   On 16+, granting `read_role` needs the admin to hold it `WITH ADMIN OPTION` (add
//!   `INHERIT FALSE, SET FALSE` so the admin itself cannot read through it).
//! - The admin is granted each minted role (`GRANT r TO CURRENT_USER`): on 15 `DROP OWNED` and
//!   `pg_terminate_backend` need it. The minted role is never granted the admin.
//! - `SET ROLE` is not a boundary: a role can `SET ROLE` to any role it is a member of, and
//!   `RESET ROLE` undoes it. The minted role is a member of nothing but `read_role`.
//! - `VALID UNTIL` is checked only at login: a session outlives it. Revoking ends sessions
//!   (`pg_terminate_backend`) after making the role `NOLOGIN`, and only then drops it.
//! - `PUBLIC` keeps what it has: CONNECT and TEMP on databases, USAGE on `public`, EXECUTE on
//!   functions, and CREATE on `public` in databases created before PostgreSQL 15. Revoke those
//!   from PUBLIC on a database where that matters.
//! - Table-level DELETE allows `DELETE FROM t` without WHERE; the scope is per table, not per row.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::pg_scope::{Privilege, Scope};

/// How long one admin psql run may take before it is killed and the operation fails.
const ADMIN_TIME_LIMIT: Duration = Duration::from_secs(10);
/// PBKDF2 rounds in the verifier: PostgreSQL's default (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;
/// The longest role name PostgreSQL keeps (NAMEDATALEN - 1).
const MAX_ROLE_NAME: usize = 63;
/// How many characters of the label (the request id) go into the role name.
const LABEL_CHARS: usize = 20;

/// Where and how to mint: one `[mint.psql]` table of the base policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Host name, address, or the directory of the server's Unix socket.
    pub host: String,
    pub port: u16,
    pub dbname: String,
    /// The role guardsh connects as: `CREATEROLE`, and owner or grant option on the tables.
    pub admin_user: String,
    /// How long the minted password is accepted at login (default 900).
    pub ttl_seconds: u64,
    /// A role granted instead of per-table SELECTs when the run only reads (see the module doc).
    pub read_role: Option<String>,
    /// The start of every minted role's name (default `guardsh_`), so they can be found.
    pub role_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "localhost".into(),
            port: 5432,
            dbname: "postgres".into(),
            admin_user: "postgres".into(),
            ttl_seconds: 900,
            read_role: None,
            role_prefix: "guardsh_".into(),
        }
    }
}

/// The right to remove one minted role: what [`Lease::revoke`] needs. Dropping a lease that was
/// not revoked revokes it (best effort; errors are lost), so a role never outlives its run by
/// more than a crash.
pub struct Lease {
    role: String,
    cfg: Config,
    psql: PathBuf,
    admin_password: Zeroizing<String>,
    done: bool,
}

/// A minted role: its name and password go to the tool (`PGUSER`, `PGPASSWORD`); the lease
/// stays with guardsh.
pub struct Minted {
    pub role: String,
    pub password: Zeroizing<String>,
    pub lease: Lease,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted").field("role", &self.role).field("password", &"<redacted>").finish()
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("role", &self.role).field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// Creates a login role granted `scope` for one run. `psql` is the absolute path of the real
/// psql the caller resolved; `label` (the request id) goes into the role's name so the server's
/// own logs can be matched to guardsh's audit. An `Err` leaves no role behind, or says which.
pub fn mint(cfg: &Config, psql: &Path, admin_password: &str, scope: &Scope, label: &str) -> Result<Minted, String> {
    if !psql.is_absolute() {
        return Err(format!("psql must be an absolute path to mint a role, not {}", psql.display()));
    }
    if cfg.ttl_seconds == 0 || cfg.ttl_seconds > 86_400 {
        return Err(format!(
            "[mint.psql] ttl_seconds is {}; set it between 1 and 86400 (the default is 900)",
            cfg.ttl_seconds
        ));
    }
    let random = crate::random::token(12).map_err(|e| format!("cannot read random bytes to name a role ({e})"))?;
    let role = role_name(&cfg.role_prefix, label, &random)?;
    // 52 characters of 32 each: 260 bits.
    let password =
        Zeroizing::new(crate::random::token(52).map_err(|e| format!("cannot read random bytes for a password ({e})"))?);
    let salt = random_bytes::<16>()?;
    let verifier = scram_verifier(&password, &salt, SCRAM_ITERATIONS);
    let tag = crate::random::token(10).map_err(|e| format!("cannot read random bytes ({e})"))?;
    let sql = mint_sql(cfg, &role, &verifier, scope, &format!("$gm_{tag}$"))?;
    let lease = Lease {
        role: role.clone(),
        cfg: cfg.clone(),
        psql: psql.to_path_buf(),
        admin_password: Zeroizing::new(admin_password.to_owned()),
        done: false,
    };
    match run_admin(cfg, psql, admin_password, &sql, true) {
        Ok(_) => Ok(Minted { role, password, lease }),
        Err(Failure::Refused(why)) => {
            // One transaction that did not commit: nothing to clean up.
            let mut lease = lease;
            lease.done = true;
            Err(format!("could not mint a PostgreSQL role for this run: {why}"))
        }
        Err(Failure::TimedOut) => match lease.revoke() {
            // Killed: the commit may or may not have happened.
            Ok(()) => Err(format!(
                "could not mint a PostgreSQL role for this run: the server did not answer within {} s",
                ADMIN_TIME_LIMIT.as_secs()
            )),
            Err(why) => Err(format!("minting timed out, and the role may be left behind: {why}")),
        },
    }
}

impl Lease {
    /// The minted role's name.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Ends the role's sessions and drops it, with everything granted to or owned by it. A role
    /// already gone is fine. An `Err` names the role, for the audit record.
    pub fn revoke(mut self) -> Result<(), String> {
        self.done = true;
        self.revoke_now()
    }

    fn revoke_now(&self) -> Result<(), String> {
        let tag = crate::random::token(10)
            .map_err(|e| format!("could not revoke the minted role {}: no random bytes ({e})", self.role))?;
        let sql = revoke_sql(&self.role, &format!("$gr_{tag}$"))
            .map_err(|why| format!("could not revoke the minted role {}: {why}", self.role))?;
        run_admin(&self.cfg, &self.psql, &self.admin_password, &sql, false).map(|_| ()).map_err(|f| {
            let why = match f {
                Failure::Refused(why) => why,
                Failure::TimedOut => format!("the server did not answer within {} s", ADMIN_TIME_LIMIT.as_secs()),
            };
            format!(
                "could not revoke the minted role {} ({why}); it stays usable until it expires: drop it by hand (DROP OWNED BY / DROP ROLE)",
                self.role
            )
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let _ = self.revoke_now();
        }
    }
}

/// `prefix` + the label's letters, digits and underscores (lower case, at most 20) + `_` +
/// the random part. Refuses a prefix PostgreSQL reserves or that would make the name too long.
fn role_name(prefix: &str, label: &str, random: &str) -> Result<String, String> {
    let valid_prefix = prefix.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && prefix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !prefix.starts_with("pg_");
    if !valid_prefix {
        return Err(format!(
            "[mint.psql] role_prefix {prefix:?} must start with a lower-case letter or _, hold only a-z, 0-9 and _, and not start with pg_"
        ));
    }
    let label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(|c| c.to_ascii_lowercase())
        .take(LABEL_CHARS)
        .collect();
    let name = if label.is_empty() { format!("{prefix}{random}") } else { format!("{prefix}{label}_{random}") };
    if name.len() > MAX_ROLE_NAME {
        return Err(format!("[mint.psql] role_prefix {prefix:?} is too long: role names hold at most 63 bytes"));
    }
    Ok(name)
}

/// An identifier for SQL: in double quotes, inner ones doubled. Refuses a NUL, which no
/// PostgreSQL name can hold.
fn ident(name: &str) -> Result<String, String> {
    if name.contains('\0') {
        return Err("a name with a NUL byte cannot be granted".into());
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// A string literal: in single quotes, inner ones doubled (the script turns
/// `standard_conforming_strings` on, so a backslash is just a backslash).
fn literal(text: &str) -> Result<String, String> {
    if text.contains('\0') {
        return Err("a name with a NUL byte cannot be granted".into());
    }
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// `"schema"."table"`, or `"table"` for the search path to resolve.
fn qualified(schema: Option<&str>, table: &str) -> Result<String, String> {
    Ok(match schema {
        Some(s) => format!("{}.{}", ident(s)?, ident(table)?),
        None => ident(table)?,
    })
}

/// Schemas whose objects every role may already use.
fn is_catalog_schema(schema: &str) -> bool {
    schema == "pg_catalog" || schema == "information_schema"
}

/// The mint script: one transaction (psql `--single-transaction`). `tag` is a dollar-quote tag
/// no name may contain.
fn mint_sql(cfg: &Config, role: &str, verifier: &str, scope: &Scope, tag: &str) -> Result<String, String> {
    let r = ident(role)?;
    let r_lit = literal(role)?;
    let use_read_role = scope.is_read_only() && !scope.tables.is_empty();
    let read_role = cfg.read_role.as_deref().filter(|_| use_read_role);
    let inherit = if read_role.is_some() { "INHERIT" } else { "NOINHERIT" };
    let mut sql = String::from("SET standard_conforming_strings = on;\nSET client_min_messages = error;\n");
    // VALID UNTIL takes a constant, so the server's own clock computes it inside a DO block.
    sql.push_str(&format!(
        "DO {tag}BEGIN EXECUTE format('CREATE ROLE %I LOGIN {inherit} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 1 PASSWORD %L VALID UNTIL %L', {r_lit}, {}, now() + make_interval(secs => {})); END{tag};\n",
        literal(verifier)?,
        cfg.ttl_seconds
    ));
    // So that revoking can end the role's sessions and drop what it holds (PostgreSQL 15).
    sql.push_str(&format!("GRANT {r} TO CURRENT_USER;\n"));
    sql.push_str(&format!("GRANT CONNECT ON DATABASE {} TO {r};\n", ident(&cfg.dbname)?));
    // Checked before commit: PostgreSQL only warns about a GRANT the admin cannot make.
    let mut checks = vec![(
        format!("has_database_privilege({r_lit}, {}, 'CONNECT')", literal(&cfg.dbname)?),
        format!("CONNECT on database {}", cfg.dbname),
    )];
    if let Some(read_role) = read_role {
        sql.push_str(&format!("GRANT {} TO {r};\n", ident(read_role)?));
        checks.push((
            format!("pg_has_role({r_lit}, {}, 'USAGE')", literal(read_role)?),
            format!("membership in {read_role}"),
        ));
    } else {
        for schema in scope.schemas().into_iter().filter(|s| !is_catalog_schema(s)) {
            sql.push_str(&format!("GRANT USAGE ON SCHEMA {} TO {r};\n", ident(schema)?));
            checks.push((
                format!("has_schema_privilege({r_lit}, {}, 'USAGE')", literal(schema)?),
                format!("USAGE on schema {schema}"),
            ));
        }
        for t in scope.tables.iter().filter(|t| !t.privileges.is_empty()) {
            let table = qualified(t.schema.as_deref(), &t.table)?;
            let privileges: Vec<&str> = t.privileges.iter().map(|p| p.keyword()).collect();
            sql.push_str(&format!("GRANT {} ON TABLE {table} TO {r};\n", privileges.join(", ")));
            for p in &t.privileges {
                checks.push((
                    format!("has_table_privilege({r_lit}, {}, '{}')", literal(&table)?, p.keyword()),
                    format!("{} on {table}", p.keyword()),
                ));
            }
            if t.privileges.contains(&Privilege::Insert) {
                // A serial column's default calls nextval() on the sequence the column owns.
                sql.push_str(&format!(
                    "DO {tag}DECLARE s regclass; BEGIN FOR s IN SELECT d.objid::regclass FROM pg_depend d JOIN pg_class c ON c.oid = d.objid AND c.relkind = 'S' WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.refobjid = {}::regclass AND d.deptype = 'a' LOOP EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', s, {r_lit}); END LOOP; END{tag};\n",
                    literal(&table)?
                ));
            }
        }
    }
    sql.push_str(&format!("DO {tag}BEGIN\n"));
    for (test, what) in &checks {
        let message =
            format!("the admin role could not grant {what} (it needs to own it or hold it WITH GRANT OPTION)");
        sql.push_str(&format!("IF NOT {test} THEN RAISE EXCEPTION '%', {}; END IF;\n", literal(&message)?));
    }
    sql.push_str(&format!("END{tag};\n"));
    if body_holds_tag(&sql, tag) {
        return Err("a table name holds the script's quoting tag; try again".into());
    }
    Ok(sql)
}

/// Does the tag appear other than where the script put it (each DO block opens and closes it
/// once)?
fn body_holds_tag(sql: &str, tag: &str) -> bool {
    let blocks = sql.matches(&format!("DO {tag}")).count();
    sql.matches(tag).count() != 2 * blocks
}

/// The revoke script, each statement its own transaction: no more logins, end the sessions
/// (waiting up to 5 s for each to go), then drop what the role owns and holds, and the role.
/// Dropped, not handed to the admin (`REASSIGN OWNED`): a minted role creates nothing a decided
/// statement needs kept (pg_scope refuses DDL), and whatever it did create (a `SECURITY DEFINER`
/// function in a schema PUBLIC may write) would otherwise run as the admin (review finding F4).
/// Nothing happens to a role that is already gone.
fn revoke_sql(role: &str, tag: &str) -> Result<String, String> {
    let r_lit = literal(role)?;
    let sql = format!(
        "SET standard_conforming_strings = on;\n\
         SET client_min_messages = error;\n\
         DO {tag}BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = {r_lit}) THEN EXECUTE format('ALTER ROLE %I NOLOGIN', {r_lit}); END IF; END{tag};\n\
         SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity WHERE usename = {r_lit};\n\
         DO {tag}BEGIN\n\
         IF EXISTS (SELECT FROM pg_stat_activity WHERE usename = {r_lit}) THEN RAISE EXCEPTION 'a session of the role is still open'; END IF;\n\
         IF EXISTS (SELECT FROM pg_roles WHERE rolname = {r_lit}) THEN\n\
         EXECUTE format('DROP OWNED BY %I', {r_lit});\n\
         EXECUTE format('DROP ROLE %I', {r_lit});\n\
         END IF; END{tag};\n"
    );
    if body_holds_tag(&sql, tag) {
        return Err("the role name holds the script's quoting tag".into());
    }
    Ok(sql)
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as PostgreSQL stores it
/// (RFC 5802 section 3, RFC 7677). The password is ASCII letters and digits, which SASLprep
/// leaves as they are.
fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    use base64ct::{Base64, Encoding};
    use sha2::Digest;
    let salted = Zeroizing::new(hi(password.as_bytes(), salt, iterations));
    let client_key = hmac(salted.as_slice(), b"Client Key");
    let stored_key = sha2::Sha256::digest(client_key);
    let server_key = hmac(salted.as_slice(), b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        Base64::encode_string(salt),
        Base64::encode_string(&stored_key),
        Base64::encode_string(&server_key)
    )
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn keyed(key: &[u8]) -> HmacSha256 {
    use hmac::Mac;
    // HMAC takes a key of any length, so this cannot fail; an empty key is the fallback the
    // type asks for.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()))
}

fn mac(keyed: &HmacSha256, data: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = keyed.clone();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    mac(&keyed(key), data)
}

/// RFC 5802's Hi(): PBKDF2 with HMAC-SHA-256 for one 32-byte block. The keyed state is made
/// once and copied for each round (half the hashing of keying every round).
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let key = keyed(password);
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = mac(&key, &first);
    let mut out = u;
    for _ in 1..iterations {
        u = mac(&key, &u);
        out.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
    }
    out
}

fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| format!("cannot read random bytes for a salt ({e})"))?;
    Ok(bytes)
}

/// Why an admin psql run did not succeed.
enum Failure {
    /// psql ran and failed: the server's or psql's own reason.
    Refused(String),
    /// Killed at the time limit.
    TimedOut,
}

/// Runs `sql` as the admin with psql, within [`ADMIN_TIME_LIMIT`]; its output on success.
fn run_admin(cfg: &Config, psql: &Path, password: &str, sql: &str, one_transaction: bool) -> Result<String, Failure> {
    let mut command = Command::new(psql);
    command
        .env_clear()
        .env("PGHOST", &cfg.host)
        .env("PGPORT", cfg.port.to_string())
        .env("PGDATABASE", &cfg.dbname)
        .env("PGUSER", &cfg.admin_user)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .env("PGAPPNAME", "guardsh-mint")
        .env("PGCLIENTENCODING", "UTF8")
        .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]);
    if one_transaction {
        command.arg("--single-transaction");
    }
    command.args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| Failure::Refused(format!("cannot run {} ({e})", psql.display())))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    if let Some(mut stdin) = child.stdin.take() {
        // A psql that stopped reading (it could not connect) is seen in its status below.
        let _ = stdin.write_all(sql.as_bytes());
    }
    let deadline = Instant::now() + ADMIN_TIME_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::TimedOut);
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Refused(format!("cannot wait for psql ({e})")));
            }
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if status.success() {
        return Ok(out);
    }
    Err(Failure::Refused(reason(&err, status.code())))
}

/// psql's error, without the statement text it may quote (`LINE 1: ...`, `CONTEXT:`, `QUERY:`
/// lines could show a verifier or a name): only the error lines, shortened.
fn reason(stderr: &str, code: Option<i32>) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("ERROR:") || l.contains("FATAL:") || l.starts_with("psql: error:"))
        .take(2)
        .collect();
    if lines.is_empty() {
        return format!("psql failed (exit status {})", code.map_or("none".into(), |c| c.to_string()));
    }
    let text = lines.join(" / ");
    match text.char_indices().nth(300) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mint::pg_scope::scope;

    /// RFC 7677's example exchange (user "user", password "pencil"): the keys this module
    /// derives produce the client proof and server signature printed there.
    #[test]
    fn scram_keys_match_rfc7677() {
        use base64ct::{Base64, Encoding};
        let salt = Base64::decode_vec("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let verifier = scram_verifier("pencil", &salt, 4096);
        let (_, keys) = verifier.rsplit_once('$').expect("keys");
        let (stored, server) = keys.split_once(':').expect("two keys");
        assert!(verifier.starts_with("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"), "{verifier}");
        let auth = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_key = Base64::decode_vec(server).expect("server key");
        assert_eq!(
            Base64::encode_string(&hmac(&server_key, auth.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let salted = hi(b"pencil", &salt, 4096);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Base64::decode_vec(stored).expect("stored key");
        let signature = hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(signature).map(|(k, s)| k ^ s).collect();
        assert_eq!(Base64::encode_string(&proof), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(ident("t").expect("valid"), "\"t\"");
        assert_eq!(ident("a\"; drop table t; --").expect("valid"), "\"a\"\"; drop table t; --\"");
        assert_eq!(literal("it's").expect("valid"), "'it''s'");
        assert_eq!(literal("back\\slash").expect("valid"), "'back\\slash'");
        assert!(ident("nul\0").is_err());
        assert_eq!(qualified(Some("S x"), "t\"").expect("valid"), "\"S x\".\"t\"\"\"");
    }

    #[test]
    fn role_names() {
        assert_eq!(role_name("guardsh_", "Req-01/abc", "xyz").expect("valid"), "guardsh_req01abc_xyz");
        assert_eq!(role_name("guardsh_", "", "xyz").expect("valid"), "guardsh_xyz");
        assert_eq!(
            role_name("g_", "abcdefghijklmnopqrstuvwxyz", "r").expect("valid"),
            "g_abcdefghijklmnopqrst_r",
            "the label is cut to 20"
        );
        assert_eq!(role_name("g_", "'; drop role x", "r").expect("valid"), "g_droprolex_r");
        for bad in ["", "Guard", "pg_x", "a-b", "a\"", "1a"] {
            assert!(role_name(bad, "l", "r").is_err(), "{bad:?}");
        }
        assert!(role_name(&"a".repeat(60), "label", "random").is_err());
    }

    #[test]
    fn mint_script_grants_the_scope_and_checks_it() {
        let cfg = Config { dbname: "app".into(), ..Config::default() };
        let s = scope(&["delete from s.t where id = 1", "insert into \"Odd\"\"Name\" values (1)"]).expect("valid");
        let sql = mint_sql(&cfg, "guardsh_x", "SCRAM-SHA-256$4096:a$b:c", &s, "$gm_q$").expect("valid");
        for want in [
            "CREATE ROLE %I LOGIN NOINHERIT",
            "CONNECTION LIMIT 1",
            "GRANT \"guardsh_x\" TO CURRENT_USER;",
            "GRANT CONNECT ON DATABASE \"app\" TO \"guardsh_x\";",
            "GRANT USAGE ON SCHEMA \"s\" TO \"guardsh_x\";",
            "GRANT SELECT, DELETE ON TABLE \"s\".\"t\" TO \"guardsh_x\";",
            "GRANT INSERT ON TABLE \"Odd\"\"Name\" TO \"guardsh_x\";",
            "has_table_privilege('guardsh_x', '\"s\".\"t\"', 'DELETE')",
            "GRANT USAGE ON SEQUENCE",
        ] {
            assert!(sql.contains(want), "{want}\n{sql}");
        }
        // A reads-only scope with a read role: the role, no per-table grants.
        let cfg = Config { read_role: Some("readers".into()), ..cfg };
        let sql = mint_sql(&cfg, "r", "v", &scope(&["select * from s.t"]).expect("valid"), "$gm_q$").expect("valid");
        assert!(sql.contains("GRANT \"readers\" TO \"r\";") && sql.contains("LOGIN INHERIT"), "{sql}");
        assert!(!sql.contains("ON TABLE") && !sql.contains("ON SCHEMA"), "{sql}");
        // A write scope ignores the read role.
        let sql = mint_sql(&cfg, "r", "v", &scope(&["delete from t"]).expect("valid"), "$gm_q$").expect("valid");
        assert!(!sql.contains("\"readers\"") && sql.contains("NOINHERIT"), "{sql}");
        // A name holding the tag is refused.
        assert!(mint_sql(&cfg, "r", "v", &scope(&["delete from \"$gm_q$\""]).expect("valid"), "$gm_q$").is_err());
    }

    #[test]
    fn revoke_script_is_guarded_by_existence() {
        let sql = revoke_sql("guardsh_o'x", "$gr_q$").expect("valid");
        assert!(sql.contains("rolname = 'guardsh_o''x'"), "{sql}");
        assert!(sql.find("NOLOGIN") < sql.find("pg_terminate_backend"), "logins end before sessions are ended");
        assert!(sql.find("pg_terminate_backend") < sql.find("DROP ROLE"));
    }

    #[test]
    fn reasons_leave_statement_text_out() {
        let err = "psql:<stdin>:3: ERROR:  syntax error at or near \"x\"\nLINE 1: CREATE ROLE x PASSWORD 'SCRAM-SHA-256$4096:...'\n        ^\nCONTEXT:  SQL statement \"CREATE ROLE\"\n";
        let why = reason(err, Some(3));
        assert!(why.contains("syntax error") && !why.contains("SCRAM") && !why.contains("CONTEXT"), "{why}");
        assert_eq!(reason("", Some(2)), "psql failed (exit status 2)");
    }
}
