//! The connection: the address as given, connecting to the first address
//! that answers, TLS (trust roots, the handshake, and what each way it can
//! fail means for the user), and the two halves the session uses, plain or
//! TLS alike: [`Incoming`] for the reader, [`Outgoing`] for the sender.
//! Knows nothing of lines or of the chat.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};

/// How long connecting to one resolved address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server may stay silent during the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to connect: a host (name or address) and a port.
#[derive(Debug, Clone)]
pub struct Target {
    /// As given, without brackets: `localhost`, `10.0.0.1`, `::1`.
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `--addr`: `HOST[:PORT]`, `[V6]:PORT`, or a bare IPv6 address.
/// The port is `None` when not given (the default depends on `--tls`).
pub fn parse_addr(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = chatroom::cli::split_host_port(s)?;
    if port == Some(0) {
        return Err("port 0 cannot be connected to".to_string());
    }
    if host.is_empty() {
        return Err(format!("needs a host (got {:?})", s.trim()));
    }
    Ok((host.to_string(), port))
}

/// Parses `--server-name`: a DNS name or an IP address.
pub fn parse_server_name(s: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(s.to_string())
        .map_err(|_| format!("{s:?} is not a valid DNS name or IP address"))
}

/// How to speak TLS to the server.
#[derive(Debug)]
pub struct Tls {
    pub config: Arc<ClientConfig>,
    /// The name the certificate must be valid for.
    pub server_name: ServerName<'static>,
    /// `--ca`, to name it in errors.
    pub ca: Option<PathBuf>,
}

impl Tls {
    /// The server name as the user would write it.
    pub fn server_name_text(&self) -> String {
        self.server_name.to_str().into_owned()
    }
}

/// The TLS client configuration: rustls' safe defaults with the `ring`
/// provider, trusting the CA certificates in `ca` if given, or else
/// Mozilla's roots (built in through `webpki-roots`). There is
/// deliberately no way to skip verification.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let roots = match ca {
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in chatroom::tls::read_certs(path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
            }
            roots
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An open connection, split into what the reader and the sender use.
#[derive(Debug)]
pub struct Conn {
    pub incoming: Incoming,
    pub outgoing: Outgoing,
    /// True over TLS.
    pub is_tls: bool,
}

/// Resolves the target and connects to the first address that answers,
/// then does the TLS handshake if asked. Every error is one line for the
/// user.
pub fn connect(target: &Target, tls: Option<&Tls>) -> Result<Conn, String> {
    let stream = connect_tcp(target)?;
    let Some(tls) = tls else {
        let sock = stream
            .try_clone()
            .map_err(|e| format!("cannot use the connection: {e}"))?;
        return Ok(Conn {
            incoming: Incoming::Plain(stream),
            outgoing: Outgoing::Plain(sock),
            is_tls: false,
        });
    };
    let mut session = ClientConnection::new(Arc::clone(&tls.config), tls.server_name.clone())
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    handshake(&mut session, &stream, target, tls)?;
    let sock = stream
        .try_clone()
        .map_err(|e| format!("cannot use the connection: {e}"))?;
    let session = Arc::new(Mutex::new(session));
    Ok(Conn {
        incoming: Incoming::Tls(TlsIncoming {
            sock: stream,
            session: Arc::clone(&session),
            plain: Vec::new(),
            taken: 0,
        }),
        outgoing: Outgoing::Tls { sock, session },
        is_tls: true,
    })
}

fn connect_tcp(target: &Target) -> Result<TcpStream, String> {
    let resolved: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let mut last_error = None;
    // `localhost` may give ::1 first while the server listens on 127.0.0.1
    // only: try every address before giving up.
    for candidate in &resolved {
        match TcpStream::connect_timeout(candidate, CONNECT_TIMEOUT) {
            Ok(stream) => {
                // Typed lines are small and should leave at once.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) => format!("cannot connect to {target}: {e}"),
        None => format!("cannot connect to {target}: no address found"),
    })
}

/// Drives the handshake on the blocking socket, bounded by
/// [`HANDSHAKE_TIMEOUT`] of silence. Errors say what the user can do.
fn handshake(
    session: &mut ClientConnection,
    mut sock: &TcpStream,
    target: &Target,
    tls: &Tls,
) -> Result<(), String> {
    let lost = |e: io::Error| format!("connection to {target} lost during the TLS handshake: {e}");
    sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .map_err(|e| format!("cannot use the connection: {e}"))?;
    while session.is_handshaking() {
        while session.wants_write() {
            session.write_tls(&mut sock).map_err(lost)?;
        }
        if !session.is_handshaking() {
            break;
        }
        match session.read_tls(&mut sock) {
            Ok(0) => {
                return Err(format!(
                    "the server at {target} closed the connection during the TLS handshake"
                ))
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                return Err(format!(
                    "no TLS answer from the server at {target} within {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(lost(e)),
        }
        if let Err(e) = session.process_new_packets() {
            // Tell the server why (a small alert; best effort).
            let _ = session.write_tls(&mut sock);
            return Err(handshake_error(&e, tls));
        }
    }
    // The client's last flight (Finished) may still be queued.
    while session.wants_write() {
        session.write_tls(&mut sock).map_err(lost)?;
    }
    sock.set_read_timeout(None)
        .map_err(|e| format!("cannot use the connection: {e}"))
}

/// One line for a failed handshake: what went wrong and what to try.
fn handshake_error(e: &rustls::Error, tls: &Tls) -> String {
    let name = tls.server_name_text();
    match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => match &tls.ca {
                Some(ca) => format!(
                    "the server's certificate is not trusted: it was not issued by the CA in {}",
                    ca.display()
                ),
                None => "the server's certificate is not trusted: it was not issued by a \
                         public CA (for a private CA, give its certificate with --ca FILE)"
                    .to_string(),
            },
            CertificateError::BadSignature => "the server's certificate is not trusted: \
                 its signature does not verify with its issuer's key"
                .to_string(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's certificate is not valid for {name} (if it is right under \
                 another name, give that with --server-name)"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".to_string()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (is this computer's clock right?)"
                    .to_string()
            }
            _ => format!("the server's certificate was refused: {e}"),
        },
        // Plain text is not a TLS record: the server spoke first, in lines.
        rustls::Error::InvalidMessage(_) => {
            "the server did not answer in TLS; is this a plain-text port? try without --tls"
                .to_string()
        }
        _ => format!("the TLS handshake failed: {e}"),
    }
}

/// True for a read that ran out of time (a socket timeout), not a failure.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The receiving half: plaintext, whatever the transport. A read returns
/// `Ok(0)` only at a clean end: TCP EOF, or TLS close_notify (a TLS
/// connection cut without one is an `UnexpectedEof` error). A read timeout
/// set with [`Incoming::set_read_timeout`] shows as `WouldBlock` or
/// `TimedOut`, and loses nothing.
#[derive(Debug)]
pub enum Incoming {
    Plain(TcpStream),
    Tls(TlsIncoming),
}

impl Incoming {
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Incoming::Plain(sock) => sock.set_read_timeout(timeout),
            Incoming::Tls(tls) => tls.sock.set_read_timeout(timeout),
        }
    }
}

