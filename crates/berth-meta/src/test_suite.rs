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
        );
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
    };
    s.create_upload(&u).await.unwrap();
    assert_eq!(s.get_upload("u-1").await.unwrap(), Some(u.clone()));
    assert!(s.advance_upload("u-1", 0, 100, &[4], 20).await.unwrap());
    // A second writer that also started from 0 loses.
    assert!(!s.advance_upload("u-1", 0, 50, &[5], 21).await.unwrap());
    let got = s.get_upload("u-1").await.unwrap().unwrap();
    assert_eq!((got.offset, got.hash_state, got.updated_ms), (100, vec![4], 20));
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
