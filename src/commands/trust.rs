//! `guardsh trust`: the human trusts the project's `.guardsh.toml` as it is now. Until then, and
//! after any change to it, guardsh ignores it (see `config::is_trusted`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

use anyhow::Context;

use super::here;
use crate::paths;

pub fn run(revoke: bool) -> anyhow::Result<ExitCode> {
    let (paths, cwd) = here()?;
    let Some(project) = paths::find_project_policy(&cwd) else {
        anyhow::bail!("no {} in {} or above it; nothing to trust", paths::PROJECT_FILE, cwd.display());
    };
    let project = project.canonicalize().with_context(|| format!("cannot resolve {}", project.display()))?;
    let text = std::fs::read_to_string(&project).with_context(|| format!("cannot read {}", project.display()))?;
    // Only a file that compiles with the layers it joins is trusted: an invalid trusted file would
    // refuse every guarded command here, and stop the next session from starting.
    if !revoke {
        let locations = crate::config::Locations::new(&paths, &cwd);
        let mut sources = crate::config::read_sources(&locations).map_err(|e| anyhow::anyhow!("{e}"))?;
        // This file as it is now, in place of whatever project layer is in force.
        sources.retain(|s| s.layer != crate::rules::LayerKind::Project);
        sources.push(crate::rules::Source {
            layer: crate::rules::LayerKind::Project,
            path: project.display().to_string(),
            text: text.clone(),
        });
        if let Err(e) = crate::rules::compile(&sources) {
            anyhow::bail!(
                "{e}\n{} is not trusted: fix the errors above, then run guardsh trust again",
                project.display()
            );
        }
    }
    let line = crate::config::trust_line(&project, &text);
    let file = paths.trust_file();
    let old = std::fs::read_to_string(&file).unwrap_or_default();
    // Lines for this path go: a file is trusted only as it is now.
    let suffix = format!("\t{}", project.display());
    let mut kept: Vec<&str> = old.lines().filter(|l| !l.ends_with(&suffix)).collect();
    if !revoke {
        kept.push(&line);
    }
    std::fs::create_dir_all(&paths.config_dir)
        .with_context(|| format!("cannot create {}", paths.config_dir.display()))?;
    // Written whole under a temporary name and renamed into place: a reader sees the old list
    // or the new one (the race: a shim reading it while it changes).
    let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    for l in &kept {
        writeln!(out, "{l}").with_context(|| format!("cannot write {}", tmp.display()))?;
    }
    drop(out);
    std::fs::rename(&tmp, &file).with_context(|| format!("cannot write {}", file.display()))?;
    if revoke {
        println!("{} is no longer trusted; guardsh ignores it", project.display());
    } else {
        println!("{}", crate::display::escape_lines(&text));
        println!(
            "trusted {} as shown above; guardsh uses it until it changes (then run `guardsh trust` again after reading it)",
            project.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
