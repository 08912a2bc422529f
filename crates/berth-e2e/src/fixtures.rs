//! Test images made without docker: an OCI image layout built with `umoci`
//! (busybox plus files the test knows), and a two-platform index built with
//! `podman build --platform` + `podman manifest`. Both carry content unique
//! per run, so what comes back proves where it came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_testkit::{run_bounded, tools, ImageContext, Podman};
use serde_json::Value;

use crate::registry::json;
use crate::{ensure, Result};

/// Runs `umoci ARGS`.
pub fn umoci(args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(tools::require("umoci", "umoci")?);
    cmd.args(args);
    run_bounded(&mut cmd, Duration::from_secs(120))?.ok()
}

/// Runs `skopeo ARGS`; stdout, or an error if it failed.
pub fn skopeo_ok(args: &[&str]) -> Result<String> {
    tools::skopeo(args)?.ok()
}

/// An OCI image layout `DIR` with one image tagged `v1`.
#[derive(Debug)]
pub struct Layout {
    /// The layout directory.
    pub dir: PathBuf,
    /// Files in the image: path in the image (no leading `/`) → content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl Layout {
    /// Builds the layout in `parent/name` with busybox and `files`.
    pub fn build(parent: &Path, name: &str, files: &[(&str, Vec<u8>)]) -> Result<Self> {
        let dir = parent.join(name);
        let bundle = parent.join(format!("{name}-bundle"));
        let image = format!("{}:v1", dir.display());
        umoci(&["init", "--layout", &dir.to_string_lossy()])?;
        umoci(&["new", "--image", &image])?;
        umoci(&["unpack", "--image", &image, &bundle.to_string_lossy()])?;
        let rootfs = bundle.join("rootfs");
        let io = |e: std::io::Error| format!("writing {}: {e}", rootfs.display());
        let mut all = BTreeMap::new();
        all.insert("bin/busybox".to_owned(), std::fs::read(berth_testkit::image::BUSYBOX).map_err(io)?);
        for (path, content) in files {
            all.insert((*path).to_owned(), content.clone());
        }
        for (path, content) in &all {
            let host = rootfs.join(path);
            std::fs::create_dir_all(host.parent().expect("has a parent")).map_err(io)?;
            std::fs::write(&host, content).map_err(io)?;
        }
        umoci(&["repack", "--image", &image, &bundle.to_string_lossy()])?;
        umoci(&["config", "--image", &image, "--config.cmd", "/bin/busybox", "--config.cmd", "ls"])?;
        umoci(&["gc", "--layout", &dir.to_string_lossy()])?;
        std::fs::remove_dir_all(&bundle).map_err(io)?;
        Ok(Self { dir, files: all })
    }

    /// `oci:DIR:v1`, as skopeo wants it.
    pub fn reference(&self) -> String {
        format!("oci:{}:v1", self.dir.display())
    }

    /// The manifest descriptor `index.json` tags `v1`.
    pub fn manifest_descriptor(&self) -> Result<Value> {
        layout_descriptor(&self.dir, "v1")
    }

    /// Bytes of blob `digest`.
    pub fn blob(&self, digest: &str) -> Result<Vec<u8>> {
        layout_blob(&self.dir, digest)
    }
}

/// The descriptor tagged `tag` in the `index.json` of the layout `dir`.
pub fn layout_descriptor(dir: &Path, tag: &str) -> Result<Value> {
    let text = std::fs::read_to_string(dir.join("index.json")).map_err(|e| format!("{}: {e}", dir.display()))?;
    let index = json(&text)?;
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .cloned()
        .ok_or_else(|| format!("no {tag} in {}/index.json: {text}", dir.display()))
}

