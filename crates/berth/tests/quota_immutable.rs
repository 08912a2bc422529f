//! Storage quotas and tag immutability against the real binary (issue #18).
//! Quotas and rules are set straight in the SQLite database, as an
//! administrator's API would; expected behaviour is Harbor's: usage counts
//! blobs referenced by manifests, once per project; a push over the quota
//! is refused with `DENIED` and leaves nothing counted; an existing
//! immutable tag cannot move or be deleted, but the same manifest may be
//! pushed again and referrers pushed by digest.

mod common;

use berth_meta::selectors::Decoration;
use berth_meta::sqlite::SqliteStore;
use berth_meta::{ImmutabilityStore, NewImmutableRule, ProjectStore, QuotaStore, RulePattern, Usage};
use common::{expect_error, json_body, options, random_bytes, sha256, with_query, Image, Reg, OCI_MANIFEST};
use reqwest::{Method, StatusCode};
use serde_json::json;

const MIB: u64 = 1024 * 1024;

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

fn store(reg: &Reg) -> SqliteStore {
    SqliteStore::open(&reg.server.data_dir().join("berth").join("metadata.sqlite")).unwrap()
}

fn usage(reg: &Reg, project: &str) -> Usage {
    block_on(store(reg).project_usage(project)).unwrap()
}

/// A registry whose project `project` has a storage quota of `limit`.
fn with_quota(project: &str, limit: u64) -> Reg {
    let reg = Reg::start_with(options().delete_enabled(true));
    let s = store(&reg);
    block_on(async {
        s.create_project(project, false, None, 1).await.unwrap();
        assert!(s.set_project_quota(project, Some(limit)).await.unwrap());
    });
    reg
}

/// PUTs `data` as one upload; the response, and the upload's URL.
fn put_blob(reg: &Reg, repo: &str, data: &[u8]) -> (reqwest::blocking::Response, String) {
    let loc = reg.start_upload(repo);
    let resp = reg
        .req(Method::PUT, &with_query(&loc, &format!("digest={}", sha256(data))))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .unwrap();
    (resp, loc)
}

#[test]
fn pushes_within_the_quota_pass_and_blobs_over_it_are_refused() {
    let reg = with_quota("team-a", MIB);
    let image = reg.push_image("team-a/app", "v1");
    let config_len = serde_json::to_vec(&image.config).unwrap().len() as u64;
    let used = usage(&reg, "team-a");
    assert_eq!(used.total, image.layer.len() as u64 + config_len + image.manifest.len() as u64);

    let big = random_bytes(MIB as usize);
    let (resp, upload) = put_blob(&reg, "team-a/app", &big);
    let err = expect_error(resp, 403, "DENIED");
    let message = err["message"].as_str().unwrap();
    assert!(message.starts_with("project team-a: storage quota 1.0 MiB exceeded (using 0.0 MiB"), "{message}");
    assert!(message.ends_with("this push needs 1.0 MiB more)"), "{message}");
    // The session and its bytes are gone; the blob was not stored.
    expect_error(reg.get(&upload), 404, "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(reg.head(&format!("/v2/team-a/app/blobs/{}", sha256(&big))).status(), StatusCode::NOT_FOUND);
    // Other projects have no quota.
    assert_eq!(put_blob(&reg, "team-b/app", &big).0.status(), StatusCode::CREATED);
    assert_eq!(usage(&reg, "team-a"), used);
}

#[test]
fn a_manifest_whose_layers_overflow_is_refused_and_counts_nothing() {
    let reg = with_quota("team-a", MIB);
    reg.push_image("team-a/app", "v1");
    let before = usage(&reg, "team-a");
    // Each layer fits alone (uploaded blobs do not count), together they do not.
    let layers: Vec<Vec<u8>> = (0..2).map(|_| random_bytes(600 * 1024)).collect();
    let descriptors: Vec<_> = layers
        .iter()
        .map(|l| reg.push_blob_descriptor("team-a/app", "application/vnd.oci.image.layer.v1.tar", l))
        .collect();
    let config = reg.push_blob_descriptor("team-a/app", "application/vnd.oci.image.config.v1+json", b"{}");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descriptors,
    }))
    .unwrap();
    let err = expect_error(reg.put_manifest("team-a/app", "v2", OCI_MANIFEST, &manifest), 403, "DENIED");
    assert!(err["message"].as_str().unwrap().contains("project team-a: storage quota 1.0 MiB exceeded"), "{err}");
    assert_eq!(usage(&reg, "team-a"), before, "nothing of the refused push counts");
    expect_error(reg.get("/v2/team-a/app/manifests/v2"), 404, "MANIFEST_UNKNOWN");
    // Under a larger quota the same manifest goes in.
    assert!(block_on(store(&reg).set_project_quota("team-a", Some(2 * MIB))).unwrap());
    reg.push_manifest("team-a/app", "v2", OCI_MANIFEST, &manifest);
    assert_eq!(usage(&reg, "team-a").total, before.total + 2 * 600 * 1024 + 2 + manifest.len() as u64);
}

