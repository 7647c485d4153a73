//! The OpenBao / HashiCorp Vault provider: a lease-bearing secret's fields as a tool's variables, the lease revoked after.
//!
//! Vault's HTTP API, the same on OpenBao: `GET {address}/v1/{path}` with `X-Vault-Token` (and
//! `X-Vault-Namespace`) answers `{lease_id, lease_duration, renewable, data: {...}}`; `PUT
//! {address}/v1/sys/leases/revoke/{lease_id}` ends the lease, and the secrets engine then drops
//! what it made (for the database engine: runs the role's revocation statements). The held token
//! needs `read` on the secret's path and `update` on `sys/leases/revoke/PATH/*`, nothing more.
//!
//! Only a secret with a lease is accepted: a static secret has nothing to revoke, so the command
//! would leave a credential behind that outlives it. Once a lease exists, every later failure
//! revokes it before returning, so a refused mint leaves nothing behind.
//!
//! The token is sent only in its header: never in a URL, an error or a `Debug` form. Plain
//! `http://` is accepted only for a server on this machine (the dev server); anything else must be
//! `https://`, verified by rustls against the Mozilla roots built into ureq (webpki-roots; a
//! server under a private CA is refused until a CA option exists). Redirects are not followed
//! (the token would go with them) and proxy variables are not read (the address is the policy's,
//! not the environment's). Every call has connect and answer deadlines.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use zeroize::Zeroizing;

/// How long to wait for a TCP (and TLS) connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the answer's head, and then for its body, once the request is sent. The
/// database engine answers in well under a second; a server that takes longer is in trouble.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// The whole call, whatever its phases: a server that trickles bytes cannot hold a command longer.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// A secret's answer is a few hundred bytes; anything near this is not a secret's answer.
const MAX_ANSWER: u64 = 1 << 20;
/// The header that carries the caller's label (the approval's request id). Vault and OpenBao keep
/// a request header in their audit log once `sys/config/auditing/request-headers/X-Guardsh-Label`
/// names it, so the server's audit and guardsh's can be joined; otherwise the server ignores it.
pub const LABEL_HEADER: &str = "X-Guardsh-Label";
/// Longest label sent; request ids are far shorter.
const MAX_LABEL: usize = 200;

/// One `[mint.TOOL]` table for this provider, as the policy states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `http://127.0.0.1:8200` (this machine only) or `https://...`, optionally with a path prefix.
    pub address: String,
    /// The secret read for a command decided as a read, e.g. `database/creds/readonly`.
    pub read_path: String,
    /// The secret read for an approved write; `None`: writes get no minted credential (refused).
    pub write_path: Option<String>,
    /// Tool variable ⇒ field of the secret's `data`, e.g. `PGUSER` ⇒ `username`.
    pub env: BTreeMap<String, String>,
    /// Vault Enterprise / OpenBao namespace, sent as `X-Vault-Namespace`.
    pub namespace: Option<String>,
}

/// A lease to end after the tool exits. Holds a copy of the token, wiped when dropped. Dropping a
/// lease without `revoke` leaves the credential alive until its TTL ends.
pub struct Lease {
    lease_id: String,
    address: String,
    token: Zeroizing<String>,
    namespace: Option<String>,
}

/// A variable for the tool: its name and the secret's value, wiped when dropped.
pub type Variable = (String, Zeroizing<String>);

/// What one mint made: the variables for the tool, and the lease to revoke after it.
pub struct Minted {
    pub lease_id: String,
    pub ttl_seconds: u64,
    pub env: Vec<Variable>,
    pub lease: Lease,
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("lease_id", &self.lease_id)
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Minted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Minted")
            .field("lease_id", &self.lease_id)
            .field("ttl_seconds", &self.ttl_seconds)
            .field("env", &names)
            .field("lease", &self.lease)
            .finish()
    }
}

impl Config {
    /// The provider's table as the policy compiler read it (`[mint.TOOL]`, src/mint/settings.rs);
    /// `secret_from` names the held token's variable, which the caller looks up.
    pub(crate) fn from_settings(o: &super::settings::OpenBao) -> Config {
        Config {
            address: o.address.clone(),
            read_path: o.read_path.clone(),
            write_path: o.write_path.clone(),
            env: o.env.iter().cloned().collect(),
            namespace: o.namespace.clone(),
        }
    }

