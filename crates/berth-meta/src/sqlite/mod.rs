//! The SQLite metadata store: the embedded default.

mod audit;
mod gc;
mod immutability;
mod leases;
mod pool;
mod projects;
mod quotas;
mod retention;
mod robots;
mod schema;
mod system_settings;
mod users;
mod webhooks;

use crate::{ManifestRecord, MetaError, MetaStore, NewManifest, Referrer, UploadSession};
use async_trait::async_trait;
use berth_oci::{Digest, RepoName, Tag};
use bytes::Bytes;
use pool::Pool;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Arc;

pub use schema::latest_version as schema_version;

#[derive(Clone)]
pub struct SqliteStore {
    pool: Arc<Pool>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        Ok(SqliteStore { pool: Arc::new(Pool::open(path)?) })
    }
}

fn parse_digest(s: String) -> rusqlite::Result<Digest> {
    s.parse().map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
}

fn repo_id(conn: &Connection, repo: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM repositories WHERE name = ?1")?.query_row([repo], |r| r.get(0)).optional()
}

fn ensure_repo(conn: &Connection, repo: &str, now_ms: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached("INSERT INTO repositories (name, created_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")?
        .execute(params![repo, now_ms])?;
    repo_id(conn, repo).map(|id| id.expect("row inserted above"))
}

fn link_blob(conn: &Connection, repo_id: i64, digest: &str, now_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO repository_blobs (repository_id, digest, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT DO UPDATE SET created_ms = excluded.created_ms
         WHERE repository_blobs.created_ms < excluded.created_ms",
    )?
    .execute(params![repo_id, digest, now_ms])?;
    Ok(())
}

fn upload_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UploadSession> {
    Ok(UploadSession {
        id: r.get(0)?,
        repository: r.get(1)?,
        offset: r.get::<_, i64>(2)? as u64,
        hash_state: r.get(3)?,
        created_ms: r.get(4)?,
        updated_ms: r.get(5)?,
        store_state: r.get(6)?,
    })
}

fn manifest_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ManifestRecord> {
    Ok(ManifestRecord {
        digest: parse_digest(r.get(0)?)?,
        media_type: r.get(1)?,
        subject: r.get::<_, Option<String>>(2)?.map(parse_digest).transpose()?,
        body: Bytes::from(r.get::<_, Vec<u8>>(3)?),
    })
}

#[async_trait]
impl MetaStore for SqliteStore {
    fn pool_status(&self) -> crate::PoolStatus {
        self.pool.status()
    }

