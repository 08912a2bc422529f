//! Issue 17, TLS part: real clients against Berth serving HTTPS with `auth.htpasswd`.
//!
//! - docker: dockerd never verifies TLS on loopback (TESTING.md), so the registries run in a
//!   network namespace the test creates ([`NetNs`]) and dockerd trusts the test CA through
//!   `/etc/docker/certs.d/IP:PORT/ca.crt` (plus `client.cert`/`client.key` for mutual TLS).
//!   `docker login --password-stdin`, build → push → rmi → pull; and the negatives: a server
//!   certificate from a CA docker does not trust, and a missing client certificate, make
//!   `docker pull` fail.
//! - skopeo on loopback with `--cert-dir`/`--creds` (CA, client certificate and key):
//!   copy from an OCI layout, inspect; without the client certificate or with a wrong
//!   password it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_testkit::tls::{write, Issued};
use berth_testkit::{run_bounded, run_bounded_with_input, tools, Dockerd, ImageContext, TestCa};

use crate::docker_roundtrip::{image_id, pushed_digest};
use crate::fixtures::{skopeo_ok, Layout};
use crate::{ensure, Result};

/// The user every scenario logs in as.
pub const USER: &str = "alice";
/// Alice's password.
pub const PASSWORD: &str = "wonderland-tls";

/// An htpasswd file with [`USER`] (bcrypt, `htpasswd -B` from apache2-utils).
pub fn htpasswd_file(dir: &Path) -> Result<PathBuf> {
    let mut cmd = std::process::Command::new(tools::require("htpasswd", "apache2-utils")?);
    cmd.args(["-nbB", "-C", "5", USER, PASSWORD]);
    let line = run_bounded(&mut cmd, Duration::from_secs(30))?.ok()?;
    let path = dir.join("htpasswd");
    write(&path, &format!("{line}\n"))?;
    Ok(path)
}

/// `/etc/docker/certs.d/IP:PORT`, removed on `Drop`. dockerd reads it on every pull and push.
#[derive(Debug)]
pub struct CertsD {
    dir: PathBuf,
}

impl CertsD {
    /// Creates the directory for `registry` with `ca.crt` (and the client pair, if given).
    pub fn create(registry: SocketAddr, ca_pem: &str, client: Option<&Issued>) -> Result<Self> {
        let dir = Path::new("/etc/docker/certs.d").join(registry.to_string());
        if dir.exists() {
            return Err(format!("{} exists already: left by another run?", dir.display()));
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let this = Self { dir };
        write(&this.dir.join("ca.crt"), ca_pem)?;
        if let Some(client) = client {
            this.add_client(client)?;
        }
        Ok(this)
    }

    /// Adds `client.cert` and `client.key` (docker's names for mutual TLS).
    pub fn add_client(&self, client: &Issued) -> Result<()> {
        write(&self.dir.join("client.cert"), &client.cert_pem)?;
        write(&self.dir.join("client.key"), &client.key_pem)
    }

    /// Removes the client certificate and key, keeping `ca.crt`.
    pub fn remove_client(&self) -> Result<()> {
        for name in ["client.cert", "client.key"] {
            std::fs::remove_file(self.dir.join(name)).map_err(|e| format!("removing {name}: {e}"))?;
        }
        Ok(())
    }
}

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `docker login REGISTRY -u USER --password-stdin`.
pub fn docker_login(docker: &Dockerd, registry: SocketAddr, password: &str) -> Result<berth_testkit::CommandOutput> {
    let mut cmd = docker.command(&["login", &registry.to_string(), "-u", USER, "--password-stdin"]);
    run_bounded_with_input(&mut cmd, password.as_bytes(), Duration::from_secs(60))
}

/// The TLS docker scenario's registries, all in one network namespace.
#[derive(Debug, Clone, Copy)]
pub struct DockerRegistries {
    /// HTTPS with a certificate of the CA docker trusts, and htpasswd.
    pub tls: SocketAddr,
    /// The same plus `clientcas`: mutual TLS.
    pub mtls: SocketAddr,
    /// HTTPS with a certificate of a CA docker does not trust.
    pub untrusted: SocketAddr,
}

/// Runs the docker scenario. `ca` is the CA docker is told to trust; `client` a client
/// certificate the mutual-TLS registry accepts.
pub fn docker_scenario(docker: &Dockerd, regs: DockerRegistries, ca: &TestCa, client: &Issued) -> Result<()> {
    let _tls_dir = CertsD::create(regs.tls, &ca.cert_pem(), None)?;
    let mtls_dir = CertsD::create(regs.mtls, &ca.cert_pem(), Some(client))?;
    let _untrusted_dir = CertsD::create(regs.untrusted, &ca.cert_pem(), None)?;
    let context = ImageContext::new().data_layer("tls.bin", 512 * 1024).build()?;
    let dir = context.dir().to_string_lossy().into_owned();

    // TLS + basic auth: a wrong password is refused, the right one logs in.
    let wrong = docker_login(docker, regs.tls, "not-the-password")?;
    ensure(!wrong.success(), || format!("login with a wrong password succeeded:\n{}", wrong.stdout))?;
    let login = docker_login(docker, regs.tls, PASSWORD)?;
    ensure(login.success() && login.stdout.contains("Login Succeeded"), || login.describe_failure())?;
    let image = format!("{}/e2e/tls:v1", regs.tls);
    docker.docker_ok(&["build", "-q", "-t", &image, &dir])?;
    round_trip(docker, &image)?;

    // Mutual TLS: with certs.d's client pair everything works ...
    let login = docker_login(docker, regs.mtls, PASSWORD)?;
    ensure(login.success(), || format!("login over mutual TLS: {}", login.describe_failure()))?;
    let image = format!("{}/e2e/mtls:v1", regs.mtls);
    docker.docker_ok(&["tag", &format!("{}/e2e/tls:v1", regs.tls), &image])?;
    round_trip(docker, &image)?;
    // ... and without it, the pull is refused in the handshake.
    docker.docker_ok(&["rmi", &image])?;
    mtls_dir.remove_client()?;
    let pull = docker.docker(&["pull", &image])?;
    ensure(!pull.success(), || format!("pull without a client certificate succeeded:\n{}", pull.stdout))?;
    ensure(pull.stderr.contains("certificate"), || format!("pull without a client certificate: {}", pull.stderr))?;
    ensure(!docker.docker(&["image", "inspect", &image])?.success(), || "image present after a refused pull".into())?;

    // A server certificate from a CA docker does not trust: refused.
    let pull = docker.docker(&["pull", &format!("{}/e2e/tls:v1", regs.untrusted)])?;
    ensure(!pull.success(), || format!("pull from an untrusted registry succeeded:\n{}", pull.stdout))?;
    ensure(pull.stderr.contains("x509") || pull.stderr.contains("certificate"), || {
        format!("pull from an untrusted registry failed for another reason:\n{}", pull.stderr)
    })?;
    Ok(())
}

/// push → rmi → pull of `image`; the pulled image ID is the built one.
fn round_trip(docker: &Dockerd, image: &str) -> Result<()> {
    let built = image_id(docker, image)?;
    let push = docker.docker_ok(&["push", image])?;
    pushed_digest(&push)?;
    docker.docker_ok(&["rmi", image])?;
    ensure(!docker.docker(&["image", "inspect", image])?.success(), || format!("{image} still present after rmi"))?;
    docker.docker_ok(&["pull", image])?;
    let pulled = image_id(docker, image)?;
    ensure(pulled == built, || format!("{image}: pulled {pulled}, pushed {built}"))
}

/// A `--cert-dir` for skopeo: `ca.crt`, and `client.cert`/`client.key` when given.
pub fn cert_dir(parent: &Path, name: &str, ca_pem: &str, client: Option<&Issued>) -> Result<PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write(&dir.join("ca.crt"), ca_pem)?;
    if let Some(client) = client {
        write(&dir.join("client.cert"), &client.cert_pem)?;
        write(&dir.join("client.key"), &client.key_pem)?;
    }
    Ok(dir)
}

