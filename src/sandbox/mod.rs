//! What the agent's sandbox looks like: the plan `guardsh run` computes from plain values (home,
//! working directory, PATH, guarded tools, policy settings) and hands to `guardsh sandbox-exec`,
//! which carries it out (`init.rs`: namespaces and mounts; `landlock.rs`; `seccomp.rs`).
//!
//! Pure: no filesystem, no environment. The shape, and why:
//! - The agent runs as the human's uid, so only the kernel can keep it from the human's files.
//!   A new mount namespace hides them (tmpfs over `$HOME`, `/tmp`, `/run`, `/dev/shm`), and binds
//!   back in only what an agent needs: the project (read-write), its own state and caches
//!   (read-write), the directories on its PATH (read-only).
//! - Landlock is the allow-list under that: read-only system directories, read-write only the
//!   project, the private temporary directories, the writable list and a few devices. Outside
//!   the namespace's view nothing is readable, so a path the plan forgot is closed, not open.
//! - Inside the project, files that hold secrets (found at start) get `/dev/null` bound over them,
//!   `.git/hooks` and `.git/config` are read-only.
//! - Every real binary of a guarded tool the agent's PATH finds is covered by guardsh itself, so
//!   `/usr/bin/kubectl` by absolute path, or a login shell that resets PATH, reaches the broker.

pub mod init;
pub mod jail;
pub mod landlock;
pub mod probe;
pub mod pty;
pub mod scan;
pub mod seccomp;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the broker's socket directory appears inside the sandbox.
pub const BROKER_DIR: &str = "/run/guardsh";
/// Carries the plan from `guardsh run` to `guardsh sandbox-exec` (not argv: pid 1's command line
/// is readable inside the sandbox; its environment is not, and the agent's has it removed).
pub const PLAN_VAR: &str = "GUARDSH_SANDBOX_PLAN";
/// Names the broker's socket in the agent's environment: a shim that sees it proposes its
/// command to `guardsh run` and never runs a tool itself.
pub const BROKER_VAR: &str = "GUARDSH_BROKER";
/// Test and diagnosis knob for `guardsh run` and `doctor` (the human's environment, never the
/// agent's: it is read before the agent exists): `landlock-abi=N` and `no-userns` make guardsh
/// behave as on a kernel with less. It can only take features away.
pub const SIMULATE_VAR: &str = "GUARDSH_SANDBOX_SIMULATE";

/// Directories under the human's home that agents keep their own state and caches in, made
/// writable when they exist. Caches are a persistence risk (a poisoned build script later runs
/// outside); the README says so, and `[sandbox] writable` can only add to this list.
pub const HOME_WRITABLE: &[&str] = &[".claude", ".claude.json", ".codex", ".local/share/claude", ".local/state/claude"];

/// Package caches under the human's home: the agent sees them, and what it writes there goes to
/// an overlay of the session's own (a poisoned build script in `~/.cargo/registry` would later
/// run outside, in the human's own builds). `[sandbox] writable` shares one for real instead.
pub const HOME_CACHES: &[&str] = &[".npm", ".cargo/registry", ".cargo/git", "go/pkg/mod"];

/// Directories under the human's home that agents and their toolchains run from, made readable
/// (never writable) when they exist.
pub const HOME_READABLE: &[&str] =
    &[".rustup", ".cargo/bin", ".nvm", ".npm-global", ".volta", ".bun", ".deno", ".pyenv", ".local/lib", "go/bin"];

/// System directories the agent may read and run programs from. Anything else (other homes,
/// `/root`, `/srv`, `/mnt`, ...) is unreadable unless the plan names it.
pub const SYSTEM_READABLE: &[&str] = &[
    "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/etc", "/opt", "/var", "/snap", "/nix", "/proc",
    "/sys", "/dev",
];

/// Devices the agent may open for writing (the terminal, pseudo-terminals, the usual sinks).
pub const DEVICES_WRITABLE: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx", "/dev/pts", "/dev/random", "/dev/urandom"];

/// Private, empty directories in the sandbox: the human's temporary files, runtime sockets
/// (tmux, screen, ssh-agent, D-Bus, docker, password managers) and shared memory are not there.
pub const PRIVATE_TMPFS: &[&str] = &["/tmp", "/var/tmp", "/dev/shm", "/run", "/var/run"];

