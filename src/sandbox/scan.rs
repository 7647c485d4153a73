//! What `guardsh run` looks for before it plans the sandbox: files in the project that hold
//! secrets (each gets `/dev/null` over it), the project's `.git/hooks` and `.git/config`, and
//! every real binary of a guarded tool on the agent's PATH (each gets guardsh over it).

use std::path::{Path, PathBuf};

/// File names that hold secrets by convention. A name matches exactly, or (entries ending in
/// `*`) by prefix, or (entries starting with `*`) by suffix.
const SECRET_NAMES: &[&str] = &[
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.kubeconfig",
    "kubeconfig",
    "kubeconfig.*",
    ".pgpass",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".my.cnf",
    "credentials*",
    "secrets.*",
    "*.secrets",
    "client_secret*.json",
    ".envrc",
    "service-account*.json",
    "*.tfvars",
    "terraform.tfstate",
    "terraform.tfstate.backup",
    "id_rsa",
    "id_ecdsa",
    "id_ed25519",
    ".git-credentials",
];

/// Directories not walked into: large, and generated (or, for `.git`, handled apart).
const SKIP_DIRS: &[&str] = &[".git", "node_modules", "target", ".venv", "venv", "__pycache__"];

/// How deep and how far the walk goes: a project with more than this is scanned partly, and
/// `guardsh run` says so.
const MAX_DEPTH: usize = 6;
const MAX_ENTRIES: usize = 50_000;

/// Does this file name hold secrets by convention?
pub fn is_secret_name(name: &str) -> bool {
    let template = [".example", ".sample", ".template", ".dist"].iter().any(|t| name.ends_with(t));
    !template && SECRET_NAMES.iter().any(|pattern| wildcard(pattern, name))
}

/// `*` matches any run of characters (none included); everything else matches itself.
fn wildcard(pattern: &str, name: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else { return rest.is_empty() };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Secret files in `dir`, and whether the walk was cut short.
pub fn secrets(dir: &Path) -> (Vec<PathBuf>, bool) {
    let mut out = Vec::new();
    let mut budget = MAX_ENTRIES;
    let complete = walk(dir, MAX_DEPTH, &mut budget, &mut out);
    (out, !complete)
}

fn walk(dir: &Path, depth: usize, budget: &mut usize, out: &mut Vec<PathBuf>) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return true };
    let mut complete = true;
    for e in entries.flatten() {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let name = e.file_name();
        let name = name.to_string_lossy();
        // The entry itself, not what a link points to: a link is masked where it stands.
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            if SKIP_DIRS.contains(&name.as_ref()) {
                continue;
            }
            if depth == 0 {
                complete = false;
                continue;
            }
            complete &= walk(&e.path(), depth - 1, budget, out);
        } else if (kind.is_file() || kind.is_symlink()) && is_secret_name(&name) {
            // A link is masked only if it leads to a file: a mount over a link lands on its target.
            if std::fs::metadata(e.path()).is_ok_and(|m| m.is_file()) {
                out.push(e.path());
            }
        }
    }
    complete
}

/// The project's `.git` directory, where there is one: it is bound onto itself, so that the agent
/// cannot rename it (a mount point cannot be moved) and put a `.git` of its own, with hooks and
/// commands the human's own git would run, in its place.
pub fn git_dir(cwd: &Path) -> Option<PathBuf> {
    cwd.ancestors().map(|d| d.join(".git")).find(|g| g.is_dir())
}

