//! Scenario 7 of issue 13: containerd, the path a Kubernetes node takes.
//! `ctr images pull --plain-http` of an image skopeo put into Berth from an
//! OCI layout; `ctr images check` says complete, and every blob containerd
//! stored (`ctr content get`) equals the layout's.

use std::net::SocketAddr;
use std::path::Path;

use berth_testkit::Containerd;

use crate::fixtures::{skopeo_ok, Layout};
use crate::skopeo_copy::blob_digests;
use crate::{ensure, registry, Result};

/// Runs the scenario; `work` is a scratch dir.
pub fn run(containerd: &Containerd, registry: SocketAddr, work: &Path) -> Result<()> {
    let layout = Layout::build(work, "ctr-layout", &[("etc/node.txt", b"pulled by containerd\n".to_vec())])?;
    let image = format!("{registry}/e2e/node:v1");
    skopeo_ok(&["copy", "-q", "--dest-tls-verify=false", &layout.reference(), &format!("docker://{image}")])?;
    let digest = layout.manifest_descriptor()?["digest"].as_str().unwrap_or_default().to_owned();

    containerd.ctr_ok(&["images", "pull", "--plain-http", &image])?;
    let listed = containerd.ctr_ok(&["images", "ls"])?;
    let line = listed.lines().find(|l| l.starts_with(&format!("{image} "))).unwrap_or_default();
    ensure(line.contains(&digest), || format!("ctr images ls does not show {image} at {digest}:\n{listed}"))?;
    let check = containerd.ctr_ok(&["images", "check"])?;
    let line = check.lines().find(|l| l.starts_with(&format!("{image} "))).unwrap_or_default();
    ensure(line.contains("complete"), || format!("ctr images check:\n{check}"))?;

    let manifest = registry::json(&String::from_utf8_lossy(&layout.blob(&digest)?))?;
    for blob in blob_digests(&manifest).into_iter().chain([digest.clone()]) {
        let out = containerd.ctr(&["content", "get", &blob])?;
        ensure(out.success(), || out.describe_failure())?;
        let bytes = out.stdout_bytes;
        ensure(bytes == layout.blob(&blob)?, || format!("containerd's copy of {blob} differs from the layout's"))?;
    }
    Ok(())
}
