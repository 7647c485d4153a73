//! Reads the objects (kind, name, namespace) in a Kubernetes manifest, as kubectl would find them,
//! or says that it cannot be sure.
//!
//! Pure: bytes in, objects out. JSON (a stream of objects, `List`s included) is read with
//! serde_json. YAML is read only in a strict subset: documents split as kubectl splits them, and
//! at the top level and inside `metadata` only plain `key: value` lines. Anything that could make
//! guardsh's reading differ from kubectl's (flow style, anchors and merge keys, tags, quoted or
//! duplicate keys, block scalars, continuation lines, `List` kinds) is `Err`: the command is then
//! not read with certainty, and no allow rule applies to it.

/// One object of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub kind: String,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

impl Object {
    /// `Kind name (namespace ns)`, for the approval screen.
    pub fn describe(&self) -> String {
        let mut s = self.kind.clone();
        if let Some(n) = &self.name {
            s.push(' ');
            s.push_str(n);
        }
        if let Some(ns) = &self.namespace {
            s.push_str(&format!(" (namespace {ns})"));
        }
        s
    }
}

/// The objects in `bytes`, in order.
pub fn objects(bytes: &[u8]) -> Result<Vec<Object>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the manifest is not UTF-8".to_string())?;
    // kubectl's decoder reads JSON when the stream starts with `{`, YAML otherwise.
    if text.trim_start().starts_with('{') {
        return json_objects(text);
    }
    yaml_objects(text)
}

fn json_objects(text: &str) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
        let value = value.map_err(|e| format!("the JSON manifest does not parse ({e})"))?;
        json_object(&value, &mut out, 0)?;
    }
    Ok(out)
}

fn json_object(value: &serde_json::Value, out: &mut Vec<Object>, depth: usize) -> Result<(), String> {
    let map = value.as_object().ok_or("a manifest entry is not an object")?;
    // A key that differs from `kind` or `metadata` only in case is read by some decoders and not
    // by others.
    for key in map.keys() {
        let lower = key.to_ascii_lowercase();
        if ["kind", "metadata", "items", "apiversion"].contains(&lower.as_str()) && lower != *key && key != "apiVersion"
        {
            return Err(format!("the key {key:?} is not spelt as kubectl expects"));
        }
    }
    let kind = map.get("kind").and_then(|k| k.as_str()).ok_or("an object without a kind")?;
    if kind.ends_with("List") {
        if depth > 0 {
            return Err("a list inside a list".into());
        }
        let items = map.get("items").and_then(|i| i.as_array()).ok_or("a List without items")?;
        for item in items {
            json_object(item, out, depth + 1)?;
        }
        return Ok(());
    }
    let meta = map.get("metadata");
    let field = |name: &str| -> Result<Option<String>, String> {
        match meta.and_then(|m| m.get(name)) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("metadata.{name} is not a string")),
        }
    };
    if let Some(m) = meta.and_then(|m| m.as_object()) {
        for key in m.keys() {
            let lower = key.to_ascii_lowercase();
            if (lower == "name" || lower == "namespace") && lower != *key {
                return Err(format!("the key {key:?} is not spelt as kubectl expects"));
            }
        }
    }
    out.push(Object { kind: kind.to_string(), name: field("name")?, namespace: field("namespace")? });
    Ok(())
}

fn yaml_objects(text: &str) -> Result<Vec<Object>, String> {
    let mut out = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err("content after a `---` document separator".into());
            }
            if let Some(o) = yaml_document(&doc)? {
                out.push(o);
            }
            doc.clear();
            continue;
        }
        doc.push(line);
    }
    if let Some(o) = yaml_document(&doc)? {
        out.push(o);
    }
    Ok(out)
}

/// A plain scalar as a name or kind: letters, digits and `-._:`; optionally in quotes; an
/// unquoted one may be followed by a comment.
fn scalar(value: &str) -> Option<String> {
    let v = value.trim();
    let inner = match v.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let end = v[1..].find(q)? + 1;
            let rest = v[end + 1..].trim_start();
            if !rest.is_empty() && !rest.starts_with('#') {
                return None;
            }
            &v[1..end]
        }
        _ => match v.find(" #") {
            Some(i) => v[..i].trim_end(),
            None => v,
        },
    };
    let ok = !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || "-._:".contains(c));
    ok.then(|| inner.to_string())
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// `key: value` with a plain key (letters, digits, `-_.`), or None.
fn key_value(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start_matches(' ');
    let (key, value) = t.split_once(':')?;
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        return None;
    }
    if !value.is_empty() && !value.starts_with(' ') {
        return None;
    }
    Some((key, value.trim()))
}

