//! Manifest pushes the registry must refuse, and manifest/tag deletes.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

#[test]
fn content_type_that_contradicts_media_type_is_manifest_invalid() {
    let reg = Reg::start();
    let image = Image::oci(&reg, "inv/ct");
    expect_error(reg.put_manifest("inv/ct", "v1", DOCKER_MANIFEST, &image.manifest), 400, "MANIFEST_INVALID");
    expect_error(reg.put_manifest("inv/ct", "v1", OCI_INDEX, &image.manifest), 400, "MANIFEST_INVALID");
    assert_eq!(reg.get("/v2/inv/ct/manifests/v1").status(), StatusCode::NOT_FOUND);
}

#[test]
fn schema1_is_manifest_invalid() {
    let reg = Reg::start();
    let schema1 = json!({
        "schemaVersion": 1, "name": "inv/s1", "tag": "v1", "architecture": "amd64",
        "fsLayers": [ { "blobSum": sha256(b"layer") } ],
        "history": [ { "v1Compatibility": "{}" } ],
    });
    let body = serde_json::to_vec(&schema1).unwrap();
    for ct in [
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/json",
    ] {
        let err = expect_error(reg.put_manifest("inv/s1", "v1", ct, &body), 400, "MANIFEST_INVALID");
        assert!(err["message"].as_str().unwrap().to_lowercase().contains("schema1"), "{ct}: {err}");
    }
}

#[test]
fn malformed_manifests_are_manifest_invalid() {
    let reg = Reg::start();
    let layer = reg.push_blob_descriptor("inv/bad", OCI_LAYER, b"l");
    let cases = [
        b"not json".to_vec(),
        b"{}".to_vec(),
        serde_json::to_vec(&json!({ "schemaVersion": 3, "mediaType": OCI_MANIFEST })).unwrap(),
        // config missing its digest
        serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                     "config": { "mediaType": OCI_CONFIG, "size": 2 }, "layers": [layer] }))
        .unwrap(),
    ];
    for body in cases {
        let resp = reg.put_manifest("inv/bad", "v1", OCI_MANIFEST, &body);
        expect_error(resp, 400, "MANIFEST_INVALID");
    }
}

#[test]
fn missing_blobs_are_manifest_blob_unknown() {
    let reg = Reg::start();
    let image = Image::oci(&reg, "inv/blobs");
    let missing = sha256(b"missing layer");
    let mut m: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    m["layers"].as_array_mut().unwrap().push(json!({ "mediaType": OCI_LAYER, "digest": missing, "size": 13 }));
    let err = expect_error(
        reg.put_manifest("inv/blobs", "v1", OCI_MANIFEST, &serde_json::to_vec(&m).unwrap()),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    );
    // Spec: "The detail field of the error response will have a digest field identifying the missing blob."
    assert_eq!(err["detail"]["digest"], missing, "{err}");

    // Blobs that exist only in another repository do not count.
    let resp = reg.put_manifest("inv/elsewhere", "v1", OCI_MANIFEST, &image.manifest);
    expect_error(resp, 400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(reg.get("/v2/inv/blobs/manifests/v1").status(), StatusCode::NOT_FOUND);
}

#[test]
fn index_with_a_missing_child_is_manifest_blob_unknown() {
    let reg = Reg::start();
    let present = reg.push_image("inv/idx", "present");
    let absent = Image::oci(&reg, "inv/idx"); // blobs pushed, manifest not
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX,
                        "manifests": [present.descriptor(OCI_MANIFEST), absent.descriptor(OCI_MANIFEST)] });
    let body = serde_json::to_vec(&index).unwrap();
    expect_error(reg.put_manifest("inv/idx", "multi", OCI_INDEX, &body), 400, "MANIFEST_BLOB_UNKNOWN");
    // Once the child is there, the same index is accepted.
    reg.push_manifest("inv/idx", &absent.digest, OCI_MANIFEST, &absent.manifest);
    reg.push_manifest("inv/idx", "multi", OCI_INDEX, &body);
}

