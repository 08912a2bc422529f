//! Issue 17 with the real clients against Berth's own token service
//! (`berth.auth`): `docker login` (which keeps the refresh token as its
//! identity token), `podman login`, `skopeo --creds` and `ctr images pull
//! --user` (the path of Kubernetes `imagePullSecrets`). Each client also
//! proves the negative: wrong or no credentials get nothing.

use std::net::SocketAddr;
use std::path::Path;

use berth_testkit::{Containerd, Dockerd, ImageContext, Podman};

use crate::docker_roundtrip::{image_id, pushed_digest};
use crate::fixtures::{skopeo_ok, Layout};
use crate::{ensure, Result};

/// docker: login, build, push, pull by digest, logout, refused pull.
pub fn docker(docker: &Dockerd, registry: SocketAddr, user: &str, password: &str) -> Result<()> {
    let host = registry.to_string();
    let wrong = login(docker, &host, user, "not-the-password")?;
    ensure(!wrong.success(), || {
        format!("docker login with a wrong password succeeded:\n{}", wrong.describe_failure())
    })?;
    let ok = login(docker, &host, user, password)?;
    ensure(ok.success() && ok.stdout.contains("Login Succeeded"), || ok.describe_failure())?;
    // docker keeps the refresh token, not the password.
    let config = std::fs::read_to_string(docker.dir().join("cfg").join("config.json")).map_err(|e| e.to_string())?;
    ensure(config.contains("identitytoken") && !config.contains(password), || {
        format!("docker's config.json should hold an identity token and no password:\n{config}")
    })?;

    let context = ImageContext::small().build()?;
    let image = format!("{host}/secure/app:v1");
    docker.docker_ok(&["build", "-q", "-t", &image, &context.dir().to_string_lossy()])?;
    let built = image_id(docker, &image)?;
    let digest = pushed_digest(&docker.docker_ok(&["push", &image])?)?;
    docker.docker_ok(&["rmi", &image])?;
    let by_digest = format!("{host}/secure/app@{digest}");
    docker.docker_ok(&["pull", &by_digest])?;
    ensure(image_id(docker, &by_digest)? == built, || "pulled image differs from the pushed one".into())?;
    docker.docker_ok(&["rmi", &by_digest])?;

    docker.docker_ok(&["logout", &host])?;
    let refused = docker.docker(&["pull", &image])?;
    ensure(!refused.success(), || "docker pull without credentials succeeded".into())?;
    let text = format!("{}{}", refused.stdout, refused.stderr).to_lowercase();
    ensure(
        text.contains("unauthorized") || text.contains("denied") || text.contains("authentication required"),
        || format!("docker pull without credentials failed for another reason:\n{text}"),
    )?;
    Ok(())
}

/// `docker login -p` (bounded like every docker command; `--password-stdin` would not be).
fn login(docker: &Dockerd, host: &str, user: &str, password: &str) -> Result<berth_testkit::CommandOutput> {
    docker.docker(&["login", host, "-u", user, "-p", password])
}

/// podman login + push + pull, and a refused pull after logout.
pub fn podman(podman: &Podman, registry: SocketAddr, user: &str, password: &str) -> Result<()> {
    let host = registry.to_string();
    let wrong = podman.podman(&["login", "--tls-verify=false", "-u", user, "-p", "wrong-password", &host])?;
    ensure(!wrong.success(), || "podman login with a wrong password succeeded".into())?;
    podman.podman_ok(&["login", "--tls-verify=false", "-u", user, "-p", password, &host])?;
    let layout = Layout::build(podman.dir(), "podman-auth", &[("etc/p.txt", b"podman with credentials\n".to_vec())])?;
    let source = format!("{host}/secure/podman-src:v1");
    let creds = format!("{user}:{password}");
    skopeo_ok(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds,
        &layout.reference(),
        &format!("docker://{source}"),
    ])?;
    let image = format!("{host}/secure/podman:v1");
    podman.podman_ok(&["pull", "-q", "--tls-verify=false", &source])?;
    podman.podman_ok(&["tag", &source, &image])?;
    podman.podman_ok(&["push", "-q", "--tls-verify=false", &image])?;
    podman.podman_ok(&["rmi", "-f", &image])?;
    podman.podman_ok(&["pull", "-q", "--tls-verify=false", &image])?;
    podman.podman_ok(&["logout", &host])?;
    podman.podman_ok(&["rmi", "-f", &image])?;
    let refused = podman.podman(&["pull", "-q", "--tls-verify=false", &image])?;
    ensure(!refused.success(), || "podman pull after logout succeeded".into())?;
    Ok(())
}

