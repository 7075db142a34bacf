//! The web front end over real sockets (issue 12): the page and its assets
//! with their headers, every refusal of the HTTP listener, the WebSocket
//! handshake and its Origin check, every kind of bad frame with its close
//! code, fragmentation and splitting, control frames, the close handshake
//! in both directions, keepalive pings, WebSocket and TCP clients in one
//! room, and a slow WebSocket reader. Exact bytes and lines throughout;
//! synchronised by reading, never by sleeping.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use chatroom::Config;
use common::ws::{
    fresh_key, http, op, read_response, start_web, switching_protocols, upgrade_request,
    web_config, Frame, WebServer, WsClient, WsGot, RFC_ACCEPT, RFC_KEY,
};
use common::{tcp, tcp_small, Client, Got, Lines as _};

/// The page's Content-Security-Policy, as the server must send it.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The four assets: path, Content-Type, body.
const ASSETS: [(&str, &str, &[u8]); 4] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../src/web/assets/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../src/web/assets/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_bytes!("../src/web/assets/style.css"),
    ),
    (
        "/icon.svg",
        "image/svg+xml",
        include_bytes!("../src/web/assets/icon.svg"),
    ),
];

fn start() -> WebServer {
    start_web(web_config())
}

/// A plain GET (or any method) for `path` with a Host header.
fn request(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n").into_bytes()
}

/// The exact plain-text error response for `status`.
fn error(status: u16, reason: &str) -> String {
    let body = format!("{status} {reason}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         X-Content-Type-Options: nosniff\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Asserts a whole response, then the server's clean close.
#[track_caller]
fn assert_response(got: &common::ws::Response, want: &str) {
    assert_eq!(String::from_utf8_lossy(&got.bytes()), want);
    assert_eq!(got.end, Got::Eof, "the server resets instead of closing");
}

/// The exact head of an asset response (without the blank line).
fn asset_head(status: &str, content_type: &str, etag: &str, len: usize) -> Vec<String> {
    [
        format!("HTTP/1.1 {status}"),
        format!("Content-Type: {content_type}"),
        "Cache-Control: no-cache".into(),
        format!("ETag: {etag}"),
        format!("Content-Security-Policy: {CSP}"),
        "X-Content-Type-Options: nosniff".into(),
        "Referrer-Policy: no-referrer".into(),
        "X-Frame-Options: DENY".into(),
        format!("Content-Length: {len}"),
        "Connection: close".into(),
    ]
    .into()
}

/// A strong ETag: a quoted string of visible characters.
#[track_caller]
fn check_etag(etag: &str) {
    let inner = etag
        .strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or_else(|| panic!("ETag {etag:?} is not a quoted strong validator"));
    assert!(
        !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_graphic() && b != b'"'),
        "ETag {etag:?}"
    );
}

/// The page and each asset: 200 with its Content-Type, CSP, nosniff,
/// no-cache, a strong ETag (stable, and different per asset), the exact
/// bytes of the embedded file, then a clean close.
#[test]
fn page_and_assets_are_served_with_their_headers() {
    let server = start();
    let mut etags = Vec::new();
    for (path, content_type, body) in ASSETS {
        let got = http(server.http, &request("GET", path, ""));
        let etag = got.header("ETag").to_owned();
        check_etag(&etag);
        assert_eq!(
            got.head,
            asset_head("200 OK", content_type, &etag, body.len()),
            "{path}"
        );
        assert!(
            got.body == body,
            "{path}: the body is not the embedded file"
        );
        assert_eq!(got.end, Got::Eof, "{path}");
        // The same validator every time.
        let again = http(server.http, &request("GET", path, ""));
        assert_eq!(again.header("ETag"), etag, "{path}");
        etags.push(etag);
    }
    etags.sort();
    etags.dedup();
    assert_eq!(etags.len(), ASSETS.len(), "two assets share an ETag");
    // A query string does not change what is served.
    let got = http(server.http, &request("GET", "/app.js?v=2", ""));
    assert_eq!(got.status(), "HTTP/1.1 200 OK");
    assert!(got.body == ASSETS[1].2);
}

/// `If-None-Match` with the asset's ETag (alone, in a list, or `*`) gets a
/// 304 with the same headers and no body; a stale tag gets the asset.
#[test]
fn if_none_match_gets_304_without_a_body() {
    let server = start();
    for (path, content_type, body) in ASSETS {
        let etag = http(server.http, &request("GET", path, ""))
            .header("ETag")
            .to_owned();
        for tags in [
            etag.clone(),
            format!("\"stale\", {etag}"),
            format!("W/\"x\",{etag} , \"y\""),
            "*".into(),
        ] {
            let got = http(
                server.http,
                &request("GET", path, &format!("If-None-Match: {tags}\r\n")),
            );
            assert_eq!(
                got.head,
                asset_head("304 Not Modified", content_type, &etag, 0),
                "{path} with If-None-Match: {tags}"
            );
            assert!(got.body.is_empty(), "{path}: a 304 with a body");
            assert_eq!(got.end, Got::Eof);
        }
        let stale = http(
            server.http,
            &request("GET", path, "If-None-Match: \"0000000000000000\"\r\n"),
        );
        assert_eq!(stale.status(), "HTTP/1.1 200 OK", "{path}");
        assert!(stale.body == body);
    }
}

/// HEAD gets the GET's headers (Content-Length included) and no body.
#[test]
fn head_has_the_headers_and_no_body() {
    let server = start();
    for (path, content_type, body) in ASSETS {
        let got = http(server.http, &request("HEAD", path, ""));
        let etag = got.header("ETag").to_owned();
        assert_eq!(
            got.head,
            asset_head("200 OK", content_type, &etag, body.len()),
            "{path}"
        );
        assert_eq!(got.body, b"", "{path}: HEAD with a body");
        assert_eq!(got.end, Got::Eof);
    }
}

/// Unknown paths are 404, other methods on an asset 405, a head that is not
/// HTTP/1.x 400: each the exact error response, then a clean close.
#[test]
fn unknown_paths_other_methods_and_garbage_are_refused() {
    let server = start();
    let not_found = error(404, "Not Found");
    for path in [
        "/nope",
        "/index.html",
        "/../Cargo.toml",
        "/app.js/",
        "//",
        "/WS",
    ] {
        assert_response(&http(server.http, &request("GET", path, "")), &not_found);
    }
    let not_allowed = error(405, "Method Not Allowed");
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let got = http(server.http, &request(method, "/", "Content-Length: 0\r\n"));
        assert_response(&got, &not_allowed);
    }
    let bad = error(400, "Bad Request");
    for garbage in [
        &b"hello\r\n\r\n"[..],
        b"GET / SPDY/9\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
        // A TLS ClientHello's first bytes on the plain listener.
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ] {
        assert_response(&http(server.http, garbage), &bad);
    }
    // The chat is unaffected.
    let mut alice = Client::login(server.addr, "alice");
    alice.send("still here");
    alice.expect("alice: still here");
}

