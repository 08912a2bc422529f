//! Registry metadata: which repositories exist, which blobs each may see,
//! manifests (bodies included: they are small and read on every pull),
//! tags, the reference graph (manifest → blobs, index → manifests,
//! subject → referrers), upload sessions with their saved hash state, and
//! job leases ([`LeaseStore`]) so background jobs run once per cluster.
//!
//! Everything that lists or decides (catalog, tags, referrers, later garbage
//! collection) asks this store and never walks blob storage. One trait,
//! [`MetaStore`], one shared test suite ([`test_suite`]) that every backend
//! runs. Backends: [`sqlite`] (embedded, the default) and [`postgres`]
//! (several nodes sharing one database). Depends only on `berth-oci`.

mod audit;
mod error;
mod gc;
mod immutability;
mod model;
pub mod postgres;
mod projects;
mod quotas;
mod retention;
mod robots;
pub mod selectors;
pub mod sqlite;
mod system_settings;
#[doc(hidden)]
pub mod test_suite;
#[doc(hidden)]
pub mod test_suite_audit;
#[doc(hidden)]
pub mod test_suite_jobs;
#[doc(hidden)]
pub mod test_suite_quota;
pub mod test_suite_retention;
pub mod test_suite_robots;
#[doc(hidden)]
pub mod test_suite_system;
#[doc(hidden)]
pub mod test_suite_users;
#[doc(hidden)]
pub mod test_suite_webhooks;
mod users;
mod webhooks;

pub use audit::{
    action, apply_retention, entry_bytes, entry_hash, verify_chain, AuditChain, AuditEntry, AuditEvent, AuditStore,
    Verdict, GENESIS, RETENTION_JOB,
};
pub use error::MetaError;
pub use gc::*;
pub use immutability::*;
pub use model::*;
pub use projects::*;
pub use quotas::*;
pub use retention::{RetentionArtifact, RetentionItem, RetentionRun, RetentionStore, StoredPolicy};
pub use robots::*;
pub use system_settings::{SystemSettingsStore, READ_ONLY_SETTING};
pub use users::*;
pub use webhooks::*;

use async_trait::async_trait;
use berth_oci::{Digest, RepoName, Tag};
use std::time::Duration;

/// Leases that let one holder at a time run a background job across a
/// cluster, and the job's durable progress, so that when a holder dies (its
/// lease expires unrenewed) the next holder resumes where it stopped.
///
/// A separate trait because it is a separate concern (and a test double for
/// a job runner need implement nothing else); every [`MetaStore`] is one, so
/// a job runner given the store the server already holds can lease.
///
/// Time is the caller's (`now_ms`, Unix milliseconds), so tests inject a
/// clock. Across nodes the clocks must agree to well within a TTL.
/// A lease is held while `now_ms < expiry`; an expired lease is lost even if
/// nobody has taken it yet: its holder must acquire again, never renew.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Takes the lease on `job` for `ttl` if it is free, expired, or already
    /// held by `holder` (then it is extended). True if `holder` holds it now.
    async fn try_acquire_lease(&self, job: &str, holder: &str, ttl: Duration, now_ms: i64) -> Result<bool, MetaError>;
    /// Extends an unexpired lease held by `holder` to `now_ms + ttl`.
    /// False if `holder` no longer holds it: stop working on the job.
    async fn renew_lease(&self, job: &str, holder: &str, ttl: Duration, now_ms: i64) -> Result<bool, MetaError>;
    /// Gives the lease up, keeping the saved progress for the next holder.
    /// False if `holder` did not hold it.
    async fn release_lease(&self, job: &str, holder: &str) -> Result<bool, MetaError>;
    /// The job's saved progress, whoever saved it.
    async fn job_state(&self, job: &str) -> Result<Option<Vec<u8>>, MetaError>;
    /// Saves progress if `holder` holds an unexpired lease on `job` (checked
    /// in the same transaction, so a holder that lost its lease cannot
    /// overwrite its successor's progress). False otherwise.
    async fn save_job_state(&self, job: &str, holder: &str, state: &[u8], now_ms: i64) -> Result<bool, MetaError>;
    /// The job is done: deletes its progress and releases the lease in one
    /// transaction, if `holder` holds an unexpired lease. False otherwise.
    async fn finish_job(&self, job: &str, holder: &str, now_ms: i64) -> Result<bool, MetaError>;
    /// Leases unexpired at `now_ms`, by job (metrics: which node runs what).
    async fn held_leases(&self, now_ms: i64) -> Result<Vec<HeldLease>, MetaError>;
}

