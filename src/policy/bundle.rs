//! An OPA bundle (`.tar.gz`, as `opa build` makes it): its `.rego` modules and its `data.json` documents, each placed at its directory's path under `data`.
//!
//! Pure: the bundle's bytes in, modules and data out. Anything this reader does not understand
//! (a compressed stream that does not end, a header that does not add up, a data file that is not
//! JSON, a `data.yaml`) is an error, which the stage turns into a deny.

use std::io::Read;

use serde_json::{Map, Value};

/// Unpacked bundles larger than this are refused.
const LIMIT: u64 = 64 << 20;

/// What a bundle holds: modules as `(name, text)`, data documents already nested at their path.
#[derive(Debug, Default, PartialEq)]
pub struct Bundle {
    pub modules: Vec<(String, String)>,
    pub data: Vec<Value>,
    /// `.manifest`'s `revision`, when it has one.
    pub revision: Option<String>,
}

/// Reads the bundle `bytes`, naming its modules `{name}/{path in the bundle}`.
pub fn read(name: &str, bytes: &[u8]) -> Result<Bundle, String> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(LIMIT + 1)
        .read_to_end(&mut tar)
        .map_err(|e| format!("{name} is not a gzip bundle: {e}"))?;
    if tar.len() as u64 > LIMIT {
        return Err(format!("{name} unpacks to more than 64 MiB"));
    }
    let mut out = Bundle::default();
    for (path, content) in entries(&tar).map_err(|e| format!("{name}: {e}"))? {
        let path = path.trim_start_matches("./").trim_start_matches('/').to_string();
        let file = path.rsplit('/').next().unwrap_or("");
        let dir: Vec<&str> =
            path.rsplit_once('/').map_or(vec![], |(d, _)| d.split('/').filter(|s| !s.is_empty()).collect());
        if path.ends_with(".rego") {
            let text = String::from_utf8(content).map_err(|_| format!("{name}: {path} is not UTF-8"))?;
            out.modules.push((format!("{name}/{path}"), text));
        } else if file == "data.json" {
            let value: Value =
                serde_json::from_slice(&content).map_err(|e| format!("{name}: {path} is not JSON: {e}"))?;
            out.data.push(dir.iter().rev().fold(value, |v, key| Value::Object(Map::from_iter([(key.to_string(), v)]))));
        } else if file == "data.yaml" || file == "data.yml" {
            return Err(format!("{name}: {path}: YAML data is not read; convert it to data.json"));
        } else if path == ".manifest" {
            let manifest: Value =
                serde_json::from_slice(&content).map_err(|e| format!("{name}: .manifest is not JSON: {e}"))?;
            out.revision = manifest.get("revision").and_then(Value::as_str).map(str::to_string);
        }
    }
    Ok(out)
}

/// The regular files of a tar archive (ustar and GNU, with pax long names), in order.
fn entries(tar: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    let mut long_name: Option<String> = None;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            return Ok(out);
        }
        let field = |from: usize, to: usize| {
            let raw = &header[from..to];
            String::from_utf8_lossy(&raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())]).into_owned()
        };
        let size_text = field(124, 136);
        let size =
            usize::from_str_radix(size_text.trim(), 8).map_err(|_| format!("a tar header's size {size_text:?}"))?;
        let start = at + 512;
        let end = start.checked_add(size).filter(|&e| e <= tar.len()).ok_or("the archive ends inside a file")?;
        let content = &tar[start..end];
        let name = match (field(257, 263).starts_with("ustar"), field(345, 500)) {
            (true, prefix) if !prefix.is_empty() => format!("{prefix}/{}", field(0, 100)),
            _ => field(0, 100),
        };
        match header[156] {
            b'0' | 0 => out.push((long_name.take().unwrap_or(name), content.to_vec())),
            // A pax header: its `path` record names the next entry.
            b'x' => {
                let text = String::from_utf8_lossy(content);
                long_name = text
                    .lines()
                    .find_map(|l| l.split_once(' ').and_then(|(_, kv)| kv.strip_prefix("path=")))
                    .map(str::to_string);
            }
            // GNU long name.
            b'L' => long_name = Some(String::from_utf8_lossy(content).trim_end_matches('\0').to_string()),
            _ => {}
        }
        at = start + size.div_ceil(512) * 512;
    }
    Err("the archive has no end".into())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use serde_json::json;

    use super::*;

    fn header(name: &str, size: usize, kind: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h[257..263].copy_from_slice(b"ustar\0");
        h
    }

    pub(crate) fn bundle(files: &[(&str, &str)]) -> Vec<u8> {
        let mut tar = Vec::new();
        for (name, text) in files {
            tar.extend(header(name, text.len(), b'0'));
            tar.extend(text.as_bytes());
            tar.resize(tar.len().div_ceil(512) * 512, 0);
        }
        tar.extend([0u8; 1024]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).expect("gzip");
        gz.finish().expect("gzip")
    }

    #[test]
    fn modules_data_and_revision() {
        let b = bundle(&[
            ("/.manifest", "{\"revision\": \"r42\"}"),
            ("/guardsh/policy.rego", "package guardsh\n"),
            ("/data.json", "{\"a\": 1}"),
            ("/production/clusters/data.json", "[\"prod\"]"),
        ]);
        let got = read("b.tar.gz", &b).expect("a bundle");
        assert_eq!(got.modules, vec![("b.tar.gz/guardsh/policy.rego".to_string(), "package guardsh\n".to_string())]);
        assert_eq!(got.data, vec![json!({"a": 1}), json!({"production": {"clusters": ["prod"]}})]);
        assert_eq!(got.revision.as_deref(), Some("r42"));
    }

    #[test]
    fn what_it_cannot_read_is_an_error() {
        assert!(read("x", b"not gzip").is_err());
        assert!(read("x", &bundle(&[("/data.json", "{nope")])).is_err());
        assert!(read("x", &bundle(&[("/data.yaml", "a: 1")])).is_err());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&header("/p.rego", 4000, b'0')).expect("gzip");
        assert!(read("x", &gz.finish().expect("gzip")).is_err(), "a file longer than the archive");
    }
}
