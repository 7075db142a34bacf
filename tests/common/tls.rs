//! TLS helpers for integration tests: a throwaway PKI in a temp dir per
//! test, a server with a TLS listener, a blocking rustls client that reads
//! lines and tells a clean close (close_notify) from a cut or reset one, and
//! the binary started with TLS. No private key is ever committed.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Instant;

use chatroom::tls::Identity;
use chatroom::{Config, Listen, Server};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

use super::process::{ServerProcess, PLAIN};
use super::{tcp, test_config, Lines, TestServer, LINE_TIMEOUT};

#[path = "../../examples/gencert/certs.rs"]
mod certs;

/// Gives each Pki of this test process its own directory.
static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

/// A throwaway CA and a server certificate for `localhost` and `127.0.0.1`
/// (or other names) signed by it, written as `ca.pem`, `cert.pem` (chain) and `key.pem` into
/// a fresh temp dir that is removed on drop.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The PEM text of the three files as generated.
    ca_pem: String,
    chain_pem: String,
    key_pem: String,
}

impl Pki {
    /// Generates a CA named `ca_name` and a server certificate it signs.
    pub fn new(ca_name: &str) -> Pki {
        Pki::for_names(ca_name, &["localhost", "127.0.0.1"])
    }

    /// As [`new`](Self::new), with a server certificate for `names`.
    pub fn for_names(ca_name: &str, names: &[&str]) -> Pki {
        let pem = certs::generate(ca_name, names).expect("generate certs");
        let dir = std::env::temp_dir().join(format!(
            "chatroom-tls-test-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create the PKI temp dir");
        let pki = Pki {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
            ca_pem: pem.ca,
            chain_pem: pem.chain,
            key_pem: pem.key,
        };
        write_file(&pki.ca, pki.ca_pem.as_bytes());
        write_file(&pki.cert, pki.chain_pem.as_bytes());
        write_file(&pki.key, pki.key_pem.as_bytes());
        pki
    }

    /// The server identity: this PKI's `cert.pem` and `key.pem`.
    pub fn identity(&self) -> Identity {
        Identity {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }

    /// The server's own certificate (the first of the chain), as generated.
    pub fn leaf(&self) -> CertificateDer<'static> {
        CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .next()
            .expect("a certificate in the chain")
            .expect("valid PEM")
    }

    /// A client config trusting this CA only (TLS 1.2 and 1.3).
    pub fn client(&self) -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
                .with_safe_default_protocol_versions()
                .expect("rustls' default versions")
                .with_root_certificates(self.roots())
                .with_no_client_auth(),
        )
    }

    /// A client config trusting this CA only and speaking TLS 1.2 only.
    pub fn client_tls12(&self) -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
                .with_protocol_versions(&[&rustls::version::TLS12])
                .expect("TLS 1.2 is supported")
                .with_root_certificates(self.roots())
                .with_no_client_auth(),
        )
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(cert.expect("valid CA PEM")).expect("add the CA");
        }
        roots
    }

    /// Overwrites this PKI's `cert.pem` and `key.pem` with `other`'s, as an
    /// operator renewing a certificate in place before a reload.
    pub fn install(&self, other: &Pki) {
        write_file(&self.cert, other.chain_pem.as_bytes());
        write_file(&self.key, other.key_pem.as_bytes());
    }

    /// The PEM private key of this PKI.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The PEM certificate chain of this PKI.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Replaces `path` with `bytes` in one step (write aside, rename), so a
/// server reading it never sees half a file.
pub fn write_file(path: &Path, bytes: &[u8]) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, bytes).unwrap_or_else(|e| panic!("write {}: {e}", aside.display()));
    std::fs::rename(&aside, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}

/// A config for tests with a TLS listener on a free loopback port, serving
/// `pki`'s certificate, and plain TCP on another.
pub fn tls_config(pki: &Pki) -> Config {
    Config {
        tls_identity: Some(pki.identity()),
        tls_addr: Some("127.0.0.1:0".parse().unwrap()),
        ..test_config()
    }
}

/// A server with a TLS listener; derefs to the [`TestServer`] (whose `addr`
/// is the plain-TCP one).
pub struct TlsServer {
    pub server: TestServer,
    /// The TLS listener's address.
    pub tls: SocketAddr,
}

impl std::ops::Deref for TlsServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl TlsServer {
    /// Asks the server to shut down and waits for `run` to return.
    pub fn stop(self) -> io::Result<chatroom::Stopped> {
        self.server.stop()
    }
}

/// Starts a server with `config`, which must ask for a TLS listener.
pub fn start_tls(config: Config) -> TlsServer {
    let server = Server::bind(config).expect("bind test server");
    let tls = server.addr(Listen::Tls).expect("the config asks for TLS");
    TlsServer {
        server: super::spawn(server),
        tls,
    }
}

