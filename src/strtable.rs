//! Sorted string tables for tool knowledge: every key in one text, found by binary search.
//!
//! Why not hash maps: a shim call decodes its tool's knowledge from the policy cache on every
//! call, and a hash map of strings costs an allocation, a UTF-8 check and an insert per key (for
//! kubectl's 104 flag spellings and 75 resource names, half of a cached call's instructions). A
//! table decodes as one text (one allocation, one UTF-8 check) and an array of offsets, and a
//! lookup is a dozen comparisons. The tables are built once, when a policy is compiled, and only
//! read afterwards.
//!
//! A decoded table is checked before use (offsets in order, on character boundaries, keys
//! sorted and distinct): the cache file is the user's to write, and a damaged one must be a
//! miss, never a panic or a lookup that silently finds nothing.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// Strings in one text: string `i` ends at `ends[i]` and starts where string `i - 1` ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "(String, Vec<u32>)", into = "(String, Vec<u32>)")]
pub struct StrList {
    text: String,
    ends: Vec<u32>,
}

impl TryFrom<(String, Vec<u32>)> for StrList {
    type Error = &'static str;

    fn try_from((text, ends): (String, Vec<u32>)) -> Result<Self, Self::Error> {
        let mut start = 0usize;
        for &end in &ends {
            let end = end as usize;
            if end < start || end > text.len() || !text.is_char_boundary(end) {
                return Err("a string table's offsets do not fit its text");
            }
            start = end;
        }
        if start != text.len() {
            return Err("a string table's text is longer than its strings");
        }
        Ok(StrList { text, ends })
    }
}

impl From<StrList> for (String, Vec<u32>) {
    fn from(l: StrList) -> Self {
        (l.text, l.ends)
    }
}

