//! Reads the policy layers from disk (system, user, project) and hands their text to
//! `rules::compile`. The only policy code that touches the filesystem.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::paths::{self, Paths};
use crate::rules::{ConfigError, Diagnostic, LayerKind, Policy, Source};

/// Where each layer's file is, whether or not it exists.
#[derive(Debug, Clone)]
pub struct Locations {
    pub system: PathBuf,
    pub user: PathBuf,
    pub project: Option<PathBuf>,
    /// The human's list of trusted project files (`guardsh trust`).
    pub trust: PathBuf,
}

impl Locations {
    pub fn new(paths: &Paths, cwd: &Path) -> Self {
        Self {
            system: paths.system_policy(),
            user: paths.user_policy(),
            project: paths::find_project_policy(cwd),
            trust: paths.trust_file(),
        }
    }
}

/// A project file is used only when the human trusted exactly this content at exactly this
/// path (`guardsh trust`, as `direnv allow` and `mise trust` do): whoever controls the
/// repository, an agent included, writes it. Untrusted, changed or invalid, it is ignored (and
/// never stops the human's next session from starting).
pub fn is_trusted(trust_file: &Path, project: &Path, text: &str) -> bool {
    let Ok(list) = std::fs::read_to_string(trust_file) else { return false };
    let line = trust_line(project, text);
    list.lines().any(|l| l == line)
}

/// The trust file's line for `project` with content `text`: its SHA-256, a tab, its path.
pub fn trust_line(project: &Path, text: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = crate::approval::request::hex(&Sha256::digest(text.as_bytes()));
    format!("{hash}\t{}", project.display())
}

fn problem(path: &Path, message: String) -> ConfigError {
    ConfigError { diagnostics: vec![Diagnostic { path: path.display().to_string(), line: 0, col: 0, message }] }
}

/// Reads one layer. `Ok(None)` when the file does not exist; any other failure is an error,
/// because an unreadable policy must not be mistaken for an absent one.
fn read_layer(layer: LayerKind, path: &Path) -> Result<Option<Source>, ConfigError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(problem(path, format!("cannot read policy: {e}; fix its permissions or remove it"))),
    };
    if layer == LayerKind::System && (meta.uid() != 0 || meta.mode() & 0o022 != 0) {
        return Err(problem(
            path,
            "the system policy must be owned by root and not writable by group or others \
             (sudo chown root:root FILE && sudo chmod 644 FILE)"
                .into(),
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| problem(path, format!("cannot read policy: {e}; fix its permissions or encoding")))?;
    Ok(Some(Source { layer, path: path.display().to_string(), text }))
}

/// What a file's inode says of its version, read without opening it: device, inode, size,
/// mode, owner, and the modification and change times to the nanosecond. Every write to a file
/// sets its change time from the kernel's clock, and no system call can set it back, so two
/// versions of a file can share a stamp only when both were written within one tick of that
/// clock (the compiled-policy cache relies on this; see `policy_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mode: m.mode(),
            uid: m.uid(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// The stamp of every file the compiled policy depends on, in a fixed order: the system, user
/// and project layers (each `None` when absent) and, when there is a project file, the trust
/// list that decides whether it counts. `None` when a file cannot be examined: the caller then
/// reads the layers, which reports the problem properly.
pub fn stamps(locations: &Locations) -> Option<Vec<(&Path, Option<Stamp>)>> {
    let mut files = vec![locations.system.as_path(), locations.user.as_path()];
    if let Some(project) = &locations.project {
        files.extend([project.as_path(), locations.trust.as_path()]);
    }
    files
        .into_iter()
        .map(|path| match std::fs::metadata(path) {
            Ok(m) => Some((path, Some(Stamp::of(&m)))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some((path, None)),
            Err(_) => None,
        })
        .collect()
}

/// Reads and compiles every layer present. No policy at all is an error too: guardsh would
/// otherwise deny every tool without saying why.
pub fn load(locations: &Locations) -> Result<Policy, ConfigError> {
    crate::rules::compile(&read_sources(locations)?)
}

/// Reads every layer present, in layer order.
pub fn read_sources(locations: &Locations) -> Result<Vec<Source>, ConfigError> {
    let mut sources = Vec::new();
    for (layer, path) in [
        (LayerKind::System, Some(&locations.system)),
        (LayerKind::User, Some(&locations.user)),
        (LayerKind::Project, locations.project.as_ref()),
    ] {
        // An untrusted project file is left out before it is even parsed.
        let source = match (layer, path) {
            (LayerKind::Project, Some(path)) => match read_layer(layer, path) {
                Ok(Some(s)) if is_trusted(&locations.trust, &path.canonicalize().unwrap_or(path.clone()), &s.text) => {
                    Some(s)
                }
                _ => None,
            },
            (_, Some(path)) => read_layer(layer, path)?,
            (_, None) => None,
        };
        sources.extend(source);
    }
    if !sources.iter().any(|s| s.layer != LayerKind::Project) {
        return Err(problem(
            &locations.user,
            "no guardsh policy found; run install.sh, or copy rules.toml.example to this path".into(),
        ));
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn system_file(mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rules.toml");
        std::fs::write(&path, "[tools.kubectl]\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        (dir, path)
    }

    #[test]
    fn system_policy_must_be_root_owned_and_not_writable_by_others() {
        let as_root = running_as_root();
        let (_d, path) = system_file(0o644);
        let result = read_layer(LayerKind::System, &path);
        // Our own file is root-owned only when the tests run as root (as CI does).
        assert_eq!(result.is_ok(), as_root, "{result:?}");

        let (_d, path) = system_file(0o666);
        let err = read_layer(LayerKind::System, &path).expect_err("world-writable system policy");
        assert!(err.to_string().contains("must be owned by root and not writable"), "{err}");

        // The same file is fine as a user layer: ownership only matters for the system layer.
        assert!(read_layer(LayerKind::User, &path).expect("readable").is_some());
    }

    fn running_as_root() -> bool {
        // The owner of a file we just created is our uid.
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("probe");
        std::fs::write(&p, "").expect("write");
        std::fs::metadata(&p).expect("stat").uid() == 0
    }

    #[test]
    fn missing_layers_are_absent_and_unreadable_ones_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_layer(LayerKind::User, &dir.path().join("nope.toml")).expect("absent is fine").is_none());
        // A directory in place of the file cannot be read, by root either.
        assert!(read_layer(LayerKind::User, dir.path()).is_err());
    }
}
