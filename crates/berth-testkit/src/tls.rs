//! Test PKI and an HTTPS client: a CA made per test with `rcgen` (ECDSA P-256), server
//! certificates with IP and DNS SANs, client certificates for mutual TLS, and a reqwest
//! client that trusts only the given CA (no system roots) and optionally presents a
//! client identity.
//!
//! Every certificate gets a fresh serial, so a test can tell two of them apart on the wire
//! ([`peer_certificate`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};

use crate::Result;

/// A certificate authority for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its PKCS#8 private key (PEM).
    pub key_pem: String,
    /// The certificate (DER), to compare with what a server presented.
    pub der: Vec<u8>,
}

fn err(what: &str) -> impl Fn(rcgen::Error) -> String + '_ {
    move |e| format!("rcgen: {what}: {e}")
}

fn serial() -> SerialNumber {
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let n = nanos ^ (u64::from(std::process::id()) << 40) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    // Positive and non-zero: the top bit clear.
    SerialNumber::from((n & (u64::MAX >> 1)).max(1))
}

impl TestCa {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err("CA params"))?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(serial());
        let key = KeyPair::generate().map_err(err("CA key"))?;
        let cert = params.self_signed(&key).map_err(err("CA certificate"))?;
        Ok(Self { cert, key })
    }

    /// The CA certificate (PEM), for `ca.crt` or a client's trust store.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `sans` (IP addresses and DNS names, e.g.
    /// `["127.0.0.1", "localhost"]`).
    pub fn server_cert(&self, sans: &[&str]) -> Result<Issued> {
        self.issue(sans, sans.first().copied().unwrap_or("server"), ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (for mutual TLS) with common name `cn`.
    pub fn client_cert(&self, cn: &str) -> Result<Issued> {
        self.issue(&[], cn, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, sans: &[&str], cn: &str, usage: ExtendedKeyUsagePurpose) -> Result<Issued> {
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).map_err(err("leaf params"))?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![usage];
        params.serial_number = Some(serial());
        let key = KeyPair::generate().map_err(err("leaf key"))?;
        let cert = params.signed_by(&key, &self.cert, &self.key).map_err(err("leaf certificate"))?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() })
    }
}

impl Issued {
    /// Writes `DIR/STEM.crt` and `DIR/STEM.key`; returns both paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        write(&cert, &self.cert_pem)?;
        write(&key, &self.key_pem)?;
        Ok((cert, key))
    }

    /// Key and certificate in one PEM, as `reqwest::Identity::from_pem` takes it.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.key_pem, self.cert_pem)
    }
}

/// Writes `text` to `path` (an error naming the path).
pub fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A blocking HTTPS client that trusts only `ca_pem` (no system roots), presents
/// `identity` when given, records the server's certificate ([`peer_certificate`]) and opens
/// a new connection per request (so each request shows the certificate in force now).
pub fn https_client(ca_pem: &str, identity: Option<&Issued>) -> Result<reqwest::blocking::Client> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(|e| format!("CA certificate: {e}"))?;
    let mut builder = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30));
    if let Some(identity) = identity {
        let id = reqwest::Identity::from_pem(identity.identity_pem().as_bytes())
            .map_err(|e| format!("client identity: {e}"))?;
        builder = builder.identity(id);
    }
    builder.build().map_err(|e| format!("building the HTTPS client: {e}"))
}

/// The DER certificate the server presented for `response` (needs [`https_client`]).
pub fn peer_certificate(response: &reqwest::blocking::Response) -> Option<Vec<u8>> {
    response.extensions().get::<reqwest::tls::TlsInfo>()?.peer_certificate().map(<[u8]>::to_vec)
}