#[test]
fn the_same_layer_in_two_repositories_counts_once() {
    let reg = with_quota("team-a", MIB);
    let image = reg.push_image("team-a/one", "v1");
    let once = usage(&reg, "team-a");
    // The same image in a second repository of the project adds nothing.
    reg.push_blob("team-a/two", &image.layer);
    reg.push_blob("team-a/two", &serde_json::to_vec(&image.config).unwrap());
    reg.push_manifest("team-a/two", "v1", OCI_MANIFEST, &image.manifest);
    assert_eq!(usage(&reg, "team-a"), once);
    // In another project it is counted there too, and shared by both.
    let layer_and_all = once.total;
    reg.push_blob("team-c/app", &image.layer);
    reg.push_blob("team-c/app", &serde_json::to_vec(&image.config).unwrap());
    reg.push_manifest("team-c/app", "v1", OCI_MANIFEST, &image.manifest);
    let a = usage(&reg, "team-a");
    assert_eq!((a.total, a.shared, a.exclusive), (layer_and_all, layer_and_all, 0));
}

fn immutable_registry() -> (Reg, i64) {
    let reg = Reg::start_with(options().delete_enabled(true));
    let s = store(&reg);
    let rule = NewImmutableRule {
        repository: RulePattern::new(Decoration::Matches, "**"),
        tag: RulePattern::new(Decoration::Matches, "v*"),
        disabled: false,
    };
    let id = block_on(async {
        s.create_project("team-i", false, None, 1).await.unwrap();
        s.create_immutable_rule("team-i", &rule).await.unwrap().unwrap().id
    });
    (reg, id)
}

#[test]
fn an_immutable_tag_cannot_move_or_be_deleted() {
    let (reg, rule) = immutable_registry();
    let a = reg.push_image("team-i/app", "v1");
    let b = Image::oci(&reg, "team-i/app");
    let err = expect_error(reg.put_manifest("team-i/app", "v1", OCI_MANIFEST, &b.manifest), 403, "DENIED");
    assert_eq!(err["message"], format!("tag v1 of team-i/app is immutable (rule {rule})"));
    // By digest with OCI 1.1's `?tag=` the tag would move too.
    let by_digest_tagged = format!("{}?tag=v1", b.digest);
    expect_error(reg.put_manifest("team-i/app", &by_digest_tagged, OCI_MANIFEST, &b.manifest), 403, "DENIED");
    // The same manifest again, a new tag, a tag no rule selects: allowed.
    reg.push_manifest("team-i/app", "v1", OCI_MANIFEST, &a.manifest);
    reg.push_manifest("team-i/app", "v2", OCI_MANIFEST, &b.manifest);
    reg.push_manifest("team-i/app", "dev", OCI_MANIFEST, &b.manifest);
    reg.push_manifest("team-i/app", "dev", OCI_MANIFEST, &a.manifest);
    assert_eq!(
        json_body(reg.get("/v2/team-i/app/manifests/v1"))["config"]["digest"],
        json!(sha256(&serde_json::to_vec(&a.config).unwrap()))
    );
    // Neither the tag nor the manifest holding it may be deleted.
    expect_error(reg.delete("/v2/team-i/app/manifests/v1"), 403, "DENIED");
    expect_error(reg.delete(&format!("/v2/team-i/app/manifests/{}", a.digest)), 403, "DENIED");
    assert_eq!(reg.delete("/v2/team-i/app/manifests/dev").status(), StatusCode::ACCEPTED);
    expect_error(reg.delete("/v2/team-i/app/manifests/v9"), 404, "MANIFEST_UNKNOWN");
    // Other projects have no rules.
    reg.push_image("team-x/app", "v1");
    assert_eq!(reg.delete("/v2/team-x/app/manifests/v1").status(), StatusCode::ACCEPTED);
}

#[test]
fn a_referrer_pushed_by_digest_is_accepted() {
    let (reg, _) = immutable_registry();
    let a = reg.push_image("team-i/app", "v1");
    let config = reg.push_blob_descriptor("team-i/app", "application/vnd.oci.empty.v1+json", b"{}");
    let signature = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.signature",
        "config": config, "layers": [config], "subject": a.descriptor(OCI_MANIFEST),
    }))
    .unwrap();
    let resp = reg.put_manifest("team-i/app", &sha256(&signature), OCI_MANIFEST, &signature);
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(common::header(&resp, "oci-subject"), a.digest);
}
