//! What this kernel offers the sandbox: the Landlock ABI, and whether an unprivileged user
//! namespace can be created (asked of a fresh process, `guardsh sandbox-probe`, since a
//! process that has threads cannot create one and one that did cannot leave it).

use super::Support;

/// The running kernel's Landlock ABI version, 0 when it has none (or it is disabled).
#[allow(unsafe_code)]
pub fn landlock_abi() -> i32 {
    // LANDLOCK_CREATE_RULESET_VERSION: with a null attribute and size 0, returns the ABI.
    const VERSION: nix::libc::c_long = 1;
    // SAFETY: landlock_create_ruleset with a null pointer, size 0 and the VERSION flag reads no
    // memory and creates nothing; it returns a number or -1.
    let abi =
        unsafe { nix::libc::syscall(nix::libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, VERSION) };
    i32::try_from(abi).unwrap_or(0).max(0)
}

/// `guardsh sandbox-probe`: tries to create a user namespace in this (single-threaded, fresh)
/// process and prints what the kernel offers as one JSON line.
pub fn run_probe() -> std::process::ExitCode {
    let userns = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
    let s = Support { landlock_abi: landlock_abi(), user_namespaces: userns };
    println!("{}", serde_json::to_string(&s).unwrap_or_default());
    std::process::ExitCode::SUCCESS
}

/// Asks a fresh guardsh process what the kernel offers. Any failure reads as "no user
/// namespaces": the sandbox then refuses to start, which is the safe reading.
pub fn support(guardsh: &std::path::Path) -> Support {
    let out = std::process::Command::new(guardsh)
        .arg("sandbox-probe")
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    out.ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<Support>(&o.stdout).ok())
        .unwrap_or(Support { landlock_abi: landlock_abi(), user_namespaces: false })
}
