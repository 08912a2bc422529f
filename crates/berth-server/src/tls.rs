//! HTTPS: rustls (ring, the provider reqwest already brings in), configured as Distribution's
//! `http.tls`, with certificates reloaded from disk while serving.
//!
//! [`Tls::load`] checks everything at start-up (files readable, PEM parseable, key matching
//! the certificate, cipher suites known to rustls), so a bad configuration never starts.
//! Afterwards [`Tls::spawn_reloader`] looks at the files once a second (size, mtime, ctime,
//! inode: a `mv` over the file or a Kubernetes secret's symlink swap both show) and, when
//! one changed, builds a whole new `ServerConfig` and swaps it in: handshakes that start
//! after the swap use it, connections already open keep theirs. A build that fails (a
//! half-written file, a key that does not match yet) keeps the old configuration and logs
//! a warning; it is retried when the files change again.
//!
//! Client certificates (`clientcas`, `clientauth`) follow Go's `tls.ClientAuthType`, which
//! Distribution exposes: without `clientcas` nobody is asked for one.

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the reloader looks at the files.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// `http.tls.clientauth`: what a client must show when `clientcas` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Ask for a certificate; accept any, or none, unverified (Go's `RequestClientCert`).
    Request,
    /// Require a certificate, unverified (Go's `RequireAnyClientCert`).
    RequireAny,
    /// Verify a certificate if one is sent (Go's `VerifyClientCertIfGiven`).
    VerifyIfGiven,
    /// Require a certificate signed by one of the client CAs (Distribution's default).
    #[default]
    RequireAndVerify,
}

/// `http.tls.minimumtls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinVersion {
    #[default]
    Tls12,
    Tls13,
}

/// What the server needs to serve HTTPS; the binary maps `http.tls` to it.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub client_cas: Vec<PathBuf>,
    pub client_auth: ClientAuth,
    pub min_version: MinVersion,
    /// Go (IANA) names; empty means Distribution's defaults (every ECDHE AEAD suite).
    pub cipher_suites: Vec<String>,
}

/// Why TLS could not be set up; each names the configuration key at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read { key: String, path: PathBuf, source: std::io::Error },
    #[error("{key}: {}: {reason}", path.display())]
    Invalid { key: String, path: PathBuf, reason: String },
    #[error("http.tls.ciphersuites: {0}")]
    CipherSuites(String),
    #[error("http.tls: {0}")]
    Other(String),
}

/// The live TLS configuration: cheap to clone, swapped by the reloader.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    options: TlsOptions,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<ServerConfig>,
    /// The file stamps of the last build attempted, successful or not.
    attempted: Mutex<Vec<Option<Stamp>>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("options", &self.inner.options).finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads and checks every file and option: any problem is a start-up error.
    pub fn load(options: TlsOptions) -> Result<Tls, TlsError> {
        let provider = Arc::new(provider_for(&options)?);
        let stamps = stamps(&options);
        let config = build(&options, &provider)?;
        if matches!(options.client_auth, ClientAuth::Request | ClientAuth::RequireAny) && !options.client_cas.is_empty()
        {
            tracing::warn!(
                clientauth = ?options.client_auth,
                "client certificates are requested but not verified (http.tls.clientauth)"
            );
        }
        Ok(Tls {
            inner: Arc::new(Inner {
                options,
                provider,
                current: ArcSwap::from_pointee(config),
                attempted: Mutex::new(stamps),
            }),
        })
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.inner.current.load_full())
    }

    /// Rebuilds the configuration if a file changed since the last attempt. Returns whether
    /// a new configuration is in force; a failed rebuild keeps the old one and logs why.
    pub fn reload_if_changed(&self) -> bool {
        let now = stamps(&self.inner.options);
        {
            let mut attempted = self.inner.attempted.lock().unwrap_or_else(|p| p.into_inner());
            if *attempted == now {
                return false;
            }
            *attempted = now;
        }
        match build(&self.inner.options, &self.inner.provider) {
            Ok(config) => {
                self.inner.current.store(Arc::new(config));
                tracing::info!(certificate = %self.inner.options.certificate.display(), "tls certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "tls files changed but cannot be used; still serving the previous certificate");
                false
            }
        }
    }

    /// Checks the files once a second for as long as the runtime runs.
    pub fn spawn_reloader(&self) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let tls = tls.clone();
                // Small files, but still file I/O: off the async workers.
                let _ = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
            }
        })
    }
}

