//! The rule packs shipped in the binary, each with its version: the lowest policy layer, so that
//! an upgrade brings new knowledge to every install while the user's file holds only settings
//! and overrides.

/// One built-in pack.
#[derive(Debug)]
pub struct Pack {
    pub name: &'static str,
    /// Raised whenever the pack's rules or posture change.
    pub version: &'static str,
    pub text: &'static str,
}

impl Pack {
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// The ids of its rules, read from the text (`id = "..."` lines) without parsing the TOML:
    /// telling a full copy of the pack apart must not cost a second parse.
    pub fn rule_ids(&self) -> impl Iterator<Item = &'static str> {
        self.text.lines().filter_map(|l| l.strip_prefix("id = \"")?.strip_suffix('"'))
    }
}

pub static PACKS: &[Pack] =
    &[Pack { name: "default", version: "2026.12.1", text: include_str!("../../packs/default.toml") }];
