//! The PostgreSQL metadata store: several Berth nodes sharing one database.
//! Same semantics as [`crate::sqlite::SqliteStore`], checked by the same
//! suite (`tests.rs`).
//!
//! Files: `pool.rs` (connections, driver choice, transaction retry),
//! `schema.rs` (versioned migrations), `manifests.rs` (the transactions
//! whose correctness depends on row locks), `leases.rs` (job leases).
//!
//! # Concurrency
//!
//! Transactions run at PostgreSQL's default, READ COMMITTED: every
//! statement sees what was committed when it started, and an UPDATE/DELETE
//! that waited for a row re-checks its WHERE on the newest version. Where a
//! decision spans statements, the rows it rests on are locked rather than
//! the isolation level raised: SERIALIZABLE would make every push and tag
//! move retryable under contention (predicate locks on index pages abort
//! unrelated pushes to the same repository), while the dependencies here
//! are few and known. They are:
//!
//! - upload progress is one `UPDATE … WHERE offset = expected` (a
//!   compare-and-set: of two writers from the same offset, the second
//!   re-checks after the first commits and updates nothing);
//! - repositories are created with `INSERT … ON CONFLICT DO NOTHING` then,
//!   if that returned nothing, a `SELECT` (a new statement, so it sees the
//!   concurrent creator's committed row: ON CONFLICT waited for it);
//! - `put_manifest` locks `FOR SHARE` the blob links and child manifests it
//!   requires and the manifest row its tags will point at (see
//!   `manifests.rs`), so a concurrent unlink or delete either completes
//!   before (and the put fails or re-inserts) or waits until the put commits.
//!
//! Deadlocks and serialization failures, should any remain, are retried
//! whole (`pool::retrying`).

mod audit;
mod gc;
mod immutability;
mod invalidation;
mod leases;
mod manifests;
mod pool;
mod projects;
mod quotas;
mod retention;
mod robots;
mod schema;
mod system_settings;
#[cfg(test)]
mod tests;
mod users;
mod webhooks;

use crate::{ManifestRecord, MetaError, MetaStore, NewManifest, Referrer, UploadSession};
use async_trait::async_trait;
use berth_oci::{Digest, RepoName, Tag};
use bytes::Bytes;
use deadpool_postgres::{GenericClient, Pool};
use pool::{retrying, TxError};
use tokio_postgres::Row;