/// What identifies one version of a file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

fn stamps(options: &TlsOptions) -> Vec<Option<Stamp>> {
    use std::os::unix::fs::MetadataExt;
    let files = [&options.certificate, &options.key].into_iter().chain(&options.client_cas);
    files
        .map(|path| {
            std::fs::metadata(path).ok().map(|m| Stamp {
                len: m.len(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
                ino: m.ino(),
            })
        })
        .collect()
}

/// Go's names of the suites Distribution lists as available, for telling an unknown name
/// from one rustls does not implement.
const GO_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// The ring provider limited to the configured cipher suites.
///
/// Like Go, the list restricts TLS 1.2; TLS 1.3 suites are all enabled unless the list
/// names some of them (Go ignores such names; honouring them is what their author meant).
/// With `minimumtls: tls1.3` Distribution ignores the list, and so does Berth.
fn provider_for(options: &TlsOptions) -> Result<CryptoProvider, TlsError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if options.cipher_suites.is_empty() || options.min_version == MinVersion::Tls13 {
        if !options.cipher_suites.is_empty() {
            tracing::warn!("http.tls.ciphersuites is ignored with minimumtls tls1.3, as in Distribution");
        }
        return Ok(provider);
    }
    let all = std::mem::take(&mut provider.cipher_suites);
    let is13 = |s: &rustls::SupportedCipherSuite| s.version() == &rustls::version::TLS13;
    let mut chosen = Vec::new();
    for name in &options.cipher_suites {
        let rustls_name = match name.strip_prefix("TLS_") {
            Some(rest) if rest.starts_with("AES_") || rest.starts_with("CHACHA20_") => format!("TLS13_{rest}"),
            _ => name.clone(),
        };
        match all.iter().find(|s| s.suite().as_str() == Some(rustls_name.as_str())) {
            Some(suite) => chosen.push(*suite),
            None if GO_SUITES.contains(&name.as_str()) => {
                let supported: Vec<String> = all.iter().filter_map(|s| go_name(s.suite().as_str()?)).collect();
                return Err(TlsError::CipherSuites(format!(
                    "{name} is not supported: Berth's TLS (rustls) implements only {}",
                    supported.join(", ")
                )));
            }
            None => return Err(TlsError::CipherSuites(format!("unknown TLS cipher suite {name:?}"))),
        }
    }
    if !chosen.iter().any(is13) {
        chosen.extend(all.iter().filter(|s| is13(s)));
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

/// rustls's name of a suite as Go (and Distribution's configuration) spells it.
fn go_name(rustls_name: &str) -> Option<String> {
    Some(match rustls_name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => rustls_name.to_owned(),
    })
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { key: key.into(), path: path.to_owned(), source })
}

fn invalid(key: &str, path: &Path, reason: impl std::fmt::Display) -> TlsError {
    TlsError::Invalid { key: key.into(), path: path.to_owned(), reason: reason.to_string() }
}

fn certificates(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(key, path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(key, path, "no PEM certificate (-----BEGIN CERTIFICATE-----) in the file"));
    }
    Ok(certs)
}

