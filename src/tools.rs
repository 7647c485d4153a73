//! What guardsh knows about each guarded CLI's command line: flag syntax, which flags take values,
//! verb aliases, and which environment variables are that tool's credentials.
//!
//! The knowledge for shipped tools lives in the repository's top-level `shims/NAME.toml` files and is
//! compiled into the binary, so a shim never reads it from disk. The base policy layer may extend it
//! with a `[tools.NAME]` table (see `rules::compile`). This module is pure: it takes text, returns values.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use serde::{Deserialize, Serialize};

use crate::strtable::{StrMap, StrSet, StrTable};

/// The shipped tool files, embedded. Keep in sync with `shims/`; a unit test checks every one parses.
pub const BUILTIN: &[(&str, &str)] = &[
    ("aws", include_str!("../shims/aws.toml")),
    ("az", include_str!("../shims/az.toml")),
    ("docker", include_str!("../shims/docker.toml")),
    ("doctl", include_str!("../shims/doctl.toml")),
    ("dropdb", include_str!("../shims/dropdb.toml")),
    ("fly", include_str!("../shims/fly.toml")),
    ("flyctl", include_str!("../shims/flyctl.toml")),
    ("gcloud", include_str!("../shims/gcloud.toml")),
    ("gh", include_str!("../shims/gh.toml")),
    ("git", include_str!("../shims/git.toml")),
    ("helm", include_str!("../shims/helm.toml")),
    ("heroku", include_str!("../shims/heroku.toml")),
    ("kubectl", include_str!("../shims/kubectl.toml")),
    ("mongosh", include_str!("../shims/mongosh.toml")),
    ("mysql", include_str!("../shims/mysql.toml")),
    ("psql", include_str!("../shims/psql.toml")),
    ("railway", include_str!("../shims/railway.toml")),
    ("redis-cli", include_str!("../shims/redis-cli.toml")),
    ("supabase", include_str!("../shims/supabase.toml")),
    ("terraform", include_str!("../shims/terraform.toml")),
    ("vercel", include_str!("../shims/vercel.toml")),
];

/// How a tool spells its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Syntax {
    /// getopt/pflag/clap: `-x` short options that cluster (`-it`) and glue values (`-nprod`),
    /// `--long` options with `--long=value` or `--long value`.
    #[default]
    Gnu,
    /// Go's `flag` package (terraform): `-name` and `--name` are the same long option, nothing
    /// clusters, and a boolean flag never takes the next word as its value.
    Go,
}

