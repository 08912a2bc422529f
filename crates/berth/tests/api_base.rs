//! `GET /v2/`, unknown routes, configured response headers, `Location`
//! URLs behind a proxy or with `http.host`, and read-only mode.

mod common;

use common::*;
use reqwest::{Method, StatusCode};

#[test]
fn base_endpoint_answers_200_with_api_version_header() {
    let reg = Reg::start();
    let resp = reg.get("/v2/");
    assert_eq!(resp.status(), StatusCode::OK);
    // Distribution's (and Docker's) version check header.
    assert_eq!(header(&resp, "docker-distribution-api-version"), "registry/2.0");
    // Distribution answers `{}`; the spec only requires 200.
    assert_eq!(json_body(resp), serde_json::json!({}));
    let resp = reg.head("/v2/");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "docker-distribution-api-version"), "registry/2.0");
}

#[test]
fn unknown_routes_are_404_and_wrong_methods_405() {
    let reg = Reg::start();
    for path in ["/v1/", "/v2/a", "/v2/a/other/x", "/nope", "/v2/a/manifests/"] {
        let resp = reg.get(path);
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A known endpoint with a method it does not serve.
    let resp = reg.req(Method::POST, "/v2/a/manifests/latest").send().unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let resp = reg.req(Method::PUT, "/v2/_catalog").send().unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn configured_http_headers_are_on_every_response() {
    // Debian's stock config sets `X-Content-Type-Options: [nosniff]`.
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../berth-config/fixtures/debian-docker-registry-noauth.yml");
    let reg = Reg::start_with(options().config_file(config).env("REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS", "[DENY]"));
    let ok = reg.get("/v2/");
    let not_found = reg.get("/v2/nothing/here/manifests/latest");
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    for resp in [&ok, &not_found] {
        assert_eq!(header(resp, "x-content-type-options"), "nosniff", "{}", resp.status());
        assert_eq!(header(resp, "x-frame-options"), "DENY", "{}", resp.status());
    }
}

#[test]
fn location_is_relative_by_default() {
    let reg = Reg::start();
    let loc = reg.start_upload("loc/rel");
    assert!(loc.starts_with("/v2/loc/rel/blobs/uploads/"), "{loc}");
    let data = random_bytes(10);
    let resp = reg
        .req(Method::POST, &format!("/v2/loc/rel/blobs/uploads/?digest={}", sha256(&data)))
        .body(data.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(location(&resp), format!("/v2/loc/rel/blobs/{}", sha256(&data)));
}

#[test]
fn forwarded_headers_give_absolute_location() {
    let reg = Reg::start();
    let resp = reg
        .req(Method::POST, "/v2/loc/proxy/blobs/uploads/")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "registry.example.com")
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let loc = location(&resp);
    assert!(loc.starts_with("https://registry.example.com/v2/loc/proxy/blobs/uploads/"), "{loc}");

    // Only the scheme forwarded: the Host the client used is kept.
    let resp =
        reg.req(Method::POST, "/v2/loc/proxy/blobs/uploads/").header("x-forwarded-proto", "https").send().unwrap();
    let loc = location(&resp);
    let host = reg.server.addr().to_string();
    assert!(loc.starts_with(&format!("https://{host}/v2/loc/proxy/blobs/uploads/")), "{loc}");

    // Manifest PUT Location as well.
    let image = Image::oci(&reg, "loc/proxy");
    let resp = reg
        .req(Method::PUT, "/v2/loc/proxy/manifests/v1")
        .header("content-type", OCI_MANIFEST)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "registry.example.com")
        .body(image.manifest.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(location(&resp), format!("https://registry.example.com/v2/loc/proxy/manifests/{}", image.digest));
}

#[test]
fn http_host_gives_absolute_location() {
    let reg = Reg::start_with(options().env("REGISTRY_HTTP_HOST", "https://reg.example.org"));
    let loc = reg.start_upload("loc/host");
    assert!(loc.starts_with("https://reg.example.org/v2/loc/host/blobs/uploads/"), "{loc}");
    // The absolute URL is still the upload: its path works against the server.
    let path = loc.strip_prefix("https://reg.example.org").unwrap();
    assert_eq!(reg.get(path).status(), StatusCode::NO_CONTENT);
}

#[test]
fn read_only_mode_refuses_writes_and_serves_reads() {
    let mut writer = Reg::with_deletes();
    let image = writer.push_image("ro/app", "v1");
    writer.server.stop().unwrap();
    // The same data, served read-only (Distribution: 405 UNSUPPORTED for writes).
    // `writer` keeps the data dir alive until the end of the test.
    let data = writer.server.data_dir().to_string_lossy().into_owned();
    let reg = Reg::start_with(
        options()
            .delete_enabled(true)
            .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", data)
            .env("REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED", "true"),
    );
    let m = reg.get("/v2/ro/app/manifests/v1");
    assert_eq!(m.status(), StatusCode::OK);
    assert_eq!(m.bytes().unwrap().as_ref(), image.manifest.as_slice());
    assert_eq!(reg.get(&format!("/v2/ro/app/blobs/{}", image.layer_digest)).status(), StatusCode::OK);
    assert_eq!(reg.get("/v2/ro/app/tags/list").status(), StatusCode::OK);
    assert_eq!(reg.get("/v2/_catalog").status(), StatusCode::OK);

    let post = reg.req(Method::POST, "/v2/ro/app/blobs/uploads/").send().unwrap();
    expect_error(post, 405, "UNSUPPORTED");
    let put = reg.put_manifest("ro/app", "v2", OCI_MANIFEST, &image.manifest);
    expect_error(put, 405, "UNSUPPORTED");
    expect_error(reg.delete(&format!("/v2/ro/app/manifests/{}", image.digest)), 405, "UNSUPPORTED");
    expect_error(reg.delete(&format!("/v2/ro/app/blobs/{}", image.layer_digest)), 405, "UNSUPPORTED");
    // Nothing changed.
    assert_eq!(reg.get("/v2/ro/app/manifests/v1").status(), StatusCode::OK);
    assert_eq!(reg.get("/v2/ro/app/manifests/v2").status(), StatusCode::NOT_FOUND);
}

#[test]
fn every_response_carries_a_request_id_that_the_access_log_names() {
    let reg = Reg::start();
    let a = header(&reg.get("/v2/"), "x-request-id");
    let b = header(&reg.get("/v2/nothing/here/manifests/v1"), "x-request-id");
    assert!(!a.is_empty() && a != b, "{a} {b}");
    // A proxy's id is kept, so one id follows the request through both.
    let resp = reg.req(reqwest::Method::GET, "/v2/").header("x-request-id", "edge-7f3a").send().unwrap();
    assert_eq!(header(&resp, "x-request-id"), "edge-7f3a");
    // The access log is written after the response head; allow it a moment.
    for _ in 0..50 {
        let log = reg.server.log();
        if log.contains(&b) && log.contains("edge-7f3a") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("request ids not in the access log:\n{}", reg.server.log());
}