/// A request head over 8 KiB gets 431 once it crosses the limit, whether
/// or not it would end, and the close is clean although the client is still
/// sending.
#[test]
fn a_head_over_8_kib_is_431() {
    let server = start();
    let too_large = error(431, "Request Header Fields Too Large");
    // A complete head just over the limit.
    let long = format!("X-Pad: {}\r\n", "a".repeat(8 * 1024));
    assert_response(&http(server.http, &request("GET", "/", &long)), &too_large);
    // Exactly at the limit is fine.
    let base = request("GET", "/", "X-Pad: \r\n").len();
    let fits = format!("X-Pad: {}\r\n", "a".repeat(8 * 1024 - base));
    let req = request("GET", "/", &fits);
    assert_eq!(req.len(), 8 * 1024);
    assert_eq!(http(server.http, &req).status(), "HTTP/1.1 200 OK");
    // A head that never ends: answered as soon as it crosses the limit,
    // while the client keeps sending; the server reads the rest away and
    // closes cleanly once we stop.
    let mut sock = tcp(server.http);
    sock.write_all(b"GET / HTTP/1.1\r\nX-Pad: ").unwrap();
    sock.write_all(&[b'b'; 9000]).unwrap();
    let mut head = vec![0; too_large.len()];
    sock.read_exact(&mut head).unwrap();
    assert_eq!(String::from_utf8_lossy(&head), too_large);
    sock.write_all(&[b'c'; 20_000]).unwrap();
    sock.shutdown(std::net::Shutdown::Write).unwrap();
    let rest = common::ws::read_to_close(&mut sock);
    assert_eq!(rest, (Vec::new(), Got::Eof));
}

/// A slow-loris client trickling a head that never ends gets 408 when the
/// request timeout passes (not before, and not much after), then a clean
/// close; the listener keeps serving.
#[test]
fn a_head_trickled_forever_is_closed_by_the_request_timeout() {
    let timeout = Duration::from_secs(1);
    let server = start_web(Config {
        request_timeout: timeout,
        ..web_config()
    });
    let started = Instant::now();
    let mut sock = tcp(server.http);
    let trickle = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
    let mut first = [0u8; 1];
    let mut i = 0;
    // One byte every 50 ms; the read that paces it also notices the answer.
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    loop {
        let byte = trickle.get(i).copied().unwrap_or(b'z');
        sock.write_all(&[byte]).unwrap();
        i += 1;
        match sock.read(&mut first) {
            Ok(1) => break,
            Ok(_) => panic!("closed without a response after {:?}", started.elapsed()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e} after {:?}", started.elapsed()),
        }
        assert!(
            started.elapsed() < timeout + Duration::from_secs(5),
            "never timed out"
        );
    }
    let elapsed = started.elapsed();
    let mut rest = read_response(&mut sock);
    rest.head[0].insert(0, first[0] as char);
    assert_response(&rest, &error(408, "Request Timeout"));
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_secs(2),
        "408 after {elapsed:?} for a {timeout:?} timeout"
    );
    assert!(i > 10, "only {i} bytes trickled");
    // Others are still served.
    assert_eq!(
        http(server.http, &request("GET", "/", "")).status(),
        "HTTP/1.1 200 OK"
    );
}

/// The upgrade answers RFC 6455's example key with the RFC's accept value
/// (and any other key with its own), exactly; the connection is then a chat
/// client whose first frame is the prompt; the upgrade is counted.
#[test]
fn upgrade_answers_with_the_accept_key() {
    let server = start();
    assert_eq!(
        switching_protocols(RFC_KEY),
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n\r\n"
        )
    );
    for key in [RFC_KEY.to_owned(), fresh_key(), fresh_key()] {
        let mut sock = tcp(server.http);
        sock.write_all(upgrade_request(&server.host(), None, &key, "").as_bytes())
            .unwrap();
        let want = switching_protocols(&key);
        let prompt = Frame::text(common::PROMPT).encode(None);
        let mut got = vec![0; want.len() + prompt.len()];
        sock.read_exact(&mut got).unwrap();
        assert_eq!(String::from_utf8_lossy(&got[..want.len()]), want);
        assert_eq!(got[want.len()..], prompt, "the prompt as one text frame");
    }
    server.wait_for("3 upgrades", |s| s.ws_upgrades == 3);
    // The header names and tokens are case-insensitive, the key trimmed.
    let mut sock = tcp(server.http);
    let key = fresh_key();
    let req = format!(
        "GET /ws HTTP/1.1\r\nhost: {}\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, upgrade\r\n\
         sec-websocket-key:   {key}  \r\nsec-websocket-version: 13\r\n\r\n",
        server.host()
    );
    sock.write_all(req.as_bytes()).unwrap();
    let want = switching_protocols(&key);
    let mut got = vec![0; want.len()];
    sock.read_exact(&mut got).unwrap();
    assert_eq!(String::from_utf8_lossy(&got), want);
    let mut c = WsClient::connect(server.http);
    c.expect_prompt();
}

/// `GET /ws` without the upgrade headers is 400, another method 405, a
/// version other than 13 (or none) 426 naming 13: exact responses, clean
/// closes, nothing counted as an upgrade.
#[test]
fn bad_upgrades_are_refused() {
    let server = start();
    let host = server.host();
    let key = fresh_key();
    let bad = error(400, "Bad Request");
    let without = |skip: &str| {
        let full = upgrade_request(&host, None, &key, "");
        full.split_inclusive("\r\n")
            .filter(|l| !l.starts_with(skip))
            .collect::<String>()
    };
    for req in [
        without("Upgrade:"),
        without("Connection:"),
        without("Sec-WebSocket-Key:"),
        upgrade_request(&host, None, &key, "").replace("Upgrade: websocket", "Upgrade: h2c"),
        upgrade_request(&host, None, &key, "")
            .replace("Connection: Upgrade", "Connection: keep-alive"),
        String::from_utf8(request("GET", "/ws", "")).unwrap(),
    ] {
        assert_response(&http(server.http, req.as_bytes()), &bad);
    }
    let post = upgrade_request(&host, None, &key, "").replacen("GET", "POST", 1);
    assert_response(
        &http(server.http, post.as_bytes()),
        &error(405, "Method Not Allowed"),
    );
    let body = "426 Upgrade Required: WebSocket version 13\n";
    let upgrade_required = format!(
        "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    for req in [
        upgrade_request(&host, None, &key, "")
            .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        without("Sec-WebSocket-Version:"),
    ] {
        assert_response(&http(server.http, req.as_bytes()), &upgrade_required);
    }
    assert_eq!(server.handle.stats().ws_upgrades, 0);
}

