//! Layers served from elsewhere (`urls`, non-distributable media types) and
//! `validation.manifests.urls.allow`/`deny`, as Distribution checks them.

mod common;

use common::*;
use serde_json::json;

const NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
const FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

fn manifest(reg: &Reg, repo: &str, media_type: &str, layer_type: &str, urls: &[&str]) -> Vec<u8> {
    let config = reg.push_blob_descriptor(repo, OCI_CONFIG, b"{}");
    let layer = json!({
        "mediaType": layer_type,
        "digest": sha256(b"a layer this registry never received"),
        "size": 36,
        "urls": urls,
    });
    serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": media_type, "config": config, "layers": [layer] }))
        .unwrap()
}

#[test]
fn external_layers_need_not_be_present_but_need_valid_urls() {
    let reg = Reg::start();
    let ok = manifest(&reg, "ext/a", OCI_MANIFEST, NONDIST, &["https://layers.example.com/l.tgz"]);
    assert_eq!(reg.put_manifest("ext/a", "v1", OCI_MANIFEST, &ok).status(), 201);
    // A Docker foreign layer with its URL.
    let docker = manifest(&reg, "ext/a", DOCKER_MANIFEST, FOREIGN, &["http://layers.example.com/l.tgz"]);
    assert_eq!(reg.put_manifest("ext/a", "v2", DOCKER_MANIFEST, &docker).status(), 201);
    // A foreign layer must say where it lives.
    let missing = manifest(&reg, "ext/a", DOCKER_MANIFEST, FOREIGN, &[]);
    expect_error(reg.put_manifest("ext/a", "v3", DOCKER_MANIFEST, &missing), 400, "MANIFEST_INVALID");
    // Only http(s) without a fragment.
    for bad in ["ftp://layers.example.com/l", "https://layers.example.com/l#x"] {
        let m = manifest(&reg, "ext/a", OCI_MANIFEST, NONDIST, &[bad]);
        expect_error(reg.put_manifest("ext/a", "v4", OCI_MANIFEST, &m), 400, "MANIFEST_INVALID");
    }
    // A non-distributable layer without URLs is an ordinary blob: it must be here.
    let local = manifest(&reg, "ext/a", OCI_MANIFEST, OCI_LAYER, &[]);
    expect_error(reg.put_manifest("ext/a", "v5", OCI_MANIFEST, &local), 400, "MANIFEST_BLOB_UNKNOWN");
}

#[test]
fn allow_and_deny_lists_apply() {
    let reg = Reg::start_with(
        options()
            .env("REGISTRY_VALIDATION_MANIFESTS_URLS_ALLOW", "['^https://mirror\\.example\\.com/']")
            .env("REGISTRY_VALIDATION_MANIFESTS_URLS_DENY", "['/private/']"),
    );
    let allowed = manifest(&reg, "ext/b", OCI_MANIFEST, NONDIST, &["https://mirror.example.com/l.tgz"]);
    assert_eq!(reg.put_manifest("ext/b", "ok", OCI_MANIFEST, &allowed).status(), 201);
    for url in ["https://elsewhere.example.com/l.tgz", "https://mirror.example.com/private/l.tgz"] {
        let m = manifest(&reg, "ext/b", OCI_MANIFEST, NONDIST, &[url]);
        expect_error(reg.put_manifest("ext/b", "no", OCI_MANIFEST, &m), 400, "MANIFEST_INVALID");
    }
}