/// skopeo against `registry` (TLS + mutual TLS + htpasswd on loopback). `good` has the CA
/// and an accepted client pair; `no_client` only the CA.
pub fn skopeo_scenario(registry: SocketAddr, good: &Path, no_client: &Path, work: &Path) -> Result<()> {
    let layout = Layout::build(work, "tls-layout", &[("etc/tls.txt", b"pushed over mutual TLS\n".to_vec())])?;
    let digest = layout.manifest_descriptor()?["digest"].as_str().ok_or("descriptor without digest")?.to_owned();
    let image = format!("docker://{registry}/e2e/skopeo-tls:v1");
    let creds = format!("{USER}:{PASSWORD}");
    let good = good.to_string_lossy();
    skopeo_ok(&["copy", "-q", "--dest-cert-dir", &good, "--dest-creds", &creds, &layout.reference(), &image])?;
    let inspect = skopeo_ok(&["inspect", "--cert-dir", &good, "--creds", &creds, &image])?;
    let inspect: serde_json::Value = serde_json::from_str(&inspect).map_err(|e| format!("skopeo inspect: {e}"))?;
    ensure(inspect["Digest"] == digest.as_str(), || format!("skopeo inspect {}, pushed {digest}", inspect["Digest"]))?;
    let back = work.join("tls-back");
    let back_ref = format!("oci:{}:v1", back.display());
    skopeo_ok(&["copy", "-q", "--src-cert-dir", &good, "--src-creds", &creds, &image, &back_ref])?;
    ensure(layout_blob_matches(&back, &digest, &layout)?, || "copied back, manifest differs".to_owned())?;

    let refused = |args: &[&str], why: &str| -> Result<()> {
        let out = tools::skopeo(args)?;
        ensure(!out.success(), || format!("skopeo {why} succeeded:\n{}", out.stdout))
    };
    let no_client = no_client.to_string_lossy();
    refused(&["inspect", "--cert-dir", &no_client, "--creds", &creds, &image], "without a client certificate")?;
    refused(&["inspect", "--cert-dir", &good, "--creds", &format!("{USER}:wrong"), &image], "with a wrong password")?;
    refused(&["inspect", "--cert-dir", &good, &image], "without credentials")?;
    Ok(())
}

fn layout_blob_matches(dir: &Path, digest: &str, layout: &Layout) -> Result<bool> {
    Ok(crate::fixtures::layout_blob(dir, digest)? == layout.blob(digest)?)
}
