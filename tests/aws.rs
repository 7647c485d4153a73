//! The real AWS CLI through its shim against a local S3 (moto) on 127.0.0.1: listing works with
//! the credentials the rules grant and no other tool's, and deleting a bucket or its objects never
//! reaches it.
//!
//! `.ci/run` installs the AWS CLI and moto into a virtual environment and puts it first on PATH;
//! elsewhere the test is skipped, with a message, when `python3` has no `aws` and `moto_server`
//! beside it.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::Test;

/// The bin directory of the Python that has the AWS CLI and moto installed.
pub(crate) fn python_bin() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys, os, moto; print(os.path.join(sys.prefix, 'bin'))"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && bin.join("aws").exists() && bin.join("moto_server").exists()).then_some(bin)
}

/// moto's S3 on a free loopback port, stopped when dropped (tests/differential.rs uses it too).
pub(crate) struct Moto {
    child: Child,
    pub(crate) endpoint: String,
}

impl Moto {
    pub(crate) fn start(bin: &std::path::Path) -> Moto {
        Moto::start_with(bin, &[])
    }

    /// `start`, with moto's own settings in its environment (`INITIAL_NO_AUTH_ACTION_COUNT`).
    pub(crate) fn start_with(bin: &std::path::Path, vars: &[(&str, String)]) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(bin.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "moto_server did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn s3_deletes_never_reach_the_bucket_and_listing_works() {
    let Some(bin) = python_bin() else {
        assert!(std::env::var_os("CI").is_none(), "CI must provide the AWS CLI and moto (.ci/run installs them)");
        eprintln!("skipping the real-AWS-CLI test: python3 has no aws and moto_server beside it");
        return;
    };
    let moto = Moto::start(&bin);
    let whoenv = "\n[[rule]]\nid = \"test-whoenv\"\ntool = \"aws\"\naction = \"allow\"\nreason = \"test: show the environment\"\nargs = [\"whoenv\"]\ngrant = [\"AWS_ACCESS_KEY_ID\", \"AWS_SECRET_ACCESS_KEY\"]\n";
    let policy = include_str!("../rules.toml.example").replacen("[settings]\n", "[settings]\nwait = false\n", 1);
    let t = Test::new()
        .rules_with_pack(&format!("{policy}{whoenv}"))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        // Another tool's credential: the aws rules do not grant it.
        .env("RAILWAY_TOKEN", "railway-secret");
    t.shim("aws");
    std::os::unix::fs::symlink(bin.join("aws"), t.real.join("aws")).expect("symlink the real aws");
    // Set up with the real CLI directly, not through guardsh.
    let direct = |args: &[&str]| {
        let out = args.iter().fold(t.command(bin.join("aws")), |c, a| c.arg_os(a)).cwd(&t.cwd).output();
        assert_eq!(out.code(), Some(0), "aws {args:?}: {}", out.stderr());
        out.stdout()
    };
    std::fs::write(t.cwd.join("a.txt"), "a").expect("write");
    direct(&["s3", "mb", "s3://prod-data"]);
    direct(&["s3", "cp", "a.txt", "s3://prod-data/a.txt"]);
    direct(&["s3", "cp", "a.txt", "s3://prod-data/dir/b.txt"]);

    // Allowed: the real CLI runs with the granted AWS credentials and lists the objects.
    t.run("aws", &["s3", "ls", "s3://prod-data", "--recursive"]).output().status(0).stdout_has("dir/b.txt");

    // Refused in CI mode (77); otherwise denied (77) or held for a human (75); several spellings.
    for line in [
        &["s3", "rb", "s3://prod-data", "--force"][..],
        &["s3", "rm", "s3://prod-data", "--recursive"],
        &["s3", "rm", "--recursive", "s3://prod-data/dir"],
        &["s3api", "delete-bucket", "--bucket", "prod-data"],
        &["--region", "us-east-1", "s3", "rm", "s3://prod-data/a.txt"],
    ] {
        t.run("aws", line).env("CI", "true").output().status(77);
        let held = t.run("aws", line).output();
        assert!(matches!(held.code(), Some(75 | 77)), "aws {line:?} was not held: {}", held.stderr());
    }
    let listing = direct(&["s3", "ls", "s3://prod-data", "--recursive"]);
    assert!(listing.contains("a.txt") && listing.contains("dir/b.txt"), "objects were deleted: {listing}");

    // What the real aws process holds: its shell aliases run with aws's own environment. A
    // test-only rule allows the alias and grants the AWS keys, as the shipped read rules do.
    let alias_dir = t.home.join(".aws/cli");
    std::fs::create_dir_all(&alias_dir).expect("mkdir");
    std::fs::write(alias_dir.join("alias"), "[toplevel]\nwhoenv = !f() { env; }; f\n").expect("alias");
    let seen = t.run("aws", &["whoenv"]).output().status(0).stdout();
    assert!(seen.contains("AWS_SECRET_ACCESS_KEY=testing"), "the granted key did not reach aws: {seen}");
    assert!(!seen.contains("railway-secret"), "another tool's token reached aws: {seen}");
    assert!(direct(&["whoenv"]).contains("railway-secret"), "control: aws run directly does get the token");

    // What guardsh did with the environment of the allowed run, from its audit record: the AWS
    // credentials passed (the listing above needed them), the other tool's token was stripped,
    // and no value is recorded. (Fake-tool tests in gate.rs see the environment a tool gets.)
    let records = t.audit_records();
    let ran = records
        .iter()
        .find(|r| r["outcome"] == "exec" && r["rules"].to_string().contains("aws-"))
        .expect("an exec record");
    let names = |k: &str| ran[k].as_array().expect("names").iter().filter_map(|v| v.as_str()).collect::<Vec<_>>();
    assert!(names("passed").contains(&"AWS_SECRET_ACCESS_KEY"), "{ran}");
    assert!(names("stripped").contains(&"RAILWAY_TOKEN"), "{ran}");
    assert!(!ran.to_string().contains("railway-secret"), "the audit log holds a secret value: {ran}");
}
