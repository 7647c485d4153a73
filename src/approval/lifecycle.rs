//! How a request ends when no human decides it: every process that waited for it has died, so it
//! is withdrawn (never approvable, gone from `pending`); and what `pending` and `watch` say about
//! who still waits.
//!
//! Agents kill commands they stop caring about (a tool timeout, an interrupted turn), often with
//! SIGKILL, which leaves the waiting shim no chance to withdraw its own request. An approval of
//! such a request would run nothing for the agent, or worse, run a command it has moved on from
//! when something repeats it. So whoever looks at the store next (a shim asking, `pending`,
//! `approve`, `watch`) withdraws it and says so in the audit log.

use super::procinfo;
use super::request::Request;
use super::store::{DecidedBy, Decision, Outcome, Store, StoreError};

/// Why a request was withdrawn on its waiters' behalf (audit log, `approve`).
pub const ABANDONED: &str = "every process waiting for it has ended";

/// Who waits for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    /// Processes recorded as waiting.
    pub recorded: usize,
    /// Of those, the ones still running (same pid and start time).
    pub alive: usize,
}

impl Waiting {
    /// Waiters were recorded and none is left.
    pub fn abandoned(self) -> bool {
        self.recorded > 0 && self.alive == 0
    }

    /// Nobody ever waited (no-wait mode): an identical re-run uses the approval.
    pub fn serves_reruns(self) -> bool {
        self.recorded == 0
    }

    /// For `pending` and `watch`.
    pub fn describe(self) -> String {
        match (self.recorded, self.alive) {
            (0, _) => "nobody waits; an identical re-run uses the approval".into(),
            (_, 0) => "nobody waits any more".into(),
            (_, 1) => "1 process waits".into(),
            (_, n) => format!("{n} processes wait"),
        }
    }
}

/// Is the process `pid` that started at `start` still running? A reused pid has another start.
fn alive(pid: i32, start: u64) -> bool {
    procinfo::stat(pid).is_ok_and(|s| s.start == start)
}

pub fn waiting(store: &Store, id: &str) -> Waiting {
    let waiters = store.waiters(id);
    Waiting { recorded: waiters.len(), alive: waiters.iter().filter(|(p, s)| alive(*p, *s)).count() }
}

/// An audit record about a request, written by a process other than the one that asked (an
/// approver, or whoever withdrew it).
pub fn record(req: &Request, outcome: &str, reason: &str, by: Option<serde_json::Value>) -> crate::audit::Record {
    use std::os::unix::ffi::OsStrExt;
    let words = req
        .argv_bytes()
        .unwrap_or_default()
        .iter()
        .map(|w| crate::display::json_word(std::ffi::OsStr::from_bytes(w)))
        .collect();
    crate::audit::Record {
        time: crate::timefmt::rfc3339(std::time::SystemTime::now()),
        tool: req.tool.clone(),
        argv: words,
        cwd: serde_json::json!(req.cwd),
        pid: std::process::id(),
        ppid: std::os::unix::process::parent_id(),
        session: req.requester.session.clone(),
        rules: req.rule.iter().cloned().collect(),
        decision: "ask".into(),
        mode: "interactive".into(),
        reason: reason.to_string(),
        stripped: vec![],
        passed: req.grants.clone(),
        outcome: outcome.to_string(),
        real: Some(req.real.clone()),
        request: Some(req.id.clone()),
        by,
        exec_argv: None,
        minted: None,
    }
}

/// Withdraws every undecided request whose waiters have all died. Returns the ones this call
/// withdrew (for the caller to audit); a decision that got there first stands.
pub fn withdraw_abandoned(store: &Store, now: u64) -> Result<Vec<Request>, StoreError> {
    let mut out = Vec::new();
    for entry in store.pending(now)? {
        let Ok(req) = entry else { continue };
        if !waiting(store, &req.id).abandoned() {
            continue;
        }
        let decision = Decision {
            outcome: Outcome::Withdrawn,
            digest: req.digest.clone(),
            reason: Some(ABANDONED.into()),
            by: DecidedBy { uid: nix::unistd::getuid().as_raw(), pid: std::process::id() as i32, ..Default::default() },
            time: now,
            signature: None,
        };
        let standing = store.decide(&req.id, &decision)?;
        if standing == decision {
            out.push(req);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_described_for_the_human() {
        let w = |recorded, alive| Waiting { recorded, alive };
        assert!(w(2, 0).abandoned() && !w(2, 1).abandoned() && !w(0, 0).abandoned());
        assert!(w(0, 0).serves_reruns() && !w(1, 0).serves_reruns());
        assert_eq!(w(3, 2).describe(), "2 processes wait");
        assert_eq!(w(1, 0).describe(), "nobody waits any more");
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = procinfo::stat(std::process::id() as i32).expect("stat");
        assert!(alive(me.pid, me.start));
        assert!(!alive(me.pid, me.start + 1));
    }
}
