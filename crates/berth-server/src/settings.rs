//! What the HTTP layer needs to know, built by the binary from the
//! configuration (so this crate does not depend on the config format).

use berth_oci::Platform;
use http::{HeaderName, HeaderValue};

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
    pub manifest_cache_bytes: u64,
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
            manifest_cache_bytes: 64 << 20,
        }
    }
}
