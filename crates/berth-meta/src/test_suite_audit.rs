//! The [`crate::AuditStore`] part of the shared backend suite (see
//! [`crate::metastore_test_suite!`]). Two store instances on one database
//! (two nodes) are tested by each backend with
//! [`appenders_on_two_nodes_stay_linear`].

use crate::{apply_retention, verify_chain, AuditEvent, AuditStore, LeaseStore, Verdict, GENESIS, RETENTION_JOB};
use std::time::Duration;

fn event(n: i64, time_ms: i64) -> AuditEvent {
    AuditEvent {
        time_ms,
        actor: format!("user{}", n % 3),
        source: "192.0.2.1".into(),
        action: "pull".into(),
        resource: format!("team/app:v{n}"),
        success: n % 5 != 0,
        status: if n % 5 == 0 { 404 } else { 200 },
    }
}

/// Every entry from 1 to the head, links checked here directly (not by
/// the verifier under test).
async fn assert_linear(s: &dyn AuditStore, expected: i64) {
    let all = s.audit_entries(0, 100_000).await.unwrap();
    assert_eq!(all.len() as i64, expected);
    let mut prev = GENESIS.to_owned();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.id, i as i64 + 1, "ids are contiguous");
        assert_eq!(e.prev_hash, prev, "entry {} links to the one before", e.id);
        assert_eq!(e.hash.len(), 64);
        prev = e.hash.clone();
    }
    let chain = s.audit_chain().await.unwrap();
    assert_eq!((chain.head_id, chain.head_hash.as_str()), (expected, prev.as_str()));
}

pub async fn audit_batches_append_in_order_and_link(s: &dyn AuditStore) {
    let chain = s.audit_chain().await.unwrap();
    assert_eq!((chain.head_id, chain.head_hash.as_str(), chain.anchor_id), (0, GENESIS, 0));
    assert_eq!(
        verify_chain(s, 10).await.unwrap(),
        Verdict::Intact { entries: 0, head_id: 0, head_hash: GENESIS.into(), anchor_id: 0 }
    );
    assert!(s.append_audit(&[]).await.unwrap().is_empty());
    let first: Vec<_> = (1..=3).map(|n| event(n, 1000 + n)).collect();
    let got = s.append_audit(&first).await.unwrap();
    assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(got[0].prev_hash, GENESIS);
    let second: Vec<_> = (4..=7).map(|n| event(n, 1000 + n)).collect();
    let more = s.append_audit(&second).await.unwrap();
    assert_eq!((more[0].id, &more[0].prev_hash), (4, &got[2].hash), "a batch continues the chain");
    // What is read back is what was appended, field for field.
    let stored = s.audit_entries(0, 100).await.unwrap();
    assert_eq!(stored, [got, more].concat());
    assert_eq!(stored[4].event, event(5, 1005));
    assert!(!stored[4].event.success && stored[4].event.status == 404);
    assert_linear(s, 7).await;
    // Pages.
    let page = s.audit_entries(2, 3).await.unwrap();
    assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [3, 4, 5]);
    match verify_chain(s, 2).await.unwrap() {
        Verdict::Intact { entries, head_id, head_hash, anchor_id } => {
            assert_eq!((entries, head_id, anchor_id), (7, 7, 0));
            assert_eq!(head_hash, stored[6].hash);
        }
        broken => panic!("{broken:?}"),
    }
}

pub async fn audit_concurrent_appends_stay_linear(s: &dyn AuditStore) {
    let task = |t: i64| async move {
        for b in 0..5 {
            let batch: Vec<_> = (0..7).map(|i| event(t * 100 + b * 10 + i, 1)).collect();
            s.append_audit(&batch).await.unwrap();
        }
    };
    tokio::join!(task(0), task(1), task(2), task(3), task(4), task(5), task(6), task(7));
    assert_linear(s, 8 * 5 * 7).await;
    assert!(matches!(verify_chain(s, 50).await.unwrap(), Verdict::Intact { entries: 280, .. }));
}