/// The project's `.git/hooks` and `.git/config`, and those of its submodules and worktrees,
/// where they exist: git runs what they name.
pub fn git_protected(cwd: &Path) -> Vec<PathBuf> {
    let Some(git) = git_dir(cwd) else { return vec![] };
    let mut dirs = vec![git.clone()];
    for nested in ["modules", "worktrees"] {
        if let Ok(entries) = std::fs::read_dir(git.join(nested)) {
            dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    let mut out: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| ["hooks", "config", "config.worktree"].map(|p| d.join(p)))
        .filter(|p| p.exists())
        .collect();
    out.sort();
    out
}

/// Where a shell that resets PATH (a login shell's /etc/profile, `sudo`'s secure_path, `env -i`)
/// looks, besides the PATH the agent was given.
const SYSTEM_BIN: &[&str] =
    &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin", "/snap/bin", "/usr/games"];

/// Every file named after a guarded tool in the agent's PATH directories and the system's binary
/// directories, that is not guardsh itself: each gets guardsh bound over it.
pub fn real_tools(tools: &[String], path_dirs: &[PathBuf], guardsh: crate::exec::FileId) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let system = SYSTEM_BIN.iter().map(PathBuf::from);
    for dir in path_dirs.iter().cloned().chain(system).filter(|d| d.is_absolute()) {
        for tool in tools {
            let candidate = dir.join(tool);
            let Ok(m) = std::fs::metadata(&candidate) else { continue };
            if !m.is_file() || crate::exec::FileId::of(&candidate).is_ok_and(|id| id == guardsh) {
                continue;
            }
            // The file itself: a mount over a link lands on what it points to, which is the
            // binary to cover anyway; the canonical path keeps one entry per binary.
            out.push(candidate.canonicalize().unwrap_or(candidate));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A git configuration's text with the credentials in URLs (`https://user:TOKEN@host/...`)
/// replaced, or None when it has none. The agent reads `.git/config` (git runs inside, and needs
/// it), so a token kept there is bound over with this copy.
pub fn without_url_credentials(config: &str) -> Option<String> {
    let mut changed = false;
    let out: Vec<String> = config
        .lines()
        .map(|line| {
            let Some(scheme) = line.find("://") else { return line.to_string() };
            let rest = &line[scheme + 3..];
            let host_end = rest.find(['/', ' ', '"']).unwrap_or(rest.len());
            match rest[..host_end].rfind('@') {
                Some(at) if at > 0 => {
                    changed = true;
                    format!("{}://{}", &line[..scheme], &rest[at + 1..])
                }
                _ => line.to_string(),
            }
        })
        .collect();
    changed.then(|| out.join("\n") + "\n")
}

/// Files in a project that editors and tools run by themselves, outside any sandbox: what the
/// agent could leave behind for later (`guardsh run` reports those created or changed).
pub const AUTORUN: &[&str] = &[
    ".envrc",
    ".env",
    ".vscode/tasks.json",
    ".vscode/settings.json",
    ".vscode/launch.json",
    ".vscode/extensions.json",
    ".idea/workspace.xml",
    ".devcontainer/devcontainer.json",
    ".pre-commit-config.yaml",
    ".gitattributes",
    ".github/workflows",
    ".cargo/config.toml",
    ".cargo/config",
    "build.rs",
    "Makefile",
    "package.json",
    ".npmrc",
    ".yarnrc.yml",
    "pyproject.toml",
    "setup.py",
    "conftest.py",
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".mcp.json",
    ".codex/config.toml",
];

/// An autorun file, and its (length, modification time) if present.
pub type Seen = (PathBuf, Option<(u64, i64, i64)>);

/// What the autorun files look like now.
pub fn autorun_state(project: &Path) -> Vec<Seen> {
    use std::os::unix::fs::MetadataExt;
    AUTORUN
        .iter()
        .map(|rel| {
            let p = project.join(rel);
            let m = std::fs::symlink_metadata(&p).ok().map(|m| (m.len(), m.mtime(), m.mtime_nsec()));
            (p, m)
        })
        .collect()
}

/// The autorun files created or changed between two states.
pub fn autorun_changes(before: &[Seen], after: &[Seen]) -> Vec<(PathBuf, &'static str)> {
    before
        .iter()
        .zip(after)
        .filter_map(|((p, b), (_, a))| match (b, a) {
            (None, Some(_)) => Some((p.clone(), "created")),
            (Some(x), Some(y)) if x != y => Some((p.clone(), "changed")),
            (Some(_), None) => Some((p.clone(), "removed")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_names() {
        for yes in [
            ".env",
            ".env.local",
            "prod.pem",
            "tls.key",
            ".pgpass",
            "kubeconfig",
            "x.kubeconfig",
            "credentials",
            "service-account-ci.json",
            "prod.tfvars",
            "terraform.tfstate",
        ] {
            assert!(super::is_secret_name(yes), "{yes}");
        }
        for no in ["env.rs", ".env.example", "README.md", "keys.rs", "main.go", "secret.rs", "pem", "key"] {
            assert!(!super::is_secret_name(no), "{no}");
        }
    }

    #[test]
    fn url_credentials_are_taken_out_of_a_git_config() {
        let config = "[remote \"origin\"]\n\turl = https://x-access-token:ghp_secret@github.com/o/r.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n";
        let clean = super::without_url_credentials(config).expect("changed");
        assert!(!clean.contains("ghp_secret") && clean.contains("url = https://github.com/o/r.git"), "{clean}");
        assert!(super::without_url_credentials("[core]\n\turl = https://github.com/o/r.git\n").is_none());
        assert!(
            super::without_url_credentials("\turl = git@github.com:o/r.git\n").is_none(),
            "scp-like ssh is no credential"
        );
    }
}
