//! The STS provider (`guardsh::mint::sts`) against moto's STS and IAM on 127.0.0.1: a signed
//! AssumeRole returns keys the real AWS CLI can use, a wrong secret key is refused by the
//! signature check, and an endpoint that does not answer fails within the time limit.
//!
//! moto checks SigV4 signatures and IAM policies once `INITIAL_NO_AUTH_ACTION_COUNT` requests
//! have passed unauthenticated (the setup's three), so the wrong key is refused by a real
//! signature comparison. moto does NOT apply session policies (it authorises assumed-role keys
//! by the role's own policies only), so nothing here tests the scoping a session policy gives:
//! `src/mint/aws_policy.rs`'s tables test what policy is derived; AWS applies it.
//!
//! `.ci/run` installs the AWS CLI and moto; elsewhere the moto tests are skipped with a message
//! when python3 has no `aws` and `moto_server` beside it, and fail under `CI=true`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use guardsh::mint::aws_policy::{SessionPolicy, Statement};
use guardsh::mint::sts::{self, Config, Held};

/// moto with IAM authorisation on after `unauthenticated` requests, stopped when dropped.
pub(crate) type AuthMoto = crate::aws::Moto;

fn start_moto(bin: &Path, unauthenticated: u32) -> AuthMoto {
    AuthMoto::start_with(bin, &[("INITIAL_NO_AUTH_ACTION_COUNT", unauthenticated.to_string())])
}

pub(crate) fn moto_bin() -> Option<PathBuf> {
    let bin = crate::aws::python_bin();
    if bin.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must provide the AWS CLI and moto (.ci/run installs them)");
        eprintln!("skipping the STS minting test: python3 has no aws and moto_server beside it");
    }
    bin
}