/// A browser on another origin is refused (403) unless that origin is
/// listed; the page's own origin (`http://<Host>`) and no Origin at all
/// are allowed.
#[test]
fn the_origin_check() {
    let server = start();
    let host = server.host();
    let forbidden = error(403, "Forbidden");
    for origin in [
        "http://evil.example".to_owned(),
        format!("https://{host}"),
        "null".into(),
        format!("http://{host}.evil.example"),
        format!("http://{}", host.replace("127.0.0.1", "localhost")),
    ] {
        let refused = WsClient::try_over(tcp(server.http), &host, Some(&origin))
            .err()
            .unwrap_or_else(|| panic!("{origin} was allowed"));
        assert_response(&refused, &forbidden);
    }
    assert_eq!(server.handle.stats().ws_upgrades, 0);
    // Allowed: its own origin (any case), and no Origin.
    for origin in [Some(format!("http://{host}")), None] {
        let mut c = WsClient::over(tcp(server.http), &host, origin.as_deref());
        c.expect_prompt();
    }
    drop(server);

    let server = start_web(Config {
        allowed_origins: vec![
            "http://evil.example".into(),
            "https://chat.example.org".into(),
        ],
        ..web_config()
    });
    let host = server.host();
    for origin in [
        "http://evil.example",
        "https://chat.example.org",
        "HTTPS://Chat.Example.Org",
    ] {
        let mut c = WsClient::over(tcp(server.http), &host, Some(origin));
        c.expect_prompt();
    }
    let mut own = WsClient::over(tcp(server.http), &host, Some(&format!("http://{host}")));
    own.expect_prompt();
    for origin in [
        "http://chat.example.org",
        "https://evil.example",
        "http://evil.example:81",
    ] {
        let refused = WsClient::try_over(tcp(server.http), &host, Some(origin))
            .err()
            .unwrap_or_else(|| panic!("{origin} was allowed"));
        assert_response(&refused, &forbidden);
    }
}

/// One bad thing a client can send, and the close code it earns.
struct Bad {
    what: &'static str,
    bytes: Vec<u8>,
    code: u16,
}

fn bad_frames(max_line: usize) -> Vec<Bad> {
    let text = |t: &str| Frame::text(t);
    let cat = |frames: &[Frame]| frames.iter().flat_map(|f| f.masked()).collect::<Vec<u8>>();
    let mut bad = vec![
        Bad {
            what: "unmasked text frame",
            bytes: text("hi").encode(None),
            code: 1002,
        },
        Bad {
            what: "unmasked ping",
            bytes: Frame::new(op::PING, b"p").encode(None),
            code: 1002,
        },
        Bad {
            what: "binary message",
            bytes: Frame::new(op::BINARY, b"bin").masked(),
            code: 1003,
        },
        Bad {
            what: "fragmented binary message",
            bytes: Frame::new(op::BINARY, b"bin").fin(false).masked(),
            code: 1003,
        },
        Bad {
            what: "invalid UTF-8",
            bytes: Frame::new(op::TEXT, &[b'a', 0xff, 0xfe]).masked(),
            code: 1007,
        },
        Bad {
            what: "overlong UTF-8 encoding",
            bytes: Frame::new(op::TEXT, &[0xc0, 0xaf]).masked(),
            code: 1007,
        },
        Bad {
            what: "encoded surrogate",
            bytes: Frame::new(op::TEXT, &[0xed, 0xa0, 0x80]).masked(),
            code: 1007,
        },
        Bad {
            what: "invalid UTF-8 in a first fragment (no last one sent)",
            bytes: Frame::new(op::TEXT, &[b'a', 0xff]).fin(false).masked(),
            code: 1007,
        },
        Bad {
            what: "a code point cut off by the last fragment",
            bytes: cat(&[
                Frame::new(op::TEXT, b"a").fin(false),
                Frame::new(op::CONTINUATION, &[0xc3]),
            ]),
            code: 1007,
        },
        Bad {
            what: "message one byte over max_line",
            bytes: text(&"a".repeat(max_line + 1)).masked(),
            code: 1009,
        },
        Bad {
            what: "a header announcing a huge message",
            bytes: {
                // 127: 64-bit length, 2^40 bytes; no payload follows.
                let mut b = vec![0x81, 0x80 | 127];
                b.extend_from_slice(&(1u64 << 40).to_be_bytes());
                b.extend_from_slice(&common::ws::MASK);
                b
            },
            code: 1009,
        },
        Bad {
            what: "fragments adding up past max_line",
            bytes: cat(&[
                Frame::new(op::TEXT, "a".repeat(max_line / 2).as_bytes()).fin(false),
                Frame::new(op::CONTINUATION, "b".repeat(max_line / 2).as_bytes()).fin(false),
                Frame::new(op::CONTINUATION, b"c"),
            ]),
            code: 1009,
        },
        Bad {
            what: "continuation without a message",
            bytes: Frame::new(op::CONTINUATION, b"x").masked(),
            code: 1002,
        },
        Bad {
            what: "text frame inside a fragmented message",
            bytes: cat(&[Frame::new(op::TEXT, b"a").fin(false), text("b")]),
            code: 1002,
        },
        Bad {
            what: "fragmented ping",
            bytes: Frame::new(op::PING, b"x").fin(false).masked(),
            code: 1002,
        },
        Bad {
            what: "fragmented close",
            bytes: Frame::close(1000, "").fin(false).masked(),
            code: 1002,
        },
        Bad {
            what: "ping over 125 bytes",
            bytes: Frame::new(op::PING, &[b'p'; 126]).masked(),
            code: 1002,
        },
        Bad {
            what: "close with a 1-byte payload",
            bytes: Frame::new(op::CLOSE, &[0x03]).masked(),
            code: 1002,
        },
        Bad {
            what: "close with code 1005 (never sent on the wire)",
            bytes: Frame::close(1005, "").masked(),
            code: 1002,
        },
        Bad {
            what: "close with code 999",
            bytes: Frame::close(999, "").masked(),
            code: 1002,
        },
        Bad {
            what: "close reason not UTF-8",
            bytes: Frame::new(op::CLOSE, &[0x03, 0xe8, 0xff]).masked(),
            code: 1007,
        },
    ];
    for (rsv, name) in [(4, "RSV1"), (2, "RSV2"), (1, "RSV3")] {
        bad.push(Bad {
            what: name,
            bytes: text("x").rsv(rsv).masked(),
            code: 1002,
        });
    }
    for opcode in [3, 7, 0xB, 0xF] {
        bad.push(Bad {
            what: "reserved opcode",
            bytes: Frame::new(opcode, b"x").masked(),
            code: 1002,
        });
    }
    bad
}

/// Every bad frame gets its close code (1002 protocol, 1003 binary, 1007
/// bad UTF-8, 1009 too big) in the server's close frame, then a clean EOF;
/// the room is told `* <name> left (protocol error)`, nothing of the bad
/// message reaches anyone, and the others chat on.
#[test]
fn bad_frames_get_their_close_code_then_eof() {
    let max_line = chatroom::framing::DEFAULT_MAX_LINE_BYTES;
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut wendy = WsClient::login(server.http, "wendy");
    alice.expect("* wendy joined lobby");
    for (i, bad) in bad_frames(max_line).into_iter().enumerate() {
        let name = format!("bad{i}");
        let mut c = WsClient::login(server.http, &name);
        alice.expect(&format!("* {name} joined lobby"));
        wendy.expect(&format!("* {name} joined lobby"));
        c.send_raw(&bad.bytes);
        let got = c.next();
        assert_eq!(
            got,
            WsGot::Frame(Frame::close(bad.code, "")),
            "{}: the close frame",
            bad.what
        );
        assert_eq!(c.next(), WsGot::Eof, "{}: then a clean EOF", bad.what);
        let left = format!("* {name} left (protocol error)");
        alice.expect(&left);
        wendy.expect(&left);
        alice.send(&format!("after {}", bad.what));
        alice.expect(&format!("alice: after {}", bad.what));
        wendy.expect(&format!("alice: after {}", bad.what));
    }
    wendy.send_text("and me");
    wendy.expect("wendy: and me");
    alice.expect("wendy: and me");
}

