//! Edge cases of what a request sees: empty blobs, sessions bound to their
//! repository, re-tags and deletes right after a (cached) read, and state
//! that survives a restart.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[test]
fn empty_blobs() {
    let reg = Reg::start();
    let empty = sha256(b"");
    let resp = reg.req(Method::POST, &format!("/v2/empty/a/blobs/uploads/?digest={empty}")).send().unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let get = reg.get(&format!("/v2/empty/a/blobs/{empty}"));
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(header(&get, "content-length"), "0");
    assert!(get.bytes().unwrap().is_empty());
    // An empty blob has no satisfiable byte range.
    let resp = reg.req(Method::GET, &format!("/v2/empty/a/blobs/{empty}")).header("range", "bytes=0-0").send().unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // A session closed with no bytes at all.
    let loc = reg.start_upload("empty/b");
    let resp = reg.req(Method::PUT, &with_query(&loc, &format!("digest={empty}"))).send().unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(reg.head(&format!("/v2/empty/b/blobs/{empty}")).status(), StatusCode::OK);
}

#[test]
fn one_byte_ranges() {
    let reg = Reg::start();
    let data = random_bytes(10);
    let digest = reg.push_blob("range/one", &data);
    let resp =
        reg.req(Method::GET, &format!("/v2/range/one/blobs/{digest}")).header("range", "bytes=9-9").send().unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&resp, "content-range"), "bytes 9-9/10");
    assert_eq!(resp.bytes().unwrap().as_ref(), &data[9..]);
}

#[test]
fn an_upload_session_belongs_to_its_repository() {
    let reg = Reg::start();
    let data = random_bytes(100);
    let loc = reg.start_upload("sess/a");
    let other = loc.replace("/v2/sess/a/", "/v2/sess/b/");
    let patch = reg.req(Method::PATCH, &other).body(data.clone()).send().unwrap();
    expect_error(patch, 404, "BLOB_UPLOAD_UNKNOWN");
    let put = reg.req(Method::PUT, &with_query(&other, &format!("digest={}", sha256(&data)))).body(data.clone());
    expect_error(put.send().unwrap(), 404, "BLOB_UPLOAD_UNKNOWN");
    expect_error(reg.delete(&other), 404, "BLOB_UPLOAD_UNKNOWN");
    // The session itself is untouched, and its blob lands only in sess/a.
    let put = reg.req(Method::PUT, &with_query(&loc, &format!("digest={}", sha256(&data)))).body(data.clone());
    assert_eq!(put.send().unwrap().status(), StatusCode::CREATED);
    assert_eq!(reg.head(&format!("/v2/sess/a/blobs/{}", sha256(&data))).status(), StatusCode::OK);
    assert_eq!(reg.head(&format!("/v2/sess/b/blobs/{}", sha256(&data))).status(), StatusCode::NOT_FOUND);
}

