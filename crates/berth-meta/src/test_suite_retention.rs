//! The [`crate::RetentionStore`] part of the shared backend suite (see
//! [`crate::metastore_test_suite!`]).

use crate::{ChildRef, MetaStore, NewManifest, RetentionItem};
use berth_oci::{Algorithm, Digest, RepoName, Tag};
use bytes::Bytes;

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

fn digest(content: &str) -> Digest {
    Digest::compute(Algorithm::Sha256, content.as_bytes())
}

fn tags(names: &[&str]) -> Vec<Tag> {
    names.iter().map(|t| Tag::parse(t).unwrap()).collect()
}

fn image(body: &str) -> NewManifest {
    NewManifest {
        digest: digest(body),
        media_type: berth_oci::media_type::OCI_MANIFEST.into(),
        artifact_type: None,
        subject: None,
        annotations: None,
        body: Bytes::from(body.to_owned()),
        children: vec![],
    }
}

pub async fn retention_policies_are_kept_per_project(s: &dyn MetaStore) {
    assert_eq!(s.retention_policy("team").await.unwrap(), None);
    s.set_retention_policy("team", r#"{"rules":[]}"#, None, 1).await.unwrap();
    s.set_retention_policy("ops", r#"{"a":1}"#, Some("0 0 * * *"), 2).await.unwrap();
    s.set_retention_policy("team", r#"{"b":2}"#, Some("@hourly"), 3).await.unwrap();
    let team = s.retention_policy("team").await.unwrap().unwrap();
    assert_eq!((team.policy.as_str(), team.cron.as_deref(), team.updated_ms), (r#"{"b":2}"#, Some("@hourly"), 3));
    s.set_retention_policy("manual", "{}", None, 4).await.unwrap();
    let scheduled: Vec<_> = s.scheduled_retention_policies().await.unwrap().into_iter().map(|p| p.project).collect();
    assert_eq!(scheduled, ["ops", "team"], "only those with a cron, by project");
    assert!(s.delete_retention_policy("team").await.unwrap());
    assert!(!s.delete_retention_policy("team").await.unwrap());
    assert_eq!(s.retention_policy("team").await.unwrap(), None);
}

pub async fn retention_lists_a_projects_artifacts(s: &dyn MetaStore) {
    let (app, web, other, lib) = (repo("team/app"), repo("team/web"), repo("teamx/app"), repo("busybox"));
    let (a1, a2) = (image("a1"), image("a2"));
    s.put_manifest(&app, &a1, &tags(&["v1"]), 10).await.unwrap();
    s.put_manifest(&app, &a2, &tags(&["v2", "latest"]), 20).await.unwrap();
    // A tag moved onto an older manifest makes it pushed at the tag's time.
    s.put_manifest(&app, &a1, &tags(&["stable"]), 30).await.unwrap();
    let child = image("child");
    let index = NewManifest {
        media_type: berth_oci::media_type::OCI_INDEX.into(),
        children: vec![ChildRef { digest: child.digest.clone(), is_manifest: true, required: true }],
        ..image("index")
    };
    s.put_manifest(&web, &child, &[], 5).await.unwrap();
    s.put_manifest(&web, &index, &tags(&["multi"]), 6).await.unwrap();
    let sig = NewManifest { subject: Some(index.digest.clone()), ..image("sig") };
    s.put_manifest(&web, &sig, &[], 7).await.unwrap();
    s.put_manifest(&other, &image("x"), &tags(&["v1"]), 1).await.unwrap();
    s.put_manifest(&lib, &image("bb"), &tags(&["latest"]), 1).await.unwrap();

    let team = s.retention_artifacts("team").await.unwrap();
    let by = |d: &Digest| team.iter().find(|a| &a.digest == d).unwrap();
    assert_eq!(team.len(), 5, "team/app and team/web only, not teamx/app: {team:?}");
    let (x1, x2) = (by(&a1.digest), by(&a2.digest));
    assert_eq!(
        (x1.repository.as_str(), x1.tags.clone(), x1.pushed_ms),
        ("team/app", vec!["stable".into(), "v1".into()], 30)
    );
    assert_eq!((x2.tags.clone(), x2.pushed_ms, x2.last_pulled_ms), (vec!["latest".into(), "v2".into()], 20, 0));
    let xi = by(&index.digest);
    assert_eq!(
        (xi.children.clone(), xi.media_type.as_str()),
        (vec![child.digest.clone()], berth_oci::media_type::OCI_INDEX)
    );
    assert!(by(&child.digest).tags.is_empty());
    assert_eq!(by(&sig.digest).subject.as_ref(), Some(&index.digest));
    let library = s.retention_artifacts("library").await.unwrap();
    assert_eq!(library.iter().map(|a| a.repository.as_str()).collect::<Vec<_>>(), ["busybox"]);

    // Pull times only move forward; unknown manifests are skipped.
    let pulls = [
        ("team/app".to_owned(), a1.digest.clone(), 100),
        ("team/app".to_owned(), a1.digest.clone(), 90),
        ("team/app".to_owned(), digest("nothing"), 100),
        ("nope/app".to_owned(), a2.digest.clone(), 100),
    ];
    s.record_pulls(&pulls).await.unwrap();
    s.record_pulls(&[("team/app".to_owned(), a1.digest.clone(), 50)]).await.unwrap();
    let team = s.retention_artifacts("team").await.unwrap();
    let pulled: Vec<_> = team.iter().map(|a| (a.digest.clone(), a.last_pulled_ms)).filter(|p| p.1 > 0).collect();
    assert_eq!(pulled, [(a1.digest.clone(), 100)]);
}

pub async fn retention_runs_record_their_decisions(s: &dyn MetaStore) {
    let item = |d: &str, retained: bool, reason: &str| RetentionItem {
        repository: "team/app".into(),
        digest: digest(d),
        tags: if retained { vec!["a".into(), "b".into()] } else { vec![] },
        retained,
        reason: reason.into(),
    };
    let first = s.start_retention_run("team", true, 10).await.unwrap();
    let second = s.start_retention_run("team", false, 20).await.unwrap();
    s.start_retention_run("other", false, 30).await.unwrap();
    let items = [item("1", true, "latestPushedK"), item("2", false, "no rule retains it"), item("3", true, "always")];
    s.add_retention_items(second, &items[..2]).await.unwrap();
    s.add_retention_items(second, &items[2..]).await.unwrap();
    assert!(s.finish_retention_run(second, "succeeded", 25).await.unwrap());
    assert!(!s.finish_retention_run(i64::MAX, "succeeded", 25).await.unwrap());
    let runs = s.retention_runs("team", 10).await.unwrap();
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [second, first], "newest first");
    assert_eq!((runs[0].dry_run, runs[0].finished_ms, runs[0].status.as_str()), (false, Some(25), "succeeded"));
    assert_eq!((runs[1].dry_run, runs[1].finished_ms, runs[1].status.as_str()), (true, None, "running"));
    assert_eq!(s.retention_runs("team", 1).await.unwrap().len(), 1);
    assert_eq!(s.retention_items(second).await.unwrap(), items);
    assert!(s.retention_items(first).await.unwrap().is_empty());
}

pub async fn retention_runs_page_by_id_and_are_found_by_id(s: &dyn MetaStore) {
    let a = s.start_retention_run("team", true, 10).await.unwrap();
    let other = s.start_retention_run("other", false, 15).await.unwrap();
    let b = s.start_retention_run("team", false, 20).await.unwrap();
    let c = s.start_retention_run("team", true, 30).await.unwrap();
    let ids = |runs: Vec<crate::RetentionRun>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(s.retention_runs_before("team", None, 2).await.unwrap()), [c, b], "newest first");
    assert_eq!(ids(s.retention_runs_before("team", Some(b), 2).await.unwrap()), [a], "only older, only team's");
    assert!(s.retention_runs_before("team", Some(a), 2).await.unwrap().is_empty());
    let found = s.retention_run(other).await.unwrap().unwrap();
    assert_eq!((found.id, found.project.as_str(), found.dry_run, found.started_ms), (other, "other", false, 15));
    assert_eq!(found.status, "running");
    assert!(s.retention_run(i64::MAX).await.unwrap().is_none());
}
