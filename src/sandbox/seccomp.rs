//! The agent's seccomp filter: what Landlock and the namespaces leave open. TIOCSTI and
//! TIOCLINUX (typing into a terminal), the kernel keyrings, io_uring, and (unless the policy
//! allows it) creating further user namespaces.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule, TargetArch,
};

/// The ioctl requests that put bytes into a terminal's input or drive the Linux console.
const TIOCSTI: u64 = 0x5412;
const TIOCLINUX: u64 = 0x541C;

fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("seccomp: {e}"))
}

fn program(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, String> {
    let errno = u32::try_from(errno).map_err(|e| e.to_string())?;
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno), arch()?)
        .map_err(|e| format!("seccomp: {e}"))?;
    filter.try_into().map_err(|e: seccompiler::BackendError| format!("seccomp: {e}"))
}

/// The filters, in the order they are installed.
pub fn programs(nested_user_namespaces: bool) -> Result<Vec<BpfProgram>, String> {
    use nix::libc;
    let cond = |arg: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(|e| format!("seccomp: {e}"))
    };
    let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c).map_err(|e| format!("seccomp: {e}"));
    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    // The request is compared as 32 bits: the kernel does, and a value with high bits set must
    // not slip past.
    eperm.insert(
        libc::SYS_ioctl,
        vec![rule(vec![cond(1, SeccompCmpOp::Eq, TIOCSTI)?])?, rule(vec![cond(1, SeccompCmpOp::Eq, TIOCLINUX)?])?],
    );
    for sys in [
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ] {
        eperm.insert(sys, vec![]);
    }
    let newuser = libc::CLONE_NEWUSER as u64;
    if !nested_user_namespaces {
        eperm.insert(libc::SYS_unshare, vec![rule(vec![cond(0, SeccompCmpOp::MaskedEq(newuser), newuser)?])?]);
        eperm.insert(libc::SYS_clone, vec![rule(vec![cond(0, SeccompCmpOp::MaskedEq(newuser), newuser)?])?]);
    }
    let mut out = vec![program(eperm, libc::EPERM)?];
    if !nested_user_namespaces {
        // clone3 passes its flags in memory, which a filter cannot read: it answers "not
        // implemented", and glibc falls back to clone, which the filter above can read.
        let mut enosys: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        enosys.insert(libc::SYS_clone3, vec![]);
        out.push(program(enosys, libc::ENOSYS)?);
    }
    Ok(out)
}

/// Installs the filters on this thread (the agent's process, before exec). Needs
/// `PR_SET_NO_NEW_PRIVS`, which Landlock has already set.
pub fn install(nested_user_namespaces: bool) -> Result<(), String> {
    for p in programs(nested_user_namespaces)? {
        seccompiler::apply_filter(&p).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}
