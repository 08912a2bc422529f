//! The [`crate::WebhookStore`] part of the shared backend suite (see
//! [`crate::metastore_test_suite!`]). Times are injected: a claim at `now`
//! holds until `now + claim_ms`, exclusive.

use crate::{
    DeliveryAttempt, DeliveryStatus, MetaError, MetaStore, NewWebhookDelivery, NewWebhookPolicy, WebhookDelivery,
    WebhookTarget,
};
use std::collections::BTreeSet;

fn target(address: &str) -> WebhookTarget {
    WebhookTarget {
        address: address.into(),
        payload_format: "Default".into(),
        auth_header: Some("Bearer t0k".into()),
        secret: Some("hmac-key".into()),
        skip_cert_verify: false,
    }
}

fn policy(project: &str, name: &str) -> NewWebhookPolicy {
    NewWebhookPolicy {
        project: project.into(),
        name: name.into(),
        description: format!("about {name}"),
        enabled: true,
        event_types: vec!["PUSH_ARTIFACT".into()],
        targets: vec![target("https://hooks.example/a")],
        creator: "alice".into(),
    }
}

fn delivery(policy_id: i64, due_ms: i64) -> NewWebhookDelivery {
    NewWebhookDelivery {
        policy_id,
        target: 0,
        event_type: "PUSH_ARTIFACT".into(),
        payload: format!("{{\"due\":{due_ms}}}"),
        due_ms,
    }
}

const DELIVERED: DeliveryAttempt = DeliveryAttempt { http_status: Some(200), error: None, retry_at_ms: None };

fn ids(ds: &[WebhookDelivery]) -> Vec<i64> {
    ds.iter().map(|d| d.id).collect()
}

/// One project with one policy; returns the policy's id.
async fn setup(s: &dyn MetaStore, project: &str) -> i64 {
    s.create_project(project, false, None, 1).await.unwrap();
    s.create_webhook_policy(&policy(project, "hook"), 2).await.unwrap().id
}

/// Enqueues one delivery per due time at `now_ms`; returns their ids in
/// the order given (told apart by payload: ids need not follow it).
async fn enqueue(s: &dyn MetaStore, policy_id: i64, due: &[i64], now_ms: i64) -> Vec<i64> {
    let batch: Vec<_> = due
        .iter()
        .enumerate()
        .map(|(i, d)| NewWebhookDelivery {
            payload: format!("{{\"n\":{i},\"at\":{now_ms}}}"),
            ..delivery(policy_id, *d)
        })
        .collect();
    s.enqueue_webhook_deliveries(&batch, now_ms).await.unwrap();
    let log = s.webhook_deliveries(policy_id, None, 1000).await.unwrap();
    batch.iter().map(|b| log.iter().find(|d| d.payload == b.payload).expect("enqueued").id).collect()
}

pub async fn webhook_policies_are_created_listed_updated_and_deleted(s: &dyn MetaStore) {
    s.create_project("team-a", false, None, 1).await.unwrap();
    s.create_project("team-b", false, None, 1).await.unwrap();
    let ci = s.create_webhook_policy(&policy("team-a", "ci"), 10).await.unwrap();
    assert_eq!((ci.project.as_str(), ci.name.as_str(), ci.creator.as_str()), ("team-a", "ci", "alice"));
    assert_eq!((ci.enabled, ci.created_ms, ci.updated_ms), (true, 10, 10));
    assert_eq!(s.webhook_policy(ci.id).await.unwrap().as_ref(), Some(&ci));
    // Listed in id order, not by name.
    let audit = s.create_webhook_policy(&policy("team-a", "audit"), 11).await.unwrap();
    assert!(audit.id > ci.id);
    assert_eq!(s.webhook_policies("team-a").await.unwrap(), [ci.clone(), audit.clone()]);
    assert!(s.webhook_policies("team-b").await.unwrap().is_empty());

    let mut change = policy("team-b", "ci-renamed");
    change.creator = "mallory".into();
    change.enabled = false;
    change.description = "changed".into();
    change.event_types = vec!["DELETE_ARTIFACT".into(), "PUSH_ARTIFACT".into()];
    change.targets = vec![target("http://other.example/b")];
    // Through the wrong project, or an unknown id: nothing.
    assert_eq!(s.update_webhook_policy("team-b", ci.id, &change, 20).await.unwrap(), None);
    assert_eq!(s.update_webhook_policy("team-a", ci.id + 1000, &change, 20).await.unwrap(), None);
    assert_eq!(s.webhook_policy(ci.id).await.unwrap().as_ref(), Some(&ci), "unchanged");
    let updated = s.update_webhook_policy("team-a", ci.id, &change, 20).await.unwrap().unwrap();
    // Project and creator are kept; everything else replaced.
    assert_eq!((updated.id, updated.project.as_str(), updated.creator.as_str()), (ci.id, "team-a", "alice"));
    assert_eq!(
        (updated.name.as_str(), updated.description.as_str(), updated.enabled),
        ("ci-renamed", "changed", false)
    );
    assert_eq!((updated.event_types.clone(), updated.targets.clone()), (change.event_types, change.targets));
    assert_eq!((updated.created_ms, updated.updated_ms), (10, 20));
    assert_eq!(s.webhook_policy(ci.id).await.unwrap().as_ref(), Some(&updated));

    assert!(!s.delete_webhook_policy("team-b", ci.id).await.unwrap(), "wrong project");
    assert!(s.delete_webhook_policy("team-a", ci.id).await.unwrap());
    assert!(!s.delete_webhook_policy("team-a", ci.id).await.unwrap());
    assert_eq!(s.webhook_policy(ci.id).await.unwrap(), None);
    assert_eq!(s.webhook_policies("team-a").await.unwrap(), [audit]);
}

