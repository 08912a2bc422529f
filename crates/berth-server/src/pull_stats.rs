//! Pull statistics for tag retention (`latestPulledN`, `nDaysSinceLastPull`),
//! off the request path.
//!
//! A successful manifest `GET` (not `HEAD`: Harbor counts pulls on `GET`)
//! calls [`PullStats::record`]: one uncontended mutex and a map lookup; a
//! manifest already pulled since the last flush only has its time raised,
//! without allocating. A background task ([`spawn_flusher`]) takes the map
//! every [`FLUSH_INTERVAL`] and hands it to
//! `berth_meta::RetentionStore::record_pulls` in one call. A full map (the
//! database far behind) drops new manifests until the next flush: requests
//! never wait for, or fail because of, the statistics.

use berth_meta::MetaStore;
use berth_oci::{Digest, RepoName};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Distinct manifests held between flushes (~100 bytes each).
pub const CAPACITY: usize = 65_536;

type Pulls = HashMap<String, HashMap<Digest, i64>>;

#[derive(Default)]
pub struct PullStats {
    pending: Mutex<(Pulls, usize)>,
    dropped: AtomicU64,
}

impl PullStats {
    /// Notes that `repo`'s manifest `digest` was pulled at `now_ms`.
    pub fn record(&self, repo: &RepoName, digest: &Digest, now_ms: i64) {
        let Ok(mut guard) = self.pending.lock() else { return };
        let (pulls, len) = &mut *guard;
        if let Some(t) = pulls.get_mut(repo.as_str()).and_then(|m| m.get_mut(digest)) {
            *t = (*t).max(now_ms);
            return;
        }
        if *len >= CAPACITY {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *len += 1;
        pulls.entry(repo.as_str().to_owned()).or_default().insert(digest.clone(), now_ms);
    }

    /// Takes what accumulated, as `record_pulls` wants it.
    pub fn take(&self) -> Vec<(String, Digest, i64)> {
        let Ok(mut guard) = self.pending.lock() else { return vec![] };
        let (pulls, _) = std::mem::take(&mut *guard);
        drop(guard);
        pulls.into_iter().flat_map(|(repo, m)| m.into_iter().map(move |(d, t)| (repo.clone(), d, t))).collect()
    }

    /// Pulls not recorded because the map was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Writes the accumulated pulls every [`FLUSH_INTERVAL`] until aborted. A
/// failed write is logged and its pulls lost (they are statistics).
pub fn spawn_flusher(stats: Arc<PullStats>, meta: Arc<dyn MetaStore>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let pulls = stats.take();
            if pulls.is_empty() {
                continue;
            }
            if let Err(e) = meta.record_pulls(&pulls).await {
                tracing::warn!(error = %e, pulls = pulls.len(), "recording pull statistics");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::Algorithm;

    #[test]
    fn repeated_pulls_keep_the_latest_time_and_a_full_map_drops() {
        let s = PullStats::default();
        let (a, b) = (RepoName::parse("team/a").unwrap(), RepoName::parse("team/b").unwrap());
        let d = Digest::compute(Algorithm::Sha256, b"m");
        s.record(&a, &d, 10);
        s.record(&a, &d, 30);
        s.record(&a, &d, 20);
        s.record(&b, &d, 5);
        let mut got = s.take();
        got.sort();
        assert_eq!(got, [("team/a".to_owned(), d.clone(), 30), ("team/b".to_owned(), d.clone(), 5)]);
        assert!(s.take().is_empty(), "taken once");
        for i in 0..CAPACITY + 3 {
            s.record(&a, &Digest::compute(Algorithm::Sha256, &i.to_le_bytes()), 1);
        }
        assert_eq!((s.take().len(), s.dropped()), (CAPACITY, 3));
    }
}
