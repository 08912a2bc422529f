//! Manifest `PUT`/`GET`/`HEAD` by tag and by digest for every manifest kind
//! the registry stores, `?tag=` on a push by digest, sha512, conditional and
//! negotiated reads.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// GET and HEAD by `reference` return exactly what was pushed.
#[track_caller]
fn assert_manifest(reg: &Reg, repo: &str, reference: &str, media_type: &str, body: &[u8], digest: &str) {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let resp = reg.req(Method::GET, &path).header("accept", media_type).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    assert_eq!(header(&resp, "content-type"), media_type, "GET {path}");
    assert_eq!(header(&resp, "docker-content-digest"), digest, "GET {path}");
    assert_eq!(header(&resp, "content-length"), body.len().to_string(), "GET {path}");
    assert_eq!(resp.bytes().unwrap().as_ref(), body, "GET {path}");
    let resp = reg.req(Method::HEAD, &path).header("accept", media_type).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "HEAD {path}");
    assert_eq!(header(&resp, "content-type"), media_type, "HEAD {path}");
    assert_eq!(header(&resp, "docker-content-digest"), digest, "HEAD {path}");
    assert_eq!(header(&resp, "content-length"), body.len().to_string(), "HEAD {path}");
}

/// Pushes by tag, checks the PUT response, and reads back by tag and digest.
#[track_caller]
fn roundtrip(reg: &Reg, repo: &str, tag: &str, media_type: &str, body: &[u8]) -> String {
    let resp = reg.put_manifest(repo, tag, media_type, body);
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", text(resp));
    let digest = sha256(body);
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_eq!(location(&resp), format!("/v2/{repo}/manifests/{digest}"));
    assert_manifest(reg, repo, tag, media_type, body, &digest);
    assert_manifest(reg, repo, &digest, media_type, body, &digest);
    digest
}

#[test]
fn docker_schema2_manifest_and_manifest_list() {
    let reg = Reg::start();
    let amd = Image::docker(&reg, "kinds/docker");
    let arm = Image::docker(&reg, "kinds/docker");
    roundtrip(&reg, "kinds/docker", "amd64", DOCKER_MANIFEST, &amd.manifest);
    roundtrip(&reg, "kinds/docker", "arm64", DOCKER_MANIFEST, &arm.manifest);
    let mut a = amd.descriptor(DOCKER_MANIFEST);
    a["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    let mut b = arm.descriptor(DOCKER_MANIFEST);
    b["platform"] = json!({ "architecture": "arm64", "os": "linux", "variant": "v8" });
    let list = json!({ "schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [a, b] });
    roundtrip(&reg, "kinds/docker", "latest", DOCKER_LIST, &serde_json::to_vec_pretty(&list).unwrap());
}

#[test]
fn docker_manifest_with_a_foreign_layer_not_in_the_registry() {
    // Non-distributable (foreign) layers live elsewhere: the registry need not hold them.
    let reg = Reg::start();
    let image = Image::docker(&reg, "kinds/foreign");
    let mut m: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
    m["layers"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": sha256(b"windows base layer"), "size": 18,
        "urls": ["https://example.com/layer.tar.gz"],
    }));
    roundtrip(&reg, "kinds/foreign", "win", DOCKER_MANIFEST, &serde_json::to_vec(&m).unwrap());
}

#[test]
fn oci_manifest_and_index() {
    let reg = Reg::start();
    let one = Image::oci(&reg, "kinds/oci");
    let two = Image::oci(&reg, "kinds/oci");
    roundtrip(&reg, "kinds/oci", "one", OCI_MANIFEST, &one.manifest);
    // The index's children may be pushed by digest only.
    reg.push_manifest("kinds/oci", &two.digest, OCI_MANIFEST, &two.manifest);
    let mut a = one.descriptor(OCI_MANIFEST);
    a["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    let mut b = two.descriptor(OCI_MANIFEST);
    b["platform"] = json!({ "architecture": "s390x", "os": "linux" });
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [a, b],
                        "annotations": { "org.opencontainers.image.ref.name": "multi" } });
    roundtrip(&reg, "kinds/oci", "multi", OCI_INDEX, &serde_json::to_vec(&index).unwrap());
}

