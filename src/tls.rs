//! Loading the server's TLS identity: a PEM certificate chain and private
//! key into a rustls `ServerConfig` (TLS 1.2 and 1.3, rustls' safe
//! defaults, no ALPN, no client certificates). Every error names the file
//! and says what is wrong with it, for the startup message and for a
//! SIGHUP reload that keeps the old identity. Knows nothing of sockets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Where the certificate chain and key are read from (again on reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// PEM certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

impl Identity {
    /// Reads both files and checks that the key matches the certificate.
    pub fn load(&self) -> Result<Arc<ServerConfig>, String> {
        let chain = read_certs(&self.cert)?;
        let key = read_key(&self.key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup failed: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| {
                format!(
                    "{} and {} do not go together: {e}",
                    self.cert.display(),
                    self.key.display()
                )
            })?;
        Ok(Arc::new(config))
    }
}

/// The PEM certificates in `path` (a server's chain, or a client's trusted
/// CAs), or an error naming the file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected PEM \"BEGIN CERTIFICATE\")",
            path.display()
        ));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        format!(
            "{}: no usable private key in it (expected PEM PKCS#8, RSA or EC): {e}",
            path.display()
        )
    })
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(dir: &Path) -> Identity {
        Identity {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    #[test]
    fn missing_files_are_named() {
        let id = identity(Path::new("/nonexistent-dir"));
        let e = id.load().unwrap_err();
        assert!(
            e.starts_with("cannot read /nonexistent-dir/cert.pem: "),
            "{e}"
        );
    }

    #[test]
    fn files_that_are_not_pem_are_named() {
        let dir = std::env::temp_dir().join(format!("chatroom-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), "hello\n").unwrap();
        std::fs::write(dir.join("key.pem"), "hello\n").unwrap();
        let e = identity(&dir).load().unwrap_err();
        assert!(e.contains("cert.pem: no certificate in it"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
