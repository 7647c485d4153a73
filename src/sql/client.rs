//! What database clients run besides SQL: psql's meta-commands, variables and connection
//! strings, and the mysql client's own commands. Each is either known to only show things or
//! makes the input unknown; the SQL around them goes to `super::classify_with`.

use super::{Db, SqlClass, classify, classify_with};

/// Meta-commands of psql that only show things. Any other (`\!`, `\gexec`, `\copy`, `\o |cmd`,
/// `\i file`, `\set`, ...) is not followed.
const PSQL_SAFE_META: &[&str] = &[
    "d",
    "dt",
    "dt+",
    "di",
    "ds",
    "dv",
    "dm",
    "df",
    "dn",
    "du",
    "dg",
    "dp",
    "dx",
    "dT",
    "dD",
    "d+",
    "l",
    "l+",
    "list",
    "x",
    "timing",
    "conninfo",
    "encoding",
    "a",
    "t",
    "q",
    "quit",
    "echo",
    "pset",
    "H",
    "?",
    "errverbose",
    "z",
    "dE",
    "db",
    "dc",
    "dC",
    "dd",
    "dF",
    "dFd",
    "dFp",
    "dFt",
    "dl",
    "do",
    "dO",
    "drds",
    "dRp",
    "dRs",
    "dy",
    "sf",
    "sv",
];

/// Classifies SQL for PostgreSQL as psql would run it: lines starting with a backslash are psql
/// meta-commands; the rest is SQL.
pub fn classify_psql(text: &str) -> SqlClass {
    if has_psql_variable(text) {
        return SqlClass::Unknown("a psql variable (psql pastes its value in after guardsh read the SQL)".into());
    }
    let mut sql = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(meta) = trimmed.strip_prefix('\\') {
            let name = meta.split_whitespace().next().unwrap_or("");
            // `|` pipes output to a command, backquotes run one to expand an argument, and a
            // second backslash starts another meta-command on the same line (`\\x \\! cmd`).
            // `+` asks a listing for more detail and `S` for system objects too: `\\dt+`, `\\dtS+`.
            let base = name.strip_suffix('+').unwrap_or(name);
            let base = if base.len() > 1 { base.strip_suffix('S').unwrap_or(base) } else { base };
            if !(PSQL_SAFE_META.contains(&name) || PSQL_SAFE_META.contains(&base)) || meta.contains(['|', '`', '\\']) {
                return SqlClass::Unknown(format!("the psql meta-command \\{name} is not followed"));
            }
            continue;
        }
        sql.push_str(line);
        sql.push('\n');
    }
    if sql.contains('\\') {
        // A backslash inside SQL text may be a meta-command psql runs mid-line (`\g |cmd`).
        return SqlClass::Unknown("a backslash inside SQL (psql may read it as a meta-command)".into());
    }
    classify(&sql)
}

/// Could this psql connection argument (a database name, a `key=value` conninfo string or a
/// `postgresql://` URI, positional or `-d`) change what guardsh set for the session? `options`
/// sets server parameters (`-c default_transaction_read_only=off`) over `PGOPTIONS`, and a
/// `service` reads connection settings, `options` included, from a file the agent can write.
/// Read without parsing, so that no spelling is missed: a word that is a conninfo or a URI and
/// mentions either keyword, or has a percent-escape (which a URI decodes), is refused.
pub fn psql_connection_overrides(word: &str) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    let structured = lower.contains('=') || lower.starts_with("postgres://") || lower.starts_with("postgresql://");
    if structured && (lower.contains("options") || lower.contains("service") || lower.contains('%')) {
        return Some(format!(
            "the connection string {word:?} sets options or a service, which can undo the read-only session"
        ));
    }
    None
}

/// Does the text use a psql variable (`:name`, `:'name'`, `:"name"`, `:{?name}`)? psql pastes the
/// value into its input and reads it again, so a value can carry statements and `\!`; some are
/// set by psql itself from text the SQL controls (`LAST_ERROR_MESSAGE` holds a server error).
/// Read without regard to quotes or comments, which could only be got wrong (an apostrophe in a
/// comment, dollar quoting): `'a:b'` is asked about needlessly, `::type` casts and `12:30` are not.
pub(crate) fn has_psql_variable(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ':' {
            continue;
        }
        match chars.peek() {
            Some(':') => {
                chars.next();
            }
            Some(&n) if n.is_alphabetic() || matches!(n, '_' | '\'' | '"' | '{') => return true,
            _ => {}
        }
    }
    false
}

/// Classifies SQL for MySQL as the mysql client would run it. Client commands (`system`, `\!`,
/// `source`, `\.`, ...) are not followed.
pub fn classify_mysql(text: &str) -> SqlClass {
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if first.starts_with('\\')
            || ["system", "source", "pager", "tee", "connect", "delimiter"].contains(&first.as_str())
        {
            return SqlClass::Unknown(format!("the mysql client command {first} is not followed"));
        }
    }
    classify_with(Db::Mysql, text)
}