/// The serialized form of tool knowledge, shared by `shims/NAME.toml` and `[tools.NAME]` tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolSpec {
    pub syntax: Option<Syntax>,
    /// The CLI accepts any unambiguous prefix of a long option (`--comm` for `--command`).
    pub abbrev: Option<bool>,
    /// How many leading positional words name the operation (`s3 rb`, `volume delete`), at most.
    pub verb_depth: Option<usize>,
    /// Verbs that have subcommands. When given, the operation is one word unless its first word is
    /// listed here (then `verb_depth` words); otherwise it is always `verb_depth` words.
    pub nested: Option<Vec<String>>,
    /// Flags the top-level parser knows (canonical or alias spellings of declared flags). Before the
    /// operation is complete, any other flag makes the reading uncertain: CLIs find their
    /// subcommand with different rules than they later parse its flags.
    #[serde(default)]
    pub global: Vec<String>,
    /// Flags that consume a value, `"--canonical|-alias|--other-alias"`.
    #[serde(default)]
    pub value_flags: Vec<String>,
    /// Flags that never consume the next word.
    #[serde(default)]
    pub bool_flags: Vec<String>,
    /// Verb spellings the CLI accepts for the same operation: `rm = "delete"`.
    #[serde(default)]
    pub aliases: BTreeMap<String, String>,
    /// Environment variables holding this tool's secrets. Other tools never receive them.
    #[serde(default)]
    pub credentials: Vec<String>,
    /// Environment variables that choose what the tool acts on (`KUBECONFIG`, `AWS_PROFILE`).
    /// Their values are part of what a human approves, so an approval cannot be re-used with
    /// the command pointed somewhere else.
    #[serde(default)]
    pub selectors: Vec<String>,
    /// The tool runs SQL that guardsh reads: `psql` (PostgreSQL, with psql's meta-commands).
    pub sql: Option<String>,
    /// Variables set in the real tool's environment, after stripping: `PSQLRC = "/dev/null"`
    /// keeps a start-up file (which an agent can write) from running statements nobody approved.
    #[serde(default)]
    pub set_env: BTreeMap<String, String>,
    /// For an agent in guardsh run's sandbox: the tool needs nothing from outside it (no
    /// credential, no configuration of the human's), so it runs inside, where what the agent
    /// wrote (git hooks, `core.fsmonitor`, a `.git` it renamed) runs with the agent's reach only.
    /// The broker still decides and records every call.
    pub runs_inside: Option<bool>,
    /// What of the human's home the tool reads and writes when guardsh run starts it outside the
    /// sandbox (relative to the home directory): its configuration, credentials and caches. The
    /// rest of the home is out of its reach, so an allowed command cannot be pointed at the
    /// human's other files (`--from-file=~/.ssh/id_ed25519`).
    #[serde(default)]
    pub own_files: Vec<String>,
    /// Flags whose value names a configuration file the tool reads (`--kubeconfig`): inside
    /// guardsh run's sandbox, like selector variables, they may not name a file the agent can
    /// write, since a tool outside would run what it says (a kubeconfig's exec plugin).
    #[serde(default)]
    pub selector_flags: Vec<String>,
    /// The tool takes configuration settings before its command word, which guardsh reads and
    /// classifies (`src/git_config`): `"git"` (`-c key=value`, `--config-env=key=VAR`).
    pub config: Option<String>,
    /// Options that, before the command word, are the command word: git runs `git --version` as
    /// `git version`, whatever follows.
    #[serde(default)]
    pub verb_flags: BTreeMap<String, String>,
    /// Variables set in the real tool's environment when guardsh decided that its statements only
    /// read: `PGOPTIONS = "-c default_transaction_read_only=on"` makes the server refuse writes.
    #[serde(default)]
    pub read_env: BTreeMap<String, String>,
    /// Variables that could undo `read_env` (a connection service file can set options): while
    /// one is set, the statements are not a read.
    #[serde(default)]
    pub read_undo_vars: Vec<String>,
    /// Flags whose value is a file that decides what the command does (`--filename`, `--file`,
    /// `--values`): guardsh decides on a copy it reads, and the tool gets that copy (`snapshot`).
    #[serde(default)]
    pub snapshot_flags: Vec<String>,
    /// What those files are, for the decision and the approval screen: `"kubernetes"` (objects
    /// become readings of their own, like `delete namespaces/NAME`), `"sql"` (statements read as
    /// `-c` is), or `"bytes"` (size and hash only; the default).
    pub snapshot_format: Option<String>,
    /// Flags whose input guardsh cannot copy (a kustomize directory): never allowed by a rule.
    #[serde(default)]
    pub unsnapshottable_flags: Vec<String>,
    /// Operations whose positional arguments (after the operation words) are such files:
    /// `terraform apply PLANFILE`.
    #[serde(default)]
    pub snapshot_positionals: Vec<String>,
    /// A flag that moves where relative file paths are found (`terraform -chdir=DIR`).
    pub snapshot_relative_to: Option<String>,
    /// Operations (first word) in which those flags mean something else (`kubectl logs -f`
    /// follows the log).
    #[serde(default)]
    pub snapshot_except: Vec<String>,
    /// Operations whose arguments are resources (`TYPE[.VERSION][.GROUP]`, comma lists,
    /// `TYPE/NAME`): rules see them in canonical form, one reading per resource
    /// (`matching::resources`). Two-word operations are written with a space: `"rollout undo"`.
    #[serde(default)]
    pub resource_verbs: Vec<String>,
    /// Other spellings of resource types (singular, short names, kinds) to the canonical plural.
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
    /// Names that stand for several resource types (kubectl's `all` category).
    #[serde(default)]
    pub resource_groups: BTreeMap<String, Vec<String>>,
    /// Flags whose value is an API path (`--raw`), decided as the resource it names.
    #[serde(default)]
    pub api_path_flags: Vec<String>,
    /// Flags that make any command the catalog knows print its help and run nothing.
    #[serde(default)]
    pub help_flags: Vec<String>,
    /// Flags that, with no command word, print the tool's version and run nothing.
    #[serde(default)]
    pub version_flags: Vec<String>,
    /// First words that make the rest of the line the subject of help (`kubectl help delete`).
    #[serde(default)]
    pub help_commands: Vec<String>,
    /// A last word that, right after a catalogued command's words, asks for its help and runs
    /// nothing (`aws ec2 terminate-instances help`).
    pub help_last: Option<String>,
    /// True dry runs: a flag, as spelt, to the values that make a catalogued command that accepts
    /// it change nothing (`""` for the flag given without a value). The last of these flags and
    /// their negations on the line decides.
    #[serde(default)]
    pub dry_run: BTreeMap<String, Vec<String>>,
    /// Flags that turn a dry run back off (`--no-dry-run`).
    #[serde(default)]
    pub dry_run_negations: Vec<String>,
    /// The CLI reads command words in any case (Redis): they are looked up lower-cased.
    pub catalog_lower: Option<bool>,
    /// The command the CLI runs when the first word is none of its commands (vercel: `vercel`,
    /// `vercel ./site --prod` deploy).
    pub default_command: Option<String>,
}

