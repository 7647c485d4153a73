//! The policy file exactly as written: serde structs mirroring `rules.toml`, strict about unknown
//! keys, with spans kept for error messages. No logic lives here; `compile` gives it meaning.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{Action, Mode};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    #[serde(default)]
    pub settings: RawSettings,
    #[serde(default)]
    pub run: RawRun,
    #[serde(default)]
    pub tools: BTreeMap<String, Spanned<RawToolConfig>>,
    /// Boxed, so that each rule's memory is given back as soon as it is compiled (a compile
    /// consumes them; with 10,000 rules a list of them inline was 4 MB held to the end).
    #[serde(default)]
    pub rule: Vec<Spanned<Box<RawRule>>>,
    /// `[sandbox]`: what `guardsh run`'s sandbox lets the agent reach (base layers only).
    pub sandbox: Option<Spanned<RawSandbox>>,
    /// `[posture]`: what each class of catalogued command does when no rule decides it.
    pub posture: Option<Spanned<RawPosture>>,
    /// `[policy]`: a second, tighten-only stage in Rego, embedded or on an OPA server (base
    /// layers only; see `crate::policy`).
    pub policy: Option<Spanned<RawPolicyStage>>,
    /// `[mint.TOOL]`: a credential provider that mints a short-lived credential for each command
    /// of TOOL that `guardsh run` starts (base layers only; see `crate::mint`).
    #[serde(default)]
    pub mint: BTreeMap<String, Spanned<RawMint>>,
}

/// `[mint.TOOL]` as written. One flat table for every provider, so that a key given to the wrong
/// provider is a diagnostic at its own line (`crate::mint::settings` says which keys belong where).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMint {
    /// `postgres`, `openbao` or `sts`.
    pub provider: Spanned<String>,
    // postgres
    pub host: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub dbname: Option<Spanned<String>>,
    pub admin_user: Option<Spanned<String>>,
    pub read_role: Option<Spanned<String>>,
    pub role_prefix: Option<Spanned<String>>,
    // openbao
    pub address: Option<Spanned<String>>,
    pub read_path: Option<Spanned<String>>,
    pub write_path: Option<Spanned<String>>,
    pub env: Option<Spanned<BTreeMap<String, String>>>,
    pub namespace: Option<Spanned<String>>,
    // sts
    pub role_arn: Option<Spanned<String>>,
    pub region: Option<Spanned<String>>,
    pub endpoint: Option<Spanned<String>>,
    pub external_id: Option<Spanned<String>>,
    // every provider
    /// The held variable(s) the provider authenticates with (postgres: the admin password,
    /// `PGPASSWORD`; openbao: the token, `VAULT_TOKEN`; sts: unused, the AWS key variables).
    pub secret_from: Option<Spanned<String>>,
    /// Seconds the minted credential lives (postgres, sts; openbao's role sets its own TTL).
    pub ttl: Option<Spanned<u64>>,
}

/// `[policy]`: Rego files, data documents and an OPA server, consulted after the rules.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicyStage {
    /// Absolute paths or globs of `.rego` files evaluated in-process.
    #[serde(default)]
    pub rego: Vec<Spanned<String>>,
    /// Absolute paths or globs of JSON data documents, merged under `data`.
    #[serde(default)]
    pub data: Vec<Spanned<String>>,
    /// An OPA server's Data API URL for the decision (`http://HOST:PORT/v1/data/guardsh/decision`).
    pub opa_url: Option<Spanned<String>>,
    /// What an OPA server that fails to answer gives: `deny` (the default) or `ask`.
    pub on_error: Option<Spanned<Action>>,
    /// Milliseconds an evaluation, or a server's answer, may take (default 200 embedded, 500 OPA).
    pub timeout_ms: Option<Spanned<u64>>,
    /// A file to append OPA-shaped decision logs to (absolute path).
    pub decision_log: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPosture {
    pub read: Option<Spanned<Action>>,
    pub local: Option<Spanned<Action>>,
    pub write: Option<Spanned<Action>>,
    pub destroy: Option<Spanned<Action>>,
    pub credential: Option<Spanned<Action>>,
    pub code: Option<Spanned<Action>>,
}

