//! Step 2, read-your-writes: a tag moved on B, a manifest and a blob
//! deleted through C are seen on the other nodes by the very next request.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use berth_testkit::http::{self, Response};
use serde_json::{json, Value};

use super::{layer_digests, Cluster, Pushed, A, B, C, NAMES, OCI_MANIFEST};
use crate::registry::{self, ACCEPT_MANIFESTS};
use crate::{ensure, Result};

/// The same image as an OCI manifest (another digest, same blobs).
fn oci_variant(pushed: &Pushed) -> Vec<u8> {
    let m = &pushed.manifest.json;
    let desc = |d: &Value, media_type: &str| json!({"mediaType": media_type, "digest": d["digest"], "size": d["size"]});
    let layers: Vec<Value> = m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| desc(l, "application/vnd.oci.image.layer.v1.tar+gzip"))
        .collect();
    let v = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(&m["config"], "application/vnd.oci.image.config.v1+json"),
        "layers": layers,
        "annotations": {"org.example.berth.cluster-test": "retagged on node B"},
    });
    serde_json::to_vec(&v).expect("JSON")
}

fn put_manifest(addr: SocketAddr, repo: &str, reference: &str, content_type: &str, body: &[u8]) -> Result<String> {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let r = http::request(addr, "PUT", &path, &[("Content-Type", content_type)], body)?;
    ensure(r.status == 201, || format!("PUT {path} on {addr}: {}", r.describe()))?;
    Ok(r.header("docker-content-digest").unwrap_or_default().to_owned())
}

/// `GET` (or `HEAD`) of a manifest: status and `Docker-Content-Digest`.
fn manifest_status(addr: SocketAddr, method: &str, repo: &str, reference: &str) -> Result<(u16, String, Response)> {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let r = http::request(addr, method, &path, &[("Accept", ACCEPT_MANIFESTS)], &[])?;
    Ok((r.status, r.header("docker-content-digest").unwrap_or_default().to_owned(), r))
}

