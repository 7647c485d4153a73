//! The policy: what a rule is, and how layered TOML sources become one compiled, validated policy.
//!
//! Pure: sources arrive as text (`config.rs` reads them from disk) and leave as values.

mod compile;
mod glob;
mod pattern;
mod schema;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use compile::{ConfigError, Diagnostic, compile};
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

/// Where a policy source sits. The first layer present of system/user is the base; every layer
/// after the base may only tighten it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerKind {
    System,
    User,
    Project,
}

impl LayerKind {
    pub fn as_str(self) -> &'static str {
        match self {
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
    /// Classes of configuration setting the rule is about (see `RawRule::config`).
    pub config: Vec<crate::git_config::ConfigClass>,
}

/// Everything the policy says about one tool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolPolicy {
    pub default: Action,
    /// What a command the default decides receives (`[tools.NAME] default_grant`).
    pub default_grant: Vec<String>,
    pub spec: ToolSpec,
    pub rules: Vec<Rule>,
}

impl ToolPolicy {
    /// Everything but the rules (the policy cache stores those apart).
    pub fn clone_without_rules(&self) -> Self {
        Self {
            default: self.default,
            default_grant: self.default_grant.clone(),
            spec: self.spec.clone(),
            rules: vec![],
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
    /// Every tool's credential variables, so each tool can be kept from the others'.
    pub all_credentials: Vec<String>,
    pub sources: Vec<(LayerKind, String)>,
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
            all_credentials: vec![],
            sources: vec![],
        }
    }
}
