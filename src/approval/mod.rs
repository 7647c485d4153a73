//! Human approval of `ask` decisions: requests, the store they live in, waiting for a decision,
//! and who may decide.

pub mod checks;
pub mod human;
pub mod lifecycle;
pub mod procinfo;
pub mod request;
pub mod sign;
pub mod signature;
pub mod store;
pub mod target;
pub mod token;
pub mod wait;

pub use request::{Command, Context, Request};
pub use store::{DecidedBy, Decision, Outcome, Store};
pub use token::{Token, TokenError};
pub use wait::{Waited, wait};

/// SHA-256 of a file's contents, hex. The real binary's hash is part of what a human approves.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(request::hex(&hasher.finalize()))
}

/// Where the allowed signers come from: the policy's `allowed_signers`, else the system
/// directory when a system policy is in force (a user-level file is writable by an agent running
/// as the user), else the user's configuration directory.
pub fn signers_path(
    paths: &crate::paths::Paths,
    configured: Option<&std::path::Path>,
    system_policy: bool,
) -> std::path::PathBuf {
    match configured {
        Some(p) => p.to_path_buf(),
        None if system_policy => paths.system_dir.join("allowed_signers"),
        None => paths.config_dir.join("allowed_signers"),
    }
}

/// Why a decision is not a signed approval of its request.
#[derive(Debug)]
pub enum NotSigned {
    /// The allowed signers cannot be read: signature approvals are not set up (the detail).
    Setup(String),
    /// No signature, or one that does not verify (what to tell the user).
    Invalid(String),
}

/// Under `approval = "signature"` a decision file proves nothing by itself (anything running as
/// the user can write one): only a signature on the request by a key in `signers_file` does.
/// The shim checks this before running, and `guardsh run` again before releasing credentials.
pub fn check_signed(
    signers_file: &std::path::Path,
    req: &Request,
    decision: &Decision,
    now: u64,
) -> Result<(), NotSigned> {
    let signers = load_signers(signers_file).map_err(NotSigned::Setup)?;
    let Some(sig) = decision.signature.as_deref() else {
        return Err(NotSigned::Invalid(format!(
            "the approval of request {} is not signed, and this policy requires a signature by an allowed signer",
            req.id
        )));
    };
    signature::verify(sig, &req.digest, &signers, now)
        .map(|_| ())
        .map_err(|e| NotSigned::Invalid(format!("the approval of request {} is not valid: {e}", req.id)))
}

/// Reads the allowed signers. A file in the system directory must be root-owned and not writable
/// by others, like the system policy itself.
pub fn load_signers(path: &std::path::Path) -> Result<Vec<signature::Signer>, String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        format!("cannot read the allowed signers file {shown}: {e}; list the approvers' public keys there (one `principal key-type key` per line)")
    })?;
    if path.starts_with(crate::paths::SYSTEM_DIR) && (meta.uid() != 0 || meta.mode() & 0o022 != 0) {
        return Err(format!("{shown} must be owned by root and not writable by group or others"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    signature::parse_signers(&shown, &text).map_err(|e| e.to_string())
}