/// Directories under `/run` bound back in, read-only, when they exist: name resolution.
pub const RUN_KEEP: &[&str] = &["/run/systemd/resolve"];

/// `[sandbox]` in the base policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// More places the agent may read (absolute, or relative to the home directory).
    pub readable: Vec<String>,
    /// More places the agent may write.
    pub writable: Vec<String>,
    /// Let the agent create user namespaces of its own (off: seccomp refuses them).
    pub nested_user_namespaces: bool,
}

/// A bind mount: `src` (in the human's view) appears at `dst` in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub src: PathBuf,
    pub dst: PathBuf,
    pub writable: bool,
}

/// Everything `guardsh sandbox-exec` does, decided in `guardsh run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub uid: u32,
    pub gid: u32,
    /// Empty directories (tmpfs), shallowest first.
    pub tmpfs: Vec<PathBuf>,
    /// Bound in after the tmpfs mounts, shallowest destination first.
    pub binds: Vec<Bind>,
    /// Files inside the project that get `/dev/null` over them.
    pub masks: Vec<PathBuf>,
    /// Caches shown with an overlay: the agent's writes are its own and end with the session.
    #[serde(default)]
    pub overlays: Vec<PathBuf>,
    /// Bound onto themselves (read-write), so that they cannot be renamed or removed: `.git`.
    #[serde(default)]
    pub pinned: Vec<PathBuf>,
    /// Made read-only where they are (`.git/hooks`, `.git/config`).
    pub read_only: Vec<PathBuf>,
    /// Files shown instead of others, read-only (`src` a cleaned copy guardsh made): a
    /// `.git/config` without the credentials in its remote URLs.
    #[serde(default)]
    pub replace: Vec<Bind>,
    /// Real binaries of guarded tools, each covered by `guardsh`.
    pub cover: Vec<PathBuf>,
    /// The guardsh binary that covers them.
    pub guardsh: PathBuf,
    /// The broker's socket directory, bound at `BROKER_DIR`.
    pub broker_dir: PathBuf,
    /// Landlock: read and execute beneath these; read and write beneath those.
    pub landlock_read: Vec<PathBuf>,
    pub landlock_write: Vec<PathBuf>,
    /// The highest Landlock ABI to use (the kernel's, or less when simulated).
    pub landlock_abi: i32,
    pub nested_user_namespaces: bool,
    /// The working directory the agent starts in.
    pub cwd: PathBuf,
    /// The home directory (an empty tmpfs inside) and the shim directory: login shells there
    /// get a profile that puts the shims first (`init::login_profiles`).
    pub home: PathBuf,
    pub shim_dir: PathBuf,
}

/// What `guardsh run` knows when it plans the sandbox.
#[derive(Clone)]
pub struct Inputs<'a> {
    pub uid: u32,
    pub gid: u32,
    pub home: &'a Path,
    pub cwd: &'a Path,
    /// The agent's PATH directories (absolute ones; the shim directory included).
    pub path_dirs: &'a [PathBuf],
    pub shim_dir: &'a Path,
    pub guardsh: &'a Path,
    pub broker_dir: &'a Path,
    /// Of the candidates below, those that exist (the caller looked).
    pub existing: &'a dyn Fn(&Path) -> bool,
    /// Real binaries of guarded tools found on the agent's PATH.
    pub real_tools: &'a [PathBuf],
    /// Secret files found in the project.
    pub secrets: &'a [PathBuf],
    /// `.git/hooks` and `.git/config` of the project, where they exist.
    pub git_protected: &'a [PathBuf],
    /// The project's `.git`, where there is one.
    pub git_dir: Option<&'a Path>,
    pub settings: &'a Settings,
    pub landlock_abi: i32,
}

/// Why the sandbox cannot be planned for this start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "the working directory {0} holds your home directory, so the agent would see all of it; start the agent in a project directory (or use --no-sandbox)"
    )]
    CwdHoldsHome(String),
    #[error("{0} is not an absolute path; `[sandbox]` entries are absolute or relative to your home directory (~/...)")]
    NotAbsolute(String),
}

/// Is `path` beneath (or equal to) `dir`?
fn beneath(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir)
}

fn depth(p: &Path) -> usize {
    p.components().count()
}

