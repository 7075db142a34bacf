//! WebSocket and HTTP helpers for integration tests: a server with its web
//! listener on port 0, raw HTTP exchanges read to the server's close, and a
//! raw WebSocket client over a blocking socket that can send any frame
//! (masked or not, any opcode, FIN and RSV bits, split at any byte) and
//! reads the server's frames with a deadline, telling a close frame and a
//! clean EOF from a reset or a cut. The client runs over plain TCP or,
//! for `wss://`, over a rustls session on the same socket.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chatroom::{Config, Listen, Server};

use super::{tcp, test_config, Got, Lines, TestServer, LINE_TIMEOUT};

/// Frame opcodes (RFC 6455 section 5.2).
pub mod op {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// The mask every client frame here uses unless a test picks another: not
/// all zero, so an unmasking bug garbles the payload.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The key of RFC 6455 section 1.3, whose accept value the RFC gives.
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// `Sec-WebSocket-Accept` for [`RFC_KEY`], from the RFC.
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A config for tests with the web listener on a free loopback port (and
/// plain TCP chat on another), flood control off.
pub fn web_config() -> Config {
    Config {
        http: Some("127.0.0.1:0".parse().unwrap()),
        ..test_config()
    }
}

/// A server with a web listener; derefs to the [`TestServer`] (whose
/// `addr` is the plain-TCP chat listener).
pub struct WebServer {
    pub server: TestServer,
    /// The web listener (page, assets, `GET /ws`).
    pub http: SocketAddr,
    /// The same over TLS, if the config asks for it.
    pub https: Option<SocketAddr>,
}

impl std::ops::Deref for WebServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl WebServer {
    /// Asks the server to shut down and waits for `run` to return.
    pub fn stop(self) -> io::Result<chatroom::Stopped> {
        self.server.stop()
    }

    /// The `Host` a browser would send for the web listener.
    pub fn host(&self) -> String {
        self.http.to_string()
    }
}

/// Starts a server with `config`, which must ask for a web listener.
pub fn start_web(config: Config) -> WebServer {
    let server = Server::bind(config).expect("bind test server");
    let http = server.addr(Listen::Http).expect("the config asks for http");
    let https = server.addr(Listen::Https);
    WebServer {
        server: super::spawn(server),
        http,
        https,
    }
}

/// An HTTP response, read until the server closed the connection.
#[derive(Debug)]
pub struct Response {
    /// The status line and header lines, without their `\r\n`s.
    pub head: Vec<String>,
    /// Everything after the blank line.
    pub body: Vec<u8>,
    /// How the connection ended.
    pub end: Got,
}

impl Response {
    /// The status line, e.g. `HTTP/1.1 200 OK`.
    pub fn status(&self) -> &str {
        &self.head[0]
    }

    /// The value of header `name` (case-insensitive); fails the test if
    /// it is missing or repeated.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        let found: Vec<&str> = self.head[1..]
            .iter()
            .filter_map(|h| h.split_once(": "))
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(found.len(), 1, "header {name} in {:?}", self.head);
        found[0]
    }

    /// The exact bytes as they came: head, blank line, body.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for line in &self.head {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Sends `request` on a new connection and reads the response until the
/// server closes.
#[track_caller]
pub fn http(addr: SocketAddr, request: &[u8]) -> Response {
    let mut sock = tcp(addr);
    sock.write_all(request).expect("send the request");
    read_response(&mut sock)
}

/// Reads a response from `sock` until the server closes it.
#[track_caller]
pub fn read_response(sock: &mut impl Io) -> Response {
    let (bytes, end) = read_to_close(sock);
    let Some(at) = find(&bytes, b"\r\n\r\n") else {
        panic!(
            "no complete response head before {end:?}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    };
    let head = std::str::from_utf8(&bytes[..at]).expect("an ASCII head");
    Response {
        head: head.split("\r\n").map(str::to_owned).collect(),
        body: bytes[at + 4..].to_vec(),
        end,
    }
}

/// Reads `sock` until the server closes it: what it sent, and whether the
/// close was clean (EOF; over TLS a close_notify) or a reset. Fails after
/// [`LINE_TIMEOUT`], and on a TLS stream cut without close_notify.
#[track_caller]
pub fn read_to_close(sock: &mut impl Io) -> (Vec<u8>, Got) {
    let mut got = Vec::new();
    let mut chunk = [0; 16 * 1024];
    let deadline = Instant::now() + LINE_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the server never closed; got {got:?}");
        sock.tcp().set_read_timeout(Some(left)).unwrap();
        match sock.read(&mut chunk) {
            Ok(0) => return (got, Got::Eof),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (got, Got::Reset),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "reading until the server closes: {e}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
}

/// A byte stream to the server: plain TCP, or TLS over TCP.
pub trait Io: Read + Write + Send {
    /// The TCP socket underneath (for timeouts, shutdown, linger).
    fn tcp(&self) -> &TcpStream;
}

impl Io for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// A TLS client session over its socket. A close_notify reads as `Ok(0)`;
/// TCP closed without one is an `UnexpectedEof` error.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

impl Io for TlsStream {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// A TLS session to `addr` with `config`, for the name `localhost`; the
/// handshake runs on first use.
#[track_caller]
pub fn tls(addr: SocketAddr, config: &std::sync::Arc<rustls::ClientConfig>) -> TlsStream {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::clone(config), name)
        .expect("a TLS client session");
    rustls::StreamOwned::new(conn, tcp(addr))
}

/// Sends `request` over a new TLS session and reads the response until
/// the server closes.
#[track_caller]
pub fn https(
    addr: SocketAddr,
    config: &std::sync::Arc<rustls::ClientConfig>,
    request: &[u8],
) -> Response {
    let mut sock = tls(addr, config);
    sock.write_all(request).expect("send the request");
    sock.flush().expect("send the request");
    read_response(&mut sock)
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A WebSocket upgrade request for `/ws` with `host` and, if given,
/// `origin`; `extra` header lines (each ending in `\r\n`) are added.
pub fn upgrade_request(host: &str, origin: Option<&str>, key: &str, extra: &str) -> String {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{origin}{extra}\r\n"
    )
}

/// The exact 101 response for a request with `key`.
pub fn switching_protocols(key: &str) -> String {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    )
}

/// One frame as it is on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1..3 as the bits 0b100, 0b010, 0b001.
    pub rsv: u8,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A final frame with no reserved bits.
    pub fn new(opcode: u8, payload: &[u8]) -> Frame {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            payload: payload.to_vec(),
        }
    }

    /// A final text frame.
    pub fn text(text: &str) -> Frame {
        Frame::new(op::TEXT, text.as_bytes())
    }

    /// A close frame with `code` and `reason`.
    pub fn close(code: u16, reason: &str) -> Frame {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        Frame::new(op::CLOSE, &payload)
    }

    /// Sets the FIN bit.
    pub fn fin(self, fin: bool) -> Frame {
        Frame { fin, ..self }
    }

    /// Sets the RSV bits (0b100 is RSV1).
    pub fn rsv(self, rsv: u8) -> Frame {
        Frame { rsv, ..self }
    }

    /// Its bytes, masked with `mask` (a client frame) or not (`None`).
    pub fn encode(&self, mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![u8::from(self.fin) << 7 | (self.rsv & 7) << 4 | (self.opcode & 0xf)];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match self.payload.len() {
            n if n < 126 => out.push(m | n as u8),
            n if n <= 0xffff => {
                out.push(m | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(m | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(mask) => {
                out.extend_from_slice(&mask);
                out.extend(
                    self.payload
                        .iter()
                        .enumerate()
                        .map(|(i, b)| b ^ mask[i % 4]),
                );
            }
            None => out.extend_from_slice(&self.payload),
        }
        out
    }

    /// Its bytes as a client sends them (masked with [`MASK`]).
    pub fn masked(&self) -> Vec<u8> {
        self.encode(Some(MASK))
    }

    /// Parses one server frame from the front of `buf`: `None` until it is
    /// whole. Fails the test if it is masked (servers never mask).
    #[track_caller]
    pub fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
        if buf.len() < 2 {
            return None;
        }
        assert_eq!(buf[1] & 0x80, 0, "a server frame is masked: {buf:?}");
        let (len, at) = match buf[1] & 0x7f {
            126 => {
                if buf.len() < 4 {
                    return None;
                }
                (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
            }
            127 => {
                if buf.len() < 10 {
                    return None;
                }
                (u64::from_be_bytes(buf[2..10].try_into().unwrap()), 10)
            }
            n => (u64::from(n), 2),
        };
        let len = usize::try_from(len).expect("a frame length that fits");
        if buf.len() < at + len {
            return None;
        }
        let frame = Frame {
            fin: buf[0] & 0x80 != 0,
            rsv: (buf[0] >> 4) & 7,
            opcode: buf[0] & 0xf,
            payload: buf[at..at + len].to_vec(),
        };
        Some((frame, at + len))
    }
}

/// What a WebSocket client read next.
#[derive(Debug, PartialEq, Eq)]
pub enum WsGot {
    /// One whole frame.
    Frame(Frame),
    /// A clean TCP close (FIN) with no partial frame before it.
    Eof,
    /// A reset (RST).
    Reset,
    /// A clean TCP close cutting a frame: the bytes of the unfinished frame.
    Truncated(Vec<u8>),
    /// Over TLS: TCP closed without a close_notify.
    Unclean,
}

/// A raw WebSocket client: a blocking stream after the handshake, and the
/// bytes read but not yet handed out as frames.
pub struct WsClient {
    sock: Box<dyn Io>,
    buf: Vec<u8>,
    pub name: String,
}

impl WsClient {
    /// Connects to the web listener and upgrades without an `Origin`;
    /// fails the test unless the answer is the exact 101.
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> WsClient {
        WsClient::connect_from(addr, None)
    }

    /// Connects and upgrades with `origin` (and `Host: <addr>`).
    #[track_caller]
    pub fn connect_from(addr: SocketAddr, origin: Option<&str>) -> WsClient {
        WsClient::over(tcp(addr), &addr.to_string(), origin)
    }

    /// Upgrades an already connected stream (TCP or TLS).
    #[track_caller]
    pub fn over(sock: impl Io + 'static, host: &str, origin: Option<&str>) -> WsClient {
        match WsClient::try_over(sock, host, origin) {
            Ok(c) => c,
            Err(r) => panic!("upgrade refused: {:?}", r.head),
        }
    }

    /// Tries the upgrade: the client on the exact 101, or the response
    /// (read to the server's close) if it refused.
    #[track_caller]
    pub fn try_over(
        mut sock: impl Io + 'static,
        host: &str,
        origin: Option<&str>,
    ) -> Result<WsClient, Response> {
        let key = fresh_key();
        sock.write_all(upgrade_request(host, origin, &key, "").as_bytes())
            .expect("send the upgrade request");
        sock.flush().expect("send the upgrade request");
        let mut buf = Vec::new();
        let mut chunk = [0; 4096];
        let end = loop {
            if let Some(at) = find(&buf, b"\r\n\r\n") {
                break at + 4;
            }
            match sock.read(&mut chunk) {
                Ok(0) => panic!("EOF in the upgrade response: {buf:?}"),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading the upgrade response: {e}; got {buf:?}"),
            }
        };
        if !buf.starts_with(b"HTTP/1.1 101 ") {
            let (rest, how) = read_to_close(&mut sock);
            buf.extend_from_slice(&rest);
            let head = std::str::from_utf8(&buf[..end - 4]).expect("an ASCII head");
            return Err(Response {
                head: head.split("\r\n").map(str::to_owned).collect(),
                body: buf[end..].to_vec(),
                end: how,
            });
        }
        assert_eq!(
            String::from_utf8_lossy(&buf[..end]),
            switching_protocols(&key),
            "the 101 response"
        );
        buf.drain(..end);
        Ok(WsClient {
            sock: Box::new(sock),
            buf,
            name: String::new(),
        })
    }

    /// A client over `sock` whose 101 response the caller has read
    /// (exactly: nothing after it).
    pub fn after_handshake(sock: impl Io + 'static, name: &str) -> WsClient {
        WsClient {
            sock: Box::new(sock),
            buf: Vec::new(),
            name: name.to_string(),
        }
    }

    /// Connects, upgrades, answers the prompt with `name` and reads
    /// through the join burst, as [`super::Client::login`] does.
    #[track_caller]
    pub fn login(addr: SocketAddr, name: &str) -> WsClient {
        let c = WsClient::connect(addr);
        c.login_as(name)
    }

    /// Registers an upgraded client as `name`: reads the prompt, then
    /// [`WsClient::register`]s.
    #[track_caller]
    pub fn login_as(mut self, name: &str) -> WsClient {
        self.expect_prompt();
        self.register(name);
        self
    }

    /// Sends `name` (the prompt already read) and reads through the join
    /// burst.
    #[track_caller]
    pub fn register(&mut self, name: &str) {
        self.name = name.to_string();
        self.send_text(name);
        self.expect_joined(name, "lobby");
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        self.sock.tcp()
    }

    /// Writes `bytes` as they are, in one write (over TLS: records, all
    /// sent before this returns).
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).expect("send to server");
        self.sock.flush().expect("send to server");
    }

    /// Sends one masked final text frame: one protocol line.
    #[track_caller]
    pub fn send_text(&mut self, text: &str) {
        self.send_raw(&Frame::text(text).masked());
    }

    /// Sends `frame` masked with [`MASK`].
    #[track_caller]
    pub fn send_frame(&mut self, frame: &Frame) {
        self.send_raw(&frame.masked());
    }

    /// Writes `bytes` in pieces cut at `cuts` (increasing offsets), one
    /// write each, calling `between` after every piece but the last (a
    /// barrier that makes sure the server has read that piece alone).
    #[track_caller]
    pub fn send_in_pieces(&mut self, bytes: &[u8], cuts: &[usize], mut between: impl FnMut()) {
        let mut from = 0;
        for &cut in cuts {
            assert!(from < cut && cut < bytes.len(), "cut {cut} out of order");
            self.send_raw(&bytes[from..cut]);
            between();
            from = cut;
        }
        self.send_raw(&bytes[from..]);
    }

    /// Reads what comes next: a frame, a clean EOF, a reset or a cut
    /// frame. Fails the test after [`LINE_TIMEOUT`].
    #[track_caller]
    pub fn next(&mut self) -> WsGot {
        match self.next_within(LINE_TIMEOUT) {
            Some(got) => got,
            None => panic!(
                "client {:?}: nothing from the server for {LINE_TIMEOUT:?}",
                self.name
            ),
        }
    }

    /// Like [`WsClient::next`], but `None` if nothing whole arrives within
    /// `wait`.
    #[track_caller]
    pub fn next_within(&mut self, wait: Duration) -> Option<WsGot> {
        let deadline = Instant::now() + wait;
        let mut chunk = [0; 16 * 1024];
        loop {
            if let Some((frame, used)) = Frame::parse(&self.buf) {
                self.buf.drain(..used);
                return Some(WsGot::Frame(frame));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.tcp().set_read_timeout(Some(left)).unwrap();
            match self.sock.read(&mut chunk) {
                Ok(0) if self.buf.is_empty() => return Some(WsGot::Eof),
                Ok(0) => return Some(WsGot::Truncated(std::mem::take(&mut self.buf))),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Some(WsGot::Reset),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Some(WsGot::Unclean),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("client {:?}: reading from the server: {e}", self.name),
            }
        }
    }

    /// Reads the next frame; fails the test on anything else.
    #[track_caller]
    pub fn frame(&mut self) -> Frame {
        match self.next() {
            WsGot::Frame(f) => f,
            other => panic!("client {:?}: {other:?}, not a frame", self.name),
        }
    }

    /// Reads one protocol line: a final text frame with no reserved bits
    /// (the server never fragments). `None` at a clean EOF; anything else
    /// (a control frame, a reset, a cut) fails the test.
    #[track_caller]
    pub fn read_text(&mut self) -> Option<String> {
        match self.next() {
            WsGot::Frame(f) if f.opcode == op::TEXT && f.fin && f.rsv == 0 => {
                Some(String::from_utf8(f.payload).expect("server sent invalid UTF-8"))
            }
            WsGot::Eof => None,
            other => panic!("client {:?}: {other:?}, not a text frame", self.name),
        }
    }

    /// Reads one frame and asserts it is exactly `want` (a final frame with
    /// no reserved bits, that opcode and payload).
    #[track_caller]
    pub fn expect_frame(&mut self, want: Frame) {
        let got = self.next();
        assert_eq!(got, WsGot::Frame(want), "client {:?}", self.name);
    }

    /// Asserts the server's close frame (`code`, no reason), then a clean
    /// EOF with nothing after it.
    #[track_caller]
    pub fn expect_close(&mut self, code: u16) {
        self.expect_frame(Frame::close(code, ""));
        self.expect_eof();
    }

    /// Asserts the server closes the connection cleanly (EOF, no reset)
    /// with nothing more before it.
    #[track_caller]
    pub fn expect_eof(&mut self) {
        let got = self.next();
        assert_eq!(
            got,
            WsGot::Eof,
            "client {:?}: expected a clean EOF",
            self.name
        );
    }
}

impl Lines for WsClient {
    /// One protocol line is one text frame: see [`WsClient::read_text`].
    #[track_caller]
    fn read_line(&mut self) -> Option<String> {
        self.read_text()
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (tungstenite's;
/// varied per call so no test leans on a fixed key but [`RFC_KEY`]'s).
pub fn fresh_key() -> String {
    tungstenite::handshake::client::generate_key()
}
