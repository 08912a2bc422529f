//! Expired upload sessions, removed with their staged bytes: periodically
//! (`storage.maintenance.uploadpurging`, as Distribution does) and as the
//! last phase of every garbage collection. Found through the metadata
//! store, never by walking storage.

use berth_blob::BlobStore;
use berth_meta::{MetaError, MetaStore, UploadSession};
use std::sync::Arc;
use std::time::Duration;

/// Removes up to `limit` sessions untouched since `cutoff_ms`; returns them.
/// The session goes first: a client still using it then gets "unknown
/// upload", never missing bytes.
pub async fn remove_stale(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    cutoff_ms: i64,
    limit: usize,
) -> Result<Vec<UploadSession>, MetaError> {
    let stale = meta.stale_uploads(cutoff_ms, limit).await?;
    for s in &stale {
        meta.delete_upload(&s.id).await?;
        if let Err(e) = blobs.delete_upload(&s.id).await {
            tracing::warn!(upload = %s.id, error = %e, "could not remove staged upload data");
        }
    }
    Ok(stale)
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
        let n = remove_stale(meta, blobs, cutoff, BATCH).await?.len();
        total += n;
        if n < BATCH {
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
}