/// A bad frame before registering closes just the same, and no room hears
/// of it.
#[test]
fn bad_frames_before_registering_close_too() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    for bad in bad_frames(chatroom::framing::DEFAULT_MAX_LINE_BYTES) {
        let mut c = WsClient::connect(server.http);
        c.expect_prompt();
        c.send_raw(&bad.bytes);
        assert_eq!(c.frame(), Frame::close(bad.code, ""), "{}", bad.what);
        c.expect_eof();
    }
    alice.send("nobody came");
    alice.expect("alice: nobody came");
}

/// A message of exactly max_line bytes is a line (as over TCP), a message
/// made of fragments (some empty, with a ping between them) is one line,
/// and a code point split across fragments is whole again.
#[test]
fn fragmented_messages_are_one_line() {
    let max_line = chatroom::framing::DEFAULT_MAX_LINE_BYTES;
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::login(server.http, "w");
    alice.expect("* w joined lobby");

    let full = "m".repeat(max_line);
    w.send_text(&full);
    w.expect(&format!("w: {full}"));
    alice.expect(&format!("w: {full}"));

    let frames = [
        Frame::new(op::TEXT, b"hel").fin(false),
        Frame::new(op::CONTINUATION, b"").fin(false),
        Frame::new(op::PING, b"mid"),
        Frame::new(op::CONTINUATION, b"lo w\xc3").fin(false),
        Frame::new(op::CONTINUATION, b"\xa9rld"),
    ];
    for f in &frames {
        w.send_frame(f);
    }
    w.expect_frame(Frame::new(op::PONG, b"mid"));
    w.expect("w: hello w\u{e9}rld");
    alice.expect("w: hello w\u{e9}rld");

    // Fragments adding up to exactly max_line.
    let half = "h".repeat(max_line / 2);
    w.send_frame(&Frame::text(&half).fin(false));
    w.send_frame(&Frame::new(op::CONTINUATION, half.as_bytes()));
    w.expect(&format!("w: {half}{half}"));
    alice.expect(&format!("w: {half}{half}"));

    // An empty message is a blank line: ignored, as over TCP.
    w.send_text("");
    w.send_text("after blank");
    w.expect("w: after blank");
    alice.expect("w: after blank");
}

/// A text message is one line: a newline (or CR) inside it cannot make a
/// second line for TCP clients; the server refuses it as it refuses any
/// control character.
#[test]
fn a_message_cannot_smuggle_a_second_line() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::login(server.http, "w");
    alice.expect("* w joined lobby");
    for text in ["hi\n* server shutting down", "a\r\nb", "\n", "x\0y"] {
        w.send_text(text);
        w.expect("! control characters are not allowed");
    }
    w.send_text("fine");
    w.expect("w: fine");
    alice.expect("w: fine");
}

/// Frames split anywhere arrive whole: every frame of a fragmented message
/// and a ping, written one byte per write with a barrier between bytes (so
/// the server reads each byte alone); and several frames in one write are
/// each handled, in order.
#[test]
fn frames_split_byte_by_byte_and_many_in_one_write() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::login(server.http, "w");
    alice.expect("* w joined lobby");
    // A second WebSocket client as the barrier: its ping's pong means the
    // server has been through a turn since our byte was written.
    let mut barrier = WsClient::connect(server.http);
    barrier.expect_prompt();
    let mut n = 0u32;
    let mut sync = || {
        n += 1;
        let payload = n.to_be_bytes();
        barrier.send_frame(&Frame::new(op::PING, &payload));
        barrier.expect_frame(Frame::new(op::PONG, &payload));
    };
    let long = "L".repeat(300); // a 16-bit length
    let bytes: Vec<u8> = [
        Frame::new(op::TEXT, b"spl").fin(false),
        Frame::new(op::PING, b"pp"),
        Frame::new(op::CONTINUATION, b"it"),
        Frame::text(&long),
    ]
    .iter()
    .flat_map(Frame::masked)
    .collect();
    let cuts: Vec<usize> = (1..bytes.len()).collect();
    w.send_in_pieces(&bytes, &cuts, &mut sync);
    w.expect_frame(Frame::new(op::PONG, b"pp"));
    w.expect("w: split");
    w.expect(&format!("w: {long}"));
    alice.expect("w: split");
    alice.expect(&format!("w: {long}"));

    // Four frames and a ping in one write: handled in order, the pong
    // queued between the lines around it.
    let bytes: Vec<u8> = [
        Frame::text("one"),
        Frame::text("two"),
        Frame::new(op::PING, b"between"),
        Frame::new(op::TEXT, b"thr").fin(false),
        Frame::new(op::CONTINUATION, b"ee"),
    ]
    .iter()
    .flat_map(Frame::masked)
    .collect();
    w.send_raw(&bytes);
    w.expect("w: one");
    w.expect("w: two");
    w.expect_frame(Frame::new(op::PONG, b"between"));
    w.expect("w: three");
    for line in ["w: one", "w: two", "w: three"] {
        alice.expect(line);
    }
}

/// A ping is answered with a pong carrying the same payload (empty, text,
/// any bytes, the 125 maximum), at once and before registering too; an
/// unsolicited pong is ignored.
#[test]
fn pings_get_pongs_with_the_same_payload() {
    let server = start();
    let mut w = WsClient::connect(server.http);
    w.expect_prompt();
    w.send_frame(&Frame::new(op::PING, b"early"));
    w.expect_frame(Frame::new(op::PONG, b"early"));
    w.register("w");
    let all: Vec<u8> = (0..125u8).map(|i| i.wrapping_mul(53) ^ 0x80).collect();
    for payload in [&b""[..], b"hello", &[0xff, 0x00, 0xfe], &all] {
        w.send_frame(&Frame::new(op::PING, payload));
        w.expect_frame(Frame::new(op::PONG, payload));
    }
    w.send_frame(&Frame::new(op::PONG, b"unasked"));
    w.send_text("after the pong");
    w.expect("w: after the pong");
}

/// A peer's close frame is echoed with the same code (1000, 1001, 3000,
/// 4000, 4999; none given: 1000), then a clean EOF; the room hears a plain
/// leave.
#[test]
fn a_peer_close_is_echoed_with_its_code() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let cases: [(Frame, u16); 6] = [
        (Frame::close(1000, ""), 1000),
        (Frame::close(4000, "bye now"), 4000),
        (Frame::close(1001, "tab closed"), 1001),
        (Frame::close(3000, ""), 3000),
        (Frame::close(4999, "\u{e9}"), 4999),
        (Frame::new(op::CLOSE, b""), 1000),
    ];
    for (i, (close, code)) in cases.into_iter().enumerate() {
        let name = format!("c{i}");
        let mut c = WsClient::login(server.http, &name);
        alice.expect(&format!("* {name} joined lobby"));
        c.send_frame(&close);
        c.expect_close(code);
        alice.expect(&format!("* {name} left"));
    }
    // What follows a close is not read as chat.
    let mut c = WsClient::login(server.http, "late");
    alice.expect("* late joined lobby");
    let mut bytes = Frame::close(1000, "").masked();
    bytes.extend(Frame::text("after close").masked());
    c.send_raw(&bytes);
    c.expect_close(1000);
    alice.expect("* late left");
    alice.send("end");
    alice.expect("alice: end");
}

