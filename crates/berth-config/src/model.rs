//! The typed configuration: only what Berth uses, with Distribution's defaults.
//!
//! Field names are the YAML keys. Everything here can be built in code for tests
//! (`Config::default()` is `registry:2` started with no configuration file).

use crate::auth::Auth;
use crate::duration;
use crate::error::ConfigError;
use crate::values::split_host_port;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Configuration format version; Distribution knows only "0.1".
    pub version: String,
    pub log: Log,
    pub http: Http,
    pub storage: Storage,
    pub validation: Validation,
    pub catalog: Catalog,
    pub auth: Auth,
    pub notifications: crate::notifications::Notifications,
    /// Berth's own settings.
    pub berth: Berth,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: "0.1".into(),
            log: Log::default(),
            http: Http::default(),
            storage: Storage::default(),
            validation: Validation::default(),
            catalog: Catalog::default(),
            auth: Auth::default(),
            notifications: Default::default(),
            berth: Berth::default(),
        }
    }
}

impl Config {
    /// The metadata database file: `berth.database.path`, else
    /// `<storage.filesystem.rootdirectory>/berth/metadata.sqlite`.
    pub fn database_path(&self) -> PathBuf {
        self.berth
            .database
            .path
            .clone()
            .unwrap_or_else(|| self.storage.filesystem.rootdirectory.join("berth").join("metadata.sqlite"))
    }
}

/// Log level (`log.level`, or the deprecated top-level `loglevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
}

/// Log line format (`log.formatter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormatter {
    #[default]
    Text,
    Json,
    Logstash,
}

/// `log`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    pub level: LogLevel,
    pub formatter: LogFormatter,
    /// Static fields added to every log line.
    pub fields: BTreeMap<String, String>,
    pub accesslog: AccessLog,
}

/// `log.accesslog`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessLog {
    /// Turns the per-request access log off.
    pub disabled: bool,
}

/// `http.net`: only TCP for now (a unix socket is refused at load time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Net {
    #[default]
    Tcp,
}

/// A value that must not be printed: `Debug` shows `********`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the code that signs with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

/// `http`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    /// Listen address, `HOST:PORT` or `:PORT` (all interfaces). See [`Http::socket_addr`].
    pub addr: String,
    pub net: Net,
    /// Path prefix before `/v2/`, with leading and trailing slash (`/my/nested/registry/`).
    pub prefix: String,
    /// Absolute external URL used to build `Location` headers; otherwise taken from requests.
    pub host: Option<String>,
    /// Return relative URLs in `Location` headers.
    pub relativeurls: bool,
    /// Key that signs upload state kept by clients. Generated at start when absent; must be
    /// the same on every replica behind a load balancer.
    pub secret: Option<Secret>,
    /// Extra response headers: name to list of values.
    pub headers: BTreeMap<String, Vec<String>>,
    /// How long to let connections drain on SIGTERM; zero means stop at once.
    #[serde(with = "duration::go")]
    pub draintimeout: Duration,
    /// `http.tls`: HTTPS when a certificate is given.
    pub tls: Tls,
    /// `http.debug`: a second, plain-HTTP listener for health and metrics.
    pub debug: DebugServer,
}

/// `http.debug`. As in Distribution: no listener unless `addr` is set, and
/// the Prometheus text only when `prometheus.enabled`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugServer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    pub prometheus: Prometheus,
}

impl DebugServer {
    /// The address to bind, `None` when the debug listener is off.
    pub fn socket_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        match self.addr.as_deref() {
            None | Some("") => Ok(None),
            Some(addr) => resolve_addr(addr).map(Some),
        }
    }
}

/// `http.debug.prometheus`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prometheus {
    pub enabled: bool,
    /// Defaults to `/metrics`, as in Distribution.
    pub path: String,
}

impl Default for Prometheus {
    fn default() -> Self {
        Prometheus { enabled: false, path: "/metrics".into() }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http {
            addr: ":5000".into(),
            net: Net::Tcp,
            prefix: String::new(),
            host: None,
            relativeurls: false,
            secret: None,
            headers: BTreeMap::new(),
            draintimeout: Duration::ZERO,
            tls: Tls::default(),
            debug: DebugServer::default(),
        }
    }
}

