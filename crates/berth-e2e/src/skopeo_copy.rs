//! Scenarios 4 and 5 of issue 13 with skopeo (and umoci), plus their part of
//! scenario 8:
//! - OCI layout → Berth → OCI layout: manifest digest and every blob
//!   identical, `umoci unpack` of what came back gives the original files;
//! - Berth → Distribution → Berth for the single image and for a
//!   two-platform index (`--all`): digests identical on both registries;
//! - `skopeo inspect`, `skopeo list-tags`;
//! - `skopeo delete` on Berth with deletes disabled: 405 UNSUPPORTED, and
//!   everything still served; with deletes enabled: gone.

use std::net::SocketAddr;
use std::path::Path;

use berth_testkit::{http, tools, Podman};
use serde_json::Value;

use crate::fixtures::{
    ensure_same_files, layout_blob, layout_descriptor, push_platform_index, read_tree, skopeo_ok, umoci, Layout,
};
use crate::registry::{self, ensure_unsupported, json};
use crate::{ensure, Result};

/// Registries of the scenario: Berth with deletes disabled (default),
/// Berth with deletes enabled, and Distribution.
#[derive(Debug, Clone, Copy)]
pub struct Registries {
    pub berth: SocketAddr,
    pub berth_deletes: SocketAddr,
    pub distribution: SocketAddr,
}

/// Runs the scenario; `work` is a scratch dir.
pub fn run(podman: &Podman, regs: Registries, work: &Path) -> Result<()> {
    let layout = Layout::build(
        work,
        "layout",
        &[("etc/hello.txt", b"hello from an OCI layout\n".to_vec()), ("data/blob.bin", pseudo_random(300_000))],
    )?;
    let digest = oci_layout_round_trip(&layout, regs.berth, work)?;
    single_image_via_distribution(regs, &digest)?;
    index_via_distribution(podman, regs)?;
    inspect_and_list_tags(regs.berth, &layout, &digest)?;
    delete(regs, &layout)
}

/// Scenario 5.
fn oci_layout_round_trip(layout: &Layout, berth: SocketAddr, work: &Path) -> Result<String> {
    let descriptor = layout.manifest_descriptor()?;
    let digest = descriptor["digest"].as_str().ok_or("descriptor without digest")?.to_owned();
    skopeo_ok(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        &layout.reference(),
        &format!("docker://{berth}/e2e/layout:v1"),
    ])?;

    let served = registry::manifest(berth, "e2e/layout", "v1")?;
    ensure(served.digest == digest, || format!("berth serves {}, the layout holds {digest}", served.digest))?;
    ensure(served.bytes == layout.blob(&digest)?, || "berth's manifest bytes differ from the layout's".to_owned())?;
    for blob in blob_digests(&served.json) {
        ensure(registry::blob(berth, "e2e/layout", &blob)? == layout.blob(&blob)?, || format!("blob {blob} differs"))?;
    }

    let back = work.join("back");
    let back_ref = format!("oci:{}:v1", back.display());
    skopeo_ok(&["copy", "-q", "--src-tls-verify=false", &format!("docker://{berth}/e2e/layout:v1"), &back_ref])?;
    let back_descriptor = layout_descriptor(&back, "v1")?;
    ensure(back_descriptor["digest"] == digest.as_str(), || {
        format!("copied back as {}, pushed {digest}", back_descriptor["digest"])
    })?;
    for blob in blob_digests(&served.json).into_iter().chain([digest.clone()]) {
        ensure(layout_blob(&back, &blob)? == layout.blob(&blob)?, || {
            format!("blob {blob} differs after the round trip")
        })?;
    }
    let bundle = work.join("back-bundle");
    umoci(&["unpack", "--image", &format!("{}:v1", back.display()), &bundle.to_string_lossy()])?;
    ensure_same_files(&layout.files, &read_tree(&bundle.join("rootfs"))?)
        .map_err(|e| format!("umoci unpack of the image pulled back: {e}"))?;
    Ok(digest)
}

/// Scenario 4, single image: Berth → Distribution → Berth, digest kept.
fn single_image_via_distribution(regs: Registries, digest: &str) -> Result<()> {
    let from_berth = format!("docker://{}/e2e/layout:v1", regs.berth);
    let to_dist = format!("docker://{}/e2e/copied:v1", regs.distribution);
    skopeo_ok(&["copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", &from_berth, &to_dist])?;
    let on_dist = registry::manifest(regs.distribution, "e2e/copied", "v1")?;
    ensure(on_dist.digest == digest, || format!("Distribution holds {}, berth {digest}", on_dist.digest))?;
    let back = format!("docker://{}/e2e/from-distribution:v1", regs.berth);
    skopeo_ok(&["copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", &to_dist, &back])?;
    let on_berth = registry::manifest(regs.berth, "e2e/from-distribution", "v1")?;
    ensure(on_berth.digest == digest, || format!("copied back as {}, expected {digest}", on_berth.digest))?;
    for blob in blob_digests(&on_berth.json) {
        let a = registry::blob(regs.berth, "e2e/from-distribution", &blob)?;
        ensure(a == registry::blob(regs.berth, "e2e/layout", &blob)?, || format!("blob {blob} differs"))?;
    }
    Ok(())
}

