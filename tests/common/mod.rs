//! Shared helpers for integration tests: start a real server in-process on
//! port 0, connect real TCP clients, and read lines with a deadline so a
//! broken server fails a test instead of hanging it.
#![allow(dead_code)]

pub mod process;
pub mod redis;
pub mod tls;
pub mod ws;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chatroom::{Config, Server, ServerHandle, Stopped};

/// The name prompt, as the server sends it.
pub const PROMPT: &str = "NAME choose a name: 1-32 of A-Z a-z 0-9 _ -";

/// How long any single expected line may take before the test fails.
pub const LINE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server running on its own thread; stopped and joined when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The metrics endpoint, if the config asked for one.
    pub metrics: Option<SocketAddr>,
    pub handle: ServerHandle,
    thread: Option<JoinHandle<io::Result<Stopped>>>,
}

impl TestServer {
    /// Asks the server to shut down and waits for `run` to return.
    pub fn stop(mut self) -> io::Result<Stopped> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<Stopped> {
        self.handle.shutdown();
        match self.thread.take() {
            Some(t) => t.join().expect("server thread panicked"),
            None => Ok(Stopped::Graceful),
        }
    }

    /// Waits (bounded) until `pred` holds for the server's stats.
    #[track_caller]
    pub fn wait_for(&self, what: &str, pred: impl Fn(&chatroom::Stats) -> bool) {
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            let stats = self.handle.stats();
            if pred(&stats) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {stats:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop_inner();
        }
    }
}

/// The welcome line a client named `name` gets after registering.
pub fn welcome(name: &str) -> String {
    format!("* welcome to chatroom, {name}! /help lists the commands")
}

/// A config for tests: loopback, port 0, flood control off (these tests
/// send as fast as they can to exercise other mechanisms; flood control has
/// tests of its own with [`flood_config`]), defaults otherwise.
pub fn test_config() -> Config {
    Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        flood: chatroom::limits::flood::Flood { rate: 0, burst: 0 },
        ..Config::default()
    }
}

/// A config for tests with every default, flood control included.
pub fn flood_config() -> Config {
    Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    }
}

/// Starts a server with default limits on a free port.
pub fn start_server() -> TestServer {
    start_with(test_config())
}

/// Starts a server with `config` (its address should use port 0).
pub fn start_with(config: Config) -> TestServer {
    spawn(Server::bind(config).expect("bind test server"))
}

/// Runs a bound `server` on its own thread (read any other listener's
/// address from it first).
pub fn spawn(server: Server) -> TestServer {
    let addr = server.local_addr();
    let metrics = server.metrics_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    TestServer {
        addr,
        metrics,
        handle,
        thread: Some(thread),
    }
}

/// One test client: a blocking socket with a read deadline.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub name: String,
}

impl Client {
    /// Connects without sending anything.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(tcp(addr))
    }

    /// A client over an already connected socket, which has read nothing.
    pub fn over(stream: TcpStream) -> Client {
        Client {
            reader: BufReader::new(stream),
            name: String::new(),
        }
    }

    /// Connects from the local address `from` (e.g. 127.0.0.2).
    pub fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Client {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        socket.bind(&SocketAddr::new(from, 0).into()).unwrap();
        socket
            .connect(&addr.into())
            .expect("connect to test server");
        Client::over(with_deadline(socket.into()))
    }

    /// Connects with a small receive buffer, set before connecting so the
    /// window the server sees is small from the start (Linux doubles it).
    pub fn connect_small(addr: SocketAddr, rcvbuf: usize) -> Client {
        Client::over(tcp_small(addr, rcvbuf))
    }

    /// Connects, answers the prompt with `name` and reads through the
    /// join burst (own join notice, welcome, topic, history, member list),
    /// so the client is registered in `lobby` when this returns.
    #[track_caller]
    pub fn login(addr: SocketAddr, name: &str) -> Client {
        let mut c = Client::connect(addr);
        c.expect_prompt();
        c.send(name);
        c.expect_joined(name, "lobby");
        c.name = name.to_string();
        c
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Sends one line (adds the `\n`).
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.reader
            .get_mut()
            .write_all(bytes)
            .expect("send to server");
    }

    /// Reads what comes next: a line, a clean EOF or a reset. Fails the
    /// test after [`LINE_TIMEOUT`].
    #[track_caller]
    pub fn next(&mut self) -> Got {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => Got::Eof,
            Ok(_) => {
                assert_eq!(
                    buf.pop(),
                    Some(b'\n'),
                    "line without newline before EOF: {buf:?}"
                );
                Got::Line(String::from_utf8(buf).expect("server sent invalid UTF-8"))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => Got::Reset,
            Err(e) => panic!("reading a line from the server: {e}"),
        }
    }

    /// Reads one line without its `\n`; `None` at a clean EOF. A reset
    /// fails the test: the server closes gracefully wherever it closes.
    #[track_caller]
    pub fn read_line(&mut self) -> Option<String> {
        match self.next() {
            Got::Line(line) => Some(line),
            Got::Eof => None,
            Got::Reset => panic!("client {:?}: connection reset, not closed", self.name),
        }
    }

    // The [`Lines`] expectations, callable without importing the trait:
    // many tests use `Client` alone.

    /// See [`Lines::expect`].
    #[track_caller]
    pub fn expect(&mut self, want: &str) {
        Lines::expect(self, want);
    }

    /// See [`Lines::expect_prompt`].
    #[track_caller]
    pub fn expect_prompt(&mut self) {
        Lines::expect_prompt(self);
    }

    /// See [`Lines::expect_joined`].
    #[track_caller]
    pub fn expect_joined(&mut self, name: &str, room: &str) -> Vec<String> {
        Lines::expect_joined(self, name, room)
    }

    /// See [`Lines::expect_eventually`].
    #[track_caller]
    pub fn expect_eventually(&mut self, want: &str) -> Vec<String> {
        Lines::expect_eventually(self, want)
    }

    /// Asserts the server closes the connection cleanly (EOF, not a reset).
    #[track_caller]
    pub fn expect_eof(&mut self) {
        let got = self.next();
        assert_eq!(got, Got::Eof, "expected the server to close the connection");
    }
}

