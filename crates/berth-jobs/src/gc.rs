//! Garbage collection, online. One run, in phases, each decided in the
//! metadata database (never by walking storage):
//!
//! 0. finish blobs a killed run left *deleting* (bytes, then rows);
//! 1. untagged manifests, in repositories matching [`GcOptions::untagged`],
//!    each page announced to the servers' manifest caches ([`GcOptions::invalidate`]);
//! 2. links no manifest of their repository references, older than the grace;
//! 3. mark blobs no repository links;
//! 4. blobs marked at least a grace ago and still unlinked: switch to
//!    deleting (one transaction per batch), delete the bytes in bulk, then
//!    the rows;
//! 5. upload sessions untouched for [`GcOptions::upload_age`], and staged
//!    uploads that old which no session names.
//!
//! The run holds the `gc` job lease, renews it after every batch, and saves
//! its phase and counts with `save_job_state`: a run killed anywhere is
//! resumed by the next (on any node) without error and to the same end
//! state. Why this is safe beside pushes: `docs/garbage-collection.md`.

use crate::Clock;
use berth_blob::BlobStore;
use berth_meta::{GcBlob, MetaError, MetaStore};
use berth_oci::Digest;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The job lease's name.
pub const JOB: &str = "gc";
const LEASE_TTL: Duration = Duration::from_secs(120);

/// A hook run with each batch of blobs chosen for deletion, before their
/// bytes go (tests pause a collection there).
pub type BeforeDelete = Arc<dyn Fn(Vec<GcBlob>) -> BoxFuture<'static, ()> + Send + Sync>;
/// Progress: phase name and items done in it so far.
pub type OnProgress = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// What servers' manifest caches must forget because a run removed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forget {
    /// These (repository, manifest digest) pairs, deleted and committed.
    Manifests(Vec<(String, Digest)>),
    /// Everything: a killed run may have removed manifests it never announced.
    All,
}

/// Tells every server what to forget; returns once no server will serve it
/// (see `berth::gc`). An error stops the run; the next run starts with
/// [`Forget::All`].
pub type Invalidate = Arc<dyn Fn(Forget) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Clone)]
pub struct GcOptions {
    /// How long an unreferenced link or an unlinked blob is left alone
    /// before it goes (`berth.gc.grace`).
    pub grace: Duration,
    /// Repositories whose untagged manifests are collected (`berth.gc.untagged`); none if `None`.
    pub untagged: Option<regex::Regex>,
    /// Upload sessions untouched this long are removed with their bytes.
    pub upload_age: Duration,
    /// List, remove nothing.
    pub dry_run: bool,
    /// Rows per transaction; blobs per bulk delete.
    pub batch: usize,
    /// Who runs (lease holder id).
    pub holder: String,
    pub before_delete: Option<BeforeDelete>,
    /// A hook run after marking unlinked blobs, before choosing which to delete.
    pub after_mark: Option<Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>>,
    pub on_progress: Option<OnProgress>,
    /// Called after each page of untagged manifests is removed, before the
    /// run goes on: no server may serve what the run removed from its cache.
    pub invalidate: Option<Invalidate>,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            grace: Duration::from_secs(3600),
            untagged: None,
            upload_age: Duration::from_secs(7 * 24 * 3600),
            dry_run: false,
            batch: 2000,
            holder: format!("gc-{}", uuid::Uuid::new_v4()),
            before_delete: None,
            after_mark: None,
            on_progress: None,
            invalidate: None,
        }
    }
}

/// What a run removed (or, dry, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    pub manifests: u64,
    pub links: u64,
    pub blobs: u64,
    pub bytes_freed: u64,
    pub uploads: u64,
    /// Under a dry run: what would go, one line each.
    #[serde(skip)]
    pub listed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error("blob storage: {0}")]
    Blob(#[from] berth_blob::StoreError),
    #[error("another collection holds the gc lease")]
    Busy,
    #[error("lost the gc lease (paused longer than {0:?}?)")]
    LeaseLost(Duration),
    #[error("invalidating servers' manifest caches: {0}")]
    Invalidate(String),
}

/// Durable progress: the phase reached and the counts so far.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    started_ms: i64,
    phase: u8,
    report: GcReport,
}

struct Run<'a> {
    meta: &'a dyn MetaStore,
    blobs: &'a dyn BlobStore,
    clock: &'a dyn Clock,
    opts: &'a GcOptions,
    state: State,
}

