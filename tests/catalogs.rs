//! The command catalogs (catalogs/*.tsv): each generator reproduces its checked-in file byte for
//! byte from the recorded source, and what the binary embeds is what the files say.

use std::path::Path;
use std::process::Command;

use crate::support::Test;

fn catalogs() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalogs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("catalogs/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "tsv"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let name = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(p).expect("read catalog"))
        })
        .collect()
}

fn header<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .take(5)
        .find_map(|l| l.strip_prefix("# ")?.strip_prefix(key)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no `# {key}:` header"))
}

/// Every catalog's `generate` command, run from the repository root with no network, prints
/// the file exactly. A hand edit of a catalog, or a generator change not regenerated, fails here.
#[test]
fn every_generator_reproduces_its_catalog() {
    let root = env!("CARGO_MANIFEST_DIR");
    let all = catalogs();
    assert!(!all.is_empty(), "no catalogs in catalogs/");
    for (name, text) in &all {
        let generate = header(text, "generate");
        let started = std::time::Instant::now();
        let out = Command::new("sh").arg("-c").arg(generate).current_dir(root).output().expect("run the generator");
        assert!(
            out.status.success(),
            "{name}: `{generate}` failed: {}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
        );
        let got = String::from_utf8(out.stdout).expect("utf-8");
        if got != *text {
            let first = got.lines().zip(text.lines()).position(|(a, b)| a != b);
            panic!(
                "{name}: `{generate}` does not reproduce catalogs/{name}.tsv ({} lines vs {}; first difference at line {:?}); regenerate it: {generate} > catalogs/{name}.tsv",
                got.lines().count(),
                text.lines().count(),
                first.map(|i| i + 1)
            );
        }
        println!("{name}: {} rows reproduced by `{generate}` in {:?}", text.lines().count() - 5, started.elapsed());
    }
}

/// What `guardsh check` reports for a command comes from the embedded catalog: every catalog's
/// first runnable row is explained with its path and class.
#[test]
fn check_names_the_catalog_entry_and_class() {
    let env = Test::new().example_rules();
    for (name, text) in catalogs() {
        let tool = header(&text, "tools").split(' ').next().expect("a tool").to_string();
        let Some(row) = text.lines().skip(5).find(|l| l.split('\t').nth(1).is_none_or(|c| c != "group")) else {
            continue;
        };
        let mut cols = row.split('\t');
        let (path, class) = (cols.next().expect("path"), cols.next().expect("class"));
        let mut args = vec!["check", "--json", "--", tool.as_str()];
        args.extend(path.split(' '));
        let json = env.guardsh(&args).output().json();
        let catalog = json["catalog"].as_str().unwrap_or_else(|| panic!("{name}: no catalog in {json}"));
        assert!(catalog.starts_with(&format!("`{path}`: {class}")), "{name}: {catalog}");
    }
}