impl RawPosture {
    pub fn entries(&self) -> [(crate::catalog::Class, Option<&Spanned<Action>>); 6] {
        use crate::catalog::Class;
        [
            (Class::Read, self.read.as_ref()),
            (Class::Local, self.local.as_ref()),
            (Class::Write, self.write.as_ref()),
            (Class::Destroy, self.destroy.as_ref()),
            (Class::Credential, self.credential.as_ref()),
            (Class::Code, self.code.as_ref()),
        ]
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSandbox {
    #[serde(default)]
    pub readable: Vec<String>,
    #[serde(default)]
    pub writable: Vec<String>,
    pub nested_user_namespaces: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub mode: Option<Spanned<Mode>>,
    /// Decision for invocations of a known tool that no rule matches.
    pub default: Option<Spanned<Action>>,
    /// Extra credential variable name patterns to strip.
    #[serde(default)]
    pub strip: Vec<Spanned<String>>,
    /// Variable names never treated as credentials (base layer only).
    #[serde(default)]
    pub keep: Vec<Spanned<String>>,
    /// Where `guardsh install` puts shims (base layer only).
    pub shim_dir: Option<Spanned<String>>,
    /// Seconds a request waits for a human, and stays approvable (default 300).
    pub approval_timeout: Option<Spanned<u64>>,
    /// Whether a command that needs approval waits for it (default) or exits 75 at once.
    pub wait: Option<Spanned<bool>>,
    /// What proves a human approved: `interactive` (a terminal) or `signature` (an SSH key).
    pub approval: Option<Spanned<super::ApprovalMode>>,
    /// The allowed_signers file (base layer only).
    pub allowed_signers: Option<Spanned<String>>,
    /// A signed approval token for CI (base layer only; GUARDSH_APPROVAL_FILE also names one).
    pub approval_file: Option<Spanned<String>>,
    /// `guardsh run` may release credentials to a real tool this user can replace (base layer only).
    pub trust_user_installed_tools: Option<Spanned<bool>>,
    /// Commands `guardsh run` runs at start for credentials to hold (base layer only).
    #[serde(default)]
    pub credentials_from: Vec<Spanned<String>>,
    /// The built-in packs in force (base layer only): `["default"]` when unset, `[]` for none.
    pub packs: Option<Spanned<Vec<String>>>,
}

/// `[run]`: what `guardsh run` does besides holding credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRun {
    /// Variables the agent reads for its model, besides the built-in list: passed to the agent,
    /// never to a guarded tool (base layer only).
    #[serde(default)]
    pub agent_keys: Vec<Spanned<String>>,
}

/// `[tools.NAME]`: the tool's default decision, and additions to what guardsh knows about it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolConfig {
    pub default: Option<Spanned<Action>>,
    /// Credentials a command gets when no rule decides it and the default lets it run (for
    /// `ask`, after approval). Base layers only, like a rule's `grant`.
    #[serde(default)]
    pub default_grant: Vec<Spanned<String>>,
    pub syntax: Option<crate::tools::Syntax>,
    pub abbrev: Option<bool>,
    pub verb_depth: Option<usize>,
    pub nested: Option<Vec<String>>,
    #[serde(default)]
    pub global: Vec<String>,
    #[serde(default)]
    pub value_flags: Vec<String>,
    #[serde(default)]
    pub bool_flags: Vec<String>,
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub credentials: Vec<String>,
    #[serde(default)]
    pub selectors: Vec<String>,
    pub sql: Option<String>,
    #[serde(default)]
    pub set_env: BTreeMap<String, String>,
    /// What of the human's home the tool may reach when started outside the sandbox.
    #[serde(default)]
    pub own_files: Vec<String>,
    pub config: Option<String>,
    #[serde(default)]
    pub verb_flags: BTreeMap<String, String>,
}

