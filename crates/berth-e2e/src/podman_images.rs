//! Scenario 3 of issue 13 with podman: push and pull of a multi-layer image
//! (same image ID back); `podman manifest create/add/push` of a two-platform
//! index; each platform pulled back with `--arch` gives the image built for it.

use std::net::SocketAddr;

use berth_testkit::{ImageContext, Podman};

use crate::fixtures::push_platform_index;
use crate::registry::{self};
use crate::{ensure, Result};

/// Runs the scenario.
pub fn run(podman: &Podman, registry: SocketAddr) -> Result<()> {
    single_image(podman, registry)?;
    index(podman, registry)
}

fn single_image(podman: &Podman, registry: SocketAddr) -> Result<()> {
    let context = ImageContext::small().build()?;
    let image = format!("{registry}/e2e/podman:v1");
    podman.podman_ok(&["build", "-q", "-t", &image, &context.dir().to_string_lossy()])?;
    let built = podman.podman_ok(&["image", "inspect", "--format", "{{.Id}}", &image])?;
    podman.podman_ok(&["push", "-q", "--tls-verify=false", &image])?;
    let served = registry::manifest(registry, "e2e/podman", "v1")?;
    let config = served.json["config"]["digest"].as_str().unwrap_or_default();
    ensure(config == format!("sha256:{built}"), || format!("registry's config {config}, podman built {built}"))?;
    let layers = served.json["layers"].as_array().map_or(0, Vec::len);
    ensure(layers == context.layer_count(), || format!("{layers} layers served, {} built", context.layer_count()))?;
    podman.podman_ok(&["rmi", &image])?;
    podman.podman_ok(&["pull", "-q", "--tls-verify=false", &image])?;
    let pulled = podman.podman_ok(&["image", "inspect", "--format", "{{.Id}}", &image])?;
    ensure(pulled == built, || format!("pulled {pulled}, pushed {built}"))?;
    let digest = podman.podman_ok(&["image", "inspect", "--format", "{{.Digest}}", &image])?;
    ensure(digest == served.digest, || format!("podman records digest {digest}, registry serves {}", served.digest))?;
    podman.podman_ok(&["rmi", &image])?;
    Ok(())
}

fn index(podman: &Podman, registry: SocketAddr) -> Result<()> {
    let index = push_platform_index(podman, registry, "e2e/multi", "v1")?;
    let served = registry::manifest(registry, "e2e/multi", "v1")?;
    ensure(served.content_type == "application/vnd.oci.image.index.v1+json", || {
        format!("index served as {:?}", served.content_type)
    })?;
    let entries = served.json["manifests"].as_array().cloned().unwrap_or_default();
    ensure(entries.len() == index.images.len(), || format!("index has {} entries: {}", entries.len(), served.json))?;
    for image in &index.images {
        let entry = entries
            .iter()
            .find(|e| e["platform"]["architecture"] == image.arch.as_str() && e["platform"]["os"] == "linux")
            .ok_or_else(|| format!("no linux/{} in the index: {}", image.arch, served.json))?;
        let child_digest = entry["digest"].as_str().unwrap_or_default();
        let child = registry::manifest(registry, "e2e/multi", child_digest)?;
        ensure(child.digest == child_digest, || format!("child {child_digest} served as {}", child.digest))?;
        ensure(child.json["config"]["digest"] == format!("sha256:{}", image.id), || {
            format!("{} child's config is {}, podman built {}", image.arch, child.json["config"]["digest"], image.id)
        })?;

        // Pull this platform back by the index's tag.
        let pull = ["pull", "-q", "--tls-verify=false", "--arch", &image.arch, &index.reference];
        let pulled = podman.podman_ok(&pull)?;
        ensure(pulled == image.id, || format!("--arch {} pulled {pulled}, built {}", image.arch, image.id))?;
        let arch = podman.podman_ok(&["image", "inspect", "--format", "{{.Architecture}}", &index.reference])?;
        ensure(arch == image.arch, || format!("--arch {} pulled an {arch} image", image.arch))?;
        podman.podman_ok(&["rmi", "-f", &index.reference])?;
    }
    Ok(())
}