    /// Everything about the table that can be wrong before talking to a server. The lead's
    /// policy compiler can call this so a bad table fails at load, not at the first command.
    pub fn check(&self) -> Result<(), String> {
        check_address(&self.address)?;
        check_path("read_path", &self.read_path)?;
        if let Some(write) = &self.write_path {
            check_path("write_path", write)?;
        }
        if let Some(ns) = &self.namespace {
            check_path("namespace", ns)?;
        }
        if self.env.is_empty() {
            return Err("[mint] env names no variable, so a minted secret would reach the tool as nothing; \
                        map each tool variable to a field of the secret, e.g. PGUSER = \"username\""
                .into());
        }
        for (var, field) in &self.env {
            if !is_variable_name(var) {
                return Err(format!(
                    "[mint] env: `{}` is not an environment variable name; use letters, digits and _",
                    printable(var)
                ));
            }
            if field.is_empty() || field.chars().any(|c| c.is_control()) {
                return Err(format!(
                    "[mint] env: {var} names no usable field of the secret; give the field's name, e.g. \"username\""
                ));
            }
        }
        Ok(())
    }

    /// The secret to read for a command decided as a read or an approved write.
    pub fn path_for(&self, write: bool) -> Result<&str, String> {
        if !write {
            return Ok(&self.read_path);
        }
        self.write_path.as_deref().ok_or_else(|| {
            "no credential is minted for writes: this [mint] table has no write_path; \
             add one naming a role allowed to write, or run the command with a held credential"
                .to_string()
        })
    }
}

impl Lease {
    pub fn lease_id(&self) -> &str {
        &self.lease_id
    }

    /// Ends the lease now; the secrets engine drops what it made (the database role) before the
    /// server answers (`sync` is Vault's default). On failure the message names the lease and
    /// the command that revokes it by hand, since the credential otherwise lives to its TTL.
    pub fn revoke(self) -> Result<(), String> {
        revoke(&self.address, &self.token, self.namespace.as_deref(), &self.lease_id).map_err(|e| {
            format!(
                "{e}; the credential stays valid until its lease ends unless revoked by hand: bao lease revoke {}",
                crate::display::shell_quote(std::ffi::OsStr::new(&self.lease_id))
            )
        })
    }
}

/// Reads the secret at `path` (one of `cfg`'s paths) with `token`, and returns its configured
/// fields as variables with the lease to revoke. `label` (the approval's request id) goes to the
/// server as `X-Guardsh-Label` for its audit log.
pub fn mint(cfg: &Config, token: &str, path: &str, label: &str) -> Result<Minted, String> {
    cfg.check()?;
    check_token(token)?;
    if path != cfg.read_path && Some(path) != cfg.write_path.as_deref() {
        return Err(format!(
            "refusing to read {} from OpenBao: the [mint] table names only {}{}",
            printable(path),
            cfg.read_path,
            cfg.write_path.as_deref().map(|w| format!(" and {w}")).unwrap_or_default()
        ));
    }
    check_label(label)?;
    let address = cfg.address.trim_end_matches('/');
    let url = format!("{address}/v1/{path}");
    let mut request = agent().get(&url).header("X-Vault-Token", token).header("X-Vault-Request", "true");
    if !label.is_empty() {
        request = request.header(LABEL_HEADER, label);
    }
    if let Some(ns) = &cfg.namespace {
        request = request.header("X-Vault-Namespace", ns.as_str());
    }
    let response = request.call().map_err(|e| transport_error(address, &e))?;
    let (status, body) = read_answer(response, address)
        .map_err(|e| format!("{e} (a lease the read may have made ends with its TTL)"))?;
    if status != 200 {
        return Err(answer_error(status, &body, token, &format!("reading {path}")));
    }
    let (lease_id, outcome) = examine(cfg, &body, path);
    match outcome {
        Ok((ttl_seconds, env)) => Ok(Minted {
            lease: Lease {
                lease_id: lease_id.clone(),
                address: address.to_string(),
                token: Zeroizing::new(token.to_string()),
                namespace: cfg.namespace.clone(),
            },
            lease_id,
            ttl_seconds,
            env,
        }),
        Err(reason) if lease_id.is_empty() => Err(reason),
        Err(reason) => match revoke(address, token, cfg.namespace.as_deref(), &lease_id) {
            Ok(()) => Err(format!("{reason} (the lease it made, {lease_id}, was revoked)")),
            Err(e) => Err(format!(
                "{reason}; and revoking the lease it made failed: {e}; revoke it by hand: bao lease revoke {}",
                crate::display::shell_quote(std::ffi::OsStr::new(&lease_id))
            )),
        },
    }
}

