//! Finds what an agent running as this user could still reach: credentials in well-known files
//! of the CLIs guardsh guards and in `.env` files under the working directory (names and paths,
//! never values; `guardsh doctor` and `guardsh run`), and real binaries it could have replaced
//! (the custodian does not start those with credentials).

use std::io::Read;
use std::path::{Path, PathBuf};

/// One readable credential store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    pub what: &'static str,
    pub advice: &'static str,
}

/// Why the credentials must not go to `real`: the binary, a directory on the way to it, or a
/// symlink on the way (followed through every link) could have been replaced by a process of
/// `uid` (the agent). The binary guardsh run found is only worth trusting if the agent could not
/// have put it there. A symlink's own mode bits mean nothing: it is replaceable when it is the
/// user's own or its directory is.
pub fn replaceable(real: &std::path::Path, uid: u32) -> Result<(), String> {
    if uid == 0 {
        return Ok(());
    }
    let mut seen = 0;
    check_chain(real, uid, &mut seen).map_err(|p| {
        format!(
            "the real binary {} is replaceable by this user ({} is writable by it), so an agent could have put its own there; install the tool where only root can write (a system package), or set trust_user_installed_tools (README \"Credential custody\")",
            real.display(),
            p.display()
        )
    })
}

/// Whether a directory may be on the PATH of a tool `guardsh run` starts: nothing on the way to
/// it replaceable by `uid`, not writable by anyone but its owner (a sticky `/tmp` still takes new
/// names from anyone), and nothing in it that `uid` could change: a file of the user's own, or a
/// symlink leading somewhere the user can write (`/usr/local/bin/node -> ~/.nvm/...`). `Err`
/// says why not.
pub fn trusted_path_dir(dir: &std::path::Path, uid: u32) -> Result<(), String> {
    trusted_path_dir_with(dir, uid, None)
}

/// `trusted_path_dir`, and with `path` (the PATH the tool will have), also every script in the
/// directory whose interpreter (`#!`, or `#!/usr/bin/env NAME` looked up on `path`) this user
/// could replace: a tool runs such scripts by name.
pub fn trusted_path_dir_with(dir: &std::path::Path, uid: u32, path: Option<&std::ffi::OsStr>) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if uid == 0 {
        return Ok(());
    }
    let mut seen = 0;
    // Name the PATH entry itself, and the directory above it that makes it replaceable.
    check_chain(dir, uid, &mut seen).map_err(|p| {
        if p == dir {
            format!("{} is writable by this user", dir.display())
        } else {
            format!("{} ({} is writable by this user)", dir.display(), p.display())
        }
    })?;
    let m = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if m.mode() & 0o022 != 0 {
        return Err(format!("{} is writable by others", dir.display()));
    }
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
        let p = e.path();
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        let bad = if m.file_type().is_symlink() {
            let mut seen = 0;
            m.uid() == uid || check_chain(&p, uid, &mut seen).is_err()
        } else {
            m.uid() == uid || m.mode() & 0o022 != 0
        };
        if bad {
            return Err(format!("{} can be changed by this user", p.display()));
        }
        if let Some(path) = path
            && let Err(why) = interpreter_replaceable(&p, path, uid)
        {
            return Err(format!("{} runs an interpreter this user can change ({why})", p.display()));
        }
    }
    Ok(())
}

/// Why the interpreter a script names (`#!/path/interp`, or `#!/usr/bin/env NAME` found on
/// `path`) could be the agent's program; scripts whose interpreter is itself a script are
/// followed a few levels.
pub fn interpreter_replaceable(real: &std::path::Path, path: &std::ffi::OsStr, uid: u32) -> Result<(), String> {
    use std::io::BufRead;
    let mut script = real.to_path_buf();
    for _ in 0..4 {
        // Only regular files are read (a FIFO or device in a PATH directory must not block).
        if !std::fs::metadata(&script).is_ok_and(|m| m.is_file()) {
            return Ok(());
        }
        let Ok(f) = std::fs::File::open(&script) else { return Ok(()) };
        let mut first = Vec::new();
        let _ = std::io::BufReader::new(f).take(256).read_until(b'\n', &mut first);
        let Some(rest) = first.strip_prefix(b"#!") else { return Ok(()) };
        let line = String::from_utf8_lossy(rest).into_owned();
        let mut words = line.split_whitespace();
        let Some(interp) = words.next().map(std::path::PathBuf::from) else { return Ok(()) };
        replaceable(&interp, uid)?;
        let next = if interp.file_name().is_some_and(|n| n == "env") {
            // `env [-S] NAME`: NAME is looked up on the tool's PATH.
            let Some(name) = words.find(|w| !w.starts_with('-')) else { return Ok(()) };
            let found = std::env::split_paths(path).map(|d| d.join(name)).find(|p| p.is_file());
            match found {
                Some(p) => {
                    replaceable(&p, uid)?;
                    p
                }
                None => return Ok(()),
            }
        } else {
            interp
        };
        script = next;
    }
    Ok(())
}