/// What a TLS client read next (the TLS side of [`super::Got`]).
#[derive(Debug, PartialEq)]
pub enum TlsGot {
    /// One line, without its `\n`.
    Line(String),
    /// The server's close_notify: a clean end of the stream.
    Eof,
    /// TCP closed without a close_notify: the stream may have been cut.
    Truncated,
    /// A reset (RST).
    Reset,
    /// The session failed: an alert from the server, or records from it
    /// that did not check out.
    Failed(rustls::Error),
}

/// The rustls error inside an I/O error from a TLS session, if any.
pub fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// One blocking TLS client over TCP, with a read deadline.
pub struct TlsClient {
    pub conn: ClientConnection,
    pub sock: TcpStream,
    /// Plaintext received but not yet handed out as lines.
    buf: Vec<u8>,
    pub name: String,
}

impl TlsClient {
    /// Connects and completes the handshake; fails the test if it fails.
    #[track_caller]
    pub fn connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> TlsClient {
        Self::try_connect(addr, config).unwrap_or_else(|e| panic!("TLS handshake: {e}"))
    }

    /// Connects and tries the handshake; the error says why it failed
    /// (see [`tls_error`]).
    pub fn try_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> io::Result<TlsClient> {
        Self::over(tcp(addr), config)
    }

    /// Runs the handshake over an already connected socket.
    pub fn over(sock: TcpStream, config: &Arc<ClientConfig>) -> io::Result<TlsClient> {
        let mut client = Self::start(sock, config);
        client.handshake()?;
        Ok(client)
    }

    /// Connects and writes the whole first flight (the ClientHello) one
    /// byte at a time, each on its own write, then completes the handshake.
    #[track_caller]
    pub fn connect_bytewise(addr: SocketAddr, config: &Arc<ClientConfig>) -> TlsClient {
        let mut client = Self::start(tcp(addr), config);
        let mut first_flight = Vec::new();
        while client.conn.wants_write() {
            client.conn.write_tls(&mut first_flight).unwrap();
        }
        assert!(first_flight.len() > 100, "{first_flight:?}");
        for byte in &first_flight {
            client.sock.write_all(std::slice::from_ref(byte)).unwrap();
            client.sock.flush().unwrap();
        }
        client
            .handshake()
            .unwrap_or_else(|e| panic!("TLS handshake: {e}"));
        client
    }

    /// Connects and sends `plaintext` in the same TCP write as the last
    /// handshake message (the client's Finished), so the server reads the
    /// end of the handshake and the first lines at once.
    #[track_caller]
    pub fn connect_sending(
        addr: SocketAddr,
        config: &Arc<ClientConfig>,
        plaintext: &[u8],
    ) -> TlsClient {
        let mut client = Self::start(tcp(addr), config);
        while client.conn.is_handshaking() {
            while client.conn.wants_write() {
                client.conn.write_tls(&mut client.sock).unwrap();
            }
            if !client.conn.is_handshaking() {
                break;
            }
            let n = client.conn.read_tls(&mut client.sock).expect("handshake");
            assert!(n > 0, "EOF in the handshake");
            client.conn.process_new_packets().expect("handshake");
        }
        client.conn.writer().write_all(plaintext).unwrap();
        let mut flight = Vec::new();
        while client.conn.wants_write() {
            client.conn.write_tls(&mut flight).unwrap();
        }
        client.sock.write_all(&flight).expect("send to server");
        client
    }

    /// A session over `sock` that has sent nothing yet.
    fn start(sock: TcpStream, config: &Arc<ClientConfig>) -> TlsClient {
        sock.set_read_timeout(Some(LINE_TIMEOUT)).unwrap();
        sock.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        TlsClient {
            conn: ClientConnection::new(Arc::clone(config), name).expect("client session"),
            sock,
            buf: Vec::new(),
            name: String::new(),
        }
    }

