//! `tags/list` and `_catalog`: lexical order, `n`/`last`, `Link`, clamping.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Tags `tags` on one image in `repo`, in the order given.
fn tag_all(reg: &Reg, repo: &str, tags: &[&str]) {
    let image = Image::oci(reg, repo);
    for t in tags {
        reg.push_manifest(repo, t, OCI_MANIFEST, &image.manifest);
    }
}

/// Follows `Link` headers from `path`, returning every page's `field`.
fn pages(reg: &Reg, path: &str, field: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(p) = next.take() {
        let resp = reg.get(&p);
        assert_eq!(resp.status(), StatusCode::OK, "{p}");
        next = next_link(&resp);
        let body: Value = json_body(resp);
        let items = body[field].as_array().unwrap_or_else(|| panic!("{field} missing: {body}"));
        out.push(items.iter().map(|v| v.as_str().unwrap().to_owned()).collect());
        assert!(out.len() < 50, "pagination does not end");
    }
    out
}

#[test]
fn tags_are_lexically_sorted() {
    let reg = Reg::start();
    tag_all(&reg, "tags/app", &["v2", "latest", "1.10", "1.9", "a_b", "a-b", "v10"]);
    let resp = reg.get("/v2/tags/app/tags/list");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!has_header(&resp, "link"), "one page: no Link");
    let body = json_body(resp);
    assert_eq!(body["name"], "tags/app");
    assert_eq!(body["tags"], json!(["1.10", "1.9", "a-b", "a_b", "latest", "v10", "v2"]));
}

#[test]
fn tags_pagination_with_n_and_last() {
    let reg = Reg::start();
    tag_all(&reg, "tags/page", &["e", "c", "a", "d", "b"]);
    let resp = reg.get("/v2/tags/page/tags/list?n=2");
    let link = next_link(&resp).expect("Link to the next page");
    assert!(link.starts_with("/v2/tags/page/tags/list?"), "{link}");
    let q = query_params(&link);
    assert!(q.contains(&("n".into(), "2".into())) && q.contains(&("last".into(), "b".into())), "{link}");
    assert_eq!(json_body(resp)["tags"], json!(["a", "b"]));

    let all = pages(&reg, "/v2/tags/page/tags/list?n=2", "tags");
    assert_eq!(all, vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]]);

    // `last` alone, and `last` that is not a tag (lexical position).
    assert_eq!(json_body(reg.get("/v2/tags/page/tags/list?last=c"))["tags"], json!(["d", "e"]));
    assert_eq!(json_body(reg.get("/v2/tags/page/tags/list?n=1&last=bb"))["tags"], json!(["c"]));
    assert_eq!(json_body(reg.get("/v2/tags/page/tags/list?last=e"))["tags"], json!([]));
    // Exactly n left: no Link (nothing follows).
    let resp = reg.get("/v2/tags/page/tags/list?n=2&last=c");
    assert!(!has_header(&resp, "link"));
    assert_eq!(json_body(resp)["tags"], json!(["d", "e"]));
    // n=0: an empty list and no Link (spec 1.1).
    let resp = reg.get("/v2/tags/page/tags/list?n=0");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!has_header(&resp, "link"));
    assert_eq!(json_body(resp)["tags"], json!([]));
}

#[test]
fn tags_n_is_clamped_to_the_configured_maximum() {
    let reg = Reg::start_with(options().env("REGISTRY_BERTH_TAGS_MAXENTRIES", "2"));
    tag_all(&reg, "tags/max", &["a", "b", "c"]);
    for path in ["/v2/tags/max/tags/list?n=100", "/v2/tags/max/tags/list"] {
        let resp = reg.get(path);
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert!(next_link(&resp).is_some(), "{path}");
        assert_eq!(json_body(resp)["tags"], json!(["a", "b"]), "{path}");
    }
    assert_eq!(pages(&reg, "/v2/tags/max/tags/list?n=100", "tags").concat(), vec!["a", "b", "c"]);
}

