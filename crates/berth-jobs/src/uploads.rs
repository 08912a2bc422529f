//! Expired upload sessions, removed with their staged bytes: periodically
//! (`storage.maintenance.uploadpurging`, as Distribution does) and as the
//! last phase of every garbage collection. Found through the metadata
//! store, never by walking storage.

use berth_blob::BlobStore;
use berth_meta::{MetaError, MetaStore, UploadSession};
use std::sync::Arc;
use std::time::Duration;

/// What one [`remove_stale`] pass removed.
#[derive(Debug, Default)]
pub struct Purged {
    /// Expired sessions, removed with their staged data.
    pub sessions: Vec<UploadSession>,
    /// Staged data no session names, older than the cutoff (a crash between
    /// staging an upload and recording its session).
    pub orphans: Vec<String>,
}

impl Purged {
    pub fn len(&self) -> usize {
        self.sessions.len() + self.orphans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a further pass could find more (either list was full).
    pub fn maybe_more(&self, limit: usize) -> bool {
        self.sessions.len() >= limit || self.orphans.len() >= limit
    }
}

/// Removes up to `limit` sessions untouched since `cutoff_ms`, then up to
/// `limit` staged uploads older than the cutoff that no session names.
/// The session goes first: a client still using it then gets "unknown
/// upload", never missing bytes. An upload being started right now has
/// fresh staging (its session follows within a request), so it is never
/// taken for an orphan while the cutoff is older than a request.
pub async fn remove_stale(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    cutoff_ms: i64,
    limit: usize,
) -> Result<Purged, MetaError> {
    let sessions = meta.stale_uploads(cutoff_ms, limit).await?;
    for s in &sessions {
        meta.delete_upload(&s.id).await?;
        if let Err(e) = blobs.delete_upload(&s.id).await {
            tracing::warn!(upload = %s.id, error = %e, "could not remove staged upload data");
        }
    }
    let staged = match blobs.staged_uploads(cutoff_ms, limit).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "could not list staged uploads");
            Vec::new()
        }
    };
    let mut orphans = Vec::new();
    for id in staged {
        if meta.get_upload(&id).await?.is_some() {
            continue; // a live session (or an expired one the next pass takes)
        }
        match blobs.delete_upload(&id).await {
            Ok(()) => {
                tracing::debug!(upload = %id, "removed staged upload data without a session");
                orphans.push(id);
            }
            Err(e) => tracing::warn!(upload = %id, error = %e, "could not remove orphan staged upload data"),
        }
    }
    Ok(Purged { sessions, orphans })
}

#[derive(Debug, Clone)]
pub struct PurgePolicy {
    pub age: Duration,
    pub interval: Duration,
    pub dry_run: bool,
}

/// One pass: removes (or, dry, lists) sessions older than `age` at `now_ms`.
/// Returns how many were found.
pub async fn purge_once(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    policy: &PurgePolicy,
    now_ms: i64,
) -> Result<usize, MetaError> {
    const BATCH: usize = 500;
    let cutoff = now_ms - policy.age.as_millis() as i64;
    if policy.dry_run {
        let stale = meta.stale_uploads(cutoff, usize::MAX >> 1).await?;
        for s in &stale {
            tracing::info!(upload = %s.id, repository = %s.repository, "would purge stale upload (dry run)");
        }
        return Ok(stale.len());
    }
    let mut total = 0;
    loop {
        let purged = remove_stale(meta, blobs, cutoff, BATCH).await?;
        total += purged.len();
        if !purged.maybe_more(BATCH) {
            return Ok(total);
        }
    }
}

