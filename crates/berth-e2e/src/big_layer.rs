//! Scenario 2 of issue 13: a layer of ≥ 100 MiB. docker pushes it as one
//! streamed PATCH; a second push re-sends nothing; then the same layer blob
//! goes up again to another repository as a truly chunked upload
//! (`Content-Range` PATCHes of 16 MiB) through oras-py.

use std::net::SocketAddr;
use std::time::Duration;

use berth_testkit::image::MIB;
use berth_testkit::{http, Dockerd, ImageContext, Oras};
use serde_json::{json, Value};

use crate::docker_roundtrip::{image_id, pushed_digest};
use crate::registry::{self, json};
use crate::{ensure, Result};

/// Size of the big layer's file (random, so the gzipped layer is as big).
pub const BIG_LAYER: u64 = 100 * MIB + 12345;
/// Chunk size of the chunked upload.
const CHUNK: u64 = 16 * MIB;
const PUSH_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the scenario; `oras` drives the chunked upload.
pub fn run(docker: &Dockerd, oras: &Oras, registry: SocketAddr) -> Result<()> {
    let context = ImageContext::new().data_layer("big.bin", BIG_LAYER).build()?;
    let image = format!("{registry}/e2e/big:v1");
    let dir = context.dir().to_string_lossy().into_owned();
    docker.docker_with_timeout(&["build", "-q", "-t", &image, &dir], PUSH_TIMEOUT)?.ok()?;
    let built_id = image_id(docker, &image)?;

    let push = docker.docker_with_timeout(&["push", &image], PUSH_TIMEOUT)?.ok()?;
    let digest = pushed_digest(&push)?;
    let manifest = registry::manifest(registry, "e2e/big", "v1")?;
    ensure(manifest.digest == digest, || {
        format!("berth serves {} for e2e/big:v1, docker pushed {digest}", manifest.digest)
    })?;
    let (layer_digest, layer_size) = biggest_layer(&manifest.json)?;
    ensure(layer_size >= 100 * MIB, || format!("biggest layer is only {layer_size} bytes"))?;

    // Again: docker HEADs each layer and must find all of them.
    let again = docker.docker_with_timeout(&["push", &image], PUSH_TIMEOUT)?.ok()?;
    let existing = again.lines().filter(|l| l.contains("Layer already exists")).count();
    ensure(existing == context.layer_count(), || {
        format!("second push: expected all {} layers to exist already, got:\n{again}", context.layer_count())
    })?;
    ensure(!again.contains("Pushed") && pushed_digest(&again)? == digest, || format!("second push re-sent:\n{again}"))?;

    docker.docker_ok(&["rmi", &image])?;
    docker.docker_with_timeout(&["pull", &image], PUSH_TIMEOUT)?.ok()?;
    ensure(image_id(docker, &image)? == built_id, || "big image pulled back with another ID".to_owned())?;
    docker.docker_ok(&["rmi", &image])?;

    chunked_upload(oras, registry, &layer_digest, layer_size)
}

/// Downloads the layer, uploads it to `e2e/chunked` through oras-py's
/// chunked upload and checks each PATCH and the blob that results.
fn chunked_upload(oras: &Oras, registry: SocketAddr, digest: &str, size: u64) -> Result<()> {
    let bytes = registry::blob(registry, "e2e/big", digest)?;
    ensure(bytes.len() as u64 == size, || format!("GET blob gave {} bytes, manifest says {size}", bytes.len()))?;
    let path = oras.dir().join("big-layer.tar.gz");
    std::fs::write(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let args = json!({
        "target": format!("{registry}/e2e/chunked:v1"),
        "path": path,
        "chunked": true,
        "chunk_size": CHUNK,
    });
    let result = json(&oras.run("upload_blob", &args.to_string())?)?;
    ensure(result["digest"] == digest, || format!("oras-py computed {}, layer is {digest}", result["digest"]))?;
    let log = result["log"].as_array().cloned().unwrap_or_default();
    let patches: Vec<&Value> = log.iter().filter(|r| r["method"] == "PATCH").collect();
    let expected_chunks = size.div_ceil(CHUNK) as usize;
    ensure(patches.len() == expected_chunks, || {
        format!("expected {expected_chunks} PATCHes, oras-py made:\n{}", Value::Array(log.clone()))
    })?;
    for (i, patch) in patches.iter().enumerate() {
        let start = i as u64 * CHUNK;
        let end = (start + CHUNK).min(size) - 1;
        let sent = patch["request"]["Content-Range"].as_str().unwrap_or_default();
        let range = patch["response"]["Range"].as_str().unwrap_or_default();
        ensure(sent == format!("{start}-{end}"), || format!("PATCH {i} sent Content-Range {sent:?}"))?;
        // Spec: 202 Accepted, `Range: 0-<end>` of what the session holds, and a Location.
        ensure(patch["status"] == 202 && range == format!("0-{end}"), || {
            format!("PATCH {i} ({sent}): expected 202 with Range 0-{end}, got {patch}")
        })?;
        ensure(patch["response"]["Location"].is_string(), || format!("PATCH {i} without Location: {patch}"))?;
    }
    let put = log.iter().rev().find(|r| r["method"] == "PUT").ok_or("no closing PUT")?;
    ensure(put["status"] == 201 && put["response"]["Docker-Content-Digest"] == digest, || {
        format!("closing PUT: expected 201 with Docker-Content-Digest {digest}, got {put}")
    })?;
    let head = http::request(registry, "HEAD", &format!("/v2/e2e/chunked/blobs/{digest}"), &[], &[])?;
    ensure(head.status == 200 && head.header("content-length") == Some(&size.to_string()), || {
        format!("HEAD of the chunked blob: {}", head.describe())
    })?;
    let back = registry::blob(registry, "e2e/chunked", digest)?;
    ensure(back == bytes, || "the chunked blob's bytes differ from the layer's".to_owned())
}

fn biggest_layer(manifest: &Value) -> Result<(String, u64)> {
    manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| Some((l["digest"].as_str()?.to_owned(), l["size"].as_u64()?)))
        .max_by_key(|(_, size)| *size)
        .ok_or_else(|| format!("manifest without layers: {manifest}"))
}
