//! What the binary does before anything else, in place of the parts of Rust's runtime start-up
//! that guardsh relies on (see `main.rs` for why that start-up is skipped).

/// Makes sure descriptors 0, 1 and 2 are open, as Rust's start-up would: if one was closed by
/// whoever started guardsh, the next file guardsh opens (the audit log, say) would take its
/// number, and a message meant for stderr would be written into it. A closed one is opened on
/// /dev/null. If even that fails, guardsh cannot run safely and exits.
pub fn standard_fds() {
    for fd in 0..=2 {
        if !is_open(fd) {
            match std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
                // The lowest free number is the closed one; it stays open for the process's life.
                Ok(f) => drop(std::os::fd::IntoRawFd::into_raw_fd(f)),
                Err(_) => std::process::exit(crate::exit::CANNOT_EXEC.into()),
            }
        }
    }
}

#[allow(unsafe_code)]
fn is_open(fd: std::os::fd::RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; any integer is a valid argument, and
    // a closed one fails with EBADF.
    unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) != -1 }
}
