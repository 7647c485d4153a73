//! Colour on a terminal: ANSI escapes for decisions, the approval screen, `doctor` and `audit
//! tail`, only when the output is a terminal, `NO_COLOR` is unset (or empty) and `TERM` is not
//! `dumb`; `--color always|never` overrides. No crate: a handful of SGR codes is all it needs.
//!
//! Colour is applied after escaping (`display`), to text guardsh wrote, never to what it quotes.

use std::io::IsTerminal;
use std::sync::OnceLock;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Choice {
    /// On a terminal, unless NO_COLOR is set.
    #[default]
    Auto,
    /// Also into pipes and files, and under NO_COLOR.
    Always,
    /// Never.
    Never,
}

static CHOICE: OnceLock<Choice> = OnceLock::new();

/// Sets the choice for this process (once, from the command line).
pub fn set(choice: Choice) {
    let _ = CHOICE.set(choice);
}

/// Whether to colour output going to a terminal (`is_terminal`), from the choice and the
/// environment's `NO_COLOR` and `TERM`.
pub fn decide(choice: Choice, is_terminal: bool, no_color: Option<&str>, term: Option<&str>) -> bool {
    match choice {
        Choice::Always => true,
        Choice::Never => false,
        Choice::Auto => is_terminal && no_color.is_none_or(str::is_empty) && term != Some("dumb"),
    }
}

fn enabled(is_terminal: bool) -> bool {
    let no_color = std::env::var("NO_COLOR").ok();
    let term = std::env::var("TERM").ok();
    decide(CHOICE.get().copied().unwrap_or_default(), is_terminal, no_color.as_deref(), term.as_deref())
}

/// For standard output.
pub fn stdout() -> bool {
    enabled(std::io::stdout().is_terminal())
}

/// For the controlling terminal the approval screen is written to (always a terminal).
pub fn tty() -> bool {
    enabled(true)
}

/// What a piece of text means, and so its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Allow,
    Ask,
    Deny,
    Problem,
    Warning,
    Ok,
    Strong,
}

impl Style {
    fn sgr(self) -> &'static str {
        match self {
            Style::Allow | Style::Ok => "32",
            Style::Ask | Style::Warning => "33",
            Style::Deny | Style::Problem => "1;31",
            Style::Strong => "1",
        }
    }

    /// The style of a decision word (`allow`, `ask`, `deny`, any case).
    pub fn of_decision(word: &str) -> Option<Style> {
        match word.to_ascii_lowercase().as_str() {
            "allow" => Some(Style::Allow),
            "ask" => Some(Style::Ask),
            "deny" | "error" => Some(Style::Deny),
            _ => None,
        }
    }
}

/// `text` in `style` when `on`.
pub fn paint(on: bool, style: Style, text: &str) -> String {
    if on { format!("\x1b[{}m{text}\x1b[0m", style.sgr()) } else { text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_under_no_color() {
        assert!(decide(Choice::Auto, true, None, Some("xterm")));
        assert!(!decide(Choice::Auto, false, None, Some("xterm")), "a pipe");
        assert!(!decide(Choice::Auto, true, Some("1"), Some("xterm")), "NO_COLOR");
        assert!(decide(Choice::Auto, true, Some(""), None), "an empty NO_COLOR is unset");
        assert!(!decide(Choice::Auto, true, None, Some("dumb")));
        assert!(decide(Choice::Always, false, Some("1"), None));
        assert!(!decide(Choice::Never, true, None, None));
        assert_eq!(paint(false, Style::Deny, "deny"), "deny");
        assert_eq!(paint(true, Style::Deny, "deny"), "\x1b[1;31mdeny\x1b[0m");
    }
}
