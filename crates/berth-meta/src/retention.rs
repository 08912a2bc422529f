//! [`RetentionStore`]: projects' tag retention policies (Harbor's JSON,
//! kept as text: `berth-jobs` owns its meaning), the runs that applied them
//! with what each kept or removed and why, the artifacts a run plans over,
//! and manifests' pull times (`latestPulledN`, `nDaysSinceLastPull`).

use crate::MetaError;
use async_trait::async_trait;
use berth_oci::Digest;

/// A project's policy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    pub project: String,
    /// Harbor's retention policy JSON.
    pub policy: String,
    /// The policy's `trigger.settings.cron`, if it runs on a schedule.
    pub cron: Option<String>,
    pub updated_ms: i64,
}

/// One manifest of a project, as a retention plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionArtifact {
    pub repository: String,
    pub digest: Digest,
    pub media_type: String,
    pub subject: Option<Digest>,
    /// The manifest's creation or its newest tag move, whichever is later.
    pub pushed_ms: i64,
    /// 0 if never pulled.
    pub last_pulled_ms: i64,
    /// In lexical order.
    pub tags: Vec<String>,
    /// Manifests this one (an index) lists, in lexical order.
    pub children: Vec<Digest>,
}

/// A run, started (and perhaps finished).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRun {
    pub id: i64,
    pub project: String,
    pub dry_run: bool,
    pub started_ms: i64,
    /// `None` while running (or if its node died).
    pub finished_ms: Option<i64>,
    /// `running`, `succeeded` or `failed: <why>`.
    pub status: String,
}

/// What a run decided for one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionItem {
    pub repository: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    pub retained: bool,
    pub reason: String,
}

#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// Sets (replacing) the project's policy.
    async fn set_retention_policy(
        &self,
        project: &str,
        policy: &str,
        cron: Option<&str>,
        now_ms: i64,
    ) -> Result<(), MetaError>;
    async fn retention_policy(&self, project: &str) -> Result<Option<StoredPolicy>, MetaError>;
    async fn delete_retention_policy(&self, project: &str) -> Result<bool, MetaError>;
    /// Policies with a cron, in project order.
    async fn scheduled_retention_policies(&self) -> Result<Vec<StoredPolicy>, MetaError>;

    /// Every manifest of the project's repositories (see
    /// [`crate::project_of`]) in one query, by repository then digest.
    async fn retention_artifacts(&self, project: &str) -> Result<Vec<RetentionArtifact>, MetaError>;
    /// Raises each manifest's last pull time to the given one (never lowers
    /// it); unknown manifests are skipped.
    async fn record_pulls(&self, pulls: &[(String, Digest, i64)]) -> Result<(), MetaError>;

    /// Records a run as `running`; returns its id.
    async fn start_retention_run(&self, project: &str, dry_run: bool, started_ms: i64) -> Result<i64, MetaError>;
    /// Records the run's decisions, appended in order.
    async fn add_retention_items(&self, run: i64, items: &[RetentionItem]) -> Result<(), MetaError>;
    /// Ends a run with its status. False if there is no such run.
    async fn finish_retention_run(&self, run: i64, status: &str, finished_ms: i64) -> Result<bool, MetaError>;
    /// The project's runs, newest first, at most `limit`.
    async fn retention_runs(&self, project: &str, limit: usize) -> Result<Vec<RetentionRun>, MetaError>;
    /// The project's runs older than run `before` (all when `None`), newest
    /// first, at most `limit`: a page of the admin API's listing.
    async fn retention_runs_before(
        &self,
        project: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RetentionRun>, MetaError>;
    /// One run by id, whatever its project (callers check it).
    async fn retention_run(&self, run: i64) -> Result<Option<RetentionRun>, MetaError>;
    /// A run's decisions in the order they were added.
    async fn retention_items(&self, run: i64) -> Result<Vec<RetentionItem>, MetaError>;
}

/// Tags and digests are stored joined by newlines (neither may contain one).
pub(crate) fn split_list(s: Option<String>) -> Vec<String> {
    let mut v: Vec<String> = s.unwrap_or_default().split('\n').filter(|t| !t.is_empty()).map(str::to_owned).collect();
    v.sort();
    v
}
