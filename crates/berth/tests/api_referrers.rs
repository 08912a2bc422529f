//! `subject` and the referrers API (OCI Distribution Spec 1.1).

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Pushes an artifact whose subject is `subject`; returns (digest, size).
fn push_referrer(
    reg: &Reg,
    repo: &str,
    subject: &Image,
    artifact_type: Option<&str>,
    config_type: &str,
    annotations: Value,
) -> (String, usize) {
    let config = if config_type == OCI_EMPTY {
        reg.push_blob_descriptor(repo, OCI_EMPTY, b"{}")
    } else {
        reg.push_blob_descriptor(repo, config_type, &random_bytes(20))
    };
    let layer = reg.push_blob_descriptor(repo, "application/octet-stream", &random_bytes(30));
    let mut m = json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer],
                        "subject": subject.descriptor(OCI_MANIFEST), "annotations": annotations });
    if let Some(t) = artifact_type {
        m["artifactType"] = t.into();
    }
    let body = serde_json::to_vec(&m).unwrap();
    let digest = sha256(&body);
    let resp = reg.put_manifest(repo, &digest, OCI_MANIFEST, &body);
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", text(resp));
    // Spec 1.1: a registry that processes `subject` answers with OCI-Subject.
    assert_eq!(header(&resp, "oci-subject"), subject.digest);
    (digest, body.len())
}

fn referrers(reg: &Reg, repo: &str, digest: &str, query: &str) -> reqwest::blocking::Response {
    let resp = reg.get(&format!("/v2/{repo}/referrers/{digest}{query}"));
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), OCI_INDEX);
    resp
}

fn assert_index(index: &Value) -> &Vec<Value> {
    assert_eq!(index["schemaVersion"], 2, "{index}");
    assert_eq!(index["mediaType"], OCI_INDEX, "{index}");
    index["manifests"].as_array().unwrap_or_else(|| panic!("manifests must be a list: {index}"))
}

#[test]
fn no_referrers_is_an_empty_index() {
    let reg = Reg::start();
    let image = reg.push_image("ref/empty", "v1");
    let resp = referrers(&reg, "ref/empty", &image.digest, "");
    assert!(!has_header(&resp, "oci-filters-applied"));
    assert!(assert_index(&json_body(resp)).is_empty());
    // Even for a digest the registry has never seen (spec: 200, empty list).
    let unknown = sha256(b"never pushed");
    assert!(assert_index(&json_body(referrers(&reg, "ref/empty", &unknown, ""))).is_empty());
}

#[test]
fn referrers_list_and_filter() {
    let reg = Reg::start();
    let image = reg.push_image("ref/app", "v1");
    let (sig, sig_size) = push_referrer(
        &reg,
        "ref/app",
        &image,
        Some("application/vnd.example.signature.v1"),
        OCI_EMPTY,
        json!({ "org.example.signed-by": "alice" }),
    );
    let (sbom, sbom_size) =
        push_referrer(&reg, "ref/app", &image, Some("application/spdx+json"), OCI_EMPTY, json!({ "k": "v" }));
    // No artifactType: the config's media type stands for it (spec 1.1).
    let (legacy, _) = push_referrer(&reg, "ref/app", &image, None, "application/vnd.example.legacy.config", json!({}));

    let index = json_body(referrers(&reg, "ref/app", &image.digest, ""));
    let list = assert_index(&index);
    assert_eq!(list.len(), 3, "{index}");
    let find = |d: &str| list.iter().find(|m| m["digest"] == d).unwrap_or_else(|| panic!("{d} missing: {index}"));
    let s = find(&sig);
    assert_eq!(s["mediaType"], OCI_MANIFEST);
    assert_eq!(s["size"], sig_size);
    assert_eq!(s["artifactType"], "application/vnd.example.signature.v1");
    // "annotations ... MUST be included in the descriptors of the response".
    assert_eq!(s["annotations"]["org.example.signed-by"], "alice");
    assert_eq!(find(&sbom)["size"], sbom_size);
    assert_eq!(find(&legacy)["artifactType"], "application/vnd.example.legacy.config");

    let resp = referrers(&reg, "ref/app", &image.digest, "?artifactType=application/spdx%2Bjson");
    assert_eq!(header(&resp, "oci-filters-applied"), "artifactType");
    let filtered = json_body(resp);
    let list = assert_index(&filtered);
    assert_eq!(list.len(), 1, "{filtered}");
    assert_eq!(list[0]["digest"], sbom);

    let resp = referrers(&reg, "ref/app", &image.digest, "?artifactType=application/none");
    assert_eq!(header(&resp, "oci-filters-applied"), "artifactType");
    assert!(assert_index(&json_body(resp)).is_empty());

    // Referrers are per repository.
    assert!(assert_index(&json_body(referrers(&reg, "ref/other", &image.digest, ""))).is_empty());
}

#[test]
fn subject_may_be_pushed_before_its_target() {
    // Spec 1.1: a manifest with a subject that does not exist is accepted.
    let reg = Reg::start();
    let later = Image::oci(&reg, "ref/later");
    let (sig, _) = push_referrer(&reg, "ref/later", &later, Some("application/vnd.example.sig"), OCI_EMPTY, json!({}));
    let index = json_body(referrers(&reg, "ref/later", &later.digest, ""));
    assert_eq!(assert_index(&index)[0]["digest"], sig);
}

#[test]
fn deleting_a_referrer_removes_it_from_the_list() {
    let reg = Reg::with_deletes();
    let image = reg.push_image("ref/del", "v1");
    let (sig, _) = push_referrer(&reg, "ref/del", &image, Some("application/vnd.example.sig"), OCI_EMPTY, json!({}));
    assert_eq!(assert_index(&json_body(referrers(&reg, "ref/del", &image.digest, ""))).len(), 1);
    assert_eq!(reg.delete(&format!("/v2/ref/del/manifests/{sig}")).status(), StatusCode::ACCEPTED);
    assert!(assert_index(&json_body(referrers(&reg, "ref/del", &image.digest, ""))).is_empty());
}

#[test]
fn referrers_with_a_bad_digest_is_a_client_error() {
    let reg = Reg::start();
    expect_error(reg.get("/v2/ref/bad/referrers/md5:d41d8cd98f00b204e9800998ecf8427e"), 400, "DIGEST_INVALID");
    let status = reg.get("/v2/ref/bad/referrers/latest").status();
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{status}");
}
