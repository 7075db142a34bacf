//! HTTP/1.1 as far as we speak it: a request head, bounded in size and
//! parsed with `httparse`, and whole responses. Pure: bytes in, bytes out;
//! what a request gets is the caller's business (the metrics endpoint, the
//! web page, the WebSocket upgrade).

use std::fmt::Write as _;

/// The most bytes a request head may take; more is a 431 and a close.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The most header lines a request head may have.
const MAX_HEADERS: usize = 48;

/// The parts of a request head we act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The request target, e.g. `/ws`.
    pub path: String,
    /// `Host`.
    pub host: Option<String>,
    /// `Origin`.
    pub origin: Option<String>,
    /// `Upgrade: websocket` was asked for.
    pub upgrade_websocket: bool,
    /// `Connection` lists `upgrade`.
    pub connection_upgrade: bool,
    /// `Sec-WebSocket-Key`.
    pub ws_key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub ws_version: Option<String>,
    /// `If-None-Match`.
    pub if_none_match: Option<String>,
}

/// Why a request head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Longer than [`MAX_HEAD_BYTES`] (431).
    TooLarge,
    /// Not HTTP/1.x (400).
    Malformed,
}

impl HeadError {
    /// The response that refuses such a head.
    pub fn response(self) -> Vec<u8> {
        match self {
            HeadError::TooLarge => error(431),
            HeadError::Malformed => error(400),
        }
    }
}

/// Collects one request head across reads.
#[derive(Debug, Default)]
pub struct HeadBuf {
    buf: Vec<u8>,
}

impl HeadBuf {
    /// An empty head.
    pub fn new() -> HeadBuf {
        HeadBuf::default()
    }

    /// Takes bytes from `data` up to the end of the head (leaving anything
    /// after it in `data`). `None` until the head is complete.
    pub fn push(&mut self, data: &mut &[u8]) -> Option<Result<Request, HeadError>> {
        if data.is_empty() {
            return None;
        }
        // Look for the blank line in what we have plus the new bytes; start
        // a little before the old end, since "\r\n\r\n" may straddle reads.
        let old = self.buf.len();
        let room = MAX_HEAD_BYTES + 1 - old.min(MAX_HEAD_BYTES);
        let take = data.len().min(room);
        self.buf.extend_from_slice(&data[..take]);
        let from = old.saturating_sub(3);
        let end = memchr::memmem::find(&self.buf[from..], b"\r\n\r\n").map(|i| from + i + 4);
        match end {
            Some(end) => {
                *data = &data[end - old..];
                self.buf.truncate(end);
                let head = std::mem::take(&mut self.buf);
                Some(parse(&head))
            }
            None if self.buf.len() > MAX_HEAD_BYTES => {
                *data = &[];
                Some(Err(HeadError::TooLarge))
            }
            None => {
                *data = &data[take..];
                None
            }
        }
    }
}

/// Parses a complete head (ending in a blank line).
fn parse(head: &[u8]) -> Result<Request, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) | Err(_) => return Err(HeadError::Malformed),
    }
    let mut out = Request {
        method: req.method.unwrap_or_default().to_owned(),
        path: req.path.unwrap_or_default().to_owned(),
        ..Request::default()
    };
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            continue;
        };
        let value = value.trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            out.host = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("origin") {
            out.origin = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("upgrade") {
            out.upgrade_websocket |= has_token(value, "websocket");
        } else if name.eq_ignore_ascii_case("connection") {
            out.connection_upgrade |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            out.ws_key = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            out.ws_version = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("if-none-match") {
            out.if_none_match = Some(value.to_owned());
        }
    }
    Ok(out)
}

/// True if the comma-separated `list` holds `token` (case-insensitively).
fn has_token(list: &str, token: &str) -> bool {
    list.split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// A whole response: status line, `headers`, `Content-Length` and
/// `Connection: close` (unless it is a 101), then `body`.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = String::with_capacity(256);
    let _ = write!(head, "HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if status != 101 {
        let _ = write!(
            head,
            "Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// A plain-text error response.
pub fn error(status: u16) -> Vec<u8> {
    let body = format!("{} {}\n", status, reason(status));
    response(
        status,
        &[
            ("Content-Type", "text/plain; charset=utf-8"),
            ("X-Content-Type-Options", "nosniff"),
        ],
        body.as_bytes(),
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one by one; returns the outcome and the bytes left.
    fn feed(chunks: &[&[u8]]) -> (Option<Result<Request, HeadError>>, Vec<u8>) {
        let mut head = HeadBuf::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut data = *chunk;
            if let Some(r) = head.push(&mut data) {
                let mut rest = data.to_vec();
                for c in &chunks[i + 1..] {
                    rest.extend_from_slice(c);
                }
                return (Some(r), rest);
            }
            assert!(data.is_empty());
        }
        (None, Vec::new())
    }

    const UPGRADE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: example.com:8080\r\n\
Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Origin: http://example.com:8080\r\n\r\n";

    #[test]
    fn a_head_split_anywhere_parses_the_same() {
        for cut in 1..UPGRADE.len() {
            let (got, rest) = feed(&[&UPGRADE[..cut], &UPGRADE[cut..], b"\x81\x85"]);
            let req = got.expect("complete").expect("valid");
            assert_eq!(req.path, "/ws");
            assert!(req.upgrade_websocket && req.connection_upgrade);
            assert_eq!(req.ws_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
            assert_eq!(req.origin.as_deref(), Some("http://example.com:8080"));
            assert_eq!(rest, b"\x81\x85", "bytes after the head stay");
        }
    }

    #[test]
    fn bad_heads_are_refused() {
        let long = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; MAX_HEAD_BYTES]].concat();
        let cases: &[(&[u8], HeadError)] = &[
            (b"\x16\x03\x01\x02\x00\x01\r\n\r\n", HeadError::Malformed),
            (b"GET / SPDY/9\r\n\r\n", HeadError::Malformed),
            (b"hello\r\n\r\n", HeadError::Malformed),
            (&long, HeadError::TooLarge),
        ];
        for (input, want) in cases {
            let (got, _) = feed(&[input]);
            assert_eq!(
                got,
                Some(Err(*want)),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        // An endless head is refused once it passes the limit, not later.
        let mut head = HeadBuf::new();
        let chunk = [b'a'; 1000];
        let mut fed = 0;
        loop {
            let mut data = &chunk[..];
            fed += 1000;
            if let Some(r) = head.push(&mut data) {
                assert_eq!(r, Err(HeadError::TooLarge));
                break;
            }
        }
        assert!(fed <= MAX_HEAD_BYTES + 1000);
    }

    #[test]
    fn responses_have_length_and_close() {
        let r = String::from_utf8(response(200, &[("Content-Type", "text/plain")], b"hi")).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        );
        let e = String::from_utf8(error(404)).unwrap();
        assert!(
            e.starts_with("HTTP/1.1 404 Not Found\r\n") && e.ends_with("\r\n\r\n404 Not Found\n")
        );
    }
}
