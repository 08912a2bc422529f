//! Blob `HEAD`/`GET` (with `Range`), per-repository visibility, `DELETE`.

mod common;

use common::*;
use reqwest::StatusCode;

#[test]
fn head_and_get_report_length_and_digest() {
    let reg = Reg::start();
    let data = random_bytes(4321);
    let digest = reg.push_blob("blobs/a", &data);
    let path = format!("/v2/blobs/a/blobs/{digest}");

    let head = reg.head(&path);
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length"), "4321");
    assert_eq!(header(&head, "docker-content-digest"), digest);
    assert!(head.bytes().unwrap().is_empty());

    let get = reg.get(&path);
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(header(&get, "content-length"), "4321");
    assert_eq!(header(&get, "docker-content-digest"), digest);
    assert_eq!(get.bytes().unwrap().as_ref(), data.as_slice());

    // Clients may percent-encode the ':' of the digest.
    let encoded = path.replace(':', "%3A");
    assert_eq!(reg.head(&encoded).status(), StatusCode::OK);
}

#[test]
fn range_requests_give_206_or_416() {
    let reg = Reg::start();
    let data = random_bytes(1000);
    let digest = reg.push_blob("blobs/range", &data);
    let path = format!("/v2/blobs/range/blobs/{digest}");
    let ranged = |range: &str| reg.req(reqwest::Method::GET, &path).header("range", range).send().unwrap();

    let resp = ranged("bytes=10-19");
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&resp, "content-range"), "bytes 10-19/1000");
    assert_eq!(header(&resp, "content-length"), "10");
    assert_eq!(resp.bytes().unwrap().as_ref(), &data[10..20]);

    // Open-ended and suffix ranges (RFC 9110 §14.1.2).
    let resp = ranged("bytes=990-");
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&resp, "content-range"), "bytes 990-999/1000");
    assert_eq!(resp.bytes().unwrap().as_ref(), &data[990..]);
    let resp = ranged("bytes=-5");
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&resp, "content-range"), "bytes 995-999/1000");
    assert_eq!(resp.bytes().unwrap().as_ref(), &data[995..]);
    // An end past the size is clamped.
    let resp = ranged("bytes=900-5000");
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&resp, "content-range"), "bytes 900-999/1000");

    // Unsatisfiable: 416 with `Content-Range: bytes */size` (RFC 9110 §15.5.17).
    let resp = ranged("bytes=1000-1010");
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&resp, "content-range"), "bytes */1000");

    // A malformed Range is ignored: the whole blob.
    let resp = ranged("lines=1-2");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().unwrap().len(), 1000);
}

#[test]
fn unknown_blob_is_blob_unknown() {
    let reg = Reg::start();
    let missing = sha256(b"never pushed");
    expect_error(reg.get(&format!("/v2/blobs/none/blobs/{missing}")), 404, "BLOB_UNKNOWN");
    let head = reg.head(&format!("/v2/blobs/none/blobs/{missing}"));
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
}

#[test]
fn a_blob_is_visible_only_where_it_was_pushed_or_mounted() {
    let reg = Reg::start();
    let data = random_bytes(100);
    let digest = reg.push_blob("vis/one", &data);
    assert_eq!(reg.head(&format!("/v2/vis/one/blobs/{digest}")).status(), StatusCode::OK);
    expect_error(reg.get(&format!("/v2/vis/two/blobs/{digest}")), 404, "BLOB_UNKNOWN");
    assert_eq!(reg.head(&format!("/v2/vis/two/blobs/{digest}")).status(), StatusCode::NOT_FOUND);

    let mount = reg
        .req(reqwest::Method::POST, &format!("/v2/vis/two/blobs/uploads/?mount={digest}&from=vis/one"))
        .send()
        .unwrap();
    assert_eq!(mount.status(), StatusCode::CREATED);
    let get = reg.get(&format!("/v2/vis/two/blobs/{digest}"));
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.bytes().unwrap().as_ref(), data.as_slice());
}

#[test]
fn delete_is_202_and_visible_to_the_next_request() {
    let reg = Reg::with_deletes();
    let data = random_bytes(300);
    let digest = reg.push_blob("del/a", &data);
    reg.push_blob("del/b", &data);
    let path = format!("/v2/del/a/blobs/{digest}");
    assert_eq!(reg.get(&path).status(), StatusCode::OK);

    let resp = reg.delete(&path);
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // The very next request no longer sees it.
    expect_error(reg.get(&path), 404, "BLOB_UNKNOWN");
    assert_eq!(reg.head(&path).status(), StatusCode::NOT_FOUND);
    // Deleting again: 404 BLOB_UNKNOWN (spec: "already deleted or did not exist").
    expect_error(reg.delete(&path), 404, "BLOB_UNKNOWN");
    // The other repository's link is untouched.
    let other = reg.get(&format!("/v2/del/b/blobs/{digest}"));
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(other.bytes().unwrap().as_ref(), data.as_slice());
}

#[test]
fn delete_with_deletes_disabled_is_405_unsupported() {
    let reg = Reg::start();
    let digest = reg.push_blob("del/off", b"keep me");
    let path = format!("/v2/del/off/blobs/{digest}");
    expect_error(reg.delete(&path), 405, "UNSUPPORTED");
    assert_eq!(reg.get(&path).status(), StatusCode::OK);
}

#[test]
fn bad_digests_in_blob_urls_are_digest_invalid() {
    let reg = Reg::start();
    reg.push_blob("bad/dig", b"x");
    // An unsupported algorithm is DIGEST_INVALID, as in Distribution.
    let md5 = "md5:d41d8cd98f00b204e9800998ecf8427e";
    expect_error(reg.get(&format!("/v2/bad/dig/blobs/{md5}")), 400, "DIGEST_INVALID");
    assert_eq!(reg.head(&format!("/v2/bad/dig/blobs/{md5}")).status(), StatusCode::BAD_REQUEST);
    // Malformed digests: Distribution's router does not even match them
    // (404); the spec leaves it open. Either way a client error, never a 500.
    for d in ["sha256:abc", "sha256:ZZZ", "nocolon", "sha256:"] {
        let status = reg.get(&format!("/v2/bad/dig/blobs/{d}")).status();
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{d}: {status}");
    }
}
