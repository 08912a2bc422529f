//! [`GcStore`]: the queries garbage collection, scrubbing and storage usage
//! need. Every decision to remove something is taken inside the
//! transaction that removes it, re-checking what made it a candidate, so a
//! concurrent push, mount or manifest write either lands first (and the
//! item is spared) or finds the item gone and fails cleanly. The full
//! reasoning is in `docs/garbage-collection.md`.
//!
//! Liveness, precisely:
//! - a *link* (repository, blob) is live while a manifest of that
//!   repository references the blob, or while it is younger than the grace
//!   period (its time is refreshed by every commit or mount into it);
//! - a *blob* is live while any repository links it. An unlinked blob is
//!   *marked* (`blob_gc.marked_ms`); a commit of the same digest
//!   ([`crate::MetaStore::commit_blob`] or [`GcStore::touch_blob`]) clears
//!   the mark; a blob still marked and unlinked a grace period after its
//!   mark is switched to *deleting* in one transaction, its bytes are
//!   deleted, then its row. While deleting, commits of it are refused
//!   ([`crate::MetaError::BlobBusy`]).
//! - an *untagged manifest* (collected only where asked) has no tag, is no
//!   child of another manifest of its repository, is no referrer of a
//!   subject present in its repository, and is older than the grace period.

use crate::MetaError;
use async_trait::async_trait;
use berth_oci::Digest;

/// A repository's link to a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcLink {
    pub repository: String,
    pub digest: Digest,
    pub size: u64,
}

/// A blob and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcBlob {
    pub digest: Digest,
    pub size: u64,
}

/// A manifest of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcManifest {
    pub repository: String,
    pub digest: Digest,
    pub size: u64,
}

/// A manifest reference to a blob the store has no record of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingRef {
    pub repository: String,
    pub manifest: String,
    pub child: String,
}

/// Storage used by one repository, from the metadata alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoUsage {
    pub repository: String,
    /// Blobs the repository links.
    pub blobs: u64,
    /// Manifests it holds, and their bytes (stored in the database).
    pub manifests: u64,
    pub manifest_bytes: u64,
    /// Bytes of every blob it links.
    pub logical_bytes: u64,
    /// Of those, bytes of blobs another repository links too.
    pub shared_bytes: u64,
    /// Bytes deleting the repository would free (`logical - shared`), once
    /// garbage collection runs.
    pub exclusive_bytes: u64,
}

#[async_trait]
pub trait GcStore: Send + Sync + 'static {
    /// About to make `digest`'s bytes durable (before `BlobStore::commit_upload`):
    /// clears a mark so a collection in progress spares the blob. False if a
    /// collection is deleting it right now: wait and retry, since the bytes
    /// about to be written could be deleted under the commit.
    async fn touch_blob(&self, digest: &Digest, now_ms: i64) -> Result<bool, MetaError>;

    /// Untagged manifests older than `before_ms` that are no child of
    /// another manifest and no referrer of a present subject, in
    /// (repository, digest) order after `after`, at most `limit`.
    async fn untagged_manifests(
        &self,
        before_ms: i64,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<GcManifest>, MetaError>;
    /// Deletes one manifest if, re-checked in the deleting transaction, it
    /// is still an untagged manifest as [`GcStore::untagged_manifests`] defines.
    async fn delete_untagged_manifest(&self, repo: &str, digest: &Digest, before_ms: i64) -> Result<bool, MetaError>;

    /// Links older than `before_ms` that no manifest of their repository
    /// references (read only, for dry runs), after `after`, at most `limit`.
    async fn unreferenced_links(
        &self,
        before_ms: i64,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<GcLink>, MetaError>;
    /// Removes up to `limit` such links, re-checked in the transaction that
    /// removes them; returns what it removed.
    async fn remove_unreferenced_links(&self, before_ms: i64, limit: usize) -> Result<Vec<GcLink>, MetaError>;

    /// Marks (at `now_ms`) every blob no repository links that is not marked
    /// yet, and drops marks of blobs linked again. Returns how many are marked.
    async fn mark_unlinked_blobs(&self, now_ms: i64) -> Result<u64, MetaError>;
    /// Blobs no live link holds (unlinked, or linked only by links that
    /// [`GcStore::remove_unreferenced_links`] would remove at `before_ms`),
    /// read only, for dry runs; after `after`, at most `limit`.
    async fn collectable_blobs(
        &self,
        before_ms: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GcBlob>, MetaError>;
    /// Switches up to `limit` blobs marked at or before `marked_before_ms`
    /// and still unlinked to *deleting*, in one transaction; returns them.
    async fn begin_blob_deletion(&self, marked_before_ms: i64, limit: usize) -> Result<Vec<GcBlob>, MetaError>;
    /// Blobs left *deleting* (by this run, or by one that was killed), after
    /// `after`, at most `limit`.
    async fn blobs_being_deleted(&self, after: Option<&str>, limit: usize) -> Result<Vec<GcBlob>, MetaError>;
    /// The bytes of these *deleting* blobs are gone: removes their rows.
    async fn finish_blob_deletion(&self, digests: &[Digest]) -> Result<u64, MetaError>;

    /// Every blob row, in digest order after `after` (scrub).
    async fn list_blobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<GcBlob>, MetaError>;
    /// Removes a blob's row, links and marks (scrub's quarantine: a client
    /// pushing it again then uploads it anew). False if it had no row.
    async fn forget_blob(&self, digest: &Digest) -> Result<bool, MetaError>;
    /// Manifest references to blobs without a row, at most `limit`.
    async fn dangling_references(&self, limit: usize) -> Result<Vec<DanglingRef>, MetaError>;

    /// Usage of `repo`, or of every repository (in name order).
    async fn repository_usage(&self, repo: Option<&str>) -> Result<Vec<RepoUsage>, MetaError>;
}