/// `http.tls`. As in Distribution, TLS is on when `certificate` is set; unlike Distribution,
/// a `key` or `clientcas` without a certificate is a start-up error, not plain HTTP.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain, leaf first. Re-read when the file changes.
    pub certificate: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of the certificate.
    pub key: Option<PathBuf>,
    /// PEM files of CAs whose client certificates are accepted: mutual TLS.
    pub clientcas: Vec<PathBuf>,
    /// What is asked of clients when `clientcas` is set.
    pub clientauth: ClientAuth,
    /// Oldest protocol version accepted.
    pub minimumtls: MinimumTls,
    /// Go (IANA) names of the allowed cipher suites; empty means Distribution's default set.
    pub ciphersuites: Vec<String>,
}

/// `http.tls.clientauth` (Distribution 3.x), Go's `tls.ClientAuthType` by another name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    /// Ask for a certificate, accept any or none, verify nothing.
    RequestClientCert,
    /// Require a certificate, verify nothing.
    RequireAnyClientCert,
    /// Accept no certificate; verify one if sent.
    VerifyClientCertIfGiven,
    /// Require a certificate signed by one of `clientcas` (the default).
    #[default]
    RequireAndVerifyClientCert,
}

/// `http.tls.minimumtls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MinimumTls {
    #[default]
    #[serde(rename = "tls1.2")]
    Tls12,
    #[serde(rename = "tls1.3")]
    Tls13,
}

impl Http {
    /// The socket to bind. Like Go's `net.Listen`, `:5000` means every interface (here
    /// IPv4 `0.0.0.0:5000`); a host name is resolved and its first address used.
    pub fn socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        resolve_addr(&self.addr)
    }
}

/// `HOST:PORT` or `:PORT` (all interfaces) as a socket address.
fn resolve_addr(addr: &str) -> Result<SocketAddr, ConfigError> {
    let err = |reason: String| ConfigError::Addr { addr: addr.to_owned(), reason };
    let (host, port) = split_host_port(addr).map_err(err)?;
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| err(format!("cannot resolve {host:?}: {e}")))?
        .next()
        .ok_or_else(|| err(format!("{host:?} resolves to no address")))
}

/// `storage`: the filesystem driver and the driver-independent settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    pub filesystem: Filesystem,
    /// `storage.s3`: when present, blobs live in S3-compatible object storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3>,
    pub delete: Delete,
    pub redirect: Redirect,
    pub maintenance: Maintenance,
}

/// `storage.filesystem`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filesystem {
    /// Default `/var/lib/registry`, as Distribution's filesystem driver.
    pub rootdirectory: PathBuf,
}

impl Default for Filesystem {
    fn default() -> Self {
        Filesystem { rootdirectory: PathBuf::from("/var/lib/registry") }
    }
}

/// `storage.delete`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Delete {
    /// Allow deleting manifests and blobs by digest. Default false.
    pub enabled: bool,
}

/// `storage.redirect`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Redirect {
    /// Serve blob content through Berth instead of redirecting to the backend.
    pub disable: bool,
}

/// `storage.maintenance`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Maintenance {
    pub uploadpurging: UploadPurging,
    pub readonly: ReadOnly,
}

/// `storage.maintenance.uploadpurging`: removal of abandoned uploads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadPurging {
    /// Default true.
    pub enabled: bool,
    /// Uploads older than this are removed. Default 168h.
    #[serde(with = "duration::go")]
    pub age: Duration,
    /// Time between purges. Default 24h.
    #[serde(with = "duration::go")]
    pub interval: Duration,
    /// Only report what would be removed. Default false.
    pub dryrun: bool,
}

impl Default for UploadPurging {
    fn default() -> Self {
        UploadPurging {
            enabled: true,
            age: Duration::from_secs(168 * 3600),
            interval: Duration::from_secs(24 * 3600),
            dryrun: false,
        }
    }
}

/// `storage.maintenance.readonly`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadOnly {
    /// Refuse all writes (e.g. while garbage collection runs). Default false.
    pub enabled: bool,
}

/// `validation`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Validation {
    /// Deprecated by Distribution in favour of `disabled`.
    pub enabled: bool,
    /// Turns the checks below off.
    pub disabled: bool,
    pub manifests: ManifestValidation,
}

impl Validation {
    /// Whether validation is on: Distribution turns it on when `enabled` is set or
    /// `disabled` is not.
    pub fn is_active(&self) -> bool {
        self.enabled || !self.disabled
    }
}

