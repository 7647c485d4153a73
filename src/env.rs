//! Builds the real tool's environment: ambient credentials and loader variables are removed, and
//! only the credentials the winning rule grants to this tool are passed through.
//!
//! Pure: takes the parent environment as values and returns the child's, plus the names (never
//! the values) of what was stripped and passed, for the audit record.

use std::ffi::{OsStr, OsString};

/// Variable name patterns treated as credentials unless a rule grants them. `*` is a wildcard;
/// names compare case-insensitively. Names that only *select* something (`KUBECONFIG`,
/// `AWS_PROFILE`, `AWS_SHARED_CREDENTIALS_FILE`, `AWS_ENDPOINT_URL`) are deliberately absent:
/// stripping a selector silently points the tool somewhere else.
pub const DEFAULT_CREDENTIALS: &[&str] = &[
    "*TOKEN",
    "*_TOKEN_*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*_PASS",
    "*_PWD",
    "*API_KEY",
    "*APIKEY",
    "*_KEY",
    "*ACCESS_KEY*",
    "*PRIVATE_KEY*",
    "*_CREDENTIALS",
    "*DATABASE_URL",
    "*_DSN",
    "*REDIS_URL",
    "*MONGO*_URI",
    "*MONGO*_URL",
    "*_CONNECTION_STRING",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "PGPASSWORD",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_CLIENT_SECRET",
    "RAILWAY_TOKEN",
    "RAILWAY_API_TOKEN",
];

/// Variables that change what code runs inside the real tool, or which arguments it acts on.
/// Always removed, never granted: an allowed `aws s3 ls` with `PYTHONUSERBASE` pointing at the
/// agent's code, or `terraform plan` with `TF_CLI_ARGS_plan=-destroy`, is not the command that was
/// decided on.
pub const LOADER: &[&str] = &[
    "LD_*",
    "DYLD_*",
    "BASH_ENV",
    "ENV",
    "BASH_FUNC_*",
    "SHELLOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONINSPECT",
    "PYTHONUSERBASE",
    "PYTHONWARNINGS",
    "PYTHONBREAKPOINT",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "GCONV_PATH",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    // Change how arguments are parsed or add arguments.
    "POSIXLY_CORRECT",
    "TF_CLI_ARGS",
    "TF_CLI_ARGS_*",
    "PGOPTIONS",
    // Start-up files and helper programs the tool runs.
    "PSQLRC",
    "*PAGER",
    "KUBECTL_EXTERNAL_DIFF",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_ASKPASS",
    "GIT_EXTERNAL_DIFF",
    "GIT_EXEC_PATH",
    "GIT_CONFIG_COUNT",
    "GIT_CONFIG_KEY_*",
    "GIT_CONFIG_VALUE_*",
    "GIT_CONFIG_PARAMETERS",
    "GIT_TEMPLATE_DIR",
];

/// What to strip: credential patterns (defaults, every tool's declared credentials, configured
/// extras), minus names the base policy says to keep.
#[derive(Debug, Clone, Default)]
pub struct EnvPolicy<'a> {
    pub credentials: Vec<&'a str>,
    pub keep: &'a [String],
    /// The agent's model variables beyond the built-in list (`[run] agent_keys`).
    pub agent_keys: &'a [String],
}

impl<'a> EnvPolicy<'a> {
    /// What `policy` treats as credentials: the built-in patterns, every tool's declared
    /// credentials and `[settings] strip`, less `keep`. The shim, `guardsh run` and `doctor` all
    /// read the environment through this one list.
    pub fn of(policy: &'a crate::rules::Policy) -> Self {
        let credentials = DEFAULT_CREDENTIALS
            .iter()
            .copied()
            .chain(policy.all_credentials.iter().map(String::as_str))
            .chain(policy.strip.iter().map(String::as_str))
            .collect();
        Self { credentials, keep: &policy.keep, agent_keys: &policy.agent_keys }
    }
}

/// The child environment and what was done to get it.
#[must_use]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvPlan {
    pub vars: Vec<(OsString, OsString)>,
    /// Names removed (lossy for non-UTF-8 names).
    pub stripped: Vec<String>,
    /// Credential names passed because a rule granted them.
    pub passed: Vec<String>,
}