/// Whose configuration options the normaliser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigSyntax {
    /// `-c key=value` and `--config-env=key=VAR` before the command word.
    Git,
}

/// A database client whose SQL guardsh reads, and how it takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SqlClient {
    /// `-c/--command`, `-f/--file`, or stdin; PostgreSQL with psql meta-commands.
    Psql,
    /// `-e/--execute`, `--init-command`, or stdin; MySQL with mysql client commands.
    Mysql,
    /// `--eval`, script files, or stdin; a read-only subset of mongosh JavaScript.
    Mongosh,
}

impl SqlClient {
    /// Flags whose values are SQL the client runs.
    pub fn command_flags(self) -> &'static [&'static str] {
        match self {
            SqlClient::Psql => &["--command"],
            SqlClient::Mysql => &["--execute", "--init-command"],
            SqlClient::Mongosh => &["--eval"],
        }
    }

    /// Flags that make the client run SQL from a file guardsh does not hold.
    pub fn file_flags(self) -> &'static [&'static str] {
        match self {
            SqlClient::Psql => &["--file"],
            SqlClient::Mysql => &[],
            SqlClient::Mongosh => &["--file"],
        }
    }

    /// Does the client run script files named by these positional words? mongosh runs every
    /// positional after the connection string as a script, whatever its name.
    pub fn runs_scripts(self, positionals: &[String]) -> bool {
        self == SqlClient::Mongosh
            && (positionals.len() > 1
                || positionals.iter().any(|w| [".js", ".mjs", ".mongodb"].iter().any(|e| w.ends_with(e))))
    }

    /// Flags whose presence means the client does not read statements from stdin.
    pub fn stdin_off_flags(self) -> &'static [&'static str] {
        match self {
            SqlClient::Psql => &["--command", "--file", "--list", "--version", "--help"],
            // `--init-command` runs before whatever stdin brings; only `-e` replaces stdin.
            SqlClient::Mysql => &["--execute", "--version", "--help"],
            SqlClient::Mongosh => &["--eval", "--file", "--version", "--help"],
        }
    }

    pub fn classify(self, text: &str) -> crate::sql::SqlClass {
        match self {
            SqlClient::Psql => crate::sql::classify_psql(text),
            SqlClient::Mysql => crate::sql::classify_mysql(text),
            SqlClient::Mongosh => crate::sql::classify_mongosh(text),
        }
    }
}

/// What a snapshotted input file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SnapshotFormat {
    #[default]
    Bytes,
    Kubernetes,
    Sql,
}

/// One known flag after alias resolution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagSpec {
    pub canonical: String,
    pub takes_value: bool,
}

