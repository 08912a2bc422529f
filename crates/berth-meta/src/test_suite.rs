//! The behaviour every metadata backend must share. Each backend's tests
//! invoke [`metastore_test_suite!`] with a factory returning a fresh store
//! (plus anything that must live as long, such as a temp dir).
//! Expected values follow the distribution spec (lexical order, `last`
//! exclusive, deletes visible at once), not any one backend.

use crate::{ChildRef, MetaError, MetaStore, NewManifest, UploadSession};
use berth_oci::{Algorithm, Digest, RepoName, Tag};
use bytes::Bytes;

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
        );
        $crate::metastore_test_suite!(@jobs $factory;
            leases_exclude_other_holders_until_expiry,
            concurrent_acquires_have_one_winner,
            leased_job_resumes_after_its_holder_dies,
            held_leases_lists_only_unexpired_ones,
            pool_status_counts_connections,
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
            quota_usage_of_every_project_at_once,
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
        $crate::metastore_test_suite!(@webhooks $factory;
            webhook_policies_are_created_listed_updated_and_deleted,
            webhook_policy_names_are_unique_per_project,
            webhook_enabled_policies_span_projects,
            webhook_targets_and_event_types_round_trip,
            deleting_a_project_deletes_its_webhooks,
            webhook_claims_take_due_deliveries_oldest_first,
            webhook_claims_hold_until_they_lapse,
            webhook_finish_records_delivered_retry_and_failed,
            webhook_concurrent_claims_never_share_a_delivery,
            webhook_enqueue_skips_deleted_policies,
            webhook_deliveries_page_newest_first_and_prune_finished,
        );
    };
    (@webhooks $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($factory)().await;
                $crate::test_suite_webhooks::$name(&store).await;
            }
        )*
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
    (@jobs $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($factory)().await;
                $crate::test_suite_jobs::$name(&store).await;
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

pub(crate) fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

pub(crate) fn digest(content: &str) -> Digest {
    Digest::compute(Algorithm::Sha256, content.as_bytes())
}

pub(crate) fn tag(s: &str) -> Tag {
    Tag::parse(s).unwrap()
}

pub(crate) fn image(body: &str, blobs: &[&Digest]) -> NewManifest {
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
pub(crate) const ROUNDS: usize = 50;

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