/// What a client read next.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// One line, without its `\n`.
    Line(String),
    /// A clean close.
    Eof,
    /// A reset (RST): whatever the server had queued may be lost.
    Reset,
}

impl Lines for Client {
    fn read_line(&mut self) -> Option<String> {
        Client::read_line(self)
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The expectations every test client shares, over whatever carries its
/// lines (TCP, TLS, WebSocket text frames): each client type gives
/// `read_line` and its name, and gets these.
pub trait Lines {
    /// What a clean end of the stream is called in failure messages.
    const CLEAN_END: &'static str = "EOF";

    /// Reads one line without its `\n`; `None` at a clean end of the
    /// stream. Anything else fails the test: the server closes gracefully.
    #[track_caller]
    fn read_line(&mut self) -> Option<String>;

    /// The client's name, for failure messages.
    fn name(&self) -> &str;

    /// Reads one line and asserts it is exactly `want`.
    #[track_caller]
    fn expect(&mut self, want: &str) {
        let got = self.read_line();
        assert_eq!(got.as_deref(), Some(want), "client {:?}", self.name());
    }

    /// Reads the name prompt (`NAME ...`).
    #[track_caller]
    fn expect_prompt(&mut self) {
        self.expect(PROMPT);
    }

    /// Reads a join burst: `* <name> joined <room>`, then everything up to
    /// and including the room's member list (`* <room> has ...`), which
    /// ends it. Returns the lines in between (welcome, topic, history).
    #[track_caller]
    fn expect_joined(&mut self, name: &str, room: &str) -> Vec<String> {
        self.expect(&format!("* {name} joined {room}"));
        let members = format!("* {room} has ");
        let mut between = Vec::new();
        loop {
            match self.read_line() {
                Some(line) if line.starts_with(&members) => return between,
                Some(line) => between.push(line),
                None => panic!("{} in the join burst after {between:?}", Self::CLEAN_END),
            }
        }
    }

    /// Reads lines until one equals `want`, returning the ones before it.
    #[track_caller]
    fn expect_eventually(&mut self, want: &str) -> Vec<String> {
        let mut skipped = Vec::new();
        loop {
            match self.read_line() {
                Some(line) if line == want => return skipped,
                Some(line) => skipped.push(line),
                None => panic!("{} before {want:?}; got {skipped:?}", Self::CLEAN_END),
            }
        }
    }
}

/// A blocking loopback TCP connection with a read deadline and no Nagle
/// delay (so each write leaves as its own segment).
#[track_caller]
pub fn tcp(addr: SocketAddr) -> TcpStream {
    with_deadline(TcpStream::connect(addr).expect("connect to test server"))
}

/// Like [`tcp`], with the receive buffer set small before connecting so
/// the server sees a small window from the start (Linux doubles it).
#[track_caller]
pub fn tcp_small(addr: SocketAddr, rcvbuf: usize) -> TcpStream {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_recv_buffer_size(rcvbuf).unwrap();
    socket
        .connect(&addr.into())
        .expect("connect to test server");
    with_deadline(socket.into())
}

/// Sets the read deadline ([`LINE_TIMEOUT`]) and turns Nagle off.
fn with_deadline(sock: TcpStream) -> TcpStream {
    sock.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
    sock.set_nodelay(true).unwrap();
    sock
}