/// A lease someone holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLease {
    pub job: String,
    pub holder: String,
    pub expires_ms: i64,
}

/// How a store's connection pool stands, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Most connections the pool opens; `None` when it has no limit.
    pub max: Option<usize>,
    /// Connections open now.
    pub open: usize,
    /// Open and not in use.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// `now_ms + ttl`, saturating.
pub(crate) fn lease_expiry(now_ms: i64, ttl: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

#[async_trait]
pub trait MetaStore:
    LeaseStore
    + GcStore
    + UserStore
    + ProjectStore
    + RobotStore
    + QuotaStore
    + ImmutabilityStore
    + AuditStore
    + RetentionStore
    + SystemSettingsStore
    + WebhookStore
    + Send
    + Sync
    + 'static
{
    /// The connection pool right now (no query).
    fn pool_status(&self) -> PoolStatus;

    // ---- upload sessions -------------------------------------------------
    async fn create_upload(&self, upload: &UploadSession) -> Result<(), MetaError>;
    async fn get_upload(&self, id: &str) -> Result<Option<UploadSession>, MetaError>;
    /// Records progress if the session still holds `expected_offset` bytes
    /// (so two writers can never both advance it). Returns false otherwise.
    async fn advance_upload(
        &self,
        id: &str,
        expected_offset: u64,
        offset: u64,
        hash_state: &[u8],
        store_state: &[u8],
        now_ms: i64,
    ) -> Result<bool, MetaError>;
    async fn delete_upload(&self, id: &str) -> Result<bool, MetaError>;
    /// Sessions not touched since `before_ms`, oldest first.
    async fn stale_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<UploadSession>, MetaError>;

    // ---- blobs -------------------------------------------------------------
    /// Records a committed blob, links it into `repo` and ends the upload
    /// session `upload` (if given), atomically. Spares the blob from garbage
    /// collection (clears its mark); fails with [`MetaError::BlobBusy`] if a
    /// collection is deleting its bytes (see [`GcStore`]).
    async fn commit_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        upload: Option<&str>,
        now_ms: i64,
    ) -> Result<(), MetaError>;
    /// Links an existing blob into `repo` if `from` (or, with `None`, any
    /// repository) may see it. Returns its size when linked.
    async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
        now_ms: i64,
    ) -> Result<Option<u64>, MetaError>;
    /// The size of `digest` if `repo` may see it.
    async fn repo_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>, MetaError>;
    /// Removes `repo`'s link to a blob (the bytes stay for garbage collection).
    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool, MetaError>;

    // ---- manifests and tags ------------------------------------------------
    /// Stores a manifest and points `tags` at it in one transaction, after
    /// checking inside it that every referenced blob is linked in the
    /// repository and every required child manifest exists. Reports the first missing reference otherwise.
    async fn put_manifest(&self, repo: &RepoName, m: &NewManifest, tags: &[Tag], now_ms: i64) -> Result<(), MetaError>;
    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>, MetaError>;
    async fn get_tagged_manifest(&self, repo: &RepoName, tag: &Tag) -> Result<Option<ManifestRecord>, MetaError>;
    /// Deletes a manifest and every tag pointing at it. Returns those tags,
    /// or `None` if the manifest did not exist.
    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Tag>>, MetaError>;
    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool, MetaError>;
    /// Tags in lexical order after `last`, at most `limit`; `None` if the
    /// repository does not exist.
    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<String>>, MetaError>;
    /// Manifests whose subject is `subject`, optionally of one artifact type.
    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, MetaError>;

    // ---- repositories --------------------------------------------------------
    /// Repository names in lexical order after `last`, at most `limit`.
    async fn list_repositories(&self, last: Option<&str>, limit: usize) -> Result<Vec<String>, MetaError>;
    /// Deletes a repository whole: its tags, manifests, references and blob
    /// links, in one transaction (the blobs' bytes are left to garbage
    /// collection, which finds them unlinked). False if it did not exist.
    async fn delete_repository(&self, repo: &RepoName) -> Result<bool, MetaError>;
}
