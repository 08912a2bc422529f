//! Berth's own image (issue 13): `docker/build-context.sh` + `docker/Dockerfile`
//! built around the berth binary the tests use (the debug build from
//! `BERTH_BIN`, to keep CI fast; the shipped image uses the release build,
//! same Dockerfile), run as registry:2 is:
//! `docker run --network host -v DIR:/var/lib/registry -e REGISTRY_HTTP_ADDR=…`.
//! An image is pushed through it and pulled back, and is still there after
//! `docker restart`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use berth_testkit::berth::locate_berth_binary;
use berth_testkit::{http, net, run_bounded, Dockerd, ImageContext};

use crate::docker_roundtrip::{image_id, pushed_digest};
use crate::registry::{self, json};
use crate::{ensure, Result};

const TAG: &str = "berth-e2e/berth:test";
const READY: Duration = Duration::from_secs(60);

/// The repository's `docker/` dir.
pub fn docker_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docker")
}

/// Runs the scenario on `docker`.
pub fn run(docker: &Dockerd) -> Result<()> {
    let bin = locate_berth_binary(None)?;
    let context = docker.dir().join("berth-image");
    let mut script = Command::new(docker_dir().join("build-context.sh"));
    script.arg(&bin).arg(&context);
    run_bounded(&mut script, Duration::from_secs(120))?.ok()?;
    let ctx = context.to_string_lossy().into_owned();
    docker.docker_with_timeout(&["build", "-q", "-t", TAG, &ctx], Duration::from_secs(300))?.ok()?;
    check_image_config(docker)?;

    let data = docker.dir().join("berth-image-data");
    std::fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let addr = net::free_loopback_addr()?;
    let volume = format!("{}:/var/lib/registry", data.display());
    let listen = format!("REGISTRY_HTTP_ADDR={addr}");
    let name = "berth-e2e-registry";
    let run = ["run", "-d", "--name", name, "--network", "host", "-v", &volume, "-e", &listen, TAG];
    docker.docker_ok(&run)?;
    let result = push_pull_restart(docker, name, addr, &data);
    let logs = docker.docker(&["logs", name]).map(|o| format!("{}{}", o.stdout, o.stderr)).unwrap_or_default();
    let _ = docker.docker(&["rm", "-f", name]);
    result.map_err(|e| format!("{e}\n--- logs of the berth container ---\n{}", crate::tail(&logs, 30)))
}

fn check_image_config(docker: &Dockerd) -> Result<()> {
    let inspect = docker.docker_ok(&["image", "inspect", "--format", "{{json .Config}}", TAG])?;
    let config = json(&inspect)?;
    ensure(config["ExposedPorts"].get("5000/tcp").is_some(), || format!("port 5000 not exposed: {config}"))?;
    ensure(config["Volumes"].get("/var/lib/registry").is_some(), || format!("no /var/lib/registry volume: {config}"))?;
    ensure(config["Entrypoint"] == serde_json::json!(["/usr/local/bin/berth"]), || format!("entrypoint: {config}"))?;
    ensure(config["Cmd"] == serde_json::json!(["serve", "/etc/docker/registry/config.yml"]), || {
        format!("cmd: {config}")
    })
}

fn push_pull_restart(docker: &Dockerd, name: &str, addr: SocketAddr, data: &Path) -> Result<()> {
    wait_for_v2(docker, name, addr)?;
    let context = ImageContext::new().data_layer("x.bin", 512 * 1024).build()?;
    let image = format!("{addr}/e2e/in-container:v1");
    docker.docker_ok(&["build", "-q", "-t", &image, &context.dir().to_string_lossy()])?;
    let built = image_id(docker, &image)?;
    let digest = pushed_digest(&docker.docker_ok(&["push", &image])?)?;
    ensure(data.join("berth").join("metadata.sqlite").is_file(), || {
        format!("no berth/metadata.sqlite in the volume {}", data.display())
    })?;
    docker.docker_ok(&["rmi", &image])?;
    docker.docker_ok(&["pull", &image])?;
    ensure(image_id(docker, &image)? == built, || "pulled through the container with another ID".to_owned())?;
    docker.docker_ok(&["rmi", &image])?;

    docker.docker_ok(&["restart", "-t", "10", name])?;
    wait_for_v2(docker, name, addr)?;
    let manifest = registry::manifest(addr, "e2e/in-container", "v1")?;
    ensure(manifest.digest == digest, || format!("after restart v1 is {}, pushed {digest}", manifest.digest))?;
    let by_digest = format!("{addr}/e2e/in-container@{digest}");
    docker.docker_ok(&["pull", &by_digest])?;
    ensure(image_id(docker, &by_digest)? == built, || "pulled after restart with another ID".to_owned())?;
    let printed = docker.docker_ok(&["run", "--rm", "--network", "none", &by_digest])?;
    ensure(printed == context.marker().trim(), || format!("run after restart printed {printed:?}"))?;
    docker.docker_ok(&["rmi", &by_digest])?;
    Ok(())
}

fn wait_for_v2(docker: &Dockerd, name: &str, addr: SocketAddr) -> Result<()> {
    let deadline = Instant::now() + READY;
    while Instant::now() < deadline {
        if http::get_status(addr, "/v2/") == Some(200) {
            return Ok(());
        }
        let state = docker.docker_ok(&["inspect", "--format", "{{.State.Status}}", name])?;
        ensure(state == "running" || state == "restarting", || format!("berth container is {state}"))?;
        thread::sleep(Duration::from_millis(200));
    }
    Err(format!("berth in its container did not answer GET /v2/ on {addr} within {READY:?}"))
}