pub async fn webhook_policy_names_are_unique_per_project(s: &dyn MetaStore) {
    s.create_project("team-a", false, None, 1).await.unwrap();
    s.create_project("team-b", false, None, 1).await.unwrap();
    let ci = s.create_webhook_policy(&policy("team-a", "ci"), 2).await.unwrap();
    let err = s.create_webhook_policy(&policy("team-a", "ci"), 3).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict(_)), "{err}");
    s.create_webhook_policy(&policy("team-b", "ci"), 4).await.expect("same name, other project");
    let err = s.create_webhook_policy(&policy("nope", "ci"), 5).await.unwrap_err();
    assert!(matches!(err, MetaError::NotFound(_)), "{err}");

    let other = s.create_webhook_policy(&policy("team-a", "other"), 6).await.unwrap();
    let err = s.update_webhook_policy("team-a", other.id, &policy("team-a", "ci"), 7).await.unwrap_err();
    assert!(matches!(err, MetaError::Conflict(_)), "{err}");
    assert_eq!(s.webhook_policies("team-a").await.unwrap(), [ci, other.clone()], "nothing changed");
    // Keeping its own name is no conflict.
    let kept = s.update_webhook_policy("team-a", other.id, &policy("team-a", "other"), 8).await.unwrap();
    assert_eq!(kept.map(|p| p.updated_ms), Some(8));
}

pub async fn webhook_enabled_policies_span_projects(s: &dyn MetaStore) {
    s.create_project("team-a", false, None, 1).await.unwrap();
    s.create_project("team-b", false, None, 1).await.unwrap();
    let a = s.create_webhook_policy(&policy("team-a", "on"), 2).await.unwrap();
    let mut off = policy("team-a", "off");
    off.enabled = false;
    s.create_webhook_policy(&off, 3).await.unwrap();
    let b = s.create_webhook_policy(&policy("team-b", "on"), 4).await.unwrap();
    let lib = s.create_webhook_policy(&policy("library", "on"), 5).await.unwrap();
    assert_eq!(s.enabled_webhook_policies().await.unwrap(), [a.clone(), b.clone(), lib.clone()]);
    let mut disable = policy("team-a", "on");
    disable.enabled = false;
    s.update_webhook_policy("team-a", a.id, &disable, 6).await.unwrap().unwrap();
    assert_eq!(s.enabled_webhook_policies().await.unwrap(), [b, lib]);
}

