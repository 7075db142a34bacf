//! The web front end's HTTP side: the chat page's assets (embedded in the
//! binary, no CDN, no build step), their headers, and the WebSocket
//! upgrade's checks (RFC 6455 section 4.2, and `Origin` against
//! cross-site WebSocket hijacking). Pure: a parsed request in, a response
//! (or the go-ahead to upgrade) out; the loop does the I/O and the codec
//! switch.

use tungstenite::handshake::derive_accept_key;

use crate::http::{self, HeadError, Request};

/// The page's policy: our own scripts, styles and images only, the
/// WebSocket back to where the page came from, no framing, no forms, no
/// plugins. Nothing inline: the page is written for it.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("assets/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/style.css"),
    },
    Asset {
        path: "/icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/icon.svg"),
    },
];

/// What a web request gets.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// A whole response; the connection closes after it.
    Response(Vec<u8>),
    /// A 403 for a WebSocket from a page of another origin (named, for
    /// the log); the connection closes after it.
    ForeignOrigin(String, Vec<u8>),
    /// The 101 response; the connection becomes a WebSocket chat client.
    Upgrade(Vec<u8>),
}

/// Where the page is served from, for the same-origin check.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The listener speaks TLS (the page's origin is `https://`).
    pub tls: bool,
    /// Origins allowed besides the page's own (`--allowed-origin`).
    pub allowed_origins: &'a [String],
}

/// Answers one request head.
pub fn route(request: Result<Request, HeadError>, site: Site<'_>) -> Reply {
    let req = match request {
        Ok(req) => req,
        Err(e) => return Reply::Response(e.response()),
    };
    let path = req.path.split('?').next().unwrap_or("");
    if path == "/ws" {
        return upgrade(&req, site);
    }
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return Reply::Response(http::error(404));
    };
    if req.method != "GET" && req.method != "HEAD" {
        return Reply::Response(http::error(405));
    }
    let etag = etag(asset.body);
    let fresh = req
        .if_none_match
        .as_deref()
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let (status, body) = if fresh {
        (304, &[][..])
    } else {
        (200, asset.body)
    };
    let mut response = http::response(
        status,
        &[
            ("Content-Type", asset.content_type),
            // Revalidate each time (cheap: a 304), so an upgrade of the
            // server is seen at once.
            ("Cache-Control", "no-cache"),
            ("ETag", &etag),
            ("Content-Security-Policy", CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Frame-Options", "DENY"),
        ],
        body,
    );
    if req.method == "HEAD" {
        response.truncate(response.len() - body.len());
    }
    Reply::Response(response)
}

/// The WebSocket handshake: a GET with the upgrade headers, version 13,
/// and an `Origin` that is the page's own or allowed. A client that sends
/// no `Origin` is not a browser and cannot be driven by another site.
fn upgrade(req: &Request, site: Site<'_>) -> Reply {
    if req.method != "GET" {
        return Reply::Response(http::error(405));
    }
    let (true, true, Some(key)) = (req.upgrade_websocket, req.connection_upgrade, &req.ws_key)
    else {
        return Reply::Response(http::error(400));
    };
    if !is_ws_key(key.trim()) {
        return Reply::Response(http::error(400));
    }
    if req.ws_version.as_deref() != Some("13") {
        return Reply::Response(http::response(
            426,
            &[("Sec-WebSocket-Version", "13")],
            b"426 Upgrade Required: WebSocket version 13\n",
        ));
    }
    if let Some(origin) = &req.origin {
        if !origin_allowed(origin, req.host.as_deref(), site) {
            return Reply::ForeignOrigin(origin.clone(), http::error(403));
        }
    }
    let accept = derive_accept_key(key.trim().as_bytes());
    Reply::Upgrade(http::response(
        101,
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", &accept),
        ],
        b"",
    ))
}

