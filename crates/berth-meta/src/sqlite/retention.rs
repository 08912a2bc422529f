//! [`RetentionStore`] on SQLite.

use super::{parse_digest, SqliteStore};
use crate::retention::split_list;
use crate::{MetaError, RetentionArtifact, RetentionItem, RetentionRun, RetentionStore, StoredPolicy};
use async_trait::async_trait;
use berth_oci::Digest;
use rusqlite::{params, OptionalExtension};

fn policy_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredPolicy> {
    Ok(StoredPolicy { project: r.get(0)?, policy: r.get(1)?, cron: r.get(2)?, updated_ms: r.get(3)? })
}

fn run_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RetentionRun> {
    Ok(RetentionRun {
        id: r.get(0)?,
        project: r.get(1)?,
        dry_run: r.get(2)?,
        started_ms: r.get(3)?,
        finished_ms: r.get(4)?,
        status: r.get(5)?,
    })
}

/// The project's repositories: `<project>/…`, and for `library` also the
/// one-component names (crate::project_of).
const IN_PROJECT: &str =
    "(substr(r.name, 1, length(?1) + 1) = ?1 || '/' OR (?1 = 'library' AND instr(r.name, '/') = 0))";

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn set_retention_policy(
        &self,
        project: &str,
        policy: &str,
        cron: Option<&str>,
        now_ms: i64,
    ) -> Result<(), MetaError> {
        let (project, policy, cron) = (project.to_owned(), policy.to_owned(), cron.map(str::to_owned));
        self.pool
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO retention_policies (project, policy, cron, updated_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (project) DO UPDATE SET policy = excluded.policy, cron = excluded.cron,
                     updated_ms = excluded.updated_ms",
                )?
                .execute(params![project, policy, cron, now_ms])?;
                Ok(())
            })
            .await
    }

    async fn retention_policy(&self, project: &str) -> Result<Option<StoredPolicy>, MetaError> {
        let project = project.to_owned();
        self.pool
            .read(move |c| {
                Ok(c.prepare_cached(
                    "SELECT project, policy, cron, updated_ms FROM retention_policies WHERE project = ?1",
                )?
                .query_row([project], policy_from_row)
                .optional()?)
            })
            .await
    }

    async fn delete_retention_policy(&self, project: &str) -> Result<bool, MetaError> {
        let project = project.to_owned();
        self.pool
            .write(move |tx| {
                Ok(tx.prepare_cached("DELETE FROM retention_policies WHERE project = ?1")?.execute([project])? == 1)
            })
            .await
    }

    async fn scheduled_retention_policies(&self) -> Result<Vec<StoredPolicy>, MetaError> {
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT project, policy, cron, updated_ms FROM retention_policies
                     WHERE cron IS NOT NULL ORDER BY project",
                )?;
                let rows = st.query_map([], policy_from_row)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn retention_artifacts(&self, project: &str) -> Result<Vec<RetentionArtifact>, MetaError> {
        let project = project.to_owned();
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT r.name, m.digest, m.media_type, m.subject,
                            max(m.created_ms, coalesce((SELECT max(t.updated_ms) FROM tags t
                                WHERE t.repository_id = m.repository_id AND t.digest = m.digest), 0)),
                            m.last_pulled_ms,
                            (SELECT group_concat(t.name, char(10)) FROM tags t
                                WHERE t.repository_id = m.repository_id AND t.digest = m.digest),
                            (SELECT group_concat(x.child_digest, char(10)) FROM manifest_references x
                                WHERE x.repository_id = m.repository_id AND x.manifest_digest = m.digest
                                AND x.child_is_manifest = 1)
                     FROM repositories r JOIN manifests m ON m.repository_id = r.id
                     WHERE {IN_PROJECT} ORDER BY r.name, m.digest"
                ))?;
                let rows = st.query_map([project], |r| {
                    let children = split_list(r.get(7)?).into_iter().map(parse_digest).collect::<Result<_, _>>()?;
                    Ok(RetentionArtifact {
                        repository: r.get(0)?,
                        digest: parse_digest(r.get(1)?)?,
                        media_type: r.get(2)?,
                        subject: r.get::<_, Option<String>>(3)?.map(parse_digest).transpose()?,
                        pushed_ms: r.get(4)?,
                        last_pulled_ms: r.get(5)?,
                        tags: split_list(r.get(6)?),
                        children,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn record_pulls(&self, pulls: &[(String, Digest, i64)]) -> Result<(), MetaError> {
        let pulls: Vec<(String, String, i64)> = pulls.iter().map(|(r, d, t)| (r.clone(), d.to_string(), *t)).collect();
        self.pool
            .write(move |tx| {
                let mut st = tx.prepare_cached(
                    "UPDATE manifests SET last_pulled_ms = ?3
                     WHERE repository_id = (SELECT id FROM repositories WHERE name = ?1) AND digest = ?2
                     AND last_pulled_ms < ?3",
                )?;
                for (repo, digest, ms) in pulls {
                    st.execute(params![repo, digest, ms])?;
                }
                Ok(())
            })
            .await
    }

    async fn start_retention_run(&self, project: &str, dry_run: bool, started_ms: i64) -> Result<i64, MetaError> {
        let project = project.to_owned();
        self.pool
            .write(move |tx| {
                Ok(tx
                    .prepare_cached(
                        "INSERT INTO retention_runs (project, dry_run, started_ms, status)
                         VALUES (?1, ?2, ?3, 'running') RETURNING id",
                    )?
                    .query_row(params![project, dry_run, started_ms], |r| r.get(0))?)
            })
            .await
    }

    async fn add_retention_items(&self, run: i64, items: &[RetentionItem]) -> Result<(), MetaError> {
        let items = items.to_vec();
        self.pool
            .write(move |tx| {
                let next: i64 = tx
                    .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM retention_items WHERE run_id = ?1")?
                    .query_row([run], |r| r.get(0))?;
                let mut st = tx.prepare_cached(
                    "INSERT INTO retention_items (run_id, seq, repository, digest, tags, retained, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for (i, it) in items.iter().enumerate() {
                    st.execute(params![
                        run,
                        next + i as i64,
                        it.repository,
                        it.digest.to_string(),
                        it.tags.join("\n"),
                        it.retained,
                        it.reason
                    ])?;
                }
                Ok(())
            })
            .await
    }

    async fn finish_retention_run(&self, run: i64, status: &str, finished_ms: i64) -> Result<bool, MetaError> {
        let status = status.to_owned();
        self.pool
            .write(move |tx| {
                Ok(tx
                    .prepare_cached("UPDATE retention_runs SET status = ?2, finished_ms = ?3 WHERE id = ?1")?
                    .execute(params![run, status, finished_ms])?
                    == 1)
            })
            .await
    }

    async fn retention_runs(&self, project: &str, limit: usize) -> Result<Vec<RetentionRun>, MetaError> {
        let project = project.to_owned();
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, project, dry_run, started_ms, finished_ms, status FROM retention_runs
                     WHERE project = ?1 ORDER BY id DESC LIMIT ?2",
                )?;
                let rows = st.query_map(params![project, limit as i64], run_from_row)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn retention_runs_before(
        &self,
        project: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RetentionRun>, MetaError> {
        let project = project.to_owned();
        let before = before.unwrap_or(i64::MAX);
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, project, dry_run, started_ms, finished_ms, status FROM retention_runs
                     WHERE project = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
                )?;
                let rows = st.query_map(params![project, before, limit as i64], run_from_row)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn retention_run(&self, run: i64) -> Result<Option<RetentionRun>, MetaError> {
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, project, dry_run, started_ms, finished_ms, status FROM retention_runs WHERE id = ?1",
                )?;
                Ok(st.query_row([run], run_from_row).optional()?)
            })
            .await
    }

    async fn retention_items(&self, run: i64) -> Result<Vec<RetentionItem>, MetaError> {
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT repository, digest, tags, retained, reason FROM retention_items
                     WHERE run_id = ?1 ORDER BY seq",
                )?;
                let rows = st.query_map([run], |r| {
                    Ok(RetentionItem {
                        repository: r.get(0)?,
                        digest: parse_digest(r.get(1)?)?,
                        tags: r.get::<_, String>(2)?.split('\n').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
                        retained: r.get(3)?,
                        reason: r.get(4)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }
}
