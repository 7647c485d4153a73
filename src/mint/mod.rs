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
    /// STS credentials cannot be revoked; they lapse after their duration.
    #[allow(dead_code)] // until the sts provider is built in
    Lapses,
}

impl Minted {
    /// Ends the credential: terminates its sessions and drops it, or revokes its lease. `Ok` with
    /// what was done, for the audit record.
    pub fn revoke(self) -> Result<String, String> {
        match self.lease {
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
    let secret = |name: &str| held.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let _ = (secret, req);
    Err(format!("the {} credential provider is not built into this guardsh", plan.provider.name()))
}

/// Why this psql command line cannot use a role minted on the configured server, if it cannot:
/// it names another host, port or database, any user (the minted role is the user), or a
/// connection string (whose parts guardsh does not take apart). The minted role's password must
/// go only to the server it was made on.
pub fn psql_connection_conflict(pg: &settings::Postgres, argv: &NormalizedArgv) -> Option<String> {
    let same = |flag: &str, want: &str| argv.values(flag).all(|v| v == Some(want));
    let port = pg.port.to_string();
    for (flag, want) in [("--host", pg.host.as_str()), ("--port", port.as_str()), ("--dbname", pg.dbname.as_str())] {
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
        && db != &pg.dbname
    {
        return Some(format!(
            "{db:?} is not the database guardsh mints roles on ({}); leave it out or name that one",
            pg.dbname
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
    let remove = ["PGHOSTADDR", "PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGSYSCONFDIR", &pg.secret_from]
        .iter()
        .map(|s| s.to_string())
        .collect();
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
            let got = psql_connection_conflict(&pg(), &argv(words));
            match conflict {
                None => assert_eq!(got, None, "{words:?}"),
                Some(want) => assert!(got.as_deref().is_some_and(|g| g.contains(want)), "{words:?}: {got:?}"),
            }
        }
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
