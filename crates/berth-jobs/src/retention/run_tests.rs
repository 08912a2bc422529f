//! A run on a real (SQLite) store: dry run then apply, the record, the
//! caches told, the lease.

use super::run::{lease_name, run, Removed, RetentionOptions};
use super::RetentionError;
use crate::ManualClock;
use berth_meta::sqlite::SqliteStore;
use berth_meta::{LeaseStore, MetaStore, NewManifest, RetentionStore};
use berth_oci::{Algorithm, Digest, RepoName, Tag};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn image(body: &str) -> NewManifest {
    NewManifest {
        digest: Digest::compute(Algorithm::Sha256, body.as_bytes()),
        media_type: berth_oci::media_type::OCI_MANIFEST.into(),
        artifact_type: None,
        subject: None,
        annotations: None,
        body: Bytes::from(body.to_owned()),
        children: vec![],
    }
}

const POLICY: &str = r#"{"rules": [{"template": "latestPushedK", "params": {"latestPushedK": 2},
    "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
    "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}]}"#;

#[tokio::test]
async fn dry_run_then_apply_removes_what_the_plan_listed() {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteStore::open(&dir.path().join("m.sqlite")).unwrap();
    let repo = RepoName::parse("team/app").unwrap();
    let images: Vec<_> = (1..=4).map(|i| image(&format!("m{i}"))).collect();
    for (i, m) in images.iter().enumerate() {
        meta.put_manifest(&repo, m, &[Tag::parse(&format!("v{}", i + 1)).unwrap()], i as i64 + 1).await.unwrap();
    }
    let clock = ManualClock::new(1_000);
    let err = run(&meta, &clock, "team", &RetentionOptions::default()).await.unwrap_err();
    assert!(matches!(err, RetentionError::NoPolicy(_)), "{err}");
    meta.set_retention_policy("team", POLICY, None, 0).await.unwrap();

    let told: Arc<Mutex<Vec<Removed>>> = Arc::default();
    let sink = told.clone();
    let opts = RetentionOptions {
        dry_run: true,
        batch: 1,
        invalidate: Some(Arc::new(move |r: Vec<Removed>| {
            sink.lock().unwrap().extend(r);
            Box::pin(async { Ok(()) })
        })),
        ..RetentionOptions::default()
    };
    let dry = run(&meta, &clock, "team", &opts).await.unwrap();
    assert_eq!((dry.retained, dry.removed), (2, 2));
    assert_eq!(meta.retention_artifacts("team").await.unwrap().len(), 4, "a dry run removes nothing");
    assert!(told.lock().unwrap().is_empty());

    let applied = run(&meta, &clock, "team", &RetentionOptions { dry_run: false, ..opts.clone() }).await.unwrap();
    let listed =
        |ds: &[super::Decision]| ds.iter().filter(|d| !d.retained).map(|d| d.digest.clone()).collect::<Vec<_>>();
    assert_eq!(listed(&applied.decisions), listed(&dry.decisions));
    let mut left: Vec<String> =
        meta.retention_artifacts("team").await.unwrap().into_iter().flat_map(|a| a.tags).collect();
    left.sort();
    assert_eq!(left, ["v3", "v4"], "the two most recently pushed stay");
    let mut told: Vec<_> = told.lock().unwrap().iter().map(|r| (r.digest.clone(), r.tags.clone())).collect();
    told.sort();
    let mut want =
        vec![(images[0].digest.clone(), vec!["v1".to_owned()]), (images[1].digest.clone(), vec!["v2".to_owned()])];
    want.sort();
    assert_eq!(told, want, "every removal reached the caches, with its tags");

    let runs = meta.retention_runs("team", 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| (r.dry_run, r.status.as_str())).collect::<Vec<_>>(),
        [(false, "succeeded"), (true, "succeeded")]
    );
    assert_eq!(meta.retention_items(runs[1].id).await.unwrap().len(), 4);
    // Another holder's run of the same project waits its turn.
    assert!(meta.try_acquire_lease(&lease_name("team"), "other", Duration::from_secs(60), 1_000).await.unwrap());
    let busy = run(&meta, &clock, "team", &RetentionOptions::default()).await.unwrap_err();
    assert!(matches!(busy, RetentionError::Busy(_)), "{busy}");
}

#[tokio::test]
async fn a_due_time_runs_once_however_many_nodes_wake_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteStore::open(&dir.path().join("m.sqlite")).unwrap();
    let repo = RepoName::parse("team/app").unwrap();
    for i in 1..=3 {
        meta.put_manifest(&repo, &image(&format!("m{i}")), &[Tag::parse(&format!("v{i}")).unwrap()], i).await.unwrap();
    }
    meta.set_retention_policy("team", POLICY, Some("0 * * * *"), 0).await.unwrap();
    let clock = ManualClock::new(3_600_000);
    let node = |n: &str| RetentionOptions { holder: n.into(), ..RetentionOptions::default() };
    let first = super::run_due(&meta, &clock, "team", 3_600_000, &node("a")).await.unwrap();
    assert_eq!(first.map(|r| r.removed), Some(1));
    clock.advance(1_000);
    assert!(super::run_due(&meta, &clock, "team", 3_600_000, &node("b")).await.unwrap().is_none(), "already ran");
    // A dry run does not count as the scheduled one.
    clock.set(7_200_000);
    run(&meta, &clock, "team", &RetentionOptions { dry_run: true, ..node("c") }).await.unwrap();
    assert!(super::run_due(&meta, &clock, "team", 7_200_000, &node("b")).await.unwrap().is_some());
}
