//! [`QuotaStore`] on PostgreSQL: every figure is one query over a project's
//! repositories (a range scan on the unique name index, bytewise as the
//! names are `COLLATE "C"`; `library` adds the one-component names), using
//! the by-digest indexes to tell whether another project counts a blob too.

use super::{PostgresStore, TxError};
use crate::postgres::pool::retrying;
use crate::quotas::ProjectRange;
use crate::{MetaError, ProjectStorage, QuotaCheck, QuotaStore, Usage};
use async_trait::async_trait;
use berth_oci::Digest;
use deadpool_postgres::GenericClient;

/// `pr(id)`: the project's repositories, from `$1 <= name < $2` (and, when
/// `$3`, every name without `/`).
const PROJECT_REPOS: &str = "pr(id) AS (
        SELECT id FROM repositories WHERE name >= $1 AND name < $2
        UNION ALL SELECT id FROM repositories WHERE $3::boolean AND position('/' in name) = 0)";

/// The project's usage, after `WITH {PROJECT_REPOS},`.
const USAGE: &str = "counted(digest, size) AS (
         SELECT mr.child_digest, b.size FROM pr JOIN manifest_references mr ON mr.repository_id = pr.id
             JOIN blobs b ON b.digest = mr.child_digest WHERE NOT mr.child_is_manifest
         UNION SELECT m.digest, m.size FROM pr JOIN manifests m ON m.repository_id = pr.id),
     d(digest, size) AS (SELECT digest, max(size) FROM counted GROUP BY digest)
     SELECT count(*), COALESCE(sum(size), 0)::bigint, COALESCE(sum(CASE WHEN
         EXISTS (SELECT 1 FROM manifest_references o WHERE o.child_digest = d.digest
                 AND NOT o.child_is_manifest AND o.repository_id NOT IN (SELECT id FROM pr))
         OR EXISTS (SELECT 1 FROM manifests o WHERE o.digest = d.digest AND o.repository_id NOT IN (SELECT id FROM pr))
         THEN size ELSE 0 END), 0)::bigint
     FROM d";

/// Every project's usage as [`USAGE`] counts it (`library` holding the
/// one-component names), grouped in one pass instead of a query a project.
const ALL_PROJECTS: &str = "WITH rp(project, id) AS (
        SELECT CASE WHEN position('/' in name) = 0 THEN 'library' ELSE split_part(name, '/', 1) END, id
        FROM repositories),
     counted(project, digest, size) AS (
         SELECT rp.project, mr.child_digest, b.size FROM rp JOIN manifest_references mr ON mr.repository_id = rp.id
             JOIN blobs b ON b.digest = mr.child_digest WHERE NOT mr.child_is_manifest
         UNION SELECT rp.project, m.digest, m.size FROM rp JOIN manifests m ON m.repository_id = rp.id),
     d(project, size) AS (SELECT project, max(size) FROM counted GROUP BY project, digest),
     u(project, used) AS (SELECT project, sum(size)::bigint FROM d GROUP BY project)
     SELECT p.name, COALESCE(u.used, 0), p.storage_limit FROM projects p LEFT JOIN u ON u.project = p.name
     ORDER BY p.name";

async fn usage(c: &impl GenericClient, range: &ProjectRange) -> Result<Usage, TxError> {
    let st = c.prepare_cached(&format!("WITH {PROJECT_REPOS}, {USAGE}")).await?;
    let row = c.query_one(&st, &[&range.lower, &range.upper, &range.library]).await?;
    let n = |i: usize| row.get::<_, i64>(i) as u64;
    let (total, shared) = (n(1), n(2));
    Ok(Usage { total, shared, exclusive: total - shared, blob_count: n(0) })
}

async fn limit(c: &impl GenericClient, project: &str) -> Result<Option<Option<u64>>, TxError> {
    let st = c.prepare_cached("SELECT storage_limit FROM projects WHERE name = $1").await?;
    Ok(c.query_opt(&st, &[&project]).await?.map(|r| r.get::<_, Option<i64>>(0).map(|l| l.max(0) as u64)))
}

async fn adding(c: &impl GenericClient, range: &ProjectRange, items: &[(Digest, u64)]) -> Result<u64, TxError> {
    let digests: Vec<&str> = items.iter().map(|(d, _)| d.as_str()).collect();
    let sizes: Vec<i64> = items.iter().map(|(_, s)| i64::try_from(*s).unwrap_or(i64::MAX)).collect();
    let sql = format!(
        "WITH {PROJECT_REPOS},
         item(digest, size) AS (
             SELECT d COLLATE \"C\", max(s) FROM unnest($4::text[], $5::bigint[]) AS i(d, s) GROUP BY 1)
         SELECT COALESCE(sum(COALESCE(b.size, item.size)), 0)::bigint
         FROM item LEFT JOIN blobs b ON b.digest = item.digest WHERE NOT EXISTS (
                 SELECT 1 FROM manifest_references mr JOIN blobs b ON b.digest = mr.child_digest
                 WHERE mr.child_digest = item.digest AND NOT mr.child_is_manifest
                     AND mr.repository_id IN (SELECT id FROM pr))
             AND NOT EXISTS (SELECT 1 FROM manifests m
                 WHERE m.digest = item.digest AND m.repository_id IN (SELECT id FROM pr))"
    );
    let st = c.prepare_cached(&sql).await?;
    let row = c.query_one(&st, &[&range.lower, &range.upper, &range.library, &digests, &sizes]).await?;
    Ok(row.get::<_, i64>(0) as u64)
}

#[async_trait]
impl QuotaStore for PostgresStore {
    async fn set_project_quota(&self, project: &str, limit: Option<u64>) -> Result<bool, MetaError> {
        let limit = limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        retrying(|| async {
            let c = self.client().await?;
            let st = c.prepare_cached("UPDATE projects SET storage_limit = $2 WHERE name = $1").await?;
            Ok(c.execute(&st, &[&project, &limit]).await? == 1)
        })
        .await
    }

    async fn project_quota(&self, project: &str) -> Result<Option<Option<u64>>, MetaError> {
        let c = self.client().await?;
        Ok(limit(&c, project).await?)
    }

    async fn project_usage(&self, project: &str) -> Result<Usage, MetaError> {
        let c = self.client().await?;
        Ok(usage(&c, &ProjectRange::of(project)).await?)
    }

    async fn quota_check(&self, project: &str, items: &[(Digest, u64)]) -> Result<QuotaCheck, MetaError> {
        let c = self.client().await?;
        let Some(Some(limit)) = limit(&c, project).await? else {
            return Ok(QuotaCheck::default());
        };
        let range = ProjectRange::of(project);
        let used = usage(&c, &range).await?.total;
        let adding = adding(&c, &range, items).await?;
        Ok(QuotaCheck { limit: Some(limit), used, adding })
    }

    async fn all_project_storage(&self) -> Result<Vec<ProjectStorage>, MetaError> {
        let c = self.client().await?;
        let st = c.prepare_cached(ALL_PROJECTS).await.map_err(TxError::from)?;
        let rows = c.query(&st, &[]).await.map_err(TxError::from)?;
        Ok(rows
            .iter()
            .map(|r| ProjectStorage {
                project: r.get(0),
                used: r.get::<_, i64>(1).max(0) as u64,
                limit: r.get::<_, Option<i64>>(2).map(|l| l.max(0) as u64),
            })
            .collect())
    }
}
