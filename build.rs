//! Embeds the command catalogs (`catalogs/*.tsv`) in the binary as sorted static tables, so that
//! a shim looks a command up by binary search with nothing to parse at start-up.
//!
//! The format is `catalogs/README.md`'s. A malformed catalog fails the build: a catalog the
//! binary cannot read must never quietly become "every command is unknown".

use std::fmt::Write as _;
use std::path::Path;

const CLASSES: &[(&str, &str)] = &[
    ("read", "Read"),
    ("local", "Local"),
    ("write", "Write"),
    ("destroy", "Destroy"),
    ("credential", "Credential"),
    ("code", "Code"),
    ("group", "Group"),
];

fn main() {
    println!("cargo::rerun-if-changed=catalogs");
    let dir = Path::new("catalogs");
    let mut files: Vec<_> =
        std::fs::read_dir(dir).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "tsv"));
    files.sort();
    let mut out = String::from("pub static CATALOGS: &[Catalog] = &[\n");
    // Which catalog each tool uses, as one line per tool in one string (`kubectl 7`): finding a
    // tool's catalog then reads that string alone, not each catalog's name strings, which the
    // compiler places beside their catalogs, pages apart.
    let mut index = String::new();
    for (i, path) in files.iter().enumerate() {
        println!("cargo::rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push_str(&catalog(path, &text));
        let tools = text.lines().find_map(|l| l.strip_prefix("# tools: ")).unwrap_or_default();
        for tool in tools.split(' ') {
            writeln!(index, "{tool} {i}").expect("write");
        }
    }
    out.push_str("];\n");
    writeln!(out, "const TOOL_INDEX: &str = {index:?};").expect("write");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("catalogs.rs");
    std::fs::write(dest, out).expect("write catalogs.rs");
}

fn catalog(path: &Path, text: &str) -> String {
    let fail = |line: usize, why: &str| -> ! { panic!("{}:{line}: {why}", path.display()) };
    let mut lines = text.lines().enumerate();
    let mut header = |key: &str| -> String {
        let (n, line) = lines.next().unwrap_or_else(|| fail(0, "the file ends inside its header"));
        line.strip_prefix("# ")
            .and_then(|l| l.strip_prefix(key))
            .and_then(|l| l.strip_prefix(": "))
            .unwrap_or_else(|| fail(n + 1, &format!("want the header line `# {key}: ...`")))
            .to_string()
    };
    let name = header("guardsh catalog");
    let tools = header("tools");
    let source = header("source");
    // The generator is for tests/catalogs.rs, which reads the files itself.
    let _generate = header("generate");
    let value_default = match header("value_default").as_str() {
        "true" => true,
        "false" => false,
        _ => fail(5, "value_default is true or false"),
    };
    // Offsets into texts, not `&str`s: see `Catalog::text` for why. Paths have a text of their
    // own, so that a lookup's binary search reads a few pages, not pages all over the catalog.
    let mut paths = String::new();
    let mut text = String::new();
    let mut rows = String::new();
    let mut classes = String::new();
    let mut last: Option<String> = None;
    for (n, line) in lines {
        let cols: Vec<&str> = line.split('\t').collect();
        let [p, class, flags, note] = cols[..] else { fail(n + 1, "want path<TAB>class<TAB>flags<TAB>note") };
        let Some((_, variant)) = CLASSES.iter().find(|(c, _)| *c == class) else {
            fail(n + 1, &format!("unknown class {class:?}"))
        };
        if let Some(prev) = &last
            && prev.as_str() >= p
        {
            fail(n + 1, "rows must be sorted by path, each path once");
        }
        last = Some(p.to_string());
        let start = paths.len();
        paths.push_str(p);
        let path_end = paths.len();
        text.push_str(flags);
        let flags_end = text.len();
        text.push_str(note);
        let offset = |o: usize| u32::try_from(o).unwrap_or_else(|_| fail(n + 1, "the catalog is larger than 4 GiB"));
        write!(rows, "[{},{},{},{}],", offset(start), offset(path_end), offset(flags_end), offset(text.len()))
            .expect("write");
        write!(classes, "Class::{variant},").expect("write");
    }
    let tools: Vec<String> = tools.split(' ').map(|t| format!("{t:?}")).collect();
    format!(
        "    Catalog {{\n        name: {name:?},\n        tools: &[{}],\n        source: {source:?},\n        value_default: {value_default},\n        paths: {paths:?},\n        text: {text:?},\n        rows: &[{rows}],\n        classes: &[{classes}],\n    }},\n",
        tools.join(", ")
    )
}
