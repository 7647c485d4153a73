//! What `[mint.TOOL]` says: a tool's credential provider and its settings, checked key by key
//! from the policy file as written.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::rules::schema::RawMint;

/// A tool's credential provider, as the base policy configures it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Provider {
    /// A PostgreSQL login role made for the command, with only the privileges its statements need.
    Postgres(Postgres),
    /// A dynamic secret read from OpenBao or HashiCorp Vault, its lease revoked when the tool ends.
    OpenBao(OpenBao),
    /// AWS STS `AssumeRole` with a session policy derived from the command.
    Sts(Sts),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Postgres {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    /// The role with `CREATEROLE` that mints (guardsh run holds its password).
    pub admin_user: String,
    pub secret_from: String,
    pub ttl_seconds: u64,
    pub read_role: Option<String>,
    pub role_prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenBao {
    pub address: String,
    pub read_path: String,
    pub write_path: Option<String>,
    /// The tool's variable, and the field of the secret's `data` it takes.
    pub env: Vec<(String, String)>,
    pub namespace: Option<String>,
    pub secret_from: String,
    /// For a database secret used by psql: the server the secret's engine makes roles on
    /// (`host`, `port`, `dbname`), to which psql is then pinned as for the postgres provider.
    pub server: Option<(String, u16, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sts {
    pub role_arn: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub external_id: Option<String>,
    pub ttl_seconds: u64,
}

/// The AWS variables guardsh run holds and STS authenticates with.
pub const AWS_HELD: [&str; 3] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];

impl Provider {
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Postgres(_) => "postgres",
            Provider::OpenBao(_) => "openbao",
            Provider::Sts(_) => "sts",
        }
    }

    /// Whether the provider runs the tool's own binary with the held secret (postgres makes its
    /// admin connection with the real psql): that binary must then be one the agent cannot
    /// replace, whatever `trust_user_installed_tools` says.
    pub fn runs_the_tool_with_the_secret(&self) -> bool {
        matches!(self, Provider::Postgres(_))
    }

    /// The held variables the provider itself authenticates with: they never reach the tool.
    pub fn held(&self) -> Vec<&str> {
        match self {
            Provider::Postgres(p) => vec![p.secret_from.as_str()],
            Provider::OpenBao(o) => vec![o.secret_from.as_str()],
            Provider::Sts(_) => AWS_HELD.to_vec(),
        }
    }
}

/// One problem with a `[mint.TOOL]` table, at the span of the key at fault.
pub type Problem = (Range<usize>, String);

