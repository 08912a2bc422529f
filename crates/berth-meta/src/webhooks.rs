//! [`WebhookStore`]: projects' webhook policies (Harbor's: which events go
//! to which addresses in which payload format) and the durable delivery
//! queue. A delivery is one event's payload for one target of one policy;
//! nodes claim due deliveries for a while (so each is attempted by one node
//! at a time, once per cluster), send them, and record the outcome: sent,
//! retry later, or given up. Finished deliveries are the policy's delivery
//! log until pruned.

use crate::MetaError;
use async_trait::async_trait;

/// Where one policy sends its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// `http://` or `https://` URL.
    pub address: String,
    /// `Default` (Harbor's payload) or `CloudEvents`.
    pub payload_format: String,
    /// Sent as the `Authorization` header when set.
    pub auth_header: Option<String>,
    /// HMAC-SHA256 key that signs each body when set.
    pub secret: Option<String>,
    pub skip_cert_verify: bool,
}

/// A policy as the administrator writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookPolicy {
    pub project: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// Harbor's event type names (`PUSH_ARTIFACT`, …), kept in the order given.
    pub event_types: Vec<String>,
    pub targets: Vec<WebhookTarget>,
    pub creator: String,
}

/// A stored policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookPolicy {
    pub id: i64,
    pub project: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub event_types: Vec<String>,
    pub targets: Vec<WebhookTarget>,
    pub creator: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl NewWebhookPolicy {
    /// The policy as just stored under `id` at `now_ms`.
    pub(crate) fn stored(self, id: i64, now_ms: i64) -> WebhookPolicy {
        WebhookPolicy {
            id,
            project: self.project,
            name: self.name,
            description: self.description,
            enabled: self.enabled,
            event_types: self.event_types,
            targets: self.targets,
            creator: self.creator,
            created_ms: now_ms,
            updated_ms: now_ms,
        }
    }
}

/// One payload to send to one target of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookDelivery {
    pub policy_id: i64,
    /// Index into the policy's targets (as they were when enqueued).
    pub target: u32,
    pub event_type: String,
    /// The body to send, built once so every attempt sends the same bytes.
    pub payload: String,
    /// When the first attempt is due.
    pub due_ms: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or for a retry.
    Pending,
    /// The target answered 2xx.
    Delivered,
    /// Retries exhausted (or the target refused for good).
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// A stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    pub id: i64,
    pub policy_id: i64,
    pub project: String,
    pub target: u32,
    pub event_type: String,
    pub payload: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending), or the last was made.
    pub due_ms: i64,
    /// The last attempt's HTTP status, if it got one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// The HTTP status, if the target answered.
    pub http_status: Option<u16>,
    /// `None` on success.
    pub error: Option<String>,
    /// Pending again, due then; `None` when delivered or given up.
    pub retry_at_ms: Option<i64>,
}

