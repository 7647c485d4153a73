//! Minted credentials: short-lived, task-scoped credentials a credential provider makes for one
//! decided command, in place of the long-lived secret `guardsh run` holds.
//!
//! The flow (`custody::broker` inside the sandbox, `custody::server` with `--no-sandbox`): the
//! policy decides, a human approves if asked, the audit record is written; then, for a tool with a
//! `[mint.TOOL]` provider whose command the decision grants credentials, the provider mints one
//! from the held secret (`mint`), the tool gets the minted values and never the held ones, and
//! when the tool ends the credential is revoked (`Minted::revoke`). A command granted nothing
//! mints nothing; a mint that fails refuses the command with the provider's reason.
//!
//! What a credential may do is derived from what was decided: the statements a psql run holds
//! (`pg_scope`), the aws command's actions and resources (`aws_policy`), or for OpenBao the
//! role for reads or the role for writes.

pub mod aws_policy;
pub mod openbao;
pub mod pg_scope;
pub mod postgres;
pub(crate) mod settings;
pub mod sts;

use std::ffi::OsString;
use std::path::Path;

use zeroize::Zeroizing;

use crate::matching::NormalizedArgv;
pub use settings::Provider;

/// Held or minted values, by variable name.
pub type Values = Vec<(String, Zeroizing<String>)>;

/// What minting needs from the evaluation, taken when the policy names a provider for the tool.
#[derive(Debug, Clone)]
pub struct Plan {
    pub provider: Provider,
    /// The command only reads (its statements, or its catalog class): the read role, read
    /// actions, the read path.
    pub reads_only: bool,
    /// The command's class in its tool's catalog, when it has one (what STS's session policy is
    /// derived for).
    pub class: Option<crate::catalog::Class>,
    /// The statements decided on, for a database client: `None` when some were not held (an
    /// interactive session, a file guardsh did not copy), so no privileges can be derived.
    pub statements: Option<Vec<String>>,
}

/// What the broker knows when it mints, beyond the plan.
pub struct Request<'a> {
    /// Names the credential in the provider's records: the approval request's id, or a fresh
    /// one for an allowed command.
    pub label: &'a str,
    pub argv: &'a NormalizedArgv,
    /// The real tool (psql makes the admin connection with the same binary).
    pub real: &'a Path,
}

/// A credential made for one command.
pub struct Minted {
    /// Names it in the audit log (role, lease id, session name): never a secret.
    pub identity: String,
    /// What the tool gets.
    pub env: Vec<(String, Zeroizing<String>)>,
    /// Variables taken out of the tool's environment: the held secret, and any that could point
    /// the tool at another server than the one the credential was made for.
    pub remove: Vec<String>,
    lease: Lease,
}

/// What has to be undone when the tool ends.
enum Lease {
    /// The role made for the command: its sessions are ended and it is dropped.
    Postgres(postgres::Lease),
    /// The dynamic secret's lease, revoked (the secrets engine then removes the credential).
    OpenBao(openbao::Lease),
    /// STS credentials cannot be revoked; they lapse after their duration.
    Lapses,
}

impl Minted {
    /// Ends the credential: terminates its sessions and drops it, or revokes its lease. `Ok` with
    /// what was done, for the audit record.
    pub fn revoke(self) -> Result<String, String> {
        match self.lease {
            Lease::Postgres(lease) => lease.revoke().map(|()| format!("{} dropped, its sessions ended", self.identity)),
            Lease::OpenBao(lease) => lease.revoke().map(|()| format!("{} revoked", self.identity)),
            Lease::Lapses => Ok(format!("{} lapses by itself (STS credentials cannot be revoked)", self.identity)),
        }
    }

    /// The tool's environment with the minted values in place of the held ones.
    pub fn apply(&self, env: &mut Vec<(OsString, OsString)>) {
        env.retain(|(k, _)| {
            let k = k.to_string_lossy();
            !self.remove.iter().any(|r| *r == k) && !self.env.iter().any(|(n, _)| *n == k)
        });
        env.extend(self.env.iter().map(|(k, v)| (OsString::from(k), OsString::from(v.as_str()))));
    }
}