impl RawToolConfig {
    /// True when the table says anything besides `default`.
    pub fn changes_knowledge(&self) -> bool {
        self.syntax.is_some()
            || self.abbrev.is_some()
            || self.verb_depth.is_some()
            || self.nested.is_some()
            || !self.global.is_empty()
            || !self.value_flags.is_empty()
            || !self.bool_flags.is_empty()
            || !self.aliases.is_empty()
            || !self.credentials.is_empty()
            || !self.selectors.is_empty()
            || self.sql.is_some()
            || !self.set_env.is_empty()
            || !self.own_files.is_empty()
            || self.config.is_some()
            || !self.verb_flags.is_empty()
    }

    pub fn knowledge(&self) -> crate::tools::RawToolSpec {
        crate::tools::RawToolSpec {
            syntax: self.syntax,
            abbrev: self.abbrev,
            verb_depth: self.verb_depth,
            nested: self.nested.clone(),
            global: self.global.clone(),
            value_flags: self.value_flags.clone(),
            bool_flags: self.bool_flags.clone(),
            aliases: self.aliases.clone(),
            credentials: self.credentials.clone(),
            selectors: self.selectors.clone(),
            sql: self.sql.clone(),
            set_env: self.set_env.clone(),
            // Where a tool runs is guardsh's knowledge of what it needs, not a policy setting.
            runs_inside: None,
            own_files: self.own_files.clone(),
            selector_flags: vec![],
            config: self.config.clone(),
            verb_flags: self.verb_flags.clone(),
            // Resource spellings come from the shipped tool files only.
            ..Default::default()
        }
    }
}

/// `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Spanned<String>,
    pub tool: Spanned<String>,
    pub action: Spanned<Action>,
    pub reason: Spanned<String>,
    /// Globs over the leading positional words, in order (`["delete", "{ns,namespace}"]`).
    #[serde(default)]
    pub args: Vec<Spanned<String>>,
    /// Flag set, with a value matching the glob.
    #[serde(default)]
    pub flags: BTreeMap<String, Spanned<String>>,
    /// Flag not set to a value matching the glob (absent, or set to something else).
    #[serde(default)]
    pub not_flags: BTreeMap<String, Spanned<String>>,
    /// Flags that must be present (with any value or none).
    #[serde(default)]
    pub present: Vec<Spanned<String>>,
    /// Flags that must be absent.
    #[serde(default)]
    pub absent: Vec<Spanned<String>>,
    /// Credential variables of this tool that an allowed (or approved) invocation receives.
    #[serde(default)]
    pub grant: Vec<Spanned<String>>,
    /// For `ask` rules: wait for the approval (default), or exit 75 at once.
    pub wait: Option<bool>,
    /// For tools whose SQL guardsh reads: `read` matches only when every statement only reads;
    /// `additive` when every statement reads or only adds (inserts rows, creates objects).
    pub sql: Option<Spanned<SqlTest>>,
    /// For tools whose configuration options guardsh reads (git's `-c`): classes of setting
    /// (`safe`, `fetch-command`, `command`, `location`, `other`, `unknown`). An allow rule matches
    /// only when every setting is `safe` or of a listed class (without `config`, only `safe`);
    /// an ask or deny rule with `config` matches only when some setting is of a listed class.
    #[serde(default)]
    pub config: Vec<Spanned<String>>,
    /// For `allow` rules in a base layer: when this matches, the ask and deny rules of its own
    /// layer and the layers below it (the built-in pack) do not apply.
    pub exception: Option<Spanned<bool>>,
    /// For ask and deny rules of the built-in pack: what the rule holds happens in a dry run too
    /// (helm runs a `--post-renderer` before it stops), so a true dry run does not set it aside.
    pub holds_dry_runs: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqlTest {
    Read,
    Additive,
}