#[test]
fn invalid_n_is_400() {
    let reg = Reg::start();
    tag_all(&reg, "tags/bad", &["a"]);
    for n in ["abc", "-1", "1.5"] {
        expect_error(reg.get(&format!("/v2/tags/bad/tags/list?n={n}")), 400, "PAGINATION_NUMBER_INVALID");
        expect_error(reg.get(&format!("/v2/_catalog?n={n}")), 400, "PAGINATION_NUMBER_INVALID");
    }
    // An empty `n` is no `n` (Distribution tests `n != ""`).
    assert_eq!(json_body(reg.get("/v2/tags/bad/tags/list?n="))["tags"], json!(["a"]));
    assert_eq!(json_body(reg.get("/v2/_catalog?n=&last="))["repositories"], json!(["tags/bad"]));
}

#[test]
fn tags_of_an_unknown_repository_is_name_unknown() {
    let reg = Reg::start();
    let err = expect_error(reg.get("/v2/tags/never/tags/list"), 404, "NAME_UNKNOWN");
    assert!(err["message"].is_string());
    // A repository with blobs but no tags exists: an empty list.
    reg.push_blob("tags/blobsonly", b"x");
    let resp = reg.get("/v2/tags/blobsonly/tags/list");
    if resp.status() == StatusCode::OK {
        assert_eq!(json_body(resp)["tags"], json!([]));
    } else {
        expect_error(resp, 404, "NAME_UNKNOWN");
    }
}

#[test]
fn catalog_is_sorted_and_paginated() {
    let reg = Reg::start();
    let empty = json_body(reg.get("/v2/_catalog"));
    assert_eq!(empty["repositories"], json!([]));
    for repo in ["zeta", "alpha/two", "alpha", "mid/x/y", "alpha/one"] {
        reg.push_image(repo, "v1");
    }
    let resp = reg.get("/v2/_catalog");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(!has_header(&resp, "link"));
    assert_eq!(json_body(resp)["repositories"], json!(["alpha", "alpha/one", "alpha/two", "mid/x/y", "zeta"]));

    let resp = reg.get("/v2/_catalog?n=2");
    let link = next_link(&resp).expect("Link");
    assert!(link.starts_with("/v2/_catalog?"), "{link}");
    let q = query_params(&link);
    assert!(q.contains(&("n".into(), "2".into())) && q.contains(&("last".into(), "alpha/one".into())), "{link}");
    let all = pages(&reg, "/v2/_catalog?n=2", "repositories");
    assert_eq!(all, vec![vec!["alpha", "alpha/one"], vec!["alpha/two", "mid/x/y"], vec!["zeta"]]);
    assert_eq!(json_body(reg.get("/v2/_catalog?n=10&last=alpha/two"))["repositories"], json!(["mid/x/y", "zeta"]));
    let resp = reg.get("/v2/_catalog?n=0");
    assert!(!has_header(&resp, "link"));
    assert_eq!(json_body(resp)["repositories"], json!([]));
}

#[test]
fn catalog_n_is_clamped_to_maxentries() {
    let reg = Reg::start_with(options().env("REGISTRY_CATALOG_MAXENTRIES", "2"));
    for repo in ["c", "a", "b"] {
        reg.push_image(repo, "v1");
    }
    let resp = reg.get("/v2/_catalog?n=50");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(next_link(&resp).is_some());
    assert_eq!(json_body(resp)["repositories"], json!(["a", "b"]));
    assert_eq!(pages(&reg, "/v2/_catalog", "repositories").concat(), vec!["a", "b", "c"]);
}

#[test]
fn link_behind_a_proxy_uses_the_client_address() {
    let reg = Reg::start();
    tag_all(&reg, "tags/proxy", &["a", "b"]);
    let resp = reg
        .req(reqwest::Method::GET, "/v2/tags/proxy/tags/list?n=1")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "reg.example.com")
        .send()
        .unwrap();
    let link = next_link(&resp).expect("Link");
    // Distribution sends a relative Link; an absolute one must use the
    // address the client saw, never the backend's.
    let path = link.strip_prefix("https://reg.example.com").unwrap_or(&link);
    assert!(path.starts_with("/v2/tags/proxy/tags/list?"), "{link}");
}
