//! Facts about processes from /proc: the requester's and the approver's ancestry, session and
//! controlling terminal, and whether a process was started inside a `guardsh run` session.

use std::io;

use super::request::{Proc, Requester};

/// The fields of /proc/PID/stat guardsh uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub ppid: i32,
    pub sid: i32,
    pub tty_nr: i64,
    pub start: u64,
}

/// Parses /proc/PID/stat. `comm` may contain spaces and parentheses, so the fields are found
/// after the last ')'.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    Some(Stat {
        pid,
        comm,
        ppid: rest.get(1)?.parse().ok()?,
        sid: rest.get(3)?.parse().ok()?,
        tty_nr: rest.get(4)?.parse().ok()?,
        start: rest.get(19)?.parse().ok()?,
    })
}

pub fn stat(pid: i32) -> io::Result<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| io::Error::other(format!("cannot parse /proc/{pid}/stat")))
}

/// The device name of a controlling terminal number (`tty_nr` in /proc/PID/stat).
pub fn tty_name(tty_nr: i64) -> Option<String> {
    if tty_nr == 0 {
        return None;
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    Some(match major {
        136..=143 => format!("/dev/pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("/dev/tty{minor}"),
        _ => format!("tty({major},{minor})"),
    })
}

/// `pid` and its ancestors up to (not including) pid 1, nearest first.
pub fn ancestry(pid: i32) -> Vec<Proc> {
    let mut out = Vec::new();
    let mut current = pid;
    // The bound only guards against a cycle in a /proc that is changing under us.
    while current > 1 && out.len() < 128 {
        let Ok(s) = stat(current) else { break };
        out.push(Proc { pid: s.pid, start: s.start, sid: s.sid, tty: tty_name(s.tty_nr), comm: s.comm });
        current = s.ppid;
    }
    out
}

/// Was `pid` started with `name` in its environment? Reads the environment the process was
/// started with, which it cannot change afterwards (unlike its current variables).
pub fn started_with_var(pid: i32, name: &str) -> bool {
    let Ok(bytes) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    let prefix = format!("{name}=");
    bytes.split(|&b| b == 0).any(|entry| entry.starts_with(prefix.as_bytes()) && entry.len() > prefix.len())
}

/// This process as a requester.
pub fn requester(session: Option<String>) -> io::Result<Requester> {
    requester_of(std::process::id() as i32, nix::unistd::getuid().as_raw(), session)
}

/// Process `pid` (of user `uid`) as a requester: the broker describes the shim that asked.
pub fn requester_of(pid: i32, uid: u32, session: Option<String>) -> io::Result<Requester> {
    let s = stat(pid)?;
    Ok(Requester { uid, pid, sid: s.sid, tty: tty_name(s.tty_nr), session, ancestry: ancestry(pid) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_awkward_names_parse() {
        let line = "4242 (my (odd) name) S 4000 4242 3900 34817 4242 4194560 97 0 0 0 0 0 0 0 20 0 1 0 123456 1000 100 18446744073709551615";
        let s = parse_stat(line).expect("parses");
        assert_eq!(
            (s.pid, s.comm.as_str(), s.ppid, s.sid, s.tty_nr, s.start),
            (4242, "my (odd) name", 4000, 3900, 34817, 123456)
        );
        assert_eq!(tty_name(34817).as_deref(), Some("/dev/pts/1"));
        assert_eq!(tty_name(0), None);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn this_process_can_describe_itself() {
        let me = requester(None).expect("own /proc entry");
        assert_eq!(me.pid, std::process::id() as i32);
        assert_eq!(me.ancestry.first().map(|p| p.pid), Some(me.pid));
    }
}