/// For a command the decision grants credentials, with a provider for its tool: mints from
/// `held` (what `guardsh run` holds of `Provider::held`, whatever the grants name), and returns
/// the released values that still go to the tool (never the provider's own secret) with the
/// minted credential. A provider whose secret is not held refuses: the tool must not silently
/// get the long-lived credential instead.
pub fn for_command(
    plan: &Plan,
    held: &[(String, Zeroizing<String>)],
    released: Values,
    req: &Request,
) -> Result<(Values, Minted), String> {
    let own = plan.provider.held();
    let missing: Vec<&str> = match &plan.provider {
        // The session token goes with temporary keys only.
        Provider::Sts(_) => own[..2].iter().copied().filter(|n| !held.iter().any(|(k, _)| k == n)).collect(),
        _ => own.iter().copied().filter(|n| !held.iter().any(|(k, _)| k == n)).collect(),
    };
    if !missing.is_empty() {
        return Err(format!(
            "the {} credential provider needs {}, which guardsh run does not hold; start guardsh run with it in its environment",
            plan.provider.name(),
            missing.join(" and ")
        ));
    }
    let minted = mint(plan, held, req)?;
    let rest = released.into_iter().filter(|(k, _)| !own.contains(&k.as_str())).collect();
    Ok((rest, minted))
}

/// A label for a command no human approved (an approved one is labelled by its request's id).
pub fn fresh_label() -> Result<String, String> {
    crate::random::token(10)
        .map(|t| format!("a{t}"))
        .map_err(|e| format!("cannot read the kernel's random source to name a minted credential: {e}"))
}