pub async fn webhook_targets_and_event_types_round_trip(s: &dyn MetaStore) {
    s.create_project("team-a", false, None, 1).await.unwrap();
    let mut p = policy("team-a", "shapes");
    // Order kept as given, not sorted.
    p.event_types = vec!["PUSH_ARTIFACT".into(), "DELETE_ARTIFACT".into(), "PULL_ARTIFACT".into()];
    p.targets = vec![
        WebhookTarget {
            address: "https://hooks.example/x?a=1&b=\"2\"".into(),
            payload_format: "CloudEvents".into(),
            auth_header: Some("Basic \"quoted\" \\ ünïcode\n".into()),
            secret: Some(String::new()),
            skip_cert_verify: false,
        },
        WebhookTarget {
            address: "http://10.0.0.1:8080/hook".into(),
            payload_format: "Default".into(),
            auth_header: None,
            secret: None,
            skip_cert_verify: true,
        },
    ];
    let created = s.create_webhook_policy(&p, 2).await.unwrap();
    let stored = s.webhook_policy(created.id).await.unwrap().unwrap();
    assert_eq!((stored.event_types, stored.targets), (p.event_types, p.targets));
    // Empty lists too.
    let mut empty = policy("team-a", "empty");
    (empty.event_types, empty.targets) = (vec![], vec![]);
    let created = s.create_webhook_policy(&empty, 3).await.unwrap();
    let stored = s.webhook_policy(created.id).await.unwrap().unwrap();
    assert!(stored.event_types.is_empty() && stored.targets.is_empty());
}

pub async fn deleting_a_project_deletes_its_webhooks(s: &dyn MetaStore) {
    let a = setup(s, "team-a").await;
    let b = setup(s, "team-b").await;
    let a_ids = enqueue(s, a, &[10, 20], 5).await;
    let b_ids = enqueue(s, b, &[10, 20], 5).await;
    // One finished delivery each, so pruning can tell if a's survived.
    assert!(s.finish_webhook_delivery(a_ids[0], &DELIVERED, 30).await.unwrap());
    assert!(s.finish_webhook_delivery(b_ids[0], &DELIVERED, 30).await.unwrap());

    assert!(s.delete_project("team-a").await.unwrap());
    assert_eq!(s.webhook_policy(a).await.unwrap(), None);
    assert!(s.webhook_deliveries(a, None, 10).await.unwrap().is_empty());
    // The rows are gone, not merely hidden: finishing them finds nothing.
    assert!(!s.finish_webhook_delivery(a_ids[1], &DELIVERED, 40).await.unwrap());
    let claimed = s.claim_webhook_deliveries("n1", 100, 1000, 10).await.unwrap();
    assert_eq!(ids(&claimed), [b_ids[1]]);
    assert_eq!(s.prune_webhook_deliveries(i64::MAX).await.unwrap(), 1, "only b's finished delivery");
    // A project re-created with the name inherits nothing.
    s.create_project("team-a", false, None, 50).await.unwrap();
    assert!(s.webhook_policies("team-a").await.unwrap().is_empty());
    assert!(s.enabled_webhook_policies().await.unwrap().iter().all(|p| p.id == b));
}

pub async fn webhook_claims_take_due_deliveries_oldest_first(s: &dyn MetaStore) {
    let p = setup(s, "team-a").await;
    // Enqueued out of due order; 300 is not due at 200.
    let d = enqueue(s, p, &[150, 50, 300, 100], 7).await;
    let first = s.claim_webhook_deliveries("n1", 200, 1000, 1).await.unwrap();
    assert_eq!(ids(&first), [d[1]], "limit 1: the oldest due");
    let c = &first[0];
    assert_eq!((c.policy_id, c.project.as_str(), c.target, c.event_type.as_str()), (p, "team-a", 0, "PUSH_ARTIFACT"));
    assert_eq!(
        (c.payload.as_str(), c.status, c.attempts, c.due_ms),
        ("{\"n\":1,\"at\":7}", DeliveryStatus::Pending, 0, 50)
    );
    assert_eq!((c.last_status, c.last_error.as_deref(), c.created_ms, c.updated_ms), (None, None, 7, 7));
    let rest = s.claim_webhook_deliveries("n2", 200, 1000, 10).await.unwrap();
    assert_eq!(ids(&rest), [d[3], d[0]], "due ones only, oldest due first");
    assert!(s.claim_webhook_deliveries("n2", 200, 1000, 10).await.unwrap().is_empty());
    assert_eq!(ids(&s.claim_webhook_deliveries("n3", 300, 1000, 10).await.unwrap()), [d[2]], "due at 300");
}

