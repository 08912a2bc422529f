//! One retention run of a project: under the `retention:<project>` job
//! lease (so a schedule runs once per cluster), plan, record every decision
//! (the run and its items are what a dry run is for), then, unless dry,
//! delete the removed manifests through the metadata store — tags go with
//! them, blob bytes are left to garbage collection — telling the servers'
//! manifest caches after each batch, as garbage collection does.

use super::plan::{plan, Decision};
use super::policy::{Policy, PolicyError};
use crate::Clock;
use berth_meta::{MetaError, MetaStore, RetentionItem};
use berth_oci::{Digest, RepoName};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

const LEASE_TTL: Duration = Duration::from_secs(120);
/// Items per insert when recording a run.
const RECORD_BATCH: usize = 1000;

/// The job lease a project's runs hold.
pub fn lease_name(project: &str) -> String {
    format!("retention:{project}")
}

/// A manifest a run deleted, with the tags that went with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub repository: String,
    pub digest: Digest,
    pub tags: Vec<String>,
}

/// Tells every server to forget what a batch removed; returns once none
/// will serve it. An error stops the run.
pub type Invalidate = Arc<dyn Fn(Vec<Removed>) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

#[derive(Clone)]
pub struct RetentionOptions {
    /// Plan and record, remove nothing.
    pub dry_run: bool,
    /// Who runs (lease holder id).
    pub holder: String,
    pub invalidate: Option<Invalidate>,
    /// Manifests deleted between two cache invalidations.
    pub batch: usize,
}

