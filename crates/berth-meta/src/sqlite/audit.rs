//! [`AuditStore`] on SQLite. Appends run on the single writer connection,
//! so reading the chain head and moving it are one transaction with no
//! concurrent writer.

use super::SqliteStore;
use crate::audit::chain;
use crate::{AuditChain, AuditEntry, AuditEvent, AuditStore, MetaError};
use async_trait::async_trait;
use rusqlite::{params, Connection};

const COLUMNS: &str = "id, time_ms, actor, source, action, resource, success, status, prev_hash, hash";

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        event: AuditEvent {
            time_ms: r.get(1)?,
            actor: r.get(2)?,
            source: r.get(3)?,
            action: r.get(4)?,
            resource: r.get(5)?,
            success: r.get(6)?,
            status: r.get(7)?,
        },
        prev_hash: r.get(8)?,
        hash: r.get(9)?,
    })
}

fn read_chain(c: &Connection) -> rusqlite::Result<AuditChain> {
    c.prepare_cached("SELECT head_id, head_hash, anchor_id, anchor_hash FROM audit_chain WHERE singleton = 1")?
        .query_row([], |r| {
            Ok(AuditChain { head_id: r.get(0)?, head_hash: r.get(1)?, anchor_id: r.get(2)?, anchor_hash: r.get(3)? })
        })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditEntry>, MetaError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let events = events.to_vec();
        self.pool
            .write(move |tx| {
                let head = read_chain(tx)?;
                let entries = chain(head.head_id, &head.head_hash, &events);
                let mut insert = tx.prepare_cached(&format!(
                    "INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ))?;
                for e in &entries {
                    let v = &e.event;
                    insert.execute(params![
                        e.id,
                        v.time_ms,
                        v.actor,
                        v.source,
                        v.action,
                        v.resource,
                        v.success,
                        v.status,
                        e.prev_hash,
                        e.hash
                    ])?;
                }
                let last = entries.last().expect("events is not empty");
                tx.prepare_cached("UPDATE audit_chain SET head_id = ?1, head_hash = ?2 WHERE singleton = 1")?
                    .execute(params![last.id, last.hash])?;
                Ok(entries)
            })
            .await
    }

    async fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, MetaError> {
        self.pool
            .read(move |c| {
                let mut st =
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2"))?;
                let rows = st.query_map(params![after, limit as i64], entry_from_row)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn audit_chain(&self) -> Result<AuditChain, MetaError> {
        self.pool.read(|c| Ok(read_chain(c)?)).await
    }

    async fn prune_audit(&self, before_ms: i64, limit: usize) -> Result<u64, MetaError> {
        self.pool
            .write(move |tx| {
                let mut last: Option<(i64, String)> = None;
                {
                    let mut st = tx.prepare_cached("SELECT id, time_ms, hash FROM audit_log ORDER BY id LIMIT ?1")?;
                    let mut rows = st.query([limit as i64])?;
                    while let Some(r) = rows.next()? {
                        if r.get::<_, i64>(1)? >= before_ms {
                            break;
                        }
                        last = Some((r.get(0)?, r.get(2)?));
                    }
                }
                let Some((id, hash)) = last else { return Ok(0) };
                let n = tx.prepare_cached("DELETE FROM audit_log WHERE id <= ?1")?.execute([id])?;
                tx.prepare_cached("UPDATE audit_chain SET anchor_id = ?1, anchor_hash = ?2 WHERE singleton = 1")?
                    .execute(params![id, hash])?;
                Ok(n as u64)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;

    /// Two processes on one file (a server and `berth audit`, or two
    /// servers by mistake): the writer lock serialises their appends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appenders_on_two_connections_stay_linear() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.sqlite");
        let (a, b) = (SqliteStore::open(&path).unwrap(), SqliteStore::open(&path).unwrap());
        crate::test_suite_audit::appenders_on_two_nodes_stay_linear(&a, &b).await;
    }
}
