//! [`QuotaStore`] on SQLite: every figure is one query over a project's
//! repositories (a range scan on the unique name index; `library` adds the
//! one-component names), using the by-digest indexes to tell whether
//! another project counts a blob too.

use super::SqliteStore;
use crate::quotas::ProjectRange;
use crate::{MetaError, ProjectStorage, QuotaCheck, QuotaStore, Usage};
use async_trait::async_trait;
use berth_oci::Digest;
use rusqlite::{params, Connection, OptionalExtension};

/// `pr(id)`: the project's repositories, from `?1 <= name < ?2` (and, when
/// `?3`, every name without `/`). A constant false `?3` skips that scan.
const PROJECT_REPOS: &str = "pr(id) AS (
        SELECT id FROM repositories WHERE name >= ?1 AND name < ?2
        UNION ALL SELECT id FROM repositories WHERE ?3 AND instr(name, '/') = 0)";

/// Whether the project (`pr`) already counts digest `{d}`.
fn counted_in_project(d: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM manifest_references mr JOIN blobs b ON b.digest = mr.child_digest
                  WHERE mr.child_digest = {d} AND mr.child_is_manifest = 0 AND mr.repository_id IN (SELECT id FROM pr))
          OR EXISTS (SELECT 1 FROM manifests m WHERE m.digest = {d} AND m.repository_id IN (SELECT id FROM pr)))"
    )
}

fn usage(c: &Connection, range: &ProjectRange) -> Result<Usage, MetaError> {
    let sql = format!(
        "WITH {PROJECT_REPOS},
         counted(digest, size) AS (
             SELECT mr.child_digest, b.size FROM pr JOIN manifest_references mr ON mr.repository_id = pr.id
                 JOIN blobs b ON b.digest = mr.child_digest WHERE mr.child_is_manifest = 0
             UNION SELECT m.digest, m.size FROM pr JOIN manifests m ON m.repository_id = pr.id),
         d(digest, size) AS (SELECT digest, max(size) FROM counted GROUP BY digest)
         SELECT count(*), COALESCE(sum(size), 0), COALESCE(sum(CASE WHEN
             EXISTS (SELECT 1 FROM manifest_references o WHERE o.child_digest = d.digest
                     AND o.child_is_manifest = 0 AND o.repository_id NOT IN (SELECT id FROM pr))
             OR EXISTS (SELECT 1 FROM manifests o WHERE o.digest = d.digest AND o.repository_id NOT IN (SELECT id FROM pr))
             THEN size ELSE 0 END), 0)
         FROM d"
    );
    let (count, total, shared) =
        c.prepare_cached(&sql)?.query_row(params![range.lower, range.upper, range.library], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64))
        })?;
    Ok(Usage { total, shared, exclusive: total - shared, blob_count: count })
}

/// Every project's usage as [`usage`] counts it (`library` holding the
/// one-component names), grouped in one pass instead of a query a project.
const ALL_PROJECTS: &str = "WITH rp(project, id) AS (
        SELECT CASE WHEN instr(name, '/') = 0 THEN 'library' ELSE substr(name, 1, instr(name, '/') - 1) END, id
        FROM repositories),
     counted(project, digest, size) AS (
         SELECT rp.project, mr.child_digest, b.size FROM rp JOIN manifest_references mr ON mr.repository_id = rp.id
             JOIN blobs b ON b.digest = mr.child_digest WHERE mr.child_is_manifest = 0
         UNION SELECT rp.project, m.digest, m.size FROM rp JOIN manifests m ON m.repository_id = rp.id),
     d(project, size) AS (SELECT project, max(size) FROM counted GROUP BY project, digest),
     u(project, used) AS (SELECT project, sum(size) FROM d GROUP BY project)
     SELECT p.name, COALESCE(u.used, 0), p.storage_limit FROM projects p LEFT JOIN u ON u.project = p.name
     ORDER BY p.name";

fn limit(c: &Connection, project: &str) -> Result<Option<Option<u64>>, MetaError> {
    Ok(c.prepare_cached("SELECT storage_limit FROM projects WHERE name = ?1")?
        .query_row([project], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .map(|l| l.map(|l| l.max(0) as u64)))
}

#[async_trait]
impl QuotaStore for SqliteStore {
    async fn set_project_quota(&self, project: &str, limit: Option<u64>) -> Result<bool, MetaError> {
        let project = project.to_owned();
        let limit = limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
        self.pool
            .write(move |tx| {
                Ok(tx
                    .prepare_cached("UPDATE projects SET storage_limit = ?2 WHERE name = ?1")?
                    .execute(params![project, limit])?
                    == 1)
            })
            .await
    }

    async fn project_quota(&self, project: &str) -> Result<Option<Option<u64>>, MetaError> {
        let project = project.to_owned();
        self.pool.read(move |c| limit(c, &project)).await
    }

    async fn project_usage(&self, project: &str) -> Result<Usage, MetaError> {
        let range = ProjectRange::of(project);
        self.pool.read(move |c| usage(c, &range)).await
    }

    async fn quota_check(&self, project: &str, items: &[(Digest, u64)]) -> Result<QuotaCheck, MetaError> {
        let project = project.to_owned();
        let items: Vec<(String, u64)> = items.iter().map(|(d, s)| (d.to_string(), *s)).collect();
        let items = serde_json::to_string(&items).map_err(|e| MetaError::Database(e.to_string()))?;
        self.pool
            .read(move |c| {
                let Some(Some(limit)) = limit(c, &project)? else {
                    return Ok(QuotaCheck::default());
                };
                let range = ProjectRange::of(&project);
                let used = usage(c, &range)?.total;
                let sql = format!(
                    "WITH {PROJECT_REPOS},
                     item(digest, size) AS (
                         SELECT json_extract(value, '$[0]'), max(json_extract(value, '$[1]'))
                         FROM json_each(?4) GROUP BY 1)
                     SELECT COALESCE(sum(COALESCE(b.size, item.size)), 0)
                     FROM item LEFT JOIN blobs b ON b.digest = item.digest WHERE NOT {}",
                    counted_in_project("item.digest")
                );
                let adding: i64 = c
                    .prepare_cached(&sql)?
                    .query_row(params![range.lower, range.upper, range.library, items], |r| r.get(0))?;
                Ok(QuotaCheck { limit: Some(limit), used, adding: adding as u64 })
            })
            .await
    }

    async fn all_project_storage(&self) -> Result<Vec<ProjectStorage>, MetaError> {
        self.pool
            .read(|c| {
                let mut st = c.prepare_cached(ALL_PROJECTS)?;
                let rows = st.query_map([], |r| {
                    Ok(ProjectStorage {
                        project: r.get(0)?,
                        used: r.get::<_, i64>(1)?.max(0) as u64,
                        limit: r.get::<_, Option<i64>>(2)?.map(|l| l.max(0) as u64),
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
    }
}
