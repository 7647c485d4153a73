//! The agent's own model keys (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`, ...): which variables they
//! are, so that `guardsh run` passes them to the agent instead of holding them, and no guarded
//! tool ever receives them.
//!
//! An agent that cannot reach its model does nothing ("Not logged in"), so holding its key like
//! a tool's credential only breaks it. The agent reads its key either way; what guardsh can still
//! promise is that the key never leaves through a guarded tool. Keeping it from the agent too
//! needs an egress proxy that adds it to the model requests (later work; README).
//!
//! Pure: names in, names out.

use std::ffi::{OsStr, OsString};

/// Variables agents read for their model: keys, tokens, endpoints and provider switches.
/// `*` is a wildcard, as in credential patterns. `[run] agent_keys` adds names (base layers only).
pub const BUILTIN: &[&str] = &[
    // Claude Code.
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_VERTEX_PROJECT_ID",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
    "CLAUDE_CODE_SKIP_VERTEX_AUTH",
    "AWS_BEARER_TOKEN_BEDROCK",
    "CLOUD_ML_REGION",
    // Codex and other OpenAI clients.
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_ORGANIZATION",
    "OPENAI_PROJECT",
    "CODEX_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    // Gemini CLI and others.
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "OPENROUTER_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
];

/// The built-in list and the policy's additions.
pub fn patterns(extra: &[String]) -> Vec<String> {
    BUILTIN.iter().map(|s| s.to_string()).chain(extra.iter().cloned()).collect()
}

/// Is `name` one of the agent's model variables? A name that is not UTF-8 is not.
pub fn is_agent_key(name: &OsStr, patterns: &[String]) -> bool {
    name.to_str().is_some_and(|n| patterns.iter().any(|p| crate::env::name_matches(p, n)))
}

/// What `guardsh run` takes into custody: credentials, except the agent's model variables.
pub fn held_by_custody<'a>(
    is_credential: impl Fn(&OsStr) -> bool + 'a,
    patterns: &'a [String],
) -> impl Fn(&OsStr) -> bool + 'a {
    move |name| is_credential(name) && !is_agent_key(name, patterns)
}

/// The names of the agent's model variables in `vars`, sorted, for the start banner.
pub fn present(vars: &[(OsString, OsString)], patterns: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vars
        .iter()
        .filter(|(k, _)| is_agent_key(k, patterns))
        .filter_map(|(k, _)| k.to_str().map(str::to_string))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// `vars` without the agent's model variables: the environment `guardsh run` starts tools from.
pub fn without(vars: &[(OsString, OsString)], patterns: &[String]) -> Vec<(OsString, OsString)> {
    vars.iter().filter(|(k, _)| !is_agent_key(k, patterns)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(names: &[&str]) -> Vec<(OsString, OsString)> {
        names.iter().map(|n| (OsString::from(n), OsString::from("v"))).collect()
    }

    #[test]
    fn model_keys_go_to_the_agent_and_tool_credentials_into_custody() {
        let patterns = patterns(&["MY_LLM_*".to_string()]);
        let is_credential = |n: &OsStr| n.to_str().is_some_and(|n| n.ends_with("_KEY") || n.ends_with("TOKEN"));
        let held = held_by_custody(is_credential, &patterns);
        for (name, want) in [
            ("ANTHROPIC_API_KEY", false),
            ("OPENAI_API_KEY", false),
            ("MY_LLM_KEY", false),
            ("CLAUDE_CODE_OAUTH_TOKEN", false),
            ("GH_TOKEN", true),
            ("AWS_SECRET_ACCESS_KEY", true),
            ("PATH", false),
        ] {
            assert_eq!(held(OsStr::new(name)), want, "{name}");
        }
        let env = vars(&["PATH", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GH_TOKEN", "anthropic_api_key"]);
        assert_eq!(present(&env, &patterns), ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "anthropic_api_key"]);
        let names: Vec<_> = without(&env, &patterns).into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["PATH", "GH_TOKEN"]);
    }
}