/// True if a browser on `origin` may open the WebSocket: the page's own
/// origin (same scheme and `Host`), or one listed.
fn origin_allowed(origin: &str, host: Option<&str>, site: Site<'_>) -> bool {
    let scheme = if site.tls { "https://" } else { "http://" };
    let own = host.is_some_and(|h| {
        origin
            .strip_prefix(scheme)
            .is_some_and(|o| o.eq_ignore_ascii_case(h))
    });
    own || site
        .allowed_origins
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// True if `key` is base64 of 16 bytes (RFC 6455 section 4.2.1): 22
/// base64 characters and `==`.
fn is_ws_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b.ends_with(b"==")
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// A strong validator for an embedded file: FNV-1a of its bytes.
fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> Site<'static> {
        Site {
            tls: false,
            allowed_origins: &[],
        }
    }

    fn ws_request(origin: Option<&str>) -> Request {
        Request {
            method: "GET".into(),
            path: "/ws".into(),
            host: Some("127.0.0.1:8080".into()),
            origin: origin.map(str::to_owned),
            upgrade_websocket: true,
            connection_upgrade: true,
            ws_key: Some("dGhlIHNhbXBsZSBub25jZQ==".into()),
            ws_version: Some("13".into()),
            if_none_match: None,
        }
    }

    fn text(reply: Reply) -> String {
        match reply {
            Reply::Response(b) | Reply::ForeignOrigin(_, b) | Reply::Upgrade(b) => {
                String::from_utf8_lossy(&b).into_owned()
            }
        }
    }

    #[test]
    fn upgrade_answers_with_the_rfc_accept_key() {
        let reply = route(Ok(ws_request(Some("http://127.0.0.1:8080"))), site());
        let Reply::Upgrade(bytes) = reply else {
            panic!("not upgraded: {reply:?}")
        };
        let head = String::from_utf8(bytes).unwrap();
        // The example from RFC 6455 section 1.3.
        assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(head.starts_with("HTTP/1.1 101 "));
    }

    #[test]
    fn other_origins_are_refused_unless_allowed() {
        let evil = ws_request(Some("http://evil.example"));
        assert!(text(route(Ok(evil.clone()), site())).starts_with("HTTP/1.1 403 "));
        let allowed = ["http://evil.example".to_owned()];
        let listed = Site {
            tls: false,
            allowed_origins: &allowed,
        };
        assert!(matches!(route(Ok(evil), listed), Reply::Upgrade(_)));
        // The page's own host over the other scheme is another origin.
        let https = ws_request(Some("https://127.0.0.1:8080"));
        assert!(text(route(Ok(https), site())).starts_with("HTTP/1.1 403 "));
        // No Origin: not a browser.
        assert!(matches!(
            route(Ok(ws_request(None)), site()),
            Reply::Upgrade(_)
        ));
    }

    #[test]
    fn the_page_has_its_headers_and_revalidates() {
        let get = Request {
            method: "GET".into(),
            path: "/".into(),
            ..Request::default()
        };
        let page = text(route(Ok(get.clone()), site()));
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        for h in [
            "Content-Type: text/html; charset=utf-8",
            "Content-Security-Policy: default-src 'none'",
            "X-Content-Type-Options: nosniff",
            "Cache-Control: no-cache",
        ] {
            assert!(page.contains(h), "{h} missing");
        }
        let tag = page
            .lines()
            .find_map(|l| l.strip_prefix("ETag: "))
            .unwrap()
            .to_owned();
        let again = Request {
            if_none_match: Some(tag),
            ..get
        };
        assert!(text(route(Ok(again), site())).starts_with("HTTP/1.1 304 "));
    }

    #[test]
    fn unknown_paths_bad_methods_and_bad_heads() {
        let req = |method: &str, path: &str| Request {
            method: method.into(),
            path: path.into(),
            ..Request::default()
        };
        assert!(text(route(Ok(req("GET", "/etc/passwd")), site())).starts_with("HTTP/1.1 404 "));
        assert!(text(route(Ok(req("POST", "/")), site())).starts_with("HTTP/1.1 405 "));
        assert!(text(route(Err(HeadError::Malformed), site())).starts_with("HTTP/1.1 400 "));
        assert!(text(route(Err(HeadError::TooLarge), site())).starts_with("HTTP/1.1 431 "));
        // A key that is not 16 bytes of base64: 400.
        let mut short = ws_request(None);
        short.ws_key = Some("c2hvcnQ=".into());
        assert!(text(route(Ok(short), site())).starts_with("HTTP/1.1 400 "));
        // Not an upgrade: 400.
        let plain = req("GET", "/ws");
        assert!(text(route(Ok(plain), site())).starts_with("HTTP/1.1 400 "));
        let head = text(route(Ok(req("HEAD", "/")), site()));
        assert!(head.ends_with("\r\n\r\n"), "HEAD has no body");
    }
}
