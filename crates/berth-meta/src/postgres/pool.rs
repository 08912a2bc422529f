//! Connections and transactions: a `deadpool-postgres` pool of
//! `tokio-postgres` clients (each caches its prepared statements), the error
//! type the queries use, and the retry of transactions PostgreSQL aborted
//! for a deadlock or a serialization failure.
//!
//! Driver choice: `tokio-postgres` + `deadpool-postgres` rather than sqlx.
//! Performance: tokio-postgres uses the binary protocol, pipelines the
//! queries of concurrent tasks on one connection, and with deadpool's
//! per-connection statement cache each statement is parsed once per
//! connection, with no runtime abstraction between us and tokio.
//! Maintenance: a small, stable dependency tree (the rust-postgres family,
//! plus a pool of a few hundred lines) that follows tokio releases. sqlx's
//! distinctive feature, compile-time checked `query!` macros, needs a live
//! database or an offline query cache at build time for every build of the
//! workspace; without it sqlx is a larger tree (its own pool, migrator and
//! runtime layer) running the same runtime-checked SQL. Our migrations are a
//! list of strings with a version table, as on SQLite, so sqlx's migrator
//! would buy nothing either.

use crate::MetaError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/database` (libpq-style
    /// `key=value` strings work too). TLS is not supported yet: `sslmode`
    /// must be `disable` or `prefer` (which then connects in plain text).
    pub url: String,
    /// Most connections this node opens.
    pub pool_size: usize,
    /// Bound on opening one connection.
    pub connect_timeout: Duration,
    /// Bound on waiting for a free connection when all are busy.
    pub acquire_timeout: Duration,
}

impl PostgresOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

pub(super) fn build(opts: &PostgresOptions) -> Result<Pool, MetaError> {
    // Never echo the URL: it may carry a password.
    let mut config = tokio_postgres::Config::from_str(&opts.url)
        .map_err(|e| MetaError::Database(format!("invalid PostgreSQL URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(opts.connect_timeout);
    }
    if config.get_application_name().is_none() {
        config.application_name("berth");
    }
    // Fast: a connection is reused unless it is closed. A server restart
    // therefore fails the next query once per pooled connection.
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(opts.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(opts.acquire_timeout))
        .create_timeout(Some(opts.connect_timeout))
        .build()
        .map_err(|e| MetaError::Database(format!("cannot build the PostgreSQL pool: {e}")))
}

/// What a query fails with: a database error (kept whole, so a deadlock or
/// serialization failure can be retried) or a verdict such as
/// [`MetaError::BlobUnknown`].
pub(super) enum TxError {
    Pg(tokio_postgres::Error),
    Meta(MetaError),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        TxError::Pg(e)
    }
}

impl From<MetaError> for TxError {
    fn from(e: MetaError) -> Self {
        TxError::Meta(e)
    }
}

impl From<deadpool_postgres::PoolError> for TxError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => TxError::Pg(e),
            e => TxError::Meta(MetaError::Database(format!("PostgreSQL pool: {e}"))),
        }
    }
}

impl From<TxError> for MetaError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Meta(e) => e,
            TxError::Pg(e) => error_from(e),
        }
    }
}

pub(crate) fn error_from(e: tokio_postgres::Error) -> MetaError {
    MetaError::Database(describe(&e))
}

/// tokio-postgres' `Display` says only "db error"; the server's message and
/// SQLSTATE are what an operator needs.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

fn is_transient(e: &TxError) -> bool {
    let TxError::Pg(e) = e else { return false };
    matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED)
}

const ATTEMPTS: u32 = 5;

/// Runs `attempt` (a whole transaction, connection checkout included) again
/// when PostgreSQL aborted it as a deadlock victim or for a serialization
/// failure; both leave nothing behind, so a rerun is safe.
pub(super) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, MetaError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TxError>>,
{
    let mut n = 1;
    loop {
        match attempt().await {
            Err(e) if n < ATTEMPTS && is_transient(&e) => {
                tracing::debug!(attempt = n, error = %MetaError::from(e), "retrying metadata transaction");
                tokio::time::sleep(Duration::from_millis(2 << n)).await;
                n += 1;
            }
            other => return other.map_err(MetaError::from),
        }
    }
}
