//! Step 1: `docker push` through A, `docker pull` through B and C, `skopeo
//! inspect` and `skopeo copy` to an `oci:` layout through C.

use std::path::Path;

use berth_testkit::{Dockerd, ImageContext};
use serde_json::Value;

use super::{blob_from, layer_digests, Cluster, A, B, C, NAMES};
use crate::docker_roundtrip::{image_id, pushed_digest};
use crate::fixtures::{layout_blob, layout_descriptor, skopeo_ok};
use crate::registry::{self, json};
use crate::{ensure, Result};

/// What step 1 pushed.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub repo: String,
    pub digest: String,
    pub manifest: registry::Manifest,
}

/// Step 1.
pub(super) fn push_and_pull(cluster: &Cluster, docker: &Dockerd, work: &Path) -> Result<Pushed> {
    let repo = "cluster/app";
    let context = ImageContext::small().build()?;
    let on = |i: usize| format!("{}/{repo}:v1", cluster.addr(i));
    docker.docker_ok(&["build", "-q", "-t", &on(A), &context.dir().to_string_lossy()])?;
    let built = image_id(docker, &on(A))?;
    let digest = pushed_digest(&docker.docker_ok(&["push", &on(A)])?)?;
    docker.docker_ok(&["rmi", &on(A)])?;

    // The same manifest bytes from every node.
    let manifest = registry::manifest(cluster.addr(A), repo, "v1")?;
    ensure(manifest.digest == digest, || format!("A serves {} for v1, docker pushed {digest}", manifest.digest))?;
    for i in [B, C] {
        let m = registry::manifest(cluster.addr(i), repo, "v1")?;
        ensure(m.digest == digest && m.bytes == manifest.bytes, || {
            format!("node {} serves v1 as {} ({} bytes), A as {digest}", NAMES[i], m.digest, m.bytes.len())
        })?;
    }

    for i in [B, C] {
        let image = on(i);
        docker.docker_ok(&["pull", &image]).map_err(|e| format!("docker pull through node {}: {e}", NAMES[i]))?;
        let id = image_id(docker, &image)?;
        ensure(id == built, || format!("pulled through node {} as {id}, built {built}", NAMES[i]))?;
        docker.docker_ok(&["rmi", &image])?;
    }

    let source = format!("docker://{}", on(C));
    let inspect = json(&skopeo_ok(&["inspect", "--tls-verify=false", &source])?)?;
    ensure(inspect["Digest"] == digest.as_str(), || {
        format!("skopeo inspect via C: {}, pushed {digest}", inspect["Digest"])
    })?;
    let layers = layer_digests(&manifest.json);
    let seen: Vec<&str> = inspect["Layers"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    ensure(seen == layers, || format!("skopeo inspect via C: layers {seen:?}, pushed {layers:?}"))?;

    let raw = skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &source])?;
    ensure(raw.as_bytes() == manifest.bytes.trim_ascii_end(), || {
        "skopeo inspect --raw via C differs from A".to_owned()
    })?;

    // docker pushed a Docker schema 2 manifest; an OCI layout holds OCI
    // manifests only, so skopeo converts it (new manifest and config
    // digests); the layers keep their digests and bytes.
    let layout = work.join("oci-from-c");
    skopeo_ok(&["copy", "-q", "--src-tls-verify=false", &source, &format!("oci:{}:v1", layout.display())])?;
    let descriptor = layout_descriptor(&layout, "v1")?;
    let copied = json(&String::from_utf8_lossy(&layout_blob(&layout, descriptor["digest"].as_str().unwrap_or(""))?))?;
    ensure(layer_digests(&copied) == layers, || {
        format!("oci: copy via C has layers {:?}, pushed {layers:?}", layer_digests(&copied))
    })?;
    for d in &layers {
        // B proxies the bytes: compare with the layout byte for byte.
        let (status, bytes) = blob_from(cluster.addr(B), repo, d)?;
        ensure(status == 200, || format!("node B (redirect disabled) answered {status} for blob {d}, not 200"))?;
        ensure(layout_blob(&layout, d)? == bytes, || format!("blob {d}: oci: copy via C differs from B's bytes"))?;
    }
    Ok(Pushed { repo: repo.to_owned(), digest, manifest })
}
