//! The integration test world: a temporary HOME with XDG directories, a shim directory of real
//! symlinks to the built guardsh, and fake tools that record their argv, environment and signal
//! dispositions. Nothing here reads or writes the developer's own configuration.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The guardsh under test: the build `cargo test` made, or the binary `GUARDSH_TEST_BINARY`
/// names (CI runs the suite a second time with the static binary install.sh builds).
pub fn guardsh() -> &'static str {
    static BINARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| {
        std::env::var("GUARDSH_TEST_BINARY")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_guardsh").into())
    })
}

const SYSTEM_UTILITIES: &[&str] = &[
    "sh",
    "env",
    "grep",
    "yes",
    "head",
    "touch",
    "cat",
    "sed",
    "mv",
    "sleep",
    "setsid",
    "ssh-keygen",
    "script",
    "readlink",
];

pub struct Test {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    pub shims: PathBuf,
    pub real: PathBuf,
    pub records: PathBuf,
    pub cwd: PathBuf,
    /// The few system utilities fake tools and scripts need, and nothing else, so that a real
    /// kubectl or aws installed on the machine can never stand in for a fake one.
    pub sysbin: PathBuf,
    env: Vec<(OsString, OsString)>,
}

/// Gives up this test process's controlling terminal, once. Approvals are driven from new
/// pseudo-terminals whose parent is this process; guardsh refuses an approving terminal whose
/// ancestors run on another terminal (that is what a pseudo-terminal an agent made for itself
/// looks like), and a terminal emulator has none. Without this, the tests would pass in CI and
/// fail when run from a developer's terminal.
#[allow(unsafe_code)]
fn detach_from_terminal() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::os::fd::AsRawFd;
        if let Ok(tty) = std::fs::File::open("/dev/tty") {
            // SAFETY: TIOCNOTTY takes no argument and only detaches this process from the
            // terminal the descriptor refers to; the descriptor is valid for the call.
            let _ = unsafe { nix::libc::ioctl(tty.as_raw_fd(), nix::libc::TIOCNOTTY) };
        }
    });
}

impl Test {
    pub fn new() -> Self {
        detach_from_terminal();
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path().canonicalize().expect("canonical tempdir");
        let t = Test {
            home: r.join("home"),
            shims: r.join("home/.local/share/guardsh/shims"),
            real: r.join("real-bin"),
            records: r.join("records"),
            cwd: r.join("work"),
            sysbin: r.join("sysbin"),
            env: vec![],
            root,
        };
        for d in [&t.home, &t.shims, &t.real, &t.records, &t.cwd, &t.config_dir(), &t.sysbin] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        // The documented fix for login shells that set PATH afresh (Debian's /etc/profile does):
        // without it `guardsh run` refuses, since `bash -lc` would not reach the shims.
        let fix = format!("[ -n \"$GUARDSH_SESSION\" ] && PATH='{}':\"$PATH\"\n", t.shims.display());
        std::fs::write(t.home.join(".profile"), fix).expect("write ~/.profile");
        for tool in SYSTEM_UTILITIES {
            let found = ["/usr/bin", "/bin"].iter().map(|d| Path::new(d).join(tool)).find(|p| p.exists());
            let found = found.unwrap_or_else(|| panic!("the tests need {tool} in /usr/bin or /bin"));
            symlink(found, t.sysbin.join(tool)).expect("symlink utility");
        }
        t
    }

    /// Stands in for /etc/guardsh (see `command`); empty unless a test writes into it.
    pub fn system_dir(&self) -> PathBuf {
        self.root.path().join("etc-guardsh")
    }

    pub fn config_dir(&self) -> PathBuf {
        self.home.join(".config/guardsh")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.home.join(".local/state/guardsh")
    }

    pub fn audit_log(&self) -> PathBuf {
        self.state_dir().join("audit.jsonl")
    }

    /// Writes the user policy, and only it: the built-in pack is switched off (`packs = []`), so
    /// that a test's own rules alone decide. `example_rules` and `rules_with_pack` keep the pack.
    /// Waits until the file clock has moved past the policy's last change: only then may a call
    /// keep its compiled policy in the cache (see src/policy_cache.rs).
    pub fn settle(self) -> Self {
        std::thread::sleep(std::time::Duration::from_millis(50));
        self
    }

    pub fn rules(self, text: &str) -> Self {
        let text = if text.contains("\npacks = ") || text.starts_with("packs = ") {
            text.to_string()
        } else if text.contains("[settings]\n") {
            text.replacen("[settings]\n", "[settings]\npacks = []\n", 1)
        } else {
            // At the end, so that the lines a test's diagnostics name stay where they were.
            format!("{text}\n[settings]\npacks = []\n")
        };
        self.rules_with_pack(&text)
    }

