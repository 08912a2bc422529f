//! The behaviour every metadata backend must share. Each backend's tests
//! invoke [`metastore_test_suite!`] with a factory returning a fresh store
//! (plus anything that must live as long, such as a temp dir).
//! Expected values follow the distribution spec (lexical order, `last`
//! exclusive, deletes visible at once), not any one backend.

use crate::{ChildRef, MetaError, MetaStore, NewManifest, UploadSession};
use berth_oci::{Algorithm, Digest, RepoName, Tag};
use bytes::Bytes;
use std::time::Duration;

#[macro_export]
macro_rules! metastore_test_suite {
    ($factory:expr) => {
        $crate::metastore_test_suite!(@tests $factory;
            delete_repository_removes_it_whole,
            uploads_advance_only_from_the_expected_offset,
            stale_uploads_oldest_first,
            blobs_are_visible_per_repository,
            mount_needs_a_visible_source,
            manifest_requires_its_blobs,
            index_requires_children_unless_sparse,
            tags_move_and_list_lexically,
            delete_manifest_removes_its_tags,
            referrers_filter_by_artifact_type,
            catalog_pages_lexically,
            concurrent_advances_have_one_winner,
            concurrent_put_manifest_and_unlink_blob_stay_atomic,
            concurrent_put_and_delete_manifest_leave_no_dangling_tag,
            concurrent_first_pushes_share_one_repository,
            leases_exclude_other_holders_until_expiry,
            concurrent_acquires_have_one_winner,
            leased_job_resumes_after_its_holder_dies,
            gc_removes_only_old_unreferenced_links,
            gc_deletes_blobs_a_grace_period_after_marking,
            gc_spares_a_blob_touched_after_marking,
            gc_untagged_spares_children_and_referrers,
            gc_concurrent_commit_and_deletion_agree,
            gc_usage_counts_shared_bytes,
        );
        $crate::metastore_test_suite!(@users $factory;
            users_are_unique_and_listed_by_name,
            password_change_bumps_the_generation,
            first_admin_is_created_once,
            secrets_keep_the_first_value,
            library_is_public_from_the_start,
            projects_members_and_roles,
        );
        $crate::metastore_test_suite!(@quota $factory;
            quota_counts_each_blob_once_per_project,
            quota_reports_shared_and_exclusive_bytes,
            quota_stops_counting_a_deleted_manifest,
            quota_check_counts_only_what_is_new,
            immutable_rules_per_project,
            manifest_tags_lists_a_digests_tags,
        );
        $crate::metastore_test_suite!(@robots $factory;
            robots_are_created_found_and_unique,
            robots_must_fit_their_project,
            robots_list_by_name_and_project,
            robots_update_rotate_and_delete,
            deleting_a_project_deletes_its_robots,
            concurrent_grant_and_project_delete_leave_no_permission,
        );
        $crate::metastore_test_suite!(@audit $factory;
            audit_batches_append_in_order_and_link,
            audit_concurrent_appends_stay_linear,
            audit_retention_keeps_the_chain_verifiable,
            audit_retention_runs_once_per_cluster,
        );
        $crate::metastore_test_suite!(@retention $factory;
            retention_policies_are_kept_per_project,
            retention_lists_a_projects_artifacts,
            retention_runs_record_their_decisions,
            retention_runs_page_by_id_and_are_found_by_id,
        );
        $crate::metastore_test_suite!(@system $factory;
            system_settings_are_absent_then_replaced,
            system_settings_last_writer_wins_under_races,
        );
    };
    (@system $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($factory)().await;
                $crate::test_suite_system::$name(&store).await;
            }
        )*
    };
    (@retention $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($factory)().await;
                $crate::test_suite_retention::$name(&store).await;
            }
        )*
    };
    (@audit $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($factory)().await;
                $crate::test_suite_audit::$name(&store).await;
            }
        )*
    };
    (@quota $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($factory)().await;
                $crate::test_suite_quota::$name(&store).await;
            }
        )*
    };
    (@robots $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($factory)().await;
                $crate::test_suite_robots::$name(&store).await;
            }
        )*
    };
    (@users $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($factory)().await;
                $crate::test_suite_users::$name(&store).await;
            }
        )*
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($factory)().await;
                $crate::test_suite::$name(&store).await;
            }
        )*
    };
}

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

fn digest(content: &str) -> Digest {
    Digest::compute(Algorithm::Sha256, content.as_bytes())
}

fn tag(s: &str) -> Tag {
    Tag::parse(s).unwrap()
}

fn image(body: &str, blobs: &[&Digest]) -> NewManifest {
    NewManifest {
        digest: digest(body),
        media_type: berth_oci::media_type::OCI_MANIFEST.into(),
        artifact_type: None,
        subject: None,
        annotations: None,
        body: Bytes::from(body.to_owned()),
        children: blobs.iter().map(|d| ChildRef { digest: (*d).clone(), is_manifest: false, required: true }).collect(),
    }
}

