//! Keeps this node's manifest cache true when several nodes share the
//! metadata: applies the invalidations other nodes publish, and publishes
//! this node's (see `berth_meta::postgres::invalidation` for the protocol).
//! A change is encoded as `repo \t digest-or-empty \t tag \t tag…`; neither
//! names nor tags nor digests contain tabs.

use crate::error::{ApiError, ApiResult};
use crate::state::App;
use berth_meta::postgres::{Invalidation, InvalidationBus};
use berth_oci::{Digest, RepoName, Tag};
use std::sync::Arc;
use tokio::sync::mpsc;

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

/// Forgets a change locally and, with peers, makes every live node forget it
/// before the write is acknowledged to the client.
pub async fn invalidate(app: &App, repo: &RepoName, tags: &[Tag], digest: Option<&Digest>) -> ApiResult<()> {
    app.cache.invalidate(repo, tags, digest);
    let Some(bus) = &app.peers else { return Ok(()) };
    let mut payload = format!("{repo}\t{}", digest.map(Digest::as_str).unwrap_or(""));
    for t in tags {
        payload.push('\t');
        payload.push_str(t.as_str());
    }
    bus.publish(&payload).await.map_err(|e| ApiError::internal("publishing a cache invalidation", e))
}

/// Whether this node may answer from its cache right now.
pub fn cache_usable(app: &App) -> bool {
    app.peers.as_ref().is_none_or(|bus| bus.cache_usable())
}
