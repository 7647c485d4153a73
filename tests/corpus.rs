//! The labelled corpus (tests/corpus/*.tsv) against the shipped policy, through `guardsh check`.

use std::collections::BTreeMap;

use crate::support::Test;

/// Splits a command line the way a shell would with quotes and backslashes, and nothing else.
fn split(line: &str) -> Vec<String> {
    let (mut words, mut cur, mut in_word) = (Vec::new(), String::new(), false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                cur.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[derive(Default)]
struct Tally {
    rows: usize,
    held: usize,
    harmful: usize,
    safe: usize,
    prompted: usize,
}

/// The input files rows name (`kubectl -f deploy.yaml`, `psql -f read.sql`), in the directory
/// the rows run in: guardsh decides on what they hold (see tests/corpus/README.md).
fn input_files(t: &Test) {
    let files = [
        ("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n"),
        ("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n"),
        ("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n"),
        ("pod-and-ns.yaml", "kind: Pod\nmetadata:\n  name: web-1\n---\nkind: Namespace\nmetadata:\n  name: prod\n"),
        ("secret.yaml", "kind: Secret\nmetadata:\n  name: db\n  namespace: prod\n"),
        ("read.sql", "select id, name from users where id = 1;\n"),
        ("drop.sql", "DROP TABLE users;\n"),
        ("migrate.sql", "alter table users add column email text;\n"),
    ];
    for (name, text) in files {
        std::fs::write(t.cwd.join(name), text).expect("write an input file");
    }
}

#[test]
fn every_labelled_row_gets_its_expected_decision() {
    let t = Test::new().example_rules();
    input_files(&t);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir).expect("corpus").filter_map(Result::ok).map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "tsv"));
    files.sort();
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let place = format!("{}:{}", file.file_name().expect("name").to_string_lossy(), n + 1);
            let cols: Vec<&str> = line.splitn(3, '\t').collect();
            let [expect, class, command] = cols[..] else { panic!("{place}: expected three tab-separated columns") };
            assert!(["allow", "ask", "deny"].contains(&expect), "{place}: bad expectation {expect}");
            assert!(["safe", "destructive", "evasive"].contains(&class), "{place}: bad class {class}");
            let argv = split(command);
            let mut args = vec!["check", "--json", "--"];
            args.extend(argv.iter().map(String::as_str));
            let v = t.guardsh(&args).output().status(0).json();
            let got = v["decision"].as_str().expect("decision").to_string();
            let tool = tally.entry(argv[0].clone()).or_default();
            tool.rows += 1;
            if class == "safe" {
                tool.safe += 1;
                tool.prompted += usize::from(got != "allow");
            } else {
                tool.harmful += 1;
                tool.held += usize::from(got != "allow");
            }
            if got != expect {
                mismatches.push(format!(
                    "{place}: {command}\n    expected {expect}, got {got}: {} {}",
                    v["rules"], v["reason"]
                ));
            }
        }
    }
    println!("{:<10} {:>5} {:>22} {:>22}", "tool", "rows", "destructive held", "safe prompted");
    let (mut rows, mut safe) = (0, 0);
    for (tool, c) in &tally {
        println!("{tool:<10} {:>5} {:>15} of {:<4} {:>15} of {:<4}", c.rows, c.held, c.harmful, c.prompted, c.safe);
        rows += c.rows;
        safe += c.safe;
    }
    println!("{rows} rows, {safe} safe ({}%)", safe * 100 / rows.max(1));
    assert!(mismatches.is_empty(), "{} of {rows} rows disagree:\n{}", mismatches.len(), mismatches.join("\n"));
    for (tool, c) in &tally {
        assert_eq!(c.held, c.harmful, "{tool}: every destructive or evasive row is held");
    }
}

#[test]
fn the_splitter_reads_quotes_like_a_shell() {
    assert_eq!(split(r#"psql -c 'select 1' "a \"b\"" c\ d"#), ["psql", "-c", "select 1", "a \"b\"", "c d"]);
    assert_eq!(split("x '' y"), ["x", "", "y"]);
}

/// `guardsh check --json` and the shim agree on every fifth corpus row (through real shims, to
/// fake tools). Rows for psql, mysql and mongosh that would read statements from stdin are left out: `check`
/// cannot see the standard input a command will have, and says so.
#[test]
fn check_agrees_with_the_shim_on_a_sample_of_the_corpus() {
    let t = Test::new().example_rules();
    input_files(&t);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(dir).expect("corpus").filter_map(Result::ok).map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "tsv"));
    files.sort();
    let mut rows = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        rows.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .map(|l| l.splitn(3, '\t').nth(2).expect("command").to_string()),
        );
    }
    let mut shimmed = std::collections::BTreeSet::new();
    let mut compared = 0;
    for command in rows.iter().step_by(5) {
        let argv = split(command);
        let tool = argv[0].as_str();
        let reads_stdin = ["psql", "mysql", "mongosh"].contains(&tool)
            && !argv.iter().any(|a| {
                [
                    "-c",
                    "--command",
                    "-e",
                    "--execute",
                    "-l",
                    "--list",
                    "-V",
                    "--version",
                    "--help",
                    "-f",
                    "--eval",
                    "--file",
                ]
                .iter()
                .any(|f| a.starts_with(f))
            });
        if reads_stdin {
            continue;
        }
        if shimmed.insert(tool.to_string()) {
            t.fake_tool(tool);
            t.shim(tool);
        }
        let mut args = vec!["check", "--json", "--"];
        args.extend(argv.iter().map(String::as_str));
        let v = t.guardsh(&args).output().status(0).json();
        let want = v["exit_code"].as_i64().map_or(0, |c| i32::try_from(c).expect("small"));
        let shim = t.run(tool, &argv[1..].iter().map(String::as_str).collect::<Vec<_>>()).output();
        assert_eq!(
            shim.code(),
            Some(want),
            "{command}: check said {}, the shim exited {:?}: {}",
            v["decision"],
            shim.code(),
            shim.stderr()
        );
        compared += 1;
    }
    assert!(compared >= 100, "compared only {compared} rows");
    println!("check and the shim agree on {compared} sampled corpus rows");
}
