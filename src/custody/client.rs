//! The shim's side of custody: asks `guardsh run` for the credentials its command is granted,
//! after making itself non-dumpable and checking that nobody traces it.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use super::server::{read, send, tracer};
use super::{Answer, Hello, Sealed, VERSION};

/// Released credentials and the one binary they may be handed to.
pub type Released = (Vec<(String, Zeroizing<String>)>, std::path::PathBuf);

/// The values `guardsh run` releases for this process's command and the real binary it found
/// for them, or why it released none. `request` is the approval this shim used; `stdin` the SQL
/// it read and will hand on.
pub fn fetch(socket: &Path, request: Option<&str>, stdin: Option<&[u8]>) -> Result<Released, String> {
    let me = i32::try_from(std::process::id()).map_err(|e| e.to_string())?;
    let untraced = || match tracer(me) {
        Ok(0) => Ok(()),
        Ok(pid) => Err(format!("this guardsh is being traced by process {pid}")),
        Err(e) => Err(format!("cannot tell whether this guardsh is traced: {e}")),
    };
    untraced()?;
    let conn =
        UnixStream::connect(socket).map_err(|e| format!("cannot reach guardsh run at {}: {e}", socket.display()))?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let io = |e: std::io::Error| format!("talking to guardsh run: {e}");
    let hello = Hello {
        version: VERSION,
        request: request.map(str::to_string),
        stdin_hex: stdin.map(crate::approval::request::hex),
    };
    send(&conn, &hello).map_err(io)?;
    let mut reader = BufReader::new(&conn);
    match read::<Answer>(&mut reader)? {
        Answer::Seal => {}
        Answer::Refuse { reason } => return Err(reason),
        _ => return Err("guardsh run answered out of turn".into()),
    }
    // From here on no process of this user can read this one's memory or attach to it.
    let sealed = nix::sys::prctl::set_dumpable(false).is_ok() && untraced().is_ok();
    send(&conn, &Sealed { sealed }).map_err(io)?;
    if !sealed {
        return Err("this guardsh could not make itself unreadable, or is traced".into());
    }
    let path = match read::<Answer>(&mut reader)? {
        Answer::Connect { path } => path,
        Answer::Refuse { reason } => return Err(reason),
        _ => return Err("guardsh run answered out of turn".into()),
    };
    // A connection of this process's own, made now: only it carries the values.
    let fresh = UnixStream::connect(&path).map_err(|e| format!("cannot reach guardsh run at {path}: {e}"))?;
    let _ = fresh.set_read_timeout(Some(Duration::from_secs(10)));
    match read::<Answer>(&mut BufReader::new(&fresh))? {
        Answer::Release { values, real } => {
            Ok((values.into_iter().map(|(k, v)| (k, Zeroizing::new(v))).collect(), real.into()))
        }
        Answer::Refuse { reason } => Err(reason),
        _ => Err("guardsh run answered out of turn".into()),
    }
}
