//! The manifest cache that keeps manifest `GET`/`HEAD` off the database:
//! (repository, tag) → digest and (repository, digest) → the response,
//! headers precomputed.
//!
//! Staleness: a reader that missed fills the cache only if no write
//! happened since it began reading from the database. Writers bump the
//! generation and invalidate under the exclusive side of `fill_lock`;
//! fillers check and insert under the shared side, so a fill can never
//! land after the invalidation that should have removed it. Hits take no
//! lock at all.
//!
//! Writers outside this process that the cache cannot hear directly
//! (`berth gc` on the same SQLite file removing untagged manifests) are
//! watched by `peers::spawn_gc_watch`: while a watch is on, hits are served
//! only while its last poll, measured from before it was sent, is younger
//! than `peers::WATCH_VALID` ([`ManifestCache::watch_fresh`]); the outside
//! writer waits that long after its commit, so by then every server has
//! either seen the change or stopped serving hits.

use berth_meta::ManifestRecord;
use berth_oci::{Digest, RepoName, Tag};
use bytes::Bytes;
use http::HeaderValue;
use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub struct CachedManifest {
    pub digest: Digest,
    pub body: Bytes,
    pub content_type: HeaderValue,
    pub digest_header: HeaderValue,
    pub etag: HeaderValue,
    pub subject: Option<HeaderValue>,
}

impl CachedManifest {
    pub fn from_record(rec: ManifestRecord) -> Option<Self> {
        Some(CachedManifest {
            content_type: HeaderValue::from_str(&rec.media_type).ok()?,
            digest_header: HeaderValue::from_str(rec.digest.as_str()).ok()?,
            etag: HeaderValue::from_str(&format!("\"{}\"", rec.digest)).ok()?,
            subject: rec.subject.and_then(|s| HeaderValue::from_str(s.as_str()).ok()),
            digest: rec.digest,
            body: rec.body,
        })
    }
}

pub struct ManifestCache {
    /// Off when several nodes share the metadata (see `new`).
    enabled: bool,
    tags: Cache<String, Digest>,
    manifests: Cache<String, Arc<CachedManifest>>,
    generation: AtomicU64,
    fill_lock: RwLock<()>,
    /// With a watch on: milliseconds since `epoch` until which hits may be
    /// served. `UNWATCHED` (no watch) is always fresh.
    fresh_until: AtomicU64,
    epoch: Instant,
}

const UNWATCHED: u64 = u64::MAX;

/// A point in the write history, taken before reading the database.
#[derive(Clone, Copy)]
pub struct Generation(u64);

// ':' and '@' appear in neither repository names nor tags, so keys are unambiguous.
fn tag_key(repo: &RepoName, tag: &Tag) -> String {
    format!("{repo}:{tag}")
}

fn digest_key(repo: &RepoName, digest: &Digest) -> String {
    format!("{repo}@{digest}")
}

impl ManifestCache {
    /// A cache of at most `max_bytes`; 0 turns it off. Several nodes sharing
    /// PostgreSQL run with it off until cross-node invalidation exists: a
    /// node must never serve a tag another node moved or deleted.
    pub fn new(max_bytes: u64) -> Self {
        ManifestCache {
            enabled: max_bytes > 0,
            tags: Cache::builder().max_capacity(max_bytes / 64).build(),
            manifests: Cache::builder()
                .weigher(|k: &String, v: &Arc<CachedManifest>| {
                    (k.len() + v.body.len() + 256).min(u32::MAX as usize) as u32
                })
                .max_capacity(max_bytes)
                .build(),
            generation: AtomicU64::new(0),
            fill_lock: RwLock::new(()),
            fresh_until: AtomicU64::new(UNWATCHED),
            epoch: Instant::now(),
        }
    }

    /// Turns the outside-writer watch on: no hits until the first
    /// [`Self::watched_at`].
    pub fn start_watch(&self) {
        self.fresh_until.store(0, Ordering::Release);
    }

    /// A watch poll sent at `sent` found nothing new (or its news was
    /// applied): hits may be served until `sent + valid`.
    pub fn watched_at(&self, sent: Instant, valid: Duration) {
        let until = sent.saturating_duration_since(self.epoch) + valid;
        self.fresh_until.store(until.as_millis() as u64, Ordering::Release);
    }