#[test]
fn a_failed_digest_check_ends_the_session() {
    // Distribution removes an upload whose digest did not verify.
    let reg = Reg::start();
    let loc = reg.start_upload("sess/fail");
    let resp = reg
        .req(Method::PUT, &with_query(&loc, &format!("digest={}", sha256(b"other"))))
        .body(b"content".to_vec())
        .send()
        .unwrap();
    expect_error(resp, 400, "DIGEST_INVALID");
    expect_error(reg.get(&loc), 404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn retag_after_a_read_is_seen_at_once() {
    let reg = Reg::start();
    let first = reg.push_image("cache/app", "latest");
    for _ in 0..2 {
        assert_eq!(header(&reg.head("/v2/cache/app/manifests/latest"), "docker-content-digest"), first.digest);
        assert_eq!(reg.get("/v2/cache/app/manifests/latest").bytes().unwrap().as_ref(), first.manifest.as_slice());
    }
    let second = reg.push_image("cache/app", "latest");
    let resp = reg.get("/v2/cache/app/manifests/latest");
    assert_eq!(header(&resp, "docker-content-digest"), second.digest);
    assert_eq!(resp.bytes().unwrap().as_ref(), second.manifest.as_slice());
    // Same digest, another repository: its own tags only.
    expect_error(reg.get("/v2/cache/other/manifests/latest"), 404, "MANIFEST_UNKNOWN");
    expect_error(reg.get(&format!("/v2/cache/other/manifests/{}", second.digest)), 404, "MANIFEST_UNKNOWN");
}

#[test]
fn deletes_after_cached_reads_are_seen_at_once() {
    let reg = Reg::with_deletes();
    let image = reg.push_image("cache/del", "a");
    reg.push_manifest("cache/del", "b", OCI_MANIFEST, &image.manifest);
    for r in ["a", "b", image.digest.as_str()] {
        assert_eq!(reg.get(&format!("/v2/cache/del/manifests/{r}")).status(), StatusCode::OK);
        assert_eq!(reg.head(&format!("/v2/cache/del/manifests/{r}")).status(), StatusCode::OK);
    }
    assert_eq!(reg.delete("/v2/cache/del/manifests/a").status(), StatusCode::ACCEPTED);
    assert_eq!(reg.head("/v2/cache/del/manifests/a").status(), StatusCode::NOT_FOUND);
    assert_eq!(reg.head("/v2/cache/del/manifests/b").status(), StatusCode::OK);
    assert_eq!(reg.delete(&format!("/v2/cache/del/manifests/{}", image.digest)).status(), StatusCode::ACCEPTED);
    for r in ["b", image.digest.as_str()] {
        assert_eq!(reg.head(&format!("/v2/cache/del/manifests/{r}")).status(), StatusCode::NOT_FOUND, "{r}");
    }
    assert_eq!(json_body(reg.get("/v2/cache/del/tags/list"))["tags"], json!([]));
    // Pushed again, it is back.
    reg.push_manifest("cache/del", "a", OCI_MANIFEST, &image.manifest);
    assert_eq!(reg.get("/v2/cache/del/manifests/a").status(), StatusCode::OK);
}

#[test]
fn a_deleted_blob_cannot_back_a_new_manifest_or_a_mount() {
    let reg = Reg::with_deletes();
    let image = Image::oci(&reg, "gone/app");
    assert_eq!(reg.delete(&format!("/v2/gone/app/blobs/{}", image.layer_digest)).status(), StatusCode::ACCEPTED);
    expect_error(reg.put_manifest("gone/app", "v1", OCI_MANIFEST, &image.manifest), 400, "MANIFEST_BLOB_UNKNOWN");
    let mount =
        reg.req(Method::POST, &format!("/v2/gone/dst/blobs/uploads/?mount={}&from=gone/app", image.layer_digest));
    assert_eq!(mount.send().unwrap().status(), StatusCode::ACCEPTED);
    // Pushed again: visible again, and the manifest is accepted.
    reg.push_blob("gone/app", &image.layer);
    reg.push_manifest("gone/app", "v1", OCI_MANIFEST, &image.manifest);
}

#[test]
fn everything_survives_a_restart() {
    let mut reg = Reg::start();
    let image = reg.push_image("persist/app", "v1");
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [image.descriptor(OCI_MANIFEST)] });
    let index_digest = reg.push_manifest("persist/app", "multi", OCI_INDEX, &serde_json::to_vec(&index).unwrap());
    reg.server.restart().unwrap();
    assert_eq!(header(&reg.head("/v2/persist/app/manifests/v1"), "docker-content-digest"), image.digest);
    assert_eq!(header(&reg.head("/v2/persist/app/manifests/multi"), "docker-content-digest"), index_digest);
    let blob = reg.get(&format!("/v2/persist/app/blobs/{}", image.layer_digest));
    assert_eq!(blob.bytes().unwrap().as_ref(), image.layer.as_slice());
    assert_eq!(json_body(reg.get("/v2/persist/app/tags/list"))["tags"], json!(["multi", "v1"]));
    assert_eq!(json_body(reg.get("/v2/_catalog"))["repositories"], json!(["persist/app"]));
}
