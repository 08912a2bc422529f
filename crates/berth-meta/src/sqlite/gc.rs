//! [`GcStore`] on SQLite. Every write runs on the single writer connection,
//! so each re-check and the removal it guards are one transaction with no
//! concurrent writer: the protocol of `crate::gc` holds trivially here.

use super::{parse_digest, SqliteStore};
use crate::{DanglingRef, GcBlob, GcLink, GcManifest, GcStore, MetaError, RepoUsage};
use async_trait::async_trait;
use berth_oci::Digest;
use rusqlite::{params, Connection};

/// A link no manifest of its repository references.
const UNREFERENCED: &str =
    "NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.repository_id = rb.repository_id AND x.child_digest = rb.digest)";

/// Clears `digest`'s mark; false if a collection is deleting it.
pub(super) fn spare_blob(tx: &Connection, digest: &str) -> rusqlite::Result<bool> {
    let deleting = tx.prepare_cached("SELECT 1 FROM blob_gc WHERE digest = ?1 AND deleting")?.exists([digest])?;
    if !deleting {
        tx.prepare_cached("DELETE FROM blob_gc WHERE digest = ?1")?.execute([digest])?;
    }
    Ok(!deleting)
}

fn blob_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GcBlob> {
    Ok(GcBlob { digest: parse_digest(r.get(0)?)?, size: r.get::<_, i64>(1)? as u64 })
}

fn link_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GcLink> {
    Ok(GcLink { repository: r.get(0)?, digest: parse_digest(r.get(1)?)?, size: r.get::<_, i64>(2)? as u64 })
}

