//! Scenario 1 of issue 13 with docker: build a multi-layer `FROM scratch`
//! image, push it, check the manifest digest with skopeo, push it to a
//! second repository (layers must be mounted, not re-sent), remove it
//! locally, pull it back by tag and by digest (same image ID), run it.

use std::net::SocketAddr;

use berth_testkit::{tools, Dockerd, ImageContext};

use crate::{ensure, Result};

/// Runs the whole scenario against the registry at `registry`.
pub fn run(docker: &Dockerd, registry: SocketAddr) -> Result<()> {
    let context = ImageContext::small().build()?;
    let app = format!("{registry}/e2e/app:v1");
    let copy = format!("{registry}/e2e/copy:v1");
    let dir = context.dir().to_string_lossy().into_owned();

    docker.docker_ok(&["build", "-q", "-t", &app, &dir])?;
    let built_id = image_id(docker, &app)?;

    let push = docker.docker_ok(&["push", &app])?;
    let digest = pushed_digest(&push)?;

    let inspect = tools::skopeo(&["inspect", "--tls-verify=false", &format!("docker://{app}")])?.ok()?;
    let inspect: serde_json::Value = serde_json::from_str(&inspect).map_err(|e| format!("skopeo inspect: {e}"))?;
    ensure(inspect["Digest"] == digest.as_str(), || {
        format!("skopeo sees {}, docker pushed {digest}", inspect["Digest"])
    })?;
    let layers = inspect["Layers"].as_array().map_or(0, Vec::len);
    ensure(layers == context.layer_count(), || {
        format!("skopeo sees {layers} layers, built {}", context.layer_count())
    })?;

    docker.docker_ok(&["tag", &app, &copy])?;
    let push_copy = docker.docker_ok(&["push", &copy])?;
    ensure(pushed_digest(&push_copy)? == digest, || format!("copy pushed with another digest:\n{push_copy}"))?;
    let mounted = push_copy.lines().filter(|l| l.contains("Mounted from e2e/app")).count();
    ensure(mounted == context.layer_count(), || {
        format!("expected all {} layers mounted from e2e/app, got:\n{push_copy}", context.layer_count())
    })?;

    docker.docker_ok(&["rmi", &app, &copy])?;
    ensure(!docker.docker(&["image", "inspect", &app])?.success(), || format!("{app} still present after rmi"))?;

    docker.docker_ok(&["pull", &app])?;
    let pulled_id = image_id(docker, &app)?;
    ensure(pulled_id == built_id, || format!("pulled by tag {pulled_id}, pushed {built_id}"))?;
    let printed = docker.docker_ok(&["run", "--rm", "--network", "none", &app])?;
    ensure(printed == context.marker().trim(), || {
        format!("run printed {printed:?}, image holds {:?}", context.marker())
    })?;
    docker.docker_ok(&["rmi", &app])?;

    let by_digest = format!("{registry}/e2e/app@{digest}");
    docker.docker_ok(&["pull", &by_digest])?;
    let pulled_id = image_id(docker, &by_digest)?;
    ensure(pulled_id == built_id, || format!("pulled by digest {pulled_id}, pushed {built_id}"))?;
    let printed = docker.docker_ok(&["run", "--rm", "--network", "none", &by_digest])?;
    ensure(printed == context.marker().trim(), || format!("run by digest printed {printed:?}"))?;
    docker.docker_ok(&["rmi", &by_digest])?;
    Ok(())
}

pub(crate) fn image_id(docker: &Dockerd, image: &str) -> Result<String> {
    docker.docker_ok(&["image", "inspect", "--format", "{{.Id}}", image])
}

/// The manifest digest from docker push's last line: `TAG: digest: sha256:… size: N`.
pub(crate) fn pushed_digest(push_output: &str) -> Result<String> {
    push_output
        .lines()
        .find_map(|line| line.split_once(" digest: ").and_then(|(_, rest)| rest.split_whitespace().next()))
        .filter(|d| d.starts_with("sha256:"))
        .map(str::to_owned)
        .ok_or_else(|| format!("no digest in docker push output:\n{push_output}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_the_digest_docker_push_prints() {
        let out = "abc: Pushed\nv1: digest: sha256:0123 size: 1234\n";
        assert_eq!(super::pushed_digest(out).unwrap(), "sha256:0123");
        assert!(super::pushed_digest("v1: Pushed").is_err());
    }
}