/// One YAML document: `None` when it holds nothing.
fn yaml_document(lines: &[&str]) -> Result<Option<Object>, String> {
    let unsure = |why: &str| Err(format!("the manifest uses YAML guardsh does not read with certainty ({why})"));
    if lines.iter().any(|l| l.contains('\t') && !is_blank(l)) {
        return unsure("a tab");
    }
    let content: Vec<(usize, &str)> =
        lines.iter().enumerate().filter(|(_, l)| !is_blank(l)).map(|(i, l)| (i, *l)).collect();
    if content.is_empty() {
        return Ok(None);
    }
    let (mut kind, mut name, mut namespace) = (None, None, None);
    let mut seen_top: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < content.len() {
        let line = content[i].1;
        if indent(line) != 0 {
            return unsure("an indented line where a top-level key was expected");
        }
        if line.starts_with("...") || line.starts_with('%') {
            return unsure("a document end marker or directive");
        }
        let Some((key, value)) = key_value(line) else { return unsure("a top-level line that is not `key: value`") };
        if seen_top.contains(&key) || key == "<<" {
            return unsure("a repeated or merge key");
        }
        seen_top.push(key);
        // Lines below this key (more indented).
        let mut j = i + 1;
        while j < content.len() && indent(content[j].1) > 0 {
            j += 1;
        }
        let body = &content[i + 1..j];
        match key {
            "kind" => {
                if !body.is_empty() {
                    return unsure("a continued kind");
                }
                match scalar(value) {
                    Some(k) => kind = Some(k),
                    None => return unsure("a kind that is not a plain word"),
                }
            }
            "metadata" => {
                if !value.is_empty() && !value.starts_with('#') {
                    return unsure("metadata that is not a block mapping");
                }
                let Some(level) = body.first().map(|(_, l)| indent(l)) else {
                    i = j;
                    continue;
                };
                let mut seen_meta: Vec<&str> = Vec::new();
                let mut k = 0;
                while k < body.len() {
                    let l = body[k].1;
                    let n = indent(l);
                    if n < level {
                        return unsure("metadata indented inconsistently");
                    }
                    if n > level {
                        k += 1;
                        continue;
                    }
                    let Some((mk, mv)) = key_value(l) else {
                        return unsure("a metadata line that is not `key: value`");
                    };
                    if seen_meta.contains(&mk) || mk == "<<" {
                        return unsure("a repeated or merge key in metadata");
                    }
                    seen_meta.push(mk);
                    let continued = body.get(k + 1).is_some_and(|(_, next)| indent(next) > level);
                    if mk == "name" || mk == "namespace" {
                        if continued {
                            return unsure("a continued name");
                        }
                        let Some(v) = scalar(mv) else { return unsure("a name that is not a plain word") };
                        if mk == "name" {
                            name = Some(v);
                        } else {
                            namespace = Some(v);
                        }
                    } else if mk.eq_ignore_ascii_case("name") || mk.eq_ignore_ascii_case("namespace") {
                        return unsure("a name key in another case");
                    }
                    k += 1;
                }
            }
            other if other.eq_ignore_ascii_case("kind") || other.eq_ignore_ascii_case("metadata") => {
                return unsure("a kind or metadata key in another case");
            }
            _ => {}
        }
        i = j;
    }
    let Some(kind) = kind else { return unsure("an object without a kind") };
    if kind.ends_with("List") {
        return unsure("a List in YAML");
    }
    Ok(Some(Object { kind, name, namespace }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Vec<String>, String> {
        objects(text.as_bytes()).map(|v| v.iter().map(Object::describe).collect())
    }

    #[test]
    fn objects_are_read_as_kubectl_reads_them() {
        let pod =
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n  labels:\n    app: web\nspec:\n  containers: []\n";
        assert_eq!(read(pod).expect("pod"), ["Pod web-1"]);
        let two = "# x\n---\nkind: Namespace\nmetadata:\n  name: 'prod' # the one\n---\n\nkind: Secret\nmetadata:\n  namespace: prod\n  name: db\n";
        assert_eq!(read(two).expect("two"), ["Namespace prod", "Secret db (namespace prod)"]);
        let json = r#"{"kind":"List","items":[{"kind":"Namespace","metadata":{"name":"prod"}}]} {"kind":"Pod","metadata":{"name":"x"}}"#;
        assert_eq!(read(json).expect("json"), ["Namespace prod", "Pod x"]);
        assert_eq!(read("").expect("empty"), Vec::<String>::new());
    }

    #[test]
    fn anything_unusual_is_not_read() {
        for text in [
            "kind: Pod\nmetadata: {name: x}\n",
            "kind: &k Namespace\nmetadata:\n  name: prod\n",
            "base: &b\n  kind: Namespace\n<<: *b\nmetadata:\n  name: prod\n",
            "kind: Pod\nkind: Namespace\nmetadata:\n  name: prod\n",
            "\"kind\": Namespace\nmetadata:\n  name: prod\n",
            "kind: !!str Namespace\nmetadata:\n  name: prod\n",
            "kind:\n  Namespace\nmetadata:\n  name: prod\n",
            "kind: Namespace\nmetadata:\n  name: pro\n    d\n",
            "kind: Namespace\nmetadata:\n  name: |\n    prod\n",
            "kind: Namespace\nmetadata:\n\tname: prod\n",
            "--- kind: Namespace\n",
            "kind: Namespace\n...\nkind: Pod\n",
            "- kind: Namespace\n",
            "kind: List\nitems:\n- kind: Namespace\n",
            "Kind: Namespace\nmetadata:\n  name: prod\n",
            r#"{"Kind":"Namespace","metadata":{"name":"prod"}}"#,
            "metadata:\n  name: prod\n",
        ] {
            assert!(read(text).is_err(), "{text:?} was read as {:?}", read(text));
        }
    }
}
