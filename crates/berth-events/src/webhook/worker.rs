//! The delivery worker: claim due deliveries, send them, record outcomes.

use super::router::Router;
use crate::outbound::{guarded_client, post, Answer};
use berth_meta::{DeliveryAttempt, WebhookDelivery, WebhookPolicy};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Deliveries claimed at once (sent concurrently).
const CLAIM: usize = 16;
/// How often an idle worker looks for deliveries other nodes queued or retries that fell due.
const POLL: Duration = Duration::from_secs(1);
/// How often finished deliveries past `keep` are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Most of a failed answer's body kept in the delivery log.
const ERROR_BODY: usize = 256;

struct Clients {
    verified: reqwest::Client,
    unverified: reqwest::Client,
}

pub(super) async fn run(router: Arc<Router>) {
    let policy = Arc::new(router.opts.addresses.clone());
    let timeout = router.opts.timeout;
    let clients = match (guarded_client(policy.clone(), timeout, false), guarded_client(policy, timeout, true)) {
        (Ok(verified), Ok(unverified)) => Arc::new(Clients { verified, unverified }),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "webhook client could not be built; webhooks are not delivered");
            return;
        }
    };
    let mut stop = router.stop.subscribe();
    let mut next_prune = tokio::time::Instant::now();
    // Long enough for every attempt of a batch to end; a dead node's claims lapse after it.
    let claim_ms = (timeout * 2 + Duration::from_secs(10)).as_millis() as i64;
    loop {
        if *stop.borrow() {
            return;
        }
        if tokio::time::Instant::now() >= next_prune {
            next_prune += PRUNE_EVERY;
            let before = crate::event::now_ms() - router.opts.keep.as_millis() as i64;
            if let Err(e) = router.store.prune_webhook_deliveries(before).await {
                tracing::warn!(error = %e, "pruning the webhook delivery log failed");
            }
        }
        let now = crate::event::now_ms();
        let claimed = match router.store.claim_webhook_deliveries(&router.opts.node, now, claim_ms, CLAIM).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "claiming webhook deliveries failed");
                Vec::new()
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = router.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let mut sends = tokio::task::JoinSet::new();
        for delivery in claimed {
            let (router, clients) = (router.clone(), clients.clone());
            sends.spawn(async move { deliver(&router, &clients, delivery).await });
        }
        while sends.join_next().await.is_some() {}
    }
}

async fn deliver(router: &Router, clients: &Clients, d: WebhookDelivery) {
    let policy = match router.policies.load().by_id.get(&d.policy_id).cloned() {
        Some(p) => Some(p),
        // Disabled since, or not loaded yet: the store has the truth.
        None => router.store.webhook_policy(d.policy_id).await.ok().flatten(),
    };
    let attempt = match policy.as_ref().filter(|p| p.enabled) {
        None => give_up("the policy was deleted or disabled"),
        Some(p) => match p.targets.get(d.target as usize) {
            None => give_up("the target was removed from the policy"),
            Some(_) => attempt(router, clients, p, &d).await,
        },
    };
    match (&attempt.error, attempt.retry_at_ms) {
        (None, _) => router.delivered.fetch_add(1, Ordering::Relaxed),
        (Some(_), Some(_)) => router.retried.fetch_add(1, Ordering::Relaxed),
        (Some(_), None) => router.failed.fetch_add(1, Ordering::Relaxed),
    };
    if let Some(e) = &attempt.error {
        tracing::debug!(delivery = d.id, policy = d.policy_id, error = %e, "webhook delivery failed");
    }
    if let Err(e) = router.store.finish_webhook_delivery(d.id, &attempt, crate::event::now_ms()).await {
        // The claim lapses and the delivery is sent again: at least once, not exactly once.
        tracing::warn!(delivery = d.id, error = %e, "recording a webhook delivery failed");
    }
}

fn give_up(why: &str) -> DeliveryAttempt {
    DeliveryAttempt { http_status: None, error: Some(why.to_owned()), retry_at_ms: None }
}

async fn attempt(router: &Router, clients: &Clients, p: &WebhookPolicy, d: &WebhookDelivery) -> DeliveryAttempt {
    let target = &p.targets[d.target as usize];
    // A literal internal address never becomes allowed by waiting.
    if let Err(why) = router.opts.addresses.check_url(&target.address) {
        return give_up(&why);
    }
    let client = if target.skip_cert_verify { &clients.unverified } else { &clients.verified };
    let mut req = client
        .post(&target.address)
        .header("content-type", super::payload::content_type(&target.payload_format))
        .header("x-berth-event", d.event_type.as_str())
        .header("x-berth-delivery", d.id.to_string())
        .body(d.payload.clone());
    if let Some(auth) = target.auth_header.as_deref().filter(|a| !a.is_empty()) {
        req = req.header("authorization", auth);
    }
    if let Some(secret) = target.secret.as_deref().filter(|s| !s.is_empty()) {
        req = req.header(super::sign::HEADER, super::sign::signature(secret, d.payload.as_bytes()));
    }
    let retry_at = router.opts.retry_at(d.attempts + 1, crate::event::now_ms());
    match post(req).await {
        Ok(Answer { status, .. }) if (200..300).contains(&status) => {
            DeliveryAttempt { http_status: Some(status), error: None, retry_at_ms: None }
        }
        Ok(Answer { status, body }) => {
            let body: String = body.chars().take(ERROR_BODY).collect();
            DeliveryAttempt {
                http_status: Some(status),
                error: Some(format!("the target answered {status}: {}", body.trim())),
                retry_at_ms: retry_at,
            }
        }
        Err(e) => DeliveryAttempt { http_status: None, error: Some(e), retry_at_ms: retry_at },
    }
}
