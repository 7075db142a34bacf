//! TLS for the client's tests: a throwaway CA and server certificate in a
//! temporary directory (generated with the `gencert` example's code, never
//! committed), the real `chatroom` binary serving plain and TLS chat, and a
//! one-connection fake TLS server for what a real server never does.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::CLIENT_TIMEOUT;
use crate::common::tls::{Pki, TlsProcess};

/// A CA and a server certificate for `localhost`, `127.0.0.1` and `::1`,
/// as files in a temporary directory removed on drop.
pub struct Certs(Pki);

impl Certs {
    /// Generates a fresh CA called `ca_name` and a certificate it signs.
    /// (Two CAs with one name would be told apart only by their keys.)
    pub fn generate(ca_name: &str) -> Certs {
        Certs(Pki::for_names(ca_name, &["localhost", "127.0.0.1", "::1"]))
    }

    /// The CA certificate a client trusts (`--ca`).
    pub fn ca(&self) -> String {
        self.path("ca.pem")
    }

    pub fn path(&self, file: &str) -> String {
        self.0
            .dir
            .join(file)
            .to_str()
            .expect("UTF-8 temp path")
            .to_string()
    }

    /// A rustls server configuration with this certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let chain = CertificateDer::pem_slice_iter(self.0.chain_pem().as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("chain");
        let key = PrivateKeyDer::from_pem_slice(self.0.key_pem().as_bytes()).expect("key");
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

/// Starts the real server binary serving `certs` on a plain and a TLS chat
/// listener, both on free ports (`plain` is always set).
#[track_caller]
pub fn tls_server(certs: &Certs) -> TlsProcess {
    let (cert, key) = (certs.path("cert.pem"), certs.path("key.pem"));
    TlsProcess::spawn(&[
        "--port",
        "0",
        "--tls-port",
        "0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ])
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
