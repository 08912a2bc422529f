//! [`LeaseStore`] on SQLite. One node only, but the same semantics as on
//! PostgreSQL, so a job written against the trait behaves alike on both.
//! Every write runs on the single writer connection, so each check and the
//! write it guards are one transaction with no concurrent writer.

use super::SqliteStore;
use crate::{lease_expiry, LeaseStore, MetaError};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};
use std::time::Duration;

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn try_acquire_lease(&self, job: &str, holder: &str, ttl: Duration, now_ms: i64) -> Result<bool, MetaError> {
        let (job, holder, expires) = (job.to_owned(), holder.to_owned(), lease_expiry(now_ms, ttl));
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "INSERT INTO job_leases (job, holder, expires_ms, acquired_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms,
                             acquired_ms = excluded.acquired_ms
                         WHERE job_leases.expires_ms <= ?4 OR job_leases.holder = excluded.holder",
                    )?
                    .execute(params![job, holder, expires, now_ms])?;
                Ok(n == 1)
            })
            .await
    }

    async fn renew_lease(&self, job: &str, holder: &str, ttl: Duration, now_ms: i64) -> Result<bool, MetaError> {
        let (job, holder, expires) = (job.to_owned(), holder.to_owned(), lease_expiry(now_ms, ttl));
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE job_leases SET expires_ms = ?3 WHERE job = ?1 AND holder = ?2 AND expires_ms > ?4",
                    )?
                    .execute(params![job, holder, expires, now_ms])?;
                Ok(n == 1)
            })
            .await
    }

    async fn release_lease(&self, job: &str, holder: &str) -> Result<bool, MetaError> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached("DELETE FROM job_leases WHERE job = ?1 AND holder = ?2")?
                    .execute(params![job, holder])?;
                Ok(n == 1)
            })
            .await
    }

    async fn job_state(&self, job: &str) -> Result<Option<Vec<u8>>, MetaError> {
        let job = job.to_owned();
        self.pool
            .read(move |c| {
                Ok(c.prepare_cached("SELECT state FROM job_state WHERE job = ?1")?
                    .query_row([job], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    async fn save_job_state(&self, job: &str, holder: &str, state: &[u8], now_ms: i64) -> Result<bool, MetaError> {
        let (job, holder, state) = (job.to_owned(), holder.to_owned(), state.to_vec());
        self.pool
            .write(move |tx| {
                if !holds(tx, &job, &holder, now_ms)? {
                    return Ok(false);
                }
                tx.prepare_cached(
                    "INSERT INTO job_state (job, state, updated_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (job) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
                )?
                .execute(params![job, state, now_ms])?;
                Ok(true)
            })
            .await
    }

    async fn finish_job(&self, job: &str, holder: &str, now_ms: i64) -> Result<bool, MetaError> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.pool
            .write(move |tx| {
                if !holds(tx, &job, &holder, now_ms)? {
                    return Ok(false);
                }
                tx.prepare_cached("DELETE FROM job_state WHERE job = ?1")?.execute([&job])?;
                tx.prepare_cached("DELETE FROM job_leases WHERE job = ?1")?.execute([&job])?;
                Ok(true)
            })
            .await
    }

    async fn held_leases(&self, now_ms: i64) -> Result<Vec<crate::HeldLease>, MetaError> {
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT job, holder, expires_ms FROM job_leases WHERE expires_ms > ?1 ORDER BY job",
                )?;
                let rows = st.query_map(params![now_ms], |r| {
                    Ok(crate::HeldLease { job: r.get(0)?, holder: r.get(1)?, expires_ms: r.get(2)? })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }
}

fn holds(tx: &rusqlite::Transaction<'_>, job: &str, holder: &str, now_ms: i64) -> rusqlite::Result<bool> {
    tx.prepare_cached("SELECT 1 FROM job_leases WHERE job = ?1 AND holder = ?2 AND expires_ms > ?3")?
        .exists(params![job, holder, now_ms])
}