/// Mints with the provider. `held` has the provider's own secret (`Provider::held`).
fn mint(plan: &Plan, held: &[(String, Zeroizing<String>)], req: &Request) -> Result<Minted, String> {
    let secret = |name: &str| {
        held.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| format!("guardsh run does not hold {name}"))
    };
    match &plan.provider {
        Provider::Postgres(pg) => {
            if let Some(why) = psql_connection_conflict(&pg.host, pg.port, &pg.dbname, req.argv) {
                return Err(why);
            }
            let Some(statements) = &plan.statements else {
                return Err("a minted role gets only what the statements need, and psql will read statements guardsh has not seen (a terminal, a file it did not copy); pass them with -c, -f or a pipe".into());
            };
            let texts: Vec<&str> = statements.iter().map(String::as_str).collect();
            let scope = pg_scope::scope(&texts)?;
            let cfg = postgres::Config {
                host: pg.host.clone(),
                port: pg.port,
                dbname: pg.dbname.clone(),
                admin_user: pg.admin_user.clone(),
                ttl_seconds: pg.ttl_seconds,
                read_role: pg.read_role.clone(),
                role_prefix: pg.role_prefix.clone(),
            };
            let m = postgres::mint(&cfg, req.real, secret(&pg.secret_from)?, &scope, req.label)?;
            let (env, remove) = postgres_env(pg, &m.role, m.password);
            Ok(Minted { identity: format!("postgres role {}", m.role), env, remove, lease: Lease::Postgres(m.lease) })
        }
        Provider::OpenBao(o) => {
            // A database secret goes only to the server its engine made the role on, when the
            // policy names it (review finding F6); checked before anything is minted.
            if let Some((host, port, dbname)) = &o.server
                && let Some(why) = psql_connection_conflict(host, *port, dbname, req.argv)
            {
                return Err(why);
            }
            let cfg = openbao::Config::from_settings(o);
            let path = cfg.path_for(!plan.reads_only)?;
            let m = openbao::mint(&cfg, secret(&o.secret_from)?, path, req.label)?;
            // The token, and whatever could point the tool at another secrets server or (for a
            // database client) another database than the one the secret is for.
            let mut remove: Vec<String> =
                [o.secret_from.as_str(), "VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR", "VAULT_NAMESPACE"]
                    .iter()
                    .chain(REDIRECTING_PG.iter())
                    .map(|s| s.to_string())
                    .collect();
            let mut env = m.env;
            if let Some((host, port, dbname)) = &o.server {
                remove.push("PGHOSTADDR".into());
                env.extend([
                    ("PGHOST".to_string(), Zeroizing::new(host.clone())),
                    ("PGPORT".to_string(), Zeroizing::new(port.to_string())),
                    ("PGDATABASE".to_string(), Zeroizing::new(dbname.clone())),
                ]);
            }
            Ok(Minted {
                identity: format!("openbao lease {} ({} s)", m.lease_id, m.ttl_seconds),
                env,
                remove,
                lease: Lease::OpenBao(m.lease),
            })
        }
        Provider::Sts(s) => {
            // botocore ignores credentials in the environment when a profile is named on the
            // command line: the tool would use the human's own keys from ~/.aws.
            if req.argv.values("--profile").next().is_some() {
                return Err("the command names a --profile, whose keys would be used instead of the minted ones; leave it out (AWS_PROFILE for the region and settings is fine)".into());
            }
            // Parameters the CLI reads from a file when it runs (`file://`, `fileb://`,
            // `--cli-input-json`) can name other buckets and keys after the policy was derived
            // from the command line (review finding F5).
            let from_file = |v: &str| v.starts_with("file://") || v.starts_with("fileb://");
            if req
                .argv
                .flags
                .iter()
                .any(|f| f.name.starts_with("--cli-input-") || f.value.as_deref().is_some_and(from_file))
                || req.argv.positionals.iter().any(|w| from_file(w))
            {
                return Err("the command takes parameters from a file, which can change after the session policy is derived from the command line; pass them on the command line".into());
            }
            let class = plan
                .class
                .ok_or("the command is not in guardsh's aws catalog, so no session policy can be derived for it")?;
            let policy = aws_policy::session_policy(req.argv, class)?;
            let cfg = sts::Config {
                role_arn: s.role_arn.clone(),
                region: s.region.clone(),
                endpoint: s.endpoint.clone(),
                duration_seconds: u32::try_from(s.ttl_seconds).unwrap_or(sts::MIN_DURATION_SECONDS),
                external_id: s.external_id.clone(),
            };
            let token = secret("AWS_SESSION_TOKEN").ok();
            let keys = sts::Held {
                access_key_id: secret("AWS_ACCESS_KEY_ID")?,
                secret_access_key: secret("AWS_SECRET_ACCESS_KEY")?,
                session_token: token,
            };
            let m = sts::assume_role(&cfg, &keys, &policy, req.label)?;
            let identity = format!("sts session {} (key {}, until {})", m.session_name, m.access_key_id, m.expiration);
            let env = vec![
                ("AWS_ACCESS_KEY_ID".to_string(), Zeroizing::new(m.access_key_id)),
                ("AWS_SECRET_ACCESS_KEY".to_string(), m.secret_access_key),
                ("AWS_SESSION_TOKEN".to_string(), m.session_token),
            ];
            let remove = vec!["AWS_SECURITY_TOKEN".to_string()];
            Ok(Minted { identity, env, remove, lease: Lease::Lapses })
        }
    }
}

/// libpq variables that can send a client to another server than the one a credential is for (a
/// service file is read before the environment's own settings, so it wins over PGHOST).
const REDIRECTING_PG: [&str; 4] = ["PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGSYSCONFDIR"];

/// Why this psql command line cannot use a role minted on the configured server, if it cannot:
/// it names another host, port or database, any user (the minted role is the user), or a
/// connection string (whose parts guardsh does not take apart). The minted role's password must
/// go only to the server it was made on.
pub fn psql_connection_conflict(host: &str, port: u16, dbname: &str, argv: &NormalizedArgv) -> Option<String> {
    let same = |flag: &str, want: &str| argv.values(flag).all(|v| v == Some(want));
    let port = port.to_string();
    for (flag, want) in [("--host", host), ("--port", port.as_str()), ("--dbname", dbname)] {
        if !same(flag, want) {
            return Some(format!(
                "{flag} names another server or database than the one guardsh mints roles on ({want}); leave it out"
            ));
        }
    }
    if argv.values("--username").next().is_some() || argv.positionals.len() > 1 {
        return Some("the command names a user, but a minted role is the user; leave the user out".into());
    }
    if let Some(db) = argv.positionals.first()
        && db != dbname
    {
        return Some(format!(
            "{db:?} is not the database guardsh mints roles on ({dbname}); leave it out or name that one"
        ));
    }
    None
}