/// A `[sandbox]` entry as a path: absolute, or `~/...` / relative meaning under the home directory.
pub fn setting_path(home: &Path, entry: &str) -> Result<PathBuf, PlanError> {
    let p = if let Some(rest) = entry.strip_prefix("~/") {
        home.join(rest)
    } else if entry == "~" {
        home.to_path_buf()
    } else {
        PathBuf::from(entry)
    };
    if p.is_absolute() { Ok(p) } else { Err(PlanError::NotAbsolute(entry.to_string())) }
}

impl Plan {
    /// The sandbox for these inputs.
    pub fn build(i: &Inputs<'_>) -> Result<Self, PlanError> {
        if beneath(i.home, i.cwd) {
            return Err(PlanError::CwdHoldsHome(i.cwd.display().to_string()));
        }
        let mut tmpfs: Vec<PathBuf> = PRIVATE_TMPFS.iter().map(PathBuf::from).filter(|p| (i.existing)(p)).collect();
        // The home directory last among the empty ones: it may itself lie in /tmp (tests do).
        tmpfs.push(i.home.to_path_buf());
        let covered = |p: &Path| tmpfs.iter().any(|t| beneath(p, t));

        let mut readable: Vec<PathBuf> = Vec::new();
        let mut writable: Vec<PathBuf> = vec![i.cwd.to_path_buf()];
        readable.extend(HOME_READABLE.iter().map(|r| i.home.join(r)));
        readable.extend(i.path_dirs.iter().cloned());
        readable.push(i.shim_dir.to_path_buf());
        // The binary itself, which every shim links to: its directory may hold more than it.
        readable.push(i.guardsh.to_path_buf());
        readable.extend(RUN_KEEP.iter().map(PathBuf::from));
        writable.extend(HOME_WRITABLE.iter().map(|w| i.home.join(w)));
        for r in &i.settings.readable {
            readable.push(setting_path(i.home, r)?);
        }
        for w in &i.settings.writable {
            writable.push(setting_path(i.home, w)?);
        }
        readable.retain(|p| (i.existing)(p));
        writable.retain(|p| (i.existing)(p));
        let overlays: Vec<PathBuf> =
            HOME_CACHES.iter().map(|c| i.home.join(c)).filter(|p| (i.existing)(p) && !writable.contains(p)).collect();
        // Nothing that holds the home directory comes back in whole (a PATH entry such as the
        // directory guardsh itself was built in, above a test's or a user's HOME): it would
        // bring back everything the home's tmpfs hides. Such a place is left out.
        readable.retain(|p| !beneath(i.home, p));
        writable.retain(|p| !beneath(i.home, p));
        // A place both readable and writable is writable; one inside a writable place needs no
        // bind of its own, a readable one inside a writable place stays read-only (a PATH
        // directory inside the project must not become a way to change what runs).
        readable.retain(|r| !writable.contains(r));

        let mut binds: Vec<Bind> = Vec::new();
        for (list, w) in [(&writable, true), (&readable, false)] {
            for p in list.iter() {
                if covered(p) {
                    binds.push(Bind { src: p.clone(), dst: p.clone(), writable: w });
                }
            }
        }
        binds.sort_by_key(|b| (depth(&b.dst), b.writable));
        binds.dedup_by(|a, b| a.dst == b.dst);

        let mut landlock_read: Vec<PathBuf> = SYSTEM_READABLE.iter().map(PathBuf::from).collect();
        landlock_read.extend(readable.iter().cloned());
        landlock_read.push(i.guardsh.to_path_buf());
        landlock_read.push(PathBuf::from(BROKER_DIR));
        let mut landlock_write: Vec<PathBuf> = writable.clone();
        // The private tmpfs mounts and the home tmpfs are the agent's own scratch space: what it
        // writes there is gone when the session ends, and nothing of the human's is in them.
        landlock_write.extend(["/tmp", "/var/tmp", "/dev/shm"].iter().map(PathBuf::from));
        landlock_write.push(i.home.to_path_buf());
        landlock_write.extend(DEVICES_WRITABLE.iter().map(PathBuf::from));

        // Masks and read-only spots are only those the agent can see (inside a writable place).
        let visible = |p: &Path| writable.iter().any(|w| beneath(p, w));
        let masks: Vec<PathBuf> = i.secrets.iter().filter(|p| visible(p)).cloned().collect();
        let read_only: Vec<PathBuf> = i.git_protected.iter().filter(|p| visible(p)).cloned().collect();
        let pinned: Vec<PathBuf> = i.git_dir.filter(|g| visible(g)).map(Path::to_path_buf).into_iter().collect();
        let mut cover: Vec<PathBuf> = i.real_tools.to_vec();
        cover.sort();
        cover.dedup();

        Ok(Plan {
            uid: i.uid,
            gid: i.gid,
            tmpfs,
            binds,
            masks,
            overlays,
            pinned,
            read_only,
            replace: vec![],
            cover,
            guardsh: i.guardsh.to_path_buf(),
            broker_dir: i.broker_dir.to_path_buf(),
            landlock_read,
            landlock_write,
            landlock_abi: i.landlock_abi,
            nested_user_namespaces: i.settings.nested_user_namespaces,
            cwd: i.cwd.to_path_buf(),
            home: i.home.to_path_buf(),
            shim_dir: i.shim_dir.to_path_buf(),
        })
    }
}

