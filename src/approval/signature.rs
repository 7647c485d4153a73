//! Signature approvals: an OpenSSH signature (SSHSIG, as made by `ssh-keygen -Y sign`) over a
//! request's digest, checked against an allowed_signers file in the format git uses for
//! `gpg.ssh.allowedSignersFile`.
//!
//! Pure: text in, verdict out. A FIDO (sk) signature also carries the authenticator's flags; the
//! signature covers them, but a verifier only checks that they were signed, not what they say, so
//! the user-presence bit is checked here: an sk key used without a touch does not approve.

use ssh_key::{Algorithm, HashAlg, PublicKey, SshSig};

/// The SSHSIG namespace of guardsh approvals. A signature made for another purpose (a git commit,
/// a file) has another namespace and approves nothing.
pub const NAMESPACE: &str = "guardsh-approval";

/// What is signed: the request digest, in a form that cannot be mistaken for anything else.
pub fn message(request_digest: &str) -> String {
    format!("guardsh-approval-v1\n{request_digest}\n")
}

/// One line of an allowed_signers file.
#[derive(Debug, Clone)]
pub struct Signer {
    pub principals: String,
    pub key: PublicKey,
    /// `namespaces="..."`: the namespace patterns this key may sign for (any when absent).
    pub namespaces: Option<Vec<String>>,
    /// `valid-after` / `valid-before`, as seconds since the epoch (UTC).
    pub valid_after: Option<u64>,
    pub valid_before: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignersError {
    #[error("{path}:{line}: {message}")]
    Line { path: String, line: usize, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error("the signature is not a valid SSH signature ({0})")]
    Malformed(String),
    #[error(
        "the signature was made for namespace {0:?}, not {NAMESPACE:?} (sign with ssh-keygen -Y sign -n {NAMESPACE})"
    )]
    WrongNamespace(String),
    #[error("key {0} is not in the allowed signers file")]
    UnknownSigner(String),
    #[error("key {0} is not allowed to sign in namespace {NAMESPACE:?} (see its namespaces= option)")]
    NamespaceNotAllowed(String),
    #[error("key {0} is outside its valid-after/valid-before window")]
    OutsideValidity(String),
    #[error("the signature does not match the request (it was altered, or signed for another request)")]
    BadSignature,
    #[error("the FIDO key {0} signed without user presence (no touch); approve again and touch the key")]
    NoUserPresence(String),
}

/// Who signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principals: String,
    pub fingerprint: String,
}

/// Splits a line into fields on white space, keeping double-quoted parts together.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn is_key_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-")
}

/// `YYYYMMDD[HHMM[SS]][Z]` as seconds since the epoch, read as UTC.
fn parse_time(s: &str) -> Option<u64> {
    let digits = s.trim_end_matches(['Z', 'z']);
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits.get(r).map_or(Some(0), |d| d.parse::<u64>().ok());
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (Howard Hinnant), for years after 1970.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Parses an allowed_signers file. `path` is only used in error messages.
pub fn parse_signers(path: &str, text: &str) -> Result<Vec<Signer>, SignersError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let err = |message: String| SignersError::Line { path: path.to_string(), line: i + 1, message };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f = fields(line);
        let (principals, options, key_at) = match f.as_slice() {
            [p, t, ..] if is_key_type(t) => (p.clone(), None, 1),
            [p, o, t, ..] if is_key_type(t) => (p.clone(), Some(o.clone()), 2),
            _ => return Err(err("expected: principals [options] key-type base64-key".into())),
        };
        let key_text = format!("{} {}", f[key_at], f.get(key_at + 1).cloned().unwrap_or_default());
        let key = PublicKey::from_openssh(&key_text).map_err(|e| err(format!("not a public key: {e}")))?;
        let mut signer = Signer { principals, key, namespaces: None, valid_after: None, valid_before: None };
        for opt in options.iter().flat_map(|o| split_options(o)) {
            let (name, value) =
                opt.split_once('=').map_or((opt.as_str(), None), |(n, v)| (n, Some(v.trim_matches('"'))));
            match (name.to_ascii_lowercase().as_str(), value) {
                ("namespaces", Some(v)) => signer.namespaces = Some(v.split(',').map(str::to_string).collect()),
                ("valid-after", Some(v)) => {
                    signer.valid_after = Some(parse_time(v).ok_or_else(|| err(format!("bad time {v:?}")))?)
                }
                ("valid-before", Some(v)) => {
                    signer.valid_before = Some(parse_time(v).ok_or_else(|| err(format!("bad time {v:?}")))?)
                }
                ("cert-authority", _) => {
                    return Err(err("cert-authority keys are not supported; list the signers' own keys".into()));
                }
                (other, _) => return Err(err(format!("unknown option {other:?}"))),
            }
        }
        out.push(signer);
    }
    Ok(out)
}

