//! Reads policy text written in plain TOML (the subset every shipped file and example uses)
//! without building the toml crate's document tree; any other text is read by the toml crate.
//!
//! Why: a compiling call with 10,000 rules spent two thirds of its time and most of its memory
//! in toml's generic tree (a token list, an event list, then a table of spanned values) before
//! serde saw a single rule. This reader makes one pass over the bytes into a small tree that
//! borrows its strings from the text, and serde reads `RawPolicy` (or a tool file) out of it.
//!
//! How it stays exactly toml's reading: it accepts only a strict subset (below) and returns
//! nothing for anything else, and any error while serde reads the tree also gives up, so the toml
//! crate then reads the text and is the one to answer, error messages included. Inside the
//! subset its values and spans are those toml gives (`tests::agrees_with_toml_on_mutations`
//! checks every accepted text, and thousands of mutations of them, against toml itself).
//!
//! The subset: lines of `key = value`, `[a.b]` and `[[a.b]]` (keys bare or quoted without
//! escapes, no spaces inside the brackets), comments and blank lines; values are one-line
//! strings (basic, with the common escapes, or literal), decimal integers, booleans, arrays (over
//! several lines, with comments and a trailing comma) and inline tables (their keys on one line,
//! no trailing comma). No control character but tab and newline anywhere, so no CR; no dotted
//! keys; no table named twice; no table of more than `MAX_TABLE_KEYS` keys; no multi-line
//! strings, floats, dates, or other integer forms. Serde sees each table's keys in the order toml
//! gives them (sorted, as toml's map is a `BTreeMap`), whatever the order in the text.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

/// Reads `text` as a `T`, exactly as `toml::from_str` does (including its errors), by the fast
/// reader when the text is in the plain subset.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, toml::de::Error> {
    if let Some(value) = read_plain(text) {
        return Ok(value);
    }
    toml::from_str(text)
}

/// The fast reader alone: `None` when the text is outside the subset or does not read as a `T`.
pub(crate) fn read_plain<T: DeserializeOwned>(text: &str) -> Option<T> {
    let root = Parser::new(text)?.document(None)?;
    T::deserialize(De(root)).ok()
}

/// Reads `text` as a `T` without the tables of its array of tables `[[name]]`, which `T` sees
/// as an empty array: of each of those only the keys in `keys` are kept, read as an `H`, and
/// handed to `each` with the range of text it was read from, for `read_table` to read it in
/// full later (and to find what is wrong with any other key, such as a duplicate).
/// The tree then never holds more than one of them: a policy's 10,000 rules, read with the rest,
/// were most of a compiling call's memory. `None` when the text is outside the subset, an `H`
/// does not read, or a table of `[[name]]` is not written in one piece (a `[name.sub]` header
/// after another table's): the caller then reads the text whole.
pub(crate) fn read_plain_outline<T: DeserializeOwned, H: DeserializeOwned>(
    text: &str,
    name: &str,
    keys: &[&str],
    mut each: impl FnMut(Range<usize>, H),
) -> Option<T> {
    let mut hand_over = |range: Range<usize>, node: Node<'_>| -> Option<()> {
        each(range, H::deserialize(De(node)).ok()?);
        Some(())
    };
    let root = Parser::new(text)?.document(Some((name, keys, &mut hand_over)))?;
    T::deserialize(De(root)).ok()
}