#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Stores a new policy. [`MetaError::Conflict`] if the project already
    /// has one of that name; [`MetaError::NotFound`] if there is no such project.
    async fn create_webhook_policy(&self, policy: &NewWebhookPolicy, now_ms: i64) -> Result<WebhookPolicy, MetaError>;
    /// Replaces policy `id` of `project` (its project and creator are kept).
    /// `None` if there is no such policy in that project; Conflict on a name
    /// another policy of the project has.
    async fn update_webhook_policy(
        &self,
        project: &str,
        id: i64,
        policy: &NewWebhookPolicy,
        now_ms: i64,
    ) -> Result<Option<WebhookPolicy>, MetaError>;
    /// Policy `id`, whatever its project (callers check it).
    async fn webhook_policy(&self, id: i64) -> Result<Option<WebhookPolicy>, MetaError>;
    /// The project's policies in id order.
    async fn webhook_policies(&self, project: &str) -> Result<Vec<WebhookPolicy>, MetaError>;
    /// Every enabled policy of every project, in id order: what the event
    /// router matches events against (it caches them).
    async fn enabled_webhook_policies(&self) -> Result<Vec<WebhookPolicy>, MetaError>;
    /// Deletes policy `id` of `project` and its deliveries. False if there is none.
    async fn delete_webhook_policy(&self, project: &str, id: i64) -> Result<bool, MetaError>;

    /// Queues deliveries, all or none; those of policies deleted meanwhile are skipped.
    async fn enqueue_webhook_deliveries(&self, deliveries: &[NewWebhookDelivery], now_ms: i64)
        -> Result<(), MetaError>;
    /// Claims at most `limit` pending deliveries due by `now_ms`, oldest due
    /// first, for `claim_ms`: until then no other claim returns them, so two
    /// nodes never attempt one delivery at once; a claim not finished in time
    /// (its node died) lapses and the delivery is claimable again.
    async fn claim_webhook_deliveries(
        &self,
        node: &str,
        now_ms: i64,
        claim_ms: i64,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, MetaError>;
    /// Records an attempt on delivery `id` and releases its claim: attempts
    /// + 1, last status and error, and the status — delivered (no error),
    /// pending due at `retry_at_ms`, or failed. False if there is no such delivery.
    async fn finish_webhook_delivery(&self, id: i64, attempt: &DeliveryAttempt, now_ms: i64)
        -> Result<bool, MetaError>;
    /// The policy's deliveries older than delivery `before` (all when
    /// `None`), newest first, at most `limit`.
    async fn webhook_deliveries(
        &self,
        policy_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, MetaError>;
    /// Deletes delivered and failed deliveries last updated before `before_ms`; returns how many.
    async fn prune_webhook_deliveries(&self, before_ms: i64) -> Result<u64, MetaError>;
}

// Stored forms, shared by both backends: event types and targets as JSON
// text (read and written whole with their policy, never queried by field).

pub(crate) fn event_types_json(types: &[String]) -> String {
    serde_json::Value::from(types.to_vec()).to_string()
}

pub(crate) fn targets_json(targets: &[WebhookTarget]) -> String {
    let v: Vec<serde_json::Value> = targets
        .iter()
        .map(|t| {
            serde_json::json!({
                "address": t.address,
                "payload_format": t.payload_format,
                "auth_header": t.auth_header,
                "secret": t.secret,
                "skip_cert_verify": t.skip_cert_verify,
            })
        })
        .collect();
    serde_json::Value::from(v).to_string()
}

fn corrupt(what: &str) -> MetaError {
    MetaError::Database(format!("stored webhook {what} are not valid"))
}

pub(crate) fn parse_event_types(s: &str) -> Result<Vec<String>, MetaError> {
    serde_json::from_str(s).map_err(|_| corrupt("event types"))
}

pub(crate) fn parse_targets(s: &str) -> Result<Vec<WebhookTarget>, MetaError> {
    let v: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(s).map_err(|_| corrupt("targets"))?;
    let text =
        |t: &serde_json::Map<String, serde_json::Value>, k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    v.iter()
        .map(|t| {
            Ok(WebhookTarget {
                address: text(t, "address").ok_or_else(|| corrupt("targets"))?,
                payload_format: text(t, "payload_format").ok_or_else(|| corrupt("targets"))?,
                auth_header: text(t, "auth_header"),
                secret: text(t, "secret"),
                skip_cert_verify: t.get("skip_cert_verify").and_then(|v| v.as_bool()).unwrap_or(false),
            })
        })
        .collect()
}

/// The status a finished attempt leaves (see [`WebhookStore::finish_webhook_delivery`]).
pub(crate) fn status_after(attempt: &DeliveryAttempt) -> DeliveryStatus {
    match (&attempt.error, attempt.retry_at_ms) {
        (None, _) => DeliveryStatus::Delivered,
        (Some(_), Some(_)) => DeliveryStatus::Pending,
        (Some(_), None) => DeliveryStatus::Failed,
    }
}

pub(crate) fn parse_status(s: &str) -> Result<DeliveryStatus, MetaError> {
    DeliveryStatus::parse(s).ok_or_else(|| MetaError::Database(format!("unknown webhook delivery status {s:?}")))
}

/// When a finished attempt's delivery is next due: the retry, or now (the
/// last attempt's time) once delivered or failed.
pub(crate) fn due_after(attempt: &DeliveryAttempt, now_ms: i64) -> i64 {
    match status_after(attempt) {
        DeliveryStatus::Pending => attempt.retry_at_ms.unwrap_or(now_ms),
        _ => now_ms,
    }
}