/// `*` wildcard match on variable names, ASCII case-insensitive. Iterative, no allocation.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&n[ni]) {
            pi += 1;
            ni += 1;
        } else if let Some((bp, bn)) = backtrack {
            pi = bp + 1;
            ni = bn + 1;
            backtrack = Some((bp, bn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A set of name patterns, sorted once into the shapes they almost all have (`NAME`, `PREFIX*`,
/// `*SUFFIX`, `*INFIX*`), so that each variable costs a few comparisons against an upper-cased
/// name instead of a wildcard match per pattern. This runs for every variable on every guarded
/// invocation.
#[derive(Debug, Default)]
struct NameSet<'a> {
    /// The patterns' words as written, compared ignoring ASCII case (no copies: this is built
    /// from the merged credential list on every call).
    exact: Vec<&'a str>,
    prefix: Vec<&'a str>,
    suffix: Vec<&'a str>,
    infix: Vec<&'a str>,
    /// Anything else, upper-cased and matched with `name_matches`.
    other: Vec<String>,
}

impl<'a> NameSet<'a> {
    fn new(patterns: impl IntoIterator<Item = &'a str>) -> Self {
        let mut set = Self::default();
        for p in patterns {
            let inner = p.trim_matches('*');
            if inner.contains('*') || inner.is_empty() {
                set.other.push(p.to_ascii_uppercase());
                continue;
            }
            match (p.starts_with('*'), p.ends_with('*')) {
                (false, false) => set.exact.push(inner),
                (false, true) => set.prefix.push(inner),
                (true, false) => set.suffix.push(inner),
                (true, true) => set.infix.push(inner),
            }
        }
        set
    }

    /// `upper` is the variable name, upper-cased.
    fn contains(&self, upper: &str) -> bool {
        let name = upper.as_bytes();
        let same = |a: &[u8], b: &str| a.eq_ignore_ascii_case(b.as_bytes());
        self.exact.iter().any(|p| same(name, p))
            || self.prefix.iter().any(|p| name.len() >= p.len() && same(&name[..p.len()], p))
            || self.suffix.iter().any(|p| name.len() >= p.len() && same(&name[name.len() - p.len()..], p))
            || self.infix.iter().any(|p| name.windows(p.len()).any(|w| same(w, p)))
            || self.other.iter().any(|p| name_matches(p, upper))
    }
}

/// Whether a variable is a credential under `policy`, as `plan` decides it. A name that is not
/// UTF-8 counts as one: it cannot be vouched for.
pub fn is_credential<'a>(policy: &'a EnvPolicy<'a>) -> impl Fn(&OsStr) -> bool + 'a {
    let set = NameSet::new(policy.credentials.iter().copied());
    move |name| match name.to_str() {
        Some(n) => set.contains(&n.to_ascii_uppercase()) && !policy.keep.iter().any(|k| k == n),
        None => true,
    }
}

/// Plans the child environment. `grants` are the credential names the verdict passes through.
pub fn plan(parent: &[(OsString, OsString)], policy: &EnvPolicy<'_>, grants: &[String]) -> EnvPlan {
    let mut out = EnvPlan::default();
    let loaders = NameSet::new(LOADER.iter().copied());
    let credentials = NameSet::new(policy.credentials.iter().copied());
    let granted_names = NameSet::new(grants.iter().map(String::as_str));
    // The agent's model keys go to the agent (`guardsh run`), never to a tool: not by a grant,
    // not by `keep`.
    let agent_keys = NameSet::new(
        crate::custody::agent_keys::BUILTIN.iter().copied().chain(policy.agent_keys.iter().map(String::as_str)),
    );
    for (name, value) in parent {
        let Some(n) = name.to_str() else {
            // A name we cannot read is a name we cannot vouch for.
            out.stripped.push(name.to_string_lossy().into_owned());
            continue;
        };
        let upper = n.to_ascii_uppercase();
        let shell_function = value.as_encoded_bytes().starts_with(b"()");
        let loader = loaders.contains(&upper);
        let credential = credentials.contains(&upper) && !policy.keep.iter().any(|k| k == n);
        let granted = credential && granted_names.contains(&upper);
        if shell_function || loader || agent_keys.contains(&upper) || (credential && !granted) {
            out.stripped.push(n.to_string());
        } else {
            if granted {
                out.passed.push(n.to_string());
            }
            out.vars.push((name.clone(), value.clone()));
        }
    }
    out.stripped.sort();
    out.passed.sort();
    out
}

/// The value of `name` in an environment snapshot.
pub fn get<'a>(vars: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsStr> {
    vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_os_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_set_agrees_with_the_wildcard_matcher() {
        let patterns: Vec<&str> = DEFAULT_CREDENTIALS.iter().chain(LOADER).copied().chain(["A*B*C", "*"]).collect();
        let names = [
            "AWS_SECRET_ACCESS_KEY",
            "aws_session_token",
            "PATH",
            "HOME",
            "LD_PRELOAD",
            "MY_TOKEN_X",
            "TOKENIZER",
            "DB_PASS",
            "PASSWORD_FILE",
            "XAYBZC",
            "",
            "PWD",
            "OLDPWD",
            "GIT_PAGER",
            "TF_CLI_ARGS_plan",
        ];
        for p in &patterns {
            let set = NameSet::new([*p]);
            for n in names {
                assert_eq!(set.contains(&n.to_ascii_uppercase()), name_matches(p, n), "{p} vs {n}");
            }
        }
    }

    #[test]
    fn name_patterns() {
        let cases: &[(&str, &str, bool)] = &[
            ("*_TOKEN", "RAILWAY_TOKEN", true),
            ("*_TOKEN", "railway_token", true),
            ("*_TOKEN", "TOKEN", false),
            ("*_SECRET*", "AZURE_CLIENT_SECRET", true),
            ("*_SECRET*", "MY_SECRET_THING", true),
            ("LD_*", "LD_PRELOAD", true),
            ("LD_*", "OLD_PATH", false),
            ("*DATABASE_URL", "DATABASE_URL", true),
            ("*DATABASE_URL", "STAGING_DATABASE_URL", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(name_matches(p, n), *want, "{p} vs {n}");
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    fn names(plan: &EnvPlan) -> Vec<String> {
        plan.vars.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn strips_credentials_loaders_and_functions_and_passes_grants() {
        let parent = vars(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/u"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_ACCESS_KEY_ID", "a"),
            ("AWS_PROFILE", "prod"),
            ("RAILWAY_TOKEN", "r"),
            ("LD_PRELOAD", "/tmp/x.so"),
            ("BASH_FUNC_ls%%", "() { rm -rf /; }"),
            ("INNOCENT", "() { echo; }"),
            ("KUBECONFIG", "/home/u/.kube/config"),
        ]);
        let creds: Vec<&str> = DEFAULT_CREDENTIALS.to_vec();
        let policy = EnvPolicy { credentials: creds, keep: &[], agent_keys: &[] };
        let plan =
            plan(&parent, &policy, &["AWS_SECRET_ACCESS_KEY".into(), "AWS_ACCESS_KEY_ID".into(), "LD_PRELOAD".into()]);
        assert_eq!(
            names(&plan),
            ["PATH", "HOME", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "KUBECONFIG"]
        );
        assert_eq!(plan.stripped, ["BASH_FUNC_ls%%", "INNOCENT", "LD_PRELOAD", "RAILWAY_TOKEN"]);
        assert_eq!(plan.passed, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
    }

    #[test]
    fn the_agents_model_keys_never_reach_a_tool_even_when_granted_or_kept() {
        let parent =
            vars(&[("PATH", "/usr/bin"), ("OPENAI_API_KEY", "k"), ("ANTHROPIC_BASE_URL", "u"), ("MY_LLM", "m")]);
        let keep = ["OPENAI_API_KEY".to_string()];
        let extra = ["MY_LLM".to_string()];
        let policy = EnvPolicy { credentials: vec!["*_API_KEY"], keep: &keep, agent_keys: &extra };
        let plan = plan(&parent, &policy, &["OPENAI_API_KEY".into(), "*".into()]);
        assert_eq!(names(&plan), ["PATH"]);
        assert_eq!(plan.stripped, ["ANTHROPIC_BASE_URL", "MY_LLM", "OPENAI_API_KEY"]);
        assert!(plan.passed.is_empty());
    }

    #[test]
    fn code_and_argument_injection_and_common_secret_names_are_stripped_but_selectors_are_kept() {
        let injected = [
            "PYTHONUSERBASE",
            "TF_CLI_ARGS",
            "TF_CLI_ARGS_plan",
            "POSIXLY_CORRECT",
            "PSQLRC",
            "PGOPTIONS",
            "PAGER",
            "AWS_PAGER",
            "KUBECTL_EXTERNAL_DIFF",
        ];
        let secrets =
            ["SECRET_KEY", "API_KEY", "DB_PASS", "DB_PWD", "REDIS_URL", "STRIPE_KEY", "SENTRY_DSN", "MONGODB_URI"];
        let selectors =
            ["AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL", "AWS_PROFILE", "KUBECONFIG", "OLDPWD", "PWD"];
        let parent: Vec<(OsString, OsString)> = injected
            .iter()
            .chain(&secrets)
            .chain(&selectors)
            .map(|n| (OsString::from(n), OsString::from("v")))
            .collect();
        let plan =
            plan(&parent, &EnvPolicy { credentials: DEFAULT_CREDENTIALS.to_vec(), keep: &[], agent_keys: &[] }, &[]);
        assert_eq!(names(&plan), selectors);
        assert_eq!(plan.stripped.len(), injected.len() + secrets.len());
    }

    #[test]
    fn keep_exempts_a_name_from_credential_patterns_only() {
        let parent = vars(&[("SESSION_TOKEN", "x"), ("LD_PRELOAD", "y")]);
        let keep = vec!["SESSION_TOKEN".to_string(), "LD_PRELOAD".to_string()];
        let plan =
            plan(&parent, &EnvPolicy { credentials: DEFAULT_CREDENTIALS.to_vec(), keep: &keep, agent_keys: &[] }, &[]);
        assert_eq!(names(&plan), ["SESSION_TOKEN"]);
        assert_eq!(plan.stripped, ["LD_PRELOAD"]);
    }

    #[test]
    fn non_utf8_names_are_stripped() {
        use std::os::unix::ffi::OsStringExt;
        let parent = vec![(OsString::from_vec(vec![b'X', 0xff]), OsString::from("v"))];
        let plan = plan(&parent, &EnvPolicy::default(), &[]);
        assert!(plan.vars.is_empty());
        assert_eq!(plan.stripped.len(), 1);
    }
}