    async fn create_upload(&self, u: &UploadSession) -> Result<(), MetaError> {
        let u = u.clone();
        self.pool
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO uploads (id, repository, offset, hash_state, created_ms, updated_ms, store_state)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    u.id,
                    u.repository,
                    u.offset as i64,
                    u.hash_state,
                    u.created_ms,
                    u.updated_ms,
                    u.store_state
                ])?;
                Ok(())
            })
            .await
    }

    async fn get_upload(&self, id: &str) -> Result<Option<UploadSession>, MetaError> {
        let id = id.to_owned();
        self.pool
            .read(move |c| {
                Ok(c.prepare_cached(
                    "SELECT id, repository, offset, hash_state, created_ms, updated_ms, store_state FROM uploads WHERE id = ?1",
                )?
                .query_row([id], upload_from_row)
                .optional()?)
            })
            .await
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
        let (id, state, store) = (id.to_owned(), hash_state.to_vec(), store_state.to_vec());
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE uploads SET offset = ?3, hash_state = ?4, updated_ms = ?5, store_state = ?6
                         WHERE id = ?1 AND offset = ?2",
                    )?
                    .execute(params![id, expected_offset as i64, offset as i64, state, now_ms, store])?;
                Ok(n == 1)
            })
            .await
    }

    async fn delete_upload(&self, id: &str) -> Result<bool, MetaError> {
        let id = id.to_owned();
        self.pool.write(move |tx| Ok(tx.prepare_cached("DELETE FROM uploads WHERE id = ?1")?.execute([id])? == 1)).await
    }

    async fn stale_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<UploadSession>, MetaError> {
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, repository, offset, hash_state, created_ms, updated_ms, store_state FROM uploads
                     WHERE updated_ms < ?1 ORDER BY updated_ms LIMIT ?2",
                )?;
                let rows = st.query_map(params![before_ms, limit as i64], upload_from_row)?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn commit_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        size: u64,
        upload: Option<&str>,
        now_ms: i64,
    ) -> Result<(), MetaError> {
        let (repo, digest, upload) = (repo.to_string(), digest.to_string(), upload.map(str::to_owned));
        self.pool
            .write(move |tx| {
                if !gc::spare_blob(tx, &digest)? {
                    return Err(MetaError::BlobBusy(parse_digest(digest)?));
                }
                tx.prepare_cached(
                    "INSERT INTO blobs (digest, size, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )?
                .execute(params![digest, size as i64, now_ms])?;
                let id = ensure_repo(tx, &repo, now_ms)?;
                link_blob(tx, id, &digest, now_ms)?;
                if let Some(upload) = upload {
                    tx.prepare_cached("DELETE FROM uploads WHERE id = ?1")?.execute([upload])?;
                }
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
        let (repo, digest, from) = (repo.to_string(), digest.to_string(), from.map(|f| f.to_string()));
        self.pool
            .write(move |tx| {
                let size: Option<i64> = match &from {
                    Some(from) => tx
                        .prepare_cached(
                            "SELECT b.size FROM repositories r
                             JOIN repository_blobs rb ON rb.repository_id = r.id
                             JOIN blobs b ON b.digest = rb.digest
                             WHERE r.name = ?1 AND rb.digest = ?2",
                        )?
                        .query_row(params![from, digest], |r| r.get(0))
                        .optional()?,
                    None => tx
                        .prepare_cached(
                            "SELECT b.size FROM blobs b WHERE b.digest = ?1
                             AND EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)",
                        )?
                        .query_row([&digest], |r| r.get(0))
                        .optional()?,
                };
                let Some(size) = size else { return Ok(None) };
                let id = ensure_repo(tx, &repo, now_ms)?;
                link_blob(tx, id, &digest, now_ms)?;
                Ok(Some(size as u64))
            })
            .await
    }

    async fn repo_blob(&self, repo: &RepoName, digest: &Digest) -> Result<Option<u64>, MetaError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.pool
            .read(move |c| {
                let size: Option<i64> = c
                    .prepare_cached(
                        "SELECT b.size FROM repositories r
                         JOIN repository_blobs rb ON rb.repository_id = r.id
                         JOIN blobs b ON b.digest = rb.digest
                         WHERE r.name = ?1 AND rb.digest = ?2",
                    )?
                    .query_row(params![repo, digest], |r| r.get(0))
                    .optional()?;
                Ok(size.map(|s| s as u64))
            })
            .await
    }

    async fn unlink_blob(&self, repo: &RepoName, digest: &Digest) -> Result<bool, MetaError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.pool
            .write(move |tx| {
                let Some(id) = repo_id(tx, &repo)? else { return Ok(false) };
                let n = tx
                    .prepare_cached("DELETE FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2")?
                    .execute(params![id, digest])?;
                Ok(n == 1)
            })
            .await
    }

    async fn put_manifest(&self, repo: &RepoName, m: &NewManifest, tags: &[Tag], now_ms: i64) -> Result<(), MetaError> {
        let (repo, m) = (repo.to_string(), m.clone());
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        self.pool
            .write(move |tx| {
                let id = ensure_repo(tx, &repo, now_ms)?;
                let mut has_blob = tx.prepare_cached(
                    "SELECT 1 FROM repository_blobs WHERE repository_id = ?1 AND digest = ?2",
                )?;
                let mut has_manifest =
                    tx.prepare_cached("SELECT 1 FROM manifests WHERE repository_id = ?1 AND digest = ?2")?;
                for child in m.children.iter().filter(|c| c.required) {
                    let key = params![id, child.digest.as_str()];
                    if child.is_manifest && !has_manifest.exists(key)? {
                        return Err(MetaError::ManifestUnknown(child.digest.clone()));
                    }
                    if !child.is_manifest && !has_blob.exists(key)? {
                        return Err(MetaError::BlobUnknown(child.digest.clone()));
                    }
                }
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject,
                             annotations, size, body, created_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![
                        id,
                        m.digest.as_str(),
                        m.media_type,
                        m.artifact_type,
                        m.subject.as_ref().map(|s| s.as_str()),
                        m.annotations,
                        m.body.len() as i64,
                        &m.body[..],
                        now_ms
                    ])?;
                if inserted == 1 {
                    let mut add_ref = tx.prepare_cached(
                        "INSERT INTO manifest_references (repository_id, manifest_digest, child_digest, child_is_manifest)
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    )?;
                    for child in &m.children {
                        add_ref.execute(params![id, m.digest.as_str(), child.digest.as_str(), child.is_manifest])?;
                    }
                }
                let mut set_tag = tx.prepare_cached(
                    "INSERT INTO tags (repository_id, name, digest, updated_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_ms = excluded.updated_ms",
                )?;
                for tag in &tags {
                    set_tag.execute(params![id, tag, m.digest.as_str(), now_ms])?;
                }
                Ok(())
            })
            .await
    }

    async fn get_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<ManifestRecord>, MetaError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.pool
            .read(move |c| {
                Ok(c.prepare_cached(
                    "SELECT m.digest, m.media_type, m.subject, m.body FROM repositories r
                     JOIN manifests m ON m.repository_id = r.id
                     WHERE r.name = ?1 AND m.digest = ?2",
                )?
                .query_row(params![repo, digest], manifest_from_row)
                .optional()?)
            })
            .await
    }

    async fn get_tagged_manifest(&self, repo: &RepoName, tag: &Tag) -> Result<Option<ManifestRecord>, MetaError> {
        let (repo, tag) = (repo.to_string(), tag.to_string());
        self.pool
            .read(move |c| {
                Ok(c.prepare_cached(
                    "SELECT m.digest, m.media_type, m.subject, m.body FROM repositories r
                     JOIN tags t ON t.repository_id = r.id
                     JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest
                     WHERE r.name = ?1 AND t.name = ?2",
                )?
                .query_row(params![repo, tag], manifest_from_row)
                .optional()?)
            })
            .await
    }

    async fn delete_manifest(&self, repo: &RepoName, digest: &Digest) -> Result<Option<Vec<Tag>>, MetaError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.pool
            .write(move |tx| {
                let Some(id) = repo_id(tx, &repo)? else { return Ok(None) };
                let n = tx
                    .prepare_cached("DELETE FROM manifests WHERE repository_id = ?1 AND digest = ?2")?
                    .execute(params![id, digest])?;
                if n == 0 {
                    return Ok(None);
                }
                tx.prepare_cached("DELETE FROM manifest_references WHERE repository_id = ?1 AND manifest_digest = ?2")?
                    .execute(params![id, digest])?;
                let tags: Vec<String> = tx
                    .prepare_cached("DELETE FROM tags WHERE repository_id = ?1 AND digest = ?2 RETURNING name")?
                    .query_map(params![id, digest], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(Some(tags.iter().filter_map(|t| Tag::parse(t)).collect()))
            })
            .await
    }

    async fn delete_repository(&self, repo: &RepoName) -> Result<bool, MetaError> {
        let repo = repo.to_string();
        self.pool
            .write(move |tx| {
                let Some(id) = repo_id(tx, &repo)? else { return Ok(false) };
                for table in ["tags", "manifest_references", "manifests", "repository_blobs"] {
                    tx.prepare_cached(&format!("DELETE FROM {table} WHERE repository_id = ?1"))?.execute([id])?;
                }
                tx.prepare_cached("DELETE FROM repositories WHERE id = ?1")?.execute([id])?;
                Ok(true)
            })
            .await
    }

    async fn delete_tag(&self, repo: &RepoName, tag: &Tag) -> Result<bool, MetaError> {
        let (repo, tag) = (repo.to_string(), tag.to_string());
        self.pool
            .write(move |tx| {
                let Some(id) = repo_id(tx, &repo)? else { return Ok(false) };
                let n = tx
                    .prepare_cached("DELETE FROM tags WHERE repository_id = ?1 AND name = ?2")?
                    .execute(params![id, tag])?;
                Ok(n == 1)
            })
            .await
    }

    async fn list_tags(
        &self,
        repo: &RepoName,
        last: Option<&str>,
        limit: usize,
    ) -> Result<Option<Vec<String>>, MetaError> {
        let (repo, last) = (repo.to_string(), last.unwrap_or("").to_owned());
        self.pool
            .read(move |c| {
                let Some(id) = repo_id(c, &repo)? else { return Ok(None) };
                let tags = c
                    .prepare_cached(
                        "SELECT name FROM tags WHERE repository_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
                    )?
                    .query_map(params![id, last, limit as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(Some(tags))
            })
            .await
    }

    async fn referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, MetaError> {
        let (repo, subject, filter) = (repo.to_string(), subject.to_string(), artifact_type.map(str::to_owned));
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT m.digest, m.media_type, m.artifact_type, m.size, m.annotations
                     FROM repositories r JOIN manifests m ON m.repository_id = r.id
                     WHERE r.name = ?1 AND m.subject = ?2 AND (?3 IS NULL OR m.artifact_type = ?3)
                     ORDER BY m.created_ms, m.digest",
                )?;
                let rows = st.query_map(params![repo, subject, filter], |r| {
                    Ok(Referrer {
                        digest: parse_digest(r.get(0)?)?,
                        media_type: r.get(1)?,
                        artifact_type: r.get(2)?,
                        size: r.get::<_, i64>(3)? as u64,
                        annotations: r.get(4)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }

    async fn list_repositories(&self, last: Option<&str>, limit: usize) -> Result<Vec<String>, MetaError> {
        let last = last.unwrap_or("").to_owned();
        self.pool
            .read(move |c| {
                Ok(c.prepare_cached("SELECT name FROM repositories WHERE name > ?1 ORDER BY name LIMIT ?2")?
                    .query_map(params![last, limit as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::metastore_test_suite!(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("meta.sqlite")).unwrap();
        (store, dir)
    });

    #[test]
    fn migrations_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite");
        drop(SqliteStore::open(&path).unwrap());
        // Reopening runs nothing again and keeps the version.
        drop(SqliteStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v as usize, schema_version());
    }
}
