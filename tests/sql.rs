//! psql through its shim: guardsh reads the SQL (`-c`, piped stdin) and the real psql gets the
//! exact bytes that were decided on.

use crate::support::{Test, write_executable};

/// The shipped policy, with a fake psql that records its stdin and what fd 0 is.
fn world() -> Test {
    let t = Test::new().example_rules();
    t.shim("psql");
    let rec = t.records.join("psql");
    let script = format!(
        "#!/bin/sh\ncat > '{rec}.stdin'\nreadlink /proc/$$/fd/0 > '{rec}.fd0'\nprintf '%s\\0' \"$0\" \"$@\" > '{rec}.args'\nenv -0 > '{rec}.env'\n",
        rec = rec.display()
    );
    write_executable(&t.real.join("psql"), &script);
    t
}

fn pipe(t: &Test, input: &str, args: &str) -> crate::support::Done {
    t.command("sh").arg_os("-c").arg_os(format!("printf '%s' \"$INPUT\" | psql {args}")).env("INPUT", input).output()
}

#[test]
fn piped_sql_that_only_reads_reaches_psql_byte_for_byte() {
    let t = world();
    let sql = "select count(*) from users;\n-- a comment with 'quotes'\n\\x\nselect * from orders where note = 'drop table x';\n";
    pipe(&t, sql, "prod").status(0);
    assert_eq!(std::fs::read_to_string(t.records.join("psql.stdin")).expect("stdin"), sql);
    let fd0 = std::fs::read_to_string(t.records.join("psql.fd0")).expect("fd0");
    assert!(fd0.starts_with("/memfd:guardsh-stdin"), "psql reads guardsh's sealed copy: {fd0}");
    assert_eq!(t.saw_var("psql", "PSQLRC").as_deref(), Some("/dev/null"));
}

#[test]
fn piped_sql_that_writes_needs_a_human_and_is_denied_in_ci() {
    let t = world();
    for sql in [
        "DROP TABLE users;",
        "select 1; delete from users;",
        "\\! rm -rf /",
        "with d as (delete from t returning *) select * from d",
    ] {
        pipe(&t, sql, "prod").status(75).stderr_has("needs human approval");
        assert!(!t.ran("psql"), "{sql}");
        let ci = t
            .command("sh")
            .arg_os("-c")
            .arg_os("printf '%s' \"$INPUT\" | psql prod")
            .env("INPUT", sql)
            .env("CI", "true")
            .output();
        ci.status(77);
    }
}

#[test]
fn inline_reads_and_read_only_files_pass_and_other_files_and_interactive_sessions_ask() {
    let t = world();
    t.run("psql", &["-c", "select * from drops", "prod"]).output().status(0);
    // A statement file is read before deciding, and psql gets that copy, not the file (which
    // could change after guardsh read it).
    std::fs::write(t.cwd.join("q.sql"), "select 1;").expect("write");
    t.run("psql", &["-f", "q.sql", "prod"]).output().status(0);
    let args = t.saw_args("psql").expect("ran");
    assert!(args[1].to_string_lossy().starts_with("/dev/fd/"), "{args:?}");
    t.forget("psql");
    std::fs::write(t.cwd.join("q.sql"), "drop table users;").expect("write");
    t.run("psql", &["-f", "q.sql", "prod"]).output().status(75);
    t.run("psql", &["-f", "no-such.sql", "prod"]).output().status(75);
    assert!(!t.ran("psql"));
    // No command and a terminal for stdin: an interactive session.
    let mut s = t.in_terminal(t.shims.join("psql"), &["prod"]);
    expectrl::Expect::expect(&mut s, "needs human approval").expect("asks");
    assert!(!t.ran("psql"));
}

#[test]
fn a_closed_stdin_is_empty_input_and_runs_nothing() {
    // The Rust runtime reopens a closed fd 0 as /dev/null, so guardsh reads nothing, and psql is
    // given that same nothing.
    let t = world();
    t.command("sh").arg_os("-c").arg_os("psql prod <&-").output().status(0);
    assert_eq!(std::fs::read(t.records.join("psql.stdin")).expect("ran"), b"");
}

#[test]
fn more_piped_input_than_guardsh_reads_is_refused_not_truncated() {
    let t = world();
    let d = t.command("sh").arg_os("-c").arg_os("head -c 17000000 /dev/zero | psql prod").output();
    d.status(77).stderr_has("more than 16 MiB");
    assert!(!t.ran("psql"));
}

#[test]
fn an_approval_of_piped_sql_is_for_those_bytes() {
    let t = Test::new().rules_with_pack(&include_str!("../rules.toml.example").replacen(
        "[settings]\n",
        "[settings]\nwait = false\n",
        1,
    ));
    t.shim("psql");
    t.fake_tool("psql");
    // Asked from its own terminal (a child of this test would share an ancestor with the approver).
    let asked = t
        .command("/usr/bin/setsid")
        .arg_os("-f")
        .arg_os("/bin/sh")
        .arg_os("-c")
        .arg_os("echo 'drop table a;' | psql prod");
    asked.output().status(0);
    let id = t.wait_for_pending(1).remove(0);
    t.approve(&id);
    // Other bytes on stdin are another command; the approved bytes run.
    pipe(&t, "drop table b;\n", "prod").status(75);
    assert!(!t.ran("psql"));
    pipe(&t, "drop table a;\n", "prod").status(0);
    assert!(t.ran("psql"));
}