/// Scenario 4, index: `skopeo copy --all` Berth → Distribution → Berth.
fn index_via_distribution(podman: &Podman, regs: Registries) -> Result<()> {
    push_platform_index(podman, regs.berth, "e2e/index", "v1")?;
    let original = registry::manifest(regs.berth, "e2e/index", "v1")?;
    let from_berth = format!("docker://{}/e2e/index:v1", regs.berth);
    let to_dist = format!("docker://{}/e2e/index:v1", regs.distribution);
    let back = format!("docker://{}/e2e/index-back:v1", regs.berth);
    let tls = ["--src-tls-verify=false", "--dest-tls-verify=false"];
    skopeo_ok(&[&["copy", "-q", "--all"][..], &tls, &[&from_berth, &to_dist]].concat())?;
    skopeo_ok(&[&["copy", "-q", "--all"][..], &tls, &[&to_dist, &back]].concat())?;
    for (addr, repo) in [(regs.distribution, "e2e/index"), (regs.berth, "e2e/index-back")] {
        let copy = registry::manifest(addr, repo, "v1")?;
        ensure(copy.digest == original.digest, || {
            format!("{repo} on {addr}: {}, expected {}", copy.digest, original.digest)
        })?;
        for child in original.json["manifests"].as_array().into_iter().flatten() {
            let child_digest = child["digest"].as_str().unwrap_or_default();
            let m = registry::manifest(addr, repo, child_digest)?;
            for blob in blob_digests(&m.json) {
                ensure(registry::blob(addr, repo, &blob)? == registry::blob(regs.berth, "e2e/index", &blob)?, || {
                    format!("{repo} on {addr}: blob {blob} differs")
                })?;
            }
        }
    }
    Ok(())
}

fn inspect_and_list_tags(berth: SocketAddr, layout: &Layout, digest: &str) -> Result<()> {
    let image = format!("docker://{berth}/e2e/layout:v1");
    let inspect = json(&skopeo_ok(&["inspect", "--tls-verify=false", &image])?)?;
    ensure(inspect["Digest"] == digest, || format!("skopeo inspect Digest {}, expected {digest}", inspect["Digest"]))?;
    let manifest = json(&String::from_utf8_lossy(&layout.blob(digest)?))?;
    let layers: Vec<&str> =
        manifest["layers"].as_array().into_iter().flatten().filter_map(|l| l["digest"].as_str()).collect();
    let seen: Vec<&str> = inspect["Layers"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    ensure(seen == layers, || format!("skopeo inspect Layers {seen:?}, layout {layers:?}"))?;
    let raw = skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &image])?;
    ensure(raw.as_bytes() == layout.blob(digest)?.trim_ascii_end(), || {
        "inspect --raw differs from the layout".to_owned()
    })?;

    skopeo_ok(&[
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &image,
        &format!("docker://{berth}/e2e/layout:v2"),
    ])?;
    let tags = json(&skopeo_ok(&["list-tags", "--tls-verify=false", &format!("docker://{berth}/e2e/layout")])?)?;
    ensure(tags["Tags"] == serde_json::json!(["v1", "v2"]), || format!("skopeo list-tags: {tags}"))?;
    Ok(())
}

/// `skopeo delete` against Berth with deletes disabled (scenario 8) and enabled.
fn delete(regs: Registries, layout: &Layout) -> Result<()> {
    let image = format!("docker://{}/e2e/layout:v2", regs.berth);
    let before = registry::manifest(regs.berth, "e2e/layout", "v2")?;
    let out = tools::skopeo(&["delete", "--tls-verify=false", &image])?;
    ensure(!out.success() && out.stderr.contains("405") && out.stderr.contains("UNSUPPORTED"), || {
        format!("skopeo delete with deletes disabled should fail with 405 UNSUPPORTED:\n{}", out.describe_failure())
    })?;
    let r = http::request(regs.berth, "DELETE", &format!("/v2/e2e/layout/manifests/{}", before.digest), &[], &[])?;
    ensure_unsupported(&r, "DELETE manifest")?;
    let blob = blob_digests(&before.json).remove(0);
    let r = http::request(regs.berth, "DELETE", &format!("/v2/e2e/layout/blobs/{blob}"), &[], &[])?;
    ensure_unsupported(&r, "DELETE blob")?;
    // Nothing broken: both tags, the manifest and its blobs still served.
    let after = registry::manifest(regs.berth, "e2e/layout", "v2")?;
    ensure(after.bytes == before.bytes, || "manifest changed after a refused delete".to_owned())?;
    ensure(registry::tags(regs.berth, "e2e/layout")? == ["v1", "v2"], || {
        "tags changed after a refused delete".to_owned()
    })?;
    for blob in blob_digests(&after.json) {
        ensure(registry::blob(regs.berth, "e2e/layout", &blob)? == layout.blob(&blob)?, || {
            format!("blob {blob} broken")
        })?;
    }

    // Deletes enabled: skopeo deletes the manifest (and so every tag on it).
    let target = format!("docker://{}/e2e/deletable:v1", regs.berth_deletes);
    skopeo_ok(&["copy", "-q", "--dest-tls-verify=false", &layout.reference(), &target])?;
    skopeo_ok(&["delete", "--tls-verify=false", &target])?;
    let r = registry::get(regs.berth_deletes, &format!("/v2/e2e/deletable/manifests/{}", before.digest), &[])?;
    ensure(r.status == 404, || format!("manifest still served after skopeo delete: {}", r.describe()))?;
    let left = registry::tags(regs.berth_deletes, "e2e/deletable")?;
    ensure(left.is_empty(), || format!("tags left after skopeo delete: {left:?}"))?;
    let out = tools::skopeo(&["inspect", "--tls-verify=false", &target])?;
    ensure(!out.success(), || "skopeo inspect still finds the deleted image".to_owned())
}

/// Config and layer digests of an image manifest.
pub fn blob_digests(manifest: &Value) -> Vec<String> {
    let config = manifest["config"]["digest"].as_str().map(str::to_owned);
    let layers =
        manifest["layers"].as_array().into_iter().flatten().filter_map(|l| l["digest"].as_str().map(str::to_owned));
    config.into_iter().chain(layers).collect()
}

/// Deterministic bytes that do not compress.
pub fn pseudo_random(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}
