//! Keeps this node's manifest cache true when several nodes share the
//! metadata: applies the invalidations other nodes publish, and publishes
//! this node's (see `berth_meta::postgres::invalidation` for the protocol).
//! A change is encoded as `repo \t digest-or-empty \t tag \t tag…`; neither
//! names nor tags nor digests contain tabs.
//!
//! With SQLite there are no peers, but `berth gc` may run as a separate
//! process on the same database and remove untagged manifests this server
//! has cached. It announces that through a value in the database
//! ([`WATCH_JOB`]'s job state, changed by [`announce_outside_write`]); each
//! server polls it every [`WATCH_POLL`] ([`spawn_gc_watch`]), flushes its
//! cache when it changed, and serves hits only while its last poll (timed
//! from before it was sent) is younger than [`WATCH_VALID`]. The announcer
//! returns only [`WATCH_VALID`] after its change committed, so by then every
//! server has flushed or stopped serving hits. Cost: one indexed read per
//! server per 250 ms, nothing per request but a clock read.

use crate::error::{ApiError, ApiResult};
use crate::state::App;
use berth_meta::postgres::{Invalidation, InvalidationBus};
use berth_oci::{Digest, RepoName, Tag};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The job whose saved state announces outside removals (SQLite).
pub const WATCH_JOB: &str = "manifest-cache";
pub const WATCH_POLL: Duration = Duration::from_millis(250);
pub const WATCH_VALID: Duration = Duration::from_millis(1000);

/// Applies invalidations from other nodes until the bus closes.
pub fn spawn(app: Arc<App>, bus: Arc<InvalidationBus>, mut events: mpsc::Receiver<Invalidation>) {
    tokio::spawn(async move {
        while let Some(inv) = events.recv().await {
            apply(&app, &inv);
            bus.ack(inv.generation).await;
        }
    });
}

fn apply(app: &App, inv: &Invalidation) {
    if inv.flush_all() {
        app.cache.clear();
        return;
    }
    let mut parts = inv.payload.split('\t');
    let (Some(repo), Some(digest)) = (parts.next(), parts.next()) else {
        app.cache.clear();
        return;
    };
    let Ok(repo) = RepoName::parse(repo) else {
        app.cache.clear();
        return;
    };
    let digest = digest.parse::<Digest>().ok();
    let tags: Vec<Tag> = parts.filter_map(Tag::parse).collect();
    app.cache.invalidate(&repo, &tags, digest.as_ref());
}

/// The encoding of one change (see the module doc).
pub fn payload(repo: &str, tags: &[Tag], digest: Option<&Digest>) -> String {
    let mut payload = format!("{repo}\t{}", digest.map(Digest::as_str).unwrap_or(""));
    for t in tags {
        payload.push('\t');
        payload.push_str(t.as_str());
    }
    payload
}

/// Forgets a change locally and, with peers, makes every live node forget it
/// before the write is acknowledged to the client.
pub async fn invalidate(app: &App, repo: &RepoName, tags: &[Tag], digest: Option<&Digest>) -> ApiResult<()> {
    app.cache.invalidate(repo, tags, digest);
    let Some(bus) = &app.peers else { return Ok(()) };
    let payload = payload(repo.as_str(), tags, digest);
    bus.publish(&payload).await.map_err(|e| ApiError::internal("publishing a cache invalidation", e))
}

/// Forgets everything locally and, with peers, on every live node.
pub async fn invalidate_all(app: &App) -> ApiResult<()> {
    app.cache.clear();
    let Some(bus) = &app.peers else { return Ok(()) };
    bus.publish("*").await.map_err(|e| ApiError::internal("publishing a cache invalidation", e))
}

/// Whether this node may answer from its cache right now.
#[inline]
pub fn cache_usable(app: &App) -> bool {
    match &app.peers {
        Some(bus) => bus.cache_usable(),
        None => app.cache.watch_fresh(),
    }
}

/// Watches for removals by another process on the same (SQLite) database;
/// see the module doc. Hits are off until the first poll answers.
pub fn spawn_gc_watch(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    app.cache.start_watch();
    tokio::spawn(async move {
        let mut last: Option<Option<Vec<u8>>> = None;
        let mut tick = tokio::time::interval(WATCH_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let sent = Instant::now();
            match app.meta.job_state(WATCH_JOB).await {
                Ok(now) => {
                    if last.as_ref().is_some_and(|l| *l != now) {
                        tracing::debug!("another process removed manifests: manifest cache flushed");
                        app.cache.clear();
                    }
                    last = Some(now);
                    app.cache.watched_at(sent, WATCH_VALID);
                }
                Err(e) => tracing::warn!(error = %e, "manifest cache watch: reading the database failed"),
            }
        }
    })
}

/// Announces that manifests were removed by a process without peers (`berth
/// gc` on SQLite) and returns once every server watching the database has
/// flushed its cache or stopped serving from it.
pub async fn announce_outside_write(meta: &dyn berth_meta::MetaStore) -> Result<(), berth_meta::MetaError> {
    let now_ms = || crate::state::now_ms();
    let holder = format!("announce-{}-{}", std::process::id(), now_ms());
    let ttl = Duration::from_secs(10);
    let deadline = Instant::now() + ttl + Duration::from_secs(2);
    // Another announcer killed mid-way holds it at most `ttl`.
    while !meta.try_acquire_lease(WATCH_JOB, &holder, ttl, now_ms()).await? {
        if Instant::now() > deadline {
            return Err(berth_meta::MetaError::Database("the manifest-cache announcement lease stays taken".into()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let value = format!("{holder}-{:?}", Instant::now());
    let saved = meta.save_job_state(WATCH_JOB, &holder, value.as_bytes(), now_ms()).await?;
    let _ = meta.release_lease(WATCH_JOB, &holder).await;
    if !saved {
        return Err(berth_meta::MetaError::Database("lost the manifest-cache announcement lease".into()));
    }
    // Committed: a poll sent before now may have missed it, and that
    // poll's validity ends within WATCH_VALID.
    tokio::time::sleep(WATCH_VALID + Duration::from_millis(50)).await;
    Ok(())
}