/// Bytes of blob `digest` in the layout `dir`.
pub fn layout_blob(dir: &Path, digest: &str) -> Result<Vec<u8>> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| format!("not a sha256 digest: {digest}"))?;
    let path = dir.join("blobs").join("sha256").join(hex);
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every file under `root` (relative path → content), symlinks skipped.
pub fn read_tree(root: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let entry = entry.map_err(|e| e.to_string())?;
            let kind = entry.file_type().map_err(|e| e.to_string())?;
            let path = entry.path();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let rel = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?);
            }
        }
    }
    Ok(out)
}

/// Fails unless the two file trees are equal, naming the first difference.
pub fn ensure_same_files(expected: &BTreeMap<String, Vec<u8>>, got: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    for (path, content) in expected {
        match got.get(path) {
            None => return Err(format!("{path} missing; got files {:?}", got.keys().collect::<Vec<_>>())),
            Some(c) if c != content => return Err(format!("{path} differs ({} vs {} bytes)", c.len(), content.len())),
            Some(_) => {}
        }
    }
    let extra: Vec<&String> = got.keys().filter(|k| !expected.contains_key(*k)).collect();
    ensure(extra.is_empty(), || format!("unexpected files: {extra:?}"))
}

/// One platform image of a [`PlatformIndex`].
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// `arm64`, `amd64`.
    pub arch: String,
    /// Image ID (config digest, without `sha256:`) podman built.
    pub id: String,
}

/// A two-platform image index pushed by `podman manifest push`.
#[derive(Debug, Clone)]
pub struct PlatformIndex {
    /// `HOST:PORT/REPO:TAG` it was pushed to.
    pub reference: String,
    /// The images, one per platform.
    pub images: Vec<PlatformImage>,
}

/// The architectures of the index.
pub const ARCHES: [&str; 2] = ["amd64", "arm64"];

/// Builds one small image per arch in [`ARCHES`] (FROM scratch: nothing
/// runs, so no emulator is needed; each holds its arch in /arch.txt), makes
/// a podman manifest list of them and pushes it (`--all`, OCI format) to
/// `registry/repo:tag`.
pub fn push_platform_index(podman: &Podman, registry: SocketAddr, repo: &str, tag: &str) -> Result<PlatformIndex> {
    let list = format!("localhost/e2e-list-{}:{tag}", repo.replace('/', "-"));
    podman.podman_ok(&["manifest", "create", &list])?;
    let mut images = Vec::new();
    for arch in ARCHES {
        let context = ImageContext::new().build()?;
        std::fs::write(context.dir().join("arch.txt"), format!("{arch} {}", context.marker()))
            .map_err(|e| e.to_string())?;
        let dockerfile = context.dir().join("Dockerfile");
        let mut text = std::fs::read_to_string(&dockerfile).map_err(|e| e.to_string())?;
        text.push_str("COPY arch.txt /arch.txt\n");
        std::fs::write(&dockerfile, text).map_err(|e| e.to_string())?;
        let local = format!("localhost/e2e-{arch}:{tag}");
        let platform = format!("linux/{arch}");
        let ctx = context.dir().to_string_lossy().into_owned();
        podman.podman_ok(&["build", "-q", "--no-cache", "--platform", &platform, "-t", &local, &ctx])?;
        let id = podman.podman_ok(&["image", "inspect", "--format", "{{.Id}}", &local])?;
        let built_arch = podman.podman_ok(&["image", "inspect", "--format", "{{.Architecture}}", &local])?;
        ensure(built_arch == arch, || format!("podman built {built_arch} for --platform {platform}"))?;
        podman.podman_ok(&["manifest", "add", &list, &format!("containers-storage:{local}")])?;
        images.push(PlatformImage { arch: arch.to_owned(), id });
    }
    let reference = format!("{registry}/{repo}:{tag}");
    podman.podman_ok(&[
        "manifest",
        "push",
        "-q",
        "--all",
        "--format",
        "oci",
        "--tls-verify=false",
        &list,
        &format!("docker://{reference}"),
    ])?;
    Ok(PlatformIndex { reference, images })
}