/// Step 2a: the tag `moving` flips between the two digests on B, ten times;
/// after each PUT's 201 the very next GET and HEAD on A and C see it.
pub(super) fn retag_is_seen_everywhere(cluster: &Cluster, pushed: &Pushed) -> Result<()> {
    let repo = &pushed.repo;
    let oci = oci_variant(pushed);
    let docker_type = pushed.manifest.content_type.clone();
    let mut put_ms = Vec::new();
    let mut read_ms = Vec::new();
    for round in 0..10 {
        let (body, content_type) =
            if round % 2 == 0 { (&oci, OCI_MANIFEST) } else { (&pushed.manifest.bytes, docker_type.as_str()) };
        let start = Instant::now();
        let digest = put_manifest(cluster.addr(B), repo, "moving", content_type, body)?;
        put_ms.push(start.elapsed());
        if round % 2 == 1 {
            ensure(digest == pushed.digest, || format!("re-PUT of the pushed manifest on B gave {digest}"))?;
        }
        for i in [A, C] {
            for method in ["GET", "HEAD"] {
                let start = Instant::now();
                let (status, seen, r) = manifest_status(cluster.addr(i), method, repo, "moving")?;
                read_ms.push(start.elapsed());
                ensure(status == 200 && seen == digest, || {
                    format!(
                        "round {round}: PUT {repo}:moving on B answered 201 with {digest}; the next {method} on node {} \
                         answered:\n{}",
                        NAMES[i],
                        r.describe()
                    )
                })?;
            }
        }
    }
    eprintln!(
        "cluster: retag on B: PUT median {:.1} ms; next GET/HEAD on A or C median {:.1} ms, max {:.1} ms",
        median_ms(&mut put_ms),
        median_ms(&mut read_ms),
        read_ms.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    Ok(())
}

fn median_ms(v: &mut [Duration]) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Step 2b: `moving` ends on the OCI variant; DELETE it by digest through C.
pub(super) fn manifest_delete_is_seen(cluster: &Cluster, pushed: &Pushed) -> Result<()> {
    let repo = &pushed.repo;
    let oci = put_manifest(cluster.addr(B), repo, "moving", OCI_MANIFEST, &oci_variant(pushed))?;
    // Warm whatever a node might cache: the deleted content was just read everywhere.
    for i in [A, B, C] {
        for reference in ["moving", oci.as_str()] {
            let (status, _, r) = manifest_status(cluster.addr(i), "GET", repo, reference)?;
            ensure(status == 200, || format!("before the delete, node {} {reference}: {}", NAMES[i], r.describe()))?;
        }
    }
    let path = format!("/v2/{repo}/manifests/{oci}");
    let r = http::request(cluster.addr(C), "DELETE", &path, &[], &[])?;
    ensure(r.status == 202, || format!("DELETE {path} on C: {}", r.describe()))?;
    for i in [A, B, C] {
        for reference in ["moving", oci.as_str()] {
            for method in ["GET", "HEAD"] {
                let (status, _, r) = manifest_status(cluster.addr(i), method, repo, reference)?;
                ensure(status == 404, || {
                    format!(
                        "DELETE {path} on C answered 202; the next {method} {repo}:{reference} on node {} answered:\n{}",
                        NAMES[i],
                        r.describe()
                    )
                })?;
            }
        }
        // The other manifest, which shares every blob, is untouched.
        let (status, seen, r) = manifest_status(cluster.addr(i), "GET", repo, "v1")?;
        ensure(status == 200 && seen == pushed.digest, || {
            format!("after deleting {oci}, {repo}:v1 on node {}: {}", NAMES[i], r.describe())
        })?;
        let tags = registry::tags(cluster.addr(i), repo)?;
        ensure(tags == ["v1"], || format!("tags of {repo} on node {} after the delete: {tags:?}", NAMES[i]))?;
    }
    Ok(())
}

fn blob_status(addr: SocketAddr, method: &str, repo: &str, digest: &str) -> Result<Response> {
    http::request(addr, method, &format!("/v2/{repo}/blobs/{digest}"), &[], &[])
}

/// Step 2c: a layer mounted (on A) into a second repository, deleted there
/// through C: gone from that repository on A and B at once, still in the
/// first.
pub(super) fn blob_delete_is_seen(cluster: &Cluster, pushed: &Pushed) -> Result<()> {
    let layer = layer_digests(&pushed.manifest.json)[1].to_owned();
    let other = "cluster/blob-delete";
    let path = format!("/v2/{other}/blobs/uploads/?mount={layer}&from={}", pushed.repo);
    let r = http::request(cluster.addr(A), "POST", &path, &[], &[])?;
    ensure(r.status == 201, || format!("mount on A: POST {path}: {}", r.describe()))?;
    for i in [A, B, C] {
        let r = blob_status(cluster.addr(i), "HEAD", other, &layer)?;
        ensure(r.status == 200, || format!("HEAD of the mounted blob on node {}: {}", NAMES[i], r.describe()))?;
    }
    let delete = format!("/v2/{other}/blobs/{layer}");
    let r = http::request(cluster.addr(C), "DELETE", &delete, &[], &[])?;
    ensure(r.status == 202, || format!("DELETE {delete} on C: {}", r.describe()))?;
    for i in [A, B, C] {
        for method in ["HEAD", "GET"] {
            let r = blob_status(cluster.addr(i), method, other, &layer)?;
            ensure(r.status == 404, || {
                format!(
                    "DELETE {delete} on C answered 202; the next {method} on node {} answered:\n{}",
                    NAMES[i],
                    r.describe()
                )
            })?;
        }
        let r = blob_status(cluster.addr(i), "HEAD", &pushed.repo, &layer)?;
        ensure(r.status == 200, || {
            format!("the blob deleted from {other} is gone from {} on node {}: {}", pushed.repo, NAMES[i], r.describe())
        })?;
    }
    Ok(())
}