/// Checks every prefix of `path`, following each symlink met on the way; `Err` names the first
/// replaceable one. `seen` bounds the number of links followed, as the kernel does.
fn check_chain(path: &std::path::Path, uid: u32, seen: &mut usize) -> Result<(), std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    use std::path::{Component, PathBuf};
    // A relative path is resolved against a directory the agent may choose (the tool's).
    if !path.is_absolute() {
        return Err(path.to_path_buf());
    }
    let mut at = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => continue,
            Component::Prefix(_) => return Err(path.to_path_buf()),
            Component::ParentDir => {
                at.pop();
                continue;
            }
            Component::Normal(name) => at.push(name),
        }
        let m = match std::fs::symlink_metadata(&at) {
            Ok(m) => m,
            // Nothing there (a dangling link, say): only someone who can write its directory can
            // put something there. The directories above were checked on the way; a world-
            // writable one (sticky or not: anyone may create a new name in /tmp) is not safe.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = at.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
                return match std::fs::metadata(&parent) {
                    Ok(pm) if pm.uid() != uid && pm.mode() & 0o022 == 0 => Ok(()),
                    _ => Err(at),
                };
            }
            Err(_) => return Err(at),
        };
        if m.file_type().is_symlink() {
            *seen += 1;
            let Ok(target) = std::fs::read_link(&at) else { return Err(at) };
            if m.uid() == uid || *seen > 40 {
                return Err(at);
            }
            let parent = at.parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
            let resolved = parent.join(target);
            check_chain(&resolved, uid, seen)?;
            // Continue from where the link leads (nowhere, for a dangling link that passed).
            at = match resolved.canonicalize() {
                Ok(p) => p,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(_) => return Err(resolved),
            };
            continue;
        }
        let sticky_dir = m.is_dir() && m.mode() & 0o1000 != 0;
        if m.uid() == uid || (m.mode() & 0o022 != 0 && !sticky_dir) {
            return Err(at);
        }
    }
    Ok(())
}