pub async fn uploads_advance_only_from_the_expected_offset(s: &dyn MetaStore) {
    let u = UploadSession {
        id: "u-1".into(),
        repository: "a/b".into(),
        offset: 0,
        hash_state: vec![1, 2, 3],
        created_ms: 10,
        updated_ms: 10,
        store_state: Vec::new(),
    };
    s.create_upload(&u).await.unwrap();
    assert_eq!(s.get_upload("u-1").await.unwrap(), Some(u.clone()));
    assert!(s.advance_upload("u-1", 0, 100, &[4], b"multipart-7", 20).await.unwrap());
    // A second writer that also started from 0 loses.
    assert!(!s.advance_upload("u-1", 0, 50, &[5], &[], 21).await.unwrap());
    let got = s.get_upload("u-1").await.unwrap().unwrap();
    assert_eq!((got.offset, got.hash_state, got.updated_ms), (100, vec![4], 20));
    assert_eq!(got.store_state, b"multipart-7", "the blob store's state is kept with the session");
    assert!(s.delete_upload("u-1").await.unwrap());
    assert!(!s.delete_upload("u-1").await.unwrap());
    assert_eq!(s.get_upload("u-1").await.unwrap(), None);
}

pub async fn stale_uploads_oldest_first(s: &dyn MetaStore) {
    for (id, t) in [("new", 300), ("old", 100), ("mid", 200)] {
        let u = UploadSession {
            id: id.into(),
            repository: "r".into(),
            offset: 0,
            hash_state: vec![],
            created_ms: t,
            updated_ms: t,
            store_state: Vec::new(),
        };
        s.create_upload(&u).await.unwrap();
    }
    let stale: Vec<String> = s.stale_uploads(250, 10).await.unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(stale, ["old", "mid"]);
    assert_eq!(s.stale_uploads(250, 1).await.unwrap().len(), 1);
}

pub async fn blobs_are_visible_per_repository(s: &dyn MetaStore) {
    let (a, b, d) = (repo("a"), repo("b"), digest("layer"));
    let u = UploadSession {
        id: "up".into(),
        repository: "a".into(),
        offset: 5,
        hash_state: vec![],
        created_ms: 1,
        updated_ms: 1,
        store_state: Vec::new(),
    };
    s.create_upload(&u).await.unwrap();
    s.commit_blob(&a, &d, 5, Some("up"), 2).await.unwrap();
    assert_eq!(s.get_upload("up").await.unwrap(), None, "commit ends the session");
    assert_eq!(s.repo_blob(&a, &d).await.unwrap(), Some(5));
    assert_eq!(s.repo_blob(&b, &d).await.unwrap(), None, "a digest known elsewhere is unknown here");
    // Committing the same content again is idempotent.
    s.commit_blob(&a, &d, 5, None, 3).await.unwrap();
    assert!(s.unlink_blob(&a, &d).await.unwrap());
    assert!(!s.unlink_blob(&a, &d).await.unwrap());
    assert_eq!(s.repo_blob(&a, &d).await.unwrap(), None);
}

pub async fn mount_needs_a_visible_source(s: &dyn MetaStore) {
    let (a, b, c, d) = (repo("src"), repo("dst"), repo("other"), digest("shared"));
    assert_eq!(s.mount_blob(&b, &d, Some(&a), 1).await.unwrap(), None, "nothing to mount yet");
    s.commit_blob(&a, &d, 6, None, 1).await.unwrap();
    assert_eq!(s.mount_blob(&b, &d, Some(&c), 2).await.unwrap(), None, "wrong source repository");
    assert_eq!(s.mount_blob(&b, &d, Some(&a), 2).await.unwrap(), Some(6));
    assert_eq!(s.repo_blob(&b, &d).await.unwrap(), Some(6));
    assert_eq!(s.mount_blob(&c, &d, None, 3).await.unwrap(), Some(6), "mount without from");
}

pub async fn delete_repository_removes_it_whole(s: &dyn MetaStore) {
    let (one, two) = (repo("team/one"), repo("team/two"));
    let layer = digest("shared layer");
    let m = image("manifest-shared", &[&layer]);
    for r in [&one, &two] {
        s.commit_blob(r, &layer, 12, None, 1).await.unwrap();
        s.put_manifest(r, &m, &[tag("v1")], 2).await.unwrap();
    }
    assert!(s.delete_repository(&one).await.unwrap());
    assert!(!s.delete_repository(&one).await.unwrap(), "already gone");
    assert_eq!(s.list_repositories(None, 10).await.unwrap(), ["team/two"]);
    assert_eq!(s.get_tagged_manifest(&one, &tag("v1")).await.unwrap(), None);
    assert_eq!(s.get_manifest(&one, &m.digest).await.unwrap(), None);
    assert_eq!(s.repo_blob(&one, &layer).await.unwrap(), None, "its blob links go too");
    assert_eq!(s.list_tags(&one, None, 10).await.unwrap(), None);
    // The other repository keeps everything it shared.
    assert_eq!(s.repo_blob(&two, &layer).await.unwrap(), Some(12));
    assert!(s.get_tagged_manifest(&two, &tag("v1")).await.unwrap().is_some());
    // A new push recreates it from nothing.
    s.commit_blob(&one, &layer, 12, None, 3).await.unwrap();
    s.put_manifest(&one, &m, &[tag("v2")], 4).await.unwrap();
    assert_eq!(s.list_tags(&one, None, 10).await.unwrap(), Some(vec!["v2".to_owned()]));
}