/// A flag spelling in `ToolSpec::flags`: its canonical spelling, as the position of that
/// spelling in the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagEntry {
    canonical: u32,
    takes_value: bool,
}

/// A known flag, as a lookup finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownFlag<'a> {
    pub canonical: &'a str,
    pub takes_value: bool,
}

/// Tool knowledge ready for the normaliser.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ToolSpec {
    pub syntax: Syntax,
    pub abbrev: bool,
    pub verb_depth: usize,
    /// Lower-cased verbs with subcommands; `None` means every operation is `verb_depth` words.
    pub nested: Option<StrSet>,
    /// Canonical names of the flags the top-level parser knows.
    pub global: StrSet,
    /// Every spelling (canonical and aliases) to its flag (`flag`, `lookup`). Tables rather than
    /// hash maps: a shim call decodes them from the cache each time (`crate::strtable`).
    pub flags: StrTable<FlagEntry>,
    /// Lower-cased verb alias to canonical verb.
    pub aliases: StrMap,
    pub credentials: Vec<String>,
    pub selectors: Vec<String>,
    /// guardsh reads the SQL this tool runs.
    pub sql: Option<SqlClient>,
    pub set_env: Vec<(String, String)>,
    pub runs_inside: bool,
    pub own_files: Vec<String>,
    pub selector_flags: Vec<String>,
    pub config: Option<ConfigSyntax>,
    /// Exact spelling of an option to the command word it stands for.
    pub verb_flags: Vec<(String, String)>,
    pub read_env: Vec<(String, String)>,
    pub read_undo_vars: Vec<String>,
    /// Canonical names of `snapshot_flags`, their format, and `unsnapshottable_flags`.
    pub snapshot_flags: Vec<String>,
    pub snapshot_format: SnapshotFormat,
    pub unsnapshottable_flags: Vec<String>,
    pub snapshot_except: Vec<String>,
    pub snapshot_positionals: Vec<String>,
    pub snapshot_relative_to: Option<String>,
    /// How the tool's resource arguments are read (empty for tools without them).
    pub resources: crate::matching::resources::ResourceSpec,
    /// The forms every catalogued tool shares (`posture`): help and true dry runs, flags by
    /// canonical name.
    pub help_flags: Vec<String>,
    pub help_commands: Vec<String>,
    pub version_flags: Vec<String>,
    pub help_last: Option<String>,
    pub dry_run: Vec<(String, Vec<String>)>,
    pub dry_run_negations: Vec<String>,
    /// The name the tool's command catalog is found under (`catalog::for_tool`), when it has one:
    /// then the catalog says where the command words end.
    pub catalog: Option<String>,
    pub catalog_lower: bool,
    pub default_command: Option<String>,
}

pub const DEFAULT_VERB_DEPTH: usize = 2;

