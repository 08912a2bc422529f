//! What the HTTP layer needs to know, built by the binary from the
//! configuration (so this crate does not depend on the config format).

use berth_oci::Platform;
use http::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

/// Which children of an index must be present when the index is pushed
/// (Distribution's `validation.manifests.indexes.platforms`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IndexPolicy {
    /// Every child must be present.
    #[default]
    All,
    /// None need be: sparse indexes for partial multi-arch mirrors.
    None,
    /// Only children for these platforms must be present.
    List(Vec<Platform>),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub delete_enabled: bool,
    pub read_only: bool,
    /// Path the API is mounted under (`http.prefix`), without the trailing
    /// slash: `""` or e.g. `"/registry"`.
    pub prefix: String,
    /// Absolute base URL (`http.host`) for `Location` headers.
    pub host: Option<String>,
    /// Never build absolute URLs, even behind a proxy (`http.relativeurls`).
    pub relative_urls: bool,
    /// Extra headers on every response (`http.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub catalog_max_entries: usize,
    pub tags_max_entries: usize,
    pub manifest_max_bytes: usize,
    pub index_policy: IndexPolicy,
    pub layer_urls: LayerUrlPolicy,
    pub manifest_cache_bytes: u64,
    /// One log line per request (`log.accesslog.disabled` turns it off).
    pub access_log: bool,
    /// `berth.ratelimit`: token buckets per address and per account.
    pub rate_limits: crate::ratelimit::RateLimits,
    /// Served over HTTPS (`http.tls.certificate`): event URLs say `https`.
    pub tls: bool,
    /// Upload requests in progress at once (`berth.limits.maxuploads`; 0: no limit).
    pub max_uploads: usize,
    /// An upload body silent this long is cut off (`berth.limits.uploadidletimeout`; zero: never).
    pub upload_idle: std::time::Duration,
    /// `berth.metrics.token`: `/metrics` on the main listener for requests bearing it.
    pub metrics_token: Option<MetricsToken>,
}

/// A bearer token, kept only as its SHA-256: compared in constant time and
/// never printed.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    pub fn new(token: &str) -> Self {
        MetricsToken(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token. Digests of equal length are
    /// compared without an early exit, so timing tells nothing of a prefix.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let diff = digest.iter().zip(&self.0).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(********)")
    }
}

/// Which external URLs a layer may name (`validation.manifests.urls`).
/// `None` for a list not configured; Distribution joins each list with `|`.
#[derive(Debug, Clone, Default)]
pub struct LayerUrlPolicy {
    /// With validation disabled, any URL passes.
    pub enabled: bool,
    pub allow: Option<regex::Regex>,
    pub deny: Option<regex::Regex>,
}

impl LayerUrlPolicy {
    /// Distribution's rule: http(s), no fragment, matching `allow` when set,
    /// not matching `deny` when set.
    pub fn permits(&self, url: &str) -> bool {
        if !self.enabled {
            return true;
        }
        let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
        let well_formed = (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
            && !rest.is_empty()
            && !url.contains('#');
        well_formed
            && self.allow.as_ref().is_none_or(|re| re.is_match(url))
            && !self.deny.as_ref().is_some_and(|re| re.is_match(url))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            delete_enabled: false,
            read_only: false,
            prefix: String::new(),
            host: None,
            relative_urls: false,
            headers: Vec::new(),
            catalog_max_entries: 1000,
            tags_max_entries: 1000,
            manifest_max_bytes: 4 << 20,
            index_policy: IndexPolicy::All,
            layer_urls: LayerUrlPolicy { enabled: true, allow: None, deny: None },
            manifest_cache_bytes: 64 << 20,
            access_log: true,
            rate_limits: Default::default(),
            tls: false,
            max_uploads: 0,
            upload_idle: std::time::Duration::from_secs(120),
            metrics_token: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_url_policy_follows_distribution() {
        let open = LayerUrlPolicy { enabled: true, allow: None, deny: None };
        assert!(open.permits("https://example.com/layer.tar.gz"));
        assert!(!open.permits("ftp://example.com/layer"));
        assert!(!open.permits("https://example.com/layer#frag"));
        assert!(!open.permits("not a url"));
        let listed = LayerUrlPolicy {
            enabled: true,
            allow: Some(regex::Regex::new("^https://mirror\\.example\\.com/").unwrap()),
            deny: Some(regex::Regex::new("secret").unwrap()),
        };
        assert!(listed.permits("https://mirror.example.com/x"));
        assert!(!listed.permits("https://other.example.com/x"));
        assert!(!listed.permits("https://mirror.example.com/secret"));
        let disabled = LayerUrlPolicy { enabled: false, ..listed };
        assert!(disabled.permits("ftp://anything#x"));
    }

    #[test]
    fn metrics_token_matches_only_itself_and_is_never_printed() {
        let t = MetricsToken::new("s3cr3t");
        assert!(t.matches("s3cr3t"));
        assert!(!t.matches("s3cr3") && !t.matches("s3cr3t ") && !t.matches(""));
        assert!(!format!("{t:?}").contains("s3cr3t"));
    }
}