pub async fn manifest_requires_its_blobs(s: &dyn MetaStore) {
    let r = repo("app");
    let (config, layer) = (digest("config"), digest("layer"));
    let m = image("manifest-1", &[&config, &layer]);
    s.commit_blob(&r, &config, 6, None, 1).await.unwrap();
    let err = s.put_manifest(&r, &m, &[tag("v1")], 2).await.unwrap_err();
    assert!(matches!(err, MetaError::BlobUnknown(ref d) if *d == layer), "{err:?}");
    assert_eq!(s.get_tagged_manifest(&r, &tag("v1")).await.unwrap(), None, "nothing stored on failure");
    // A non-distributable layer need not be present.
    let mut foreign = m.clone();
    foreign.children[1].required = false;
    s.put_manifest(&r, &foreign, &[], 2).await.unwrap();
    s.commit_blob(&r, &layer, 5, None, 3).await.unwrap();
    s.put_manifest(&r, &m, &[tag("v1"), tag("latest")], 4).await.unwrap();
    let got = s.get_tagged_manifest(&r, &tag("latest")).await.unwrap().unwrap();
    assert_eq!((got.digest, &got.body[..]), (m.digest.clone(), &b"manifest-1"[..]));
    assert_eq!(s.get_manifest(&r, &m.digest).await.unwrap().unwrap().media_type, m.media_type);
    assert_eq!(s.get_manifest(&repo("elsewhere"), &m.digest).await.unwrap(), None);
}

pub async fn index_requires_children_unless_sparse(s: &dyn MetaStore) {
    let r = repo("multi");
    let child = image("child", &[]);
    let index = NewManifest {
        digest: digest("index"),
        media_type: berth_oci::media_type::OCI_INDEX.into(),
        body: Bytes::from_static(b"index"),
        children: vec![ChildRef { digest: child.digest.clone(), is_manifest: true, required: true }],
        ..image("index", &[])
    };
    let err = s.put_manifest(&r, &index, &[tag("multi")], 1).await.unwrap_err();
    assert!(matches!(err, MetaError::ManifestUnknown(_)), "{err:?}");
    let mut sparse = index.clone();
    sparse.children[0].required = false;
    s.put_manifest(&r, &sparse, &[tag("sparse")], 1).await.unwrap();
    s.put_manifest(&r, &child, &[], 2).await.unwrap();
    s.put_manifest(&r, &index, &[tag("multi")], 3).await.unwrap();
    assert!(s.get_tagged_manifest(&r, &tag("multi")).await.unwrap().is_some());
}

pub async fn tags_move_and_list_lexically(s: &dyn MetaStore) {
    let r = repo("tags");
    assert_eq!(s.list_tags(&r, None, 100).await.unwrap(), None, "unknown repository");
    let (m1, m2) = (image("one", &[]), image("two", &[]));
    s.put_manifest(&r, &m1, &[tag("b"), tag("a"), tag("C"), tag("a1")], 1).await.unwrap();
    s.put_manifest(&r, &m2, &[tag("b")], 2).await.unwrap();
    assert_eq!(s.get_tagged_manifest(&r, &tag("b")).await.unwrap().unwrap().digest, m2.digest, "tag moved");
    // Byte order: upper case sorts before lower case, as Go's sort.Strings.
    assert_eq!(s.list_tags(&r, None, 100).await.unwrap().unwrap(), ["C", "a", "a1", "b"]);
    assert_eq!(s.list_tags(&r, Some("a"), 2).await.unwrap().unwrap(), ["a1", "b"]);
    assert_eq!(s.list_tags(&r, Some("b"), 2).await.unwrap().unwrap(), Vec::<String>::new());
    assert!(s.delete_tag(&r, &tag("a")).await.unwrap());
    assert!(!s.delete_tag(&r, &tag("a")).await.unwrap());
    assert_eq!(s.get_tagged_manifest(&r, &tag("a")).await.unwrap(), None);
    assert!(s.get_manifest(&r, &m1.digest).await.unwrap().is_some(), "untagging keeps the manifest");
}

pub async fn delete_manifest_removes_its_tags(s: &dyn MetaStore) {
    let r = repo("del");
    let (m1, m2) = (image("one", &[]), image("two", &[]));
    s.put_manifest(&r, &m1, &[tag("x"), tag("y")], 1).await.unwrap();
    s.put_manifest(&r, &m2, &[tag("z")], 1).await.unwrap();
    let mut removed = s.delete_manifest(&r, &m1.digest).await.unwrap().unwrap();
    removed.sort();
    assert_eq!(removed, [tag("x"), tag("y")]);
    assert_eq!(s.delete_manifest(&r, &m1.digest).await.unwrap(), None);
    assert_eq!(s.get_manifest(&r, &m1.digest).await.unwrap(), None);
    assert_eq!(s.list_tags(&r, None, 10).await.unwrap().unwrap(), ["z"]);
}

