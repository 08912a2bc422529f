//! [`SystemSettingsStore`] on SQLite.

use super::SqliteStore;
use crate::{MetaError, SystemSettingsStore};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

#[async_trait]
impl SystemSettingsStore for SqliteStore {
    async fn system_setting(&self, key: &str) -> Result<Option<String>, MetaError> {
        let key = key.to_owned();
        self.pool
            .read(move |c| {
                Ok(c.prepare_cached("SELECT value FROM system_settings WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    async fn set_system_setting(&self, key: &str, value: &str, now_ms: i64) -> Result<(), MetaError> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.pool
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO system_settings (key, value, updated_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
                )?
                .execute(params![key, value, now_ms])?;
                Ok(())
            })
            .await
    }
}
