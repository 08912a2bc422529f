//! Harbor-style webhooks: projects' policies say which events go where.
//!
//! The [`Router`] takes events off the request path (a bounded queue),
//! matches them against the enabled policies (cached, reloaded on change
//! and every few seconds), builds each target's payload once and queues
//! the deliveries durably in the metadata database. The delivery worker on
//! every node claims due deliveries (a claim is held by one node at a
//! time, so each is sent once per cluster), POSTs them through the guarded
//! client with an HMAC signature, and records the outcome: delivered, or
//! retried with exponential backoff until `maxattempts`, then failed. The
//! finished deliveries are the policy's delivery log until `keep` passes.

pub mod payload;
mod router;
pub mod sign;
mod worker;

pub use payload::{Notice, Resource, EVENT_TYPES, PAYLOAD_FORMATS};
pub use router::Router;

use std::time::Duration;

/// `berth.webhooks` as the router and worker take it.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    pub addresses: crate::outbound::AddressPolicy,
    /// Per attempt.
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Before the first retry; doubled for each further one, at most [`MAX_BACKOFF`].
    pub backoff: Duration,
    /// Finished deliveries older than this leave the log.
    pub keep: Duration,
    /// Whether this node sends deliveries (it always queues them).
    pub deliver: bool,
    /// This node's name in delivery claims.
    pub node: String,
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

impl WebhookOptions {
    /// When attempt `attempts + 1` is due after attempt `attempts` failed at `now_ms`; `None` past the last.
    pub fn retry_at(&self, attempts: u32, now_ms: i64) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let factor = 1u32.checked_shl(attempts.saturating_sub(1)).unwrap_or(u32::MAX);
        let wait = self.backoff.saturating_mul(factor).min(MAX_BACKOFF);
        Some(now_ms.saturating_add(wait.as_millis() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_then_stop() {
        let o = WebhookOptions {
            addresses: Default::default(),
            timeout: Duration::from_secs(1),
            max_attempts: 4,
            backoff: Duration::from_secs(10),
            keep: Duration::from_secs(60),
            deliver: true,
            node: "n".into(),
        };
        assert_eq!(o.retry_at(1, 0), Some(10_000));
        assert_eq!(o.retry_at(2, 0), Some(20_000));
        assert_eq!(o.retry_at(3, 0), Some(40_000));
        assert_eq!(o.retry_at(4, 0), None);
        let long = WebhookOptions { max_attempts: 100, ..o };
        assert_eq!(long.retry_at(40, 0), Some(3_600_000));
    }
}