/// `validation.manifests`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManifestValidation {
    pub urls: UrlValidation,
    pub indexes: IndexValidation,
}

/// `validation.manifests.urls`: regular expressions for foreign-layer URLs. With validation
/// active and `allow` empty, manifests with URLs are refused.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UrlValidation {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// `validation.manifests.indexes`: which platform manifests of an index must exist first.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IndexValidation {
    pub platforms: Platforms,
    /// With `platforms: list`, the platforms whose images must exist.
    pub platformlist: Vec<Platform>,
}

/// `validation.manifests.indexes.platforms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platforms {
    /// Every referenced manifest must exist (Distribution's default).
    #[default]
    All,
    /// Accept "sparse" indexes: no referenced manifest needs to exist.
    None,
    /// Only the manifests for `platformlist` must exist.
    List,
}

/// One entry of `platformlist`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
}

/// `catalog`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Catalog {
    /// Most repositories one `/v2/_catalog` page returns. Default 1000.
    pub maxentries: usize,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog { maxentries: 1000 }
    }
}

/// `berth`: settings Distribution does not have.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Berth {
    pub database: Database,
    pub manifests: Manifests,
    pub tags: Tags,
    pub cache: Cache,
    pub gc: Gc,
    pub auth: crate::auth::BerthAuth,
    pub audit: crate::audit::Audit,
    pub projects: crate::auth::Projects,
    pub ratelimit: crate::ratelimit::RateLimit,
    pub metrics: crate::metrics::Metrics,
    pub webhooks: crate::notifications::Webhooks,
    pub limits: crate::limits::Limits,
}

/// `berth.gc`: online garbage collection in the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gc {
    /// Cron expression (5 fields, UTC, or `@daily` …); no scheduled runs if unset.
    pub schedule: Option<String>,
    /// Unreferenced data younger than this is left alone.
    #[serde(with = "duration::go")]
    pub grace: Duration,
    /// Regex of repositories whose untagged manifests are collected.
    pub untagged: Option<String>,
}

impl Default for Gc {
    fn default() -> Self {
        Gc { schedule: None, grace: Duration::from_secs(3600), untagged: None }
    }
}

/// `berth.database`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Database {
    /// SQLite file; default see [`Config::database_path`].
    pub path: Option<PathBuf>,
    /// PostgreSQL URL (`postgres://user:password@host:port/db`): several
    /// Berth nodes then share one metadata database. Overrides `path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Secret>,
    /// Most connections one node opens to PostgreSQL.
    pub poolsize: Option<usize>,
}

/// `berth.manifests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Manifests {
    /// Largest manifest accepted, in bytes. Default 4 MiB.
    pub maxbytes: u64,
}

impl Default for Manifests {
    fn default() -> Self {
        Manifests { maxbytes: 4 * 1024 * 1024 }
    }
}

/// `berth.tags`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tags {
    /// Most tags one tag-list page returns; larger `n` is clamped. Default 1000.
    pub maxentries: usize,
}

impl Default for Tags {
    fn default() -> Self {
        Tags { maxentries: 1000 }
    }
}

/// `berth.cache`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cache {
    /// Memory for cached manifests, in bytes. Default 64 MiB.
    pub manifestbytes: u64,
}

impl Default for Cache {
    fn default() -> Self {
        Cache { manifestbytes: 64 * 1024 * 1024 }
    }
}

/// `storage.s3`: Distribution's S3 driver keys that Berth uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3 {
    pub accesskey: Option<Secret>,
    pub secretkey: Option<Secret>,
    pub region: String,
    pub regionendpoint: Option<String>,
    pub bucket: String,
    pub rootdirectory: String,
    pub forcepathstyle: bool,
    /// Multipart part size in bytes (Distribution's default: 10 MiB).
    pub chunksize: u64,
    pub secure: bool,
    pub skipverify: bool,
}

impl Default for S3 {
    fn default() -> Self {
        S3 {
            accesskey: None,
            secretkey: None,
            region: String::new(),
            regionendpoint: None,
            bucket: String::new(),
            rootdirectory: String::new(),
            forcepathstyle: false,
            chunksize: 10 << 20,
            secure: true,
            skipverify: false,
        }
    }
}
