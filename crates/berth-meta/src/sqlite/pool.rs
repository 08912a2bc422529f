//! Connections: one writer (SQLite allows one at a time; serialising here
//! avoids busy-retry storms) and a pool of readers, which WAL lets run
//! beside it. All access happens on blocking threads.

use crate::MetaError;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct Pool {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Readers opened (they are kept, never closed).
    opened: AtomicUsize,
    /// Writes waiting for the writer connection.
    waiting: AtomicUsize,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // WAL + NORMAL: durable against process crashes; blobs are fsynced
    // before their rows, so a power loss can only forget, never dangle.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         PRAGMA mmap_size = 268435456;
         PRAGMA cache_size = -16000;",
    )
}

impl Pool {
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| MetaError::Database(format!("{}: {e}", dir.display())))?;
        }
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        super::schema::migrate(&mut writer)?;
        Ok(Pool {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            opened: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        })
    }

    /// Connections: the writer and the readers opened so far (readers
    /// have no limit: blocking threads bound them).
    pub fn status(&self) -> crate::PoolStatus {
        let idle_readers = self.readers.lock().map(|r| r.len()).unwrap_or(0);
        let writer_idle = usize::from(self.writer.try_lock().is_ok());
        crate::PoolStatus {
            max: None,
            open: 1 + self.opened.load(Ordering::Relaxed),
            idle: idle_readers + writer_idle,
            waiting: self.waiting.load(Ordering::Relaxed),
        }
    }

    fn take_reader(&self) -> Result<Connection, MetaError> {
        if let Some(c) = self.readers.lock().map_err(poisoned)?.pop() {
            return Ok(c);
        }
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&c)?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(c)
    }

    /// Runs `f` with a read connection on a blocking thread.
    pub async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.take_reader()?;
            let out = f(&conn);
            pool.readers.lock().map_err(poisoned)?.push(conn);
            out
        })
        .await
        .map_err(|e| MetaError::Worker(e.to_string()))?
    }

    /// Runs `f` in an immediate transaction on the writer connection.
    pub async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            pool.waiting.fetch_add(1, Ordering::Relaxed);
            let conn = pool.writer.lock();
            pool.waiting.fetch_sub(1, Ordering::Relaxed);
            let mut conn = conn.map_err(poisoned)?;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| MetaError::Worker(e.to_string()))?
    }
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> MetaError {
    MetaError::Worker("connection lock poisoned".into())
}