/// `PUT sys/leases/revoke/LEASE_ID`: the lease in the URL rather than the body, so the held
/// token's policy can allow revoking only its own role's leases (`path
/// "sys/leases/revoke/database/creds/reader/*" { capabilities = ["update"] }`) instead of every
/// lease on the server. The body repeats it, as Vault's CLI sends it.
fn revoke(address: &str, token: &str, namespace: Option<&str>, lease_id: &str) -> Result<(), String> {
    check_path("lease_id", lease_id)?;
    let url = format!("{address}/v1/sys/leases/revoke/{lease_id}");
    let body = serde_json::json!({ "lease_id": lease_id }).to_string();
    let send = || {
        let mut request = agent()
            .put(&url)
            .header("X-Vault-Token", token)
            .header("X-Vault-Request", "true")
            .header("Content-Type", "application/json");
        if let Some(ns) = namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        request.send(body.as_bytes())
    };
    // A connection that failed outright (refused, reset) is tried once more: revoking is
    // idempotent, and a lease left alive is a credential left alive. A timeout is not retried.
    let response = match send() {
        Err(e) if !matches!(e, ureq::Error::Timeout(_)) => {
            std::thread::sleep(Duration::from_millis(250));
            send()
        }
        sent => sent,
    };
    let response = response.map_err(|e| transport_error(address, &e))?;
    let (status, answer) = read_answer(response, address)?;
    match status {
        200 | 204 => Ok(()),
        _ => Err(answer_error(status, &answer, token, &format!("revoking lease {lease_id}"))),
    }
}

/// One client per call: a mint happens once per approved command, so there is nothing to pool,
/// and a fresh agent carries no state between tokens.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(ANSWER_TIMEOUT))
        .timeout_recv_body(Some(ANSWER_TIMEOUT))
        .timeout_global(Some(CALL_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .build()
        .new_agent()
}

fn read_answer(
    mut response: ureq::http::Response<ureq::Body>,
    address: &str,
) -> Result<(u16, Zeroizing<String>), String> {
    let status = response.status().as_u16();
    let body =
        response.body_mut().with_config().limit(MAX_ANSWER).read_to_string().map_err(|e| {
            format!("reading OpenBao's answer from {address} failed: {e}; try again, or check the server")
        })?;
    Ok((status, Zeroizing::new(body)))
}

fn transport_error(address: &str, e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => format!(
            "OpenBao at {address} did not answer in time ({} s to connect, {} s to answer); \
             check that the server is up and reachable from here",
            CONNECT_TIMEOUT.as_secs(),
            ANSWER_TIMEOUT.as_secs()
        ),
        // rustls's verdict reaches ureq as an I/O error; its text is the only place it shows.
        _ if e.to_string().contains("certificate") => format!(
            "could not reach OpenBao at {address}: {e}; its certificate is not signed by a root guardsh trusts \
             (the Mozilla roots): give the server such a certificate"
        ),
        _ => format!("could not reach OpenBao at {address}: {e}; check that the server runs and the [mint] address"),
    }
}

/// The reason for an answer other than success, quoting the server's `errors` (never the token).
fn answer_error(status: u16, body: &str, token: &str, doing: &str) -> String {
    let errors = quoted_errors(body, token);
    let said = if errors.is_empty() { String::new() } else { format!(": {errors}") };
    match status {
        300..=399 => format!(
            "OpenBao answered {doing} with a redirect ({status}); guardsh does not follow redirects with a token: \
             set the [mint] address to the server that answers (the active node)"
        ),
        400 => format!("OpenBao refused {doing} (400{said}); check the [mint] path and the role it names"),
        403 => format!(
            "OpenBao refused the held token {doing} (403 permission denied{said}); check that the token is valid \
             and that its policy allows this path"
        ),
        404 => format!(
            "OpenBao has nothing for {doing} (404{said}); check the [mint] path and namespace, and that the role exists"
        ),
        503 => format!("OpenBao is sealed or not ready ({doing}: 503{said}); unseal it or wait, then run again"),
        500..=599 => format!("OpenBao failed {doing} ({status}{said}); see the server's log"),
        _ => format!("OpenBao answered {doing} with {status}{said}"),
    }
}

