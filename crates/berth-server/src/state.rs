//! The state every handler shares.

use crate::audit::AuditSink;
use crate::auth::Authenticator;
use crate::cache::ManifestCache;
use crate::immutability::RulesCache;
use crate::settings::Settings;
use berth_blob::BlobStore;
use berth_meta::MetaStore;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct App {
    pub settings: Settings,
    pub meta: Arc<dyn MetaStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: ManifestCache,
    pub auth: Authenticator,
    /// With several nodes: tells the others what a write changed, and says
    /// whether this node's cache may be trusted right now.
    pub peers: Option<Arc<berth_meta::postgres::InvalidationBus>>,
    /// The audit log's queue ([`AuditSink::disabled`] when auditing is off).
    pub audit: AuditSink,
    /// Each project's tag immutability rules, for a few seconds.
    pub immutable_rules: RulesCache,
    /// Manifest pulls waiting to be written (`berth serve` starts the
    /// writer: `pull_stats::spawn_flusher`).
    pub pull_stats: Arc<crate::pull_stats::PullStats>,
    /// Read-only maintenance mode (configured, or switched at run time).
    pub read_only: crate::read_only::ReadOnly,
    /// Rate limits per client address and per account (`None` when off).
    pub limiters: crate::ratelimit::Limiters,
    /// Prometheus metrics (`metrics.rs`), served on the debug listener.
    pub metrics: crate::metrics::Metrics,
    /// Who hears of pushes, pulls and deletes (`events.rs`).
    pub events: crate::events::Events,
    /// Upload sessions with a request in progress on this node: a second
    /// concurrent request on the same session is refused, not interleaved.
    busy_uploads: Mutex<HashSet<String>>,
}

impl App {
    pub fn new(
        settings: Settings,
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        auth: Authenticator,
        peers: Option<Arc<berth_meta::postgres::InvalidationBus>>,
        audit: AuditSink,
        events: crate::events::Events,
    ) -> Arc<Self> {
        let cache = ManifestCache::new(settings.manifest_cache_bytes);
        // Logins happen in the token service and in Basic authentication.
        if let Authenticator::Token(t) = &auth {
            if let Some(builtin) = &t.builtin {
                builtin.users.set_audit(audit.clone());
            }
        }
        let busy_uploads = Mutex::new(HashSet::new());
        let immutable_rules = RulesCache::new();
        let pull_stats = Arc::default();
        let read_only = crate::read_only::ReadOnly::new(settings.read_only);
        let limiters = crate::ratelimit::Limiters::new(&settings.rate_limits);
        // Every storage call is timed (`registry_storage_action_seconds`).
        let storage = Arc::new(crate::timed_store::StorageMetrics::new(blobs.driver_name()));
        let blobs: Arc<dyn BlobStore> = Arc::new(crate::timed_store::TimedBlobStore::new(blobs, storage.clone()));
        let metrics = crate::metrics::Metrics::new(&audit, storage);
        Arc::new(App {
            settings,
            meta,
            blobs,
            cache,
            auth,
            peers,
            audit,
            immutable_rules,
            pull_stats,
            read_only,
            limiters,
            metrics,
            events,
            busy_uploads,
        })
    }

    /// Claims an upload session for one request; `None` if another holds it.
    pub fn claim_upload(&self, id: &str) -> Option<UploadClaim<'_>> {
        let mut busy = self.busy_uploads.lock().ok()?;
        let claimed = busy.insert(id.to_owned());
        drop(busy);
        claimed.then(|| {
            self.metrics.berth.uploads_in_flight.inc();
            UploadClaim { app: self, id: id.to_owned() }
        })
    }
}

pub struct UploadClaim<'a> {
    app: &'a App,
    id: String,
}

impl Drop for UploadClaim<'_> {
    fn drop(&mut self) {
        self.app.metrics.berth.uploads_in_flight.dec();
        if let Ok(mut busy) = self.app.busy_uploads.lock() {
            busy.remove(&self.id);
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