/// The real AWS CLI against moto, with only the given keys: no config files, no other AWS_*.
fn aws(bin: &Path, moto: &AuthMoto, home: &Path, keys: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(bin.join("aws"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .args(["--endpoint-url", &moto.endpoint, "--output", "json"])
        .args(args);
    for (k, v) in keys {
        cmd.env(k, v);
    }
    cmd.output().expect("run aws")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "aws failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("aws printed JSON")
}

/// A holder user with keys and an admin policy, a role it may assume whose policy allows S3, and
/// one bucket. Returns the holder's keys and the role's ARN.
pub(crate) struct Setup {
    pub(crate) moto: AuthMoto,
    home: tempfile::TempDir,
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) role_arn: String,
}

pub(crate) fn setup(bin: &Path) -> Setup {
    let moto = start_moto(bin, 3);
    let home = tempfile::tempdir().expect("a temporary HOME");
    let anyone = [("AWS_ACCESS_KEY_ID", "setup"), ("AWS_SECRET_ACCESS_KEY", "setup")];
    // The three unauthenticated requests.
    json(&aws(bin, &moto, home.path(), &anyone, &["iam", "create-user", "--user-name", "holder"]));
    let key = json(&aws(bin, &moto, home.path(), &anyone, &["iam", "create-access-key", "--user-name", "holder"]));
    let admin = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let out = aws(
        bin,
        &moto,
        home.path(),
        &anyone,
        &["iam", "put-user-policy", "--user-name", "holder", "--policy-name", "admin", "--policy-document", admin],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let access_key_id = key["AccessKey"]["AccessKeyId"].as_str().expect("key id").to_string();
    let secret_access_key = key["AccessKey"]["SecretAccessKey"].as_str().expect("secret").to_string();
    // From here on moto checks signatures and policies: the holder's keys.
    let holder = [("AWS_ACCESS_KEY_ID", access_key_id.as_str()), ("AWS_SECRET_ACCESS_KEY", secret_access_key.as_str())];
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/holder"},"Action":["sts:AssumeRole","sts:SetSourceIdentity"]}]}"#;
    let role = json(&aws(
        bin,
        &moto,
        home.path(),
        &holder,
        &["iam", "create-role", "--role-name", "agent", "--assume-role-policy-document", trust],
    ));
    let s3 = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*","sts:GetCallerIdentity"],"Resource":"*"}]}"#;
    let out = aws(
        bin,
        &moto,
        home.path(),
        &holder,
        &["iam", "put-role-policy", "--role-name", "agent", "--policy-name", "s3", "--policy-document", s3],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = aws(bin, &moto, home.path(), &holder, &["s3api", "create-bucket", "--bucket", "reports"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let role_arn = role["Role"]["Arn"].as_str().expect("role arn").to_string();
    Setup { moto, home, access_key_id, secret_access_key, role_arn }
}

fn config(s: &Setup) -> Config {
    Config {
        role_arn: s.role_arn.clone(),
        region: "us-east-1".into(),
        endpoint: Some(s.moto.endpoint.clone()),
        duration_seconds: 900,
        external_id: None,
    }
}

fn list_buckets_policy() -> SessionPolicy {
    SessionPolicy {
        statements: vec![Statement { actions: vec!["s3:ListAllMyBuckets".into()], resources: vec!["*".into()] }],
    }
}

#[test]
fn mint_sts_assume_role_returns_keys_the_aws_cli_can_use() {
    let Some(bin) = moto_bin() else { return };
    let s = setup(&bin);
    let held = Held { access_key_id: &s.access_key_id, secret_access_key: &s.secret_access_key, session_token: None };
    let minted = sts::assume_role(&config(&s), &held, &list_buckets_policy(), "r-20261203 abc/1").expect("AssumeRole");
    assert_eq!(minted.session_name, "guardsh-r-20261203-abc-1");
    assert!(minted.access_key_id.starts_with("ASIA"), "{}", minted.access_key_id);
    assert!(!minted.secret_access_key.is_empty() && !minted.session_token.is_empty());
    assert!(minted.expiration.contains('T'), "{}", minted.expiration);
    assert_ne!(minted.access_key_id, s.access_key_id);

    let keys = [
        ("AWS_ACCESS_KEY_ID", minted.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", minted.secret_access_key.as_str()),
        ("AWS_SESSION_TOKEN", minted.session_token.as_str()),
    ];
    let buckets = json(&aws(&bin, &s.moto, s.home.path(), &keys, &["s3api", "list-buckets"]));
    assert_eq!(buckets["Buckets"][0]["Name"], "reports", "{buckets}");
    let who = json(&aws(&bin, &s.moto, s.home.path(), &keys, &["sts", "get-caller-identity"]));
    let arn = who["Arn"].as_str().unwrap_or_default();
    assert!(arn.ends_with(":assumed-role/agent/guardsh-r-20261203-abc-1"), "{who}");
    // Without the session token the minted keys are not accepted.
    let out = aws(&bin, &s.moto, s.home.path(), &keys[..2], &["s3api", "list-buckets"]);
    assert!(!out.status.success(), "minted keys without their token were accepted");

    // (moto also mints for a role that does not exist, so that refusal is not tested here.)
}

#[test]
fn mint_sts_wrong_secret_key_is_refused_by_the_signature_check() {
    let Some(bin) = moto_bin() else { return };
    let s = setup(&bin);
    let wrong = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYWRONGKEY";
    let held = Held { access_key_id: &s.access_key_id, secret_access_key: wrong, session_token: None };
    let err = sts::assume_role(&config(&s), &held, &list_buckets_policy(), "r3").expect_err("a wrong key must fail");
    assert!(err.contains("SignatureDoesNotMatch"), "{err}");
    assert!(!err.contains(wrong) && !err.contains(&s.secret_access_key), "a key in the error: {err}");
    // An access key id moto does not know.
    let held = Held { access_key_id: "AKIAUNKNOWN000000000", secret_access_key: wrong, session_token: None };
    let err = sts::assume_role(&config(&s), &held, &list_buckets_policy(), "r4").expect_err("an unknown key must fail");
    eprintln!("an unknown access key: {err}");
    assert!(err.starts_with("STS refused AssumeRole (HTTP 403): InvalidClientTokenId"), "{err}");
}

/// AssumeRole's latency against moto on this machine: printed, and bounded loosely.
#[test]
fn mint_sts_latency_against_moto() {
    let Some(bin) = moto_bin() else { return };
    let s = setup(&bin);
    let held = Held { access_key_id: &s.access_key_id, secret_access_key: &s.secret_access_key, session_token: None };
    let mut times = Vec::new();
    for i in 0..20 {
        let start = Instant::now();
        sts::assume_role(&config(&s), &held, &list_buckets_policy(), &format!("lat{i}")).expect("AssumeRole");
        times.push(start.elapsed());
    }
    times.sort();
    eprintln!(
        "AssumeRole against moto, 20 calls: min {:?}, median {:?}, max {:?}",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert!(times[times.len() / 2] < Duration::from_secs(2), "median {:?}", times[times.len() / 2]);
}

fn unreachable_config(endpoint: String) -> Config {
    Config {
        role_arn: "arn:aws:iam::123456789012:role/agent".into(),
        region: "us-east-1".into(),
        endpoint: Some(endpoint),
        duration_seconds: 900,
        external_id: None,
    }
}

const HELD: Held<'static> =
    Held { access_key_id: "AKIDEXAMPLE", secret_access_key: "not-a-real-secret", session_token: None };

#[test]
fn mint_sts_endpoint_that_refuses_or_stalls_fails_within_the_time_limit() {
    // Nothing listens: refused at once.
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let start = Instant::now();
    let err =
        sts::assume_role(&unreachable_config(format!("http://127.0.0.1:{port}")), &HELD, &list_buckets_policy(), "r5")
            .expect_err("nothing listens");
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert!(err.contains("STS call") && !err.contains("not-a-real-secret"), "{err}");

    // A server that accepts and never answers: the time limit ends the call.
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let endpoint = format!("http://127.0.0.1:{}", listener.local_addr().expect("address").port());
    let held_open = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(sts::TIME_LIMIT + Duration::from_secs(2));
        drop(conn);
    });
    let start = Instant::now();
    let err = sts::assume_role(&unreachable_config(endpoint), &HELD, &list_buckets_policy(), "r6").expect_err("stalls");
    let took = start.elapsed();
    eprintln!("a stalled STS endpoint failed after {took:?}: {err}");
    assert!(
        took >= sts::TIME_LIMIT - Duration::from_millis(500) && took < sts::TIME_LIMIT + Duration::from_secs(1),
        "{took:?}"
    );
    let _ = held_open.join();

    // https to a server that talks no TLS: the handshake fails, an Err (rustls is set up).
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let endpoint = format!("https://127.0.0.1:{}", listener.local_addr().expect("address").port());
    let talker = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            use std::io::Write;
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n\r\nnot tls");
        }
    });
    let err = sts::assume_role(&unreachable_config(endpoint), &HELD, &list_buckets_policy(), "r8").expect_err("no TLS");
    assert!(err.contains("STS call"), "{err}");
    let _ = talker.join();

    // Plain http to another machine is refused before any connection.
    let err =
        sts::assume_role(&unreachable_config("http://sts.example.com".into()), &HELD, &list_buckets_policy(), "r7")
            .expect_err("plain http");
    assert!(err.contains("use https"), "{err}");
}

/// `src/mint/aws_waiters.tsv` is what its generator prints from the pinned awscli and botocore,
/// as every catalog is (tests/catalogs.rs).
#[test]
fn mint_sts_waiter_table_is_reproduced_by_its_generator() {
    let Some(_) = moto_bin() else { return };
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg("catalogs/gen/aws_waiters.py")
        .current_dir(root)
        .output()
        .expect("run the waiter generator");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want = std::fs::read_to_string(Path::new(root).join("src/mint/aws_waiters.tsv")).expect("the waiter table");
    assert!(
        String::from_utf8_lossy(&out.stdout) == want,
        "regenerate it: python3 catalogs/gen/aws_waiters.py > src/mint/aws_waiters.tsv"
    );
}