/// Splits `a,b="x,y",c` at the commas outside quotes.
fn split_options(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

/// `*` and `?` wildcards, as ssh's match_pattern.
fn pattern_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(&p, &t)
}

/// Checks an armoured SSHSIG over `message(digest)` against the allowed signers at time `now`.
pub fn verify(armored: &str, request_digest: &str, signers: &[Signer], now: u64) -> Result<Verified, SigError> {
    let sig = SshSig::from_pem(armored.trim()).map_err(|e| SigError::Malformed(e.to_string()))?;
    if sig.namespace() != NAMESPACE {
        return Err(SigError::WrongNamespace(sig.namespace().to_string()));
    }
    let key = PublicKey::new(sig.public_key().clone(), "");
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let signer = signers
        .iter()
        .find(|s| s.key.key_data() == sig.public_key())
        .ok_or_else(|| SigError::UnknownSigner(fingerprint.clone()))?;
    if let Some(ns) = &signer.namespaces
        && !ns.iter().any(|p| pattern_matches(p, NAMESPACE))
    {
        return Err(SigError::NamespaceNotAllowed(fingerprint));
    }
    if signer.valid_after.is_some_and(|t| now < t) || signer.valid_before.is_some_and(|t| now >= t) {
        return Err(SigError::OutsideValidity(fingerprint));
    }
    key.verify(NAMESPACE, message(request_digest).as_bytes(), &sig).map_err(|_| SigError::BadSignature)?;
    // For sk keys the signature data ends with the flags byte and a 4-byte counter; bit 0 of the
    // flags is user presence. (Checked after verification, so the flags are the signed ones.)
    if matches!(sig.algorithm(), Algorithm::SkEd25519 | Algorithm::SkEcdsaSha2NistP256) {
        let data = sig.signature_bytes();
        let flags = data.len().checked_sub(5).and_then(|i| data.get(i)).copied().unwrap_or(0);
        if flags & 0x01 == 0 {
            return Err(SigError::NoUserPresence(fingerprint));
        }
    }
    Ok(Verified { principals: signer.principals.clone(), fingerprint })
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer as _;
    use sha2::{Digest, Sha256};
    use ssh_key::public::{Ed25519PublicKey, KeyData, SkEd25519};
    use ssh_key::{LineEnding, Signature};

    use super::*;

    /// An sk-ed25519 signature as a FIDO authenticator makes it, with the given flags: ed25519 over
    /// sha256(application) || flags || counter || sha256(signed data).
    fn sk_signature(flags: u8, digest: &str) -> (String, String) {
        let secret = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let public = KeyData::SkEd25519(SkEd25519::new(Ed25519PublicKey(secret.verifying_key().to_bytes()), "ssh:"));
        let signed = SshSig::signed_data(NAMESPACE, HashAlg::Sha512, message(digest).as_bytes()).expect("signed data");
        let counter = 1u32.to_be_bytes();
        let mut data = Vec::new();
        data.extend(Sha256::digest(b"ssh:"));
        data.push(flags);
        data.extend(counter);
        data.extend(Sha256::digest(&signed));
        let mut sig_bytes = secret.sign(&data).to_bytes().to_vec();
        sig_bytes.push(flags);
        sig_bytes.extend(counter);
        let signature = Signature::new(Algorithm::SkEd25519, sig_bytes).expect("signature");
        let sig = SshSig::new(public.clone(), NAMESPACE, HashAlg::Sha512, signature).expect("sshsig");
        let line = format!("human@example {}", PublicKey::new(public, "").to_openssh().expect("openssh"));
        (sig.to_pem(LineEnding::LF).expect("pem"), line)
    }

    #[test]
    fn fido_signatures_need_user_presence() {
        let (touched, line) = sk_signature(0x01, "d1");
        let signers = parse_signers("allowed", &line).expect("parses");
        assert_eq!(verify(&touched, "d1", &signers, 0).expect("valid").principals, "human@example");
        let (untouched, _) = sk_signature(0x00, "d1");
        assert!(matches!(verify(&untouched, "d1", &signers, 0), Err(SigError::NoUserPresence(_))));
        // The flags are signed: setting the presence bit after the fact breaks the signature.
        let parsed = SshSig::from_pem(&untouched).expect("pem");
        let mut bytes = parsed.signature_bytes().to_vec();
        let at = bytes.len() - 5;
        bytes[at] |= 0x01;
        let forged_sig = Signature::new(Algorithm::SkEd25519, bytes).expect("signature");
        let forged = SshSig::new(parsed.public_key().clone(), NAMESPACE, HashAlg::Sha512, forged_sig).expect("sshsig");
        let forged = forged.to_pem(LineEnding::LF).expect("pem");
        assert_eq!(verify(&forged, "d1", &signers, 0), Err(SigError::BadSignature));
        assert_eq!(verify(&touched, "d2", &signers, 0), Err(SigError::BadSignature), "another request");
    }

    #[test]
    fn allowed_signers_lines() {
        let (_, line) = sk_signature(1, "d");
        let key = line.split_once(' ').expect("key").1;
        let text = format!(
            "# comment\n\na@x,b@x {key}\nc@x namespaces=\"git,guardsh-*\",valid-after=\"20260101\" {key} comment here\n"
        );
        let s = parse_signers("f", &text).expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].namespaces.as_deref(), Some(&["git".to_string(), "guardsh-*".to_string()][..]));
        assert_eq!(s[1].valid_after, Some(1_767_225_600));
        for (bad, want) in [
            ("a@x ssh-ed25519 !!!", "f:1: not a public key"),
            ("a@x cert-authority ssh-ed25519 AAAA", "f:1: "),
            ("just-one-field", "f:1: expected"),
            (&format!("a@x bogus=1 {key}") as &str, "unknown option"),
        ] {
            let e = parse_signers("f", bad).expect_err(bad).to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn namespace_and_validity_options_are_enforced() {
        let (sig, line) = sk_signature(1, "d");
        let key = line.split_once(' ').expect("key").1;
        let only_git = parse_signers("f", &format!("h@x namespaces=\"git\" {key}")).expect("parses");
        assert!(matches!(verify(&sig, "d", &only_git, 0), Err(SigError::NamespaceNotAllowed(_))));
        let later = parse_signers("f", &format!("h@x valid-after=\"20300101\" {key}")).expect("parses");
        assert!(matches!(verify(&sig, "d", &later, 1_800_000_000), Err(SigError::OutsideValidity(_))));
        assert!(verify(&sig, "d", &later, 1_900_000_000).is_ok());
        assert!(matches!(verify(&sig, "d", &[], 0), Err(SigError::UnknownSigner(_))));
        assert!(matches!(verify("not a signature", "d", &later, 0), Err(SigError::Malformed(_))));
    }
}