pub use invalidation::{Invalidation, InvalidationBus};
pub(crate) use pool::error_from;
pub use pool::PostgresOptions;
pub use schema::latest_version as schema_version;

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connects, then applies any missing migrations.
    pub async fn connect(opts: &PostgresOptions) -> Result<Self, MetaError> {
        let pool = pool::build(opts)?;
        let mut client = pool.get().await.map_err(TxError::from)?;
        schema::migrate(&mut client).await?;
        drop(client);
        Ok(PostgresStore { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, TxError> {
        Ok(self.pool.get().await?)
    }
}

fn parse_digest(s: &str) -> Result<Digest, TxError> {
    s.parse().map_err(|e| TxError::Meta(MetaError::Database(format!("stored digest {s:?} is invalid: {e}"))))
}

async fn repo_id(c: &impl GenericClient, repo: &str) -> Result<Option<i64>, TxError> {
    let st = c.prepare_cached("SELECT id FROM repositories WHERE name = $1").await?;
    Ok(c.query_opt(&st, &[&repo]).await?.map(|r| r.get(0)))
}

/// The repository's id, creating it if needed; safe against concurrent
/// creators (module docs).
async fn ensure_repo(c: &impl GenericClient, repo: &str, now_ms: i64) -> Result<i64, TxError> {
    if let Some(id) = repo_id(c, repo).await? {
        return Ok(id);
    }
    let st = c
        .prepare_cached(
            "INSERT INTO repositories (name, created_ms) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .await?;
    if let Some(row) = c.query_opt(&st, &[&repo, &now_ms]).await? {
        return Ok(row.get(0));
    }
    repo_id(c, repo).await?.ok_or_else(|| MetaError::Database(format!("repository {repo} vanished")).into())
}

async fn link_blob(c: &impl GenericClient, repo_id: i64, digest: &str, now_ms: i64) -> Result<(), TxError> {
    let st = c
        .prepare_cached(
            "INSERT INTO repository_blobs (repository_id, digest, created_ms) VALUES ($1, $2, $3)
             ON CONFLICT (repository_id, digest) DO UPDATE SET created_ms = excluded.created_ms
             WHERE repository_blobs.created_ms < excluded.created_ms",
        )
        .await?;
    c.execute(&st, &[&repo_id, &digest, &now_ms]).await?;
    Ok(())
}

const UPLOAD_COLUMNS: &str = "id, repository, upload_offset, hash_state, created_ms, updated_ms, store_state";

fn upload_from_row(r: &Row) -> UploadSession {
    UploadSession {
        id: r.get(0),
        repository: r.get(1),
        offset: r.get::<_, i64>(2) as u64,
        hash_state: r.get(3),
        created_ms: r.get(4),
        updated_ms: r.get(5),
        store_state: r.get(6),
    }
}

fn manifest_from_row(r: &Row) -> Result<ManifestRecord, TxError> {
    Ok(ManifestRecord {
        digest: parse_digest(r.get(0))?,
        media_type: r.get(1),
        subject: r.get::<_, Option<&str>>(2).map(parse_digest).transpose()?,
        body: Bytes::from(r.get::<_, Vec<u8>>(3)),
    })
}

#[async_trait]
impl MetaStore for PostgresStore {
    fn pool_status(&self) -> crate::PoolStatus {
        let s = self.pool.status();
        crate::PoolStatus { max: Some(s.max_size), open: s.size, idle: s.available, waiting: s.waiting }
    }

    async fn create_upload(&self, u: &UploadSession) -> Result<(), MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(&format!("INSERT INTO uploads ({UPLOAD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"))
                .await?;
            let offset = u.offset as i64;
            c.execute(
                &st,
                &[&u.id, &u.repository, &offset, &u.hash_state, &u.created_ms, &u.updated_ms, &u.store_state],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn get_upload(&self, id: &str) -> Result<Option<UploadSession>, MetaError> {
        let c = self.client().await?;
        let st = c.prepare_cached(&format!("SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1")).await?;
        Ok(c.query_opt(&st, &[&id]).await?.as_ref().map(upload_from_row))
    }

    async fn advance_upload(
        &self,
        id: &str,
        expected_offset: u64,
        offset: u64,
        hash_state: &[u8],
        store_state: &[u8],
        now_ms: i64,
    ) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE uploads SET upload_offset = $3, hash_state = $4, updated_ms = $5, store_state = $6
                     WHERE id = $1 AND upload_offset = $2",
                )
                .await?;
            let (expected, offset) = (expected_offset as i64, offset as i64);
            let n = c.execute(&st, &[&id, &expected, &offset, &hash_state, &now_ms, &store_state]).await?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_upload(&self, id: &str) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM uploads WHERE id = $1").await?;
            Ok(c.execute(&st, &[&id]).await? == 1)
        })
        .await
    }

    async fn stale_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<UploadSession>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE updated_ms < $1 ORDER BY updated_ms LIMIT $2"
            ))
            .await?;
        let rows = c.query(&st, &[&before_ms, &(limit as i64)]).await?;
        Ok(rows.iter().map(upload_from_row).collect())
    }

    async fn commit_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        upload: Option<&str>,
        now_ms: i64,
    ) -> Result<(), MetaError> {
        let (repo, digest) = (repo.as_str(), digest.as_str());
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            if !gc::spare_blob(&tx, digest).await? {
                return Err(MetaError::BlobBusy(parse_digest(digest)?).into());
            }
            let st = tx
                .prepare_cached(
                    "INSERT INTO blobs (digest, size, created_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .await?;
            tx.execute(&st, &[&digest, &(size as i64), &now_ms]).await?;
            let id = ensure_repo(&tx, repo, now_ms).await?;
            link_blob(&tx, id, digest, now_ms).await?;
            if let Some(upload) = upload {
                let st = tx.prepare_cached("DELETE FROM uploads WHERE id = $1").await?;
                tx.execute(&st, &[&upload]).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn mount_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
        now_ms: i64,
    ) -> Result<Option<u64>, MetaError> {
        let (repo, digest, from) = (repo.as_str(), digest.as_str(), from.map(|f| f.as_str()));
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            // The source link (or blob) is locked so that what we copy is
            // still there when we commit, as on SQLite's single writer.
            let row = match from {
                Some(from) => {
                    let st = tx
                        .prepare_cached(
                            "SELECT b.size FROM repositories r
                             JOIN repository_blobs rb ON rb.repository_id = r.id
                             JOIN blobs b ON b.digest = rb.digest
                             WHERE r.name = $1 AND rb.digest = $2
                             FOR SHARE OF rb",
                        )
                        .await?;
                    tx.query_opt(&st, &[&from, &digest]).await?
                }
                None => {
                    let st = tx
                        .prepare_cached(
                            "SELECT b.size FROM blobs b WHERE b.digest = $1
                             AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)
                             FOR SHARE",
                        )
                        .await?;
                    tx.query_opt(&st, &[&digest]).await?
                }
            };
            let Some(size) = row.map(|r| r.get::<_, i64>(0)) else { return Ok(None) };
            let id = ensure_repo(&tx, repo, now_ms).await?;
            link_blob(&tx, id, digest, now_ms).await?;
            tx.commit().await?;
            Ok(Some(size as u64))
        })
        .await
    }

    async fn repo_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT b.size FROM repositories r
                 JOIN repository_blobs rb ON rb.repository_id = r.id
                 JOIN blobs b ON b.digest = rb.digest
                 WHERE r.name = $1 AND rb.digest = $2",
            )
            .await?;
        let row = c.query_opt(&st, &[&repo.as_str(), &digest.as_str()]).await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "DELETE FROM repository_blobs rb USING repositories r
                     WHERE rb.repository_id = r.id AND r.name = $1 AND rb.digest = $2",
                )
                .await?;
            Ok(c.execute(&st, &[&repo.as_str(), &digest.as_str()]).await? == 1)
        })
        .await
    }

    async fn put_manifest(&self, repo: &RepoName, m: &NewManifest, tags: &[Tag], now_ms: i64) -> Result<(), MetaError> {
        let mut tags: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
        // One order for every writer, so two pushes moving the same tags
        // lock them in the same order; and ON CONFLICT DO UPDATE may touch
        // a row only once per statement.
        tags.sort_unstable();
        tags.dedup();
        retrying(|| async {
            let mut c = self.client().await?;
            manifests::put(&mut c, repo.as_str(), m, &tags, now_ms).await
        })
        .await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT m.digest, m.media_type, m.subject, m.body FROM repositories r
                 JOIN manifests m ON m.repository_id = r.id
                 WHERE r.name = $1 AND m.digest = $2",
            )
            .await?;
        let row = c.query_opt(&st, &[&repo.as_str(), &digest.as_str()]).await?;
        Ok(row.as_ref().map(manifest_from_row).transpose()?)
    }

    async fn get_tagged_manifest(&self, repo: &RepoName, tag: &Tag) -> Result<Option<ManifestRecord>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT m.digest, m.media_type, m.subject, m.body FROM repositories r
                 JOIN tags t ON t.repository_id = r.id
                 JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
                 WHERE r.name = $1 AND t.name = $2",
            )
            .await?;
        let row = c.query_opt(&st, &[&repo.as_str(), &tag.as_str()]).await?;
        Ok(row.as_ref().map(manifest_from_row).transpose()?)
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Tag>>, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            manifests::delete(&mut c, repo.as_str(), digest.as_str()).await
        })
        .await
    }

    async fn delete_repository(&self, repo: &RepoName) -> Result<bool, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            // The row lock orders this after (or before) any write holding
            // the repository, as put_manifest's FOR SHARE does.
            let Some(row) =
                tx.query_opt("SELECT id FROM repositories WHERE name = $1 FOR UPDATE", &[&repo.as_str()]).await?
            else {
                return Ok(false);
            };
            let id: i64 = row.get(0);
            for table in ["tags", "manifest_references", "manifests", "repository_blobs"] {
                tx.execute(&format!("DELETE FROM {table} WHERE repository_id = $1"), &[&id]).await?;
            }
            tx.execute("DELETE FROM repositories WHERE id = $1", &[&id]).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "DELETE FROM tags t USING repositories r
                     WHERE t.repository_id = r.id AND r.name = $1 AND t.name = $2",
                )
                .await?;
            Ok(c.execute(&st, &[&repo.as_str(), &tag.as_str()]).await? == 1)
        })
        .await
    }

    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<String>>, MetaError> {
        let c = self.client().await?;
        let Some(id) = repo_id(&c, repo.as_str()).await? else { return Ok(None) };
        let st = c
            .prepare_cached("SELECT name FROM tags WHERE repository_id = $1 AND name > $2 ORDER BY name LIMIT $3")
            .await?;
        let rows = c.query(&st, &[&id, &last.unwrap_or(""), &(limit as i64)]).await?;
        Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT m.digest, m.media_type, m.artifact_type, m.size, m.annotations
                 FROM repositories r JOIN manifests m ON m.repository_id = r.id
                 WHERE r.name = $1 AND m.subject = $2 AND ($3::text IS NULL OR m.artifact_type = $3)
                 ORDER BY m.created_ms, m.digest",
            )
            .await?;
        let rows = c.query(&st, &[&repo.as_str(), &subject.as_str(), &artifact_type]).await?;
        let referrer = |r: &Row| -> Result<Referrer, TxError> {
            Ok(Referrer {
                digest: parse_digest(r.get(0))?,
                media_type: r.get(1),
                artifact_type: r.get(2),
                size: r.get::<_, i64>(3) as u64,
                annotations: r.get(4),
            })
        };
        Ok(rows.iter().map(referrer).collect::<Result<_, _>>()?)
    }

    async fn list_repositories(&self, last: Option<&str>, limit: usize) -> Result<Vec<String>, MetaError> {
        let c = self.client().await?;
        let st = c.prepare_cached("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2").await?;
        let rows = c.query(&st, &[&last.unwrap_or(""), &(limit as i64)]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