/// `a` and `b` are two store instances (two nodes) on one database.
pub async fn appenders_on_two_nodes_stay_linear(a: &dyn AuditStore, b: &dyn AuditStore) {
    async fn node(s: &dyn AuditStore, base: i64) {
        for i in 0..30 {
            s.append_audit(&[event(base + i, 1), event(base + i + 1000, 1)]).await.unwrap();
        }
    }
    tokio::join!(node(a, 0), node(b, 10_000), node(a, 20_000), node(b, 30_000));
    assert_linear(a, 4 * 30 * 2).await;
    assert_linear(b, 4 * 30 * 2).await;
    let mut resources: Vec<String> =
        a.audit_entries(0, 1000).await.unwrap().into_iter().map(|e| e.event.resource).collect();
    resources.sort();
    resources.dedup();
    assert_eq!(resources.len(), 240, "nothing lost or duplicated");
}

pub async fn audit_retention_keeps_the_chain_verifiable(s: &dyn AuditStore) {
    // Times 100, 200, …, 1000; one out of order (an event recorded late by
    // a slow node) at id 4.
    let events: Vec<_> = (1..=10).map(|n| event(n, if n == 4 { 50 } else { n * 100 })).collect();
    let all = s.append_audit(&events).await.unwrap();
    assert_eq!(s.prune_audit(100, 100).await.unwrap(), 0, "nothing is older than the first entry");
    // Older than 450: ids 1–4 (id 4 out of order, but older too); the walk
    // from the oldest stops at id 5 (time 500).
    assert_eq!(s.prune_audit(450, 100).await.unwrap(), 4);
    let chain = s.audit_chain().await.unwrap();
    assert_eq!((chain.anchor_id, chain.anchor_hash.as_str()), (4, all[3].hash.as_str()));
    assert_eq!(s.audit_entries(0, 100).await.unwrap().first().map(|e| e.id), Some(5));
    assert!(matches!(verify_chain(s, 3).await.unwrap(), Verdict::Intact { entries: 6, head_id: 10, anchor_id: 4, .. }));
    // A limit bounds one run; the next continues.
    assert_eq!(s.prune_audit(900, 2).await.unwrap(), 2);
    assert_eq!(s.prune_audit(900, 2).await.unwrap(), 2);
    assert_eq!(s.prune_audit(900, 2).await.unwrap(), 0);
    assert_eq!(s.audit_chain().await.unwrap().anchor_id, 8);
    // Appending after a prune continues from the head, not the anchor.
    let next = s.append_audit(&[event(11, 1100)]).await.unwrap();
    assert_eq!((next[0].id, &next[0].prev_hash), (11, &all[9].hash));
    // Everything gone: the anchor is the head, and an empty chain verifies.
    assert_eq!(s.prune_audit(i64::MAX, 100).await.unwrap(), 3);
    assert!(matches!(
        verify_chain(s, 3).await.unwrap(),
        Verdict::Intact { entries: 0, head_id: 11, anchor_id: 11, .. }
    ));
}

/// Retention as the server runs it: under a lease, with the caller's clock.
pub async fn audit_retention_runs_once_per_cluster<S: LeaseStore + AuditStore>(s: &S) {
    const DAY: i64 = 86_400_000;
    let events: Vec<_> = (0..10).map(|n| event(n, n * DAY)).collect();
    s.append_audit(&events).await.unwrap();
    let keep = Duration::from_millis(3 * DAY as u64);
    // Another node holds the lease: nothing happens here.
    assert!(s.try_acquire_lease(RETENTION_JOB, "other-node", Duration::from_secs(60), 10 * DAY).await.unwrap());
    assert_eq!(apply_retention(s, "this-node", keep, || 10 * DAY).await.unwrap(), None);
    assert_eq!(s.audit_entries(0, 100).await.unwrap().len(), 10);
    // Once it has expired (a minute later): days 0–7 are more than 3 days old.
    let later = 10 * DAY + 61_000;
    assert_eq!(apply_retention(s, "this-node", keep, || later).await.unwrap(), Some(8));
    assert_eq!(s.audit_chain().await.unwrap().anchor_id, 8);
    assert!(matches!(verify_chain(s, 4).await.unwrap(), Verdict::Intact { entries: 2, anchor_id: 8, .. }));
    // The lease was released: another node may run next.
    assert!(s.try_acquire_lease(RETENTION_JOB, "other-node", Duration::from_secs(60), later).await.unwrap());
}