/// `/quit` over a WebSocket: the quit notice, a close frame with 1000, a
/// clean EOF; `/quit` before registering closes the same way.
#[test]
fn quit_sends_the_notice_then_close_1000() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::login(server.http, "w");
    alice.expect("* w joined lobby");
    w.send_text("/quit see you");
    w.expect("* w left (quit: see you)");
    w.expect_close(1000);
    alice.expect("* w left (quit: see you)");

    let mut early = WsClient::connect(server.http);
    early.expect_prompt();
    early.send_text("/quit");
    early.expect_close(1000);
}

/// Shutdown: every WebSocket client gets `* server shutting down`, then a
/// close frame with 1001, then a clean EOF, as the TCP clients get the line
/// and EOF; the server stops gracefully.
#[test]
fn shutdown_sends_the_notice_then_close_1001() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::login(server.http, "w");
    alice.expect("* w joined lobby");
    let mut unnamed = WsClient::connect(server.http);
    unnamed.expect_prompt();
    server.handle.shutdown();
    for c in [&mut w, &mut unnamed] {
        c.expect("* server shutting down");
        c.expect_close(1001);
    }
    alice.expect("* server shutting down");
    alice.expect_eof();
    drop((w, unnamed, alice));
    assert!(matches!(server.stop(), Ok(chatroom::Stopped::Graceful)));
}

/// A WebSocket client that does not register in time gets `! login
/// timeout` and a close frame with 1008 (policy), then EOF.
#[test]
fn login_timeout_closes_with_1008() {
    let server = start_web(Config {
        login_timeout: Duration::from_secs(1),
        ..web_config()
    });
    let mut w = WsClient::connect(server.http);
    w.expect_prompt();
    w.expect("! login timeout");
    w.expect_close(1008);
}

/// Reads frames for `how_long`, answering each ping with a pong carrying
/// its payload; returns how many pings came. Anything but pings fails.
fn answer_pings(c: &mut WsClient, how_long: Duration) -> usize {
    let until = Instant::now() + how_long;
    let mut pings = 0;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return pings;
        }
        match c.next_within(left) {
            None => return pings,
            Some(WsGot::Frame(f)) if f.opcode == op::PING && f.fin && f.rsv == 0 => {
                assert_eq!(f.payload, b"", "our keepalive pings are empty");
                pings += 1;
                c.send_frame(&Frame::new(op::PONG, &f.payload));
            }
            Some(other) => panic!("{other:?} while answering pings"),
        }
    }
}

/// Keepalive with `ws_ping` of 1 s: a silent client is pinged within about
/// ws_ping; one that answers each ping with a pong stays connected through
/// several pings and chats on; so does a TCP client beside it, never pinged.
#[test]
fn a_client_that_answers_pings_stays() {
    let ws_ping = Duration::from_secs(1);
    let server = start_web(Config {
        ws_ping,
        ..web_config()
    });
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::login(server.http, "w");
    alice.expect("* w joined lobby");
    let quiet_since = Instant::now();
    assert_eq!(
        w.next(),
        WsGot::Frame(Frame::new(op::PING, b"")),
        "a silent client is pinged"
    );
    let first = quiet_since.elapsed();
    assert!(
        first <= ws_ping + Duration::from_millis(1500),
        "first ping after {first:?}"
    );
    w.send_frame(&Frame::new(op::PONG, b""));
    let pings = answer_pings(&mut w, 5 * ws_ping);
    assert!(pings >= 2, "only {pings} pings in {:?}", 5 * ws_ping);
    w.send_text("still here");
    w.expect("w: still here");
    alice.expect("w: still here");
    alice.send("me too");
    alice.expect("alice: me too");
    w.expect("alice: me too");
}

/// A keepalive ping starts the write-stall clock when it is queued: with a
/// write timeout shorter than the ping interval, a quiet client gets its
/// ping (it used to be dropped as a stalled writer at its first ping, the
/// clock still at its last output seconds before).
#[test]
fn a_ping_is_not_judged_a_stalled_write() {
    let ws_ping = Duration::from_secs(3);
    let server = start_web(Config {
        ws_ping,
        write_timeout: Duration::from_secs(1),
        ..web_config()
    });
    let mut w = WsClient::login(server.http, "w");
    assert_eq!(w.next(), WsGot::Frame(Frame::new(op::PING, b"")));
    w.send_frame(&Frame::new(op::PONG, b""));
    w.send_text("still here");
    w.expect("w: still here");
}

/// A client that ignores pings is dropped about 2×ws_ping after it last
/// sent anything (not at the first ping), without a close frame since it
/// is gone; its room is told `* <name> left (connection timed out)`.
#[test]
fn a_client_that_ignores_pings_is_dropped() {
    let ws_ping = Duration::from_secs(2);
    let server = start_web(Config {
        ws_ping,
        ..web_config()
    });
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::connect(server.http);
    w.expect_prompt();
    w.register("w");
    let last_sent = Instant::now();
    alice.expect("* w joined lobby");
    assert_eq!(w.next(), WsGot::Frame(Frame::new(op::PING, b"")));
    let pinged = last_sent.elapsed();
    assert!(
        pinged >= ws_ping - Duration::from_secs(1) && pinged <= ws_ping + Duration::from_secs(2),
        "pinged after {pinged:?}"
    );
    alice.expect("* w left (connection timed out)");
    let dropped = last_sent.elapsed();
    assert!(
        dropped >= 2 * ws_ping - Duration::from_secs(1)
            && dropped <= 2 * ws_ping + Duration::from_secs(2),
        "dropped {dropped:?} after its last word, ws_ping {ws_ping:?}"
    );
    assert_eq!(w.next(), WsGot::Eof, "the server closes without a reset");
    alice.send("alone");
    alice.expect("alice: alone");
}

/// A WebSocket client and a TCP client in one room: joins, chat both ways,
/// private messages, actions, non-ASCII text byte for byte, and leaves, with
/// the exact lines on both sides.
#[test]
fn websocket_and_tcp_clients_chat_in_one_room() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::connect(server.http);
    w.expect_prompt();
    w.send_text("wendy");
    w.name = "wendy".into();
    w.expect("* wendy joined lobby");
    w.expect("* welcome to chatroom, wendy! /help lists the commands");
    w.expect("* lobby has 2 members: alice, wendy");
    alice.expect("* wendy joined lobby");

    w.send_text("hi alice");
    w.expect("wendy: hi alice");
    alice.expect("wendy: hi alice");
    alice.send("hi wendy \u{1f44b} caf\u{e9}");
    alice.expect("alice: hi wendy \u{1f44b} caf\u{e9}");
    w.expect("alice: hi wendy \u{1f44b} caf\u{e9}");

    w.send_text("/msg alice psst");
    w.expect("[pm wendy -> alice] psst");
    alice.expect("[pm wendy -> alice] psst");
    alice.send("/msg wendy back");
    alice.expect("[pm alice -> wendy] back");
    w.expect("[pm alice -> wendy] back");

    w.send_text("/me waves");
    w.expect("+ wendy waves");
    alice.expect("+ wendy waves");
    w.send_text("//slash");
    w.expect("wendy: /slash");
    alice.expect("wendy: /slash");

    w.send_text("/who");
    w.expect("* lobby has 2 members: alice, wendy");
    w.send_text("/join games");
    w.expect("* wendy joined games");
    w.expect("* games has 1 member: wendy");
    alice.expect("* wendy left for games");
    alice.send("/join games");
    alice.expect("* alice joined games");
    alice.expect_eventually("* games has 2 members: alice, wendy");
    w.expect("* alice joined games");

    alice.send("/quit");
    alice.expect("* alice left (quit)");
    alice.expect_eof();
    w.expect("* alice left (quit)");

    let mut bob = Client::login(server.addr, "bob");
    bob.send("/join games");
    bob.expect("* bob joined games");
    bob.expect_eventually("* games has 2 members: bob, wendy");
    w.expect("* bob joined games");
    w.send_frame(&Frame::close(1000, ""));
    w.expect_close(1000);
    bob.expect("* wendy left");
}

