//! Events: what happened in the registry, and who hears of it.
//!
//! The HTTP edge builds an [`Event`] for each push, pull, mount and delete
//! and hands it to [`Endpoints::publish`] (Distribution's
//! `notifications.endpoints`, in memory, per node) and to the webhook
//! router (Harbor-style policies per project, queued durably in the
//! metadata database and delivered once per cluster). Neither waits:
//! requests are never slowed by a listener.

pub mod distribution;
mod endpoint;
mod event;
pub mod outbound;
pub mod webhook;

pub use distribution::SourceRecord;
pub use endpoint::{EndpointConfig, EndpointStats, Endpoints};
pub use event::{Action, Event, Kind, RequestRecord, Target, BLOB_MEDIA_TYPE};

/// Waits for `tasks` until `wait` has passed, then aborts those still running.
pub(crate) async fn join_within(tasks: &std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>, wait: std::time::Duration) {
    let tasks = std::mem::take(&mut *tasks.lock().unwrap_or_else(|p| p.into_inner()));
    let deadline = tokio::time::Instant::now() + wait;
    for mut task in tasks {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
        }
    }
}