/// Checks one `[mint.TOOL]` table: every key the provider needs is there, none it does not read.
pub(crate) fn compile(tool: &str, table: &Spanned<RawMint>) -> Result<Provider, Vec<Problem>> {
    let raw = table.get_ref();
    let mut problems = Vec::new();
    let provider = raw.provider.get_ref().as_str();
    // Which keys each provider reads; any other key given is a mistake worth a diagnostic.
    let given: [(&str, Option<Range<usize>>); 17] = [
        ("host", raw.host.as_ref().map(Spanned::span)),
        ("port", raw.port.as_ref().map(Spanned::span)),
        ("dbname", raw.dbname.as_ref().map(Spanned::span)),
        ("admin_user", raw.admin_user.as_ref().map(Spanned::span)),
        ("read_role", raw.read_role.as_ref().map(Spanned::span)),
        ("role_prefix", raw.role_prefix.as_ref().map(Spanned::span)),
        ("address", raw.address.as_ref().map(Spanned::span)),
        ("read_path", raw.read_path.as_ref().map(Spanned::span)),
        ("write_path", raw.write_path.as_ref().map(Spanned::span)),
        ("env", raw.env.as_ref().map(Spanned::span)),
        ("namespace", raw.namespace.as_ref().map(Spanned::span)),
        ("role_arn", raw.role_arn.as_ref().map(Spanned::span)),
        ("region", raw.region.as_ref().map(Spanned::span)),
        ("endpoint", raw.endpoint.as_ref().map(Spanned::span)),
        ("external_id", raw.external_id.as_ref().map(Spanned::span)),
        ("secret_from", raw.secret_from.as_ref().map(Spanned::span)),
        ("ttl", raw.ttl.as_ref().map(Spanned::span)),
    ];
    let reads: &[&str] = match provider {
        "postgres" => &["host", "port", "dbname", "admin_user", "read_role", "role_prefix", "secret_from", "ttl"],
        // The secret's lease comes from its OpenBao role, so openbao takes no ttl.
        "openbao" => {
            &["address", "read_path", "write_path", "env", "namespace", "secret_from", "host", "port", "dbname"]
        }
        "sts" => &["role_arn", "region", "endpoint", "external_id", "ttl"],
        other => {
            return Err(vec![(
                raw.provider.span(),
                format!("provider = {other:?}: guardsh mints with \"postgres\", \"openbao\" or \"sts\""),
            )]);
        }
    };
    for (key, span) in &given {
        if let Some(span) = span
            && !reads.contains(key)
        {
            problems.push((span.clone(), format!("{key} is not read by the {provider} provider; remove it")));
        }
    }
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().clone());
    // Missing keys, gathered apart from `problems` so that this can be called among pushes.
    let missing = std::cell::RefCell::new(Vec::new());
    let need = |key: &str, v: &Option<Spanned<String>>| match v {
        Some(s) if !s.get_ref().is_empty() => s.get_ref().clone(),
        _ => {
            missing
                .borrow_mut()
                .push((table.span(), format!("[mint.{tool}] with provider = {provider:?} needs {key}")));
            String::new()
        }
    };
    let ttl = raw.ttl.as_ref().map_or(900, |t| *t.get_ref());
    let provider = match provider {
        "postgres" => Provider::Postgres(Postgres {
            host: need("host", &raw.host),
            port: raw.port.as_ref().map_or(5432, |p| *p.get_ref()),
            dbname: need("dbname", &raw.dbname),
            admin_user: need("admin_user", &raw.admin_user),
            secret_from: text(&raw.secret_from).unwrap_or_else(|| "PGPASSWORD".into()),
            ttl_seconds: ttl,
            read_role: text(&raw.read_role),
            role_prefix: text(&raw.role_prefix).unwrap_or_else(|| "guardsh_".into()),
        }),
        "openbao" => {
            let env: Vec<(String, String)> =
                raw.env.as_ref().map(|e| e.get_ref().clone().into_iter().collect()).unwrap_or_default();
            if env.is_empty() {
                problems.push((
                    table.span(),
                    format!(
                        "[mint.{tool}] with provider = \"openbao\" needs env, the tool's variables from the secret's fields (env = {{ PGUSER = \"username\", PGPASSWORD = \"password\" }})"
                    ),
                ));
            }
            let address = need("address", &raw.address);
            if !(address.is_empty() || address.starts_with("https://") || address.starts_with("http://")) {
                problems.push((
                    raw.address.as_ref().map_or(table.span(), Spanned::span),
                    "address is an http:// or https:// URL".into(),
                ));
            }
            let o = OpenBao {
                address,
                read_path: need("read_path", &raw.read_path),
                write_path: text(&raw.write_path),
                env,
                namespace: text(&raw.namespace),
                secret_from: text(&raw.secret_from).unwrap_or_else(|| "VAULT_TOKEN".into()),
                server: match (&raw.host, &raw.dbname) {
                    (None, None) if raw.port.is_none() => None,
                    _ => Some((
                        need("host", &raw.host),
                        raw.port.as_ref().map_or(5432, |p| *p.get_ref()),
                        need("dbname", &raw.dbname),
                    )),
                },
            };
            // What the provider itself would refuse at the first command, said at load instead.
            if missing.borrow().is_empty()
                && let Err(why) = super::openbao::Config::from_settings(&o).check()
            {
                problems.push((table.span(), why));
            }
            Provider::OpenBao(o)
        }
        _ => {
            if !(900..=43_200).contains(&ttl) {
                problems.push((
                    raw.ttl.as_ref().map_or(table.span(), Spanned::span),
                    "ttl for sts is from 900 to 43200 seconds (AssumeRole's DurationSeconds)".into(),
                ));
            }
            Provider::Sts(Sts {
                role_arn: need("role_arn", &raw.role_arn),
                region: text(&raw.region).unwrap_or_else(|| "us-east-1".into()),
                endpoint: text(&raw.endpoint),
                external_id: text(&raw.external_id),
                ttl_seconds: ttl,
            })
        }
    };
    if let Some(t) = &raw.ttl
        && (*t.get_ref() < 60 || *t.get_ref() > 43_200)
    {
        problems.push((t.span(), "ttl is in seconds, from 60 to 43200".into()));
    }
    problems.extend(missing.into_inner());
    if problems.is_empty() { Ok(provider) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Provider, Vec<String>> {
        let raw: crate::rules::schema::RawPolicy = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let (tool, table) = raw.mint.iter().next().ok_or_else(|| vec!["no [mint] table".to_string()])?;
        compile(tool, table).map_err(|p| p.into_iter().map(|(_, m)| m).collect())
    }

    #[test]
    fn each_provider_takes_its_own_keys_only() {
        let ok =
            parse("[mint.psql]\nprovider = \"postgres\"\nhost = \"db\"\ndbname = \"app\"\nadmin_user = \"minter\"\n");
        let Ok(Provider::Postgres(p)) = ok else { panic!("{ok:?}") };
        assert_eq!((p.port, p.ttl_seconds, p.secret_from.as_str()), (5432, 900, "PGPASSWORD"));
        assert_eq!(Provider::Postgres(p).held(), vec!["PGPASSWORD"]);

        for (text, want) in [
            ("[mint.psql]\nprovider = \"postgress\"\n", "guardsh mints with"),
            ("[mint.psql]\nprovider = \"postgres\"\nhost = \"db\"\ndbname = \"app\"\n", "needs admin_user"),
            (
                "[mint.psql]\nprovider = \"postgres\"\nhost = \"db\"\ndbname = \"a\"\nadmin_user = \"m\"\nrole_arn = \"x\"\n",
                "role_arn is not read by the postgres provider",
            ),
            ("[mint.psql]\nprovider = \"openbao\"\naddress = \"h\"\nread_path = \"p\"\n", "needs env"),
            (
                "[mint.psql]\nprovider = \"openbao\"\naddress = \"ftp://h\"\nread_path = \"p\"\nenv = { A = \"b\" }\n",
                "http://",
            ),
            ("[mint.aws]\nprovider = \"sts\"\nrole_arn = \"r\"\nttl = 300\n", "from 900 to 43200"),
            ("[mint.aws]\nprovider = \"sts\"\n", "needs role_arn"),
            ("[mint.aws]\nprovider = \"sts\"\nrole_arn = \"r\"\nbogus = 1\n", "unknown field"),
        ] {
            let got = parse(text).expect_err(text);
            assert!(got.iter().any(|m| m.contains(want)), "{text}: {got:?}");
        }
        let bao = "[mint.psql]\nprovider = \"openbao\"\naddress = \"http://127.0.0.1:8200\"\nread_path = \"database/creds/r\"\nenv = { PGUSER = \"username\" }\n";
        let Ok(Provider::OpenBao(o)) = parse(&format!("{bao}host = \"db\"\ndbname = \"app\"\n")) else { panic!() };
        assert_eq!(o.server, Some(("db".to_string(), 5432, "app".to_string())));
        let got = parse(&format!("{bao}host = \"db\"\n")).expect_err("a host without its database");
        assert!(got.iter().any(|m| m.contains("needs dbname")), "{got:?}");
        let Ok(Provider::Sts(s)) = parse("[mint.aws]\nprovider = \"sts\"\nrole_arn = \"arn:aws:iam::1:role/r\"\n")
        else {
            panic!()
        };
        assert_eq!((s.region.as_str(), s.ttl_seconds), ("us-east-1", 900));
    }
}
