//! AWS STS AssumeRole with a session policy: temporary AWS keys scoped to one approved command.
//!
//! The held (long-lived) keys sign one `AssumeRole` call (SigV4, service `sts`); the role's own
//! policy intersected with the session policy (`aws_policy`) is all the minted keys may do, for
//! `duration_seconds` (900 at least, STS's floor). The session is named after the approval
//! request (`RoleSessionName` and `SourceIdentity` = `guardsh-` + the request id), so CloudTrail
//! shows which approval every call came from.
//!
//! STS credentials cannot be revoked. They lapse after `DurationSeconds`; nothing in STS ends
//! them sooner, so the revoke-on-exit the other providers do has no counterpart here, and a
//! command that finishes early leaves keys that still work until they expire (they never leave the
//! tool's process, which guardsh starts and ends). In an emergency, an administrator can attach
//! to the role an inline policy denying everything with the condition
//! `"DateLessThan": {"aws:TokenIssueTime": "<now>"}`: every session issued before that instant
//! then fails (what the IAM console's "Revoke active sessions" does).
//!
//! Setting `SourceIdentity` needs `sts:SetSourceIdentity` in the role's trust policy beside
//! `sts:AssumeRole`; without it, STS refuses the call (AccessDenied) and nothing is minted.
//!
//! Plain `http://` endpoints are refused except on the loopback interface (a local stand-in such
//! as moto): the answer carries the minted secret. Every step has a time limit of about five
//! seconds in all (`TIME_LIMIT`). Errors never contain a key: only STS's error code and message,
//! or what went wrong on the way.

use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use super::aws_policy::{MAX_POLICY_CHARS, SessionPolicy};

/// The whole call, connection to the last byte of the answer.
pub const TIME_LIMIT: Duration = Duration::from_secs(5);

/// STS's minimum and maximum session durations (the role's own maximum may be lower).
pub const MIN_DURATION_SECONDS: u32 = 900;
pub const MAX_DURATION_SECONDS: u32 = 43_200;

/// An answer larger than this is not STS's.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Which role to assume, where, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub role_arn: String,
    /// `us-east-1`: the region whose STS endpoint is called and signed for.
    pub region: String,
    /// Default `https://sts.{region}.amazonaws.com`.
    pub endpoint: Option<String>,
    /// 900 (the minimum) unless configured.
    pub duration_seconds: u32,
    /// The role's trust policy may require it (`sts:ExternalId`).
    pub external_id: Option<String>,
}

/// The long-lived keys `guardsh run` holds, which only sign the AssumeRole call.
pub struct Held<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// Temporary keys for one command.
pub struct Minted {
    /// `RoleSessionName` (and `SourceIdentity`): `guardsh-` and the request id.
    pub session_name: String,
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Zeroizing<String>,
    /// When the keys lapse, as STS wrote it (ISO 8601, UTC).
    pub expiration: String,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("session_name", &self.session_name)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .finish()
    }
}

/// `guardsh-` and `label` with every character STS does not accept in a session name (outside
/// `[\w+=,.@-]`) replaced by `-`, at most 64 characters.
pub fn session_name(label: &str) -> String {
    let clean: String =
        label.chars().map(|c| if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) { c } else { '-' }).collect();
    let mut name = format!("guardsh-{clean}");
    name.truncate(64);
    name
}

/// Calls STS AssumeRole for `cfg.role_arn` with `policy`, signed with `held`, the session named
/// after `label` (the approval request id).
pub fn assume_role(cfg: &Config, held: &Held, policy: &SessionPolicy, label: &str) -> Result<Minted, String> {
    let url = endpoint(cfg)?;
    let session_name = session_name(label);
    let body = request_body(cfg, policy, &session_name)?;
    let headers = signed_headers(cfg, held, &url, body.as_bytes(), SystemTime::now())?;
    let answer = post(&url, &headers, body.as_bytes())?;
    let mut minted = parse_answer(answer.0, &answer.1)?;
    minted.session_name = session_name;
    Ok(minted)
}