/// A WebSocket client that never reads is dropped as a slow consumer once
/// its unsent output passes max_outbuf, like a TCP one: the room is told
/// `* sloth left (slow consumer)`, the sender is unharmed, and what sloth
/// did get is whole text frames of its stream in order, then a clean EOF
/// (possibly cutting the last frame: unsent output is dropped).
#[test]
fn a_slow_websocket_reader_is_dropped_as_a_slow_consumer() {
    const MAX_OUTBUF: usize = 32 * 1024;
    const CAP: usize = 100_000;
    let server = start_web(Config {
        max_outbuf: MAX_OUTBUF,
        ..web_config()
    });
    let mut alice = Client::login(server.addr, "alice");
    let host = server.host();
    let sloth = WsClient::over(tcp_small(server.http, 4096), &host, None);
    let mut sloth = sloth.login_as("sloth");
    alice.expect("* sloth joined lobby");
    let line = |i: usize| format!("{i:06} {}", "s".repeat(1000));

    // alice sends a line, reads its echo, sends the next: never slow
    // herself; sloth reads nothing.
    let notice = "* sloth left (slow consumer)";
    let (mut sent, mut echoed) = (0, 0);
    alice.send(&line(0));
    sent += 1;
    loop {
        let got = alice.read_line().expect("alice stays");
        if got == notice {
            break;
        }
        assert_eq!(got, format!("alice: {}", line(echoed)));
        echoed += 1;
        if echoed == sent {
            assert!(sent < CAP, "sloth was never dropped");
            alice.send(&line(sent));
            sent += 1;
        }
    }
    while echoed < sent {
        alice.expect(&format!("alice: {}", line(echoed)));
        echoed += 1;
    }
    alice.send("after");
    alice.expect("alice: after");
    let stats = server.handle.stats();
    assert_eq!(
        (stats.slow_consumers, stats.registered),
        (1, 1),
        "{stats:?}"
    );

    let mut got = 0;
    let end = loop {
        match sloth.next() {
            WsGot::Frame(f) => {
                let want = Frame::text(&format!("alice: {}", line(got)));
                assert!(f == want, "sloth's frame {got} is not its line");
                got += 1;
            }
            end => break end,
        }
    };
    assert!(got < sent, "sloth got all {sent} lines: never dropped?");
    assert!(
        got * 1000 > MAX_OUTBUF,
        "dropped after only {got} lines were taken"
    );
    match end {
        WsGot::Eof => {}
        WsGot::Truncated(rest) => {
            let next = Frame::text(&format!("alice: {}", line(got))).encode(None);
            assert!(
                next.starts_with(&rest),
                "the cut frame is not the next line"
            );
        }
        other => panic!("sloth's stream ended with {other:?}"),
    }
}

/// The chat listener, the web listener and a WebSocket client that came
/// and went leave the server's counters right.
#[test]
fn upgrades_are_counted_and_web_requests_are_not_chat_clients() {
    let server = start();
    for _ in 0..3 {
        http(server.http, &request("GET", "/", ""));
    }
    let w = WsClient::login(server.http, "w");
    server.wait_for("1 upgrade", |s| s.ws_upgrades == 1 && s.registered == 1);
    drop(w);
    server.wait_for("no one registered", |s| s.registered == 0);
    assert_eq!(server.handle.stats().ws_upgrades, 1);
}

/// The WebSocket's upgrade request and its first frames in one write: the
/// frames after the head are read as frames (the name, then a line).
#[test]
fn frames_in_the_same_write_as_the_upgrade_are_read() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut sock = tcp(server.http);
    let key = fresh_key();
    let mut bytes = upgrade_request(&server.host(), None, &key, "").into_bytes();
    bytes.extend(Frame::text("w").masked());
    bytes.extend(Frame::text("hi at once").masked());
    sock.write_all(&bytes).unwrap();
    let want = switching_protocols(&key);
    let mut head = vec![0; want.len()];
    sock.read_exact(&mut head).unwrap();
    assert_eq!(String::from_utf8_lossy(&head), want);
    let mut w = WsClient::after_handshake(sock, "w");
    w.expect_prompt();
    w.expect_joined("w", "lobby");
    w.expect("w: hi at once");
    alice.expect("* w joined lobby");
    alice.expect("w: hi at once");
}

/// Two requests in one write get one response (each response closes the
/// connection) and a clean close, not a reset for the unread second one.
#[test]
fn pipelined_requests_get_one_response_and_a_clean_close() {
    let server = start();
    let mut both = request("GET", "/icon.svg", "");
    both.extend(request("GET", "/app.js", ""));
    let got = http(server.http, &both);
    assert_eq!(got.status(), "HTTP/1.1 200 OK");
    assert_eq!(got.header("Content-Type"), "image/svg+xml");
    assert!(got.body == ASSETS[3].2, "more than the first response");
    assert_eq!(got.end, Got::Eof);
}

/// The request timeout is for HTTP requests only: an upgraded WebSocket
/// client is a chat client and may stay quiet past it (the login timeout
/// covers it), while an idle HTTP connection gets 408.
#[test]
fn an_upgraded_client_outlives_the_request_timeout() {
    let timeout = Duration::from_secs(1);
    let server = start_web(Config {
        request_timeout: timeout,
        ..web_config()
    });
    let mut idle = tcp(server.http);
    let mut w = WsClient::connect(server.http);
    w.expect_prompt();
    let started = Instant::now();
    assert_eq!(
        w.next_within(timeout + Duration::from_millis(1500)),
        None,
        "an upgraded client got something past the request timeout"
    );
    assert!(started.elapsed() > timeout);
    w.register("w");
    w.send_text("here");
    w.expect("w: here");
    assert_response(&read_response(&mut idle), &error(408, "Request Timeout"));
}

/// A WebSocket client that ends its TCP stream without a close frame
/// (even in the middle of a frame) leaves quietly: the partial message is
/// dropped, the room hears `* w left`, and the server still sends its close
/// frame (1000) before its EOF. One that resets leaves with `(connection
/// reset)`.
#[test]
fn a_client_ending_tcp_without_a_close_frame_leaves() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::login(server.http, "w");
    alice.expect("* w joined lobby");
    let partial = Frame::text("never whole").masked();
    w.send_raw(&partial[..partial.len() - 1]);
    w.tcp().shutdown(std::net::Shutdown::Write).unwrap();
    alice.expect("* w left");
    w.expect_close(1000);

    let r = WsClient::login(server.http, "r");
    alice.expect("* r joined lobby");
    socket2::SockRef::from(r.tcp())
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(r);
    alice.expect("* r left (connection reset)");
    alice.send("end");
    alice.expect("alice: end");
}