/// What this kernel offers the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Support {
    /// 0: no Landlock.
    pub landlock_abi: i32,
    pub user_namespaces: bool,
}

/// Whether the sandbox can start, and what it leaves out on this kernel.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Floor {
    /// Below the floor: `guardsh run` refuses to start (and says why).
    Refuse(String),
    /// Enforced, with these gaps on this kernel (empty: none).
    Run { gaps: Vec<String> },
}

/// The floor is Landlock plus a mount namespace (in a user namespace): Landlock alone cannot
/// hide the human's Unix sockets in `/tmp` and `/run` before ABI 9, nor files inside the project.
pub fn floor(s: Support) -> Floor {
    if s.landlock_abi < 1 {
        return Floor::Refuse(
            "this kernel has no Landlock (Linux 5.13+, with landlock in the lsm= list), so the agent's file access cannot be limited".into(),
        );
    }
    if !s.user_namespaces {
        return Floor::Refuse(
            "unprivileged user namespaces are not available here (kernel.unprivileged_userns_clone, user.max_user_namespaces, or an AppArmor restriction), so the human's files, sockets and processes cannot be hidden from the agent".into(),
        );
    }
    let mut gaps = Vec::new();
    if s.landlock_abi < 2 {
        gaps.push("renaming files between directories is refused (Landlock ABI < 2)".into());
    }
    if s.landlock_abi < 3 {
        gaps.push("truncating files in read-only places is not checked (Landlock ABI < 3)".into());
    }
    if s.landlock_abi < 5 {
        gaps.push("ioctl on devices is not checked by Landlock (ABI < 5); seccomp still refuses TIOCSTI".into());
    }
    if s.landlock_abi < 6 {
        gaps.push("abstract Unix sockets of the human's session stay reachable (Landlock ABI < 6)".into());
    }
    Floor::Run { gaps }
}