fn unreferenced_links(
    c: &Connection,
    before: i64,
    after: (&str, &str),
    limit: usize,
) -> Result<Vec<GcLink>, MetaError> {
    let sql = format!(
        "SELECT r.name, rb.digest, COALESCE(b.size, 0) FROM repository_blobs rb
         JOIN repositories r ON r.id = rb.repository_id LEFT JOIN blobs b ON b.digest = rb.digest
         WHERE rb.created_ms < ?1 AND (r.name, rb.digest) > (?2, ?3) AND {UNREFERENCED}
         ORDER BY r.name, rb.digest LIMIT ?4"
    );
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(params![before, after.0, after.1, limit as i64], link_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const UNTAGGED: &str = "m.created_ms < ?1
    AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository_id = m.repository_id AND t.digest = m.digest)
    AND NOT EXISTS (SELECT 1 FROM manifest_references x
                    WHERE x.repository_id = m.repository_id AND x.child_digest = m.digest)
    AND NOT (m.subject IS NOT NULL AND EXISTS (SELECT 1 FROM manifests s
                    WHERE s.repository_id = m.repository_id AND s.digest = m.subject))";

#[async_trait]
impl GcStore for SqliteStore {
    async fn touch_blob(&self, digest: &Digest, _now_ms: i64) -> Result<bool, MetaError> {
        let digest = digest.to_string();
        self.pool.write(move |tx| Ok(spare_blob(tx, &digest)?)).await
    }

    async fn untagged_manifests(
        &self,
        before_ms: i64,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<GcManifest>, MetaError> {
        let (a, b) = after.map_or((String::new(), String::new()), |(a, b)| (a.to_owned(), b.to_owned()));
        self.pool
            .read(move |c| {
                let sql = format!(
                    "SELECT r.name, m.digest, m.size FROM manifests m JOIN repositories r ON r.id = m.repository_id
                     WHERE (r.name, m.digest) > (?2, ?3) AND {UNTAGGED} ORDER BY r.name, m.digest LIMIT ?4"
                );
                let mut st = c.prepare_cached(&sql)?;
                let rows = st.query_map(params![before_ms, a, b, limit as i64], |r| {
                    Ok(GcManifest {
                        repository: r.get(0)?,
                        digest: parse_digest(r.get(1)?)?,
                        size: r.get::<_, i64>(2)? as u64,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn delete_untagged_manifest(&self, repo: &str, digest: &Digest, before_ms: i64) -> Result<bool, MetaError> {
        let (repo, digest) = (repo.to_owned(), digest.to_string());
        self.pool
            .write(move |tx| {
                let Some(id) = super::repo_id(tx, &repo)? else { return Ok(false) };
                let sql =
                    format!("DELETE FROM manifests AS m WHERE m.repository_id = ?2 AND m.digest = ?3 AND {UNTAGGED}");
                if tx.prepare_cached(&sql)?.execute(params![before_ms, id, digest])? == 0 {
                    return Ok(false);
                }
                tx.prepare_cached("DELETE FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2")?
                    .execute(params![id, digest])?;
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
        let (a, b) = after.map_or((String::new(), String::new()), |(a, b)| (a.to_owned(), b.to_owned()));
        self.pool.read(move |c| unreferenced_links(c, before_ms, (&a, &b), limit)).await
    }

    async fn remove_unreferenced_links(&self, before_ms: i64, limit: usize) -> Result<Vec<GcLink>, MetaError> {
        self.pool
            .write(move |tx| {
                let links = unreferenced_links(tx, before_ms, ("", ""), limit)?;
                let mut del = tx.prepare_cached(
                    "DELETE FROM repository_blobs WHERE digest = ?2
                     AND repository_id = (SELECT id FROM repositories WHERE name = ?1)",
                )?;
                for l in &links {
                    del.execute(params![l.repository, l.digest.as_str()])?;
                }
                Ok(links)
            })
            .await
    }

    async fn mark_unlinked_blobs(&self, now_ms: i64) -> Result<u64, MetaError> {
        self.pool
            .write(move |tx| {
                tx.prepare_cached(
                    "DELETE FROM blob_gc WHERE NOT deleting
                     AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = blob_gc.digest)",
                )?
                .execute([])?;
                tx.prepare_cached(
                    "INSERT INTO blob_gc (digest, marked_ms, deleting)
                     SELECT b.digest, ?1, 0 FROM blobs b
                     WHERE NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
                     ON CONFLICT DO NOTHING",
                )?
                .execute([now_ms])?;
                let n: i64 = tx.prepare_cached("SELECT count(*) FROM blob_gc")?.query_row([], |r| r.get(0))?;
                Ok(n as u64)
            })
            .await
    }

    async fn collectable_blobs(
        &self,
        before_ms: i64,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GcBlob>, MetaError> {
        let after = after.unwrap_or("").to_owned();
        self.pool
            .read(move |c| {
                let sql = format!(
                    "SELECT b.digest, b.size FROM blobs b WHERE b.digest > ?2 AND NOT EXISTS (
                         SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest
                         AND (rb.created_ms >= ?1 OR NOT {UNREFERENCED}))
                     ORDER BY b.digest LIMIT ?3"
                );
                let mut st = c.prepare_cached(&sql)?;
                let rows = st.query_map(params![before_ms, after, limit as i64], blob_row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn begin_blob_deletion(&self, marked_before_ms: i64, limit: usize) -> Result<Vec<GcBlob>, MetaError> {
        self.pool
            .write(move |tx| {
                let blobs: Vec<GcBlob> = tx
                    .prepare_cached(
                        "SELECT g.digest, COALESCE(b.size, 0) FROM blob_gc g LEFT JOIN blobs b ON b.digest = g.digest
                         WHERE NOT g.deleting AND g.marked_ms <= ?1
                         AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = g.digest)
                         ORDER BY g.digest LIMIT ?2",
                    )?
                    .query_map(params![marked_before_ms, limit as i64], blob_row)?
                    .collect::<Result<_, _>>()?;
                let mut set = tx.prepare_cached("UPDATE blob_gc SET deleting = 1 WHERE digest = ?1")?;
                for b in &blobs {
                    set.execute([b.digest.as_str()])?;
                }
                Ok(blobs)
            })
            .await
    }

    async fn blobs_being_deleted(&self, after: Option<&str>, limit: usize) -> Result<Vec<GcBlob>, MetaError> {
        let after = after.unwrap_or("").to_owned();
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT g.digest, COALESCE(b.size, 0) FROM blob_gc g LEFT JOIN blobs b ON b.digest = g.digest
                     WHERE g.deleting AND g.digest > ?1 ORDER BY g.digest LIMIT ?2",
                )?;
                let rows = st.query_map(params![after, limit as i64], blob_row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn finish_blob_deletion(&self, digests: &[Digest]) -> Result<u64, MetaError> {
        let digests: Vec<String> = digests.iter().map(|d| d.to_string()).collect();
        self.pool
            .write(move |tx| {
                let mut n = 0;
                for d in &digests {
                    if tx.prepare_cached("DELETE FROM blob_gc WHERE digest = ?1 AND deleting")?.execute([d])? == 1 {
                        n += tx.prepare_cached("DELETE FROM blobs WHERE digest = ?1")?.execute([d])? as u64;
                    }
                }
                Ok(n)
            })
            .await
    }

    async fn list_blobs(&self, after: Option<&str>, limit: usize) -> Result<Vec<GcBlob>, MetaError> {
        let after = after.unwrap_or("").to_owned();
        self.pool
            .read(move |c| {
                let mut st =
                    c.prepare_cached("SELECT digest, size FROM blobs WHERE digest > ?1 ORDER BY digest LIMIT ?2")?;
                let rows = st.query_map(params![after, limit as i64], blob_row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn forget_blob(&self, digest: &Digest) -> Result<bool, MetaError> {
        let digest = digest.to_string();
        self.pool
            .write(move |tx| {
                tx.prepare_cached("DELETE FROM repository_blobs WHERE digest = ?1")?.execute([&digest])?;
                tx.prepare_cached("DELETE FROM blob_gc WHERE digest = ?1")?.execute([&digest])?;
                Ok(tx.prepare_cached("DELETE FROM blobs WHERE digest = ?1")?.execute([&digest])? == 1)
            })
            .await
    }

    async fn dangling_references(&self, limit: usize) -> Result<Vec<DanglingRef>, MetaError> {
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT r.name, x.manifest_digest, x.child_digest FROM manifest_references x
                     JOIN repositories r ON r.id = x.repository_id
                     WHERE NOT x.child_is_manifest AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = x.child_digest)
                     ORDER BY r.name, x.manifest_digest, x.child_digest LIMIT ?1",
                )?;
                let rows = st.query_map([limit as i64], |r| {
                    Ok(DanglingRef { repository: r.get(0)?, manifest: r.get(1)?, child: r.get(2)? })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn repository_usage(&self, repo: Option<&str>) -> Result<Vec<RepoUsage>, MetaError> {
        let repo = repo.map(str::to_owned);
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT r.name,
                        (SELECT count(*) FROM repository_blobs rb WHERE rb.repository_id = r.id),
                        (SELECT count(*) FROM manifests m WHERE m.repository_id = r.id),
                        (SELECT COALESCE(sum(m.size), 0) FROM manifests m WHERE m.repository_id = r.id),
                        (SELECT COALESCE(sum(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                         WHERE rb.repository_id = r.id),
                        (SELECT COALESCE(sum(b.size), 0) FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
                         WHERE rb.repository_id = r.id AND EXISTS (SELECT 1 FROM repository_blobs o
                             WHERE o.digest = rb.digest AND o.repository_id <> r.id))
                     FROM repositories r WHERE ?1 IS NULL OR r.name = ?1 ORDER BY r.name",
                )?;
                let rows = st.query_map([repo], |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v as u64);
                    let (logical, shared) = (n(4)?, n(5)?);
                    Ok(RepoUsage {
                        repository: r.get(0)?,
                        blobs: n(1)?,
                        manifests: n(2)?,
                        manifest_bytes: n(3)?,
                        logical_bytes: logical,
                        shared_bytes: shared,
                        exclusive_bytes: logical - shared,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }
}
