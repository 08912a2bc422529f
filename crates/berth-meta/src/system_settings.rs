//! [`SystemSettingsStore`]: cluster-wide switches an administrator changes
//! at run time (read-only maintenance mode), kept where every node reads
//! them. Values are short strings; each node polls the ones it uses.

use crate::MetaError;
use async_trait::async_trait;

/// The key of the read-only maintenance switch (`"true"` or `"false"`).
pub const READ_ONLY_SETTING: &str = "readonly";

#[async_trait]
pub trait SystemSettingsStore: Send + Sync + 'static {
    /// The stored value, `None` if never set.
    async fn system_setting(&self, key: &str) -> Result<Option<String>, MetaError>;
    /// Sets (or replaces) the value.
    async fn set_system_setting(&self, key: &str, value: &str, now_ms: i64) -> Result<(), MetaError>;
}