#[test]
fn oversized_manifest_is_413() {
    let reg = Reg::start();
    // One byte over the 4 MiB limit: refused with 413, the body read up to
    // the limit first so the client sees the answer, not a broken pipe.
    let oversized = vec![b' '; (4 << 20) + 1];
    let resp = reg.put_manifest("inv/big", "v1", OCI_MANIFEST, &oversized);
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Exactly at the limit is still a manifest (here: refused only for the
    // missing blob, so the size check passed).
    let image = Image::oci(&reg, "inv/big");
    let mut m: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    m["annotations"] = json!({ "padding": "" });
    let base = serde_json::to_vec(&m).unwrap().len();
    m["annotations"] = json!({ "padding": "x".repeat((4 << 20) - base) });
    m["config"]["digest"] = sha256(b"absent").into();
    let body = serde_json::to_vec(&m).unwrap();
    assert_eq!(body.len(), 4 << 20);
    expect_error(reg.put_manifest("inv/big", "v1", OCI_MANIFEST, &body), 400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(reg.get("/v2/inv/big/manifests/v1").status(), StatusCode::NOT_FOUND);
}

#[test]
fn digest_mismatch_on_put_by_digest_is_digest_invalid() {
    let reg = Reg::start();
    let image = Image::oci(&reg, "inv/dig");
    let wrong = sha256(b"another manifest");
    expect_error(reg.put_manifest("inv/dig", &wrong, OCI_MANIFEST, &image.manifest), 400, "DIGEST_INVALID");
    assert_eq!(reg.get(&format!("/v2/inv/dig/manifests/{}", image.digest)).status(), StatusCode::NOT_FOUND);
    // An algorithm the registry does not support: DIGEST_INVALID, not a 500.
    let sha384 = format!("sha384:{}", "0".repeat(96));
    expect_error(reg.put_manifest("inv/dig", &sha384, OCI_MANIFEST, &image.manifest), 400, "DIGEST_INVALID");
    let status = reg.get(&format!("/v2/inv/dig/manifests/{sha384}")).status();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{status}");
}

#[test]
fn delete_by_digest_removes_the_manifest_and_its_tags() {
    let reg = Reg::with_deletes();
    let image = reg.push_image("del/m", "v1");
    reg.push_manifest("del/m", "v2", OCI_MANIFEST, &image.manifest);
    let keep = reg.push_image("del/m", "keep");
    // Warm whatever cache there is: the delete must still be visible at once.
    assert_eq!(reg.get("/v2/del/m/manifests/v1").status(), StatusCode::OK);

    let resp = reg.delete(&format!("/v2/del/m/manifests/{}", image.digest));
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    for reference in ["v1", "v2", image.digest.as_str()] {
        expect_error(reg.get(&format!("/v2/del/m/manifests/{reference}")), 404, "MANIFEST_UNKNOWN");
    }
    assert_eq!(json_body(reg.get("/v2/del/m/tags/list"))["tags"], json!(["keep"]));
    assert_eq!(reg.head(&format!("/v2/del/m/manifests/{}", keep.digest)).status(), StatusCode::OK);
    expect_error(reg.delete(&format!("/v2/del/m/manifests/{}", image.digest)), 404, "MANIFEST_UNKNOWN");
}

#[test]
fn delete_by_tag_removes_only_the_tag() {
    let reg = Reg::with_deletes();
    let image = reg.push_image("del/t", "v1");
    reg.push_manifest("del/t", "v2", OCI_MANIFEST, &image.manifest);
    assert_eq!(reg.get("/v2/del/t/manifests/v1").status(), StatusCode::OK);

    assert_eq!(reg.delete("/v2/del/t/manifests/v1").status(), StatusCode::ACCEPTED);
    expect_error(reg.get("/v2/del/t/manifests/v1"), 404, "MANIFEST_UNKNOWN");
    assert_eq!(reg.get("/v2/del/t/manifests/v2").status(), StatusCode::OK);
    assert_eq!(reg.get(&format!("/v2/del/t/manifests/{}", image.digest)).status(), StatusCode::OK);
    assert_eq!(json_body(reg.get("/v2/del/t/tags/list"))["tags"], json!(["v2"]));
    expect_error(reg.delete("/v2/del/t/manifests/v1"), 404, "MANIFEST_UNKNOWN");
}

#[test]
fn manifest_deletes_disabled_are_405_unsupported() {
    let reg = Reg::start();
    let image = reg.push_image("del/off", "v1");
    expect_error(reg.delete(&format!("/v2/del/off/manifests/{}", image.digest)), 405, "UNSUPPORTED");
    expect_error(reg.delete("/v2/del/off/manifests/v1"), 405, "UNSUPPORTED");
    assert_eq!(reg.get("/v2/del/off/manifests/v1").status(), StatusCode::OK);
}
