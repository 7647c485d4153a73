//! The policy: what a rule is, and how layered TOML sources become one compiled, validated policy.
//!
//! Pure: sources arrive as text (`config.rs` reads them from disk) and leave as values.

mod compile;
mod glob;
mod packs;
mod pattern;
pub(crate) mod plain_toml;
pub(crate) mod schema;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[cfg(test)]
pub use compile::compile_with_packs;
pub use compile::{ConfigError, Diagnostic, RuleSink, compile, compile_each};
pub use packs::{PACKS, Pack};
pub use pattern::Pattern;

use crate::tools::ToolSpec;

/// What a rule (or a tool default) says to do. Ordered by strictness: `Allow < Ask < Deny`, so
/// the decision among matching rules is simply the maximum, whatever order they were written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Ask,
    Deny,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Ask => "ask",
            Action::Deny => "deny",
        }
    }
}

/// How `ask` is handled. `Ci` is stricter: every `ask` becomes `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Interactive,
    Ci,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Interactive => "interactive",
            Mode::Ci => "ci",
        }
    }
}

/// What proves that a human approved a request. Ordered by strength, so layers can only raise it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalMode {
    /// `guardsh approve` at a terminal outside the agent's session and process tree.
    #[default]
    Interactive,
    /// An SSH signature by a key in allowed_signers.
    Signature,
}

/// Where a policy source sits. The built-in pack is below everything; the first layer present
/// of system/user is the base; every layer after the base may only tighten it. Ordered from the
/// loosest to the tightest, so that an exception (`Rule::exception`) can set aside the rules of
/// its own layer and the layers below it, never those of a tighter one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    /// The rules shipped in the binary (`packs/*.toml`).
    Pack,
    System,
    User,
    Project,
}

impl LayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Pack => "pack",
            LayerKind::System => "system",
            LayerKind::User => "user",
            LayerKind::Project => "project",
        }
    }
}

/// One policy file's text and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub layer: LayerKind,
    pub path: String,
    pub text: String,
}

/// A test on one flag: set to a value matching `pattern` (or, when `negated`, not so set).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlagTest {
    /// Canonical flag name.
    pub name: String,
    pub pattern: Pattern,
    pub negated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    pub action: Action,
    pub reason: String,
    pub layer: LayerKind,
    /// `file:line` of the rule, for explanations.
    pub origin: String,
    pub args: Vec<Pattern>,
    pub flags: Vec<FlagTest>,
    pub grant: Vec<String>,
    /// `Some(false)`: an `ask` from this rule does not wait for the approval.
    pub wait: Option<bool>,
    /// Matches only when the SQL the tool will run only reads.
    pub sql_read: bool,
    /// Matches only when the SQL the tool will run reads or only adds.
    pub sql_additive: bool,
    /// Classes of configuration setting the rule is about (see `RawRule::config`).
    pub config: Vec<crate::git_config::ConfigClass>,
    /// An `allow` that sets aside the ask and deny rules of its own layer and the layers below
    /// it when it matches (a true dry run of a denied delete; `delete pod -n dev`).
    pub exception: bool,
    /// A true dry run does not set this pack rule aside (`RawRule::holds_dry_runs`).
    pub holds_dry_runs: bool,
}

/// What each class of command (`catalog::Class`) does when no rule decides it: the posture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posture {
    pub read: Action,
    pub local: Action,
    pub write: Action,
    pub destroy: Action,
    pub credential: Action,
    pub code: Action,
}

impl Posture {
    pub fn action(&self, class: crate::catalog::Class) -> Action {
        use crate::catalog::Class;
        match class {
            Class::Group | Class::Read => self.read,
            Class::Local => self.local,
            Class::Write => self.write,
            Class::Destroy => self.destroy,
            Class::Credential => self.credential,
            Class::Code => self.code,
        }
    }

    /// The key of `[posture]` for a class, and a mutable reference to its action.
    pub fn slot(&mut self, class: crate::catalog::Class) -> &mut Action {
        use crate::catalog::Class;
        match class {
            Class::Group | Class::Read => &mut self.read,
            Class::Local => &mut self.local,
            Class::Write => &mut self.write,
            Class::Destroy => &mut self.destroy,
            Class::Credential => &mut self.credential,
            Class::Code => &mut self.code,
        }
    }
}

/// Everything the policy says about one tool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolPolicy {
    pub default: Action,
    /// What a command the default decides receives (`[tools.NAME] default_grant`).
    pub default_grant: Vec<String>,
    pub spec: ToolSpec,
    pub rules: Vec<Rule>,
    /// Set when the policy has a posture and the tool a catalog: what a command no rule decides
    /// does, by its class. `default` then decides only commands the catalog does not know.
    pub posture: Option<Posture>,
}

impl ToolPolicy {
    /// Everything but the rules (the policy cache stores those apart).
    pub fn clone_without_rules(&self) -> Self {
        Self {
            default: self.default,
            default_grant: self.default_grant.clone(),
            spec: self.spec.clone(),
            rules: vec![],
            posture: self.posture,
        }
    }
}

/// How long a request waits for a human, and stays approvable, unless the policy says otherwise.
pub const DEFAULT_APPROVAL_TIMEOUT: u64 = 300;

/// The compiled policy of all layers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Policy {
    pub mode: Mode,
    pub strip: Vec<String>,
    pub keep: Vec<String>,
    pub shim_dir: Option<String>,
    pub approval_timeout: u64,
    /// Whether commands that need approval wait for it by default.
    pub wait: bool,
    pub approval: ApprovalMode,
    pub allowed_signers: Option<String>,
    pub approval_file: Option<String>,
    /// `guardsh run` may release credentials to a real tool this user (so an agent) can replace.
    pub trust_user_installed_tools: bool,
    /// Commands `guardsh run` runs at start for credentials to hold (see `--credentials-from`).
    pub credentials_from: Vec<String>,
    /// `[sandbox]`: more for the agent to read or write, nested user namespaces.
    pub sandbox: crate::sandbox::Settings,
    /// `[run] agent_keys`: the agent's model variables besides the built-in list.
    pub agent_keys: Vec<String>,
    pub tools: BTreeMap<String, ToolPolicy>,
    /// The built-in pack in force ("default 2026.12.1"), if any.
    pub pack: Option<String>,
    /// Why the built-in pack is not in force, when the reason is one the user should act on (the
    /// user's file is a full copy of shipped rules).
    pub pack_note: Option<String>,
    /// Every tool's credential variables, so each tool can be kept from the others'.
    pub all_credentials: Vec<String>,
    pub sources: Vec<(LayerKind, String)>,
    /// `[policy]`: the Rego stage after the rules (`crate::policy`); empty when not configured.
    pub rego: crate::policy::Settings,
    /// `[mint.TOOL]`: the credential provider of each tool that has one (`crate::mint`).
    pub mint: BTreeMap<String, crate::mint::Provider>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            strip: vec![],
            keep: vec![],
            shim_dir: None,
            approval_timeout: DEFAULT_APPROVAL_TIMEOUT,
            wait: true,
            approval: ApprovalMode::default(),
            allowed_signers: None,
            approval_file: None,
            trust_user_installed_tools: false,
            credentials_from: vec![],
            sandbox: crate::sandbox::Settings::default(),
            agent_keys: vec![],
            tools: BTreeMap::new(),
            pack: None,
            pack_note: None,
            all_credentials: vec![],
            sources: vec![],
            rego: crate::policy::Settings::default(),
            mint: BTreeMap::new(),
        }
    }
}
