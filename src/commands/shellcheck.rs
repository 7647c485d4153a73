//! Would the agent's shells reach the shims? Runs the shells an agent runs commands in, with the
//! environment it gets (`bash -lc`, `sh -c`, the user's login shell from passwd), asks each where
//! every guarded tool is, and names the exact fix for each shell that would find the real tool.
//!
//! Without a sandbox, PATH is all that puts the shims in front of a tool, and a login shell sets
//! PATH afresh: Codex runs every command as `bash -lc`, and Debian's `/etc/profile` replaces PATH,
//! so the shims vanish without a word. The check runs the real shells with the agent's own
//! environment (HOME included, so their start-up files are the agent's), so nothing in it can
//! make a shell look better than it is; a shell that cannot be checked counts as one that fails.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::exec::FileId;

/// Printed before each answer, so that whatever a profile prints is ignored.
const MARK: &str = "guardsh-shellcheck";
/// For sh, bash, dash, zsh, ksh: one `MARK\tTOOL\tWHAT` line per tool, tools as arguments.
const POSIX_SCRIPT: &str =
    "for t; do printf 'guardsh-shellcheck\\t%s\\t%s\\n' \"$t\" \"$(command -v -- \"$t\")\"; done";
const FISH_SCRIPT: &str =
    "for t in $argv; printf 'guardsh-shellcheck\\t%s\\t%s\\n' $t (command -v -- $t | string collect); end";
/// A login shell that waits on something (a prompt in a profile) is not waited for forever.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One shell the agent may run commands in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    /// How the agent runs it, for messages: `bash -lc`.
    pub label: String,
    pub program: PathBuf,
    pub login: bool,
    pub fish: bool,
}

/// A shell that would not reach the shims, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub shell: String,
    /// `kubectl is /usr/bin/kubectl`, or why the shell could not be checked.
    pub what: Vec<String>,
    pub fixes: Vec<String>,
}

/// The shells to check: `bash -lc` (Codex), `sh -c`, and the user's login shell from passwd when
/// it is another one. Shells that are not installed are skipped; `nologin` runs nothing.
pub fn shells(login_shell: Option<&Path>) -> Vec<Shell> {
    let mut out = Vec::new();
    let bash = ["/bin/bash", "/usr/bin/bash"].iter().map(PathBuf::from).find(|p| p.exists());
    if let Some(bash) = &bash {
        out.push(Shell { label: "bash -lc".into(), program: bash.clone(), login: true, fish: false });
    }
    out.push(Shell { label: "sh -c".into(), program: "/bin/sh".into(), login: false, fish: false });
    if let Some(shell) = login_shell {
        let name = shell.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let same_as_bash = bash.as_ref().is_some_and(|b| same_file(b, shell));
        let posix = ["bash", "sh", "dash", "zsh", "ksh", "mksh", "ash"].contains(&name);
        if (posix || name == "fish") && !same_as_bash && shell.exists() {
            out.push(Shell {
                label: format!("{} -lc (your login shell)", shell.display()),
                program: shell.to_path_buf(),
                login: true,
                fish: name == "fish",
            });
        }
    }
    out
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((FileId::of(a), FileId::of(b)), (Ok(x), Ok(y)) if x == y)
}

/// The login shell passwd names for this user.
pub fn login_shell() -> Option<PathBuf> {
    nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.shell)
}

/// The `(tool, what command -v printed)` answers in a shell's output.
pub fn parse(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, '\t');
            (parts.next()? == MARK).then_some(())?;
            Some((parts.next()?.to_string(), parts.next().unwrap_or("").to_string()))
        })
        .collect()
}

/// What each tool's answer means: `None` when the shell reaches the shim or finds no such tool
/// at all, else what it would run instead.
pub fn judge(tools: &[String], answers: &[(String, String)], is_shim: impl Fn(&Path) -> bool) -> Vec<String> {
    let mut wrong = Vec::new();
    for tool in tools {
        match answers.iter().find(|(t, _)| t == tool).map(|(_, w)| w.as_str()) {
            None => wrong.push(format!("{tool}: the shell gave no answer")),
            Some("") => {}
            Some(w) if w.starts_with('/') && is_shim(Path::new(w)) => {}
            Some(w) if w.starts_with('/') => wrong.push(format!("{tool} is {w}")),
            // A function or alias of that name runs instead of anything on PATH.
            Some(w) => wrong.push(format!("{tool} is a function or alias ({})", crate::display::escape_text(w))),
        }
    }
    wrong
}

