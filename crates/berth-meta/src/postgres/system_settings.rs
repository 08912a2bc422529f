//! [`SystemSettingsStore`] on PostgreSQL: an upsert, so nodes writing at
//! once never conflict; the last write wins.

use super::{PostgresStore, TxError};
use crate::postgres::pool::retrying;
use crate::{MetaError, SystemSettingsStore};
use async_trait::async_trait;

#[async_trait]
impl SystemSettingsStore for PostgresStore {
    async fn system_setting(&self, key: &str) -> Result<Option<String>, MetaError> {
        let c = self.client().await?;
        let st = c.prepare_cached("SELECT value FROM system_settings WHERE key = $1").await.map_err(TxError::from)?;
        Ok(c.query_opt(&st, &[&key]).await.map_err(TxError::from)?.map(|r| r.get(0)))
    }

    async fn set_system_setting(&self, key: &str, value: &str, now_ms: i64) -> Result<(), MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO system_settings (key, value, updated_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_ms = EXCLUDED.updated_ms",
                )
                .await?;
            c.execute(&st, &[&key, &value, &now_ms]).await?;
            Ok(())
        })
        .await
    }
}