#[test]
fn artifacts_with_artifact_type_custom_config_and_helm_charts() {
    let reg = Reg::start();
    // OCI 1.1 artifact: artifactType with the empty config descriptor.
    let empty = reg.push_blob_descriptor("kinds/art", OCI_EMPTY, b"{}");
    let sbom = reg.push_blob_descriptor("kinds/art", "application/spdx+json", br#"{"spdxVersion":"SPDX-2.3"}"#);
    let artifact = json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "artifactType": "application/vnd.example.sbom.v1", "config": empty, "layers": [sbom] });
    roundtrip(&reg, "kinds/art", "sbom", OCI_MANIFEST, &serde_json::to_vec(&artifact).unwrap());

    // OCI 1.0-style artifact: a custom config media type, no layers at all.
    let config = reg.push_blob_descriptor("kinds/art", "application/vnd.example.thing.config.v1+json", b"{\"a\":1}");
    let custom = json!({ "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [] });
    roundtrip(&reg, "kinds/art", "custom", OCI_MANIFEST, &serde_json::to_vec(&custom).unwrap());

    // A Helm chart as `helm push` writes it: Helm's config and chart layer
    // types, and (older Helm/oras) no mediaType in the body, only in Content-Type.
    let chart_config = br#"{"name":"demo","version":"0.1.0","apiVersion":"v2"}"#;
    let config = reg.push_blob_descriptor("kinds/helm", "application/vnd.cncf.helm.config.v1+json", chart_config);
    let chart = reg.push_blob_descriptor(
        "kinds/helm",
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
        &random_bytes(2048),
    );
    let helm = json!({ "schemaVersion": 2, "config": config, "layers": [chart],
                       "annotations": { "org.opencontainers.image.title": "demo" } });
    roundtrip(&reg, "kinds/helm", "0.1.0", OCI_MANIFEST, &serde_json::to_vec(&helm).unwrap());
}

#[test]
fn push_by_digest_with_tag_parameters() {
    let reg = Reg::start();
    let image = Image::oci(&reg, "bydigest/app");
    let resp = reg
        .req(Method::PUT, &format!("/v2/bydigest/app/manifests/{}?tag=v1&tag=stable", image.digest))
        .header("content-type", OCI_MANIFEST)
        .body(image.manifest.clone())
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(header(&resp, "docker-content-digest"), image.digest);
    for tag in ["v1", "stable"] {
        assert_manifest(&reg, "bydigest/app", tag, OCI_MANIFEST, &image.manifest, &image.digest);
    }
    let tags = json_body(reg.get("/v2/bydigest/app/tags/list"));
    assert_eq!(tags["tags"], json!(["stable", "v1"]));

    // Without `tag`, a push by digest creates no tag.
    let other = Image::oci(&reg, "bydigest/untagged");
    reg.push_manifest("bydigest/untagged", &other.digest, OCI_MANIFEST, &other.manifest);
    assert_eq!(json_body(reg.get("/v2/bydigest/untagged/tags/list"))["tags"], json!([]));
}

#[test]
fn retagging_moves_the_tag() {
    let reg = Reg::start();
    let first = reg.push_image("retag/app", "latest");
    let second = reg.push_image("retag/app", "latest");
    let resp = reg.head("/v2/retag/app/manifests/latest");
    assert_eq!(header(&resp, "docker-content-digest"), second.digest);
    // The old manifest is still there by digest.
    assert_eq!(reg.head(&format!("/v2/retag/app/manifests/{}", first.digest)).status(), StatusCode::OK);
}

#[test]
fn sha512_manifests() {
    let reg = Reg::start();
    let image = Image::oci(&reg, "m512/app");
    let digest = sha512(&image.manifest);
    let resp = reg.put_manifest("m512/app", &digest, OCI_MANIFEST, &image.manifest);
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", text(resp));
    let resp = reg.put_manifest("m512/app", &digest, OCI_MANIFEST, &image.manifest);
    assert_eq!(header(&resp, "docker-content-digest"), digest);
    assert_eq!(location(&resp), format!("/v2/m512/app/manifests/{digest}"));
    assert_manifest(&reg, "m512/app", &digest, OCI_MANIFEST, &image.manifest, &digest);
}

#[test]
fn unknown_manifests_are_manifest_unknown() {
    let reg = Reg::start();
    reg.push_image("unk/app", "v1");
    expect_error(reg.get("/v2/unk/app/manifests/v2"), 404, "MANIFEST_UNKNOWN");
    expect_error(reg.get(&format!("/v2/unk/app/manifests/{}", sha256(b"x"))), 404, "MANIFEST_UNKNOWN");
    assert_eq!(reg.head("/v2/unk/app/manifests/v2").status(), StatusCode::NOT_FOUND);
    // A repository that does not exist at all: 404 too (spec: "MUST return 404").
    assert_eq!(reg.get("/v2/unk/none/manifests/v1").status(), StatusCode::NOT_FOUND);
}

#[test]
fn if_none_match_gives_304() {
    let reg = Reg::start();
    let image = reg.push_image("etag/app", "v1");
    let resp = reg.get("/v2/etag/app/manifests/v1");
    let etag = header(&resp, "etag");
    assert_eq!(etag, format!("\"{}\"", image.digest));
    // Distribution matches the digest quoted or bare.
    for value in [etag.clone(), image.digest.clone()] {
        for reference in ["v1", image.digest.as_str()] {
            let resp = reg
                .req(Method::GET, &format!("/v2/etag/app/manifests/{reference}"))
                .header("if-none-match", &value)
                .send()
                .unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_MODIFIED, "{reference} If-None-Match {value}");
            assert!(resp.bytes().unwrap().is_empty());
        }
    }
    let other = format!("\"{}\"", sha256(b"other"));
    let resp = reg.req(Method::GET, "/v2/etag/app/manifests/v1").header("if-none-match", other).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[test]
fn accept_negotiation_by_tag() {
    let reg = Reg::start();
    let oci = reg.push_image("accept/app", "oci");
    let docker_only = format!("{DOCKER_MANIFEST}, {DOCKER_LIST}");
    let get = |reference: &str, accept: &str| {
        reg.req(Method::GET, &format!("/v2/accept/app/manifests/{reference}")).header("accept", accept).send().unwrap()
    };
    // Distribution: an OCI manifest asked for by tag by a client that does
    // not list OCI types is reported unknown (the client could not parse it).
    expect_error(get("oci", &docker_only), 404, "MANIFEST_UNKNOWN");
    assert_eq!(get("oci", &format!("{docker_only}, {OCI_MANIFEST}")).status(), StatusCode::OK);
    assert_eq!(get("oci", &format!("{OCI_MANIFEST};q=0.5")).status(), StatusCode::OK);
    assert_eq!(get("oci", "*/*").status(), StatusCode::OK);
    assert_eq!(reg.http.get(reg.url("/v2/accept/app/manifests/oci")).send().unwrap().status(), StatusCode::OK);
    // By digest the client knows what it asks for: always served.
    assert_eq!(get(&oci.digest, &docker_only).status(), StatusCode::OK);

    // An OCI index by tag likewise.
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [oci.descriptor(OCI_MANIFEST)] });
    reg.push_manifest("accept/app", "idx", OCI_INDEX, &serde_json::to_vec(&index).unwrap());
    expect_error(get("idx", &docker_only), 404, "MANIFEST_UNKNOWN");
    assert_eq!(get("idx", OCI_INDEX).status(), StatusCode::OK);
}