/// (path under HOME, what it holds, text that shows it holds a secret (`None`: any content), advice)
const HOME_FILES: &[(&str, &str, Option<&str>, &str)] = &[
    (
        ".aws/credentials",
        "AWS access keys",
        None,
        "use short-lived sessions (aws sso login), or hand the keys to `guardsh run` and delete the file",
    ),
    (
        ".aws/config",
        "AWS keys in the config file",
        Some("aws_secret_access_key"),
        "move the keys out of the config file",
    ),
    (
        ".kube/config",
        "a Kubernetes token or client key",
        Some("token:"),
        "use an exec credential plugin (short-lived tokens) instead of a static token",
    ),
    (
        ".kube/config",
        "a Kubernetes client key",
        Some("client-key-data"),
        "use an exec credential plugin instead of an embedded client key",
    ),
    (
        ".pgpass",
        "PostgreSQL passwords",
        None,
        "give the password to `guardsh run` as PGPASSWORD instead, and delete the file",
    ),
    (".my.cnf", "a MySQL password", Some("password"), "give the password to `guardsh run` as MYSQL_PWD instead"),
    (
        ".netrc",
        "machine passwords (Heroku and others)",
        None,
        "remove the entries for services an agent must not reach",
    ),
    (
        ".config/gh/hosts.yml",
        "a GitHub token",
        Some("oauth_token"),
        "use `gh auth login` with the keyring, or give GH_TOKEN to `guardsh run`",
    ),
    (
        ".docker/config.json",
        "registry credentials",
        Some("\"auth\""),
        "use a credential helper (credsStore) instead of inline auths",
    ),
    (
        ".config/gcloud/application_default_credentials.json",
        "Google application default credentials",
        None,
        "revoke them (gcloud auth application-default revoke) when not in use",
    ),
    (
        ".config/gcloud/credentials.db",
        "gcloud login tokens",
        None,
        "log out (gcloud auth revoke) before starting an agent",
    ),
    (".azure/msal_token_cache.json", "Azure CLI tokens", None, "log out (az logout) before starting an agent"),
    (
        ".railway/config.json",
        "a Railway login token",
        Some("token"),
        "log out (railway logout) and give RAILWAY_TOKEN to `guardsh run` instead",
    ),
    (
        ".fly/config.yml",
        "a Fly.io token",
        Some("access_token"),
        "log out (fly auth logout) and give FLY_API_TOKEN to `guardsh run` instead",
    ),
    (
        ".config/doctl/config.yaml",
        "a DigitalOcean token",
        Some("access-token"),
        "give DIGITALOCEAN_ACCESS_TOKEN to `guardsh run` instead",
    ),
    (".terraform.d/credentials.tfrc.json", "Terraform Cloud tokens", None, "give TF_TOKEN_* to `guardsh run` instead"),
    (
        ".supabase/access-token",
        "a Supabase token",
        None,
        "log out (supabase logout) and give SUPABASE_ACCESS_TOKEN to `guardsh run` instead",
    ),
    (
        ".local/share/com.vercel.cli/auth.json",
        "a Vercel token",
        Some("token"),
        "log out (vercel logout) and give VERCEL_TOKEN to `guardsh run` instead",
    ),
];

const ENV_ADVICE: &str = "an agent working here can read it: keep secrets out of the working tree, or make the file unreadable to the agent's user";

/// How deep under the working directory `.env` files are looked for, and how many entries at most.
const ENV_DEPTH: usize = 3;
const ENV_BUDGET: usize = 5_000;

pub fn scan(home: &Path, cwd: &Path) -> Vec<Finding> {
    let mut out = Vec::new();
    for (rel, what, marker, advice) in HOME_FILES {
        let path = home.join(rel);
        let Some(text) = readable(&path) else { continue };
        let holds = match marker {
            None => !text.trim().is_empty(),
            Some(m) => text.contains(m),
        };
        // One finding per file, the first kind that applies.
        if holds && !out.iter().any(|f: &Finding| f.path == path) {
            out.push(Finding { path, what, advice });
        }
    }
    let mut budget = ENV_BUDGET;
    dotenv_files(cwd, ENV_DEPTH, &mut budget, &mut out);
    out
}

/// `kernel.yama.ptrace_scope`, if Yama is present. Below 2, a process of the user can attach to
/// (or, at 0, read the memory of) other processes of the user that are not sealed: a shim before
/// it seals itself, and the shell that started `guardsh run`.
pub fn ptrace_scope() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok()?.trim().parse().ok()
}

/// What to say about `ptrace_scope`, when it leaves a gap.
pub fn ptrace_warning() -> Option<String> {
    let scope = ptrace_scope();
    if scope.is_some_and(|s| s >= 2) {
        return None;
    }
    let now = scope.map_or("Yama is not enabled".to_string(), |s| format!("kernel.yama.ptrace_scope is {s}"));
    Some(format!(
        "{now}: an agent can debug (and so change) other processes of this user, such as the shell that started guardsh run, \
         whose memory may still hold credentials; `sysctl kernel.yama.ptrace_scope=2` (as root) stops that"
    ))
}

/// What to say when this guardsh binary is one the user (so an agent) could replace: a later
/// `guardsh run` would then be the agent's program, holding the credentials.
pub fn own_binary_warning() -> Option<String> {
    let exe = std::fs::read_link("/proc/self/exe").ok()?;
    let uid = nix::unistd::geteuid().as_raw();
    replaceable(&exe, uid).err().map(|_| {
        format!(
            "this guardsh ({}) can be replaced by this user, so an agent could swap in its own program for the next guardsh run; \
             for credential custody move it where only root can write: sudo install -m 0755 {} /usr/local/bin/guardsh && rm {} && /usr/local/bin/guardsh install",
            exe.display(),
            exe.display(),
            exe.display()
        )
    })
}

