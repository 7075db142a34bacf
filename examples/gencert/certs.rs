//! Throwaway certificates: a private CA and a server certificate it signs,
//! generated in memory with rcgen. Shared by the `gencert` example and the
//! tests (through `#[path]`), so no private key is ever committed.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA, and a server certificate for some names signed by it, all PEM.
pub struct Pem {
    /// The CA's certificate: what a client trusts (`--ca`).
    pub ca: String,
    /// The server's certificate followed by the CA's: the chain a server
    /// presents (`--tls-cert`).
    pub chain: String,
    /// The server's private key, PKCS#8 (`--tls-key`).
    pub key: String,
}

/// Generates a fresh CA named `ca_name` and a server certificate for
/// `names` (DNS names or IP addresses) signed by it.
pub fn generate(ca_name: &str, names: &[&str]) -> Result<Pem, rcgen::Error> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "chatroom server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca)?;
    Ok(Pem {
        ca: ca.pem(),
        chain: format!("{}{}", cert.pem(), ca.pem()),
        key: key.serialize_pem(),
    })
}
