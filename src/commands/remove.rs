//! `guardsh uninstall --all`: lists, then removes, everything guardsh put on this machine for this
//! user (shims, binary, policy, signers, request store, cache, completions, man page), keeping the
//! audit log unless `--purge-audit`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::{here, load_policy, shim_dir};
use crate::exec::FileId;
use crate::paths::Paths;
use crate::shims::{self, ShimState};

/// One thing to remove: what it is, and where.
struct Item {
    what: &'static str,
    path: PathBuf,
}

/// Something left in place, and what it is.
type Kept = (&'static str, PathBuf);

/// The audit log's file name in the state directory (kept unless `--purge-audit`).
const AUDIT_FILE: &str = "audit.jsonl";

pub fn run(dir: Option<PathBuf>, purge_audit: bool, yes: bool) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let shims_at = shim_dir(dir, &paths, load_policy(&paths, &cwd).ok().as_ref());
    let exe = std::fs::read_link("/proc/self/exe").context("cannot find this guardsh binary (/proc/self/exe)")?;
    let guardsh = FileId::current_exe().context("cannot identify this guardsh binary")?;
    let (items, kept) = plan(&paths, &shims_at, &exe, guardsh, purge_audit)?;

    if items.is_empty() {
        println!("nothing of guardsh's is left to remove");
    } else {
        println!("guardsh uninstall --all removes:");
        for item in &items {
            println!("  {:<18} {}", item.what, item.path.display());
        }
    }
    for (what, path) in &kept {
        println!("  kept: {what:<12} {}", path.display());
    }
    if items.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if !yes && !confirmed()? {
        println!("nothing was removed (on no terminal, add --yes to remove these)");
        return Ok(ExitCode::FAILURE);
    }

    let mut failed = 0;
    for item in &items {
        let result = if item.path.is_dir() && !item.path.is_symlink() {
            std::fs::remove_dir_all(&item.path)
        } else {
            std::fs::remove_file(&item.path)
        };
        match result {
            Ok(()) => println!("removed {}", item.path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                failed += 1;
                eprintln!(
                    "guardsh: cannot remove {}: {e} (remove it yourself, with sudo if it is root's)",
                    item.path.display()
                );
            }
        }
    }
    // The directories that held them, when nothing else is left in them.
    for d in [shims_at.as_path(), paths.data_dir.as_path(), paths.state_dir.as_path(), paths.config_dir.as_path()] {
        let _ = std::fs::remove_dir(d);
    }
    if failed > 0 {
        return Ok(ExitCode::FAILURE);
    }
    println!("guardsh is uninstalled; the shims are gone, so open a new shell (or `hash -r`) before running the tools");
    Ok(ExitCode::SUCCESS)
}

/// What to remove, and what is kept and why. Only guardsh's own: shims that point at a guardsh,
/// files guardsh's directories hold, completions and a man page where install.sh puts them.
fn plan(
    paths: &Paths,
    shim_dir: &Path,
    exe: &Path,
    guardsh: FileId,
    purge_audit: bool,
) -> anyhow::Result<(Vec<Item>, Vec<Kept>)> {
    let mut items = Vec::new();
    let mut kept = Vec::new();
    for (name, state) in shims::list(shim_dir, guardsh)? {
        match state {
            ShimState::Ours | ShimState::OtherGuardsh(_) => {
                items.push(Item { what: "shim", path: shim_dir.join(name) })
            }
            ShimState::Foreign => kept.push(("not a shim", shim_dir.join(name))),
            ShimState::Missing => {}
        }
    }
    let exists = |p: &Path| p.symlink_metadata().is_ok();
    for (what, path) in [
        ("policy", paths.user_policy()),
        ("allowed signers", paths.config_dir.join("allowed_signers")),
        ("trusted projects", paths.trust_file()),
    ] {
        if exists(&path) {
            items.push(Item { what, path });
        }
    }
    // Whatever else is in the configuration directory is guardsh's too (a policy's backups).
    for path in entries(&paths.config_dir) {
        if !items.iter().any(|i| i.path == path) {
            items.push(Item { what: "configuration", path });
        }
    }
    for path in entries(&paths.state_dir) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let what = match name.as_str() {
            "requests" => "request store",
            "cache" => "policy cache",
            AUDIT_FILE if !purge_audit => {
                kept.push(("audit log", path));
                continue;
            }
            AUDIT_FILE => "audit log",
            _ => "state",
        };
        items.push(Item { what, path });
    }
    // Data directory: the shims were listed one by one; anything else of guardsh's in it.
    for path in entries(&paths.data_dir) {
        if path != shim_dir {
            items.push(Item { what: "data", path });
        }
    }
    // Completions and the man page, where install.sh puts them.
    let data_home = paths.data_dir.parent().map(Path::to_path_buf);
    let config_home = paths.config_dir.parent().map(Path::to_path_buf);
    let prefix = exe.parent().and_then(Path::parent).map(Path::to_path_buf);
    let mut extras = Vec::new();
    if let Some(d) = &data_home {
        extras.push(("bash completion", d.join("bash-completion/completions/guardsh")));
        extras.push(("zsh completion", d.join("zsh/site-functions/_guardsh")));
    }
    if let Some(c) = &config_home {
        extras.push(("fish completion", c.join("fish/completions/guardsh.fish")));
    }
    if let Some(p) = &prefix {
        extras.push(("man page", p.join("share/man/man1/guardsh.1")));
    }
    for (what, path) in extras {
        if exists(&path) {
            items.push(Item { what, path });
        }
    }
    // The binary last: it is this process, and Linux lets it go on running once unlinked.
    if exe.file_name().is_some_and(|n| n == "guardsh") {
        items.push(Item { what: "binary", path: exe.to_path_buf() });
    } else {
        kept.push(("binary", exe.to_path_buf()));
    }
    if exists(&paths.system_dir) {
        kept.push(("system policy", paths.system_dir.clone()));
    }
    Ok((items, kept))
}

/// The entries of `dir`, sorted; none when it does not exist.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    out.sort();
    out
}

/// Asks on the terminal; no terminal is no.
fn confirmed() -> anyhow::Result<bool> {
    let Ok(tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else {
        return Ok(false);
    };
    let mut out = &tty;
    write!(out, "remove all of these? [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::BufReader::new(&tty).read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
