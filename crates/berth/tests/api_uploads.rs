//! Blob uploads: monolithic (POST+PUT, single POST), chunked and streamed
//! PATCH, final chunk on PUT, status, cancel, digest checks, sha512, and an
//! upload resumed across a restart.

mod common;

use common::*;
use reqwest::blocking::Body;
use reqwest::{Method, StatusCode};

fn patch(reg: &Reg, loc: &str, range: Option<&str>, chunk: &[u8]) -> reqwest::blocking::Response {
    let mut req = reg.req(Method::PATCH, loc).header("content-type", "application/octet-stream");
    if let Some(r) = range {
        req = req.header("content-range", r);
    }
    req.body(chunk.to_vec()).send().unwrap()
}

fn put(reg: &Reg, loc: &str, digest: &str, body: &[u8]) -> reqwest::blocking::Response {
    reg.req(Method::PUT, &with_query(loc, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .unwrap()
}

#[track_caller]
fn assert_blob(reg: &Reg, repo: &str, digest: &str, data: &[u8]) {
    let resp = reg.get(&format!("/v2/{repo}/blobs/{digest}"));
    assert_eq!(resp.status(), StatusCode::OK, "{digest} in {repo}");
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_eq!(resp.bytes().unwrap().as_ref(), data);
}

#[test]
fn post_then_monolithic_put() {
    let reg = Reg::start();
    let resp = reg.req(Method::POST, "/v2/up/mono/blobs/uploads/").send().unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let loc = location(&resp);
    assert!(!header(&resp, "docker-upload-uuid").is_empty());
    assert_eq!(upload_range_end(&resp), 0, "a new upload reports 0-0");

    let data = random_bytes(5000);
    let digest = sha256(&data);
    let resp = put(&reg, &loc, &digest, &data);
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(location(&resp), format!("/v2/up/mono/blobs/{digest}"));
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_blob(&reg, "up/mono", &digest, &data);
    // The session is over.
    expect_error(reg.get(&loc), 404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn single_post_with_digest() {
    let reg = Reg::start();
    let data = random_bytes(777);
    let digest = sha256(&data);
    let resp = reg
        .req(Method::POST, &format!("/v2/up/single/blobs/uploads/?digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(location(&resp), format!("/v2/up/single/blobs/{digest}"));
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_blob(&reg, "up/single", &digest, &data);
}

#[test]
fn chunked_patch_in_order_then_out_of_order_and_overlap_are_416() {
    let reg = Reg::start();
    let data = random_bytes(30);
    let loc = reg.start_upload("up/chunks");

    let resp = patch(&reg, &loc, Some("0-9"), &data[..10]);
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(upload_range_end(&resp), 9);
    let loc = location(&resp);
    let resp = patch(&reg, &loc, Some("10-19"), &data[10..20]);
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(upload_range_end(&resp), 19);
    let loc = location(&resp);

    // Out of order (a gap) and overlapping chunks: 416, with the progress
    // so far in `Range` (spec: "a 416 ... will include a Range header").
    for (range, chunk) in [("25-29", &data[25..30]), ("15-24", &data[15..25]), ("0-9", &data[..10])] {
        let resp = patch(&reg, &loc, Some(range), chunk);
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(upload_range_end(&resp), 19, "{range}");
    }
    // Invalid Content-Range format: 416 as well. (Berth also accepts the
    // RFC form `bytes 20-29/30`, a leniency the spec's regex does not need.)
    for bad in ["twenty-thirty", "20-", "29-20"] {
        let resp = patch(&reg, &loc, Some(bad), &data[20..30]);
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{bad}");
    }

    // The upload is still good: continue where it was.
    let resp = patch(&reg, &loc, Some("20-29"), &data[20..30]);
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let loc = location(&resp);
    let digest = sha256(&data);
    // A final chunk on PUT is held to the same rule.
    let resp = reg
        .req(Method::PUT, &with_query(&loc, &format!("digest={digest}")))
        .header("content-range", "35-39")
        .body(vec![0u8; 5])
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(upload_range_end(&resp), 29);
    let resp = put(&reg, &loc, &digest, &[]);
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&reg, "up/chunks", &digest, &data);
}

#[test]
fn content_length_that_disagrees_with_content_range_is_refused() {
    let reg = Reg::start();
    let loc = reg.start_upload("up/size");
    let resp = patch(&reg, &loc, Some("0-9"), &[1, 2, 3, 4, 5]);
    // SIZE_INVALID (400) or a 416 for the range are both spec answers.
    let status = resp.status().as_u16();
    assert!(status == 400 || status == 416, "{status}");
    if status == 400 {
        expect_error(resp, 400, "SIZE_INVALID");
    }
}

#[test]
fn streamed_patch_without_content_range_then_final_chunk_in_put() {
    let reg = Reg::start();
    let data = random_bytes(200_000);
    let loc = reg.start_upload("up/stream");
    // What `docker push` sends: a chunked body, no Content-Range or -Length.
    let body = Body::new(std::io::Cursor::new(data[..150_000].to_vec()));
    let resp =
        reg.req(Method::PATCH, &loc).header("content-type", "application/octet-stream").body(body).send().unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(upload_range_end(&resp), 149_999);
    let loc = location(&resp);

    // The status endpoint agrees.
    let status = reg.get(&loc);
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(upload_range_end(&status), 149_999);
    assert!(location(&status).contains("/v2/up/stream/blobs/uploads/"));
    assert!(!header(&status, "docker-upload-uuid").is_empty());

    // The last chunk travels with the closing PUT.
    let digest = sha256(&data);
    let resp = reg
        .req(Method::PUT, &with_query(&loc, &format!("digest={digest}")))
        .header("content-range", "150000-199999")
        .body(data[150_000..].to_vec())
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&reg, "up/stream", &digest, &data);
}

#[test]
fn status_of_a_session() {
    let reg = Reg::start();
    let resp = reg.req(Method::POST, "/v2/up/status/blobs/uploads/").send().unwrap();
    let uuid = header(&resp, "docker-upload-uuid");
    let loc = location(&resp);
    let status = reg.get(&loc);
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(upload_range_end(&status), 0);
    assert_eq!(header(&status, "docker-upload-uuid"), uuid);
    assert_eq!(location(&status), loc);
    patch(&reg, &loc, Some("0-41"), &random_bytes(42));
    let status = reg.get(&loc);
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(upload_range_end(&status), 41);
    // Distribution answers HEAD on the upload URL like GET.
    let head = reg.head(&loc);
    assert_eq!(head.status(), StatusCode::NO_CONTENT);
    assert_eq!(upload_range_end(&head), 41);

    // Another repository's path does not reach this session.
    let other = loc.replace("/v2/up/status/", "/v2/up/other/");
    expect_error(reg.get(&other), 404, "BLOB_UPLOAD_UNKNOWN");
    expect_error(reg.get("/v2/up/status/blobs/uploads/no-such-session"), 404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn cancel_ends_the_session() {
    let reg = Reg::start();
    let loc = reg.start_upload("up/cancel");
    patch(&reg, &loc, None, b"some bytes");
    let resp = reg.delete(&loc);
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    expect_error(reg.get(&loc), 404, "BLOB_UPLOAD_UNKNOWN");
    expect_error(patch(&reg, &loc, None, b"more"), 404, "BLOB_UPLOAD_UNKNOWN");
    expect_error(put(&reg, &loc, &sha256(b"some bytes"), &[]), 404, "BLOB_UPLOAD_UNKNOWN");
    expect_error(reg.delete(&loc), 404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn wrong_digest_is_digest_invalid_and_stores_nothing() {
    let reg = Reg::start();
    let data = random_bytes(64);
    let actual = sha256(&data);
    let claimed = sha256(b"something else");

    let loc = reg.start_upload("up/wrong");
    expect_error(put(&reg, &loc, &claimed, &data), 400, "DIGEST_INVALID");
    let single = reg
        .req(Method::POST, &format!("/v2/up/wrong/blobs/uploads/?digest={claimed}"))
        .body(data.clone())
        .send()
        .unwrap();
    expect_error(single, 400, "DIGEST_INVALID");
    for d in [&actual, &claimed] {
        assert_eq!(reg.head(&format!("/v2/up/wrong/blobs/{d}")).status(), StatusCode::NOT_FOUND, "{d}");
    }
    // A PUT without a digest does not complete the upload.
    let loc = reg.start_upload("up/wrong");
    let resp = reg.req(Method::PUT, &loc).body(data.clone()).send().unwrap();
    expect_error(resp, 400, "DIGEST_INVALID");
}

#[test]
fn sha512_blobs() {
    let reg = Reg::start();
    let data = random_bytes(3000);
    let digest = sha512(&data);
    reg.push_blob_as("up/sha512", &data, &digest);
    assert_blob(&reg, "up/sha512", &digest, &data);

    let other = random_bytes(100);
    let d2 = sha512(&other);
    let resp = reg.req(Method::POST, &format!("/v2/up/sha512/blobs/uploads/?digest={d2}")).body(other.clone()).send();
    assert_eq!(resp.unwrap().status(), StatusCode::CREATED);
    assert_blob(&reg, "up/sha512", &d2, &other);
    // A chunked upload closed with a sha512 digest.
    let loc = reg.start_upload("up/sha512");
    let loc = location(&patch(&reg, &loc, Some("0-49"), &other[..50]));
    let third = [&other[..50], &data[..10]].concat();
    assert_eq!(put(&reg, &loc, &sha512(&third), &data[..10]).status(), StatusCode::CREATED);
    assert_blob(&reg, "up/sha512", &sha512(&third), &third);
}

#[test]
fn unknown_digest_algorithm_is_digest_invalid_never_500() {
    let reg = Reg::start();
    let md5 = "md5:d41d8cd98f00b204e9800998ecf8427e";
    let sha384 = format!("sha384:{}", "a".repeat(96));
    for d in [md5, sha384.as_str()] {
        let single = reg.req(Method::POST, &format!("/v2/up/alg/blobs/uploads/?digest={d}")).body(b"x".to_vec());
        expect_error(single.send().unwrap(), 400, "DIGEST_INVALID");
        let loc = reg.start_upload("up/alg");
        expect_error(put(&reg, &loc, d, b"x"), 400, "DIGEST_INVALID");
        // A mount with an unusable digest falls back to an upload session
        // (spec: "If a mount fails due to invalid repository or digest
        // arguments, the registry will fall back to the standard upload
        // behavior"; Distribution ignores such a mount the same way).
        let mount = reg.req(Method::POST, &format!("/v2/up/alg/blobs/uploads/?mount={d}&from=up/x")).send().unwrap();
        assert_eq!(mount.status(), StatusCode::ACCEPTED);
    }
}

#[test]
fn cross_repository_mount() {
    let reg = Reg::start();
    let data = random_bytes(500);
    let digest = reg.push_blob("mnt/src", &data);

    // From a repository that has it: 201 with the blob's Location.
    let resp =
        reg.req(Method::POST, &format!("/v2/mnt/dst/blobs/uploads/?mount={digest}&from=mnt/src")).send().unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(location(&resp), format!("/v2/mnt/dst/blobs/{digest}"));
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_blob(&reg, "mnt/dst", &digest, &data);

    // From a repository that lacks it: 202, an ordinary upload session.
    let resp = reg.req(Method::POST, &format!("/v2/mnt/third/blobs/uploads/?mount={digest}&from=mnt/empty")).send();
    let resp = resp.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let loc = location(&resp);
    assert_eq!(reg.head(&format!("/v2/mnt/third/blobs/{digest}")).status(), StatusCode::NOT_FOUND);
    assert_eq!(put(&reg, &loc, &digest, &data).status(), StatusCode::CREATED);
    assert_blob(&reg, "mnt/third", &digest, &data);

    // From an invalid name: also the fallback (spec: "invalid repository or digest arguments").
    let resp = reg.req(Method::POST, &format!("/v2/mnt/fourth/blobs/uploads/?mount={digest}&from=Bad..Name")).send();
    assert_eq!(resp.unwrap().status(), StatusCode::ACCEPTED);
}

#[test]
fn mount_without_from() {
    let reg = Reg::start();
    let data = random_bytes(50);
    let digest = reg.push_blob("auto/src", &data);
    // With no auth every repository is visible to the caller, so the
    // registry may find the blob itself (OCI 1.1 "mount without from").
    let resp = reg.req(Method::POST, &format!("/v2/auto/dst/blobs/uploads/?mount={digest}")).send().unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&reg, "auto/dst", &digest, &data);
    // A digest the registry does not have at all: an upload session.
    let missing = sha256(b"not anywhere");
    let resp = reg.req(Method::POST, &format!("/v2/auto/dst/blobs/uploads/?mount={missing}")).send().unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(location(&resp).contains("/v2/auto/dst/blobs/uploads/"));
}

#[test]
fn upload_resumes_across_a_restart() {
    let mut reg = Reg::start();
    let data = random_bytes(300_000);
    let loc = reg.start_upload("resume/app");
    // An odd split, so the saved hash state holds a partial block.
    let resp = patch(&reg, &loc, Some("0-100032"), &data[..100_033]);
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let loc = location(&resp);

    reg.server.restart().unwrap();

    let status = reg.get(&loc);
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(upload_range_end(&status), 100_032);
    let resp = patch(&reg, &loc, None, &data[100_033..250_000]);
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(upload_range_end(&resp), 249_999);
    let loc = location(&resp);
    reg.server.restart().unwrap();
    let digest = sha256(&data);
    let resp = put(&reg, &loc, &digest, &data[250_000..]);
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", text(resp));
    assert_blob(&reg, "resume/app", &digest, &data);
}