/// Runs `shell` with exactly `env` in `cwd` and returns its output, or why it could not.
fn ask(shell: &Shell, tools: &[String], env: &[(OsString, OsString)], cwd: &Path) -> Result<String, String> {
    let mut cmd = Command::new(&shell.program);
    if shell.login {
        cmd.arg("-l");
    }
    cmd.arg("-c").arg(if shell.fish { FISH_SCRIPT } else { POSIX_SCRIPT });
    if !shell.fish {
        cmd.arg(&shell.program);
    }
    let mut child = cmd
        .args(tools)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", shell.program.display()))?;
    let mut stdout = child.stdout.take().ok_or("no output")?;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() > TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("it did not finish within {}s", TIMEOUT.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    }
    let out = reader.join().map_err(|_| "cannot read its output".to_string())?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The start-up file a login shell of this kind reads, where the fix goes.
fn profile_for(shell: &Shell, home: &Path) -> String {
    let name = shell.program.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let candidates: &[&str] = match name {
        "bash" => &[".bash_profile", ".bash_login", ".profile"],
        "zsh" => &[".zprofile"],
        "fish" => &[".config/fish/config.fish"],
        _ => &[".profile"],
    };
    // With none of them, the last is the one to create: a new ~/.bash_profile would hide an
    // existing ~/.profile from bash.
    let found = candidates.iter().find(|c| home.join(c).exists()).or(candidates.last()).unwrap_or(&".profile");
    format!("~/{found}")
}

fn fixes(shell: &Shell, shim_dir: &Path, home: &Path) -> Vec<String> {
    let dir = crate::display::shell_quote(shim_dir.as_os_str());
    let line = if shell.fish {
        format!("set -q GUARDSH_SESSION; and set -gx PATH {dir} $PATH")
    } else {
        format!("[ -n \"$GUARDSH_SESSION\" ] && PATH={dir}:\"$PATH\"")
    };
    let mut out = Vec::new();
    if shell.label.starts_with("bash -lc") {
        out.push(
            "Codex: set `allow_login_shell = false` in ~/.codex/config.toml, so it runs commands without a login shell"
                .into(),
        );
    }
    if shell.login {
        out.push(format!(
            "add this line at the end of {} (it only applies inside guardsh run): {line}",
            profile_for(shell, home)
        ));
    } else {
        out.push("remove what resets PATH for non-interactive shells (ENV, BASH_ENV)".into());
    }
    out
}

/// Checks every shell. `env` is the agent's whole environment, PATH and `GUARDSH_SESSION`
/// included; `home` is its HOME (for naming the file to fix).
pub fn check(
    shells: &[Shell],
    tools: &[String],
    env: &[(OsString, OsString)],
    cwd: &Path,
    shim_dir: &Path,
    guardsh: FileId,
) -> Vec<Failure> {
    let home = crate::env::get(env, "HOME").map(PathBuf::from).unwrap_or_default();
    let is_shim = |p: &Path| FileId::of(p).is_ok_and(|id| id == guardsh);
    let mut out = Vec::new();
    for shell in shells {
        let what = match ask(shell, tools, env, cwd) {
            Ok(output) => judge(tools, &parse(&output), is_shim),
            Err(why) => vec![format!("it could not be checked: {why}")],
        };
        if !what.is_empty() {
            out.push(Failure { shell: shell.label.clone(), what, fixes: fixes(shell, shim_dir, &home) });
        }
    }
    out
}

/// For `guardsh run`: checks the shells with the environment the agent is about to get and
/// refuses to start it when one would miss the shims, or with `warn` says so and goes on.
pub fn require(
    shim_dir: &Path,
    tools: &[String],
    agent_env: &[(OsString, OsString)],
    cwd: &Path,
    warn: bool,
) -> anyhow::Result<()> {
    let guardsh = FileId::current_exe()?;
    let failures = check(&shells(login_shell().as_deref()), tools, agent_env, cwd, shim_dir, guardsh);
    if failures.is_empty() {
        return Ok(());
    }
    if warn {
        // One line per shell; `guardsh doctor` names the fix.
        for f in &failures {
            eprintln!(
                "guardsh run: warning: {} would not reach the shims (the agent runs the real tools there): {} (--warn-unguarded-shells; guardsh doctor shows the fix)",
                f.shell,
                f.what.join("; ")
            );
        }
        return Ok(());
    }
    let text = describe(&failures);
    anyhow::bail!(
        "an agent's shell would not reach the shims, so commands it runs there would reach the real tools unguarded:\n{}\nthe agent was not started; fix that, or start it anyway with --warn-unguarded-shells",
        text.trim_end()
    )
}

/// The failures as one message, for `guardsh run` and `guardsh doctor`.
pub fn describe(failures: &[Failure]) -> String {
    let mut s = String::new();
    for f in failures {
        s.push_str(&format!("  {}: {}\n", f.shell, f.what.join("; ")));
        for fix in &f.fixes {
            s.push_str(&format!("    fix: {fix}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_past_whatever_a_profile_prints() {
        let out = "Welcome!\nguardsh-shellcheck\tkubectl\t/shims/kubectl\nguardsh-shellcheck\tgit\t/usr/bin/git\nguardsh-shellcheck\taws\t\n";
        let answers = parse(out);
        assert_eq!(answers.len(), 3);
        let tools: Vec<String> = ["kubectl", "git", "aws", "psql"].map(String::from).to_vec();
        let wrong = judge(&tools, &answers, |p| p.starts_with("/shims"));
        assert_eq!(wrong, ["git is /usr/bin/git", "psql: the shell gave no answer"]);
        let function = parse("guardsh-shellcheck\tgit\tgit\n");
        assert_eq!(judge(&tools[1..2], &function, |_| true), ["git is a function or alias (git)"]);
    }

    #[test]
    fn nologin_is_not_a_shell_to_check() {
        let labels: Vec<String> = shells(Some(Path::new("/usr/sbin/nologin"))).into_iter().map(|s| s.label).collect();
        assert!(labels.iter().all(|l| !l.contains("nologin")), "{labels:?}");
        assert!(labels.contains(&"sh -c".to_string()));
    }
}