/// `{"errors": ["...", ...]}` as one line: controls escaped, each message bounded, and the
/// token blanked should a server ever echo it.
fn quoted_errors(body: &str, token: &str) -> String {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<serde_json::Value>,
    }
    let Ok(parsed) = serde_json::from_str::<Errors>(body) else {
        return String::new();
    };
    let mut out = Vec::new();
    for e in parsed.errors.iter().take(5) {
        let text = match e {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let text = if token.is_empty() { text } else { text.replace(token, "<token>") };
        let mut text = printable(&text);
        if text.chars().count() > 300 {
            text = text.chars().take(300).collect::<String>() + "...";
        }
        out.push(format!("\"{text}\""));
    }
    out.join(", ")
}

/// The part of a secret's answer the provider reads; other fields (`renewable`, `warnings`,
/// `auth`, ...) are ignored.
#[derive(Deserialize)]
struct SecretReply {
    #[serde(default)]
    lease_id: Option<String>,
    #[serde(default)]
    lease_duration: Option<u64>,
    #[serde(default)]
    data: Option<BTreeMap<String, Field>>,
}

/// One value of the secret's `data`: a string is kept in wiped memory; anything else only by its
/// kind, for the error message.
enum Field {
    Text(Zeroizing<String>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldVisitor)
    }
}

struct FieldVisitor;

