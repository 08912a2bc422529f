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
