//! The manifest transactions whose correctness rests on row locks.
//!
//! `put` checks, then writes; under READ COMMITTED a row it checked could
//! be deleted by another transaction before it commits. It therefore locks
//! `FOR SHARE`, in the transaction that writes:
//!
//! - the blob links and child manifests it requires: an `unlink_blob` or
//!   `delete_manifest` of one of them waits for the put to commit, or, if it
//!   came first, the put finds the row gone and fails with the same error as
//!   on SQLite. Today's deleters do not look at manifests, so without the
//!   lock the outcome would still match *a* serial order; the lock is what
//!   makes "lock the link `FOR UPDATE`, then check `manifest_references`,
//!   then delete" a correct protocol for garbage collection, which will
//!   decide on exactly that (a share lock is taken before the references
//!   are written, and an update lock waits for it).
//! - the manifest row itself when it already exists (`ON CONFLICT DO
//!   NOTHING` takes no lock): otherwise a concurrent `delete_manifest` could
//!   remove it and its tags between our conflict and our tag upsert, leaving
//!   a tag that points at nothing, an outcome no serial order gives. If the
//!   row vanished before we could lock it, the insert is simply retried.
//!
//! `delete` deletes the manifest first (waiting for any put holding it),
//! then its tags in a new statement, which therefore also sees the tags a
//! put committed while it waited.

use super::{ensure_repo, repo_id, TxError};
use crate::{MetaError, NewManifest};
use berth_oci::Tag;
use deadpool_postgres::Client;
use std::collections::HashSet;

pub(super) async fn put(
    c: &mut Client,
    repo: &str,
    m: &NewManifest,
    tags: &[&str],
    now_ms: i64,
) -> Result<(), TxError> {
    let tx = c.transaction().await?;
    let id = ensure_repo(&tx, repo, now_ms).await?;

    let required = |manifest: bool| -> Vec<&str> {
        m.children.iter().filter(|c| c.required && c.is_manifest == manifest).map(|c| c.digest.as_str()).collect()
    };
    let (blobs, children) = (required(false), required(true));
    let mut present = HashSet::new();
    for (is_manifest, digests, sql) in [
        (
            false,
            &blobs,
            "SELECT digest FROM repository_blobs WHERE repository_id = $1 AND digest = ANY($2)
             ORDER BY digest FOR SHARE",
        ),
        (
            true,
            &children,
            "SELECT digest FROM manifests WHERE repository_id = $1 AND digest = ANY($2) ORDER BY digest FOR SHARE",
        ),
    ] {
        if digests.is_empty() {
            continue;
        }
        let st = tx.prepare_cached(sql).await?;
        for row in tx.query(&st, &[&id, digests]).await? {
            present.insert((row.get::<_, String>(0), is_manifest));
        }
    }
    // The first missing reference in the manifest's own order, as SQLite reports it.
    for child in m.children.iter().filter(|c| c.required) {
        if !present.contains(&(child.digest.to_string(), child.is_manifest)) {
            let d = child.digest.clone();
            return Err(
                if child.is_manifest { MetaError::ManifestUnknown(d) } else { MetaError::BlobUnknown(d) }.into()
            );
        }
    }

    let insert = tx
        .prepare_cached(
            "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject, annotations, size,
                 body, created_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .await?;
    let lock = tx.prepare_cached("SELECT 1 FROM manifests WHERE repository_id = $1 AND digest = $2 FOR SHARE").await?;
    let digest = m.digest.as_str();
    let subject = m.subject.as_ref().map(|s| s.as_str());
    let inserted = loop {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &id,
            &digest,
            &m.media_type,
            &m.artifact_type,
            &subject,
            &m.annotations,
            &(m.body.len() as i64),
            &&m.body[..],
            &now_ms,
        ];
        if tx.execute(&insert, &params).await? == 1 {
            break true;
        }
        if tx.query_opt(&lock, &[&id, &digest]).await?.is_some() {
            break false;
        }
        // Deleted between our conflict and our lock: insert it anew.
    };
    if inserted && !m.children.is_empty() {
        let (child_digests, child_kinds): (Vec<&str>, Vec<bool>) =
            m.children.iter().map(|c| (c.digest.as_str(), c.is_manifest)).unzip();
        let st = tx
            .prepare_cached(
                "INSERT INTO manifest_references (repository_id, manifest_digest, child_digest, child_is_manifest)
                 SELECT $1, $2, d, k FROM unnest($3::text[], $4::bool[]) AS c(d, k)
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        tx.execute(&st, &[&id, &digest, &child_digests, &child_kinds]).await?;
    }
    if !tags.is_empty() {
        // `tags` is sorted and free of duplicates (the caller's job).
        let st = tx
            .prepare_cached(
                "INSERT INTO tags (repository_id, name, digest, updated_ms)
                 SELECT $1, t, $2, $3 FROM unnest($4::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n
                 ON CONFLICT (repository_id, name) DO UPDATE
                 SET digest = excluded.digest, updated_ms = excluded.updated_ms",
            )
            .await?;
        tx.execute(&st, &[&id, &digest, &now_ms, &tags]).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn delete(c: &mut Client, repo: &str, digest: &str) -> Result<Option<Vec<Tag>>, TxError> {
    let tx = c.transaction().await?;
    let Some(id) = repo_id(&tx, repo).await? else { return Ok(None) };
    let st = tx.prepare_cached("DELETE FROM manifests WHERE repository_id = $1 AND digest = $2").await?;
    if tx.execute(&st, &[&id, &digest]).await? == 0 {
        return Ok(None);
    }
    let st =
        tx.prepare_cached("DELETE FROM manifest_references WHERE repository_id = $1 AND manifest_digest = $2").await?;
    tx.execute(&st, &[&id, &digest]).await?;
    let st = tx.prepare_cached("DELETE FROM tags WHERE repository_id = $1 AND digest = $2 RETURNING name").await?;
    let tags: Vec<Tag> = tx.query(&st, &[&id, &digest]).await?.iter().filter_map(|r| Tag::parse(r.get(0))).collect();
    tx.commit().await?;
    Ok(Some(tags))
}