impl Read for Incoming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Incoming::Plain(sock) => sock.read(buf),
            Incoming::Tls(tls) => tls.read(buf),
        }
    }
}

/// The TLS receiving half. The session is shared with [`Outgoing`]; the
/// reader holds its lock only while rustls works and owed records are
/// written, never while waiting for the server to send.
#[derive(Debug)]
pub struct TlsIncoming {
    sock: TcpStream,
    session: Arc<Mutex<ClientConnection>>,
    /// Plaintext taken out of rustls, so rustls never refuses records for
    /// want of room; `plain[taken..]` is not handed out yet.
    plain: Vec<u8>,
    taken: usize,
}

impl TlsIncoming {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if self.taken < self.plain.len() {
                let n = buf.len().min(self.plain.len() - self.taken);
                buf[..n].copy_from_slice(&self.plain[self.taken..self.taken + n]);
                self.taken += n;
                return Ok(n);
            }
            self.plain.clear();
            self.taken = 0;
            let n = match (&self.sock).read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let mut session = lock(&self.session);
            let mut records = &chunk[..n];
            loop {
                // At EOF (n == 0) this tells rustls the stream ended.
                session.read_tls(&mut records)?;
                let state = session.process_new_packets().map_err(|e| {
                    let _ = session.write_tls(&mut &self.sock);
                    io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}"))
                })?;
                let ready = state.plaintext_bytes_to_read();
                if ready > 0 {
                    let start = self.plain.len();
                    self.plain.resize(start + ready, 0);
                    session.reader().read_exact(&mut self.plain[start..])?;
                }
                if records.is_empty() {
                    break;
                }
            }
            // Answers rustls owes the server (a key update, an alert).
            while session.wants_write() {
                session.write_tls(&mut &self.sock)?;
            }
            if self.plain.is_empty() {
                match session.reader().read(buf) {
                    // Ok(0): the server's close_notify, a clean end.
                    Ok(n) => return Ok(n),
                    // More records are needed.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the connection was cut without a TLS close_notify",
                        ))
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// The sending half, shared by the threads that send (main) and the one
/// that may close the session (whichever ends it).
#[derive(Debug)]
pub enum Outgoing {
    Plain(TcpStream),
    Tls {
        sock: TcpStream,
        session: Arc<Mutex<ClientConnection>>,
    },
}

impl Outgoing {
    /// Sends one line, adding the `\n`. Blocks until the socket took it.
    pub fn send_line(&self, line: &[u8]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        match self {
            Outgoing::Plain(sock) => (&*sock).write_all(&buf),
            Outgoing::Tls { sock, session } => {
                let mut session = lock(session);
                let mut rest = &buf[..];
                while !rest.is_empty() {
                    let n = session.writer().write(rest)?;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    rest = &rest[n..];
                    while session.wants_write() {
                        session.write_tls(&mut &*sock)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Ends our side cleanly, best effort: TLS close_notify, then FIN.
    pub fn close(&self) {
        match self {
            Outgoing::Plain(sock) => {
                let _ = sock.shutdown(Shutdown::Write);
            }
            Outgoing::Tls { sock, session } => {
                // Never wait for a sender stuck on a full socket.
                if let Ok(mut session) = session.try_lock() {
                    session.send_close_notify();
                    while session.wants_write() {
                        if session.write_tls(&mut &*sock).is_err() {
                            break;
                        }
                    }
                }
                let _ = sock.shutdown(Shutdown::Write);
            }
        }
    }
}

fn lock(session: &Mutex<ClientConnection>) -> MutexGuard<'_, ClientConnection> {
    // A panic elsewhere ends the program; the session is still coherent
    // enough to read from until then.
    session
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
