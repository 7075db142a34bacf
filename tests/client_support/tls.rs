//! TLS for the client's tests: a throwaway CA and server certificate in a
//! temporary directory (generated with the `gencert` example's code, never
//! committed), the real `chatroom` binary serving plain and TLS chat, and a
//! one-connection fake TLS server for what a real server never does.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::CLIENT_TIMEOUT;

#[path = "../../examples/gencert/certs.rs"]
mod certs;

/// A CA and a server certificate for `localhost`, `127.0.0.1` and `::1`,
/// as files in a temporary directory removed on drop.
pub struct Certs {
    pub dir: PathBuf,
    chain: String,
    key: String,
}

impl Certs {
    /// Generates a fresh CA called `ca_name` and a certificate it signs.
    /// (Two CAs with one name would be told apart only by their keys.)
    pub fn generate(ca_name: &str) -> Certs {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "chatroom-client-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir for certificates");
        let pem = certs::generate(ca_name, &["localhost", "127.0.0.1", "::1"])
            .expect("generate certificates");
        std::fs::write(dir.join("ca.pem"), &pem.ca).expect("write ca.pem");
        std::fs::write(dir.join("cert.pem"), &pem.chain).expect("write cert.pem");
        std::fs::write(dir.join("key.pem"), &pem.key).expect("write key.pem");
        Certs {
            dir,
            chain: pem.chain,
            key: pem.key,
        }
    }

    /// The CA certificate a client trusts (`--ca`).
    pub fn ca(&self) -> String {
        self.path("ca.pem")
    }

    pub fn path(&self, file: &str) -> String {
        self.dir
            .join(file)
            .to_str()
            .expect("UTF-8 temp path")
            .to_string()
    }

    /// A rustls server configuration with this certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let chain = CertificateDer::pem_slice_iter(self.chain.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_slice(self.key.as_bytes()).expect("key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        Arc::new(config)
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The real server binary with a plain and a TLS listener on free ports.
pub struct TlsServer {
    child: Child,
    pub plain: SocketAddr,
    pub tls: SocketAddr,
    drain: Option<JoinHandle<String>>,
}

impl TlsServer {
    /// Starts `chatroom --port 0 --tls-port 0` with the certificate (the
    /// web listeners off), and waits for both `listening` lines.
    #[track_caller]
    pub fn start(certs: &Certs) -> TlsServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatroom"))
            .args(["--port", "0", "--tls-port", "0", "--http-port", "off"])
            .args(["--https-port", "off", "--tls-cert"])
            .arg(certs.path("cert.pem"))
            .arg("--tls-key")
            .arg(certs.path("key.pem"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chatroom");
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let (tx, rx) = mpsc::channel::<(bool, SocketAddr)>();
        // Drained for the whole run, so logging never blocks the server.
        let drain = thread::spawn(move || {
            let mut log = String::new();
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                for (tls, marker) in [(false, "listening on "), (true, "listening (tls) on ")] {
                    if let Some(addr) = line.split(marker).nth(1) {
                        if let Ok(addr) = addr.trim().parse() {
                            let _ = tx.send((tls, addr));
                        }
                    }
                }
                log.push_str(&line);
                log.push('\n');
            }
            log
        });
        let (mut plain, mut tls) = (None, None);
        while plain.is_none() || tls.is_none() {
            match rx.recv_timeout(CLIENT_TIMEOUT) {
                Ok((true, addr)) => tls = Some(addr),
                Ok((false, addr)) => plain = Some(addr),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = drain.join().unwrap_or_default();
                    panic!("no `listening` lines from chatroom; log:\n{log}");
                }
            }
        }
        TlsServer {
            child,
            plain: plain.expect("plain address"),
            tls: tls.expect("tls address"),
            drain: Some(drain),
        }
    }

    /// Sends SIGTERM (a graceful shutdown) and waits, bounded, for the
    /// exit status.
    #[track_caller]
    pub fn terminate(mut self) -> Option<i32> {
        // SAFETY: kill() on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll chatroom") {
                if let Some(drain) = self.drain.take() {
                    let _ = drain.join();
                }
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chatroom did not stop"
            );
            thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-connection TLS server on a free loopback port, driven by a script
/// that gets the TLS stream once the handshake is done.
pub struct FakeTlsServer {
    pub addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl FakeTlsServer {
    pub fn start(
        config: Arc<ServerConfig>,
        script: impl FnOnce(StreamOwned<ServerConnection, TcpStream>) + Send + 'static,
    ) -> FakeTlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake TLS server");
        let addr = listener.local_addr().expect("fake server address");
        let thread = thread::spawn(move || {
            let (sock, _) = listener.accept().expect("fake server accept");
            sock.set_read_timeout(Some(CLIENT_TIMEOUT))
                .expect("set read timeout");
            let mut conn = ServerConnection::new(config).expect("server session");
            let mut sock = sock;
            while conn.is_handshaking() {
                conn.complete_io(&mut sock).expect("TLS handshake");
            }
            script(StreamOwned::new(conn, sock));
        });
        FakeTlsServer {
            addr,
            thread: Some(thread),
        }
    }

    /// Waits for the script to finish; fails the test if it panicked.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            t.join().expect("fake TLS server script panicked");
        }
    }
}
