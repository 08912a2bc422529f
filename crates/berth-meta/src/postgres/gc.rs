//! [`GcStore`] on PostgreSQL. Under READ COMMITTED a removal must not rest
//! on a check made by an earlier snapshot, so each one first locks the rows
//! it will remove, then re-checks in a new statement (which sees everything
//! committed meanwhile), then removes:
//!
//! - links: locked `FOR UPDATE SKIP LOCKED` (a `put_manifest` holding one
//!   `FOR SHARE` is skipped; one arriving later waits for us, then finds the
//!   link gone and fails with `BlobUnknown`, a serial outcome);
//! - untagged manifests: the row `FOR UPDATE`, as a put re-tagging it or an
//!   index requiring it holds it `FOR SHARE`;
//! - blobs: the `blob_gc` row is the meeting point. `commit_blob` and
//!   `touch_blob` upsert it (creating or locking it, waiting for a collector
//!   holding it), read `deleting` from the newest version, and delete it;
//!   the row's lock lasts until they commit. A collector switching a mark
//!   to deleting skips locked rows and re-checks links in the same
//!   statement. A marking `INSERT … ON CONFLICT` racing a commit waits for
//!   it on the key, so the later switch sees the commit's link.

use super::pool::retrying;
use super::{parse_digest, PostgresStore, TxError};
use crate::{DanglingRef, GcBlob, GcLink, GcManifest, GcStore, MetaError, RepoUsage};
use async_trait::async_trait;
use berth_oci::Digest;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

const UNREFERENCED: &str =
    "NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.repository_id = rb.repository_id AND x.child_digest = rb.digest)";

const UNTAGGED: &str = "m.created_ms < $1
    AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest)
    AND NOT EXISTS (SELECT 1 FROM manifest_references x
                    WHERE x.repository_id = m.repository_id AND x.child_digest = m.digest)
    AND NOT (m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests s
                    WHERE s.repository_id = m.repository_id AND s.digest = m.subject))";

/// In the caller's transaction: clears `digest`'s mark, holding its key
/// until commit; false if a collection is deleting it.
pub(super) async fn spare_blob(c: &impl GenericClient, digest: &str) -> Result<bool, TxError> {
    let st = c
        .prepare_cached(
            "INSERT INTO blob_gc (digest, marked_ms, deleting) VALUES ($1, 0, false)
             ON CONFLICT (digest) DO UPDATE SET marked_ms = blob_gc.marked_ms RETURNING deleting",
        )
        .await?;
    let deleting: bool = c.query_one(&st, &[&digest]).await?.get(0);
    if !deleting {
        let st = c.prepare_cached("DELETE FROM blob_gc WHERE digest = $1").await?;
        c.execute(&st, &[&digest]).await?;
    }
    Ok(!deleting)
}

fn blob(r: &Row) -> Result<GcBlob, TxError> {
    Ok(GcBlob { digest: parse_digest(r.get(0))?, size: r.get::<_, i64>(1) as u64 })
}

fn link(r: &Row) -> Result<GcLink, TxError> {
    Ok(GcLink { repository: r.get(0), digest: parse_digest(r.get(1))?, size: r.get::<_, i64>(2) as u64 })
}

fn all<T>(rows: &[Row], f: impl Fn(&Row) -> Result<T, TxError>) -> Result<Vec<T>, MetaError> {
    Ok(rows.iter().map(f).collect::<Result<_, _>>()?)
}

