//! Repository name validation on every endpoint, and the error body shape
//! for every error code the spec lists, one request each.

mod common;

use common::*;
use reqwest::{Method, StatusCode};

const INVALID_NAMES: &[&str] = &["Upper/case", "a..b", "-lead", "trail-", "a//b", "a/_b", "a___b"];

#[test]
fn invalid_names_are_name_invalid_everywhere() {
    let reg = Reg::start();
    let digest = sha256(b"x");
    let long = format!("{}/{}", "a".repeat(200), "b".repeat(60));
    let names: Vec<&str> = INVALID_NAMES.iter().copied().chain([long.as_str()]).collect();
    for name in names {
        let cases = [
            (Method::GET, format!("/v2/{name}/tags/list")),
            (Method::GET, format!("/v2/{name}/manifests/latest")),
            (Method::HEAD, format!("/v2/{name}/manifests/latest")),
            (Method::PUT, format!("/v2/{name}/manifests/latest")),
            (Method::GET, format!("/v2/{name}/blobs/{digest}")),
            (Method::POST, format!("/v2/{name}/blobs/uploads/")),
            (Method::GET, format!("/v2/{name}/referrers/{digest}")),
        ];
        for (method, path) in cases {
            let resp = reg.req(method.clone(), &path).header("content-type", OCI_MANIFEST).body("{}").send().unwrap();
            if method == Method::HEAD {
                assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{method} {path}");
            } else {
                let err = expect_error(resp, 400, "NAME_INVALID");
                assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {path}: {err}");
            }
        }
    }
}

#[test]
fn valid_unusual_names_work() {
    // The spec's name grammar allows these; each must round-trip.
    let reg = Reg::start();
    for name in ["a", "a.b", "a_b", "a__b", "a---b", "0/1/2/3", "x/blobs", "x/manifests/y", "x/tags/list", "x/uploads"]
    {
        let image = reg.push_image(name, "v1");
        let resp = reg.get(&format!("/v2/{name}/manifests/v1"));
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        assert_eq!(header(&resp, "docker-content-digest"), image.digest, "{name}");
        assert_eq!(reg.get(&format!("/v2/{name}/blobs/{}", image.layer_digest)).status(), StatusCode::OK, "{name}");
        assert_eq!(serde_json::json!(["v1"]), json_body(reg.get(&format!("/v2/{name}/tags/list")))["tags"], "{name}");
    }
}

#[test]
fn every_spec_error_code_has_the_spec_shape() {
    let reg = Reg::start();
    let image = reg.push_image("codes/app", "v1");
    let missing = sha256(b"missing");

    // BLOB_UNKNOWN
    let err = expect_error(reg.get(&format!("/v2/codes/app/blobs/{missing}")), 404, "BLOB_UNKNOWN");
    assert_eq!(err["message"], "blob unknown to registry");
    // BLOB_UPLOAD_UNKNOWN
    expect_error(reg.get("/v2/codes/app/blobs/uploads/unknown-session"), 404, "BLOB_UPLOAD_UNKNOWN");
    // BLOB_UPLOAD_INVALID (an out-of-order chunk: 416, Distribution's RANGE_INVALID also allowed)
    let loc = reg.start_upload("codes/app");
    let resp = reg.req(Method::PATCH, &loc).header("content-range", "5-9").body(vec![0u8; 5]).send().unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    if header(&resp, "content-type").starts_with("application/json") {
        let code = json_body(resp)["errors"][0]["code"].as_str().unwrap_or_default().to_owned();
        assert!(code == "BLOB_UPLOAD_INVALID" || code == "RANGE_INVALID", "{code}");
    }
    // DIGEST_INVALID
    let put = reg.req(Method::PUT, &with_query(&loc, &format!("digest={missing}"))).body(b"abc".to_vec());
    expect_error(put.send().unwrap(), 400, "DIGEST_INVALID");
    // MANIFEST_BLOB_UNKNOWN
    let mut m: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    m["config"]["digest"] = missing.clone().into();
    let body = serde_json::to_vec(&m).unwrap();
    expect_error(reg.put_manifest("codes/app", "v2", OCI_MANIFEST, &body), 400, "MANIFEST_BLOB_UNKNOWN");
    // MANIFEST_INVALID
    expect_error(reg.put_manifest("codes/app", "v2", OCI_MANIFEST, b"[1,2"), 400, "MANIFEST_INVALID");
    // MANIFEST_UNKNOWN
    let err = expect_error(reg.get("/v2/codes/app/manifests/nope"), 404, "MANIFEST_UNKNOWN");
    assert_eq!(err["message"], "manifest unknown");
    // NAME_INVALID
    expect_error(reg.get("/v2/Codes/tags/list"), 400, "NAME_INVALID");
    // NAME_UNKNOWN
    expect_error(reg.get("/v2/codes/none/tags/list"), 404, "NAME_UNKNOWN");
    // SIZE_INVALID: covered in api_uploads (Content-Length vs Content-Range).
    // UNSUPPORTED (deletes are off by default, as in registry:2)
    expect_error(reg.delete(&format!("/v2/codes/app/manifests/{}", image.digest)), 405, "UNSUPPORTED");
}

#[test]
fn invalid_tags_are_refused_on_push_and_unknown_on_read() {
    let reg = Reg::start();
    let image = Image::oci(&reg, "codes/tag");
    let long = "t".repeat(129); // tags are at most 128 characters
    for tag in [".dot", "-dash", long.as_str()] {
        // The spec has no TAG_INVALID; Distribution's router answers 404 for
        // such a path. Any client error will do, as long as nothing is stored.
        let resp = reg.put_manifest("codes/tag", tag, OCI_MANIFEST, &image.manifest);
        assert!(resp.status().is_client_error(), "{tag}: {}", resp.status());
    }
    let resp = reg
        .req(Method::PUT, &format!("/v2/codes/tag/manifests/{}?tag=-bad", image.digest))
        .header("content-type", OCI_MANIFEST)
        .body(image.manifest.clone())
        .send()
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(reg.get("/v2/codes/tag/manifests/.dot").status(), StatusCode::NOT_FOUND);
}