/// Applies `SIMULATE_VAR`'s value: it can only take features away.
pub fn simulate(real: Support, knob: Option<&str>) -> Support {
    let mut s = real;
    for word in knob.unwrap_or("").split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word == "no-userns" {
            s.user_namespaces = false;
        } else if let Some(n) = word.strip_prefix("landlock-abi=").and_then(|n| n.parse::<i32>().ok()) {
            s.landlock_abi = s.landlock_abi.min(n.max(0));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(
        home: &'a Path,
        cwd: &'a Path,
        dirs: &'a [PathBuf],
        existing: &'a dyn Fn(&Path) -> bool,
        settings: &'a Settings,
    ) -> Inputs<'a> {
        Inputs {
            uid: 1000,
            gid: 1000,
            home,
            cwd,
            path_dirs: dirs,
            shim_dir: Path::new("/home/u/.local/share/guardsh/shims"),
            guardsh: Path::new("/usr/local/bin/guardsh"),
            broker_dir: Path::new("/tmp/guardsh-run-x"),
            existing,
            real_tools: &[],
            secrets: &[],
            git_protected: &[],
            git_dir: None,
            settings,
            landlock_abi: 7,
        }
    }

    #[test]
    fn the_home_is_hidden_and_only_named_places_come_back() {
        let all = |_: &Path| true;
        let dirs = [PathBuf::from("/usr/bin"), PathBuf::from("/home/u/.local/bin")];
        let s = Settings { writable: vec!["~/scratch".into()], ..Settings::default() };
        let plan =
            Plan::build(&inputs(Path::new("/home/u"), Path::new("/home/u/src/app"), &dirs, &all, &s)).expect("plan");
        assert!(plan.tmpfs.contains(&PathBuf::from("/home/u")));
        assert!(plan.tmpfs.contains(&PathBuf::from("/tmp")));
        let bind = |p: &str| plan.binds.iter().find(|b| b.dst == Path::new(p)).map(|b| b.writable);
        assert_eq!(bind("/home/u/src/app"), Some(true), "the project");
        assert_eq!(bind("/home/u/.local/bin"), Some(false), "a PATH directory, read-only");
        assert_eq!(bind("/home/u/scratch"), Some(true), "[sandbox] writable");
        assert_eq!(bind("/home/u/.claude"), Some(true), "the agent's own state");
        assert_eq!(bind("/usr/bin"), None, "system directories are not under a tmpfs");
        assert_eq!(bind("/usr/local/bin/guardsh"), None, "the binary is not under a tmpfs");
        for secret in [".aws", ".ssh", ".kube", ".railway", ".config/gh", ".bash_history", ".gitconfig"] {
            let p = Path::new("/home/u").join(secret);
            assert!(!plan.binds.iter().any(|b| p.starts_with(&b.dst)), "{secret} must stay hidden");
            assert!(
                !plan
                    .landlock_read
                    .iter()
                    .chain(&plan.landlock_write)
                    .any(|l| p.starts_with(l) && l != Path::new("/home/u")),
                "{secret}"
            );
        }
        // Binds go shallowest first, so a bind inside another one lands on top of it.
        let depths: Vec<usize> = plan.binds.iter().map(|b| b.dst.components().count()).collect();
        assert!(depths.windows(2).all(|w| w[0] <= w[1]), "{depths:?}");
    }

    /// A PATH entry above the home directory (guardsh built in a directory that also holds a
    /// test's HOME) must not bring the home back.
    #[test]
    fn nothing_that_holds_the_home_comes_back() {
        let all = |_: &Path| true;
        let dirs = [PathBuf::from("/tmp/t"), PathBuf::from("/tmp/t/bin")];
        let s = Settings { readable: vec!["/tmp".into()], ..Settings::default() };
        let plan =
            Plan::build(&inputs(Path::new("/tmp/t/home"), Path::new("/tmp/t/work"), &dirs, &all, &s)).expect("plan");
        for b in &plan.binds {
            assert!(!Path::new("/tmp/t/home").starts_with(&b.dst), "{b:?} brings the home back");
        }
        assert!(plan.binds.iter().any(|b| b.dst == Path::new("/tmp/t/bin")));
        assert!(!plan.landlock_read.iter().any(|p| p == Path::new("/tmp/t") || p == Path::new("/tmp")));
    }

    #[test]
    fn a_start_in_the_home_directory_is_refused() {
        let all = |_: &Path| true;
        let s = Settings::default();
        for cwd in ["/home/u", "/home", "/"] {
            let got = Plan::build(&inputs(Path::new("/home/u"), Path::new(cwd), &[], &all, &s));
            assert!(matches!(got, Err(PlanError::CwdHoldsHome(_))), "{cwd}: {got:?}");
        }
    }

    #[test]
    fn relative_settings_are_refused() {
        let all = |_: &Path| true;
        let s = Settings { readable: vec!["data".into()], ..Settings::default() };
        let got = Plan::build(&inputs(Path::new("/home/u"), Path::new("/home/u/p"), &[], &all, &s));
        assert!(matches!(got, Err(PlanError::NotAbsolute(_))), "{got:?}");
    }

    #[test]
    fn the_floor_and_what_simulation_takes_away() {
        let full = Support { landlock_abi: 7, user_namespaces: true };
        assert_eq!(floor(full), Floor::Run { gaps: vec![] });
        assert!(matches!(floor(simulate(full, Some("no-userns"))), Floor::Refuse(_)));
        assert!(matches!(floor(simulate(full, Some("landlock-abi=0"))), Floor::Refuse(_)));
        let Floor::Run { gaps } = floor(simulate(full, Some("landlock-abi=4"))) else { panic!("runs") };
        assert!(gaps.iter().any(|g| g.contains("abstract Unix sockets")), "{gaps:?}");
        // A knob can never add what the kernel lacks.
        let weak = Support { landlock_abi: 3, user_namespaces: false };
        assert_eq!(simulate(weak, Some("landlock-abi=9")), weak);
    }
}