/// The table of `[[name]]` written at `range` of `text`, a range `read_plain_outline` handed
/// over, read as an `R` with the spans it has in the whole text. `None` when it does not read
/// (the caller then reads the text whole, so that the toml crate says why).
pub(crate) fn read_table<R: DeserializeOwned>(text: &str, name: &str, range: Range<usize>) -> Option<R> {
    let root = Parser::within(text, range)?.document(None)?;
    let Value::Table(root) = root.value else { return None };
    let [(key, node)]: [(&str, Node<'_>); 1] = root.entries.try_into().ok()?;
    match node.value {
        Value::Tables(tables) if key == name => {
            let [table]: [Node<'_>; 1] = tables.try_into().ok()?;
            R::deserialize(De(table)).ok()
        }
        _ => None,
    }
}

/// Hands over each finished table of an array of tables (`read_plain_outline`): its name, the
/// keys kept, and where to hand them.
type Stream<'s, 'a> = Option<(&'s str, &'s [&'s str], &'s mut dyn FnMut(Range<usize>, Node<'a>) -> Option<()>)>;

/// A span the toml crate would not give (a table only implied by a longer header's path).
const NO_SPAN: usize = usize::MAX;
/// A table with more keys than this is left to toml: finding a duplicate is a scan of the keys
/// so far, so a huge table (40,000 keys: 9 s) would be a way to stall every call that compiles.
const MAX_TABLE_KEYS: usize = 256;
/// Headers with more keys than this (`[a.b.c.d.e.f.g.h.i]`) are left to toml.
const MAX_HEADER_KEYS: usize = 8;
/// Arrays nested deeper than this are left to toml.
const MAX_DEPTH: usize = 32;

struct Node<'a> {
    start: usize,
    end: usize,
    value: Value<'a>,
}

enum Value<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Bool(bool),
    Array(Vec<Node<'a>>),
    /// `[[name]]`: an array of tables.
    Tables(Vec<Node<'a>>),
    Table(Table<'a>),
}

struct Table<'a> {
    entries: Vec<(&'a str, Node<'a>)>,
    /// Only a table made by a header can get more keys from a later header's path; an inline
    /// table is closed where it is written.
    open: bool,
}

impl<'a> Table<'a> {
    fn new(open: bool) -> Self {
        Self { entries: Vec::new(), open }
    }

    fn with_capacity(keys: usize) -> Self {
        Self { entries: Vec::with_capacity(keys), open: true }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| *k == key)
    }

    /// Adds a key that is not there yet; `None` (give up) when it is, or the table is full.
    fn add(&mut self, key: &'a str, node: Node<'a>) -> Option<usize> {
        if self.entries.len() >= MAX_TABLE_KEYS || self.position(key).is_some() {
            return None;
        }
        self.entries.push((key, node));
        Some(self.entries.len() - 1)
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Arrays' values while they are read, one buffer per depth.
    scratch: Vec<Vec<Node<'a>>>,
    /// Room for this many keys in the first table of an array of tables.
    first_keys: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Option<Self> {
        // Control characters are where TOML's rules are subtle (CR only before LF, tab allowed,
        // none inside strings): leave every one of them but tab and newline to toml.
        if text.bytes().any(|b| (b < 0x20 && b != b'\t' && b != b'\n') || b == 0x7f) {
            return None;
        }
        Some(Self { text, bytes: text.as_bytes(), at: 0, scratch: Vec::new(), first_keys: 0 })
    }

    /// A parser of `range` of a text `new` accepted, keeping offsets into the whole text.
    fn within(text: &'a str, range: Range<usize>) -> Option<Self> {
        let text = text.get(..range.end)?;
        // One table of a policy's rules: about this many keys, given room at once.
        Some(Self { text, bytes: text.as_bytes(), at: range.start, scratch: Vec::new(), first_keys: 8 })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn comment(&mut self) {
        if self.peek() == Some(b'#') {
            while !matches!(self.peek(), None | Some(b'\n')) {
                self.at += 1;
            }
        }
    }

    /// Spaces, a comment, then the end of the line (or of the text).
    fn line_end(&mut self) -> Option<()> {
        self.spaces();
        self.comment();
        match self.peek() {
            None => Some(()),
            Some(b'\n') => {
                self.at += 1;
                Some(())
            }
            Some(_) => None,
        }
    }

    /// Spaces, newlines and comments, as between an array's values.
    fn blank(&mut self) {
        loop {
            self.spaces();
            self.comment();
            if self.peek() == Some(b'\n') {
                self.at += 1;
            } else {
                return;
            }
        }
    }

    fn document(mut self, mut stream: Stream<'_, 'a>) -> Option<Node<'a>> {
        let mut root = Table::new(true);
        // Where key/value lines go: entry indexes from the root (into the last table of an
        // array of tables).
        let mut current: Vec<usize> = Vec::new();
        // Where the streamed array's last table starts, while it is not yet handed over.
        let mut open: Option<usize> = None;
        loop {
            self.blank();
            match self.peek() {
                None => break,
                Some(b'[') => {
                    let Some((name, _, each)) = &mut stream else {
                        self.header(&mut root, &mut current)?;
                        continue;
                    };
                    let at = self.at;
                    let before = tables_of(&root, name);
                    self.header(&mut root, &mut current)?;
                    let after = tables_of(&root, name);
                    let inside = root.position(name).is_some_and(|i| current.first() == Some(&i));
                    if after > before {
                        // `[[name]]`: the table before it is finished.
                        if let Some(start) = open.replace(at) {
                            each(start..at, take_table(&mut root, name, after - 2)?)?;
                        }
                    } else if inside {
                        // `[name.sub]` continues the open table; after another table's header
                        // it would reopen one already handed over.
                        open?;
                    } else if let Some(start) = open.take() {
                        each(start..at, take_table(&mut root, name, after.checked_sub(1)?)?)?;
                    }
                }
                Some(_) => {
                    let (key, node) = self.key_value(0)?;
                    // Of an open streamed table's own keys, only those asked for are kept.
                    let skip = matches!((&stream, open), (Some((_, keys, _)), Some(_)) if current.len() == 1 && !keys.contains(&key));
                    if !skip {
                        descend(&mut root, &current)?.add(key, node)?;
                    }
                    self.line_end()?;
                }
            }
        }
        if let (Some((name, _, each)), Some(start)) = (&mut stream, open) {
            let last = tables_of(&root, name).checked_sub(1)?;
            each(start..self.bytes.len(), take_table(&mut root, name, last)?)?;
        }
        // toml gives the document itself no span of a value; asking for one is left to it.
        Some(Node { start: NO_SPAN, end: NO_SPAN, value: Value::Table(root) })
    }

    /// `[a.b]` or `[[a.b]]`: sets `path` to the table that the following lines fill.
    fn header(&mut self, root: &mut Table<'a>, path: &mut Vec<usize>) -> Option<()> {
        let start = self.at;
        let array = self.bytes.get(start + 1) == Some(&b'[');
        self.at += if array { 2 } else { 1 };
        let mut keys = [""; MAX_HEADER_KEYS];
        let mut count = 0;
        loop {
            *keys.get_mut(count)? = self.key()?;
            count += 1;
            if self.peek() != Some(b'.') {
                break;
            }
            self.at += 1;
        }
        let keys = &keys[..count];
        let close: &[u8] = if array { b"]]" } else { b"]" };
        if !self.bytes[self.at..].starts_with(close) {
            return None;
        }
        self.at += close.len();
        let end = self.at;
        self.line_end()?;

        let (last, parents) = keys.split_last()?;
        path.clear();
        let mut table = root;
        for key in parents {
            let i = match table.position(key) {
                Some(i) => i,
                None => {
                    let implied = Node { start: NO_SPAN, end: NO_SPAN, value: Value::Table(Table::new(true)) };
                    table.add(key, implied)?
                }
            };
            path.push(i);
            table = into_open(&mut table.entries[i].1)?;
        }
        let fresh = Node { start, end, value: Value::Table(Table::new(true)) };
        match (table.position(last), array) {
            (None, false) => {
                table.add(last, fresh)?;
            }
            (None, true) => {
                let first = Node { value: Value::Table(Table::with_capacity(self.first_keys)), ..fresh };
                table.add(last, Node { start: NO_SPAN, end: NO_SPAN, value: Value::Tables(vec![first]) })?;
            }
            (Some(i), true) => match &mut table.entries[i].1.value {
                Value::Tables(tables) => {
                    // The next `[[rule]]` most likely has as many keys as the last one: one
                    // allocation of the right size, rather than growing 4, 8 and keeping 8.
                    let keys = match tables.last().map(|t| &t.value) {
                        Some(Value::Table(t)) => t.entries.len(),
                        _ => 0,
                    };
                    tables.push(Node { value: Value::Table(Table::with_capacity(keys)), ..fresh });
                    path.push(i);
                    return Some(());
                }
                _ => return None,
            },
            // Naming a table twice (even one only implied before) is left to toml.
            (Some(_), false) => return None,
        }
        path.push(table.entries.len() - 1);
        Some(())
    }

    /// A bare key, or a quoted one without escapes.
    fn key(&mut self) -> Option<&'a str> {
        let start = self.at;
        match self.peek()? {
            q @ (b'"' | b'\'') => {
                let len = self.bytes[start + 1..].iter().position(|&b| b == q || b == b'\n' || b == b'\\')?;
                if self.bytes[start + 1 + len] != q || len == 0 {
                    return None;
                }
                self.at = start + len + 2;
                Some(&self.text[start + 1..start + 1 + len])
            }
            _ => {
                while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    self.at += 1;
                }
                (self.at > start).then(|| &self.text[start..self.at])
            }
        }
    }

    /// `key = value` (no dotted keys).
    fn key_value(&mut self, depth: usize) -> Option<(&'a str, Node<'a>)> {
        let key = self.key()?;
        self.spaces();
        if self.peek() != Some(b'=') {
            return None;
        }
        self.at += 1;
        self.spaces();
        Some((key, self.value(depth)?))
    }

    fn value(&mut self, depth: usize) -> Option<Node<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        let start = self.at;
        let value = match self.peek()? {
            b'"' => self.basic_string()?,
            b'\'' => {
                if self.bytes[start..].starts_with(b"'''") {
                    return None;
                }
                let len = self.bytes[start + 1..].iter().position(|&b| b == b'\'' || b == b'\n')?;
                if self.bytes[start + 1 + len] != b'\'' {
                    return None;
                }
                self.at = start + len + 2;
                Value::Str(Cow::Borrowed(&self.text[start + 1..start + 1 + len]))
            }
            b't' if self.bytes[start..].starts_with(b"true") => {
                self.at += 4;
                Value::Bool(true)
            }
            b'f' if self.bytes[start..].starts_with(b"false") => {
                self.at += 5;
                Value::Bool(false)
            }
            b'-' | b'0'..=b'9' => self.integer()?,
            b'[' => {
                self.at += 1;
                // Gathered in a buffer kept per depth, then copied into a list of exactly their
                // number: one allocation per array instead of growing one and shrinking it.
                if self.scratch.len() <= depth {
                    self.scratch.resize_with(depth + 1, Vec::new);
                }
                let mut items = std::mem::take(&mut self.scratch[depth]);
                loop {
                    self.blank();
                    if self.peek()? == b']' {
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    self.blank();
                    match self.peek()? {
                        b',' => self.at += 1,
                        b']' => break,
                        _ => return None,
                    }
                }
                self.at += 1;
                let mut exact = Vec::with_capacity(items.len());
                exact.append(&mut items);
                self.scratch[depth] = items;
                Value::Array(exact)
            }
            b'{' => {
                self.at += 1;
                let mut table = Table::new(false);
                self.spaces();
                if self.peek()? != b'}' {
                    loop {
                        self.spaces();
                        let (key, node) = self.key_value(depth + 1)?;
                        table.add(key, node)?;
                        self.spaces();
                        match self.peek()? {
                            b',' => self.at += 1,
                            b'}' => break,
                            _ => return None,
                        }
                    }
                }
                self.at += 1;
                Value::Table(table)
            }
            _ => return None,
        };
        // What follows a value must end it; `truex`, `1.5`, `1979-05-27` and the like are not
        // in the subset.
        match self.peek() {
            None | Some(b' ' | b'\t' | b'\n' | b',' | b']' | b'}' | b'#') => {}
            Some(_) => return None,
        }
        Some(Node { start, end: self.at, value })
    }

    /// `0` or `-?[1-9][0-9]*`, within i64.
    fn integer(&mut self) -> Option<Value<'a>> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let len = self.at - digits;
        if len == 0 || (len > 1 && self.bytes[digits] == b'0') {
            return None;
        }
        self.text[start..self.at].parse().ok().map(Value::Int)
    }

    /// A one-line `"..."` string with `\" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX` escapes.
    fn basic_string(&mut self) -> Option<Value<'a>> {
        let start = self.at;
        if self.bytes[start..].starts_with(b"\"\"\"") {
            return None;
        }
        self.at += 1;
        let mut owned: Option<String> = None;
        let mut run = self.at;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\n' => return None,
                b'\\' => {
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(&self.text[run..self.at]);
                    let (c, len) = match self.bytes.get(self.at + 1)? {
                        b'"' => ('"', 2),
                        b'\\' => ('\\', 2),
                        b'b' => ('\u{8}', 2),
                        b't' => ('\t', 2),
                        b'n' => ('\n', 2),
                        b'f' => ('\u{c}', 2),
                        b'r' => ('\r', 2),
                        b'u' => (self.hex_char(4)?, 6),
                        b'U' => (self.hex_char(8)?, 10),
                        _ => return None,
                    };
                    s.push(c);
                    self.at += len;
                    run = self.at;
                }
                _ => self.at += 1,
            }
        }
        let tail = &self.text[run..self.at];
        self.at += 1;
        Some(Value::Str(match owned {
            None => Cow::Borrowed(tail),
            Some(mut s) => {
                s.push_str(tail);
                Cow::Owned(s)
            }
        }))
    }

    /// The character of `\u` or `\U` at `self.at`, with `digits` hex digits.
    fn hex_char(&self, digits: usize) -> Option<char> {
        let hex = self.text.get(self.at + 2..self.at + 2 + digits)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        char::from_u32(u32::from_str_radix(hex, 16).ok()?)
    }
}

