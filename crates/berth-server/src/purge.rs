//! Upload purging (`storage.maintenance.uploadpurging`): sessions untouched
//! for longer than `age` are removed, with their staged bytes, every
//! `interval`. Found through the metadata store, not by walking storage.

use crate::state::App;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PurgePolicy {
    pub age: Duration,
    pub interval: Duration,
    pub dry_run: bool,
}

/// One pass: removes (or, dry, lists) sessions older than `age` at `now_ms`.
/// Returns how many were found.
pub async fn purge_once(app: &App, policy: &PurgePolicy, now_ms: i64) -> Result<usize, berth_meta::MetaError> {
    const BATCH: usize = 500;
    let cutoff = now_ms - policy.age.as_millis() as i64;
    let mut total = 0;
    loop {
        let stale = app.meta.stale_uploads(cutoff, BATCH).await?;
        let n = stale.len();
        for s in stale {
            if policy.dry_run {
                tracing::info!(upload = %s.id, repository = %s.repository, "would purge stale upload (dry run)");
                continue;
            }
            app.meta.delete_upload(&s.id).await?;
            if let Err(e) = app.blobs.delete_upload(&s.id).await {
                tracing::warn!(upload = %s.id, error = %e, "could not remove staged upload data");
            }
        }
        total += n;
        if policy.dry_run || n < BATCH {
            return Ok(total);
        }
    }
}

/// Runs [`purge_once`] every `interval` until the task is dropped.
pub fn spawn(app: Arc<App>, policy: PurgePolicy) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(policy.interval.max(Duration::from_secs(1)));
        loop {
            tick.tick().await;
            match purge_once(&app, &policy, crate::state::now_ms()).await {
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
    use crate::{Authenticator, Settings};
    use berth_blob::{BlobStore, FsBlobStore};
    use berth_meta::{sqlite::SqliteStore, MetaStore, UploadSession};

    const HOUR_MS: i64 = 3600 * 1000;

    async fn app_with_uploads(dir: &std::path::Path, ages_ms: &[(&str, i64)]) -> Arc<App> {
        let meta = SqliteStore::open(&dir.join("m.sqlite")).unwrap();
        let blobs = FsBlobStore::open(dir).unwrap();
        for (id, updated) in ages_ms {
            blobs.create_upload(id).await.unwrap();
            let s = UploadSession {
                id: id.to_string(),
                repository: "r".into(),
                offset: 0,
                hash_state: vec![],
                created_ms: *updated,
                updated_ms: *updated,
                store_state: Vec::new(),
            };
            meta.create_upload(&s).await.unwrap();
        }
        App::new(Settings::default(), Arc::new(meta), Arc::new(blobs), Authenticator::Anonymous, None)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn purges_only_sessions_older_than_age() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_000 * HOUR_MS; // an injected clock, not the wall clock
        let app = app_with_uploads(dir.path(), &[("old", now - 200 * HOUR_MS), ("fresh", now - HOUR_MS)]).await;
        let policy =
            PurgePolicy { age: Duration::from_secs(168 * 3600), interval: Duration::from_secs(1), dry_run: true };
        assert_eq!(purge_once(&app, &policy, now).await.unwrap(), 1);
        assert!(app.meta.get_upload("old").await.unwrap().is_some(), "a dry run removes nothing");
        let policy = PurgePolicy { dry_run: false, ..policy };
        assert_eq!(purge_once(&app, &policy, now).await.unwrap(), 1);
        assert!(app.meta.get_upload("old").await.unwrap().is_none());
        assert!(!dir.path().join("berth/uploads/old").exists(), "staged bytes go too");
        assert!(app.meta.get_upload("fresh").await.unwrap().is_some());
        assert!(dir.path().join("berth/uploads/fresh").exists());
    }
}
