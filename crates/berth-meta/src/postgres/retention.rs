//! [`RetentionStore`] on PostgreSQL.

use super::{parse_digest, PostgresStore, TxError};
use crate::postgres::pool::retrying;
use crate::retention::split_list;
use crate::{MetaError, RetentionArtifact, RetentionItem, RetentionRun, RetentionStore, StoredPolicy};
use async_trait::async_trait;
use berth_oci::Digest;
use std::collections::BTreeMap;
use tokio_postgres::Row;

fn policy_from_row(r: &Row) -> StoredPolicy {
    StoredPolicy { project: r.get(0), policy: r.get(1), cron: r.get(2), updated_ms: r.get(3) }
}

fn run_from_row(r: &Row) -> RetentionRun {
    RetentionRun {
        id: r.get(0),
        project: r.get(1),
        dry_run: r.get(2),
        started_ms: r.get(3),
        finished_ms: r.get(4),
        status: r.get(5),
    }
}

fn artifact_from_row(r: &Row) -> Result<RetentionArtifact, TxError> {
    Ok(RetentionArtifact {
        repository: r.get(0),
        digest: parse_digest(r.get(1))?,
        media_type: r.get(2),
        subject: r.get::<_, Option<&str>>(3).map(parse_digest).transpose()?,
        pushed_ms: r.get(4),
        last_pulled_ms: r.get(5),
        tags: split_list(r.get(6)),
        children: split_list(r.get(7)).iter().map(|d| parse_digest(d)).collect::<Result<_, _>>()?,
    })
}

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn set_retention_policy(
        &self,
        project: &str,
        policy: &str,
        cron: Option<&str>,
        now_ms: i64,
    ) -> Result<(), MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO retention_policies (project, policy, cron, updated_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (project) DO UPDATE SET policy = excluded.policy, cron = excluded.cron,
                     updated_ms = excluded.updated_ms",
                )
                .await?;
            c.execute(&st, &[&project, &policy, &cron, &now_ms]).await?;
            Ok(())
        })
        .await
    }

    async fn retention_policy(&self, project: &str) -> Result<Option<StoredPolicy>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached("SELECT project, policy, cron, updated_ms FROM retention_policies WHERE project = $1")
                .await?;
            Ok(c.query_opt(&st, &[&project]).await?.map(|r| policy_from_row(&r)))
        })
        .await
    }

    async fn delete_retention_policy(&self, project: &str) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM retention_policies WHERE project = $1").await?;
            Ok(c.execute(&st, &[&project]).await? == 1)
        })
        .await
    }

    async fn scheduled_retention_policies(&self) -> Result<Vec<StoredPolicy>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT project, policy, cron, updated_ms FROM retention_policies
                     WHERE cron IS NOT NULL ORDER BY project",
                )
                .await?;
            Ok(c.query(&st, &[]).await?.iter().map(policy_from_row).collect())
        })
        .await
    }

    async fn retention_artifacts(&self, project: &str) -> Result<Vec<RetentionArtifact>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            // The project's repositories: `<project>/…`, and for `library`
            // also the one-component names (crate::project_of).
            let st = c
                .prepare_cached(
                    "SELECT r.name, m.digest, m.media_type, m.subject,
                            GREATEST(m.created_ms, coalesce((SELECT max(t.updated_ms) FROM tags t
                                WHERE t.repository_id = m.repository_id AND t.digest = m.digest), 0)),
                            m.last_pulled_ms,
                            (SELECT string_agg(t.name, E'\\n') FROM tags t
                                WHERE t.repository_id = m.repository_id AND t.digest = m.digest),
                            (SELECT string_agg(x.child_digest, E'\\n') FROM manifest_references x
                                WHERE x.repository_id = m.repository_id AND x.manifest_digest = m.digest
                                AND x.child_is_manifest)
                     FROM repositories r JOIN manifests m ON m.repository_id = r.id
                     WHERE starts_with(r.name, $1::text || '/')
                        OR ($1::text = 'library' AND strpos(r.name, '/') = 0)
                     ORDER BY r.name, m.digest",
                )
                .await?;
            c.query(&st, &[&project]).await?.iter().map(artifact_from_row).collect()
        })
        .await
    }

    async fn record_pulls(&self, pulls: &[(String, Digest, i64)]) -> Result<(), MetaError> {
        // One row per manifest (the latest pull), sorted so that nodes
        // flushing at once lock rows in the same order.
        let mut latest: BTreeMap<(&str, String), i64> = BTreeMap::new();
        for (repo, digest, ms) in pulls {
            let e = latest.entry((repo.as_str(), digest.to_string())).or_insert(*ms);
            *e = (*e).max(*ms);
        }
        let repos: Vec<&str> = latest.keys().map(|k| k.0).collect();
        let digests: Vec<&str> = latest.keys().map(|k| k.1.as_str()).collect();
        let times: Vec<i64> = latest.values().copied().collect();
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE manifests m SET last_pulled_ms = p.ms
                     FROM unnest($1::text[], $2::text[], $3::bigint[]) AS p(repo, digest, ms), repositories r
                     WHERE r.name = p.repo AND m.repository_id = r.id AND m.digest = p.digest
                       AND m.last_pulled_ms < p.ms",
                )
                .await?;
            c.execute(&st, &[&repos, &digests, &times]).await?;
            Ok(())
        })
        .await
    }

    async fn start_retention_run(&self, project: &str, dry_run: bool, started_ms: i64) -> Result<i64, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO retention_runs (project, dry_run, started_ms, status)
                     VALUES ($1, $2, $3, 'running') RETURNING id",
                )
                .await?;
            Ok(c.query_one(&st, &[&project, &dry_run, &started_ms]).await?.get(0))
        })
        .await
    }

    async fn add_retention_items(&self, run: i64, items: &[RetentionItem]) -> Result<(), MetaError> {
        let repos: Vec<&str> = items.iter().map(|i| i.repository.as_str()).collect();
        let digests: Vec<String> = items.iter().map(|i| i.digest.to_string()).collect();
        let tags: Vec<String> = items.iter().map(|i| i.tags.join("\n")).collect();
        let retained: Vec<bool> = items.iter().map(|i| i.retained).collect();
        let reasons: Vec<&str> = items.iter().map(|i| i.reason.as_str()).collect();
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            // Runs are written by one holder at a time; the lock keeps
            // sequence numbers unique even if two wrote to one run.
            tx.execute("SELECT 1 FROM retention_runs WHERE id = $1 FOR UPDATE", &[&run]).await?;
            let st = tx
                .prepare_cached(
                    "INSERT INTO retention_items (run_id, seq, repository, digest, tags, retained, reason)
                     SELECT $1, (SELECT coalesce(max(seq), 0) FROM retention_items WHERE run_id = $1) + i.n,
                            i.repository, i.digest, i.tags, i.retained, i.reason
                     FROM unnest($2::text[], $3::text[], $4::text[], $5::bool[], $6::text[])
                          WITH ORDINALITY AS i(repository, digest, tags, retained, reason, n)",
                )
                .await?;
            tx.execute(&st, &[&run, &repos, &digests, &tags, &retained, &reasons]).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn finish_retention_run(&self, run: i64, status: &str, finished_ms: i64) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c.prepare_cached("UPDATE retention_runs SET status = $2, finished_ms = $3 WHERE id = $1").await?;
            Ok(c.execute(&st, &[&run, &status, &finished_ms]).await? == 1)
        })
        .await
    }

    async fn retention_runs(&self, project: &str, limit: usize) -> Result<Vec<RetentionRun>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT id, project, dry_run, started_ms, finished_ms, status FROM retention_runs
                     WHERE project = $1 ORDER BY id DESC LIMIT $2",
                )
                .await?;
            Ok(c.query(&st, &[&project, &(limit as i64)]).await?.iter().map(run_from_row).collect())
        })
        .await
    }

    async fn retention_runs_before(
        &self,
        project: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RetentionRun>, MetaError> {
        let before = before.unwrap_or(i64::MAX);
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT id, project, dry_run, started_ms, finished_ms, status FROM retention_runs
                     WHERE project = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                )
                .await?;
            Ok(c.query(&st, &[&project, &before, &(limit as i64)]).await?.iter().map(run_from_row).collect())
        })
        .await
    }

    async fn retention_run(&self, run: i64) -> Result<Option<RetentionRun>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT id, project, dry_run, started_ms, finished_ms, status FROM retention_runs WHERE id = $1",
                )
                .await?;
            Ok(c.query_opt(&st, &[&run]).await?.as_ref().map(run_from_row))
        })
        .await
    }

    async fn retention_items(&self, run: i64) -> Result<Vec<RetentionItem>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT repository, digest, tags, retained, reason FROM retention_items
                     WHERE run_id = $1 ORDER BY seq",
                )
                .await?;
            c.query(&st, &[&run])
                .await?
                .iter()
                .map(|r| {
                    Ok(RetentionItem {
                        repository: r.get(0),
                        digest: parse_digest(r.get(1))?,
                        tags: r.get::<_, &str>(2).split('\n').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
                        retained: r.get(3),
                        reason: r.get(4),
                    })
                })
                .collect()
        })
        .await
    }
}