impl Run<'_> {
    fn progress(&self, phase: &str, n: u64) {
        if let Some(f) = &self.opts.on_progress {
            f(phase, n);
        }
    }

    /// Renews the lease and records progress; fails if the lease is lost.
    async fn checkpoint(&mut self, phase: u8) -> Result<(), GcError> {
        self.state.phase = phase;
        let now = self.clock.now_ms();
        let bytes = serde_json::to_vec(&self.state).expect("state serialises");
        let (meta, holder) = (self.meta, &self.opts.holder);
        if !meta.renew_lease(JOB, holder, LEASE_TTL, now).await?
            || !meta.save_job_state(JOB, holder, &bytes, now).await?
        {
            return Err(GcError::LeaseLost(LEASE_TTL));
        }
        Ok(())
    }

    fn cutoff(&self) -> i64 {
        self.state.started_ms.saturating_sub(self.opts.grace.as_millis() as i64)
    }

    async fn forget(&self, what: Forget) -> Result<(), GcError> {
        match (&self.opts.invalidate, &what) {
            (None, _) => Ok(()),
            (Some(_), Forget::Manifests(m)) if m.is_empty() => Ok(()),
            (Some(f), _) => f(what).await.map_err(GcError::Invalidate),
        }
    }

    async fn delete_blobs(&mut self, chosen: Vec<GcBlob>) -> Result<(), GcError> {
        if chosen.is_empty() {
            return Ok(());
        }
        if let Some(hook) = &self.opts.before_delete {
            hook(chosen.clone()).await;
        }
        let digests: Vec<Digest> = chosen.iter().map(|b| b.digest.clone()).collect();
        self.blobs.delete_many(&digests).await?;
        self.meta.finish_blob_deletion(&digests).await?;
        self.state.report.blobs += chosen.len() as u64;
        self.state.report.bytes_freed += chosen.iter().map(|b| b.size).sum::<u64>();
        for b in &chosen {
            tracing::debug!(digest = %b.digest, size = b.size, "collected blob");
        }
        Ok(())
    }

    async fn finish_deleting(&mut self) -> Result<(), GcError> {
        loop {
            let left = self.meta.blobs_being_deleted(None, self.opts.batch).await?;
            let n = left.len();
            self.delete_blobs(left).await?;
            if n < self.opts.batch {
                return Ok(());
            }
        }
    }

    async fn untagged(&mut self) -> Result<(), GcError> {
        let Some(pattern) = self.opts.untagged.clone() else { return Ok(()) };
        // Removing an index can free its children: repeat while a pass removes something.
        for _ in 0..16 {
            let mut removed = 0;
            let mut after: Option<(String, String)> = None;
            loop {
                let key = after.as_ref().map(|(r, d)| (r.as_str(), d.as_str()));
                let page = self.meta.untagged_manifests(self.cutoff(), key, self.opts.batch).await?;
                let mut gone = Vec::new();
                for m in page.iter().filter(|m| pattern.is_match(&m.repository)) {
                    if self.meta.delete_untagged_manifest(&m.repository, &m.digest, self.cutoff()).await? {
                        tracing::debug!(repository = %m.repository, digest = %m.digest, "collected untagged manifest");
                        self.state.report.manifests += 1;
                        removed += 1;
                        gone.push((m.repository.clone(), m.digest.clone()));
                    }
                }
                // Committed: now no server may keep serving them from a cache.
                self.forget(Forget::Manifests(gone)).await?;
                self.progress("untagged manifests", self.state.report.manifests);
                match page.last() {
                    Some(m) if page.len() == self.opts.batch => {
                        after = Some((m.repository.clone(), m.digest.to_string()))
                    }
                    _ => break,
                }
                self.checkpoint(1).await?;
            }
            if removed == 0 {
                break;
            }
        }
        Ok(())
    }

    async fn run(&mut self, resumed: bool) -> Result<(), GcError> {
        if resumed && self.state.phase <= 1 {
            // The killed run may have removed manifests and died before
            // announcing them.
            self.forget(Forget::All).await?;
        }
        // Progress exists from here on, so a kill at any later point is seen
        // as a resumption by the next run.
        self.checkpoint(self.state.phase).await?;
        self.finish_deleting().await?;
        if self.state.phase <= 1 {
            self.untagged().await?;
            self.checkpoint(2).await?;
        }
        if self.state.phase <= 2 {
            loop {
                let gone = self.meta.remove_unreferenced_links(self.cutoff(), self.opts.batch).await?;
                self.state.report.links += gone.len() as u64;
                self.progress("unreferenced links", self.state.report.links);
                self.checkpoint(2).await?;
                if gone.len() < self.opts.batch {
                    break;
                }
            }
            self.checkpoint(3).await?;
        }
        if self.state.phase <= 3 {
            self.meta.mark_unlinked_blobs(self.clock.now_ms()).await?;
            self.checkpoint(4).await?;
            if let Some(hook) = &self.opts.after_mark {
                hook().await;
            }
        }
        if self.state.phase <= 4 {
            // Marked a grace ago, by this run or an earlier one.
            let marked_before = self.clock.now_ms().saturating_sub(self.opts.grace.as_millis() as i64);
            loop {
                let chosen = self.meta.begin_blob_deletion(marked_before, self.opts.batch).await?;
                let n = chosen.len();
                self.checkpoint(4).await?;
                self.delete_blobs(chosen).await?;
                self.progress("blobs", self.state.report.blobs);
                self.checkpoint(4).await?;
                if n < self.opts.batch {
                    break;
                }
            }
            self.checkpoint(5).await?;
        }
        let upload_cutoff = self.clock.now_ms().saturating_sub(self.opts.upload_age.as_millis() as i64);
        loop {
            let purged = crate::uploads::remove_stale(self.meta, self.blobs, upload_cutoff, self.opts.batch).await?;
            self.state.report.uploads += purged.len() as u64;
            self.progress("expired uploads", self.state.report.uploads);
            self.checkpoint(5).await?;
            if !purged.maybe_more(self.opts.batch) {
                return Ok(());
            }
        }
    }
}