    /// Writes the user policy exactly as given; the built-in pack applies unless it says not.
    pub fn rules_with_pack(self, text: &str) -> Self {
        std::fs::write(self.config_dir().join("rules.toml"), text).expect("write rules");
        self
    }

    /// Uses the shipped rules.toml.example (with the built-in pack) as the user policy, except
    /// that commands needing approval exit 75 at once rather than wait for a human.
    pub fn example_rules(self) -> Self {
        let text = include_str!("../../rules.toml.example");
        let no_wait = text.replacen("[settings]\n", "[settings]\nwait = false\n", 1);
        assert_ne!(text, no_wait, "rules.toml.example has a [settings] table");
        self.rules_with_pack(&no_wait)
    }

    /// Writes a project `.guardsh.toml` in the working directory, and trusts it as the human
    /// would (`guardsh trust`).
    pub fn project_rules(self, text: &str) -> Self {
        std::fs::write(self.cwd.join(".guardsh.toml"), text).expect("write project rules");
        self.guardsh(&["trust"]).output().status(0);
        self
    }

    /// Writes a project `.guardsh.toml` and asks `guardsh trust` to trust it: what it says (an
    /// invalid file is refused, with its errors).
    pub fn trust_project_rules(&self, text: &str) -> Done {
        std::fs::write(self.cwd.join(".guardsh.toml"), text).expect("write project rules");
        self.guardsh(&["trust"]).output()
    }

    /// Fake real tools plus shims for them.
    pub fn tools(self, names: &[&str]) -> Self {
        for name in names {
            self.fake_tool(name);
            self.shim(name);
        }
        self
    }

    /// A fake real tool: records argv (NUL-separated, argv[0] first), env, and which signals it
    /// started with ignored, then exits with $FAKE_EXIT.
    pub fn fake_tool(&self, name: &str) {
        let rec = self.records.join(name);
        let script = format!(
            "#!/bin/sh\nprintf '%s\\0' \"$0\" \"$@\" > '{rec}.args'\nenv -0 > '{rec}.env'\ngrep '^SigIgn' /proc/$$/status > '{rec}.sig'\necho \"fake {name} ran\"\nexit \"${{FAKE_EXIT:-0}}\"\n",
            rec = rec.display()
        );
        write_executable(&self.real.join(name), &script);
    }

    pub fn shim(&self, name: &str) {
        symlink(guardsh(), self.shims.join(name)).expect("symlink shim");
    }

    /// Adds a variable to every command this test runs.
    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.env.push((k.into(), v.as_ref().to_os_string()));
        self
    }

    pub fn path(&self) -> OsString {
        std::env::join_paths([&self.shims, &self.real, &self.sysbin]).expect("PATH")
    }

    /// A command with a clean environment pointing at the temporary HOME.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Run {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("XDG_STATE_HOME", self.home.join(".local/state"))
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("PATH", self.path())
            // The system policy layer is the test's own (empty) directory, never the machine's
            // /etc/guardsh: the binary under test is built with the `test-system-dir` feature.
            .env("GUARDSH_TEST_SYSTEM_DIR", self.system_dir())
            .current_dir(&self.cwd)
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        Run { cmd: c }
    }

    /// Runs a tool by name through PATH, as an agent's shell would.
    pub fn run(&self, tool: &str, args: &[&str]) -> Run {
        let mut r = self.command(self.shims.join(tool));
        r.cmd.arg0(tool).args(args);
        r
    }

    /// Runs `guardsh` itself.
    pub fn guardsh(&self, args: &[&str]) -> Run {
        let mut r = self.command(guardsh());
        r.cmd.args(args);
        r
    }

    /// The arguments the fake tool last received (without argv[0], which a `#!` script cannot
    /// see), or None if it never ran.
    pub fn saw_args(&self, tool: &str) -> Option<Vec<OsString>> {
        let bytes = std::fs::read(self.records.join(format!("{tool}.args"))).ok()?;
        let mut words: Vec<OsString> = bytes.split(|&b| b == 0).map(|w| OsStr::from_bytes(w).to_os_string()).collect();
        words.pop(); // the empty piece after the final NUL
        words.remove(0); // $0, the script's path
        Some(words)
    }

    /// The environment the fake tool last received, by name.
    pub fn saw_env(&self, tool: &str) -> Option<Vec<(String, String)>> {
        let bytes = std::fs::read(self.records.join(format!("{tool}.env"))).ok()?;
        Some(
            bytes
                .split(|&b| b == 0)
                .filter(|e| !e.is_empty())
                .map(|e| {
                    let s = String::from_utf8_lossy(e);
                    let (k, v) = s.split_once('=').unwrap_or((&s, ""));
                    (k.to_string(), v.to_string())
                })
                .collect(),
        )
    }

    pub fn saw_var(&self, tool: &str, name: &str) -> Option<String> {
        self.saw_env(tool)?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn ran(&self, tool: &str) -> bool {
        self.records.join(format!("{tool}.args")).exists()
    }

    pub fn forget(&self, tool: &str) {
        let _ = std::fs::remove_file(self.records.join(format!("{tool}.args")));
    }

    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.audit_log())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }
}