/// The first 64 KiB of a file this process can read.
fn readable(path: &Path) -> Option<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path).ok()?.take(64 << 10).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn dotenv_files(dir: &Path, depth: usize, budget: &mut usize, out: &mut Vec<Finding>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            let skip = matches!(name.as_ref(), ".git" | "node_modules" | "target" | ".venv" | "venv" | "vendor");
            if depth > 0 && !skip {
                dotenv_files(&e.path(), depth - 1, budget, out);
            }
        } else if is_dotenv(&name) && readable(&e.path()).is_some_and(|t| t.contains('=')) {
            out.push(Finding { path: e.path(), what: "an environment file", advice: ENV_ADVICE });
        }
    }
}

/// `.env`, `.env.local`, `.env.production`, ...; not the templates meant to be committed.
fn is_dotenv(name: &str) -> bool {
    (name == ".env" || name.starts_with(".env."))
        && !matches!(name, ".env.example" | ".env.sample" | ".env.template" | ".env.dist")
}

#[cfg(test)]
mod tests {

    /// Issue 16: the warning named the writable directory above a PATH entry ("HOME is
    /// writable") instead of the entry guardsh leaves out.
    #[test]
    fn a_path_entry_under_a_writable_directory_is_named_with_it() {
        let root = tempfile::tempdir().expect("tempdir");
        let entry = root.path().join("bin");
        std::fs::create_dir(&entry).expect("mkdir");
        let uid = if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(root.path(), Some(12345), None).expect("chown");
            12345
        } else {
            nix::unistd::getuid().as_raw()
        };
        let why = super::trusted_path_dir(&entry, uid).expect_err("replaceable");
        assert!(why.starts_with(&format!("{} (", entry.display())), "{why}");
        assert!(why.ends_with(" is writable by this user)"), "{why}");
    }
    use super::is_dotenv;

    /// A binary is trusted when nothing on the way to it, through every symlink, is the user's or
    /// writable by others; a symlink's own mode bits (always 0777) do not count against it.
    #[test]
    fn replaceable_follows_symlinks_and_judges_their_owner() {
        use super::replaceable;
        use std::os::unix::fs::{PermissionsExt, symlink};
        let agent = 4242; // a uid that owns nothing here
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let bin = root.join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        std::fs::write(bin.join("tool"), "").expect("tool");
        symlink("bin", root.join("link")).expect("symlink");
        symlink(bin.join("tool"), root.join("tool-link")).expect("symlink");
        assert_eq!(replaceable(&bin.join("tool"), agent), Ok(()));
        assert_eq!(replaceable(&root.join("link/tool"), agent), Ok(()), "a symlinked directory on the way");
        assert_eq!(replaceable(&root.join("tool-link"), agent), Ok(()), "a symlink to the binary");

        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(replaceable(&root.join("tool-link"), agent).is_err(), "a world-writable directory behind a link");
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");

        // A dangling link (Debian's /usr/bin/rust-clang -> clang-14, not installed): nobody but
        // root can create its target, so it takes nothing away from its directory.
        symlink("missing-14", bin.join("dangling")).expect("symlink");
        assert_eq!(replaceable(&bin.join("dangling"), agent), Ok(()), "a dangling link in a safe directory");
        let open = root.join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        symlink(open.join("later"), bin.join("into-tmp")).expect("symlink");
        assert!(replaceable(&bin.join("into-tmp"), agent).is_err(), "a dangling link into a world-writable directory");

        let mine = nix::unistd::geteuid().as_raw();
        if mine != 0 {
            assert!(replaceable(&bin.join("tool"), mine).is_err(), "the user's own files");
        } else {
            nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                &root.join("tool-link"),
                Some(agent.into()),
                None,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .expect("lchown");
            assert!(replaceable(&root.join("tool-link"), agent).is_err(), "a symlink the user owns");
        }
    }

    #[test]
    fn dotenv_names() {
        for (name, want) in
            [(".env", true), (".env.local", true), (".env.example", false), ("env", false), (".envrc", false)]
        {
            assert_eq!(is_dotenv(name), want, "{name}");
        }
    }
}