impl StrList {
    fn push(&mut self, s: &str) {
        self.text.push_str(s);
        // Tool knowledge is kilobytes; a text past 4 GiB cannot be built from a policy file.
        self.ends.push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i` (empty past the end, which a checked list never reaches).
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends.get(i - 1).map_or(0, |&e| e as usize) };
        let end = self.ends.get(i).map_or(start, |&e| e as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Where `key` is, in a sorted list.
    fn find(&self, key: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).cmp(key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    /// One pass over the text (a decoded table is checked on every shim call).
    fn is_sorted_and_distinct(&self) -> bool {
        let text = self.text.as_bytes();
        let (mut start, mut prev): (usize, &[u8]) = (0, &[]);
        for (i, &end) in self.ends.iter().enumerate() {
            let Some(word) = text.get(start..end as usize) else { return false };
            if i > 0 && prev >= word {
                return false;
            }
            (start, prev) = (end as usize, word);
        }
        true
    }
}

/// A map from strings to `V`, built once, read by binary search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "(StrList, Vec<V>)", into = "(StrList, Vec<V>)")]
#[serde(bound(serialize = "V: Serialize + Clone", deserialize = "V: Deserialize<'de>"))]
pub struct StrTable<V> {
    keys: StrList,
    values: Vec<V>,
}

impl<V> Default for StrTable<V> {
    fn default() -> Self {
        StrTable { keys: StrList::default(), values: Vec::new() }
    }
}

impl<V> TryFrom<(StrList, Vec<V>)> for StrTable<V> {
    type Error = &'static str;

    fn try_from((keys, values): (StrList, Vec<V>)) -> Result<Self, Self::Error> {
        if keys.len() != values.len() || !keys.is_sorted_and_distinct() {
            return Err("a string table's keys are not sorted, or do not match its values");
        }
        Ok(StrTable { keys, values })
    }
}

impl<V> From<StrTable<V>> for (StrList, Vec<V>) {
    fn from(t: StrTable<V>) -> Self {
        (t.keys, t.values)
    }
}

impl<V> FromIterator<(String, V)> for StrTable<V> {
    /// Sorted by key; of equal keys the last one given wins, as a map's insert would.
    fn from_iter<I: IntoIterator<Item = (String, V)>>(pairs: I) -> Self {
        let mut pairs: Vec<(String, V)> = pairs.into_iter().collect();
        // Stable: equal keys keep their order, and the last of each run is kept below.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut table = StrTable::default();
        let mut pairs = pairs.into_iter().peekable();
        while let Some((k, v)) = pairs.next() {
            if pairs.peek().is_some_and(|(next, _)| *next == k) {
                continue;
            }
            table.keys.push(&k);
            table.values.push(v);
        }
        table
    }
}

impl<V> StrTable<V> {
    pub fn get(&self, key: &str) -> Option<&V> {
        self.keys.find(key).and_then(|i| self.values.get(i))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.keys.find(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// In key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> + '_ {
        self.keys.iter().zip(&self.values)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.keys.iter()
    }

    /// The key at `i` in key order (tables whose values name other keys).
    pub fn key_at(&self, i: usize) -> &str {
        self.keys.get(i)
    }

    /// Where `key` is in key order.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.keys.find(key)
    }
}

/// A set of strings.
pub type StrSet = StrTable<()>;

impl StrSet {
    pub fn contains(&self, key: &str) -> bool {
        self.contains_key(key)
    }
}

impl FromIterator<String> for StrSet {
    fn from_iter<I: IntoIterator<Item = String>>(words: I) -> Self {
        words.into_iter().map(|w| (w, ())).collect()
    }
}

/// A map from strings to strings, both kept as text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrMap {
    keys: StrTable<()>,
    values: StrList,
}

impl FromIterator<(String, String)> for StrMap {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let table: StrTable<String> = pairs.into_iter().collect();
        let mut values = StrList::default();
        for (_, v) in table.iter() {
            values.push(v);
        }
        StrMap { keys: table.keys().map(str::to_string).collect(), values }
    }
}

impl StrMap {
    pub fn get(&self, key: &str) -> Option<&str> {
        // A decoded map whose lists differ in length finds nothing past the shorter one.
        self.keys.position(key).filter(|&i| i < self.values.len()).map(|i| self.values.get(i))
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_finds_what_a_map_would() {
        let pairs = [("--namespace", 1), ("-n", 1), ("--all", 2), ("-A", 3), ("--all", 4), ("é", 5)];
        let table: StrTable<i32> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let map: std::collections::HashMap<&str, i32> = pairs.iter().copied().collect();
        for key in ["--namespace", "-n", "--all", "-A", "é", "", "--al", "--allx", "-", "z"] {
            assert_eq!(table.get(key), map.get(key), "{key}");
        }
        assert_eq!(table.len(), 5);
        let bytes = postcard::to_stdvec(&table).expect("encodes");
        let back: StrTable<i32> = postcard::from_bytes(&bytes).expect("decodes");
        assert_eq!(back, table);

        let m: StrMap = [("po", "pods"), ("pods", "pods"), ("deploy", "deployments")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!((m.get("deploy"), m.get("po"), m.get("x")), (Some("deployments"), Some("pods"), None));
        let back: StrMap = postcard::from_bytes(&postcard::to_stdvec(&m).expect("encodes")).expect("decodes");
        assert_eq!(back, m);
    }

    #[test]
    fn a_damaged_table_does_not_decode() {
        for (text, ends) in [
            ("ab", vec![1u32, 3]), // past the end
            ("ab", vec![2, 1]),    // backwards
            ("é", vec![1, 2]),     // inside a character
            ("abc", vec![1, 2]),   // text left over
        ] {
            let bytes = postcard::to_stdvec(&(text, ends.clone())).expect("encodes");
            assert!(postcard::from_bytes::<StrList>(&bytes).is_err(), "{text} {ends:?}");
        }
        // Keys out of order, repeated, or more keys than values.
        for (text, ends, values) in
            [("ba", vec![1u32, 2], vec![(), ()]), ("aa", vec![1, 2], vec![(), ()]), ("ab", vec![1, 2], vec![()])]
        {
            let bytes = postcard::to_stdvec(&((text, ends), values)).expect("encodes");
            assert!(postcard::from_bytes::<StrSet>(&bytes).is_err(), "{text}");
        }
    }
}