/// Writes an executable file from a child process. Writing it from this (multi-threaded) test
/// process would race with other tests' fork+exec: a child forked while we hold the file open for
/// writing keeps that descriptor until it execs, and exec of the file then fails with ETXTBSY.
pub fn write_executable(path: &Path, text: &str) {
    use std::io::Write;
    let mut child = Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write script");
    assert!(child.wait().expect("wait").success(), "writing {}", path.display());
}

/// Copies an executable from a child process (see `write_executable` for why).
pub fn copy_executable(from: &Path, to: &Path) {
    assert!(Command::new("/bin/cp").arg(from).arg(to).status().expect("spawn cp").success());
}

use std::os::unix::process::CommandExt;

pub struct Run {
    pub cmd: Command,
}

impl Run {
    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn env_remove(mut self, k: &str) -> Self {
        self.cmd.env_remove(k);
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn arg_os(mut self, a: impl AsRef<OsStr>) -> Self {
        self.cmd.arg(a);
        self
    }

    pub fn output(mut self) -> Done {
        let out = self.cmd.output().expect("spawn");
        Done { out }
    }
}

pub struct Done {
    pub out: Output,
}

impl Done {
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    /// Asserts the exit code, printing both streams on mismatch.
    #[track_caller]
    pub fn status(self, want: i32) -> Self {
        assert_eq!(self.code(), Some(want), "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout(), self.stderr());
        self
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(self.stderr().contains(needle), "stderr lacks {needle:?}:\n{}", self.stderr());
        self
    }

    #[track_caller]
    pub fn stderr_lacks(self, needle: &str) -> Self {
        assert!(!self.stderr().contains(needle), "stderr has {needle:?}:\n{}", self.stderr());
        self
    }

    #[track_caller]
    pub fn stdout_lacks(self, needle: &str) -> Self {
        assert!(!self.stdout().contains(needle), "stdout has {needle:?}: {}", self.stdout());
        self
    }

    pub fn stdout_has(self, needle: &str) -> Self {
        assert!(self.stdout().contains(needle), "stdout lacks {needle:?}:\n{}", self.stdout());
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout()))
    }
}

/// A guarded command started in its own session, detached from the test process, as an agent
/// running in another terminal would be.
pub struct Detached {
    pub status: PathBuf,
    pub stderr: PathBuf,
}