#[async_trait]
impl GcStore for PostgresStore {
    async fn touch_blob(&self, digest: &Digest, _now_ms: i64) -> Result<bool, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let spared = spare_blob(&tx, digest.as_str()).await?;
            tx.commit().await?;
            Ok(spared)
        })
        .await
    }

    async fn untagged_manifests(
        &self,
        before_ms: i64,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<GcManifest>, MetaError> {
        let (a, b) = after.unwrap_or(("", ""));
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT r.name, m.digest, m.size FROM manifests m JOIN repositories r ON r.id = m.repository_id
                 WHERE (r.name, m.digest) > ($2, $3) AND {UNTAGGED} ORDER BY r.name, m.digest LIMIT $4"
            ))
            .await?;
        let rows = c.query(&st, &[&before_ms, &a, &b, &(limit as i64)]).await?;
        all(&rows, |r| {
            Ok(GcManifest { repository: r.get(0), digest: parse_digest(r.get(1))?, size: r.get::<_, i64>(2) as u64 })
        })
    }

    async fn delete_untagged_manifest(&self, repo: &str, digest: &Digest, before_ms: i64) -> Result<bool, MetaError> {
        let digest = digest.as_str();
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let Some(id) = super::repo_id(&tx, repo).await? else { return Ok(false) };
            let lock = tx
                .prepare_cached("SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2 FOR UPDATE")
                .await?;
            if tx.query_opt(&lock, &[&id, &digest]).await?.is_none() {
                return Ok(false);
            }
            let del = tx
                .prepare_cached(&format!(
                    "DELETE FROM manifests m WHERE m.repository_id = $2 AND m.digest = $3 AND {UNTAGGED}"
                ))
                .await?;
            if tx.execute(&del, &[&before_ms, &id, &digest]).await? == 0 {
                return Ok(false);
            }
            let refs = tx
                .prepare_cached("DELETE FROM manifest_references WHERE repository_id = $1 AND manifest_digest = $2")
                .await?;
            tx.execute(&refs, &[&id, &digest]).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn unreferenced_links(
        &self,
        before_ms: i64,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<GcLink>, MetaError> {
        let (a, b) = after.unwrap_or(("", ""));
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT r.name, rb.digest, COALESCE(bl.size, 0) FROM repository_blobs rb
                 JOIN repositories r ON r.id = rb.repository_id LEFT JOIN blobs bl ON bl.digest = rb.digest
                 WHERE rb.created_ms < $1 AND (r.name, rb.digest) > ($2, $3) AND {UNREFERENCED}
                 ORDER BY r.name, rb.digest LIMIT $4"
            ))
            .await?;
        let rows = c.query(&st, &[&before_ms, &a, &b, &(limit as i64)]).await?;
        all(&rows, link)
    }

    async fn remove_unreferenced_links(&self, before_ms: i64, limit: usize) -> Result<Vec<GcLink>, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let lock = tx
                .prepare_cached(&format!(
                    "SELECT rb.repository_id, rb.digest FROM repository_blobs rb
                     WHERE rb.created_ms < $1 AND {UNREFERENCED}
                     ORDER BY rb.repository_id, rb.digest LIMIT $2 FOR UPDATE OF rb SKIP LOCKED"
                ))
                .await?;
            let rows = tx.query(&lock, &[&before_ms, &(limit as i64)]).await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let (ids, digests): (Vec<i64>, Vec<String>) =
                rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1))).unzip();
            // A new statement: sees references committed since the lock's snapshot.
            let del = tx
                .prepare_cached(&format!(
                    "WITH gone AS (
                         DELETE FROM repository_blobs rb USING unnest($1::bigint[], $2::text[]) AS c(id, d)
                         WHERE rb.repository_id = c.id AND rb.digest = c.d AND rb.created_ms < $3 AND {UNREFERENCED}
                         RETURNING rb.repository_id, rb.digest)
                     SELECT r.name, g.digest, COALESCE(bl.size, 0) FROM gone g
                     JOIN repositories r ON r.id = g.repository_id LEFT JOIN blobs bl ON bl.digest = g.digest
                     ORDER BY r.name, g.digest"
                ))
                .await?;
            let rows = tx.query(&del, &[&ids, &digests, &before_ms]).await?;
            let links = rows.iter().map(link).collect::<Result<Vec<_>, _>>()?;
            tx.commit().await?;
            Ok(links)
        })
        .await
    }

    async fn mark_unlinked_blobs(&self, now_ms: i64) -> Result<u64, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "DELETE FROM blob_gc g WHERE NOT g.deleting
                     AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = g.digest)",
                )
                .await?;
            c.execute(&st, &[]).await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO blob_gc (digest, marked_ms, deleting)
                     SELECT b.digest, $1, false FROM blobs b
                     WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
                     ON CONFLICT DO NOTHING",
                )
                .await?;
            c.execute(&st, &[&now_ms]).await?;
            let st = c.prepare_cached("SELECT count(*) FROM blob_gc").await?;
            Ok(c.query_one(&st, &[]).await?.get::<_, i64>(0) as u64)
        })
        .await
    }

    async fn collectable_blobs(
        &self,
        before_ms: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GcBlob>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT b.digest, b.size FROM blobs b WHERE b.digest > $2 AND NOT EXISTS (
                     SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest
                     AND (rb.created_ms >= $1 OR NOT {UNREFERENCED}))
                 ORDER BY b.digest LIMIT $3"
            ))
            .await?;
        let rows = c.query(&st, &[&before_ms, &after.unwrap_or(""), &(limit as i64)]).await?;
        all(&rows, blob)
    }

    async fn begin_blob_deletion(&self, marked_before_ms: i64, limit: usize) -> Result<Vec<GcBlob>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "WITH chosen AS (
                         SELECT g.digest FROM blob_gc g
                         WHERE NOT g.deleting AND g.marked_ms <= $1
                         AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = g.digest)
                         ORDER BY g.digest LIMIT $2 FOR UPDATE SKIP LOCKED),
                     switched AS (
                         UPDATE blob_gc g SET deleting = true FROM chosen WHERE g.digest = chosen.digest
                         RETURNING g.digest)
                     SELECT s.digest, COALESCE(b.size, 0) FROM switched s LEFT JOIN blobs b ON b.digest = s.digest
                     ORDER BY s.digest",
                )
                .await?;
            let rows = c.query(&st, &[&marked_before_ms, &(limit as i64)]).await?;
            rows.iter().map(blob).collect::<Result<Vec<_>, _>>()
        })
        .await
    }

    async fn blobs_being_deleted(&self, after: Option<&str>, limit: usize) -> Result<Vec<GcBlob>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT g.digest, COALESCE(b.size, 0) FROM blob_gc g LEFT JOIN blobs b ON b.digest = g.digest
                 WHERE g.deleting AND g.digest > $1 ORDER BY g.digest LIMIT $2",
            )
            .await?;
        let rows = c.query(&st, &[&after.unwrap_or(""), &(limit as i64)]).await?;
        all(&rows, blob)
    }

    async fn finish_blob_deletion(&self, digests: &[Digest]) -> Result<u64, MetaError> {
        let digests: Vec<&str> = digests.iter().map(|d| d.as_str()).collect();
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare_cached(
                    "WITH gone AS (DELETE FROM blob_gc WHERE digest = ANY($1) AND deleting RETURNING digest)
                     DELETE FROM blobs b USING gone WHERE b.digest = gone.digest",
                )
                .await?;
            let n = tx.execute(&st, &[&digests]).await?;
            tx.commit().await?;
            Ok(n)
        })
        .await
    }

    async fn list_blobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<GcBlob>, MetaError> {
        let c = self.client().await?;
        let st = c.prepare_cached("SELECT digest, size FROM blobs WHERE digest > $1 ORDER BY digest LIMIT $2").await?;
        let rows = c.query(&st, &[&after.unwrap_or(""), &(limit as i64)]).await?;
        all(&rows, blob)
    }

    async fn forget_blob(&self, digest: &Digest) -> Result<bool, MetaError> {
        let digest = digest.as_str();
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            for sql in ["DELETE FROM repository_blobs WHERE digest = $1", "DELETE FROM blob_gc WHERE digest = $1"] {
                let st = tx.prepare_cached(sql).await?;
                tx.execute(&st, &[&digest]).await?;
            }
            let st = tx.prepare_cached("DELETE FROM blobs WHERE digest = $1").await?;
            let n = tx.execute(&st, &[&digest]).await?;
            tx.commit().await?;
            Ok(n == 1)
        })
        .await
    }

    async fn dangling_references(&self, limit: usize) -> Result<Vec<DanglingRef>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT r.name, x.manifest_digest, x.child_digest FROM manifest_references x
                 JOIN repositories r ON r.id = x.repository_id
                 WHERE NOT x.child_is_manifest AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = x.child_digest)
                 ORDER BY r.name, x.manifest_digest, x.child_digest LIMIT $1",
            )
            .await?;
        let rows = c.query(&st, &[&(limit as i64)]).await?;
        Ok(rows.iter().map(|r| DanglingRef { repository: r.get(0), manifest: r.get(1), child: r.get(2) }).collect())
    }

    async fn repository_usage(&self, repo: Option<&str>) -> Result<Vec<RepoUsage>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT r.name,
                    (SELECT count(*) FROM repository_blobs rb WHERE rb.repository_id = r.id),
                    (SELECT count(*) FROM manifests m WHERE m.repository_id = r.id),
                    (SELECT COALESCE(sum(m.size), 0)::bigint FROM manifests m WHERE m.repository_id = r.id),
                    (SELECT COALESCE(sum(b.size), 0)::bigint FROM repository_blobs rb
                     JOIN blobs b ON b.digest = rb.digest WHERE rb.repository_id = r.id),
                    (SELECT COALESCE(sum(b.size), 0)::bigint FROM repository_blobs rb
                     JOIN blobs b ON b.digest = rb.digest
                     WHERE rb.repository_id = r.id AND EXISTS (SELECT 1 FROM repository_blobs o
                         WHERE o.digest = rb.digest AND o.repository_id <> r.id))
                 FROM repositories r WHERE $1::text IS NULL OR r.name = $1 ORDER BY r.name",
            )
            .await?;
        let rows = c.query(&st, &[&repo]).await?;
        Ok(rows
            .iter()
            .map(|r| {
                let n = |i: usize| r.get::<_, i64>(i) as u64;
                RepoUsage {
                    repository: r.get(0),
                    blobs: n(1),
                    manifests: n(2),
                    manifest_bytes: n(3),
                    logical_bytes: n(4),
                    shared_bytes: n(5),
                    exclusive_bytes: n(4) - n(5),
                }
            })
            .collect())
    }
}
