//! Who may approve a request in interactive mode: a human at a real terminal, outside the
//! requesting agent's session and process tree, and not inside a `guardsh run` session.
//!
//! Pure: the facts are gathered elsewhere (`procinfo`). These checks stop an agent that runs
//! `guardsh approve` itself. They do not stop a determined agent with the same uid: it can
//! detach from its tree, give itself a pseudo-terminal, or write the store directly. Signature
//! approvals (a key the agent cannot use) close that gap; the README says so.

use super::request::{Proc, Request};

/// The approving process, as /proc describes it.
#[derive(Debug, Clone)]
pub struct ApproverFacts {
    pub uid: u32,
    pub sid: i32,
    /// `/dev/tty` could be opened: there is a controlling terminal.
    pub has_terminal: bool,
    pub tty: Option<String>,
    /// Self first, then ancestors.
    pub ancestry: Vec<Proc>,
    /// The approver or one of its ancestors was started inside a `guardsh run` session.
    pub in_guardsh_session: bool,
}

/// Why the approver may not approve this request. Each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "guardsh approve needs a terminal to read your answer from, and this process has none; run it in your own terminal"
    )]
    NoTerminal,
    #[error("this is a guardsh run session (an agent's environment); approve from your own terminal, outside it")]
    InGuardshSession,
    #[error("request {id} belongs to uid {owner}; approve it as that user")]
    OtherUser { id: String, owner: u32 },
    #[error(
        "guardsh approve is running in the same session as the command that asked; approve from a separate terminal"
    )]
    SameSession,
    #[error(
        "guardsh approve is running on the same terminal ({tty}) as the command that asked; approve from a separate terminal"
    )]
    SameTerminal { tty: String },
    #[error(
        "guardsh approve is running under the process that asked ({comm}, pid {pid}); approve from your own terminal, not from the agent"
    )]
    InRequesterTree { pid: i32, comm: String },
    #[error(
        "guardsh approve is running on a terminal created by a program ({comm}, pid {pid}) that itself runs on another terminal ({tty}); approve from a terminal of your own"
    )]
    NestedTerminal { pid: i32, comm: String, tty: String },
}