impl<'de> Visitor<'de> for FieldVisitor {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Field, E> {
        Ok(Field::Text(Zeroizing::new(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Field, E> {
        Ok(Field::Text(Zeroizing::new(v)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Field, E> {
        Ok(Field::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Field, E> {
        Ok(Field::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Field, E> {
        Ok(Field::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Field, E> {
        Ok(Field::Other("a number"))
    }
    fn visit_unit<E>(self) -> Result<Field, E> {
        Ok(Field::Other("null"))
    }
    fn visit_none<E>(self) -> Result<Field, E> {
        Ok(Field::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Other("a list"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other("an object"))
    }
}

/// The lease id the answer carries (empty if none; to revoke, whatever else is wrong) and the
/// TTL and the tool's variables, or why the secret cannot be used. A lease id that is not a plain
/// path is refused: it could not be revoked through its URL.
fn examine(cfg: &Config, body: &str, path: &str) -> (String, Result<(u64, Vec<Variable>), String>) {
    let reply: SecretReply = match serde_json::from_str(body) {
        Ok(reply) => reply,
        Err(e) => {
            // serde's message can quote the value it choked on, which may be the secret: only
            // the kind and place of the error are shown. The lease id, if it can be read, is kept
            // so the lease can still be revoked.
            #[derive(Deserialize)]
            struct LeaseOnly {
                #[serde(default)]
                lease_id: Option<String>,
            }
            let lease = serde_json::from_str::<LeaseOnly>(body).ok().and_then(|l| l.lease_id).unwrap_or_default();
            let reason = format!(
                "OpenBao's answer for {path} is not a secret's JSON ({:?} error at line {}, column {}); \
                 check that the [mint] address points at OpenBao or Vault",
                e.classify(),
                e.line(),
                e.column()
            );
            return (lease, Err(reason));
        }
    };
    let lease_id = reply.lease_id.clone().unwrap_or_default();
    if lease_id.is_empty() {
        let reason = format!(
            "{path} is a static secret (no lease): it cannot be revoked after the command, so it is not minted; \
             point the [mint] table at a dynamic secrets engine's path, e.g. database/creds/ROLE"
        );
        return (lease_id, Err(reason));
    }
    if let Err(e) = check_path("lease_id", &lease_id) {
        return (lease_id, Err(format!("OpenBao answered {path} with a lease id guardsh cannot use: {e}")));
    }
    let outcome = fields_for_tool(cfg, &reply, path);
    (lease_id, outcome)
}

/// The lease's TTL and the tool's variables, in `cfg.env`'s order, or why the secret cannot be
/// used: every configured field must be a non-empty string an environment can carry.
fn fields_for_tool(cfg: &Config, reply: &SecretReply, path: &str) -> Result<(u64, Vec<Variable>), String> {
    let ttl = reply.lease_duration.unwrap_or(0);
    if ttl == 0 {
        return Err(format!(
            "the secret at {path} has a lease without a duration; refusing it, since nothing says when it ends"
        ));
    }
    let Some(data) = &reply.data else {
        return Err(format!("the secret at {path} has no data; check that the path is a dynamic secret's"));
    };
    let mut env = Vec::with_capacity(cfg.env.len());
    for (var, field) in &cfg.env {
        match data.get(field) {
            Some(Field::Text(value)) if value.is_empty() => {
                return Err(format!("the secret at {path} has an empty `{field}` (for {var})"));
            }
            Some(Field::Text(value)) if value.contains('\0') => {
                return Err(format!(
                    "the secret at {path} has a `{field}` (for {var}) with a NUL byte, which no environment can carry"
                ));
            }
            Some(Field::Text(value)) => env.push((var.clone(), value.clone())),
            Some(Field::Other(kind)) => {
                return Err(format!(
                    "the secret at {path} has `{field}` (for {var}) as {kind}, not a string; map {var} to a string field"
                ));
            }
            None => {
                let fields: Vec<String> = data.keys().map(|k| printable(k)).collect();
                return Err(format!(
                    "the secret at {path} has no field `{field}` (for {var}); it has: {}; fix the [mint] env table",
                    fields.join(", ")
                ));
            }
        }
    }
    Ok((ttl, env))
}

fn check_token(token: &str) -> Result<(), String> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the held OpenBao token is empty or has characters no token has (spaces, newlines, \
                    non-ASCII); check the variable guardsh run holds it in"
            .into());
    }
    Ok(())
}

/// An empty label is not sent (a command without an approval has no request id); any other must
/// be a plain header value, or the caller has a bug worth hearing about.
fn check_label(label: &str) -> Result<(), String> {
    if label.len() > MAX_LABEL || !label.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the request label `{}` cannot go in a header (up to {MAX_LABEL} visible ASCII characters)",
            printable(label)
        ));
    }
    Ok(())
}

/// A path (or namespace) under `/v1/`: words of letters, digits and `-_.+=@:,` between single
/// slashes. No `..` or `.` segment, no leading or doubled `/`, no `?`/`#` (they would end the path),
/// no `%` (an escaped `..`), no spaces or controls.
fn check_path(what: &str, path: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.+=@:,/".contains(c);
    let bad = if path.is_empty() {
        Some("is empty")
    } else if path.starts_with('/') {
        Some("starts with /")
    } else if let Some(c) = path.chars().find(|&c| !allowed(c)) {
        Some(match c {
            '?' | '#' => "has ? or #",
            '%' => "has a % escape",
            c if c.is_whitespace() || c.is_control() => "has a space or control character",
            _ => "has a character other than letters, digits and -_.+=@:,/",
        })
    } else if path.split('/').any(|seg| seg == ".." || seg == ".") {
        Some("has a . or .. segment")
    } else if path.trim_end_matches('/').split('/').any(str::is_empty) {
        Some("has an empty segment (//)")
    } else {
        None
    };
    match bad {
        Some(why) => Err(format!(
            "[mint] {what} `{}` {why}; give a path under /v1/ such as database/creds/readonly",
            printable(path)
        )),
        None => Ok(()),
    }
}

/// `http://` for this machine only, else `https://`; a host, no user or password, query or
/// fragment; a path prefix is allowed (a server behind a reverse proxy).
fn check_address(address: &str) -> Result<(), String> {
    let fail = |why: &str| {
        Err(format!(
            "[mint] address `{}` {why}; give https://HOST[:PORT] (or http://127.0.0.1:PORT for a server on this machine)",
            printable(address)
        ))
    };
    let (https, rest) = if let Some(rest) = address.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = address.strip_prefix("http://") {
        (false, rest)
    } else {
        return fail("is not an http:// or https:// address");
    };
    if address.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '@' | '\\')) {
        return fail("has a space, control character, ?, #, @ or \\");
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, port)) if port.is_empty() || port.starts_with(':') => host,
            _ => return fail("has an unclosed [ ]"),
        }
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return fail("names no host");
    }
    if !https {
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host == "::1"
            || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return fail("sends the token unencrypted to another machine");
        }
    }
    Ok(())
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value from the policy or the server, safe to print: control and bidi characters escaped.
fn printable(s: &str) -> String {
    crate::display::escape_text(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            address: "http://127.0.0.1:8200".into(),
            read_path: "database/creds/reader".into(),
            write_path: Some("database/creds/writer".into()),
            env: [("PGUSER", "username"), ("PGPASSWORD", "password")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            namespace: None,
        }
    }

    #[test]
    fn paths() {
        let table: &[(&str, bool)] = &[
            ("database/creds/readonly", true),
            ("aws/creds/deploy-role", true),
            ("db/creds/team_a.reader", true),
            ("kv/data/x@v=1:a,b+c", true),
            ("database/creds/readonly/", true),
            ("", false),
            ("/database/creds/readonly", false),
            ("database/../sys/leases", false),
            ("..", false),
            ("database/./creds", false),
            ("database//creds", false),
            ("database/creds/ro?x=1", false),
            ("database/creds/ro#x", false),
            ("database/creds/%2e%2e", false),
            ("database/creds/ro ro", false),
            ("database/creds/ro\nX-Evil: 1", false),
            ("database/creds/ró", false),
            ("database\\creds", false),
        ];
        for &(path, ok) in table {
            assert_eq!(check_path("read_path", path).is_ok(), ok, "{path:?}");
        }
    }

    #[test]
    fn addresses() {
        let table: &[(&str, bool)] = &[
            ("http://127.0.0.1:8200", true),
            ("http://127.0.0.1:8200/", true),
            ("http://127.9.9.9", true),
            ("http://localhost:8200", true),
            ("http://[::1]:8200", true),
            ("https://vault.example.com", true),
            ("https://vault.example.com:8200/prefix", true),
            ("https://[2001:db8::1]:8200", true),
            ("http://vault.example.com:8200", false),
            ("http://10.0.0.1:8200", false),
            ("http://127.0.0.1.evil.example", false),
            ("http://localhost.evil.example", false),
            ("http://user:pw@127.0.0.1:8200", false),
            ("https://127.0.0.1:8200?x", false),
            ("https://127.0.0.1:8200#x", false),
            ("ftp://127.0.0.1", false),
            ("127.0.0.1:8200", false),
            ("https://", false),
            ("https://[::1", false),
            ("https://vault example", false),
        ];
        for &(address, ok) in table {
            assert_eq!(check_address(address).is_ok(), ok, "{address:?}");
        }
    }

    #[test]
    fn the_policy_table_becomes_a_config() {
        let o = crate::mint::settings::OpenBao {
            address: "http://127.0.0.1:8200".into(),
            read_path: "database/creds/reader".into(),
            write_path: Some("database/creds/writer".into()),
            env: vec![("PGUSER".into(), "username".into()), ("PGPASSWORD".into(), "password".into())],
            namespace: None,
            secret_from: "VAULT_TOKEN".into(),
            server: None,
        };
        assert_eq!(Config::from_settings(&o), config());
    }

    #[test]
    fn configs() {
        assert!(config().check().is_ok());
        let mut c = config();
        c.env.clear();
        assert!(c.check().expect_err("refused").contains("names no variable"));
        let mut c = config();
        c.env.insert("PG USER".into(), "username".into());
        assert!(c.check().expect_err("refused").contains("not an environment variable name"));
        let mut c = config();
        c.env.insert("1PG".into(), "username".into());
        assert!(c.check().is_err());
        let mut c = config();
        c.env.insert("PGHOST".into(), String::new());
        assert!(c.check().is_err());
        let mut c = config();
        c.write_path = Some("../x".into());
        assert!(c.check().expect_err("refused").contains("write_path"));
        let mut c = config();
        c.namespace = Some("team a".into());
        assert!(c.check().expect_err("refused").contains("namespace"));
        assert_eq!(config().path_for(false), Ok("database/creds/reader"));
        assert_eq!(config().path_for(true), Ok("database/creds/writer"));
        let mut c = config();
        c.write_path = None;
        assert!(c.path_for(true).expect_err("refused").contains("no write_path"));
    }

    #[test]
    fn tokens_and_labels() {
        assert!(check_token("s.abcDEF123").is_ok());
        assert!(check_token("hvs.CAES-x_y").is_ok());
        for bad in ["", "a b", "tok\n", "tök", "tok\r\nX-Evil: 1"] {
            let e = check_token(bad).expect_err("refused");
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
        assert!(check_label("req-20261203-abc").is_ok());
        assert!(check_label("").is_ok());
        assert!(check_label("a b").is_err());
        assert!(check_label("a\r\nb").is_err());
        assert!(check_label(&"x".repeat(MAX_LABEL + 1)).is_err());
    }

    fn reply(json: &str) -> SecretReply {
        serde_json::from_str(json).expect("reply parses")
    }

    #[test]
    fn a_database_secret_becomes_the_tool_variables_in_order() {
        let r = reply(
            r#"{"request_id":"r","lease_id":"database/creds/reader/abc","renewable":true,"lease_duration":900,
                "data":{"password":"p\"w","username":"v-root-reader-x","extra":{"a":[1,2]}},"warnings":null}"#,
        );
        let (ttl, env) = fields_for_tool(&config(), &r, "database/creds/reader").expect("fields");
        assert_eq!(ttl, 900);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env, [("PGPASSWORD", "p\"w"), ("PGUSER", "v-root-reader-x")]);
    }

    #[test]
    fn a_secret_that_cannot_feed_the_tool_is_refused() {
        let p = "database/creds/reader";
        let cases: &[(&str, &str)] = &[
            (r#"{"lease_id":"l","lease_duration":900,"data":{"username":"u"}}"#, "no field `password`"),
            (r#"{"lease_id":"l","lease_duration":900,"data":{"username":"u","password":7}}"#, "as a number"),
            (r#"{"lease_id":"l","lease_duration":900,"data":{"username":"u","password":null}}"#, "as null"),
            (r#"{"lease_id":"l","lease_duration":900,"data":{"username":"u","password":["x"]}}"#, "as a list"),
            (r#"{"lease_id":"l","lease_duration":900,"data":{"username":"u","password":""}}"#, "empty `password`"),
            (r#"{"lease_id":"l","lease_duration":900,"data":{"username":"u","password":"a\u0000b"}}"#, "NUL"),
            (r#"{"lease_id":"l","lease_duration":900}"#, "has no data"),
            (r#"{"lease_id":"l","lease_duration":0,"data":{"username":"u","password":"p"}}"#, "without a duration"),
            (r#"{"lease_id":"l","data":{"username":"u","password":"p"}}"#, "without a duration"),
        ];
        for &(json, want) in cases {
            let e = fields_for_tool(&config(), &reply(json), p).map(|_| ()).expect_err("refused");
            assert!(e.contains(want), "{json}: {e}");
            assert!(!e.contains("\"p\""), "{e}");
        }
        // A missing field's message lists the names the secret has, never its values.
        let e = fields_for_tool(
            &config(),
            &reply(r#"{"lease_id":"l","lease_duration":9,"data":{"username":"secret-user"}}"#),
            p,
        )
        .map(|_| ())
        .expect_err("refused");
        assert!(e.contains("it has: username") && !e.contains("secret-user"), "{e}");
    }

    #[test]
    fn an_answer_is_examined_keeping_the_lease_to_revoke() {
        let p = "database/creds/reader";
        let (lease, outcome) = examine(
            &config(),
            r#"{"lease_id":"database/creds/reader/Ab1.x","lease_duration":900,"data":{"username":"u","password":"p"}}"#,
            p,
        );
        assert_eq!(lease, "database/creds/reader/Ab1.x");
        assert_eq!(outcome.map(|(ttl, env)| (ttl, env.len())), Ok((900, 2)));
        // Static secrets (KV v1 has no lease_id; KV v2 an empty one) have nothing to revoke.
        for json in [r#"{"data":{"username":"u","password":"p"}}"#, r#"{"lease_id":"","lease_duration":0,"data":{}}"#] {
            let (lease, outcome) = examine(&config(), json, p);
            assert_eq!(lease, "");
            assert!(outcome.map(|_| ()).expect_err("static").contains("static secret"), "{json}");
        }
        // A malformed answer: serde's message would quote the secret; only its kind and place are
        // shown, and the lease id, when readable, is kept for revoking.
        let (lease, outcome) =
            examine(&config(), r#"{"lease_id":"database/creds/reader/x","lease_duration":"hunter2","data":{}}"#, p);
        let e = outcome.map(|_| ()).expect_err("malformed");
        assert_eq!(lease, "database/creds/reader/x");
        assert!(e.contains("not a secret's JSON") && !e.contains("hunter2"), "{e}");
        let (lease, outcome) = examine(&config(), r#"{"lease_id":"l/x","data":"hunter2"}"#, p);
        let e = outcome.map(|_| ()).expect_err("data not a map");
        assert_eq!(lease, "l/x");
        assert!(!e.contains("hunter2"), "{e}");
        let (lease, outcome) = examine(&config(), "<html>hunter2", p);
        assert_eq!(lease, "");
        assert!(!outcome.map(|_| ()).expect_err("html").contains("hunter2"));
        // A lease id that is not a plain path is not used.
        let (lease, outcome) = examine(
            &config(),
            r#"{"lease_id":"../sys/x","lease_duration":9,"data":{"username":"u","password":"p"}}"#,
            p,
        );
        assert_eq!(lease, "../sys/x");
        assert!(outcome.map(|_| ()).expect_err("bad lease").contains("cannot use"));
    }

    #[test]
    fn errors_quote_the_server_but_never_the_token() {
        let token = "s.tokenvalue";
        let body = r#"{"errors":["permission denied","1 error occurred:\n\t* bad s.tokenvalue\n\n"]}"#;
        let e = answer_error(403, body, token, "reading database/creds/reader");
        assert!(e.contains("\"permission denied\""), "{e}");
        assert!(e.contains("403 permission denied"), "{e}");
        assert!(!e.contains(token) && e.contains("<token>") && !e.contains('\n'), "{e}");
        let e = answer_error(404, "{\"errors\":[]}", token, "reading x");
        assert!(e.contains("404") && e.contains("check the [mint] path"), "{e}");
        let e = answer_error(502, "<html>bad gateway</html>", token, "reading x");
        assert!(e.contains("502") && !e.contains("html"), "{e}");
        let e = answer_error(307, "", token, "reading x");
        assert!(e.contains("redirect"), "{e}");
        let long = format!("{{\"errors\":[\"{}\"]}}", "x".repeat(1000));
        assert!(answer_error(400, &long, token, "x").len() < 500);
    }

    #[test]
    fn debug_forms_show_no_secret() {
        let minted = Minted {
            lease_id: "database/creds/reader/abc".into(),
            ttl_seconds: 900,
            env: vec![("PGPASSWORD".into(), Zeroizing::new("hunter2".into()))],
            lease: Lease {
                lease_id: "database/creds/reader/abc".into(),
                address: "http://127.0.0.1:8200".into(),
                token: Zeroizing::new("s.roottoken".into()),
                namespace: None,
            },
        };
        let shown = format!("{minted:?}");
        assert!(shown.contains("PGPASSWORD") && shown.contains("reader/abc"), "{shown}");
        assert!(!shown.contains("hunter2") && !shown.contains("s.roottoken"), "{shown}");
    }

    #[test]
    fn mint_checks_before_any_call() {
        // Nothing listens on port 9 of 127.0.0.1 here, but these fail before connecting.
        let mut c = config();
        c.address = "http://127.0.0.1:9".into();
        let e = mint(&c, "s.tok", "sys/leases/lookup", "req-1").expect_err("refused");
        assert!(e.contains("names only database/creds/reader and database/creds/writer"), "{e}");
        assert!(
            mint(&c, "bad token", "database/creds/reader", "req-1")
                .expect_err("refused")
                .contains("held OpenBao token")
        );
        assert!(mint(&c, "s.tok", "database/creds/reader", "a\nb").expect_err("refused").contains("label"));
        c.address = "http://vault.example.com".into();
        assert!(mint(&c, "s.tok", "database/creds/reader", "r").expect_err("refused").contains("unencrypted"));
    }
}