/// Lists what a run would remove now, removing nothing (no lease needed).
async fn dry_run(meta: &dyn MetaStore, clock: &dyn Clock, opts: &GcOptions) -> Result<GcReport, GcError> {
    let now = clock.now_ms();
    let cutoff = now.saturating_sub(opts.grace.as_millis() as i64);
    let mut r = GcReport::default();
    if let Some(pattern) = &opts.untagged {
        let mut after: Option<(String, String)> = None;
        loop {
            let key = after.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
            let page = meta.untagged_manifests(cutoff, key, opts.batch).await?;
            for m in page.iter().filter(|m| pattern.is_match(&m.repository)) {
                r.manifests += 1;
                r.listed.push(format!("manifest {}@{}", m.repository, m.digest));
            }
            match page.last() {
                Some(m) if page.len() == opts.batch => after = Some((m.repository.clone(), m.digest.to_string())),
                _ => break,
            }
        }
    }
    let mut after: Option<(String, String)> = None;
    loop {
        let key = after.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        let page = meta.unreferenced_links(cutoff, key, opts.batch).await?;
        for l in &page {
            r.links += 1;
            r.listed.push(format!("link {} -> {}", l.repository, l.digest));
        }
        match page.last() {
            Some(l) if page.len() == opts.batch => after = Some((l.repository.clone(), l.digest.to_string())),
            _ => break,
        }
    }
    let mut after: Option<String> = None;
    loop {
        let page = meta.collectable_blobs(cutoff, after.as_deref(), opts.batch).await?;
        for b in &page {
            r.blobs += 1;
            r.bytes_freed += b.size;
            r.listed.push(format!("blob {} ({} bytes)", b.digest, b.size));
        }
        match page.last() {
            Some(b) if page.len() == opts.batch => after = Some(b.digest.to_string()),
            _ => break,
        }
    }
    let stale = meta.stale_uploads(now.saturating_sub(opts.upload_age.as_millis() as i64), usize::MAX >> 1).await?;
    r.uploads = stale.len() as u64;
    r.listed.extend(stale.iter().map(|s| format!("upload {} ({})", s.id, s.repository)));
    Ok(r)
}

/// One collection. Takes the `gc` lease (or fails with [`GcError::Busy`]),
/// resumes a killed run's progress, and returns what this run and the
/// resumed one removed together.
pub async fn collect(
    meta: &dyn MetaStore,
    blobs: &dyn BlobStore,
    clock: &dyn Clock,
    opts: &GcOptions,
) -> Result<GcReport, GcError> {
    if opts.dry_run {
        return dry_run(meta, clock, opts).await;
    }
    if !meta.try_acquire_lease(JOB, &opts.holder, LEASE_TTL, clock.now_ms()).await? {
        return Err(GcError::Busy);
    }
    let saved = meta.job_state(JOB).await?.and_then(|b| serde_json::from_slice::<State>(&b).ok());
    let resumed = saved.is_some();
    let state = match saved {
        Some(s) => {
            tracing::info!(phase = s.phase, "resuming an interrupted garbage collection");
            s
        }
        None => State { started_ms: clock.now_ms(), phase: 0, report: GcReport::default() },
    };
    let mut run = Run { meta, blobs, clock, opts, state };
    let result = run.run(resumed).await;
    if let Err(e) = result {
        // Keep the progress for the next run; free the lease for it.
        let _ = meta.release_lease(JOB, &opts.holder).await;
        return Err(e);
    }
    if !meta.finish_job(JOB, &opts.holder, clock.now_ms()).await? {
        return Err(GcError::LeaseLost(LEASE_TTL));
    }
    let r = run.state.report;
    tracing::info!(
        manifests = r.manifests,
        links = r.links,
        blobs = r.blobs,
        bytes_freed = r.bytes_freed,
        uploads = r.uploads,
        "garbage collection done"
    );
    Ok(r)
}