pub async fn webhook_claims_hold_until_they_lapse(s: &dyn MetaStore) {
    let p = setup(s, "team-a").await;
    let d = enqueue(s, p, &[100, 150], 7).await;
    assert_eq!(ids(&s.claim_webhook_deliveries("n1", 200, 1000, 1).await.unwrap()), [d[0]]);
    // Held until 1200: another claim gets the other delivery, then nothing.
    assert_eq!(ids(&s.claim_webhook_deliveries("n2", 300, 5000, 10).await.unwrap()), [d[1]]);
    assert!(s.claim_webhook_deliveries("n2", 1199, 1000, 10).await.unwrap().is_empty());
    // n1 died: its claim lapses at 1200 and the delivery is claimable again.
    assert_eq!(ids(&s.claim_webhook_deliveries("n3", 1200, 1000, 10).await.unwrap()), [d[0]]);
    assert!(s.claim_webhook_deliveries("n3", 2199, 1000, 10).await.unwrap().is_empty());
}

pub async fn webhook_finish_records_delivered_retry_and_failed(s: &dyn MetaStore) {
    let p = setup(s, "team-a").await;
    let d = enqueue(s, p, &[100, 100], 7).await;
    assert_eq!(s.claim_webhook_deliveries("n1", 200, 10_000, 10).await.unwrap().len(), 2);
    let log = |id: i64| async move {
        s.webhook_deliveries(p, None, 10).await.unwrap().into_iter().find(|x| x.id == id).unwrap()
    };

    assert!(s.finish_webhook_delivery(d[0], &DELIVERED, 250).await.unwrap());
    let ok = log(d[0]).await;
    assert_eq!(
        (ok.status, ok.attempts, ok.last_status, ok.last_error),
        (DeliveryStatus::Delivered, 1, Some(200), None)
    );
    assert_eq!((ok.due_ms, ok.updated_ms, ok.created_ms), (250, 250, 7));

    // A retry: pending, due at 5000; the claim (held until 10200) is released.
    let busy = DeliveryAttempt { http_status: Some(503), error: Some("busy".into()), retry_at_ms: Some(5000) };
    assert!(s.finish_webhook_delivery(d[1], &busy, 260).await.unwrap());
    let retry = log(d[1]).await;
    assert_eq!((retry.status, retry.attempts, retry.due_ms), (DeliveryStatus::Pending, 1, 5000));
    assert_eq!((retry.last_status, retry.last_error.as_deref()), (Some(503), Some("busy")));
    assert!(s.claim_webhook_deliveries("n2", 4999, 1000, 10).await.unwrap().is_empty());
    assert_eq!(ids(&s.claim_webhook_deliveries("n2", 5000, 1000, 10).await.unwrap()), [d[1]], "only d1: d0 was sent");

    // Given up: failed, never claimed again.
    let refused = DeliveryAttempt { http_status: None, error: Some("connection refused".into()), retry_at_ms: None };
    assert!(s.finish_webhook_delivery(d[1], &refused, 5100).await.unwrap());
    let failed = log(d[1]).await;
    assert_eq!((failed.status, failed.attempts, failed.due_ms), (DeliveryStatus::Failed, 2, 5100));
    assert_eq!((failed.last_status, failed.last_error.as_deref()), (None, Some("connection refused")));
    assert!(s.claim_webhook_deliveries("n3", i64::MAX / 2, 1000, 10).await.unwrap().is_empty());
    assert!(!s.finish_webhook_delivery(d[1] + 1000, &DELIVERED, 5200).await.unwrap(), "no such delivery");
}

pub async fn webhook_concurrent_claims_never_share_a_delivery(s: &dyn MetaStore) {
    let p = setup(s, "team-a").await;
    // A few rounds, so an unlucky interleaving is likely to show up.
    for round in 0..4 {
        let now = 1_000 * (round + 1);
        let all = enqueue(s, p, &(0..40).map(|i| now - 100 + i).collect::<Vec<_>>(), now - 200).await;
        let node = |n: &'static str| async move {
            let mut got = Vec::new();
            for _ in 0..40 {
                // Claims outlast the test: nothing is claimable twice.
                let claimed = s.claim_webhook_deliveries(n, now, 1_000_000, 5).await.unwrap();
                if claimed.is_empty() {
                    break;
                }
                assert!(claimed.len() <= 5, "limit respected");
                got.extend(ids(&claimed));
                tokio::task::yield_now().await;
            }
            got
        };
        let (a, b, c, d) = tokio::join!(node("n1"), node("n2"), node("n3"), node("n4"));
        let claimed: Vec<i64> = [a, b, c, d].concat();
        let unique: BTreeSet<i64> = claimed.iter().copied().collect();
        assert_eq!(unique.len(), claimed.len(), "round {round}: a delivery claimed twice: {claimed:?}");
        assert_eq!(unique, all.into_iter().collect(), "round {round}: every delivery claimed once");
    }
}