/// How many tables the array of tables `name` of `root` holds now.
fn tables_of(root: &Table<'_>, name: &str) -> usize {
    match root.position(name).map(|i| &root.entries[i].1.value) {
        Some(Value::Tables(tables)) => tables.len(),
        _ => 0,
    }
}

/// Takes table `i` out of the array of tables `name` of `root`.
fn take_table<'a>(root: &mut Table<'a>, name: &str, i: usize) -> Option<Node<'a>> {
    let at = root.position(name)?;
    match &mut root.entries[at].1.value {
        Value::Tables(tables) if i < tables.len() => Some(tables.remove(i)),
        _ => None,
    }
}

/// The table at `path` from `root`, entering the last table of an array of tables.
fn descend<'t, 'a>(root: &'t mut Table<'a>, path: &[usize]) -> Option<&'t mut Table<'a>> {
    let mut table = root;
    for &i in path {
        table = into_open(&mut table.entries.get_mut(i)?.1)?;
    }
    Some(table)
}

/// The table a header's path goes through: an open table, or the last of an array of tables.
fn into_open<'t, 'a>(node: &'t mut Node<'a>) -> Option<&'t mut Table<'a>> {
    match &mut node.value {
        Value::Table(t) if t.open => Some(t),
        Value::Tables(tables) => match &mut tables.last_mut()?.value {
            Value::Table(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

/// Any failure of serde reading the tree: the toml crate then reads the text and says why.
#[derive(Debug)]
struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not read by the plain TOML reader")
    }
}

impl std::error::Error for GiveUp {}

impl de::Error for GiveUp {
    fn custom<T: fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

/// Serde's view of a node, behaving as the toml crate's `ValueDeserializer` does. It owns the
/// node, so each part of the tree is freed as soon as serde has read it (a large policy's rules
/// then reuse the memory of the tree they were read from).
struct De<'a>(Node<'a>);

impl<'de> de::Deserializer<'de> for De<'_> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        match self.0.value {
            Value::Str(s) => visitor.visit_str(&s),
            Value::Int(i) => visitor.visit_i64(i),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Array(items) | Value::Tables(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Table(mut table) => {
                // toml's tables are BTreeMaps: serde sees their keys sorted (keys are unique).
                table.entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                visitor.visit_map(Entries { entries: table.entries.into_iter(), value: None })
            }
        }
    }

    // `None` is a missing key; a key that is there is always `Some`, as in toml.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, GiveUp> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        if serde_spanned::de::is_spanned(name) {
            let (start, end) = (self.0.start, self.0.end);
            if start == NO_SPAN {
                return Err(GiveUp);
            }
            return visitor.visit_map(serde_spanned::de::SpannedDeserializer::new(self, start..end));
        }
        self.deserialize_any(visitor)
    }

    // Unit variants are strings; toml's other enum forms (tables) are left to toml.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, GiveUp> {
        match &self.0.value {
            Value::Str(s) => visitor.visit_enum(IntoDeserializer::<GiveUp>::into_deserializer(s.as_ref())),
            _ => Err(GiveUp),
        }
    }

    serde::forward_to_deserialize_any! {
        bool u8 u16 u32 u64 u128 i8 i16 i32 i64 i128 f32 f64 char str string seq
        bytes byte_buf map unit ignored_any unit_struct tuple_struct tuple identifier
    }
}

