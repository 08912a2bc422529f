//! The state every handler shares.

use crate::audit::AuditSink;
use crate::auth::Authenticator;
use crate::cache::ManifestCache;
use crate::immutability::RulesCache;
use crate::settings::Settings;
use berth_blob::BlobStore;
use berth_meta::MetaStore;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    /// Upload requests in progress (claims and single-request uploads).
    uploads_active: AtomicUsize,
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
        let metrics = crate::metrics::Metrics::new(&audit, storage, &events);
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
            uploads_active: AtomicUsize::new(0),
        })
    }

    /// Claims an upload session for one request.
    pub fn claim_upload(&self, id: &str) -> Result<UploadClaim<'_>, ClaimRefused> {
        let slot = self.upload_slot().ok_or(ClaimRefused::Full)?;
        let mut busy = self.busy_uploads.lock().map_err(|_| ClaimRefused::Busy)?;
        let claimed = busy.insert(id.to_owned());
        drop(busy);
        if claimed {
            Ok(UploadClaim { app: self, id: id.to_owned(), _slot: slot })
        } else {
            Err(ClaimRefused::Busy)
        }
    }

    /// One of the node's `berth.limits.maxuploads` upload requests; `None` when all are taken.
    pub fn upload_slot(&self) -> Option<UploadSlot<'_>> {
        let before = self.uploads_active.fetch_add(1, Ordering::Relaxed);
        let max = self.settings.max_uploads;
        if max > 0 && before >= max {
            self.uploads_active.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        self.metrics.berth.uploads_in_flight.inc();
        Some(UploadSlot { app: self })
    }
}

/// Why an upload request could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimRefused {
    /// Another request on the same session is in progress.
    Busy,
    /// The node serves `berth.limits.maxuploads` upload requests already.
    Full,
}

pub struct UploadSlot<'a> {
    app: &'a App,
}

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        self.app.uploads_active.fetch_sub(1, Ordering::Relaxed);
        self.app.metrics.berth.uploads_in_flight.dec();
    }
}

pub struct UploadClaim<'a> {
    app: &'a App,
    id: String,
    _slot: UploadSlot<'a>,
}

impl Drop for UploadClaim<'_> {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.app.busy_uploads.lock() {
            busy.remove(&self.id);
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