/// After the server's close frame (on `/quit` or shutdown), a browser
/// answers with its own close frame: the server reads it away and still
/// ends with a clean EOF, never a reset.
#[test]
fn the_clients_close_reply_is_read_away() {
    let server = start();
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::login(server.http, "w");
    alice.expect("* w joined lobby");
    w.send_text("/quit");
    w.expect("* w left (quit)");
    w.expect_frame(Frame::close(1000, ""));
    w.send_frame(&Frame::close(1000, ""));
    w.expect_eof();
    alice.expect("* w left (quit)");

    let mut v = WsClient::login(server.http, "v");
    alice.expect("* v joined lobby");
    server.handle.shutdown();
    v.expect("* server shutting down");
    v.expect_frame(Frame::close(1001, ""));
    v.send_frame(&Frame::close(1001, ""));
    v.expect_eof();
    alice.expect("* server shutting down");
    alice.expect_eof();
}

/// Lines over 64 KiB (with `max_line` raised) travel in frames with a
/// 64-bit length, both ways.
#[test]
fn long_lines_use_64_bit_lengths() {
    let max_line = 100_000;
    let server = start_web(Config {
        max_line,
        ..web_config()
    });
    let mut alice = Client::login(server.addr, "alice");
    let mut w = WsClient::login(server.http, "w");
    alice.expect("* w joined lobby");
    let text = "x".repeat(max_line);
    let frame = Frame::text(&text).masked();
    assert_eq!(frame[1], 0x80 | 127, "a 64-bit length");
    w.send_raw(&frame);
    let line = format!("w: {text}");
    let f = w.frame();
    assert!(
        f == Frame::text(&line),
        "the echo of a {max_line}-byte line"
    );
    alice.expect(&line);
    alice.send(&text[..70_000]);
    let line = format!("alice: {}", &text[..70_000]);
    alice.expect(&line);
    assert!(w.frame() == Frame::text(&line));
    w.send_text(&"y".repeat(max_line + 1));
    assert_eq!(w.frame(), Frame::close(1009, ""));
    w.expect_eof();
}

/// A request offering an extension (permessage-deflate) or subprotocols is
/// upgraded with none of them agreed: the exact plain 101, and frames stay
/// uncompressed (an RSV1 frame is still a protocol error).
#[test]
fn offered_extensions_are_not_agreed() {
    let server = start();
    let key = fresh_key();
    let extra = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
                 Sec-WebSocket-Protocol: chat, superchat\r\n";
    let mut sock = tcp(server.http);
    sock.write_all(upgrade_request(&server.host(), None, &key, extra).as_bytes())
        .unwrap();
    let want = switching_protocols(&key);
    let mut head = vec![0; want.len()];
    sock.read_exact(&mut head).unwrap();
    assert_eq!(String::from_utf8_lossy(&head), want);
    let mut w = WsClient::after_handshake(sock, "");
    w.expect_prompt();
    w.send_frame(&Frame::text("w").rsv(4));
    w.expect_close(1002);
}

/// Per-address limits with loopback limited, at most `max` connections at
/// once and no rate limit.
fn limited(max: u32) -> chatroom::limits::peers::PeerLimits {
    chatroom::limits::peers::PeerLimits {
        max_per_ip: max,
        connect_rate: 0,
        limit_loopback: true,
    }
}

/// A web request holds one of its address's connections only while it is
/// open: many page loads one after another from one address (more than
/// `max_per_ip` in all) are all served, and chat clients from that address
/// still get in afterwards.
#[test]
fn finished_web_requests_give_back_their_address_slot() {
    let server = start_web(Config {
        peers: limited(4),
        ..web_config()
    });
    for i in 0..12 {
        let (path, _, _) = ASSETS[i % ASSETS.len()];
        let got = http(server.http, &request("GET", path, ""));
        assert_eq!(
            got.status(),
            "HTTP/1.1 200 OK",
            "request {i} ({path}) after {i} finished ones"
        );
        server.wait_for("the request's connection to be freed", |s| {
            s.connections == 0
        });
    }
    let mut w = WsClient::login(server.http, "w");
    let mut alice = Client::login(server.addr, "alice");
    w.expect("* alice joined lobby");
    alice.send("in");
    alice.expect("alice: in");
}

/// Over the per-address limit, a web request is refused with a 503 (the
/// exact plain-text error) and a clean close; a WebSocket client counts
/// against the limit while it is connected and gives its slot back when it
/// leaves.
#[test]
fn over_the_address_limit_web_requests_get_503() {
    let server = start_web(Config {
        peers: limited(1),
        ..web_config()
    });
    let w = WsClient::login(server.http, "w");
    let got = http(server.http, &request("GET", "/", ""));
    assert_response(&got, &error(503, "Service Unavailable"));
    drop(w);
    server.wait_for("w to be freed", |s| s.connections == 0);
    let got = http(server.http, &request("GET", "/", ""));
    assert_eq!(got.status(), "HTTP/1.1 200 OK");
}

/// A `ws_ping` under a second (possible for a Config built in code; the
/// flag takes whole seconds) is either refused by validation, naming
/// `--ws-ping`, or honoured: a client answering every ping stays.
#[test]
fn a_sub_second_ws_ping_is_refused_or_honoured() {
    let config = Config {
        ws_ping: Duration::from_millis(500),
        ..web_config()
    };
    if let Err(e) = config.validate() {
        assert_eq!(e.flag, "--ws-ping");
        return;
    }
    let server = start_web(config);
    let mut w = WsClient::login(server.http, "w");
    // Chatting and answering pings for three seconds.
    let until = Instant::now() + Duration::from_secs(3);
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        w.send_text(&format!("line {n}"));
        loop {
            match w.next() {
                WsGot::Frame(f) if f.opcode == op::PING => {
                    w.send_frame(&Frame::new(op::PONG, &f.payload));
                }
                WsGot::Frame(f) if f == Frame::text(&format!("w: line {n}")) => break,
                other => panic!(
                    "a client chatting and answering pings, with ws_ping 500 ms, got {other:?} \
                     after {n} lines"
                ),
            }
        }
        let _ = w
            .next_within(Duration::from_millis(100))
            .map(|got| match got {
                WsGot::Frame(f) if f.opcode == op::PING => {
                    w.send_frame(&Frame::new(op::PONG, &f.payload));
                }
                other => panic!("with ws_ping 500 ms, after {n} lines: {other:?}"),
            });
    }
}

/// RFC 6455 4.2.1: a `Sec-WebSocket-Key` that is not 16 bytes in base64
/// makes the handshake invalid, to be answered 400.
#[test]
fn a_key_that_is_not_16_bytes_is_400() {
    let server = start();
    for key in ["abc", "dGhlIHNhbXBsZQ==", "not base64 at all!!!!!!="] {
        let got = http(
            server.http,
            upgrade_request(&server.host(), None, key, "").as_bytes(),
        );
        assert_response(&got, &error(400, "Bad Request"));
    }
}