/// The hash maps of tool knowledge while it is built (and of the few small maps kept). They hash with FNV-1a rather than std's SipHash with random
/// keys: every shim call rebuilds them from the policy cache, where SipHash (and the random keys'
/// system call) came to a tenth of a cached call's instructions. Their keys are guardsh's own
/// knowledge and the policy's, never an agent's words, which are only looked up, so there is no
/// flooding to defend against.
pub type Map<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// 64-bit FNV-1a.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl RawToolSpec {
    /// Parses a tool file. Errors carry toml's own position information.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        crate::rules::plain_toml::from_str(text)
    }

    /// Layers `other` on top of `self`: lists grow, scalars are replaced when `other` sets them.
    pub fn extend(&mut self, other: &RawToolSpec) {
        self.syntax = other.syntax.or(self.syntax);
        self.abbrev = other.abbrev.or(self.abbrev);
        self.verb_depth = other.verb_depth.or(self.verb_depth);
        if let Some(nested) = &other.nested {
            self.nested.get_or_insert_with(Vec::new).extend(nested.iter().cloned());
        }
        self.global.extend(other.global.iter().cloned());
        self.value_flags.extend(other.value_flags.iter().cloned());
        self.bool_flags.extend(other.bool_flags.iter().cloned());
        self.aliases.extend(other.aliases.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.credentials.extend(other.credentials.iter().cloned());
        self.selectors.extend(other.selectors.iter().cloned());
        self.sql = other.sql.clone().or(self.sql.take());
        self.set_env.extend(other.set_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.runs_inside = other.runs_inside.or(self.runs_inside);
        self.own_files.extend(other.own_files.iter().cloned());
        self.selector_flags.extend(other.selector_flags.iter().cloned());
        self.config = other.config.clone().or(self.config.take());
        self.verb_flags.extend(other.verb_flags.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.read_env.extend(other.read_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.read_undo_vars.extend(other.read_undo_vars.iter().cloned());
        self.snapshot_flags.extend(other.snapshot_flags.iter().cloned());
        self.snapshot_format = other.snapshot_format.clone().or(self.snapshot_format.take());
        self.unsnapshottable_flags.extend(other.unsnapshottable_flags.iter().cloned());
        self.snapshot_except.extend(other.snapshot_except.iter().cloned());
        self.snapshot_positionals.extend(other.snapshot_positionals.iter().cloned());
        self.snapshot_relative_to = other.snapshot_relative_to.clone().or(self.snapshot_relative_to.take());
        self.resource_verbs.extend(other.resource_verbs.iter().cloned());
        self.resources.extend(other.resources.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.resource_groups.extend(other.resource_groups.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.api_path_flags.extend(other.api_path_flags.iter().cloned());
        self.help_flags.extend(other.help_flags.iter().cloned());
        self.help_commands.extend(other.help_commands.iter().cloned());
        self.version_flags.extend(other.version_flags.iter().cloned());
        self.help_last = other.help_last.clone().or(self.help_last.take());
        self.dry_run.extend(other.dry_run.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.dry_run_negations.extend(other.dry_run_negations.iter().cloned());
        self.catalog_lower = other.catalog_lower.or(self.catalog_lower);
        self.default_command = other.default_command.clone().or(self.default_command.take());
    }

    /// Checks spellings and builds the lookup tables. Returns a message on the first bad entry.
    pub fn build(&self) -> Result<ToolSpec, String> {
        let mut flags = Map::default();
        for (list, takes_value) in [(&self.value_flags, true), (&self.bool_flags, false)] {
            for entry in list {
                let mut names = entry.split('|');
                let canonical = names.next().unwrap_or_default().to_string();
                for name in std::iter::once(canonical.as_str()).chain(names) {
                    if !name.starts_with('-') || name.len() < 2 || name.contains('=') {
                        return Err(format!(
                            "flag spelling {name:?} in {entry:?} must start with '-' and contain no '='"
                        ));
                    }
                    let spec = FlagSpec { canonical: canonical.clone(), takes_value };
                    if let Some(old) = flags.insert(name.to_string(), spec.clone())
                        && old != spec
                    {
                        return Err(format!("flag {name:?} is declared twice with different meanings"));
                    }
                }
            }
        }
        let aliases = self.aliases.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect();
        let sql = match self.sql.as_deref() {
            None => None,
            Some("psql") => Some(SqlClient::Psql),
            Some("mysql") => Some(SqlClient::Mysql),
            Some("mongosh") => Some(SqlClient::Mongosh),
            Some(other) => {
                return Err(format!(
                    "sql = {other:?}: guardsh reads statements for \"psql\", \"mysql\" and \"mongosh\""
                ));
            }
        };
        let config = match self.config.as_deref() {
            None => None,
            Some("git") => Some(ConfigSyntax::Git),
            Some(other) => return Err(format!("config = {other:?}: guardsh reads configuration options for \"git\"")),
        };
        for flag in self.verb_flags.keys() {
            if !flags.contains_key(flag) {
                return Err(format!("verb flag {flag:?} is not declared in value_flags or bool_flags"));
            }
        }
        let mut global = Vec::new();
        // Help and version options are the root's own options: a tool file that does not
        // declare them still has them, as booleans the top-level parser knows.
        for name in self.help_flags.iter().chain(&self.version_flags) {
            let spec =
                flags.entry(name.clone()).or_insert_with(|| FlagSpec { canonical: name.clone(), takes_value: false });
            if spec.takes_value {
                return Err(format!("help or version flag {name:?} is declared in value_flags"));
            }
            global.push(spec.canonical.clone());
        }
        for name in &self.global {
            let spec: &FlagSpec = flags
                .get(name)
                .ok_or_else(|| format!("global flag {name:?} is not declared in value_flags or bool_flags"))?;
            global.push(spec.canonical.clone());
        }
        let global: StrSet = global.into_iter().collect();
        let mut api_path_flags = Vec::new();
        for name in &self.api_path_flags {
            let spec = flags
                .get(name)
                .filter(|f| f.takes_value)
                .ok_or_else(|| format!("api_path_flags: {name:?} is not declared in value_flags"))?;
            api_path_flags.push(spec.canonical.clone());
        }
        let canonical_value_flags = |names: &[String], what: &str| -> Result<Vec<String>, String> {
            names
                .iter()
                .map(|name| {
                    flags
                        .get(name)
                        .filter(|f: &&FlagSpec| f.takes_value)
                        .map(|f| f.canonical.clone())
                        .ok_or_else(|| format!("{what}: {name:?} is not declared in value_flags"))
                })
                .collect()
        };
        let snapshot_flags = canonical_value_flags(&self.snapshot_flags, "snapshot_flags")?;
        let unsnapshottable_flags = canonical_value_flags(&self.unsnapshottable_flags, "unsnapshottable_flags")?;
        let snapshot_format = match self.snapshot_format.as_deref() {
            None | Some("bytes") => SnapshotFormat::Bytes,
            Some("kubernetes") => SnapshotFormat::Kubernetes,
            Some("sql") => SnapshotFormat::Sql,
            Some(other) => {
                return Err(format!("snapshot_format = {other:?}: use \"kubernetes\", \"sql\" or \"bytes\""));
            }
        };
        let lower = |w: &String| w.to_lowercase();
        let resources = crate::matching::resources::ResourceSpec {
            verbs: self
                .resource_verbs
                .iter()
                .map(|v| v.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" "))
                .collect(),
            names: self.resources.iter().map(|(k, v)| (lower(k), lower(v))).collect(),
            groups: self.resource_groups.iter().map(|(k, v)| (lower(k), v.iter().map(lower).collect())).collect(),
            api_path_flags,
        };
        // Flags the tool file declares are matched by canonical name; others (aws's per-operation
        // `--dry-run`) by their spelling, which is how the normaliser records an unknown flag.
        let canonical = |name: &String| flags.get(name).map_or(name.clone(), |f: &FlagSpec| f.canonical.clone());
        let help_flags = self.help_flags.iter().map(canonical).collect();
        let version_flags = self.version_flags.iter().map(canonical).collect();
        let dry_run = self.dry_run.iter().map(|(k, v)| (canonical(k), v.clone())).collect();
        let dry_run_negations = self.dry_run_negations.iter().map(canonical).collect();
        let flags = freeze_flags(&flags);
        Ok(ToolSpec {
            help_flags,
            help_commands: self.help_commands.clone(),
            version_flags,
            help_last: self.help_last.clone(),
            dry_run,
            dry_run_negations,
            catalog: None,
            catalog_lower: self.catalog_lower.unwrap_or(false),
            default_command: self.default_command.clone(),
            resources,
            read_env: self.read_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            read_undo_vars: self.read_undo_vars.clone(),
            snapshot_flags,
            snapshot_format,
            unsnapshottable_flags,
            snapshot_except: self.snapshot_except.iter().map(|v| v.to_lowercase()).collect(),
            snapshot_positionals: self.snapshot_positionals.iter().map(|v| v.to_lowercase()).collect(),
            snapshot_relative_to: match &self.snapshot_relative_to {
                None => None,
                Some(name) => {
                    Some(canonical_value_flags(std::slice::from_ref(name), "snapshot_relative_to")?.remove(0))
                }
            },
            syntax: self.syntax.unwrap_or_default(),
            abbrev: self.abbrev.unwrap_or(false),
            verb_depth: self.verb_depth.unwrap_or(DEFAULT_VERB_DEPTH),
            nested: self.nested.as_ref().map(|n| n.iter().map(|v| v.to_lowercase()).collect()),
            global,
            flags,
            aliases,
            credentials: self.credentials.clone(),
            selectors: self.selectors.clone(),
            sql,
            set_env: self.set_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            runs_inside: self.runs_inside.unwrap_or(false),
            own_files: self.own_files.clone(),
            selector_flags: self.selector_flags.clone(),
            config,
            verb_flags: self.verb_flags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }
}

/// The flag spellings as a table (`crate::strtable`), each naming its canonical spelling by
/// position. Every canonical spelling is itself a spelling in the table.
fn freeze_flags(flags: &Map<String, FlagSpec>) -> StrTable<FlagEntry> {
    let positions: StrTable<()> = flags.keys().map(|k| (k.clone(), ())).collect();
    flags
        .iter()
        .map(|(name, spec)| {
            let at = positions.position(&spec.canonical).unwrap_or_default();
            (
                name.clone(),
                FlagEntry { canonical: u32::try_from(at).unwrap_or_default(), takes_value: spec.takes_value },
            )
        })
        .collect()
}

/// The embedded knowledge for `tool`, if guardsh ships any.
pub fn builtin(tool: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(name, _)| *name == tool).map(|(_, text)| *text)
}

impl ToolSpec {
    /// The positional words (their indices into `positionals`) that are input files to snapshot:
    /// those after the operation words of a `snapshot_positionals` operation.
    pub fn snapshot_positional_words(&self, positionals: &[String]) -> std::ops::Range<usize> {
        let verb_len = self.verb_len(positionals).min(positionals.len());
        let op = positionals[..verb_len].iter().map(|w| w.to_lowercase()).collect::<Vec<_>>().join(" ");
        if verb_len > 0 && self.snapshot_positionals.contains(&op) { verb_len..positionals.len() } else { 0..0 }
    }

    /// Are the snapshot flags file arguments in this invocation (not in a `snapshot_except`
    /// operation)?
    pub fn snapshots_apply(&self, positionals: &[String]) -> bool {
        let any = !self.snapshot_flags.is_empty() || !self.snapshot_positionals.is_empty();
        let excepted = positionals.first().is_some_and(|op| self.snapshot_except.contains(&op.to_lowercase()));
        any && !excepted
    }

    /// A flag spelling, exactly.
    pub fn flag(&self, name: &str) -> Option<KnownFlag<'_>> {
        self.flags.get(name).map(|e| self.known(e))
    }

    fn known(&self, e: &FlagEntry) -> KnownFlag<'_> {
        KnownFlag { canonical: self.flags.key_at(e.canonical as usize), takes_value: e.takes_value }
    }

    /// Looks a flag spelling up, expanding an unambiguous long-option prefix when the tool allows it.
    /// `Err(candidates)` means the prefix is ambiguous.
    pub fn lookup(&self, name: &str) -> Result<Option<KnownFlag<'_>>, Vec<String>> {
        if let Some(flag) = self.flag(name) {
            return Ok(Some(flag));
        }
        if !self.abbrev || !name.starts_with("--") || name.len() < 3 {
            return Ok(None);
        }
        let mut hits: Vec<KnownFlag> = self
            .flags
            .iter()
            .filter(|(spelling, _)| spelling.starts_with("--") && spelling.starts_with(name))
            .map(|(_, e)| self.known(e))
            .collect();
        hits.sort_by(|a, b| a.canonical.cmp(b.canonical));
        hits.dedup_by(|a, b| a.canonical == b.canonical);
        match hits.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => Err(many.iter().map(|s| s.canonical.to_string()).collect()),
        }
    }

    /// The tool's command catalog, when it has one.
    pub fn command_catalog(&self) -> Option<&'static crate::catalog::Catalog> {
        self.catalog.as_deref().and_then(crate::catalog::for_tool)
    }

    /// Positional words as the catalog spells them: lower-cased for a CLI that reads its
    /// command words in any case (`catalog_lower`), as they are otherwise.
    pub fn catalog_words<'a>(&self, words: &'a [String]) -> std::borrow::Cow<'a, [String]> {
        if self.catalog_lower {
            std::borrow::Cow::Owned(words.iter().map(|w| self.catalog_word(w)).collect())
        } else {
            std::borrow::Cow::Borrowed(words)
        }
    }

    /// One word as the catalog spells it.
    pub fn catalog_word(&self, word: &str) -> String {
        if self.catalog_lower { word.to_lowercase() } else { word.to_string() }
    }

    /// Before the command words are complete: does the runnable command the words so far name
    /// (`kubectl create`, which also has subcommands) take `flag`, and with a value? Its own
    /// parser and the CLI's command search then read the flag the same way (cobra strips a
    /// command's known flags before looking for a subcommand), so the reading stays certain.
    pub fn command_flag(&self, positionals: &[String], flag: &str) -> Option<bool> {
        let catalog = self.command_catalog()?;
        let mut words = self.catalog_words(positionals).into_owned();
        // No command word yet, and the CLI has a default command: its flags are that command's.
        if let (true, Some(default)) = (words.is_empty(), &self.default_command) {
            words.push(default.clone());
        }
        // A group's own flags too (railway's `volume --volume NAME delete`), when its row lists
        // them: the parser of a group reads the flags it declares before the subcommand.
        match catalog.lookup(&words) {
            crate::catalog::Lookup::Known(e) if e.depth == words.len() && !words.is_empty() => {
                e.takes_value(flag).filter(|_| e.accepts(flag) || (e.runnable && flag.starts_with("--")))
            }
            // A lone group reads as `Known`; a group followed by more words does not, and is
            // not the words so far anyway.
            _ => None,
        }
    }

    /// How many positional words make up the operation, given the words seen so far.
    pub fn verb_len(&self, positionals: &[String]) -> usize {
        // A catalogued CLI's command words end where its catalog's path does: `doctl projects
        // list` is two words, `doctl compute droplet list` three, `aws ec2 wait instance-running`
        // four. While the words so far lead to deeper commands, one more is needed.
        if let Some(len) = self.command_catalog().and_then(|c| c.command_len(&self.catalog_words(positionals))) {
            return len;
        }
        match (&self.nested, positionals.first()) {
            (Some(nested), Some(first)) if !nested.contains(&first.to_lowercase()) => self.verb_depth.min(1),
            _ => self.verb_depth,
        }
    }

    /// The canonical spelling of a flag named in a rule, or `None` if the tool does not know it.
    pub fn canonical_flag(&self, name: &str) -> Option<&str> {
        self.flag(name).map(|f| f.canonical)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_tool_file_parses_and_builds() {
        for (name, text) in BUILTIN {
            let raw = RawToolSpec::parse(text).unwrap_or_else(|e| panic!("shims/{name}.toml: {e}"));
            raw.build().unwrap_or_else(|e| panic!("shims/{name}.toml: {e}"));
        }
    }

    #[test]
    fn builtin_list_matches_the_shims_directory() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shims");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("shims/ exists")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".toml").map(str::to_string))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, embedded, "BUILTIN must list every shims/*.toml, sorted");
    }

    #[test]
    fn abbreviations_expand_only_when_unique() {
        let raw = RawToolSpec {
            abbrev: Some(true),
            value_flags: vec!["--command|-c".into(), "--comment".into()],
            bool_flags: vec!["--quiet".into()],
            ..Default::default()
        };
        let spec = raw.build().expect("valid");
        assert_eq!(spec.lookup("--qu").expect("unique").map(|f| f.canonical), Some("--quiet"));
        assert!(spec.lookup("--com").is_err(), "--com is a prefix of two flags");
        assert_eq!(spec.lookup("--comma").expect("unique").map(|f| f.canonical), Some("--command"));
        assert_eq!(spec.lookup("--nope").expect("no candidates"), None);
    }

    #[test]
    fn conflicting_declarations_are_rejected() {
        let raw =
            RawToolSpec { value_flags: vec!["--force|-f".into()], bool_flags: vec!["-f".into()], ..Default::default() };
        assert!(raw.build().is_err());
    }
}