/// Runs [`purge_once`] every `interval` until the task is dropped.
pub fn spawn_purge(
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    policy: PurgePolicy,
    clock: Arc<dyn crate::Clock>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(policy.interval.max(Duration::from_secs(1)));
        loop {
            tick.tick().await;
            match purge_once(&*meta, &*blobs, &policy, clock.now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(count = n, dry_run = policy.dry_run, "purged stale uploads"),
                Err(e) => tracing::warn!(error = %e, "upload purge failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_blob::FsBlobStore;
    use berth_meta::sqlite::SqliteStore;

    const HOUR_MS: i64 = 3600 * 1000;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn purges_only_sessions_older_than_age() {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteStore::open(&dir.path().join("m.sqlite")).unwrap();
        let blobs = FsBlobStore::open(dir.path()).unwrap();
        let now = 1_000 * HOUR_MS; // an injected clock, not the wall clock
        for (id, updated) in [("old", now - 200 * HOUR_MS), ("fresh", now - HOUR_MS)] {
            blobs.create_upload(id).await.unwrap();
            let s = UploadSession {
                id: id.into(),
                repository: "r".into(),
                offset: 0,
                hash_state: vec![],
                created_ms: updated,
                updated_ms: updated,
                store_state: Vec::new(),
            };
            meta.create_upload(&s).await.unwrap();
        }
        let policy =
            PurgePolicy { age: Duration::from_secs(168 * 3600), interval: Duration::from_secs(1), dry_run: true };
        assert_eq!(purge_once(&meta, &blobs, &policy, now).await.unwrap(), 1);
        assert!(meta.get_upload("old").await.unwrap().is_some(), "a dry run removes nothing");
        let policy = PurgePolicy { dry_run: false, ..policy };
        assert_eq!(purge_once(&meta, &blobs, &policy, now).await.unwrap(), 1);
        assert!(meta.get_upload("old").await.unwrap().is_none());
        assert!(!dir.path().join("berth/uploads/old").exists(), "staged bytes go too");
        assert!(meta.get_upload("fresh").await.unwrap().is_some());
        assert!(dir.path().join("berth/uploads/fresh").exists());
    }

    /// Staging left without a session (a crash between creating it and
    /// recording the session) goes once older than the age; young orphans
    /// (an upload being started) and staging of live sessions stay.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn purges_orphan_staging_older_than_age() {
        let dir = tempfile::tempdir().unwrap();
        let meta = SqliteStore::open(&dir.path().join("m.sqlite")).unwrap();
        let blobs = FsBlobStore::open(dir.path()).unwrap();
        for id in ["orphan-old", "orphan-young", "live"] {
            blobs.create_upload(id).await.unwrap();
        }
        let wall = std::time::SystemTime::now();
        let wall_ms = wall.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        // Written 200 hours ago (by the files' clock) …
        let old = wall - Duration::from_secs(200 * 3600);
        for id in ["orphan-old", "live"] {
            let f = std::fs::File::options().write(true).open(dir.path().join("berth/uploads").join(id)).unwrap();
            f.set_modified(old).unwrap();
        }
        let s = UploadSession {
            id: "live".into(),
            repository: "r".into(),
            offset: 0,
            hash_state: vec![],
            created_ms: wall_ms,
            updated_ms: wall_ms, // … but its session was touched just now
            store_state: Vec::new(),
        };
        meta.create_upload(&s).await.unwrap();
        // The purge's clock says "now"; the age is a week.
        let policy =
            PurgePolicy { age: Duration::from_secs(168 * 3600), interval: Duration::from_secs(1), dry_run: false };
        assert_eq!(purge_once(&meta, &blobs, &policy, wall_ms).await.unwrap(), 1);
        let uploads = dir.path().join("berth/uploads");
        assert!(!uploads.join("orphan-old").exists(), "an old orphan goes");
        assert!(uploads.join("orphan-young").exists(), "a young one may be an upload starting now");
        assert!(uploads.join("live").exists(), "a session names it");
        // A week later by the injected clock the young orphan is old too.
        let week_later = wall_ms + 169 * 3600 * 1000;
        let purged = remove_stale(&meta, &blobs, week_later - 168 * 3600 * 1000, 100).await.unwrap();
        assert_eq!(purged.orphans, vec!["orphan-young".to_owned()]);
        assert_eq!(purged.sessions.len(), 1, "the live session expired meanwhile");
        assert!(!uploads.join("live").exists());
    }
}