    /// Whether hits may be served as far as the outside-writer watch is
    /// concerned: one atomic load without a watch, plus a monotonic clock
    /// read (vDSO, no syscall) with one.
    #[inline]
    pub fn watch_fresh(&self) -> bool {
        let until = self.fresh_until.load(Ordering::Acquire);
        until == UNWATCHED || (self.epoch.elapsed().as_millis() as u64) < until
    }

    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::Acquire))
    }

    pub fn by_tag(&self, repo: &RepoName, tag: &Tag) -> Option<Arc<CachedManifest>> {
        let digest = self.tags.get(&tag_key(repo, tag))?;
        self.by_digest(repo, &digest)
    }

    pub fn by_digest(&self, repo: &RepoName, digest: &Digest) -> Option<Arc<CachedManifest>> {
        self.manifests.get(&digest_key(repo, digest))
    }

    /// Remembers what the database said at `seen`, unless something was
    /// written since.
    pub fn fill(&self, repo: &RepoName, tag: Option<&Tag>, m: Arc<CachedManifest>, seen: Generation) {
        if !self.enabled {
            return;
        }
        let Ok(_shared) = self.fill_lock.read() else { return };
        if self.generation.load(Ordering::Acquire) != seen.0 {
            return;
        }
        if let Some(tag) = tag {
            self.tags.insert(tag_key(repo, tag), m.digest.clone());
        }
        self.manifests.insert(digest_key(repo, &m.digest), m);
    }

    /// Forgets everything (a peer's changes may have been missed).
    pub fn clear(&self) {
        let _exclusive = self.fill_lock.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.tags.invalidate_all();
        self.manifests.invalidate_all();
    }

    /// Forgets tags that moved or vanished and a manifest that was deleted.
    /// Call after the database commit, before answering the client.
    pub fn invalidate(&self, repo: &RepoName, tags: &[Tag], digest: Option<&Digest>) {
        let _exclusive = self.fill_lock.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        for tag in tags {
            self.tags.invalidate(&tag_key(repo, tag));
        }
        if let Some(d) = digest {
            self.manifests.invalidate(&digest_key(repo, d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_oci::Algorithm;

    fn manifest(body: &'static str) -> Arc<CachedManifest> {
        let digest = Digest::compute(Algorithm::Sha256, body.as_bytes());
        Arc::new(
            CachedManifest::from_record(ManifestRecord {
                digest,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                subject: None,
                body: Bytes::from_static(body.as_bytes()),
            })
            .unwrap(),
        )
    }

    #[test]
    fn fill_after_a_write_is_dropped() {
        let c = ManifestCache::new(1 << 20);
        let (repo, tag) = (RepoName::parse("a").unwrap(), Tag::parse("v1").unwrap());
        let seen = c.generation();
        c.invalidate(&repo, std::slice::from_ref(&tag), None); // a concurrent tag move
        c.fill(&repo, Some(&tag), manifest("old"), seen);
        assert!(c.by_tag(&repo, &tag).is_none(), "stale read must not be cached");
        let seen = c.generation();
        let m = manifest("new");
        c.fill(&repo, Some(&tag), m.clone(), seen);
        assert_eq!(c.by_tag(&repo, &tag).unwrap().digest, m.digest);
        assert!(c.by_digest(&repo, &m.digest).is_some());
        c.invalidate(&repo, &[], Some(&m.digest));
        assert!(c.by_tag(&repo, &tag).is_none(), "a deleted manifest is gone by tag too");
    }

    #[test]
    fn a_watch_lapses_unless_renewed() {
        let c = ManifestCache::new(1 << 20);
        assert!(c.watch_fresh(), "no watch: always fresh");
        c.start_watch();
        assert!(!c.watch_fresh(), "watched, never polled");
        c.watched_at(Instant::now(), Duration::from_secs(60));
        assert!(c.watch_fresh());
        c.watched_at(c.epoch, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!c.watch_fresh(), "a poll sent more than `valid` ago no longer counts");
    }

    #[test]
    fn zero_bytes_means_off() {
        let c = ManifestCache::new(0);
        let (repo, tag) = (RepoName::parse("a").unwrap(), Tag::parse("v1").unwrap());
        c.fill(&repo, Some(&tag), manifest("m"), c.generation());
        assert!(c.by_tag(&repo, &tag).is_none());
    }
}
