//! [`AuditStore`] on PostgreSQL: several nodes append to one chain.
//!
//! Every append and prune first locks the single `audit_chain` row `FOR
//! UPDATE`, in the transaction that then inserts and moves the head: a
//! second node's append waits for the first to commit and then reads the
//! head the first wrote (READ COMMITTED re-reads a row it waited for), so
//! ids stay contiguous and each entry chains to the one before. A batch is
//! one `INSERT … SELECT FROM unnest(…)`: one round trip however large.

use super::{PostgresStore, TxError};
use crate::audit::chain;
use crate::postgres::pool::retrying;
use crate::{AuditChain, AuditEntry, AuditEvent, AuditStore, MetaError};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

const COLUMNS: &str = "id, time_ms, actor, source, action, resource, success, status, prev_hash, hash";

fn entry_from_row(r: &Row) -> AuditEntry {
    AuditEntry {
        id: r.get(0),
        event: AuditEvent {
            time_ms: r.get(1),
            actor: r.get(2),
            source: r.get(3),
            action: r.get(4),
            resource: r.get(5),
            success: r.get(6),
            status: r.get::<_, i32>(7).clamp(0, i32::from(u16::MAX)) as u16,
        },
        prev_hash: r.get(8),
        hash: r.get(9),
    }
}

const CHAIN: &str = "SELECT head_id, head_hash, anchor_id, anchor_hash FROM audit_chain WHERE singleton = 1";

fn chain_from_row(r: &Row) -> AuditChain {
    AuditChain { head_id: r.get(0), head_hash: r.get(1), anchor_id: r.get(2), anchor_hash: r.get(3) }
}

async fn lock_chain(c: &impl GenericClient) -> Result<AuditChain, TxError> {
    let st = c.prepare_cached(&format!("{CHAIN} FOR UPDATE")).await?;
    Ok(chain_from_row(&c.query_one(&st, &[]).await?))
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditEntry>, MetaError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let head = lock_chain(&tx).await?;
            let entries = chain(head.head_id, &head.head_hash, events);
            let col = |f: fn(&AuditEntry) -> String| entries.iter().map(f).collect::<Vec<_>>();
            let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
            let times: Vec<i64> = entries.iter().map(|e| e.event.time_ms).collect();
            let successes: Vec<bool> = entries.iter().map(|e| e.event.success).collect();
            let statuses: Vec<i32> = entries.iter().map(|e| i32::from(e.event.status)).collect();
            let (actors, sources) = (col(|e| e.event.actor.clone()), col(|e| e.event.source.clone()));
            let (actions, resources) = (col(|e| e.event.action.clone()), col(|e| e.event.resource.clone()));
            let (prevs, hashes) = (col(|e| e.prev_hash.clone()), col(|e| e.hash.clone()));
            let st = tx
                .prepare_cached(&format!(
                    "INSERT INTO audit_log ({COLUMNS})
                     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                                          $6::text[], $7::boolean[], $8::integer[], $9::text[], $10::text[])"
                ))
                .await?;
            tx.execute(
                &st,
                &[&ids, &times, &actors, &sources, &actions, &resources, &successes, &statuses, &prevs, &hashes],
            )
            .await?;
            let last = entries.last().expect("events is not empty");
            let st =
                tx.prepare_cached("UPDATE audit_chain SET head_id = $1, head_hash = $2 WHERE singleton = 1").await?;
            tx.execute(&st, &[&last.id, &last.hash]).await?;
            tx.commit().await?;
            Ok(entries)
        })
        .await
    }

    async fn audit_entries(&self, after: i64, limit: usize) -> Result<Vec<AuditEntry>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!("SELECT {COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2"))
            .await
            .map_err(TxError::from)?;
        let rows = c.query(&st, &[&after, &(limit as i64)]).await.map_err(TxError::from)?;
        Ok(rows.iter().map(entry_from_row).collect())
    }

    async fn audit_chain(&self) -> Result<AuditChain, MetaError> {
        let c = self.client().await?;
        let st = c.prepare_cached(CHAIN).await.map_err(TxError::from)?;
        Ok(chain_from_row(&c.query_one(&st, &[]).await.map_err(TxError::from)?))
    }

    async fn prune_audit(&self, before_ms: i64, limit: usize) -> Result<u64, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            lock_chain(&tx).await?;
            let st = tx.prepare_cached("SELECT id, time_ms, hash FROM audit_log ORDER BY id LIMIT $1").await?;
            let rows = tx.query(&st, &[&(limit as i64)]).await?;
            let last = rows.iter().take_while(|r| r.get::<_, i64>(1) < before_ms).last();
            let Some((id, hash)) = last.map(|r| (r.get::<_, i64>(0), r.get::<_, String>(2))) else {
                return Ok(0);
            };
            let st = tx.prepare_cached("DELETE FROM audit_log WHERE id <= $1").await?;
            let n = tx.execute(&st, &[&id]).await?;
            let st = tx
                .prepare_cached("UPDATE audit_chain SET anchor_id = $1, anchor_hash = $2 WHERE singleton = 1")
                .await?;
            tx.execute(&st, &[&id, &hash]).await?;
            tx.commit().await?;
            Ok(n)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::PostgresOptions;

    /// Two nodes append at once; the chain-head lock keeps it linear.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appenders_on_two_nodes_stay_linear() {
        let pg = berth_testkit::Postgres::start().unwrap();
        let node = || async {
            let mut opts = PostgresOptions::new(pg.url("postgres"));
            opts.pool_size = 4;
            PostgresStore::connect(&opts).await.unwrap()
        };
        let (a, b) = (node().await, node().await);
        crate::test_suite_audit::appenders_on_two_nodes_stay_linear(&a, &b).await;
    }
}