pub async fn referrers_filter_by_artifact_type(s: &dyn MetaStore) {
    let r = repo("refs");
    let subject = image("subject", &[]);
    s.put_manifest(&r, &subject, &[tag("v1")], 1).await.unwrap();
    let sbom = NewManifest {
        artifact_type: Some("application/spdx+json".into()),
        subject: Some(subject.digest.clone()),
        annotations: Some(r#"{"k":"v"}"#.into()),
        ..image("sbom", &[])
    };
    let sig = NewManifest {
        artifact_type: Some("application/vnd.dev.cosign".into()),
        subject: Some(subject.digest.clone()),
        ..image("sig", &[])
    };
    s.put_manifest(&r, &sbom, &[], 2).await.unwrap();
    s.put_manifest(&r, &sig, &[], 3).await.unwrap();
    let all = s.referrers(&r, &subject.digest, None).await.unwrap();
    assert_eq!(all.len(), 2);
    let only = s.referrers(&r, &subject.digest, Some("application/spdx+json")).await.unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].digest, sbom.digest);
    assert_eq!(only[0].size, 4);
    assert_eq!(only[0].annotations.as_deref(), Some(r#"{"k":"v"}"#));
    assert!(s.referrers(&repo("nope"), &subject.digest, None).await.unwrap().is_empty());
}

pub async fn catalog_pages_lexically(s: &dyn MetaStore) {
    for name in ["b/x", "a", "c", "a/b", "B"] {
        s.commit_blob(&repo(&name.to_lowercase()), &digest(name), 1, None, 1).await.unwrap();
    }
    assert_eq!(s.list_repositories(None, 100).await.unwrap(), ["a", "a/b", "b", "b/x", "c"]);
    assert_eq!(s.list_repositories(Some("a/b"), 2).await.unwrap(), ["b", "b/x"]);
    assert_eq!(s.list_repositories(Some("c"), 2).await.unwrap(), Vec::<String>::new());
}

// ---- concurrency: what several nodes sharing one database rely on ----------
// Each race runs its contenders with `tokio::join!`: their queries are in
// flight at once (on separate connections where the backend has them).

/// Rounds per race: enough to hit interleavings, few enough to stay fast.
const ROUNDS: usize = 50;

pub async fn concurrent_advances_have_one_winner(s: &dyn MetaStore) {
    let u = UploadSession {
        id: "race".into(),
        repository: "r".into(),
        offset: 0,
        hash_state: vec![],
        created_ms: 1,
        updated_ms: 1,
        store_state: Vec::new(),
    };
    s.create_upload(&u).await.unwrap();
    let mut offset = 0;
    for round in 0..ROUNDS as u64 {
        let next = |k: u64| offset + 10 + k;
        let (a, b, c, d) = tokio::join!(
            s.advance_upload("race", offset, next(0), &[0], &[], 2),
            s.advance_upload("race", offset, next(1), &[1], &[], 2),
            s.advance_upload("race", offset, next(2), &[2], &[], 2),
            s.advance_upload("race", offset, next(3), &[3], &[], 2),
        );
        let won: Vec<usize> =
            [a, b, c, d].into_iter().enumerate().filter(|(_, r)| *r.as_ref().unwrap()).map(|(i, _)| i).collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one writer advances, got {won:?}");
        let got = s.get_upload("race").await.unwrap().unwrap();
        assert_eq!((got.offset, got.hash_state), (next(won[0] as u64), vec![won[0] as u8]), "the winner's write");
        offset = got.offset;
    }
}

pub async fn concurrent_put_manifest_and_unlink_blob_stay_atomic(s: &dyn MetaStore) {
    let r = repo("race/unlink");
    for round in 0..ROUNDS {
        let layer = digest(&format!("layer-{round}"));
        let m = image(&format!("manifest-{round}"), &[&layer]);
        let t = tag(&format!("t{round}"));
        s.commit_blob(&r, &layer, 1, None, 1).await.unwrap();
        let (put, unlinked) =
            tokio::join!(s.put_manifest(&r, &m, std::slice::from_ref(&t), 2), s.unlink_blob(&r, &layer));
        assert!(unlinked.unwrap(), "round {round}: the link existed");
        let stored = s.get_manifest(&r, &m.digest).await.unwrap().is_some();
        let tagged = s.get_tagged_manifest(&r, &t).await.unwrap().is_some();
        match put {
            // Serialised as put, then unlink.
            Ok(()) => assert!(stored && tagged, "round {round}: a successful put is whole"),
            // Serialised as unlink, then put: nothing of the manifest stored.
            Err(MetaError::BlobUnknown(d)) => {
                assert_eq!(d, layer);
                assert!(!stored && !tagged, "round {round}: a failed put leaves nothing");
            }
            Err(e) => panic!("round {round}: {e:?}"),
        }
        assert_eq!(s.repo_blob(&r, &layer).await.unwrap(), None);
    }
}

pub async fn concurrent_put_and_delete_manifest_leave_no_dangling_tag(s: &dyn MetaStore) {
    let r = repo("race/delete");
    // The window is a few round trips wide: more rounds than the other races.
    for round in 0..3 * ROUNDS {
        let m = image(&format!("m-{round}"), &[]);
        let tags = [tag(&format!("a{round}")), tag(&format!("b{round}")), tag(&format!("c{round}"))];
        s.put_manifest(&r, &m, &[], 1).await.unwrap();
        // Three pushes tag the existing manifest while it is deleted.
        let (deleted, a, b, c) = tokio::join!(
            s.delete_manifest(&r, &m.digest),
            s.put_manifest(&r, &m, &tags[0..1], 2),
            s.put_manifest(&r, &m, &tags[1..2], 2),
            s.put_manifest(&r, &m, &tags[2..3], 2),
        );
        for r in [a, b, c] {
            r.unwrap();
        }
        let removed = deleted.unwrap().expect("the manifest existed, so delete finds it");
        let listed = s.list_tags(&r, None, 10_000).await.unwrap().unwrap();
        let stored = s.get_manifest(&r, &m.digest).await.unwrap().is_some();
        for t in &tags {
            // Each push ran either before the delete (which removed its tag)
            // or after it (re-creating the manifest, tagged).
            let is_listed = listed.contains(&t.to_string());
            assert!(is_listed != removed.contains(t), "round {round}: {t} listed {is_listed}, removed {removed:?}");
            assert!(!is_listed || stored, "round {round}: tag {t} points at a deleted manifest");
        }
        let any_listed = tags.iter().any(|t| listed.contains(&t.to_string()));
        assert_eq!(stored, any_listed, "round {round}: re-created exactly when a push came after the delete");
    }
}

pub async fn concurrent_first_pushes_share_one_repository(s: &dyn MetaStore) {
    let (source, shared) = (repo("source"), digest("shared"));
    s.commit_blob(&source, &shared, 1, None, 1).await.unwrap();
    let latest = [tag("latest")];
    for round in 0..ROUNDS {
        // Five writers create the same new repository at once.
        let r = repo(&format!("new/{round}"));
        let d: Vec<Digest> = (0..3).map(|k| digest(&format!("{round}-{k}"))).collect();
        let m = image(&format!("first-{round}"), &[]);
        let (a, b, c, mounted, put) = tokio::join!(
            s.commit_blob(&r, &d[0], 1, None, 1),
            s.commit_blob(&r, &d[1], 1, None, 1),
            s.commit_blob(&r, &d[2], 1, None, 1),
            s.mount_blob(&r, &shared, Some(&source), 1),
            s.put_manifest(&r, &m, &latest, 1),
        );
        for r in [a, b, c, put] {
            r.unwrap();
        }
        assert_eq!(mounted.unwrap(), Some(1));
        for k in d.iter().chain([&shared]) {
            assert_eq!(s.repo_blob(&r, k).await.unwrap(), Some(1), "round {round}: {k}");
        }
        assert!(s.get_tagged_manifest(&r, &latest[0]).await.unwrap().is_some());
    }
    let names = s.list_repositories(None, 1000).await.unwrap();
    assert_eq!(names.len(), ROUNDS + 1, "one repository per name: {names:?}");
}

// ---- job leases ---------------------------------------------------------------

const TTL: Duration = Duration::from_secs(30);
const TTL_MS: i64 = 30_000;

pub async fn leases_exclude_other_holders_until_expiry(s: &dyn MetaStore) {
    let t0 = 1_000_000;
    assert!(s.try_acquire_lease("gc", "node-a", TTL, t0).await.unwrap());
    assert!(!s.try_acquire_lease("gc", "node-b", TTL, t0 + 1).await.unwrap(), "held by a");
    assert!(s.try_acquire_lease("other-job", "node-b", TTL, t0 + 1).await.unwrap(), "leases are per job");
    assert!(!s.renew_lease("gc", "node-b", TTL, t0 + 2).await.unwrap(), "a non-holder cannot renew");
    assert!(!s.release_lease("gc", "node-b").await.unwrap(), "nor release");
    assert!(s.try_acquire_lease("gc", "node-a", TTL, t0 + 3).await.unwrap(), "the holder may re-acquire");
    // Renewal moves expiry: b still cannot take it when the first TTL is over.
    assert!(s.renew_lease("gc", "node-a", TTL, t0 + 20_000).await.unwrap());
    assert!(!s.try_acquire_lease("gc", "node-b", TTL, t0 + TTL_MS + 1).await.unwrap(), "renewed");
    // Expiry is `now >= renewed + ttl`: then the lease is lost, even unclaimed.
    let expiry = t0 + 20_000 + TTL_MS;
    assert!(!s.renew_lease("gc", "node-a", TTL, expiry).await.unwrap(), "an expired lease cannot be renewed");
    assert!(s.try_acquire_lease("gc", "node-b", TTL, expiry).await.unwrap(), "expired: b takes over");
    assert!(!s.renew_lease("gc", "node-a", TTL, expiry + 1).await.unwrap());
    assert!(!s.release_lease("gc", "node-a").await.unwrap(), "a no longer holds it");
    assert!(s.release_lease("gc", "node-b").await.unwrap());
    assert!(s.try_acquire_lease("gc", "node-a", TTL, expiry + 2).await.unwrap(), "released: free at once");
}

pub async fn concurrent_acquires_have_one_winner(s: &dyn MetaStore) {
    for round in 0..ROUNDS as i64 {
        let job = format!("job-{round}");
        let now = 1_000 + round;
        let (a, b, c, d) = tokio::join!(
            s.try_acquire_lease(&job, "a", TTL, now),
            s.try_acquire_lease(&job, "b", TTL, now),
            s.try_acquire_lease(&job, "c", TTL, now),
            s.try_acquire_lease(&job, "d", TTL, now),
        );
        let winners = [a, b, c, d].into_iter().filter(|r| *r.as_ref().unwrap()).count();
        assert_eq!(winners, 1, "round {round}");
    }
}

/// The test job: handles items `0..JOB_ITEMS` in order, saving how many are
/// done after each (a little-endian u32) and renewing its lease. A step
/// must be idempotent in a real job: a holder that dies between doing an
/// item and saving progress leaves it to be done again.
const JOB_ITEMS: u32 = 10;

enum JobRun {
    NotLeased,
    /// The holder stopped (died) after this many items in total.
    Died(u32),
    Finished,
}

async fn run_test_job(
    s: &dyn MetaStore,
    holder: &str,
    now: i64,
    die_after: Option<u32>,
    log: &mut Vec<(String, u32)>,
) -> JobRun {
    const JOB: &str = "test-job";
    if !s.try_acquire_lease(JOB, holder, TTL, now).await.unwrap() {
        return JobRun::NotLeased;
    }
    let state = s.job_state(JOB).await.unwrap();
    let mut done = state.map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes of progress")));
    while done < JOB_ITEMS {
        if die_after == Some(done) {
            return JobRun::Died(done);
        }
        log.push((holder.to_owned(), done));
        done += 1;
        assert!(s.save_job_state(JOB, holder, &done.to_le_bytes(), now).await.unwrap());
        assert!(s.renew_lease(JOB, holder, TTL, now).await.unwrap());
    }
    assert!(s.finish_job(JOB, holder, now).await.unwrap());
    JobRun::Finished
}

pub async fn leased_job_resumes_after_its_holder_dies(s: &dyn MetaStore) {
    let mut log = Vec::new();
    let t0 = 5_000_000;
    assert!(matches!(run_test_job(s, "node-a", t0, Some(4), &mut log).await, JobRun::Died(4)));
    assert_eq!(s.job_state("test-job").await.unwrap(), Some(4u32.to_le_bytes().to_vec()));
    // While a's lease runs, nobody else may work on the job.
    assert!(matches!(run_test_job(s, "node-b", t0 + TTL_MS - 1, None, &mut log).await, JobRun::NotLeased));
    // a is dead: its lease expires; b takes over and continues at item 4.
    assert!(matches!(run_test_job(s, "node-b", t0 + TTL_MS, None, &mut log).await, JobRun::Finished));
    let expected: Vec<(String, u32)> =
        (0..JOB_ITEMS).map(|i| (if i < 4 { "node-a" } else { "node-b" }.to_owned(), i)).collect();
    assert_eq!(log, expected, "every item once, resumed where a stopped");
    assert_eq!(s.job_state("test-job").await.unwrap(), None, "finishing clears progress");
    // a comes back from its pause: it can neither save nor finish.
    assert!(!s.save_job_state("test-job", "node-a", &[9, 9, 9, 9], t0 + TTL_MS + 1).await.unwrap());
    assert!(!s.finish_job("test-job", "node-a", t0 + TTL_MS + 1).await.unwrap());
    assert_eq!(s.job_state("test-job").await.unwrap(), None);
    // Finished means released: the next run starts from scratch at once.
    assert!(matches!(run_test_job(s, "node-c", t0 + TTL_MS + 2, Some(0), &mut log).await, JobRun::Died(0)));
}

// ---- garbage collection (docs/garbage-collection.md) -------------------------

fn names(links: &[crate::GcLink]) -> Vec<(String, Digest)> {
    links.iter().map(|l| (l.repository.clone(), l.digest.clone())).collect()
}

pub async fn gc_removes_only_old_unreferenced_links(s: &dyn MetaStore) {
    let r = repo("gc/links");
    let (used, loose, young) = (digest("used"), digest("loose"), digest("young"));
    s.commit_blob(&r, &used, 4, None, 10).await.unwrap();
    s.commit_blob(&r, &loose, 5, None, 10).await.unwrap();
    s.commit_blob(&r, &young, 5, None, 100).await.unwrap();
    s.put_manifest(&r, &image("m", &[&used]), &[], 11).await.unwrap();
    let listed = s.unreferenced_links(50, None, 10).await.unwrap();
    assert_eq!(names(&listed), vec![("gc/links".to_owned(), loose.clone())]);
    assert_eq!(listed[0].size, 5);
    // A commit (or mount) refreshes the link's age: it is young again.
    s.commit_blob(&r, &loose, 5, None, 60).await.unwrap();
    assert!(s.remove_unreferenced_links(50, 10).await.unwrap().is_empty());
    let gone = s.remove_unreferenced_links(61, 10).await.unwrap();
    assert_eq!(names(&gone), vec![("gc/links".to_owned(), loose.clone())]);
    assert_eq!(s.repo_blob(&r, &loose).await.unwrap(), None);
    assert_eq!(s.repo_blob(&r, &used).await.unwrap(), Some(4), "referenced by a manifest");
    assert_eq!(s.repo_blob(&r, &young).await.unwrap(), Some(5), "younger than the cutoff");
    // Deleting the manifest leaves its link unreferenced.
    s.delete_manifest(&r, &digest("m")).await.unwrap();
    assert_eq!(names(&s.remove_unreferenced_links(61, 10).await.unwrap()), vec![("gc/links".to_owned(), used)]);
}

pub async fn gc_deletes_blobs_a_grace_period_after_marking(s: &dyn MetaStore) {
    let r = repo("gc/blobs");
    let (a, b) = (digest("a"), digest("b"));
    s.commit_blob(&r, &a, 1, None, 10).await.unwrap();
    s.commit_blob(&r, &b, 2, None, 10).await.unwrap();
    assert!(s.unlink_blob(&r, &a).await.unwrap());
    let listed = s.collectable_blobs(11, None, 10).await.unwrap();
    let mut expected = vec![&a, &b];
    expected.sort_by_key(|d| d.as_str());
    assert_eq!(listed.iter().map(|b| &b.digest).collect::<Vec<_>>(), expected, "b's link is unreferenced");
    assert_eq!(s.mark_unlinked_blobs(1_000).await.unwrap(), 1, "only a has no link");
    assert_eq!(s.mark_unlinked_blobs(1_500).await.unwrap(), 1, "marking again keeps the first mark");
    assert!(s.begin_blob_deletion(999, 10).await.unwrap().is_empty(), "marked after the cutoff");
    let chosen = s.begin_blob_deletion(1_000, 10).await.unwrap();
    assert_eq!(chosen, vec![crate::GcBlob { digest: a.clone(), size: 1 }]);
    assert!(s.begin_blob_deletion(1_000, 10).await.unwrap().is_empty(), "already deleting");
    // While deleting, a commit of the same digest is refused, not recorded.
    assert!(!s.touch_blob(&a, 1_001).await.unwrap());
    assert!(matches!(s.commit_blob(&r, &a, 1, None, 1_001).await, Err(MetaError::BlobBusy(_))));
    assert_eq!(s.repo_blob(&r, &a).await.unwrap(), None);
    // A collector killed here finds its work again.
    assert_eq!(s.blobs_being_deleted(None, 10).await.unwrap(), chosen);
    assert_eq!(s.finish_blob_deletion(&[a.clone(), b.clone()]).await.unwrap(), 1, "b is not deleting");
    assert!(s.blobs_being_deleted(None, 10).await.unwrap().is_empty());
    assert_eq!(s.list_blobs(None, 10).await.unwrap().len(), 1);
    // Gone: it can be pushed anew.
    assert!(s.touch_blob(&a, 2_000).await.unwrap());
    s.commit_blob(&r, &a, 1, None, 2_000).await.unwrap();
    assert_eq!(s.repo_blob(&r, &a).await.unwrap(), Some(1));
}

pub async fn gc_spares_a_blob_touched_after_marking(s: &dyn MetaStore) {
    let r = repo("gc/touch");
    let (a, b) = (digest("ta"), digest("tb"));
    for d in [&a, &b] {
        s.commit_blob(&r, d, 1, None, 10).await.unwrap();
        s.unlink_blob(&r, d).await.unwrap();
    }
    assert_eq!(s.mark_unlinked_blobs(100).await.unwrap(), 2);
    // A push of a is about to write its bytes; b is committed (and linked) again.
    assert!(s.touch_blob(&a, 150).await.unwrap());
    s.commit_blob(&repo("gc/other"), &b, 1, None, 150).await.unwrap();
    assert!(s.begin_blob_deletion(10_000, 10).await.unwrap().is_empty(), "both spared");
    // a's push never finished: a is marked again, and collected a grace later.
    assert_eq!(s.mark_unlinked_blobs(200).await.unwrap(), 1);
    assert!(s.begin_blob_deletion(199, 10).await.unwrap().is_empty());
    assert_eq!(s.begin_blob_deletion(200, 10).await.unwrap().len(), 1);
}

pub async fn gc_untagged_spares_children_and_referrers(s: &dyn MetaStore) {
    let r = repo("gc/untagged");
    let child = image("child", &[]);
    let orphan = image("orphan", &[]);
    let tagged = image("tagged", &[]);
    s.put_manifest(&r, &child, &[], 1).await.unwrap();
    s.put_manifest(&r, &orphan, &[], 1).await.unwrap();
    s.put_manifest(&r, &tagged, &[tag("v1")], 1).await.unwrap();
    let index = NewManifest {
        media_type: berth_oci::media_type::OCI_INDEX.into(),
        children: vec![ChildRef { digest: child.digest.clone(), is_manifest: true, required: true }],
        ..image("index", &[])
    };
    s.put_manifest(&r, &index, &[tag("multi")], 2).await.unwrap();
    let sig = NewManifest { subject: Some(tagged.digest.clone()), ..image("sig", &[]) };
    let stray = NewManifest { subject: Some(digest("absent")), ..image("stray", &[]) };
    s.put_manifest(&r, &sig, &[], 2).await.unwrap();
    s.put_manifest(&r, &stray, &[], 2).await.unwrap();
    let found: Vec<Digest> = s.untagged_manifests(100, None, 10).await.unwrap().into_iter().map(|m| m.digest).collect();
    let mut expected = vec![orphan.digest.clone(), stray.digest.clone()];
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(found, expected);
    assert!(s.untagged_manifests(2, None, 10).await.unwrap().iter().all(|m| m.digest == orphan.digest), "by age");
    for d in [&child.digest, &sig.digest, &tagged.digest] {
        assert!(!s.delete_untagged_manifest("gc/untagged", d, 100).await.unwrap(), "re-checked: {d}");
    }
    assert!(s.delete_untagged_manifest("gc/untagged", &orphan.digest, 100).await.unwrap());
    assert_eq!(s.get_manifest(&r, &orphan.digest).await.unwrap(), None);
    // Untagging the index frees its child next.
    s.delete_tag(&r, &tag("multi")).await.unwrap();
    assert!(s.delete_untagged_manifest("gc/untagged", &index.digest, 100).await.unwrap());
    assert!(s.delete_untagged_manifest("gc/untagged", &child.digest, 100).await.unwrap());
}

/// A push committing a digest races a collector switching its mark to
/// deleting: exactly one of them wins, never both.
pub async fn gc_concurrent_commit_and_deletion_agree(s: &dyn MetaStore) {
    let r = repo("gc/race");
    for round in 0..ROUNDS as i64 {
        let d = digest(&format!("race-{round}"));
        s.commit_blob(&r, &d, 1, None, 1).await.unwrap();
        s.unlink_blob(&r, &d).await.unwrap();
        s.mark_unlinked_blobs(round).await.unwrap();
        let push = async {
            if !s.touch_blob(&d, 2).await.unwrap() {
                return false;
            }
            match s.commit_blob(&r, &d, 1, None, 2).await {
                Ok(()) => true,
                Err(MetaError::BlobBusy(_)) => false,
                Err(e) => panic!("{e}"),
            }
        };
        let (pushed, chosen) = tokio::join!(push, s.begin_blob_deletion(i64::MAX, 1000));
        let deleting = chosen.unwrap().iter().any(|b| b.digest == d);
        assert!(pushed != deleting, "round {round}: pushed {pushed}, deleting {deleting}");
        if deleting {
            s.finish_blob_deletion(std::slice::from_ref(&d)).await.unwrap();
        } else {
            assert_eq!(s.repo_blob(&r, &d).await.unwrap(), Some(1));
        }
    }
}

pub async fn gc_usage_counts_shared_bytes(s: &dyn MetaStore) {
    let (a, b) = (repo("gc/use-a"), repo("gc/use-b"));
    let (only, both) = (digest("only"), digest("both"));
    s.commit_blob(&a, &only, 100, None, 1).await.unwrap();
    s.commit_blob(&a, &both, 1_000, None, 1).await.unwrap();
    s.mount_blob(&b, &both, Some(&a), 2).await.unwrap();
    s.put_manifest(&a, &image("usage", &[&only, &both]), &[tag("v")], 3).await.unwrap();
    let all = s.repository_usage(None).await.unwrap();
    let ua = all.iter().find(|u| u.repository == "gc/use-a").unwrap();
    assert_eq!((ua.blobs, ua.logical_bytes, ua.shared_bytes, ua.exclusive_bytes), (2, 1_100, 1_000, 100));
    assert_eq!((ua.manifests, ua.manifest_bytes), (1, 5));
    let ub = s.repository_usage(Some("gc/use-b")).await.unwrap();
    assert_eq!(ub.len(), 1);
    assert_eq!((ub[0].logical_bytes, ub[0].shared_bytes, ub[0].exclusive_bytes), (1_000, 1_000, 0));
}
