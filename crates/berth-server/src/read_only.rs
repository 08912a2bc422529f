//! Read-only maintenance mode, switchable at run time.
//!
//! `storage.maintenance.readonly.enabled` in the configuration forces it on
//! (as in Distribution). Besides, an administrator switches it through the
//! admin API (`PUT /api/v1/system/readonly`): the switch is stored in the
//! metadata database (`system_settings`) so it survives restarts and reaches
//! every node; the node that took the request applies it at once, the others
//! within [`POLL_INTERVAL`]. Dispatch reads one relaxed atomic.

use crate::state::App;
use berth_meta::{MetaError, MetaStore, READ_ONLY_SETTING};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often each node re-reads the stored switch: the longest a peer
/// keeps accepting writes after another node turned read-only mode on.
pub const POLL_INTERVAL: Duration = Duration::from_secs(3);

pub struct ReadOnly {
    /// Forced by the configuration; the API cannot turn it off.
    configured: bool,
    /// The effective mode: configured, or switched on through the API.
    on: AtomicBool,
}

impl ReadOnly {
    pub fn new(configured: bool) -> Self {
        ReadOnly { configured, on: AtomicBool::new(configured) }
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    pub fn configured(&self) -> bool {
        self.configured
    }

    fn apply(&self, stored: bool) {
        self.on.store(self.configured || stored, Ordering::Relaxed);
    }

    /// Reads the stored switch and applies it.
    pub async fn refresh(&self, meta: &dyn MetaStore) -> Result<(), MetaError> {
        let stored = meta.system_setting(READ_ONLY_SETTING).await?;
        self.apply(stored.as_deref() == Some("true"));
        Ok(())
    }

    /// Stores the switch for every node and applies it here at once.
    pub async fn set(&self, meta: &dyn MetaStore, enabled: bool) -> Result<(), MetaError> {
        let value = if enabled { "true" } else { "false" };
        meta.set_system_setting(READ_ONLY_SETTING, value, crate::state::now_ms()).await?;
        self.apply(enabled);
        Ok(())
    }
}

/// Re-reads the stored switch every [`POLL_INTERVAL`]. A failed read keeps
/// the last known mode (a database hiccup must not flip it).
pub fn spawn_poller(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = app.read_only.refresh(app.meta.as_ref()).await {
                tracing::warn!(error = %e, "reading the read-only switch");
            }
        }
    })
}
