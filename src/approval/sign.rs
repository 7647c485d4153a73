//! Making an approval signature with the human's own key, by `ssh-keygen -Y sign`: the key (in a
//! file, in ssh-agent, or on a FIDO authenticator that asks for a touch) never enters guardsh.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::signature::{NAMESPACE, message};

/// The key to sign with: `--key`, else the first of the usual OpenSSH key files that exists.
/// A `.pub` file is enough when the private key is in ssh-agent.
pub fn default_key(home: &Path) -> Option<PathBuf> {
    ["id_ed25519_sk", "id_ecdsa_sk", "id_ed25519", "id_ecdsa"]
        .iter()
        .flat_map(|n| [home.join(".ssh").join(n), home.join(".ssh").join(format!("{n}.pub"))])
        .find(|p| p.exists())
}

/// Signs a request digest. Returns the armoured signature.
pub fn sign(key: &Path, request_digest: &str) -> Result<String, String> {
    // By absolute path from a system directory: an `ssh-keygen` first on PATH may be the
    // agent's, and would sign what it likes with the key the human unlocks.
    let ssh_keygen = crate::helpers::system_helper("ssh-keygen")?;
    let mut child = Command::new(&ssh_keygen)
        .args(["-Y", "sign", "-q", "-n", NAMESPACE, "-f"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh-keygen (from OpenSSH) to sign: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("ssh-keygen has no stdin")?
        .write_all(message(request_digest).as_bytes())
        .map_err(|e| format!("cannot give ssh-keygen the request: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("ssh-keygen failed: {e}"))?;
    if !out.status.success() {
        return Err(format!("ssh-keygen could not sign with {} ({})", key.display(), out.status));
    }
    String::from_utf8(out.stdout).map_err(|_| "ssh-keygen printed something that is not a signature".into())
}
