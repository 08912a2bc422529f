//! [`QuotaStore`]: per-project storage limits and usage, as Harbor counts
//! them.
//!
//! A project's usage is the size of every distinct blob its repositories'
//! manifests reference (layers, configs) plus the manifests themselves,
//! each counted once per project however many of its repositories hold it.
//! Blobs only linked or uploaded (orphans awaiting garbage collection, the
//! layers of a push refused at manifest time) do not count: a refused push
//! leaves nothing counted.
//!
//! Both backends select a project's repositories by a range scan on the
//! name (`team-a/` ≤ name < `team-a0`, `0` being the byte after `/`);
//! `library` also holds every one-component name.

use crate::MetaError;
use async_trait::async_trait;
use berth_oci::Digest;

/// Storage counted against one project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of every counted blob and manifest.
    pub total: u64,
    /// Of those, bytes another project counts too.
    pub shared: u64,
    /// `total - shared`: what deleting the project's manifests would free.
    pub exclusive: u64,
    /// Distinct blobs and manifests counted.
    pub blob_count: u64,
}

/// One project's storage as the metrics show it
/// ([`QuotaStore::all_project_storage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectStorage {
    pub project: String,
    /// [`Usage::total`].
    pub used: u64,
    /// The storage limit, if any.
    pub limit: Option<u64>,
}

/// What a push would do to a project's quota ([`QuotaStore::quota_check`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaCheck {
    /// The project's limit in bytes; `None` for none (or no such project).
    pub limit: Option<u64>,
    /// Bytes counted now (only computed when there is a limit; else 0).
    pub used: u64,
    /// Bytes of the pushed items the project does not count yet.
    pub adding: u64,
}

impl QuotaCheck {
    /// The push would take the project past its limit.
    pub fn exceeded(&self) -> bool {
        self.limit.is_some_and(|limit| self.adding > 0 && self.used.saturating_add(self.adding) > limit)
    }
}

/// The bounds of a project's repository names: `lower <= name < upper`, and
/// for `library` also every name without `/`.
pub(crate) struct ProjectRange {
    pub lower: String,
    pub upper: String,
    pub library: bool,
}

impl ProjectRange {
    pub fn of(project: &str) -> ProjectRange {
        // '0' is the byte after '/': the range holds exactly `project/...`.
        ProjectRange { lower: format!("{project}/"), upper: format!("{project}0"), library: project == "library" }
    }
}

#[async_trait]
pub trait QuotaStore: Send + Sync + 'static {
    /// Sets (or with `None` removes) the project's storage limit in bytes.
    /// False if there is no such project.
    async fn set_project_quota(&self, project: &str, limit: Option<u64>) -> Result<bool, MetaError>;
    /// `None` if there is no such project, else its limit (`None`: unlimited).
    async fn project_quota(&self, project: &str) -> Result<Option<Option<u64>>, MetaError>;
    /// The project's usage (zero for a project without repositories).
    async fn project_usage(&self, project: &str) -> Result<Usage, MetaError>;
    /// For a push of `items` (digest, size) into `project`: its limit, and,
    /// when it has one, its usage and how many of those bytes it does not
    /// count yet (each digest once; a blob the store has is counted at its
    /// stored size, not the size the push declares). Computed in the database; not part of
    /// the transaction that then stores the push, so two concurrent pushes
    /// may together overshoot by at most their own sizes.
    async fn quota_check(&self, project: &str, items: &[(Digest, u64)]) -> Result<QuotaCheck, MetaError>;
    /// Every project's usage total and limit, sorted by name, in one query.
    /// It reads every manifest and reference: callers cache it (metrics).
    async fn all_project_storage(&self) -> Result<Vec<ProjectStorage>, MetaError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_exceeds_only_past_the_limit() {
        let check = |limit, used, adding| QuotaCheck { limit, used, adding }.exceeded();
        assert!(!check(None, 10, 10));
        assert!(!check(Some(100), 90, 10), "exactly at the limit is allowed");
        assert!(check(Some(100), 90, 11));
        assert!(!check(Some(100), 150, 0), "adding nothing new never fails");
    }

    #[test]
    fn project_ranges_hold_only_their_names() {
        let r = ProjectRange::of("team-a");
        let inside = |n: &str| n >= r.lower.as_str() && n < r.upper.as_str();
        assert!(inside("team-a/app") && inside("team-a/api/server"));
        assert!(!inside("team-a") && !inside("team-ab/x") && !inside("team-a-b/x") && !inside("team-a.x/y"));
        assert!(!r.library && ProjectRange::of("library").library);
    }
}
