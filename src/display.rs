//! Renders argv words for people and for JSON without losing or hiding anything: shell quoting
//! with control, bidi and invalid bytes escaped, so an argument cannot repaint a terminal.

use std::ffi::OsStr;

use serde_json::Value;

/// Quotes one word the way a POSIX shell would read it back.
pub fn shell_quote(word: &OsStr) -> String {
    let bytes = word.as_encoded_bytes();
    let plain = |c: u8| c.is_ascii_alphanumeric() || b"-_./=:,@%+^".contains(&c);
    if !bytes.is_empty() && bytes.iter().all(|&c| plain(c)) {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    match word.to_str() {
        Some(s) if !s.chars().any(needs_escape) => format!("'{}'", s.replace('\'', r"'\''")),
        _ => ansi_c_quote(bytes),
    }
}

/// Text from a policy or an argv, printed in prose: control and bidi characters become visible
/// escapes, so nothing printed can move the cursor, retitle the terminal or reorder the line.
pub fn escape_text(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match c {
            c if needs_escape(c) && (c as u32) < 0x100 => format!("\\x{:02x}", c as u32),
            c if needs_escape(c) => format!("\\u{:04x}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// `escape_text` for each line of a multi-line report, keeping the line breaks.
pub fn escape_lines(text: &str) -> String {
    text.split('\n').map(escape_text).collect::<Vec<_>>().join("\n")
}

/// Quotes a whole argv.
pub fn shell_join<'a>(words: impl IntoIterator<Item = &'a OsStr>) -> String {
    words.into_iter().map(shell_quote).collect::<Vec<_>>().join(" ")
}

/// Characters that are invisible, reorder text, or separate lines without looking like it:
/// controls, bidi controls and marks, zero-width and other format characters, line and paragraph
/// separators, blank-looking fillers and tag characters.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
            | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}'
            | '\u{fff9}'..='\u{fffb}' | '\u{e0000}'..='\u{e007f}')
}

/// `$'...'` quoting: printable characters as themselves, everything else as an escape.
fn ansi_c_quote(bytes: &[u8]) -> String {
    let mut out = String::from("$'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\'' => out.push_str(r"\'"),
                '\\' => out.push_str(r"\\"),
                '\n' => out.push_str(r"\n"),
                '\t' => out.push_str(r"\t"),
                c if needs_escape(c) && (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('\'');
    out
}

/// A word for JSON: the string itself when it is UTF-8, otherwise `{"hex": "..."}` of its bytes.
pub fn json_word(word: &OsStr) -> Value {
    match word.to_str() {
        Some(s) => Value::String(s.to_string()),
        None => {
            let hex: String = word.as_encoded_bytes().iter().map(|b| format!("{b:02x}")).collect();
            serde_json::json!({ "hex": hex })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    #[test]
    fn quoting() {
        let q = |s: &str| shell_quote(OsStr::new(s));
        assert_eq!(q("delete"), "delete");
        assert_eq!(q("s3://b/x"), "s3://b/x");
        assert_eq!(q(""), "''");
        assert_eq!(q("a b"), "'a b'");
        assert_eq!(q("it's"), r"'it'\''s'");
        assert_eq!(q("a\x1b[2Jb"), r"$'a\x1b[2Jb'");
        assert_eq!(q("evil\u{202e}txt"), r"$'evil\u202etxt'");
        assert_eq!(shell_quote(&OsString::from_vec(vec![b'a', 0xff])), r"$'a\xff'");
        assert_eq!(escape_text("ok"), "ok");
        assert_eq!(escape_text("a\x1b]0;PWNED\x07b\u{202e}"), r"a\x1b]0;PWNED\x07b\u202e");
        for hidden in ['\u{061c}', '\u{200b}', '\u{3164}', '\u{2028}', '\u{e0041}', '\u{00ad}'] {
            let shown = escape_text(&format!("a{hidden}b"));
            assert!(!shown.contains(hidden) && shown.contains('\\'), "{hidden:?} -> {shown}");
        }
    }
}