/// One complete `ServerConfig` from the files as they are now.
fn build(options: &TlsOptions, provider: &Arc<CryptoProvider>) -> Result<ServerConfig, TlsError> {
    let chain = certificates("http.tls.certificate", &options.certificate)?;
    let key_pem = read("http.tls.key", &options.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| invalid("http.tls.key", &options.key, format!("no PEM private key: {e}")))?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = match options.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::CipherSuites(e.to_string()))?;
    let builder = match client_verifier(options, provider)? {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        let reason = match e {
            rustls::Error::InconsistentKeys(_) => "the private key does not match http.tls.certificate".to_owned(),
            other => other.to_string(),
        };
        invalid("http.tls.key", &options.key, reason)
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn client_verifier(
    options: &TlsOptions,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, TlsError> {
    if options.client_cas.is_empty() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    for (i, path) in options.client_cas.iter().enumerate() {
        let key = format!("http.tls.clientcas[{i}]");
        for cert in certificates(&key, path)? {
            roots.add(cert).map_err(|e| invalid(&key, path, format!("not a usable CA certificate: {e}")))?;
        }
    }
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ClientCertVerifier> = match options.client_auth {
        ClientAuth::Request | ClientAuth::RequireAny => Arc::new(UnverifiedClientCert {
            mandatory: options.client_auth == ClientAuth::RequireAny,
            subjects: roots.subjects(),
            algorithms,
        }),
        ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify => {
            let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = match options.client_auth {
                ClientAuth::VerifyIfGiven => builder.allow_unauthenticated(),
                _ => builder,
            };
            builder.build().map_err(|e| TlsError::Other(format!("client certificate verifier: {e}")))?
        }
    };
    Ok(Some(verifier))
}

/// Go's `RequestClientCert` / `RequireAnyClientCert`: the client proves it holds the key of
/// the certificate it sends (the handshake signature is checked), but the certificate
/// itself is not checked against anything.
#[derive(Debug)]
struct UnverifiedClientCert {
    mandatory: bool,
    subjects: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for UnverifiedClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suites(names: &[&str], min: MinVersion) -> Result<Vec<String>, TlsError> {
        let options = TlsOptions {
            cipher_suites: names.iter().map(|s| s.to_string()).collect(),
            min_version: min,
            ..TlsOptions::default()
        };
        let provider = provider_for(&options)?;
        Ok(provider.cipher_suites.iter().filter_map(|s| go_name(s.suite().as_str()?)).collect())
    }

    #[test]
    fn default_suites_are_distributions_default_set() {
        // configuration.md "Default cipher suites": every ECDHE AEAD suite and the three TLS 1.3 ones.
        let mut got = suites(&[], MinVersion::Tls12).unwrap();
        got.sort();
        let mut expected = vec![
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_AES_128_GCM_SHA256",
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS_AES_256_GCM_SHA384",
        ];
        expected.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn go_names_select_rustls_suites() {
        let got = suites(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], MinVersion::Tls12).unwrap();
        assert_eq!(got[0], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert!(!got.iter().any(|s| s.contains("ECDSA")), "{got:?}");
        assert!(got.contains(&"TLS_AES_256_GCM_SHA384".to_owned()), "TLS 1.3 stays on: {got:?}");
        let got = suites(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"], MinVersion::Tls12);
        assert_eq!(got.unwrap(), ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"]);
    }

    #[test]
    fn unsupported_and_unknown_suites_are_named() {
        let e = suites(&["TLS_RSA_WITH_AES_128_CBC_SHA"], MinVersion::Tls12).unwrap_err().to_string();
        assert!(e.starts_with("http.tls.ciphersuites: TLS_RSA_WITH_AES_128_CBC_SHA is not supported"), "{e}");
        assert!(e.contains("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"), "lists what is: {e}");
        let e = suites(&["TLS_NOPE"], MinVersion::Tls12).unwrap_err().to_string();
        assert!(e.contains("unknown TLS cipher suite \"TLS_NOPE\""), "{e}");
        // Ignored with TLS 1.3 only, as in Distribution.
        assert!(suites(&["TLS_RSA_WITH_AES_128_CBC_SHA"], MinVersion::Tls13).is_ok());
    }

    #[test]
    fn missing_files_name_the_key_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let options = TlsOptions {
            certificate: dir.path().join("nope.crt"),
            key: dir.path().join("nope.key"),
            ..TlsOptions::default()
        };
        let e = Tls::load(options).unwrap_err().to_string();
        assert!(e.starts_with("http.tls.certificate: cannot read ") && e.contains("nope.crt"), "{e}");
        std::fs::write(dir.path().join("nope.crt"), "not pem").unwrap();
        let options = TlsOptions {
            certificate: dir.path().join("nope.crt"),
            key: dir.path().join("nope.key"),
            ..TlsOptions::default()
        };
        let e = Tls::load(options).unwrap_err().to_string();
        assert!(e.starts_with("http.tls.certificate: ") && e.contains("no PEM certificate"), "{e}");
    }
}
