//! The decision from an OPA server: one POST of `{"input": ...}` to its Data API over plain HTTP/1.1, with a deadline.
//!
//! A small std-only client: `http://` only (a TLS stack for one local request is not worth its
//! weight; run OPA as a sidecar on 127.0.0.1, or put a local proxy in front of a remote one).
//! Anything but a `200` with a JSON body whose `result` is present is an error the stage turns
//! into a deny (or an ask, with `on_error = "ask"`); an absent `result` is undefined.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Answers larger than this are not read.
const LIMIT: usize = 4 << 20;

/// Where to ask: host, port and path of an `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Target {
    /// Parses `http://HOST[:PORT]/PATH`. The message of an error says what to write instead.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("https://") {
            return Err(
                "opa_url: https is not supported; run OPA on this machine (http://127.0.0.1:8181/v1/data/guardsh/decision) or put a local TLS proxy in front of it"
                    .into(),
            );
        }
        let Some(rest) = url.strip_prefix("http://") else {
            return Err("opa_url must start with http:// (http://127.0.0.1:8181/v1/data/guardsh/decision)".into());
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/".to_string() } else { path.to_string() };
        if authority.is_empty() || authority.contains('@') || path.contains(['#', ' ', '\r', '\n']) {
            return Err("opa_url: expected http://HOST:PORT/v1/data/PATH, without user information".into());
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h.to_string(), p.parse::<u16>().map_err(|_| format!("opa_url: {p:?} is not a port"))?)
            }
            _ => (authority.to_string(), 80),
        };
        if !path.starts_with("/v1/data") {
            return Err("opa_url: the path is OPA's Data API, /v1/data/... (/v1/data/guardsh/decision)".into());
        }
        Ok(Target { host, port, path })
    }
}

/// POSTs `{"input": input}` and returns the response's `result` (`None`: undefined).
pub fn query(target: &Target, input: &Value, limit: Duration) -> Result<Option<Value>, String> {
    let deadline = Instant::now() + limit;
    let body = serde_json::to_vec(&json!({ "input": input })).map_err(|e| e.to_string())?;
    let addrs: Vec<SocketAddr> = (target.host.trim_matches(['[', ']']), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let mut stream = None;
    let mut last = String::from("no address");
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let mut stream = stream.ok_or_else(|| format!("cannot reach {}:{} ({last})", target.host, target.port))?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: guardsh\r\n\r\n",
        target.path,
        target.host,
        target.port,
        body.len()
    );
    let timed_out = |e: std::io::Error| {
        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) {
            format!("no answer within {} ms", limit.as_millis())
        } else {
            format!("the connection failed: {e}")
        }
    };
    let set = |s: &TcpStream| -> Result<(), String> {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        s.set_read_timeout(Some(left)).and_then(|()| s.set_write_timeout(Some(left))).map_err(|e| e.to_string())
    };
    set(&stream)?;
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body)).map_err(timed_out)?;
    let mut response = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        if Instant::now() >= deadline {
            return Err(format!("no answer within {} ms", limit.as_millis()));
        }
        set(&stream)?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                response.extend_from_slice(&buf[..n]);
                if response.len() > LIMIT {
                    return Err("the answer is larger than 4 MiB".into());
                }
                if complete(&response) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(timed_out(e)),
        }
    }
    parse_response(&response)
}

/// Whether a response with a `Content-Length` has all of its body (else it ends at close).
fn complete(response: &[u8]) -> bool {
    let Some(end) = find(response, b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(&response[..end]);
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .is_some_and(|n| response.len() >= end + 4 + n)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `result` of an HTTP/1.1 response from OPA's Data API.
pub fn parse_response(response: &[u8]) -> Result<Option<Value>, String> {
    let end = find(response, b"\r\n\r\n").ok_or("the answer is not HTTP")?;
    let head = std::str::from_utf8(&response[..end]).map_err(|_| "the answer is not HTTP")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err("the answer is not HTTP".into());
    };
    if !version.starts_with("HTTP/1.") {
        return Err("the answer is not HTTP/1.x".into());
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut body = response[end + 4..].to_vec();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    } else if let Some(n) = header("content-length") {
        let n: usize = n.parse().map_err(|_| "the answer's Content-Length is not a number")?;
        if body.len() < n {
            return Err("the answer ended early".into());
        }
        body.truncate(n);
    }
    if code != "200" {
        let text = String::from_utf8_lossy(&body);
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        let message: String = message.chars().filter(|c| !c.is_control()).take(200).collect();
        return Err(format!(
            "the server answered {code}{}",
            if message.is_empty() { String::new() } else { format!(": {message}") }
        ));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|_| "the answer is not JSON")?;
    let Some(obj) = value.as_object() else { return Err("the answer is not a JSON object".into()) };
    Ok(obj.get("result").cloned())
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").ok_or("a chunked answer ended early")?;
        let size = std::str::from_utf8(&body[..line_end]).map_err(|_| "a chunk size is not text")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "a chunk size is not a number")?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err("a chunked answer ended early".into());
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:8181/v1/data/guardsh/decision").expect("valid");
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("127.0.0.1", 8181, "/v1/data/guardsh/decision"));
        assert_eq!(Target::parse("http://opa/v1/data/x").expect("valid").port, 80);
        assert_eq!(Target::parse("http://[::1]:9/v1/data/x").expect("valid").host, "[::1]");
        for bad in [
            "https://opa/v1/data/x",
            "ftp://x",
            "http://u@h/v1/data/x",
            "http://h:99999/v1/data/x",
            "http://h/v0/x",
            "http://",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n{\"result\":{\"action\":\"deny\",\"x\":[1]}}  ";
        assert_eq!(parse_response(ok), Ok(Some(json!({"action": "deny", "x": [1]}))));
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n{}"), Ok(None));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"res\r\n8\r\nult\":1}\n\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Ok(Some(json!(1))));
        assert!(
            parse_response(b"HTTP/1.1 500 Internal\r\n\r\n{\"code\":\"internal_error\",\"message\":\"boom\"}")
                .is_err_and(|e| e.contains("500: boom"))
        );
        for bad in
            [&b"garbage"[..], b"HTTP/1.1 200 OK\r\n\r\nnot json", b"HTTP/1.1 200 OK\r\n\r\n[1]", b"SSH-2.0\r\n\r\n"]
        {
            assert!(parse_response(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
