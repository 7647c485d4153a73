//! What decides a tool's target besides its argv and selector values: the configuration files
//! that `HOME`, `XDG_CONFIG_HOME` and path selectors (`KUBECONFIG`, ...) point to. An approval
//! binds their content, not the paths, so a request made under one HOME runs under another with
//! the same configuration, and never against another target.
//!
//! Pure: variables in, paths out; `describe` takes the bytes read.

use std::path::PathBuf;

/// One file that decides the target: a label for the approver, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFile {
    pub label: String,
    pub path: PathBuf,
}

/// Selector variables whose value is a path: for a tool `files` knows, the file's content is
/// bound (by `files`) instead of the path.
pub const PATH_SELECTORS: &[&str] =
    &["KUBECONFIG", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "GH_CONFIG_DIR", "PGSERVICEFILE", "PGPASSFILE"];

/// The files that decide `tool`'s target, from its environment (`var`). `None` for a tool this
/// table does not know: the approval then binds `HOME` and `XDG_CONFIG_HOME` themselves, as
/// paths, since guardsh cannot say which of the files under them matter.
pub fn files(tool: &str, var: &dyn Fn(&str) -> Option<String>) -> Option<Vec<TargetFile>> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    let home = set("HOME").map(PathBuf::from);
    let in_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
    let file = |label: &str, path: Option<PathBuf>| path.map(|path| TargetFile { label: label.to_string(), path });
    let out: Vec<Option<TargetFile>> = match tool {
        // kubectl merges every file KUBECONFIG lists, in order.
        "kubectl" | "helm" => match set("KUBECONFIG") {
            Some(list) => std::env::split_paths(&list)
                .filter(|p| !p.as_os_str().is_empty())
                .enumerate()
                // The first as "kubeconfig", as without KUBECONFIG: the content decides, not where.
                .map(|(i, p)| {
                    file(&if i == 0 { "kubeconfig".into() } else { format!("kubeconfig {}", i + 1) }, Some(p))
                })
                .collect(),
            None => vec![file("kubeconfig", in_home(".kube/config"))],
        },
        "aws" => vec![
            file("aws config", set("AWS_CONFIG_FILE").map(PathBuf::from).or_else(|| in_home(".aws/config"))),
            file(
                "aws credentials",
                set("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).or_else(|| in_home(".aws/credentials")),
            ),
        ],
        "gh" => {
            let dir = set("GH_CONFIG_DIR")
                .map(PathBuf::from)
                .or_else(|| set("XDG_CONFIG_HOME").map(|x| PathBuf::from(x).join("gh")))
                .or_else(|| in_home(".config/gh"));
            vec![file("gh hosts", dir.map(|d| d.join("hosts.yml")))]
        }
        "psql" | "dropdb" => vec![
            file("pg service file", set("PGSERVICEFILE").map(PathBuf::from).or_else(|| in_home(".pg_service.conf"))),
            file("pgpass", set("PGPASSFILE").map(PathBuf::from).or_else(|| in_home(".pgpass"))),
        ],
        // Not docker: its config.json names a context whose endpoint is in another file
        // (`contexts/meta/HASH/meta.json`), so HOME itself stays bound for it.
        _ => return None,
    };
    // A file nobody can name (no HOME) binds as absent: its label with an empty path.
    Some(
        out.into_iter()
            .map(|f| f.unwrap_or_else(|| TargetFile { label: "no HOME".into(), path: PathBuf::new() }))
            .collect(),
    )
}

/// What an approval binds for one file: its hash (or that there is none), and for a kubeconfig the
/// current context, for the approver to read.
pub fn describe(label: &str, content: Option<&[u8]>) -> String {
    use sha2::{Digest, Sha256};
    let Some(bytes) = content else { return "absent".into() };
    let hash = super::request::hex(&Sha256::digest(bytes));
    let context = label.starts_with("kubeconfig").then(|| current_context(bytes)).flatten();
    match context {
        Some(c) => format!("current-context {c}, sha256:{hash}"),
        None => format!("sha256:{hash}"),
    }
}

/// `current-context: NAME` at the top level of a kubeconfig (display only: the hash binds).
fn current_context(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.lines().find_map(|l| {
        let v = l.strip_prefix("current-context:")?.trim().trim_matches(['"', '\'']);
        (!v.is_empty()).then(|| crate::display::escape_text(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn files_follow_home_and_the_path_selectors() {
        let f = files("kubectl", &vars(&[("HOME", "/h")])).expect("known");
        assert_eq!(f, vec![TargetFile { label: "kubeconfig".into(), path: "/h/.kube/config".into() }]);
        let f = files("kubectl", &vars(&[("HOME", "/h"), ("KUBECONFIG", "/a::/b")])).expect("known");
        assert_eq!(f.iter().map(|f| f.path.clone()).collect::<Vec<_>>(), vec![PathBuf::from("/a"), "/b".into()]);
        let f = files("gh", &vars(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")])).expect("known");
        assert_eq!(f[0].path, PathBuf::from("/x/gh/hosts.yml"));
        let f = files("aws", &vars(&[("HOME", "/h"), ("AWS_CONFIG_FILE", "/c")])).expect("known");
        assert_eq!(f[0].path, PathBuf::from("/c"));
        assert_eq!(f[1].path, PathBuf::from("/h/.aws/credentials"));
        assert!(files("railway", &vars(&[("HOME", "/h")])).is_none(), "unknown tools bind HOME itself");
        assert!(files("docker", &vars(&[("HOME", "/h")])).is_none(), "a docker context's endpoint is elsewhere");
        assert_eq!(files("kubectl", &vars(&[])).expect("known")[0].label, "no HOME");
    }

    #[test]
    fn describe_binds_the_content() {
        let staging = b"apiVersion: v1\ncurrent-context: staging\n";
        let prod = b"apiVersion: v1\ncurrent-context: prod\n";
        assert_ne!(describe("kubeconfig", Some(staging)), describe("kubeconfig", Some(prod)));
        assert!(describe("kubeconfig", Some(staging)).starts_with("current-context staging, sha256:"));
        assert_eq!(describe("kubeconfig", None), "absent");
        assert!(describe("aws config", Some(b"[default]\n")).starts_with("sha256:"));
    }
}
