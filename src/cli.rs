//! `guardsh`'s own subcommands: parsing (clap) and dispatch. Never used for a shimmed tool's argv.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands;

#[derive(Debug, Parser)]
#[command(name = "guardsh", version, about = "A fail-closed gate between AI coding agents and dangerous CLIs", long_about = None)]
struct Cli {
    /// Colour on a terminal: auto (unless NO_COLOR is set), always, or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    color: crate::colour::Choice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain what guardsh would do with a command line, without running anything.
    #[command(override_usage = "guardsh check [--json] -- <ARGV>...")]
    Check {
        /// Print one JSON object instead of the explanation.
        #[arg(long)]
        json: bool,
        /// The command line, after `--`: `guardsh check -- kubectl delete ns x`.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGV")]
        argv: Vec<OsString>,
    },
    /// Validate every policy layer that applies here; errors are printed as file:line:col.
    CheckConfig,
    /// Check that every guarded tool is really guarded here, and what an agent could still reach.
    Doctor {
        /// Shim directory (default: `shim_dir` from the policy, else ~/.local/share/guardsh/shims).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Create shims (symlinks to guardsh) for the given tools, or for every tool the policy knows.
    Install {
        /// Shim directory (default: `shim_dir` from the policy, else ~/.local/share/guardsh/shims).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Tools to create shims for (default: every tool the policy knows).
        tools: Vec<String>,
    },
    /// Remove every guardsh shim from the shim directory; with --all, everything guardsh installed.
    Uninstall {
        /// Shim directory (default: `shim_dir` from the policy, else ~/.local/share/guardsh/shims).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Also remove this guardsh binary, your policy, allowed signers, trusted projects, the
        /// request store, the policy cache, completions and the man page (listed first); the
        /// audit log is kept.
        #[arg(long)]
        all: bool,
        /// With --all: remove the audit log too.
        #[arg(long, requires = "all")]
        purge_audit: bool,
        /// With --all: do not ask (needed without a terminal).
        #[arg(long, short = 'y', requires = "all")]
        yes: bool,
    },
    /// List the shim directory, and the policy's tools that have no shim.
    List {
        /// Shim directory (default: `shim_dir` from the policy, else ~/.local/share/guardsh/shims).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Run a command (your agent) with the shims first on PATH, holding the credentials in this
    /// environment for the guarded commands their rules grant them to; the agent gets none.
    #[command(
        override_usage = "guardsh run [--dir DIR] [--credentials-from CMD]... [--approval-timeout DURATION] [--warn-unguarded-shells] [--no-sandbox] -- <COMMAND>..."
    )]
    Run {
        /// Shim directory (default: `shim_dir` from the policy, else ~/.local/share/guardsh/shims).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// A shell command that prints credentials as NAME=VALUE lines (a password manager, say:
        /// `op inject -i creds.env`), run before the agent starts; guardsh run holds them too.
        #[arg(long, value_name = "CMD")]
        credentials_from: Vec<String>,
        /// Start the agent without the sandbox: it then runs beside your files, processes and
        /// terminals, and guardsh is a gate in front of the tools, not a boundary (README).
        #[arg(long)]
        no_sandbox: bool,
        /// How long a command that needs approval waits for a human (`30s`, `5m`), for agents
        /// that run without you watching; only shortens the policy's approval_timeout.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        approval_timeout: Option<u64>,
        /// Start the agent even when a shell it runs commands in (`bash -lc`, `sh -c`, your
        /// login shell) would not reach the shims; only warn.
        #[arg(long)]
        warn_unguarded_shells: bool,
        /// The command to start, after `--`: `guardsh run -- claude`.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Trust the project's .guardsh.toml as it is now; guardsh ignores a project file until you
    /// do, and again after it changes.
    Trust {
        /// Stop trusting it.
        #[arg(long)]
        revoke: bool,
    },
    /// Internal: carries out `guardsh run`'s sandbox plan and starts the agent in it.
    #[command(hide = true, name = "sandbox-exec")]
    SandboxExec {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// Internal: prints what this kernel offers the sandbox, as JSON.
    #[command(hide = true, name = "sandbox-probe")]
    SandboxProbe,
    /// Print the `export` lines that `guardsh run` would apply, for launching agents yourself.
    Shellenv {
        /// Shim directory (default: `shim_dir` from the policy, else ~/.local/share/guardsh/shims).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// List the requests waiting for a human decision.
    Pending {
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Approve (or deny) a waiting request, from your own terminal. Without ID, pick from a list.
    Approve {
        /// The request id the agent was shown.
        id: Option<String>,
        /// SSH key to sign with, when the policy requires signatures (default: ~/.ssh/id_ed25519_sk, ...).
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
    },
    /// Deny a waiting request; the reason reaches the agent.
    #[command(override_usage = "guardsh deny <ID> [--reason TEXT]")]
    Deny {
        /// The request id (`guardsh pending` lists them).
        id: String,
        /// Why; shown to the agent.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Show requests as they arrive (with a terminal bell) and approve or deny them here.
    Watch {
        /// SSH key to sign approvals with, when the policy requires signatures (default:
        /// ~/.ssh/id_ed25519_sk, ...).
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
    },
    /// Print a waiting request as text, to sign on another machine.
    Export {
        /// The request id (`guardsh pending` lists them).
        id: String,
    },
    /// Sign a request (FILE, or stdin) with your SSH key; prints the approval token.
    Sign {
        /// The request, as `guardsh export` or `guardsh request` printed it (default: stdin).
        file: Option<PathBuf>,
        /// SSH private key to sign with, by `ssh-keygen -Y sign` (a FIDO key such as
        /// ~/.ssh/id_ed25519_sk needs a touch); default: the first of ~/.ssh/id_ed25519_sk, ...
        #[arg(long, value_name = "KEY")]
        key: Option<PathBuf>,
    },
    /// Import a signed approval token (FILE, or stdin): the request is approved here.
    Import {
        /// The token `guardsh sign` printed (default: stdin).
        file: Option<PathBuf>,
    },
    /// Make a request for a command as it would run here, without running it (to sign in advance,
    /// e.g. for a CI step run with GUARDSH_APPROVAL_FILE).
    #[command(override_usage = "guardsh request [--ttl SECONDS] -- <ARGV>...")]
    Request {
        /// How long the approval stays usable (default: the policy's approval_timeout).
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// The command line as the CI step will run it, after `--`, in the directory it will run
        /// in: `guardsh request -- terraform apply plan.bin`.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "ARGV")]
        argv: Vec<OsString>,
    },
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(
        after_help = "bash: guardsh completions bash > ~/.local/share/bash-completion/completions/guardsh\nzsh:  guardsh completions zsh > ~/.zfunc/_guardsh  (with fpath+=~/.zfunc before compinit)\nfish: guardsh completions fish > ~/.config/fish/completions/guardsh.fish"
    )]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print guardsh's manual page (roff) on stdout: `guardsh man | man -l -`.
    Man,
    /// Inspect the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The Rego stage (`[policy]`): test a policy against a table of invocations.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Run every `[[case]]` of TABLE (argv, env, stdin, expect, rego) and compare the decisions.
    Test {
        /// A TOML file of `[[case]]` entries.
        table: PathBuf,
        /// Test these .rego files instead of the configured `[policy]` (repeatable).
        #[arg(long, value_name = "FILE")]
        rego: Vec<PathBuf>,
        /// JSON data documents for `--rego` (repeatable).
        #[arg(long, value_name = "FILE")]
        data: Vec<PathBuf>,
        /// One JSON line per case: the Rego input, the result and the decision.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exits non-zero and says where after any edit, deletion or reordering.
    Verify,
    /// Show the most recent records: time, mode, decision, outcome, command, rules, and the
    /// approval (request, who, their reason).
    Tail {
        /// How many records to show (the last N that pass the filters).
        #[arg(short = 'n', default_value_t = 20)]
        lines: usize,
        /// Print the raw JSON lines.
        #[arg(long)]
        json: bool,
        /// Only this tool's records (`kubectl`).
        #[arg(long, value_name = "TOOL")]
        tool: Option<String>,
        /// Only records with this decision (allow, ask, deny, error) or outcome (exec, denied,
        /// approved, approved_by_token, denied_by_human, expired, withdrawn, refused, ...).
        #[arg(long, value_name = "DECISION")]
        decision: Option<String>,
        /// Only records since then: a duration back from now (30m, 2h, 1d) or a UTC time
        /// (2026-12-03, 2026-12-03T10:00).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },
}

/// Parses guardsh's own arguments and runs the subcommand.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    crate::exec::restore_sigpipe();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(crate::exit::USAGE) } else { ExitCode::SUCCESS };
        }
    };
    // Inside guardsh run's sandbox guardsh's policy, requests and audit log are not there, and
    // approving or changing them is the human's to do from outside: say so, rather than report an
    // empty world (or invite the agent to write a policy).
    let inside = std::env::var_os(crate::sandbox::BROKER_VAR).is_some_and(|v| !v.is_empty())
        || std::path::Path::new(crate::sandbox::BROKER_DIR).join("socket").exists();
    if inside && !matches!(cli.command, Command::SandboxExec { .. } | Command::SandboxProbe) {
        eprintln!(
            "guardsh: this runs inside a guardsh run sandbox, where guardsh's policy, requests and audit log are not. Guarded commands here are decided by guardsh run, outside; approvals and policy belong to the human, in their own terminal."
        );
        return ExitCode::from(crate::exit::USAGE);
    }
    crate::colour::set(cli.color);
    let result = match cli.command {
        Command::Check { json, argv } => commands::check::run(&argv, json),
        Command::CheckConfig => commands::check::config(),
        Command::Doctor { dir } => commands::doctor::run(dir),
        Command::Install { dir, tools } => commands::shims::install(dir, tools),
        Command::Uninstall { dir, all: false, .. } => commands::shims::uninstall(dir),
        Command::Uninstall { dir, all: true, purge_audit, yes } => commands::remove::run(dir, purge_audit, yes),
        Command::List { dir } => commands::shims::list(dir),
        Command::Run { dir, credentials_from, no_sandbox, approval_timeout, warn_unguarded_shells, command } => {
            let options = commands::RunOptions { approval_timeout, warn_unguarded_shells, sandboxed: !no_sandbox };
            commands::session::run(dir, &credentials_from, &command, &options)
        }
        Command::Shellenv { dir } => commands::session::shellenv(dir),
        Command::SandboxExec { command } => Ok(crate::sandbox::init::run(&command)),
        Command::Trust { revoke } => commands::trust::run(revoke),
        Command::SandboxProbe => Ok(crate::sandbox::probe::run_probe()),
        Command::Pending { json } => commands::approve::pending(json),
        Command::Approve { id, key } => commands::approve::approve(id, key),
        Command::Deny { id, reason } => commands::approve::deny(&id, reason),
        Command::Watch { key } => commands::approve::watch(key),
        Command::Export { id } => commands::tokens::export(&id),
        Command::Sign { file, key } => commands::tokens::sign(file, key),
        Command::Import { file } => commands::tokens::import(file),
        Command::Request { ttl, argv } => commands::tokens::request(&argv, ttl),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "guardsh", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => man_page(),
        Command::Audit { command: AuditCommand::Verify } => commands::audit::verify(),
        Command::Audit { command: AuditCommand::Tail { lines, json, tool, decision, since } } => {
            commands::audit::tail(lines, json, &commands::audit::Filter { tool, decision, since })
        }
        Command::Policy { command: PolicyCommand::Test { table, rego, data, json } } => {
            commands::policy::test(&table, &rego, &data, json)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Errors can quote files an agent can write (a request, a decision, a policy).
            eprintln!("guardsh: {}", crate::display::escape_lines(&format!("{e:#}")));
            // The README's exit-code table: an invalid policy is 78 wherever it stops a command.
            if e.chain().any(|c| c.is::<commands::InvalidPolicy>()) {
                ExitCode::from(crate::exit::CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The manual page, generated from the same definitions as `--help`, with the exit codes and files
/// the README documents.
fn man_page() -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    // One subsection per subcommand, with its options, rather than a bare list of names.
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let mut sub = sub.clone().bin_name(format!("guardsh {}", sub.get_name()));
        sub.build();
        let _ = writeln!(out, ".SS \"{}\"", roff_escape(&sub.render_usage().to_string().replace("Usage: ", "")));
        if let Some(about) = sub.get_about() {
            let _ = writeln!(out, "{}", roff_escape(&about.to_string()));
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set() && a.get_id() != "help") {
            let name = match (arg.get_long(), arg.get_short()) {
                (Some(l), Some(s)) => format!("-{s}, --{l}"),
                (Some(l), None) => format!("--{l}"),
                (None, Some(s)) => format!("-{s}"),
                (None, None) => format!("<{}>", arg.get_id().as_str().to_uppercase()),
            };
            let _ = writeln!(out, ".TP\n\\fB{}\\fR", roff_escape(&name));
            let _ = writeln!(out, "{}", arg.get_help().map(|h| roff_escape(&h.to_string())).unwrap_or_default());
        }
    }
    out.extend_from_slice(MAN_TAIL.as_bytes());
    man.render_version_section(&mut out)?;
    std::io::stdout().write_all(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Text for roff: a leading `.` or `'` would be a request, and `\` starts an escape.
fn roff_escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    text.lines()
        .map(|l| if l.starts_with('.') || l.starts_with('\'') { format!("\\&{l}") } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

const MAN_TAIL: &str = r#".SH "EXIT STATUS"
.TP
\fBthe real tool's\fR
the command was allowed and ran
.TP
\fB77\fR
denied by policy or by a human (and every ask in CI mode without a valid token)
.TP
\fB75\fR
human approval required and not given: pending (no\-wait mode), expired, or withdrawn
.TP
\fB128+N\fR
a waiting command was interrupted by signal N; its request is withdrawn
.TP
\fB78\fR
the policy is invalid or missing; nothing guarded runs until it is fixed
.TP
\fB74\fR
the audit record could not be written; nothing ran
.TP
\fB127\fR
the real tool is not on PATH outside the shim directories
.TP
\fB126\fR
the real tool could not be executed, or the shims loop back to guardsh
.TP
\fB71\fR
guardsh run could not set up the sandbox; the agent was not started
.TP
\fB2\fR
bad arguments to guardsh itself
.SH FILES
.TP
\fI~/.config/guardsh/rules.toml\fR
your policy (\fI/etc/guardsh/rules.toml\fR: a root\-owned system policy it may only tighten)
.TP
\fI~/.local/share/guardsh/shims\fR
the shims
.TP
\fI~/.local/state/guardsh/audit.jsonl\fR
the hash\-chained audit log
.SH ENVIRONMENT
.TP
\fBCI\fR, \fBGUARDSH_MODE\fR
CI mode (every ask becomes deny); they can only tighten
.TP
\fBGUARDSH_APPROVAL_FILE\fR
a signed approval token for CI
.TP
\fBNO_COLOR\fR
no colour on a terminal
.SH "SEE ALSO"
The README in the source tree: the threat model, the rules reference and the approval workflow.
"#;

fn parse_duration(text: &str) -> Result<u64, String> {
    crate::timefmt::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration: write seconds, or 30s, 5m, 1h"))
}
