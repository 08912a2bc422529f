//! [`LeaseStore`] on PostgreSQL: job leases shared by every node.
//!
//! Acquire is one upsert whose `WHERE` (free, expired, or ours) is checked
//! on the newest row version while the row is locked, so of two nodes
//! racing for a lease exactly one gets it. Saving progress and finishing
//! lock the lease row `FOR UPDATE` first, in the transaction that writes:
//! a node that lost its lease meanwhile (a takeover waits for that lock,
//! or, if it came first, the re-checked `WHERE` finds another holder)
//! cannot overwrite its successor's progress.

use super::{PostgresStore, TxError};
use crate::postgres::pool::retrying;
use crate::{lease_expiry, LeaseStore, MetaError};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use std::time::Duration;

#[async_trait]
impl LeaseStore for PostgresStore {
    async fn try_acquire_lease(&self, job: &str, holder: &str, ttl: Duration, now_ms: i64) -> Result<bool, MetaError> {
        let expires = lease_expiry(now_ms, ttl);
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO job_leases (job, holder, expires_ms, acquired_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms,
                         acquired_ms = excluded.acquired_ms
                     WHERE job_leases.expires_ms <= $4 OR job_leases.holder = excluded.holder",
                )
                .await?;
            Ok(c.execute(&st, &[&job, &holder, &expires, &now_ms]).await? == 1)
        })
        .await
    }

    async fn renew_lease(&self, job: &str, holder: &str, ttl: Duration, now_ms: i64) -> Result<bool, MetaError> {
        let expires = lease_expiry(now_ms, ttl);
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE job_leases SET expires_ms = $3 WHERE job = $1 AND holder = $2 AND expires_ms > $4",
                )
                .await?;
            Ok(c.execute(&st, &[&job, &holder, &expires, &now_ms]).await? == 1)
        })
        .await
    }

    async fn release_lease(&self, job: &str, holder: &str) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM job_leases WHERE job = $1 AND holder = $2").await?;
            Ok(c.execute(&st, &[&job, &holder]).await? == 1)
        })
        .await
    }

    async fn job_state(&self, job: &str) -> Result<Option<Vec<u8>>, MetaError> {
        let c = self.client().await?;
        let st = c.prepare_cached("SELECT state FROM job_state WHERE job = $1").await?;
        Ok(c.query_opt(&st, &[&job]).await?.map(|r| r.get(0)))
    }

    async fn save_job_state(&self, job: &str, holder: &str, state: &[u8], now_ms: i64) -> Result<bool, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            if !holds(&tx, job, holder, now_ms).await? {
                return Ok(false);
            }
            let st = tx
                .prepare_cached(
                    "INSERT INTO job_state (job, state, updated_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (job) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
                )
                .await?;
            tx.execute(&st, &[&job, &state, &now_ms]).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn finish_job(&self, job: &str, holder: &str, now_ms: i64) -> Result<bool, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            if !holds(&tx, job, holder, now_ms).await? {
                return Ok(false);
            }
            let st = tx.prepare_cached("DELETE FROM job_state WHERE job = $1").await?;
            tx.execute(&st, &[&job]).await?;
            let st = tx.prepare_cached("DELETE FROM job_leases WHERE job = $1").await?;
            tx.execute(&st, &[&job]).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn held_leases(&self, now_ms: i64) -> Result<Vec<crate::HeldLease>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached("SELECT job, holder, expires_ms FROM job_leases WHERE expires_ms > $1 ORDER BY job")
                .await?;
            let rows = c.query(&st, &[&now_ms]).await?;
            Ok(rows
                .iter()
                .map(|r| crate::HeldLease { job: r.get(0), holder: r.get(1), expires_ms: r.get(2) })
                .collect())
        })
        .await
    }
}

/// Locks the lease row if `holder` holds it unexpired.
async fn holds(c: &impl GenericClient, job: &str, holder: &str, now_ms: i64) -> Result<bool, TxError> {
    let st = c
        .prepare_cached("SELECT 1 FROM job_leases WHERE job = $1 AND holder = $2 AND expires_ms > $3 FOR UPDATE")
        .await?;
    Ok(c.query_opt(&st, &[&job, &holder, &now_ms]).await?.is_some())
}