/// The endpoint URL, checked: https, or http to the loopback interface only.
fn endpoint(cfg: &Config) -> Result<String, String> {
    if cfg.region.is_empty() || !cfg.region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(format!("`{}` is not an AWS region; set region = \"us-east-1\" or the like", cfg.region));
    }
    let url = match &cfg.endpoint {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("https://sts.{}.amazonaws.com", cfg.region),
    };
    let host = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split('/').next().unwrap_or("");
        let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
        if !matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(format!(
                "the STS endpoint {url} is plain http to another machine, which would carry the minted keys in the clear; use https"
            ));
        }
        rest
    } else {
        return Err(format!("the STS endpoint `{url}` is not an http(s) URL"));
    };
    if host.is_empty() || host.starts_with('/') || host.contains(['?', '#', '@', ' ']) {
        return Err(format!("the STS endpoint `{url}` names no plain host; write https://HOST[:PORT]"));
    }
    Ok(url)
}

/// The form body of the call.
fn request_body(cfg: &Config, policy: &SessionPolicy, session_name: &str) -> Result<String, String> {
    let arn: Vec<&str> = cfg.role_arn.splitn(6, ':').collect();
    if arn.len() != 6 || arn[0] != "arn" || arn[2] != "iam" || !arn[5].starts_with("role/") {
        return Err(format!("`{}` is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)", cfg.role_arn));
    }
    if !(MIN_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(&cfg.duration_seconds) {
        return Err(format!(
            "duration_seconds = {} is outside STS's {MIN_DURATION_SECONDS}..{MAX_DURATION_SECONDS}",
            cfg.duration_seconds
        ));
    }
    let document = policy.to_json();
    if policy.statements.is_empty() || document.len() > MAX_POLICY_CHARS {
        return Err(format!(
            "the session policy is empty or longer than STS's {MAX_POLICY_CHARS} characters; nothing was minted"
        ));
    }
    let duration = cfg.duration_seconds.to_string();
    let mut fields = vec![
        ("Action", "AssumeRole"),
        ("Version", "2011-06-15"),
        ("RoleArn", cfg.role_arn.as_str()),
        ("RoleSessionName", session_name),
        ("SourceIdentity", session_name),
        ("Policy", document.as_str()),
        ("DurationSeconds", duration.as_str()),
    ];
    if let Some(id) = &cfg.external_id {
        fields.push(("ExternalId", id.as_str()));
    }
    Ok(fields.iter().map(|(k, v)| format!("{k}={}", form_encode(v))).collect::<Vec<_>>().join("&"))
}

/// `application/x-www-form-urlencoded`, every byte outside RFC 3986's unreserved set escaped.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The headers of the signed request: SigV4's (`authorization`, `x-amz-date`,
/// `x-amz-security-token`) and the content type it signed.
fn signed_headers(
    cfg: &Config,
    held: &Held,
    url: &str,
    body: &[u8],
    at: SystemTime,
) -> Result<Vec<(String, Zeroizing<String>)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;

    if held.access_key_id.is_empty() || held.secret_access_key.is_empty() {
        return Err("the held AWS keys are empty; give guardsh run AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into());
    }
    let identity = aws_credential_types::Credentials::new(
        held.access_key_id,
        held.secret_access_key,
        held.session_token.map(str::to_string),
        None,
        "guardsh",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&cfg.region)
        .name("sts")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the STS call: {e}"))?
        .into();
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let request =
        SignableRequest::new("POST", url, [("content-type", content_type)].into_iter(), SignableBody::Bytes(body))
            .map_err(|e| format!("cannot sign the STS call to {url}: {e}"))?;
    let (instructions, _signature) =
        sign(request, &params).map_err(|e| format!("cannot sign the STS call: {e}"))?.into_parts();
    let mut headers = vec![("content-type".to_string(), Zeroizing::new(content_type.to_string()))];
    for (name, value) in instructions.headers() {
        headers.push((name.to_string(), Zeroizing::new(value.to_string())));
    }
    Ok(headers)
}

/// One POST with a time limit; the status and the body (bounded).
fn post(url: &str, headers: &[(String, Zeroizing<String>)], body: &[u8]) -> Result<(u16, Zeroizing<String>), String> {
    // A proxy from the environment (HTTPS_PROXY, NO_PROXY) only tunnels https; plain http to a
    // loopback stand-in never goes through one, which would see the minted keys.
    let proxy = if url.starts_with("https://") { ureq::Proxy::try_from_env() } else { None };
    let config = ureq::Agent::config_builder()
        .proxy(proxy)
        .timeout_global(Some(TIME_LIMIT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build();
    let agent: ureq::Agent = config.into();
    let mut request = agent.post(url);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut response = request
        .send(body)
        .map_err(|e| format!("the STS call to {url} failed: {e}; check the endpoint and the network"))?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading STS's answer from {url} failed: {e}"))?;
    Ok((status, Zeroizing::new(text)))
}

/// The minted keys from an AssumeRole answer, or STS's error as an Err. `session_name` is left
/// empty for the caller.
fn parse_answer(status: u16, xml: &str) -> Result<Minted, String> {
    if status != 200 || xml.contains("<ErrorResponse") {
        let code = element(xml, "Code").map(|c| printable(&c, 100));
        let message = element(xml, "Message").map(|m| printable(&m, 300));
        return Err(match (code, message) {
            (Some(code), Some(message)) => format!("STS refused AssumeRole (HTTP {status}): {code}: {message}"),
            (Some(code), None) => format!("STS refused AssumeRole (HTTP {status}): {code}"),
            _ => format!("STS answered AssumeRole with HTTP {status} and no error code"),
        });
    }
    let credentials = element(xml, "Credentials")
        .ok_or("STS's AssumeRole answer has no Credentials; nothing was minted".to_string())?;
    let field = |name: &str| {
        element(&credentials, name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| format!("STS's AssumeRole answer has no {name}; nothing was minted"))
    };
    let access_key_id = field("AccessKeyId")?.trim().to_string();
    let secret_access_key = Zeroizing::new(field("SecretAccessKey")?.trim().to_string());
    let session_token = Zeroizing::new(field("SessionToken")?.trim().to_string());
    let expiration = field("Expiration")?.trim().to_string();
    Ok(Minted { session_name: String::new(), access_key_id, secret_access_key, session_token, expiration })
}

/// The text of the first `<name>...</name>`, entities decoded. STS's answers are flat XML
/// without attributes on these elements, CDATA or nesting of the same name.
fn element(xml: &str, name: &str) -> Option<Zeroizing<String>> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let raw = &xml[start..end];
    let mut out = Zeroizing::new(String::with_capacity(raw.len()));
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let (text, len) = [("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&apos;", "'")]
            .iter()
            .find(|(entity, _)| after.starts_with(entity))
            .map_or(("&", 1), |(entity, text)| (*text, entity.len()));
        out.push_str(text);
        rest = &after[len..];
    }
    out.push_str(rest);
    Some(out)
}

/// A server's text fit for an error message: one line, printable, bounded.
fn printable(text: &str, max: usize) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max).collect::<String>().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mint::aws_policy::Statement;

    fn cfg() -> Config {
        Config {
            role_arn: "arn:aws:iam::123456789012:role/agent".into(),
            region: "us-east-1".into(),
            endpoint: None,
            duration_seconds: 900,
            external_id: None,
        }
    }

    fn policy() -> SessionPolicy {
        SessionPolicy {
            statements: vec![Statement {
                actions: vec!["s3:GetObject".into()],
                resources: vec!["arn:aws:s3:::b/k".into()],
            }],
        }
    }

    #[test]
    fn session_names_keep_what_sts_accepts() {
        assert_eq!(session_name("r-20261203-abc"), "guardsh-r-20261203-abc");
        assert_eq!(session_name("a b/c:d"), "guardsh-a-b-c-d");
        assert_eq!(session_name("ü"), "guardsh--");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
        assert_eq!(session_name(""), "guardsh-");
    }

    #[test]
    fn endpoints_are_https_or_loopback_http() {
        assert_eq!(endpoint(&cfg()).as_deref(), Ok("https://sts.us-east-1.amazonaws.com"));
        for (url, ok) in [
            ("https://sts.eu-west-1.amazonaws.com/", true),
            ("http://127.0.0.1:5000", true),
            ("http://localhost:5000", true),
            ("http://[::1]:5000", true),
            ("http://sts.example.com", false),
            ("http://127.0.0.1.evil.example:80", false),
            ("ftp://x", false),
            ("https://user@host", false),
            ("https://", false),
        ] {
            let c = Config { endpoint: Some(url.into()), ..cfg() };
            assert_eq!(endpoint(&c).is_ok(), ok, "{url}: {:?}", endpoint(&c));
        }
        assert!(endpoint(&Config { region: "us-east-1/../x".into(), ..cfg() }).is_err());
    }

    #[test]
    fn the_body_is_the_documented_form_and_checks_its_inputs() {
        let body = request_body(&cfg(), &policy(), "guardsh-r1").expect("builds");
        assert_eq!(
            body,
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fagent\
             &RoleSessionName=guardsh-r1&SourceIdentity=guardsh-r1\
             &Policy=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C\
             %22Action%22%3A%5B%22s3%3AGetObject%22%5D%2C%22Resource%22%3A%5B%22arn%3Aaws%3As3%3A%3A%3Ab%2Fk%22%5D%7D%5D%7D\
             &DurationSeconds=900"
        );
        let with_id =
            request_body(&Config { external_id: Some("x y".into()), ..cfg() }, &policy(), "s").expect("builds");
        assert!(with_id.ends_with("&ExternalId=x%20y"), "{with_id}");
        assert!(request_body(&Config { duration_seconds: 899, ..cfg() }, &policy(), "s").is_err());
        assert!(request_body(&Config { role_arn: "arn:aws:iam::1:user/u".into(), ..cfg() }, &policy(), "s").is_err());
        assert!(request_body(&cfg(), &SessionPolicy { statements: vec![] }, "s").is_err());
    }

    /// AWS's SigV4 test suite, `v4/post-x-www-form-urlencoded` (aws-signing-test-suite, as
    /// aws-sigv4 1.6 ships it: body signed, so `x-amz-content-sha256`): the signer produces AWS's
    /// published signature. moto checks signatures too (tests/mint_sts.rs); this pins the
    /// algorithm without a server.
    #[test]
    fn signing_matches_aws_known_answer() {
        let c = Config { region: "us-east-1".into(), endpoint: Some("https://example.amazonaws.com".into()), ..cfg() };
        let held = Held {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
        };
        // 20150830T123600Z
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        use aws_sigv4::http_request::{PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign};
        let mut settings = SigningSettings::default();
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity =
            aws_credential_types::Credentials::new(held.access_key_id, held.secret_access_key, None, None, "t").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&c.region)
            .name("service")
            .time(at)
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let request = SignableRequest::new(
            "POST",
            "https://example.amazonaws.com/",
            [
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", "example.amazonaws.com"),
                ("content-length", "13"),
            ]
            .into_iter(),
            SignableBody::Bytes(b"Param1=value1"),
        )
        .expect("signable");
        let (_, signature) = sign(request, &params).expect("signs").into_parts();
        assert_eq!(signature, "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b");
        // And our own path signs with the held key, the sts service and a date header.
        let headers = signed_headers(&c, &held, "https://example.amazonaws.com", b"Param1=value1", at).expect("signs");
        let auth = headers.iter().find(|(n, _)| n == "authorization").expect("authorization header");
        assert!(
            auth.1.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request"),
            "{}",
            *auth.1
        );
        assert!(!auth.1.contains("wJalr"));
    }

    #[test]
    fn answers_are_parsed_and_errors_carry_code_and_message_only() {
        let ok = "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
                  <SourceIdentity>guardsh-r1</SourceIdentity><AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/agent/guardsh-r1</Arn>\
                  <AssumedRoleId>AROA:guardsh-r1</AssumedRoleId></AssumedRoleUser><Credentials>\
                  <AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>se&amp;cret</SecretAccessKey>\
                  <SessionToken>tok</SessionToken><Expiration>2026-12-03T15:00:00Z</Expiration></Credentials>\
                  </AssumeRoleResult></AssumeRoleResponse>";
        let m = parse_answer(200, ok).expect("parses");
        assert_eq!((m.access_key_id.as_str(), m.secret_access_key.as_str()), ("ASIAEXAMPLE", "se&cret"));
        assert_eq!((m.session_token.as_str(), m.expiration.as_str()), ("tok", "2026-12-03T15:00:00Z"));
        assert!(!format!("{m:?}").contains("se&cret"));
        let err = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                   <Message>not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>";
        assert_eq!(
            parse_answer(403, err).err().as_deref(),
            Some("STS refused AssumeRole (HTTP 403): AccessDenied: not authorized to perform: sts:AssumeRole")
        );
        assert!(parse_answer(200, "<AssumeRoleResponse/>").is_err());
        assert!(parse_answer(200, &ok.replace("<SessionToken>tok</SessionToken>", "")).is_err());
        assert!(parse_answer(500, "oops").is_err());
    }
}