/// skopeo with `--creds`: copy in and inspect; wrong credentials refused.
pub fn skopeo(work: &Path, registry: SocketAddr, user: &str, password: &str) -> Result<()> {
    let layout = Layout::build(work, "skopeo-auth", &[("etc/s.txt", b"skopeo with credentials\n".to_vec())])?;
    let dest = format!("docker://{registry}/secure/skopeo:v1");
    let creds = format!("{user}:{password}");
    skopeo_ok(&["copy", "-q", "--dest-tls-verify=false", "--dest-creds", &creds, &layout.reference(), &dest])?;
    let inspect = skopeo_ok(&["inspect", "--tls-verify=false", "--creds", &creds, &dest])?;
    let digest = layout.manifest_descriptor()?["digest"].as_str().unwrap_or_default().to_owned();
    ensure(inspect.contains(&digest), || format!("skopeo inspect does not show {digest}:\n{inspect}"))?;
    let wrong =
        berth_testkit::tools::skopeo(&["inspect", "--tls-verify=false", "--creds", &format!("{user}:nope"), &dest])?;
    ensure(!wrong.success(), || "skopeo inspect with wrong credentials succeeded".into())?;
    let none = berth_testkit::tools::skopeo(&["inspect", "--tls-verify=false", "--no-creds", &dest])?;
    ensure(!none.success(), || "skopeo inspect without credentials succeeded".into())?;
    Ok(())
}

/// `ctr images pull --user`, as a Kubernetes node does with a pull secret.
pub fn containerd(containerd: &Containerd, registry: SocketAddr, user: &str, password: &str) -> Result<()> {
    let image = format!("{registry}/secure/skopeo:v1");
    let refused = containerd.ctr(&["images", "pull", "--plain-http", &image])?;
    ensure(!refused.success(), || "ctr pull without credentials succeeded".into())?;
    let wrong = containerd.ctr(&["images", "pull", "--plain-http", "--user", &format!("{user}:nope"), &image])?;
    ensure(!wrong.success(), || "ctr pull with a wrong password succeeded".into())?;
    containerd.ctr_ok(&["images", "pull", "--plain-http", "--user", &format!("{user}:{password}"), &image])?;
    let check = containerd.ctr_ok(&["images", "check"])?;
    let line = check.lines().find(|l| l.starts_with(&format!("{image} "))).unwrap_or_default();
    ensure(line.contains("complete"), || format!("ctr images check:\n{check}"))?;
    Ok(())
}

/// oras-py through the token flow: an artifact pushed chunked and pulled
/// back byte-exact with credentials; without them the push is refused.
pub fn oras(oras: &berth_testkit::Oras, registry: SocketAddr, user: &str, password: &str) -> Result<()> {
    let src = oras.dir().join("auth-artifact");
    std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
    let file = src.join("notes.txt");
    std::fs::write(&file, b"an artifact pushed with credentials\n").map_err(|e| e.to_string())?;
    let target = format!("{registry}/secure/artifact:v1");
    let files = serde_json::json!([[file.to_string_lossy(), "text/plain"]]);
    let args = serde_json::json!({
        "target": target, "files": files, "chunked": true, "chunk_size": 16,
        "username": user, "password": password,
    });
    let pushed: serde_json::Value =
        serde_json::from_str(&oras.run("push", &args.to_string())?).map_err(|e| e.to_string())?;
    ensure(pushed["status"] == 201, || format!("oras push with credentials: {pushed}"))?;
    let out = oras.dir().join("auth-artifact-back");
    let args = serde_json::json!({ "target": target, "outdir": out, "username": user, "password": password });
    oras.run("pull", &args.to_string())?;
    let back = std::fs::read(out.join("notes.txt")).map_err(|e| format!("pulled file: {e}"))?;
    ensure(back == b"an artifact pushed with credentials\n", || "pulled artifact differs".into())?;
    let anonymous = serde_json::json!({ "target": format!("{registry}/secure/anon:v1"), "files": files });
    ensure(oras.run("push", &anonymous.to_string()).is_err(), || "oras push without credentials succeeded".into())?;
    Ok(())
}