pub async fn webhook_enqueue_skips_deleted_policies(s: &dyn MetaStore) {
    let keep = setup(s, "team-a").await;
    let gone = s.create_webhook_policy(&policy("team-a", "gone"), 3).await.unwrap().id;
    assert!(s.delete_webhook_policy("team-a", gone).await.unwrap());
    let batch = [delivery(keep, 10), delivery(gone, 10), delivery(gone + 1000, 10), delivery(keep, 20)];
    s.enqueue_webhook_deliveries(&batch, 5).await.expect("skipped, not refused");
    s.enqueue_webhook_deliveries(&[delivery(gone, 10)], 5).await.unwrap();
    s.enqueue_webhook_deliveries(&[], 5).await.unwrap();
    let claimed = s.claim_webhook_deliveries("n1", 100, 1000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|d| (d.policy_id, d.due_ms)).collect::<Vec<_>>(), [(keep, 10), (keep, 20)]);
    assert!(s.webhook_deliveries(gone, None, 10).await.unwrap().is_empty());
}

pub async fn webhook_deliveries_page_newest_first_and_prune_finished(s: &dyn MetaStore) {
    let p = setup(s, "team-a").await;
    let other = s.create_webhook_policy(&policy("team-a", "other"), 3).await.unwrap().id;
    let d = enqueue(s, p, &[10, 10, 10, 10, 10], 5).await;
    enqueue(s, other, &[10], 5).await;
    let all = s.webhook_deliveries(p, None, 10).await.unwrap();
    assert!(ids(&all).windows(2).all(|w| w[0] > w[1]), "newest first");
    assert_eq!(ids(&all).into_iter().collect::<BTreeSet<_>>(), d.iter().copied().collect(), "this policy's only");
    let page1 = s.webhook_deliveries(p, None, 2).await.unwrap();
    let page2 = s.webhook_deliveries(p, Some(page1[1].id), 2).await.unwrap();
    let page3 = s.webhook_deliveries(p, Some(page2[1].id), 2).await.unwrap();
    assert_eq!([ids(&page1), ids(&page2), ids(&page3)].concat(), ids(&all));
    assert!(s.webhook_deliveries(p, Some(page3[0].id), 2).await.unwrap().is_empty());

    let failed = DeliveryAttempt { http_status: Some(500), error: Some("no".into()), retry_at_ms: None };
    let retry = DeliveryAttempt { http_status: Some(500), error: Some("again".into()), retry_at_ms: Some(9000) };
    s.finish_webhook_delivery(d[0], &DELIVERED, 100).await.unwrap();
    s.finish_webhook_delivery(d[1], &failed, 200).await.unwrap();
    s.finish_webhook_delivery(d[2], &retry, 200).await.unwrap();
    s.finish_webhook_delivery(d[3], &DELIVERED, 300).await.unwrap();
    // d4 and other's delivery: pending since 5, older than any cutoff.
    assert_eq!(s.prune_webhook_deliveries(250).await.unwrap(), 2, "d0 and d1");
    assert_eq!(s.prune_webhook_deliveries(250).await.unwrap(), 0);
    assert_eq!(s.prune_webhook_deliveries(300).await.unwrap(), 0, "the cutoff is exclusive");
    let left = |want: &[i64]| want.iter().copied().collect::<BTreeSet<_>>();
    assert_eq!(
        ids(&s.webhook_deliveries(p, None, 10).await.unwrap()).into_iter().collect::<BTreeSet<_>>(),
        left(&d[2..])
    );
    assert_eq!(s.prune_webhook_deliveries(i64::MAX).await.unwrap(), 1, "d3; pending ones stay");
    assert_eq!(
        ids(&s.webhook_deliveries(p, None, 10).await.unwrap()).into_iter().collect::<BTreeSet<_>>(),
        left(&[d[2], d[4]])
    );
    assert_eq!(s.webhook_deliveries(other, None, 10).await.unwrap().len(), 1);
}
