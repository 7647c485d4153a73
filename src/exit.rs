//! The exit codes guardsh itself uses (the real tool's own status passes through untouched).
//! Documented in the README; sysexits.h values where one fits.

/// `guardsh` was called with bad arguments.
pub const USAGE: u8 = 2;
/// The state directory or audit log could not be written; nothing was run (EX_IOERR).
pub const AUDIT: u8 = 74;
/// Human approval is required (or is pending, or timed out) (EX_TEMPFAIL).
pub const APPROVAL: u8 = 75;
/// Denied by policy (EX_NOPERM).
pub const DENIED: u8 = 77;
/// The policy is invalid or missing; every guarded invocation is refused (EX_CONFIG).
pub const CONFIG: u8 = 78;
/// The real tool was found but could not be executed, or shims loop back to guardsh.
pub const CANNOT_EXEC: u8 = 126;
/// The real tool is not on PATH outside the shim directories.
pub const NOT_FOUND: u8 = 127;