/// The binary: `--http-port` serves the page and the WebSocket and logs
/// `listening (http) on ADDR`; `--allowed-origin` takes a list;
/// `--ws-ping` sets the keepalive; SIGTERM closes WebSocket clients with
/// the notice and 1001.
#[test]
fn the_binary_serves_the_web_front_end() {
    use common::process::ServerProcess;
    let server = ServerProcess::spawn(
        None,
        &[
            "--port",
            "0",
            "--http-port",
            "0",
            "--allowed-origin",
            "http://a.example, https://b.example",
            "--ws-ping",
            "1",
        ],
    );
    // The binary logs `listening (http) on ADDR` once it serves.
    let http_addr = server.listening("http");
    let page = http(http_addr, &request("GET", "/", ""));
    assert_eq!(page.status(), "HTTP/1.1 200 OK");
    assert!(page.body == ASSETS[0].2);
    let host = http_addr.to_string();
    for origin in ["http://a.example", "https://b.example"] {
        let mut c = WsClient::over(tcp(http_addr), &host, Some(origin));
        c.expect_prompt();
    }
    let refused = WsClient::try_over(tcp(http_addr), &host, Some("http://c.example"))
        .err()
        .expect("http://c.example was allowed");
    assert_response(&refused, &error(403, "Forbidden"));

    let mut w = WsClient::login(http_addr, "w");
    let mut alice = Client::login(server.addr, "alice");
    w.expect("* alice joined lobby");
    let started = Instant::now();
    // alice's join was the last thing w heard; the ping comes within
    // about a second of w's own last word.
    assert_eq!(w.next(), WsGot::Frame(Frame::new(op::PING, b"")));
    assert!(started.elapsed() < Duration::from_millis(2500));
    w.send_frame(&Frame::new(op::PONG, b""));
    server.signal(libc::SIGTERM);
    w.expect("* server shutting down");
    w.expect_close(1001);
    alice.expect("* server shutting down");
    alice.expect_eof();
    let mut server = server;
    assert_eq!(server.wait_exit(), Some(0));
}

/// A server with the web listener over TLS too, serving `pki`'s
/// certificate.
fn start_https(pki: &common::tls::Pki) -> WebServer {
    start_web(Config {
        tls_identity: Some(pki.identity()),
        https: Some("127.0.0.1:0".parse().unwrap()),
        ..web_config()
    })
}

/// A full server refuses an HTTPS connection by closing it: nothing
/// readable can be said before a handshake (it used to write a plain-text
/// HTTP 503 to a client expecting TLS records).
#[test]
fn a_full_server_closes_https_connections_without_plain_text() {
    let pki = common::tls::Pki::new("full https CA");
    let server = start_web(Config {
        tls_identity: Some(pki.identity()),
        https: Some("127.0.0.1:0".parse().unwrap()),
        max_clients: 1,
        ..web_config()
    });
    let _alice = Client::login(server.addr, "alice");
    let https_addr = server.https.expect("an https listener");
    let mut sock = std::net::TcpStream::connect(https_addr).expect("connect");
    sock.set_read_timeout(Some(common::LINE_TIMEOUT))
        .expect("read timeout");
    let mut got = Vec::new();
    let _ = std::io::Read::read_to_end(&mut sock, &mut got);
    assert_eq!(
        String::from_utf8_lossy(&got),
        "",
        "no bytes before a handshake"
    );
}

/// Over HTTPS the page and its assets come with the same headers and
/// bytes, and a wss:// client chats with a TCP client in one room; `/quit`
/// closes with the notice, close 1000 and a close_notify.
#[test]
fn https_serves_the_page_and_wss_chats_with_tcp() {
    let pki = common::tls::Pki::new("ws test CA");
    let server = start_https(&pki);
    let https_addr = server.https.expect("an https listener");
    let config = pki.client();
    for (path, content_type, body) in ASSETS {
        let got = common::ws::https(https_addr, &config, &request("GET", path, ""));
        let etag = got.header("ETag").to_owned();
        assert_eq!(
            got.head,
            asset_head("200 OK", content_type, &etag, body.len()),
            "{path}"
        );
        assert!(got.body == body, "{path}");
        assert_eq!(got.end, Got::Eof, "{path}: no close_notify");
    }
    let mut alice = Client::login(server.addr, "alice");
    let host = format!("localhost:{}", https_addr.port());
    let sock = common::ws::tls(https_addr, &config);
    let mut w = WsClient::over(sock, &host, Some(&format!("https://{host}"))).login_as("w");
    alice.expect("* w joined lobby");
    w.send_text("over wss \u{1f512}");
    w.expect("w: over wss \u{1f512}");
    alice.expect("w: over wss \u{1f512}");
    alice.send("over tcp");
    alice.expect("alice: over tcp");
    w.expect("alice: over tcp");
    w.send_frame(&Frame::new(op::PING, b"tls"));
    w.expect_frame(Frame::new(op::PONG, b"tls"));
    w.send_text("/quit");
    w.expect("* w left (quit)");
    w.expect_close(1000);
    alice.expect("* w left (quit)");
    assert_eq!(server.handle.stats().ws_upgrades, 1);
}

/// On the TLS listener the page's own origin is `https://<Host>`: the same
/// host over `http://` is another origin, refused with 403.
#[test]
fn the_origin_check_over_tls_wants_https() {
    let pki = common::tls::Pki::new("ws test CA");
    let server = start_https(&pki);
    let https_addr = server.https.expect("an https listener");
    let config = pki.client();
    let host = format!("localhost:{}", https_addr.port());
    let mut c = WsClient::over(
        common::ws::tls(https_addr, &config),
        &host,
        Some(&format!("https://{host}")),
    );
    c.expect_prompt();
    let refused = WsClient::try_over(
        common::ws::tls(https_addr, &config),
        &host,
        Some(&format!("http://{host}")),
    )
    .err()
    .expect("http:// allowed on the TLS listener");
    assert_response(&refused, &error(403, "Forbidden"));
    // And the plain listener still wants http://.
    let refused = WsClient::try_over(
        tcp(server.http),
        &server.host(),
        Some(&format!("https://{}", server.host())),
    )
    .err()
    .expect("https:// allowed on the plain listener");
    assert_response(&refused, &error(403, "Forbidden"));
}

/// Over wss:// a bad frame still gets its close code, then a clean
/// close_notify; shutdown sends the notice, 1001 and a close_notify.
#[test]
fn wss_closes_cleanly_on_errors_and_shutdown() {
    let pki = common::tls::Pki::new("ws test CA");
    let server = start_https(&pki);
    let https_addr = server.https.expect("an https listener");
    let config = pki.client();
    let host = format!("localhost:{}", https_addr.port());
    let mut bad = WsClient::over(common::ws::tls(https_addr, &config), &host, None).login_as("bad");
    bad.send_frame(&Frame::new(op::BINARY, b"\x00\x01"));
    bad.expect_close(1003);
    let mut split = WsClient::over(common::ws::tls(https_addr, &config), &host, None).login_as("s");
    // A frame over many TLS records.
    let bytes = Frame::text("in pieces").masked();
    split.send_in_pieces(&bytes, &[1, 2, 5, 9], || {});
    split.expect("s: in pieces");
    server.handle.shutdown();
    split.expect("* server shutting down");
    split.expect_close(1001);
}