/// May `approver` decide `req`?
pub fn may_approve(approver: &ApproverFacts, req: &Request) -> Result<(), Refusal> {
    let asker = &req.requester;
    if !approver.has_terminal {
        return Err(Refusal::NoTerminal);
    }
    if approver.in_guardsh_session {
        return Err(Refusal::InGuardshSession);
    }
    if approver.uid != asker.uid && approver.uid != 0 {
        return Err(Refusal::OtherUser { id: req.id.clone(), owner: asker.uid });
    }
    if approver.sid == asker.sid {
        return Err(Refusal::SameSession);
    }
    // The approver's terminal must not be one the requesting side uses: the asker's own, or that
    // of any process above it (the agent's shell, the agent).
    if let Some(mine) = &approver.tty
        && (asker.tty.as_ref() == Some(mine) || asker.ancestry.iter().any(|p| p.tty.as_ref() == Some(mine)))
    {
        return Err(Refusal::SameTerminal { tty: mine.clone() });
    }
    // A terminal a human opens was created by terminal infrastructure (an emulator, tmux's server,
    // sshd), none of which has a controlling terminal. A pseudo-terminal an agent creates for
    // itself was created by the agent, which runs on a terminal of its own. The creator is the
    // first ancestor outside the approver's session; it and everything below it must not be on
    // another terminal.
    if let Some(mine) = &approver.tty {
        for p in approver.ancestry.iter().skip(1) {
            if let Some(theirs) = p.tty.as_ref().filter(|t| *t != mine) {
                return Err(Refusal::NestedTerminal { pid: p.pid, comm: p.comm.clone(), tty: theirs.clone() });
            }
            if p.sid != approver.sid {
                break;
            }
        }
    }
    // What a human's second terminal shares with an agent is infrastructure: a terminal emulator,
    // tmux's server, sshd, systemd, init. None of those has a controlling terminal. A shared
    // ancestor that has one, or that is in the asker's session, is the agent's side: its shell or
    // the agent itself. (Filtering by the asker's session alone would miss an agent that starts
    // the command under `setsid` and approves from its own session.)
    for theirs in &asker.ancestry {
        let shared = approver.ancestry.iter().find(|mine| mine.pid == theirs.pid && mine.start == theirs.start);
        if let Some(p) = shared
            && (p.tty.is_some() || p.sid == asker.sid)
        {
            return Err(Refusal::InRequesterTree { pid: p.pid, comm: p.comm.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::request::{Command, Context, Requester};

    /// A process; `tty` is its controlling terminal number, 0 for none.
    fn p(pid: i32, sid: i32, tty: u8, comm: &str) -> Proc {
        let tty = (tty > 0).then(|| format!("/dev/pts/{tty}"));
        Proc { pid, start: u64::try_from(pid).unwrap_or(0) * 10, sid, tty, comm: comm.into() }
    }

    /// An agent in tmux pane 1 (session 100): shim 105 <- bash 104 <- node 103 <- bash 100,
    /// under the tmux server 50 (its own session) and init.
    fn request() -> Request {
        let requester = Requester {
            uid: 1000,
            pid: 105,
            sid: 100,
            tty: Some("/dev/pts/1".into()),
            session: None,
            ancestry: vec![
                p(105, 100, 1, "kubectl"),
                p(104, 100, 1, "bash"),
                p(103, 100, 1, "node"),
                p(100, 100, 1, "bash"),
                p(50, 50, 0, "tmux"),
            ],
        };
        let cmd = Command {
            uid: 1000,
            tool: "kubectl",
            argv: &[b"kubectl"],
            cwd: b"/",
            real: b"/k",
            real_sha256: "x",
            env: &[],
        };
        let ctx = Context {
            id: "id1".into(),
            rule: None,
            reason: "r".into(),
            grants: vec![],
            requester,
            created: 0,
            expires: 9,
        };
        Request::new(cmd, ctx)
    }

    fn human() -> ApproverFacts {
        // tmux pane 2: approve 201 <- bash 200 (session 200) <- tmux server 50.
        ApproverFacts {
            uid: 1000,
            sid: 200,
            has_terminal: true,
            tty: Some("/dev/pts/2".into()),
            ancestry: vec![p(201, 200, 2, "guardsh"), p(200, 200, 2, "bash"), p(50, 50, 0, "tmux")],
            in_guardsh_session: false,
        }
    }

    #[test]
    fn table() {
        let req = request();
        let cases: Vec<(&str, ApproverFacts, Result<(), Refusal>)> = vec![
            ("human in another pane", human(), Ok(())),
            ("root may approve", ApproverFacts { uid: 0, ..human() }, Ok(())),
            ("no terminal", ApproverFacts { has_terminal: false, ..human() }, Err(Refusal::NoTerminal)),
            (
                "inside guardsh run",
                ApproverFacts { in_guardsh_session: true, ..human() },
                Err(Refusal::InGuardshSession),
            ),
            (
                "another user",
                ApproverFacts { uid: 1001, ..human() },
                Err(Refusal::OtherUser { id: "id1".into(), owner: 1000 }),
            ),
            ("agent runs approve", ApproverFacts { sid: 100, ..human() }, Err(Refusal::SameSession)),
            (
                "same terminal",
                ApproverFacts { tty: Some("/dev/pts/1".into()), ..human() },
                Err(Refusal::SameTerminal { tty: "/dev/pts/1".into() }),
            ),
            (
                "agent runs setsid guardsh approve on a fresh terminal",
                ApproverFacts {
                    sid: 300,
                    tty: Some("/dev/pts/3".into()),
                    ancestry: vec![p(301, 300, 3, "guardsh"), p(104, 100, 1, "bash"), p(103, 100, 1, "node")],
                    ..human()
                },
                Err(Refusal::NestedTerminal { pid: 104, comm: "bash".into(), tty: "/dev/pts/1".into() }),
            ),
            (
                "a reused pid is not the same process",
                ApproverFacts {
                    sid: 300,
                    tty: Some("/dev/pts/3".into()),
                    ancestry: vec![p(301, 300, 3, "guardsh"), Proc { start: 1, tty: None, ..p(103, 100, 1, "node") }],
                    ..human()
                },
                Ok(()),
            ),
            (
                "an agent's own pseudo-terminal for a requester it orphaned",
                ApproverFacts {
                    sid: 600,
                    tty: Some("/dev/pts/9".into()),
                    ancestry: vec![p(601, 600, 9, "guardsh"), p(602, 100, 1, "python3"), p(103, 100, 1, "node")],
                    ..human()
                },
                Err(Refusal::NestedTerminal { pid: 602, comm: "python3".into(), tty: "/dev/pts/1".into() }),
            ),
        ];
        for (what, facts, want) in cases {
            assert_eq!(may_approve(&facts, &req), want, "{what}");
        }
    }

    #[test]
    fn an_agent_that_setsids_the_command_still_cannot_approve_it() {
        // The agent (node 103 on pts/1, session 100) runs the command under setsid: the asker is
        // alone in session 400, with no terminal.
        let mut req = request();
        req.requester.sid = 400;
        req.requester.tty = None;
        req.requester.ancestry =
            vec![p(405, 400, 0, "kubectl"), p(104, 100, 1, "bash"), p(103, 100, 1, "node"), p(50, 50, 0, "tmux")];
        // ... then approves from its own shell, on its own terminal,
        let from_agent = ApproverFacts {
            sid: 100,
            tty: Some("/dev/pts/1".into()),
            ancestry: vec![p(106, 100, 1, "guardsh"), p(104, 100, 1, "bash"), p(103, 100, 1, "node")],
            ..human()
        };
        assert_eq!(may_approve(&from_agent, &req), Err(Refusal::SameTerminal { tty: "/dev/pts/1".into() }));
        // ... or from a new pseudo-terminal it opened itself, still under its own processes.
        let from_agent_pty = ApproverFacts {
            sid: 500,
            tty: Some("/dev/pts/9".into()),
            ancestry: vec![p(501, 500, 9, "guardsh"), p(104, 100, 1, "bash"), p(103, 100, 1, "node")],
            ..human()
        };
        assert_eq!(
            may_approve(&from_agent_pty, &req),
            Err(Refusal::NestedTerminal { pid: 104, comm: "bash".into(), tty: "/dev/pts/1".into() })
        );
        // The human in another tmux pane shares only the tmux server, which has no terminal.
        assert_eq!(may_approve(&human(), &req), Ok(()));
    }
}