impl Detached {
    /// The exit status, once the command has finished (None on timeout).
    pub fn wait(&self, timeout: std::time::Duration) -> Option<i32> {
        let start = std::time::Instant::now();
        while start.elapsed() < timeout {
            if let Ok(text) = std::fs::read_to_string(&self.status) {
                return text.trim().parse().ok();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

static DETACHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Test {
    /// Runs `tool args` through its shim under `setsid -f`: a new session with no terminal, and
    /// not a child of this test process.
    pub fn run_detached(&self, tool: &str, args: &[&str]) -> Detached {
        let n = DETACHED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let base = self.records.join(format!("detached-{n}"));
        let d = Detached { status: base.with_extension("status"), stderr: base.with_extension("stderr") };
        let script = r#"status="$1"; err="$2"; shift 2; "$@" 2>"$err" >/dev/null; echo $? > "$status.tmp"; mv "$status.tmp" "$status""#;
        let mut r = self.command("/usr/bin/setsid");
        r.cmd.arg("-f").arg("/bin/sh").arg("-c").arg(script).arg("sh").arg(&d.status).arg(&d.stderr);
        // By name, through PATH, as a shell runs it (argv[0] is part of what is approved).
        r.cmd.arg(tool).args(args);
        // No pipes: the detached command would inherit them, and waiting for their end would
        // wait for the command.
        r.cmd.stdout(Stdio::null()).stderr(Stdio::null());
        assert!(r.cmd.status().expect("setsid").success());
        d
    }

    /// Waits until `n` requests are pending and returns their ids, oldest first.
    pub fn wait_for_pending(&self, n: usize) -> Vec<String> {
        self.pending_ids(n, false, std::time::Duration::from_secs(20))
    }

    /// `guardsh pending --json` (as the agent's user when `as_agent` and the tests run as root)
    /// until `n` requests are there.
    fn pending_ids(&self, n: usize, as_agent: bool, limit: std::time::Duration) -> Vec<String> {
        let start = std::time::Instant::now();
        loop {
            let mut r = self.guardsh(&["pending", "--json"]);
            if as_agent && as_root() {
                r.cmd.uid(AGENT_UID).gid(AGENT_UID);
            }
            let j = r.output().status(0).json();
            let ids: Vec<String> =
                j.as_array().expect("array").iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect();
            if ids.len() >= n {
                return ids;
            }
            assert!(start.elapsed() < limit, "only {} of {n} requests appeared", ids.len());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// `guardsh ARGS` in a new pseudo-terminal and session, as a human's second terminal.
    pub fn in_terminal(&self, program: impl AsRef<OsStr>, args: &[&str]) -> expectrl::session::OsSession {
        let mut r = self.command(program);
        // The pseudo-terminal is the program's stdin (`command` would give it /dev/null).
        r.cmd.args(args).stdin(Stdio::inherit());
        let mut s = expectrl::Session::spawn(r.cmd).expect("spawn in a pty");
        s.set_expect_timeout(Some(std::time::Duration::from_secs(20)));
        s
    }

    /// Approves request `id` the way a human would: reads the code off the screen and types it.
    pub fn approve(&self, id: &str) {
        use expectrl::Expect;
        let mut s = self.in_terminal(guardsh(), &["approve", id]);
        let found = s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")).expect("the prompt");
        let code = String::from_utf8_lossy(found.get(1).expect("code")).into_owned();
        s.send_line(code).expect("type");
        s.expect(format!("approved request {id}")).expect("approved");
    }

    /// Records in the audit log with this outcome.
    pub fn audited(&self, outcome: &str) -> usize {
        self.audit_records().iter().filter(|r| r["outcome"] == outcome).count()
    }
}

/// The unprivileged user the agent (and, in the sandbox tests, its human) runs as under root.
pub const AGENT_UID: u32 = 65534;

/// Whether these tests run as root (CI does), and so run the agent as `AGENT_UID`.
pub fn as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

impl Test {
    /// Under root: the agent's user owns its home, working directory and the fake tools'
    /// records; the temporary root and the real tools stay root's, as a system's would.
    pub fn hand_to_agent(&self) {
        if !as_root() {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.root.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        for dir in [&self.home, &self.cwd, &self.records] {
            chown_tree(dir, AGENT_UID);
        }
    }

    /// `guardsh pending --json` as the agent's user, until `n` requests are there: run as
    /// root, it would create the state directory the agent's side must write.
    pub fn pending_as_agent(&self, n: usize) -> Vec<String> {
        self.pending_ids(n, true, std::time::Duration::from_secs(60))
    }

    /// The human approves request `id` as the agent's user, from a terminal of their own.
    pub fn approve_as_agent(&self, id: &str) {
        use expectrl::Expect;
        let (program, mut args): (&str, Vec<&str>) = if as_root() {
            ("/usr/bin/setpriv", vec!["--reuid=65534", "--regid=65534", "--clear-groups", guardsh()])
        } else {
            (guardsh(), vec![])
        };
        args.extend(["approve", id]);
        let mut s = self.in_terminal(program, &args);
        let found = match s.expect(expectrl::Regex("Type ([a-z2-9]{4}) to approve")) {
            Ok(found) => found,
            Err(e) => {
                let mut rest = String::new();
                let _ = std::io::Read::read_to_string(&mut s, &mut rest);
                panic!("no approval prompt ({e}): {rest}");
            }
        };
        let code = String::from_utf8_lossy(found.get(1).expect("code")).into_owned();
        s.send_line(code).expect("type");
        s.expect(format!("approved request {id}")).expect("approved");
    }
}

/// Gives `dir` and everything in it to `id`.
pub fn chown_tree(dir: &Path, id: u32) {
    nix::unistd::chown(dir, Some(id.into()), Some(id.into())).expect("chown");
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            chown_tree(&p, id);
        } else {
            let _ = nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                &p,
                Some(id.into()),
                Some(id.into()),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            );
        }
    }
}