    /// Completes the handshake (bounded by the read timeout).
    pub fn handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.conn.complete_io(&mut self.sock)?;
        }
        self.flush_tls();
        Ok(())
    }

    /// Connects, answers the prompt with `name` and reads through the join
    /// burst, as [`super::Client::login`] does.
    #[track_caller]
    pub fn login(addr: SocketAddr, config: &Arc<ClientConfig>, name: &str) -> TlsClient {
        let mut c = TlsClient::connect(addr, config);
        c.expect_prompt();
        c.send(name);
        c.expect_joined(name, "lobby");
        c.name = name.to_string();
        c
    }

    /// The certificate the server presented first (its own).
    pub fn server_leaf(&self) -> CertificateDer<'static> {
        self.conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .expect("the server sent a certificate")
            .clone()
    }

    /// Sends one line (adds the `\n`) in one record.
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// Sends `bytes` of plaintext (one record per 16 KiB) and flushes them.
    #[track_caller]
    pub fn send_raw(&mut self, bytes: &[u8]) {
        // rustls takes what fits in its send buffer (64 KiB): write that
        // out before handing it more.
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self
                .conn
                .writer()
                .write(rest)
                .expect("hand plaintext to rustls");
            rest = &rest[n..];
            self.flush_tls();
        }
    }

    /// Sends each part as its own record, each written to the socket before
    /// the next is made.
    #[track_caller]
    pub fn send_records(&mut self, parts: &[&[u8]]) {
        for part in parts {
            assert!(part.len() <= 16384, "one record holds at most 16 KiB");
            self.send_raw(part);
        }
    }

    /// Sends a close_notify: the end of what we send, in TLS terms.
    #[track_caller]
    pub fn close_notify(&mut self) {
        self.conn.send_close_notify();
        self.flush_tls();
    }

    /// Writes every record rustls has ready.
    #[track_caller]
    fn flush_tls(&mut self) {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock).expect("send to server");
        }
    }

    /// Reads what comes next: a line, a close_notify, a cut, a reset or a
    /// TLS failure. Fails the test after [`LINE_TIMEOUT`].
    #[track_caller]
    pub fn next(&mut self) -> TlsGot {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                return TlsGot::Line(String::from_utf8(line).expect("server sent invalid UTF-8"));
            }
            if let Err(end) = self.fill() {
                if end == TlsGot::Eof {
                    assert!(
                        self.buf.is_empty(),
                        "line without newline before close_notify: {:?}",
                        self.buf
                    );
                }
                return end;
            }
        }
    }

    /// Reads more plaintext into `buf`; `Err` says how the stream ended.
    #[track_caller]
    fn fill(&mut self) -> Result<(), TlsGot> {
        let mut chunk = [0; 16 * 1024];
        let deadline = Instant::now() + LINE_TIMEOUT;
        loop {
            match self.conn.reader().read(&mut chunk) {
                Ok(0) => return Err(TlsGot::Eof),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(TlsGot::Truncated)
                }
                Err(e) => panic!("client {:?}: reading plaintext: {e}", self.name),
            }
            assert!(
                Instant::now() < deadline,
                "client {:?}: timed out waiting for the server",
                self.name
            );
            match self.conn.read_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Err(TlsGot::Reset),
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    panic!(
                        "client {:?}: nothing from the server for {LINE_TIMEOUT:?}",
                        self.name
                    )
                }
                Err(e) => panic!("client {:?}: reading from the server: {e}", self.name),
            }
            if let Err(e) = self.conn.process_new_packets() {
                // Our alert, best effort, as any client would send it.
                let _ = self.conn.write_tls(&mut self.sock);
                return Err(TlsGot::Failed(e));
            }
        }
    }

    /// Asserts the server ends the session cleanly: a close_notify, then
    /// the TCP EOF with nothing after it (no reset).
    #[track_caller]
    pub fn expect_eof(&mut self) {
        let got = self.next();
        assert_eq!(
            got,
            TlsGot::Eof,
            "client {:?}: expected close_notify",
            self.name
        );
        let mut rest = [0; 64];
        match self.sock.read(&mut rest) {
            Ok(0) => {}
            Ok(n) => panic!(
                "client {:?}: bytes after close_notify: {:?}",
                self.name,
                &rest[..n]
            ),
            Err(e) => panic!("client {:?}: TCP after close_notify: {e}", self.name),
        }
    }
}

impl Lines for TlsClient {
    const CLEAN_END: &'static str = "close_notify";

    /// Reads one line without its `\n`; `None` at a clean close_notify.
    /// Anything else fails the test: the server closes gracefully.
    #[track_caller]
    fn read_line(&mut self) -> Option<String> {
        match self.next() {
            TlsGot::Line(line) => Some(line),
            TlsGot::Eof => None,
            other => panic!("client {:?}: {other:?}, not a line", self.name),
        }
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The first flight a client with `config` sends: its ClientHello.
pub fn client_hello(config: &Arc<ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(Arc::clone(config), name).expect("client session");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    hello
}

/// The `openssl` command, or a failure saying how to install it: tests
/// that need it never skip.
#[track_caller]
pub fn openssl() -> &'static str {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => "openssl",
        _ => panic!("openssl is missing: run `bash scripts/test-deps.sh` to install it"),
    }
}

/// The real binary with TLS, as a child process (a [`ServerProcess`] whose
/// `addr` is the TLS listener), with the addresses of both chat listeners.
pub struct TlsProcess {
    pub process: ServerProcess,
    /// The plain-TCP listener, if it has one.
    pub plain: Option<SocketAddr>,
    /// The TLS listener.
    pub tls: SocketAddr,
}

impl std::ops::Deref for TlsProcess {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.process
    }
}

impl TlsProcess {
    /// Starts the binary with `args` (web listeners off) and waits for its
    /// `listening (tls)` line (and the plain `listening on` line unless
    /// `--port off`).
    #[track_caller]
    pub fn spawn(args: &[&str]) -> TlsProcess {
        let process = ServerProcess::spawn_on("tls", args);
        let has_plain = !args.windows(2).any(|w| w == ["--port", "off"]);
        TlsProcess {
            plain: has_plain.then(|| process.listening(PLAIN)),
            tls: process.addr,
            process,
        }
    }

    /// Sends SIGTERM, asserts a graceful exit (status 0) and returns the
    /// whole log.
    #[track_caller]
    pub fn terminate(self) -> String {
        self.process.terminate()
    }
}
