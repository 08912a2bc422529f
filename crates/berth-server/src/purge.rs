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