impl<'de, 'a> IntoDeserializer<'de, GiveUp> for De<'a> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

struct Items<'a>(std::vec::IntoIter<Node<'a>>);

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = GiveUp;

    fn next_element_seed<S: de::DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, GiveUp> {
        self.0.next().map(|node| seed.deserialize(De(node))).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'a> {
    entries: std::vec::IntoIter<(&'a str, Node<'a>)>,
    value: Option<Node<'a>>,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = GiveUp;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, GiveUp> {
        let Some((key, node)) = self.entries.next() else { return Ok(None) };
        self.value = Some(node);
        seed.deserialize(IntoDeserializer::<GiveUp>::into_deserializer(key)).map(Some)
    }

    fn next_value_seed<S: de::DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, GiveUp> {
        seed.deserialize(De(self.value.take().ok_or(GiveUp)?))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use toml::Spanned;

    use super::*;
    use crate::rules::schema::{RawPolicy, RawRule};

    /// Any TOML value with every value's span, to compare spans wherever they are.
    #[derive(Debug)]
    #[allow(dead_code, reason = "read through Debug, which the lint does not count")]
    enum Any {
        Str(String),
        Int(i64),
        Bool(bool),
        Seq(Vec<Spanned<Any>>),
        Map(BTreeMap<String, Spanned<Any>>),
    }

    impl<'de> Deserialize<'de> for Any {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Any;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a value")
                }
                fn visit_str<E>(self, v: &str) -> Result<Any, E> {
                    Ok(Any::Str(v.into()))
                }
                fn visit_i64<E>(self, v: i64) -> Result<Any, E> {
                    Ok(Any::Int(v))
                }
                fn visit_bool<E>(self, v: bool) -> Result<Any, E> {
                    Ok(Any::Bool(v))
                }
                fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Any, A::Error> {
                    let mut v = Vec::new();
                    while let Some(x) = a.next_element()? {
                        v.push(x);
                    }
                    Ok(Any::Seq(v))
                }
                fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Any, A::Error> {
                    let mut m = BTreeMap::new();
                    while let Some((k, v)) = a.next_entry()? {
                        m.insert(k, v);
                    }
                    Ok(Any::Map(m))
                }
            }
            d.deserialize_any(V)
        }
    }

    /// When the fast reader reads `text` as a `T`, toml reads the same value (spans included).
    /// Returns whether the fast reader read it.
    fn agrees<T: DeserializeOwned + fmt::Debug>(text: &str) -> bool {
        let Some(fast) = read_plain::<T>(text) else { return false };
        match toml::from_str::<T>(text) {
            Ok(slow) => assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "the readers differ on:\n{text}"),
            Err(e) => panic!("the fast reader accepted what toml rejects ({e}):\n{text}"),
        }
        true
    }

    /// When the outline reads `text` (a policy), it reads what the whole reader does: the same
    /// settings, and each rule, read from the range handed over, the same as in the whole text.
    /// Where toml rejects the text, some rule does not read from its range (a compile then reads
    /// the text whole and toml says why). `None` when the outline did not read it, else whether
    /// toml accepts it.
    fn outline_agrees(text: &str) -> Option<bool> {
        let mut found: Vec<(Range<usize>, String)> = Vec::new();
        // What the compile reads of each rule in the first pass, and the keys it keeps.
        use crate::rules::compile::{HEAD, Head};
        let outline = read_plain_outline::<RawPolicy, Head>(text, "rule", HEAD, |range, head| {
            found.push((range, head.id));
        });
        let outline = outline?;
        assert!(outline.rule.is_empty(), "the outline kept rules:\n{text}");
        let rules: Option<Vec<Spanned<Box<RawRule>>>> =
            found.iter().map(|(range, _)| read_table(text, "rule", range.clone())).collect();
        match toml::from_str::<RawPolicy>(text) {
            Ok(mut whole) => {
                let whole_rules = std::mem::take(&mut whole.rule);
                assert_eq!(format!("{outline:?}"), format!("{whole:?}"), "the outline differs on:\n{text}");
                let ids: Vec<&String> = whole_rules.iter().map(|r| r.get_ref().id.get_ref()).collect();
                assert_eq!(found.iter().map(|(_, id)| id).collect::<Vec<_>>(), ids, "{text}");
                if let Some(rules) = rules {
                    assert_eq!(format!("{rules:?}"), format!("{whole_rules:?}"), "a rule read differs:\n{text}");
                }
                Some(true)
            }
            Err(e) => {
                assert!(rules.is_none(), "every rule read from its range, but toml rejects ({e}):\n{text}");
                Some(false)
            }
        }
    }

    fn shipped() -> Vec<&'static str> {
        let mut texts = vec![include_str!("../../rules.toml.example")];
        texts.extend(crate::rules::PACKS.iter().map(|p| p.text));
        texts
    }

    /// The speed is only real if the files people have are in the subset.
    #[test]
    fn shipped_files_are_read_fast_and_as_toml_reads_them() {
        for text in shipped() {
            assert!(agrees::<RawPolicy>(text), "a shipped policy is outside the plain subset");
            assert_eq!(outline_agrees(text), Some(true), "a shipped policy's rules are not found in one pass");
            assert!(agrees::<toml::Table>(text));
        }
        for (name, text) in crate::tools::BUILTIN {
            assert!(agrees::<crate::tools::RawToolSpec>(text), "shims/{name}.toml is outside the plain subset");
        }
        let generated: String = (0..300)
            .map(|i| format!("[[rule]]\nid = \"g-{i}\"\ntool = \"kubectl\"\naction = \"ask\"\nreason = \"r\"\nargs = [\"v{i}\", \"*\"]\n\n"))
            .collect();
        assert!(agrees::<RawPolicy>(&generated));
    }

    /// Small documents using each construct of the subset, and some just outside it.
    const SEEDS: &[&str] = &[
        "a = \"x\\ty\\u00e9\\U0001F600\\\\\\\"\"\nb = 'lit'\nc = -12\nd = 0\ne = true\nf = false\n",
        "s = [ \"a\" , 'b' ,\n  # c\n  \"c\", ]  # x\nt = { k = \"v\", \"q\" = 'w' }\nn = [[1, 2], [], [\"x\"]]\n",
        "[tools.kubectl]\ndefault = \"ask\"\nvalue_flags = [\"--a\"]\n[tools.helm]\nabbrev = true\n",
        "[[rule]]\nid = \"r1\"   # c\ntool = \"kubectl\"\naction = \"deny\"\nreason = \"no\"\nargs = [\"delete\", \"*\"]\nflags = { \"--namespace\" = \"prod*\" }\n\n[[rule]]\nid = \"r2\"\ntool = \"git\"\naction = \"allow\"\nreason = \"ok\"\n",
        "[settings]\nmode = \"ci\"\nstrip = [\"X_*\"]\napproval_timeout = 30\n[posture]\nread = \"allow\"\n[[rule]]\nid = \"a\"\n[rule.flags]\nx = \"y\"\n",
        "[a]\nb = 1\n[a.c]\nd = 2\n[[a.e]]\nf = 3\n[[a.e]]\nf = 4\n[a.e.g]\nh = 5\n",
        "x = \"\"\n'y' = ''\n\"z\" = {}\nw = []\n[\"q\"]\n[q.'r']\n",
        "[mint.psql]\nprovider = \"postgres\"\nport = 5432\nenv = { PGUSER = \"username\" }\nttl = 300\n",
    ];

    /// Pieces that make or break TOML: the mutations insert them anywhere.
    const PIECES: &[&str] = &[
        "\"",
        "'",
        "[",
        "]",
        "[[",
        "]]",
        "{",
        "}",
        ",",
        "=",
        ".",
        "#",
        "\n",
        " ",
        "\t",
        "\\",
        "\\u00e9",
        "\\x41",
        "\\e",
        "\\uD800",
        "\"\"\"",
        "'''",
        "0",
        "01",
        "-",
        "+1",
        "1.5",
        "_",
        "a",
        "é",
        "\r\n",
        "\r",
        "true",
        "fals",
        "1979-05-27",
        "0x10",
        "inf",
        "nan",
        "rule",
        "tools",
        "[[rule]]\n",
        "[tools.kubectl]\n",
        "[a]\n",
        "id = \"x\"\n",
        "a.b = 1\n",
        "\u{7f}",
        "\u{0}",
        "\u{feff}",
        "x = { a = 1,\n b = 2 }\n",
        "x = { a = 1, }\n",
        "9223372036854775808",
        "-9223372036854775808",
        "  # c\n",
    ];

    /// A table too large to check for duplicates cheaply is left to toml, which still reads it.
    #[test]
    fn a_huge_table_is_left_to_toml() {
        let over = MAX_TABLE_KEYS + 1;
        let keys: String = (0..over).map(|i| format!("k{i} = {i}\n")).collect();
        let headers: String = (0..over).map(|i| format!("[t{i}]\n")).collect();
        let inline = format!("t = {{ {} }}\n", (0..over).map(|i| format!("k{i} = 1")).collect::<Vec<_>>().join(", "));
        for (text, len) in [(&keys, over), (&headers, over), (&inline, 1)] {
            assert!(read_plain::<toml::Table>(text).is_none(), "{text}");
            assert_eq!(from_str::<toml::Table>(text).expect("toml reads it").len(), len);
        }
        let full: String = (0..MAX_TABLE_KEYS).map(|i| format!("k{i} = {i}\n")).collect();
        assert!(agrees::<toml::Table>(&full));
    }

    /// Serde sees keys in toml's order (sorted), not the text's: a type that keeps the order it
    /// is given reads the same from both.
    #[test]
    fn keys_reach_serde_in_the_order_toml_gives() {
        #[derive(Debug)]
        #[allow(dead_code, reason = "read through Debug, which the lint does not count")]
        struct Order(Vec<String>);
        impl<'de> Deserialize<'de> for Order {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Order;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a table")
                    }
                    fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Order, A::Error> {
                        let mut keys = Vec::new();
                        while let Some((k, _)) = a.next_entry::<String, de::IgnoredAny>()? {
                            keys.push(k);
                        }
                        Ok(Order(keys))
                    }
                }
                d.deserialize_map(V)
            }
        }
        assert!(agrees::<Order>("zeta = 1\nalpha = 2\n\"Mid\" = 3\n[b]\n[a]\n"));
    }

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            // xorshift64*: deterministic, so a failure reproduces.
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
        }
    }

    fn mutate(rng: &mut Rng, text: &str) -> String {
        let mut s = text.to_string();
        for _ in 0..1 + rng.below(3) {
            let boundaries: Vec<usize> = (0..=s.len()).filter(|&i| s.is_char_boundary(i)).collect();
            let at = boundaries[rng.below(boundaries.len())];
            match rng.below(4) {
                0 | 1 => s.insert_str(at, PIECES[rng.below(PIECES.len())]),
                2 => {
                    let end = boundaries.iter().copied().find(|&e| e > at + rng.below(4)).unwrap_or(s.len());
                    s.replace_range(at..end, "");
                }
                _ => {
                    let lines: Vec<&str> = s.split_inclusive('\n').collect();
                    let line = lines[rng.below(lines.len())].to_string();
                    s.insert_str(boundaries[rng.below(boundaries.len())], &line);
                }
            }
        }
        s
    }

    /// Every mutation of every seed that the fast reader accepts reads as toml reads it: as a
    /// plain value tree, with every span, and as a policy. A count of each kind keeps the test from
    /// passing by accepting nothing (or by giving up on everything toml rejects alone).
    #[test]
    fn agrees_with_toml_on_mutations() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut accepted, mut given_up, mut policies) = (0, 0, 0);
        // Outlines read, of policies toml accepts and of ones it rejects.
        let mut outlines = [0, 0];
        let seeds: Vec<String> = SEEDS
            .iter()
            .map(|s| s.to_string())
            .chain(include_str!("../../rules.toml.example").split("\n[").skip(1).map(|s| format!("[{s}")))
            .collect();
        for seed in &seeds {
            assert!(agrees::<toml::Table>(seed), "seed outside the subset:\n{seed}");
            for _ in 0..2000 {
                let text = mutate(&mut rng, seed);
                let read = agrees::<toml::Table>(&text);
                agrees::<BTreeMap<String, Spanned<Any>>>(&text);
                policies += usize::from(agrees::<RawPolicy>(&text));
                if let Some(valid) = outline_agrees(&text) {
                    outlines[usize::from(valid)] += 1;
                }
                if read {
                    accepted += 1;
                } else if toml::from_str::<toml::Table>(&text).is_ok() {
                    given_up += 1;
                }
            }
        }
        eprintln!(
            "{accepted} read fast, {given_up} valid but left to toml, {policies} policies, outlines {outlines:?}"
        );
        assert!(accepted > 2 * given_up, "only {accepted} mutations were read fast, {given_up} left to toml");
        assert!(given_up > 0 && policies > 100, "{given_up} left to toml, {policies} policies");
        // Both ways: outlines of valid policies, and of invalid ones whose rules then do not read.
        assert!(outlines[1] > 100 && outlines[0] > 10, "outlines {outlines:?}");
    }

    /// Review: hand-written attacks on the subset's edges. Each is read by all three views; a
    /// case the fast reader accepts must read as toml reads it.
    #[test]
    fn review_cases() {
        let cases: &[&str] = &[
            // escapes
            "a = \"\\u0000\"\n",
            "a = \"\\u007F\"\n",
            "a = \"\\u00E9\\u00e9\"\n",
            "a = \"\\U0010FFFF\"\n",
            "a = \"\\U00110000\"\n",
            "a = \"\\uD800\"\n",
            "a = \"\\uDFFF\"\n",
            "a = \"\\U0000D800\"\n",
            "a = \"\\ud83d\\ude00\"\n",
            "a = \"\\e\"\n",
            "a = \"\\x41\"\n",
            "a = \"\\u+0e9\"\n",
            "a = \"\\u0e9\"\n",
            "a = \"\\u00e\"\n",
            "a = \"\\U+0000041\"\n",
            "a = \"\\u00é\"\n",
            "a = \"\\é\"\n",
            "a = \"\\ \"\n",
            "a = \"\\\n\"\n",
            "a = \"\\",
            "a = \"\\u",
            "a = \"\\u00",
            "a = \"x",
            "a = \"x\\\"",
            "a = \"\\\\\"\n",
            "a = \"\\\\\\\"\"\n",
            "a = \"\"\n",
            "a = \"\"\"\"\n",
            "a = \"\"\"x\"\"\"\n",
            "a = \"\" \"\"\n",
            "a = \"\"\"\"\"\"\n",
            "a = \"\\/\"\n",
            "a = \"\\a\"\n",
            "a = \"\\0\"\n",
            "a = \"\\b\\t\\n\\f\\r\"\n",
            "a = \"é\u{85}\u{a0}\u{2028}\u{feff}\u{fffe}\u{10ffff}\"\n",
            // literal strings
            "a = ''\n",
            "a = '''\n",
            "a = ''''''\n",
            "a = '\\'\n",
            "a = '\\u0041'\n",
            "a = 'x''y'\n",
            "a = 'x'\n'y' = 1\n",
            "a = '\"'\n",
            "a = 'a#b'\n",
            "a = 'x\n",
            "a = '",
            "a = '\t'\n",
            "a = \"\t\"\n",
            // keys
            "\"\" = 1\n",
            "'' = 1\n",
            "\"a\" = 1\na = 2\n",
            "'a' = 1\n\"a\" = 2\n",
            "\"a b\" = 1\n",
            "\"a.b\" = 1\na.b = 2\n",
            "\"a.b\" = 1\n[a]\nb = 2\n",
            "'a\\b' = 1\n",
            "\"a\\u0062\" = 1\nab = 2\n",
            "é = 1\n",
            "\"é\" = 1\n",
            "-=1\n",
            "_=1\n",
            "1 = 1\n",
            "1.2 = 1\n",
            "true = false\n",
            "a-b_c = 1\n",
            "a = 1\nA = 2\n",
            "a=1\n",
            "a\t=\t1\t\n",
            "a =1\n",
            " a = 1\n",
            "\ta = 1\n",
            "a = 1 b = 2\n",
            "a = 1, b = 2\n",
            "a\n= 1\n",
            "a =\n1\n",
            "= 1\n",
            "a = \n",
            "a",
            "a =",
            "[a]b=1\n",
            "\"a\"\"b\" = 1\n",
            "'a''b' = 1\n",
            "\"a\" b = 1\n",
            "\"a\"= 1\n",
            "'a'.'b' = 1\n",
            "\"#\" = 1\n",
            "\"[a]\" = 1\n[\"[a]\"]\n",
            "\"a\u{85}\" = 1\n",
            "\"\u{feff}\" = 1\n",
            // duplicate keys and tables
            "a = 1\na = 2\n",
            "[a]\n[a]\n",
            "[a]\nb = 1\n[a.b]\n",
            "[a.b]\n[a]\n",
            "[a.b]\n[a.b]\n",
            "[a.b]\n[a.c]\n",
            "[a]\nb = {}\n[a.b.c]\n",
            "a = {}\n[a.b]\n",
            "a = []\n[[a]]\n",
            "a = [{}]\n[[a]]\n",
            "a = [{}]\n[a.b]\n",
            "[[a]]\n[a]\n",
            "[a]\n[[a]]\n",
            "[[a]]\n[a.b]\nc = 1\n[[a]]\n[a.b]\nc = 2\n",
            "[[a]]\nb = 1\n[a.b]\n",
            "[[a]]\n[[a.b]]\n[[a]]\n[[a.b]]\nx = 1\n",
            "[[a.b]]\n[a]\n",
            "[[a.b]]\n[[a]]\n",
            "[a.b]\n[[a]]\n",
            "[[a]]\n[[a.b]]\n[a.b]\n",
            "[[a]]\n[a.b]\n[[a.b]]\n",
            "[a]\n[a.b]\n[a.b.c]\nd = 1\n",
            "[a]\nx = 1\n[b]\nx = 2\n[a.c]\nx = 3\n",
            "[x]\n[\"x\"]\n",
            "[x]\n['x']\n",
            "[[x]]\n[['x']]\n",
            "[\"a\".b]\n[a.\"b\"]\n",
            "a = 1\n[a]\n",
            "a = 1\n[[a]]\n",
            "a = {b = 1, b = 2}\n",
            "a = {b = 1, \"b\" = 2}\n",
            "a = {b = {}}\n[a.b]\n",
            "[a]\nb = [1]\n[[a.b]]\n",
            "[a.b.c]\n[a.b.d]\n[a.e]\n",
            "[a.b.c.d.e.f.g.h]\n",
            "[a.b.c.d.e.f.g.h.i]\n",
            "[[a.b.c.d.e.f.g.h]]\n[[a.b.c.d.e.f.g.h]]\n",
            "[[rule]]\n[rule.flags]\nx = 'y'\n[rule.flags]\n",
            "[[rule]]\nflags = {}\n[rule.flags]\n",
            "[[a]]\nx = 1\n[[b]]\n[[a]]\nx = 2\n[a.c]\n[[b]]\n",
            // headers, odd forms
            "[ a ]\n",
            "[a ]\n",
            "[ a]\n",
            "[[ a ]]\n",
            "[ [a] ]\n",
            "[[a] ]\n",
            "[[a]]]\n",
            "[a]]\n",
            "[[a]\n",
            "[a\n",
            "[\n",
            "[[\n",
            "[[",
            "[",
            "[]\n",
            "[[]]\n",
            "[.]\n",
            "[a.]\n",
            "[.a]\n",
            "[a..b]\n",
            "[a . b]\n",
            "[a] # c\n",
            "[a]#c\n",
            "[a]\t\n",
            "[a]x\n",
            "[a] [b]\n",
            "[a]\n\n\n[b]\n",
            "  [a]\n",
            "\t[[a]]\n",
            "[a] = 1\n",
            "[\"\"]\n",
            "['']\n",
            "[\"a\"]\n",
            "['a'.\"b\".c]\n",
            "[a=1]\n",
            "[{a=1}]\n",
            "[[{}]]\n",
            "[a.{b}]\n",
            "[\"a]\"]\n",
            "[\"a\\\"]\n",
            // integers
            "a = 0\n",
            "a = -0\n",
            "a = +0\n",
            "a = +1\n",
            "a = 00\n",
            "a = 01\n",
            "a = -01\n",
            "a = -00\n",
            "a = 1_000\n",
            "a = 1__0\n",
            "a = _1\n",
            "a = 1_\n",
            "a = 9223372036854775807\n",
            "a = 9223372036854775808\n",
            "a = -9223372036854775808\n",
            "a = -9223372036854775809\n",
            "a = 18446744073709551615\n",
            "a = 99999999999999999999999\n",
            "a = 0x10\n",
            "a = 0o7\n",
            "a = 0b1\n",
            "a = 1e5\n",
            "a = 1.0\n",
            "a = 1.\n",
            "a = .1\n",
            "a = -\n",
            "a = --1\n",
            "a = - 1\n",
            "a = 1979-05-27\n",
            "a = 12:30:00\n",
            "a = 1 2\n",
            "a = 1#c\n",
            "a = 1 #c\n",
            "a = 1,\n",
            "a = 1]\n",
            "a = 1}\n",
            "a = 1\t\n",
            "a = 1=\n",
            "a = 1{}\n",
            "a = 1[\n",
            "a = 1'x'\n",
            "a = 1\"x\"\n",
            "a = inf\n",
            "a = -inf\n",
            "a = nan\n",
            "a = 1é\n",
            "a = 0\u{a0}\n",
            // booleans
            "a = true\n",
            "a = false\n",
            "a = truex\n",
            "a = true1\n",
            "a = true_\n",
            "a = True\n",
            "a = tru\n",
            "a = falsey\n",
            "a = true#x\n",
            "a = [true,false]\n",
            "a = {b=true}\n",
            "a = true.x\n",
            "a = true=\n",
            "a = true'\n",
            "a = trueé\n",
            // whitespace, comments, control
            "# é \u{85} \u{2028} \u{feff}\na = 1\n",
            "a = 1 # \u{fffe}\n",
            "#\n",
            "",
            "\n",
            "  \n\t\n",
            "a = 1\r\n",
            "a = 1\r",
            "\u{feff}a = 1\n",
            "a = 1\n\u{feff}",
            "\u{feff}",
            "a = 1 \u{feff}\n",
            "a = \u{feff}1\n",
            "a = 1\u{b}\n",
            "# \u{7f}\n",
            "a = \"\u{7f}\"\n",
            "a = '\u{1}'\n",
            "a = 1\u{c}\n",
            "a = [\n\n\n]\n",
            "a = [ # c\n 1 # d\n , # e\n 2 # f\n ] # g\n",
            "a = [1 # c ]\n",
            "a = { b = 1 # c\n }\n",
            "a = { b = 1 } # c\n",
            "a = {#c\n}\n",
            // arrays
            "a = []\n",
            "a = [ ]\n",
            "a = [,]\n",
            "a = [1,]\n",
            "a = [1,,]\n",
            "a = [1 2]\n",
            "a = [1\n,2]\n",
            "a = [1,\n2,\n]\n",
            "a = [[]]\n",
            "a = [[],[[]]]\n",
            "a = [1, 'x', true, [], {}]\n",
            "a = [{b = 1}, {b = 'x'}]\n",
            "a = [1]]\n",
            "a = [[1]\n",
            "a = [\n",
            "a = [1,\n",
            "a = ]\n",
            "a = [1}\n",
            "a = [{]\n",
            "a = [{}\n]\n",
            "a = [{\n}]\n",
            "a = [\"\"\"x\"\"\"]\n",
            "a = [1.5]\n",
            "a = [ 1 ,2,3 ,]\n",
            "a = [\ta\t]\n",
            // inline tables
            "a = {}\n",
            "a = { }\n",
            "a = {,}\n",
            "a = {b = 1,}\n",
            "a = {b = 1, }\n",
            "a = {b = 1\n}\n",
            "a = {\nb = 1}\n",
            "a = {b = 1 c = 2}\n",
            "a = {b.c = 1}\n",
            "a = {b = [1,\n2]}\n",
            "a = {b = [ # c\n1]}\n",
            "a = {b = {c = {}}}\n",
            "a = {b = 1}}\n",
            "a = {{}}\n",
            "a = {b}\n",
            "a = {b =}\n",
            "a = {= 1}\n",
            "a = {'' = 1}\n",
            "a = {\"\" = 1}\n",
            "a = { b = 1 , c = 2 }\n",
            "a = {b=1,c=2}\n",
            "a = {b = 1}x\n",
            "a = {b = 1}.c\n",
            "a = {\tb\t=\t1\t}\n",
            // policies
            "[settings]\nmode = \"ci\"\n",
            "[settings]\nmode = \"CI\"\n",
            "[settings]\nmode = {ci = {}}\n",
            "[settings]\nmode = 1\n",
            "[settings]\nwait = true\napproval_timeout = -1\n",
            "[settings]\napproval_timeout = 9223372036854775807\n",
            "[mint.psql]\nprovider = \"postgres\"\nport = 65535\n",
            "[mint.psql]\nprovider = \"postgres\"\nport = 65536\n",
            "[mint.psql]\nprovider = \"postgres\"\nport = -1\n",
            "[mint.psql]\nprovider = 'postgres'\nenv = {}\nttl = 0\n",
            "[tools.kubectl]\nverb_depth = -1\n",
            "[tools.kubectl]\nverb_depth = 3\nsyntax = 'gnu'\n",
            "[[rule]]\nid = \"a\"\ntool = \"k\"\naction = \"deny\"\nreason = \"r\"\n",
            "[[rule]]\nid = \"a\"\ntool = \"k\"\naction = \"Deny\"\nreason = \"r\"\n",
            "[[rule]]\nid = \"a\"\ntool = \"k\"\naction = {deny = {}}\nreason = \"r\"\n",
            "[[rule]]\nid = \"a\"\ntool = \"k\"\naction = \"deny\"\nreason = \"r\"\nsql = \"read\"\nexception = false\n",
            "[[rule]]\nid = \"a\"\ntool = \"k\"\naction = \"deny\"\nreason = \"r\"\n[rule.flags]\n\"--ns\" = \"p\"\n",
            "[[rule]]\nid = \"a\"\ntool = \"k\"\naction = \"deny\"\nreason = \"r\"\n[[rule]]\nid = \"b\"\ntool = \"k\"\naction = \"ask\"\nreason = \"r\"\n",
            "rule = [{id = \"a\", tool = \"k\", action = \"deny\", reason = \"r\"}]\n",
            "rule = [{id = \"a\", tool = \"k\", action = \"deny\", reason = \"r\"}]\n[[rule]]\n",
            "[[rule]]\nid = 'a'\ntool = 'k'\naction = 'deny'\nreason = 'r'\nunknown = 1\n",
            "unknown = 1\n",
            "[unknown]\n",
            "[tools]\n[tools.k]\ndefault = 'deny'\n",
            "tools = {k = {default = 'deny'}}\n",
            "[tools.k]\n[tools.k.aliases]\nx = 'y'\n",
            "[posture]\nread = 'allow'\n[posture.x]\n",
            "[sandbox]\nreadable = ['/']\nnested_user_namespaces = true\n",
            "[policy]\nrego = ['/x']\non_error = 'ask'\ntimeout_ms = 1\n",
            "[run]\nagent_keys = ['X']\n",
            "[settings]\npacks = []\n",
            "[settings]\npacks = ['default', 'x']\nstrip = []\nkeep = ['A']\n",
            "[settings.mode]\n",
            "settings = {}\n",
            "settings = []\n",
            "rule = []\n",
            "rule = {}\n",
            "[rule]\n",
            "[[settings]]\n",
            "[[tools.k]]\n",
            "[[mint.x]]\nprovider = 'sts'\n",
            "settings = ['ci']\n",
            "[[rule]]\nid = ['a']\n",
            "rule = [['a', 'k', 'deny', 'r']]\n",
            "[tools.k]\nsyntax = 'GNU'\n",
            "[sandbox]\nreadable = '/'\n",
        ];
        let mut read = 0;
        for text in cases {
            let a = agrees::<toml::Table>(text);
            let b = agrees::<BTreeMap<String, Spanned<Any>>>(text);
            let c = agrees::<RawPolicy>(text);
            read += usize::from(a || b || c);
        }
        // Deep nesting, near and past the limits of both readers.
        for depth in [1, 30, 32, 33, 34, 40, 79, 80, 81, 200] {
            for (open, close) in [("[", "]"), ("{b = ", "}"), ("[{b = ", "}]")] {
                let text = format!("a = {}1{}\n", open.repeat(depth), close.repeat(depth));
                read += usize::from(agrees::<toml::Table>(&text));
                agrees::<BTreeMap<String, Spanned<Any>>>(&text);
            }
        }
        for keys in [7, 8, 9, 80, 81] {
            let path = vec!["k"; keys].join(".");
            for text in [format!("[{path}]\nx = 1\n"), format!("[[{path}]]\nx = 1\n[[{path}]]\n")] {
                read += usize::from(agrees::<toml::Table>(&text));
                agrees::<BTreeMap<String, Spanned<Any>>>(&text);
            }
        }
        eprintln!("review_cases: {read} read fast ({} hand-written cases)", cases.len());
    }

    /// Review: a bigger mutation run with more pieces, and every short text over the subset's own
    /// bytes, reading all views (no panics, no disagreements).
    #[test]
    fn review_fuzz() {
        const EXTRA: &[&str] = &[
            "\\U0001F600",
            "\\U00110000",
            "\\uDFFF",
            "\\u0000",
            "\\\"",
            "\\\\",
            "\\t",
            "\\/",
            "-0",
            "+0",
            "00",
            "9223372036854775807",
            "-9223372036854775809",
            "18446744073709551616",
            "[[a]]\n",
            "[a.b]\n",
            "[a]\n[a.b]\n",
            "[[a]]\n[a.b]\n",
            "[[a.b]]\n",
            "a = {}\n",
            "a = []\n",
            "a = [{}]\n",
            "{}",
            "[]",
            "'a'",
            "\"a\"",
            "''",
            "\"\"",
            "\u{85}",
            "\u{2028}",
            "\u{a0}",
            "\u{fffe}",
            "\u{10ffff}",
            "#\n",
            "= ",
            " =",
            "a = 1\n",
            "b = 'x'\n",
            "x = [\n  1,\n  # c\n  2,\n]\n",
            "[[rule]]\nid = \"z\"\ntool = \"k\"\naction = \"deny\"\nreason = \"r\"\n",
            "action = \"deny\"\n",
            "action = \"Deny\"\n",
            "port = 70000\n",
            "[mint.x]\nprovider = 'sts'\n",
        ];
        let pieces: Vec<&str> = PIECES.iter().chain(EXTRA).copied().collect();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let (mut accepted, mut policies, mut total) = (0, 0, 0);
        let mut outlines = [0, 0];
        let seeds: Vec<String> = SEEDS
            .iter()
            .map(|s| s.to_string())
            .chain(include_str!("../../rules.toml.example").split("\n[").skip(1).map(|s| format!("[{s}")))
            .chain(["[[a]]\nb = 1\n[a.c]\nd = [1, {e = 'f'}]\n[[a]]\n[[a.g]]\n".to_string()])
            .collect();
        for seed in &seeds {
            for _ in 0..6000 {
                let mut text = seed.clone();
                for _ in 0..1 + rng.below(4) {
                    let boundaries: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
                    let at = boundaries[rng.below(boundaries.len())];
                    if rng.below(3) == 0 {
                        let end = boundaries.iter().copied().find(|&e| e > at + rng.below(6)).unwrap_or(text.len());
                        text.replace_range(at..end, "");
                    } else {
                        text.insert_str(at, pieces[rng.below(pieces.len())]);
                    }
                }
                total += 1;
                accepted += usize::from(agrees::<toml::Table>(&text));
                agrees::<BTreeMap<String, Spanned<Any>>>(&text);
                policies += usize::from(agrees::<RawPolicy>(&text));
                if let Some(valid) = outline_agrees(&text) {
                    outlines[usize::from(valid)] += 1;
                }
            }
        }
        // Exhaustive short texts over an alphabet of the subset's own bytes.
        let alphabet = ["a", "=", "1", "\"", "'", "[", "]", "{", "}", ",", ".", "\n", " ", "#", "\\", "-", "0"];
        let mut short = 0;
        for len in 1..=5u32 {
            let n = alphabet.len().pow(len);
            for mut i in 0..n {
                let mut text = String::new();
                for _ in 0..len {
                    text.push_str(alphabet[i % alphabet.len()]);
                    i /= alphabet.len();
                }
                short += usize::from(agrees::<toml::Table>(&text));
                agrees::<BTreeMap<String, Spanned<Any>>>(&text);
            }
        }
        eprintln!(
            "review_fuzz: {accepted} of {total} read fast, {policies} policies, outlines {outlines:?}, {short} short texts read fast"
        );
        assert!(outlines[1] > 100 && outlines[0] > 10, "outlines {outlines:?}");
    }
}