/// The variables a minted PostgreSQL role's psql gets, and those that could send it elsewhere
/// (a service file is read before the environment's settings, so it would win over PGHOST).
pub fn postgres_env(
    pg: &settings::Postgres,
    role: &str,
    password: Zeroizing<String>,
) -> (Vec<(String, Zeroizing<String>)>, Vec<String>) {
    let env = vec![
        ("PGHOST".to_string(), Zeroizing::new(pg.host.clone())),
        ("PGPORT".to_string(), Zeroizing::new(pg.port.to_string())),
        ("PGDATABASE".to_string(), Zeroizing::new(pg.dbname.clone())),
        ("PGUSER".to_string(), Zeroizing::new(role.to_string())),
        ("PGPASSWORD".to_string(), password),
    ];
    let remove = ["PGHOSTADDR", &pg.secret_from].iter().chain(REDIRECTING_PG.iter()).map(|s| s.to_string()).collect();
    (env, remove)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg() -> settings::Postgres {
        settings::Postgres {
            host: "db.internal".into(),
            port: 5432,
            dbname: "app".into(),
            admin_user: "minter".into(),
            secret_from: "PGPASSWORD".into(),
            ttl_seconds: 900,
            read_role: None,
            role_prefix: "guardsh_".into(),
        }
    }

    fn argv(words: &[&str]) -> NormalizedArgv {
        let known = crate::tools::builtin("psql").expect("psql is a shipped tool");
        let spec =
            crate::tools::RawToolSpec::parse(known).expect("psql's knowledge parses").build().expect("and builds");
        let args: Vec<OsString> = words.iter().map(OsString::from).collect();
        crate::matching::normalize(&args, &spec)
    }

    #[test]
    fn a_minted_role_only_goes_to_its_own_server() {
        for (words, conflict) in [
            (&["-c", "select 1"][..], None),
            (&["-h", "db.internal", "-p", "5432", "-d", "app", "-c", "select 1"][..], None),
            (&["app", "-c", "select 1"][..], None),
            (&["-h", "evil.example", "-c", "select 1"][..], Some("--host")),
            (&["--host=db.internal", "--host", "evil", "-c", "x"][..], Some("--host")),
            (&["-p", "5433", "-c", "select 1"][..], Some("--port")),
            (&["-d", "other", "-c", "select 1"][..], Some("--dbname")),
            (&["-d", "host=evil dbname=app", "-c", "select 1"][..], Some("--dbname")),
            (&["postgresql://evil/app", "-c", "select 1"][..], Some("not the database")),
            (&["app", "postgres", "-c", "select 1"][..], Some("names a user")),
            (&["-U", "postgres", "-c", "select 1"][..], Some("names a user")),
            (&["-Upostgres", "-c", "select 1"][..], Some("names a user")),
        ] {
            let p = pg();
            let got = psql_connection_conflict(&p.host, p.port, &p.dbname, &argv(words));
            match conflict {
                None => assert_eq!(got, None, "{words:?}"),
                Some(want) => assert!(got.as_deref().is_some_and(|g| g.contains(want)), "{words:?}: {got:?}"),
            }
        }
    }

    /// Review finding F5: parameters the aws CLI reads from a file when it runs are not what the
    /// session policy was derived from. Refused before any call to STS (the endpoint here is a
    /// closed port: a command that got that far fails differently).
    #[test]
    fn sts_refuses_parameters_read_from_files() {
        let plan = Plan {
            provider: Provider::Sts(settings::Sts {
                role_arn: "arn:aws:iam::123456789012:role/r".into(),
                region: "us-east-1".into(),
                endpoint: Some("http://127.0.0.1:1".into()),
                external_id: None,
                ttl_seconds: 900,
            }),
            reads_only: false,
            class: Some(crate::catalog::Class::Destroy),
            statements: None,
        };
        let known = crate::tools::builtin("aws").expect("aws is a shipped tool");
        let spec = crate::tools::RawToolSpec::parse(known).expect("parses").build().expect("builds");
        let held: Values = [("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "secret")]
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string())))
            .collect();
        let try_mint = |words: &[&str]| {
            let args: Vec<OsString> = words.iter().map(OsString::from).collect();
            let argv = crate::matching::normalize(&args, &spec);
            let req = Request { label: "r1", argv: &argv, real: Path::new("/usr/bin/aws") };
            for_command(&plan, &held, vec![], &req).err().unwrap_or_default()
        };
        for words in [
            &["s3api", "delete-object", "--cli-input-json", "file://req.json"][..],
            &["s3api", "delete-object", "--bucket", "file://b", "--key", "k"][..],
            &["s3api", "delete-objects", "--bucket", "b", "--delete", "fileb://keys.json"][..],
        ] {
            assert!(try_mint(words).contains("parameters from a file"), "{words:?}");
        }
        let direct = try_mint(&["s3api", "delete-object", "--bucket", "b", "--key", "k"]);
        assert!(!direct.contains("parameters from a file") && !direct.is_empty(), "{direct}");
    }

    /// Review finding F6: an OpenBao database secret with its server named goes only there;
    /// refused before OpenBao is asked (the address here is a closed port).
    #[test]
    fn an_openbao_database_secret_only_goes_to_its_own_server() {
        let plan = Plan {
            provider: Provider::OpenBao(settings::OpenBao {
                address: "http://127.0.0.1:1".into(),
                read_path: "database/creds/reader".into(),
                write_path: None,
                env: vec![("PGUSER".into(), "username".into()), ("PGPASSWORD".into(), "password".into())],
                namespace: None,
                secret_from: "VAULT_TOKEN".into(),
                server: Some(("db.internal".into(), 5432, "app".into())),
            }),
            reads_only: true,
            class: None,
            statements: Some(vec!["select 1".into()]),
        };
        let held: Values = vec![("VAULT_TOKEN".to_string(), Zeroizing::new("token".to_string()))];
        let try_mint = |words: &[&str]| {
            let a = argv(words);
            let req = Request { label: "r1", argv: &a, real: Path::new("/usr/bin/psql") };
            for_command(&plan, &held, vec![], &req).err().unwrap_or_default()
        };
        assert!(try_mint(&["-h", "evil.example", "-c", "select 1"]).contains("--host"));
        assert!(try_mint(&["-U", "postgres", "-c", "select 1"]).contains("names a user"));
        let direct = try_mint(&["-c", "select 1"]);
        assert!(!direct.contains("--host") && !direct.is_empty(), "{direct}");
    }

    #[test]
    fn the_minted_values_replace_the_held_ones() {
        let (env, remove) = postgres_env(&pg(), "guardsh_r", Zeroizing::new("pw".into()));
        let minted = Minted { identity: "role guardsh_r".into(), env, remove, lease: Lease::Lapses };
        let mut tool: Vec<(OsString, OsString)> = [
            ("PGPASSWORD", "held"),
            ("PGUSER", "postgres"),
            ("PGSERVICE", "prod"),
            ("PATH", "/usr/bin"),
            ("PGOPTIONS", "-c default_transaction_read_only=on"),
        ]
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
        minted.apply(&mut tool);
        let get = |k: &str| tool.iter().find(|(n, _)| n == k).map(|(_, v)| v.to_string_lossy().to_string());
        assert_eq!(get("PGPASSWORD").as_deref(), Some("pw"));
        assert_eq!(get("PGUSER").as_deref(), Some("guardsh_r"));
        assert_eq!(get("PGHOST").as_deref(), Some("db.internal"));
        assert_eq!(get("PGSERVICE"), None);
        assert_eq!(get("PATH").as_deref(), Some("/usr/bin"));
        assert!(get("PGOPTIONS").is_some());
        assert_eq!(tool.iter().filter(|(k, _)| k == "PGPASSWORD").count(), 1);
    }
}