impl Default for RetentionOptions {
    fn default() -> Self {
        RetentionOptions {
            dry_run: false,
            holder: format!("retention-{}", uuid::Uuid::new_v4()),
            invalidate: None,
            batch: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    /// The recorded run.
    pub run_id: i64,
    pub retained: u64,
    /// Removed (or, dry, to be removed).
    pub removed: u64,
    pub decisions: Vec<Decision>,
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("project {0} has no retention policy")]
    NoPolicy(String),
    #[error("another retention run of project {0} holds its lease")]
    Busy(String),
    #[error("lost the retention lease (paused longer than {LEASE_TTL:?}?)")]
    LeaseLost,
    #[error("invalidating servers' manifest caches: {0}")]
    Invalidate(String),
}

/// Runs the project's stored policy once.
pub async fn run(
    meta: &dyn MetaStore,
    clock: &dyn Clock,
    project: &str,
    opts: &RetentionOptions,
) -> Result<RetentionReport, RetentionError> {
    let lease = acquire(meta, clock, project, opts).await?;
    let outcome = leased(meta, clock, project, opts, &lease).await;
    release(meta, project, opts, &lease).await;
    outcome
}

/// A scheduled run due at `due_ms`: runs unless a run that removes (not a
/// dry one) already started since, so each due time runs once per cluster
/// however many nodes wake for it. `None` if it had already run.
pub async fn run_due(
    meta: &dyn MetaStore,
    clock: &dyn Clock,
    project: &str,
    due_ms: i64,
    opts: &RetentionOptions,
) -> Result<Option<RetentionReport>, RetentionError> {
    let lease = acquire(meta, clock, project, opts).await?;
    // Checked under the lease: a run that started since holds or held it.
    let ran = async {
        let runs = meta.retention_runs(project, 16).await?;
        Ok::<_, MetaError>(runs.iter().any(|r| !r.dry_run && r.started_ms >= due_ms))
    };
    let outcome = match ran.await {
        Ok(true) => Ok(None),
        Ok(false) => leased(meta, clock, project, opts, &lease).await.map(Some),
        Err(e) => Err(e.into()),
    };
    release(meta, project, opts, &lease).await;
    outcome
}

async fn acquire(
    meta: &dyn MetaStore,
    clock: &dyn Clock,
    project: &str,
    opts: &RetentionOptions,
) -> Result<String, RetentionError> {
    let lease = lease_name(project);
    if !meta.try_acquire_lease(&lease, &opts.holder, LEASE_TTL, clock.now_ms()).await? {
        return Err(RetentionError::Busy(project.to_owned()));
    }
    Ok(lease)
}

async fn release(meta: &dyn MetaStore, project: &str, opts: &RetentionOptions, lease: &str) {
    if let Err(e) = meta.release_lease(lease, &opts.holder).await {
        tracing::warn!(project, error = %e, "releasing the retention lease");
    }
}

async fn leased(
    meta: &dyn MetaStore,
    clock: &dyn Clock,
    project: &str,
    opts: &RetentionOptions,
    lease: &str,
) -> Result<RetentionReport, RetentionError> {
    let stored = meta.retention_policy(project).await?.ok_or_else(|| RetentionError::NoPolicy(project.to_owned()))?;
    let rules = Policy::parse(&stored.policy)?.compile()?;
    let run_id = meta.start_retention_run(project, opts.dry_run, clock.now_ms()).await?;
    let outcome = planned(meta, clock, project, opts, lease, &rules, run_id).await;
    let status = match &outcome {
        Ok(_) => "succeeded".to_owned(),
        Err(e) => format!("failed: {e}"),
    };
    meta.finish_retention_run(run_id, &status, clock.now_ms()).await?;
    outcome
}

async fn planned(
    meta: &dyn MetaStore,
    clock: &dyn Clock,
    project: &str,
    opts: &RetentionOptions,
    lease: &str,
    rules: &[super::Rule],
    run_id: i64,
) -> Result<RetentionReport, RetentionError> {
    let artifacts = meta.retention_artifacts(project).await?;
    // Immutable tags stay whatever the rules say (Harbor: retention never
    // removes what tag immutability protects); read at planning time.
    let immutable = berth_meta::TagRules::new(&meta.immutable_rules(project).await?);
    let is_immutable = |repo: &str, tag: &str| berth_meta::immutable(&immutable, repo, tag).is_some();
    let decisions = plan(project, rules, &artifacts, clock.now_ms(), &is_immutable);
    for chunk in decisions.chunks(RECORD_BATCH) {
        let items: Vec<RetentionItem> = chunk
            .iter()
            .map(|d| RetentionItem {
                repository: d.repository.clone(),
                digest: d.digest.clone(),
                tags: d.tags.clone(),
                retained: d.retained,
                reason: d.reason.clone(),
            })
            .collect();
        meta.add_retention_items(run_id, &items).await?;
    }
    let mut removals: Vec<&Decision> = decisions.iter().filter(|d| !d.retained).collect();
    let report = RetentionReport {
        run_id,
        retained: (decisions.len() - removals.len()) as u64,
        removed: removals.len() as u64,
        decisions: decisions.clone(),
    };
    if opts.dry_run {
        return Ok(report);
    }
    // Referrers before their subjects, indexes before their children: what
    // remains never points at what is gone.
    removals.sort_by_key(|d| d.role);
    for batch in removals.chunks(opts.batch.max(1)) {
        let mut removed = Vec::with_capacity(batch.len());
        for d in batch {
            // A name the store listed always parses; skip it if not.
            let Ok(repo) = RepoName::parse(&d.repository) else { continue };
            if let Some(tags) = meta.delete_manifest(&repo, &d.digest).await? {
                removed.push(Removed {
                    repository: d.repository.clone(),
                    digest: d.digest.clone(),
                    tags: tags.iter().map(ToString::to_string).collect(),
                });
            }
        }
        if let Some(invalidate) = &opts.invalidate {
            invalidate(removed).await.map_err(RetentionError::Invalidate)?;
        }
        if !meta.renew_lease(lease, &opts.holder, LEASE_TTL, clock.now_ms()).await? {
            return Err(RetentionError::LeaseLost);
        }
    }
    Ok(report)
}
