//! Human approval of `ask` decisions: requests, the store they live in, waiting for a decision,
//! and who may decide.

pub mod checks;
pub mod human;
pub mod procinfo;
pub mod request;
pub mod store;
pub mod wait;

pub use request::{Command, Context, Request};
pub use store::{DecidedBy, Decision, Outcome, Store};
pub use wait::{Waited, wait};

/// SHA-256 of a file's contents, hex. The real binary's hash is part of what a human approves.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(request::hex(&hasher.finalize()))
}
