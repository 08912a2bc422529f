//! End-to-end scenarios of issue 13: real clients against a real registry
//! on loopback, asserting on what came back (digests, image IDs, file
//! contents), not only on exit codes.
//!
//! Each scenario is a function taking the clients' engine and a registry
//! address, so the same script runs against `berth serve` and, as a check
//! of the harness itself, against CNCF Distribution. The test files in
//! `tests/` start the servers (one dockerd per test: its startup is slow,
//! so one test runs every docker scenario on it) and call these.
//!
//! | issue 13 scenario | module | test |
//! |---|---|---|
//! | 1 docker build/push/pull/run, mounts | [`docker_roundtrip`] | `tests/docker.rs` |
//! | 2 ≥ 100 MiB layer, re-push, chunked upload (oras-py) | [`big_layer`] | `tests/docker.rs` |
//! | Berth's own image | [`berth_image`] | `tests/docker.rs` |
//! | 3 podman push/pull, two-platform index | [`podman_images`] | `tests/podman.rs` |
//! | 4, 5 skopeo ↔ Distribution, OCI layout, umoci | [`skopeo_copy`] | `tests/skopeo.rs` |
//! | 6 oras-py artifacts, referrers, Helm chart | [`artifacts`] | `tests/oras.rs` |
//! | 7 containerd `ctr images pull` | [`containerd_pull`] | `tests/containerd.rs` |
//! | 8 deletes disabled | in [`skopeo_copy`] and [`artifacts`] | |
//! | issue 17: docker/podman login, skopeo --creds, ctr --user on the token service | [`token_clients`] | `tests/token_auth.rs` |
//! | issue 15: three nodes on Garage + PostgreSQL, kill -9 mid-upload | [`cluster`] | `tests/cluster.rs` |
//! | issue 18: robot push, quota and immutable-tag refusals, retention dry run = apply (admin API) | [`governance`] | `tests/governance.rs` |
//! | issue 17: docker (network namespace) and skopeo over TLS and mutual TLS | [`tls_clients`] | `tests/tls.rs` |

pub mod artifacts;
pub mod berth_image;
pub mod big_layer;
pub mod cluster;
pub mod containerd_pull;
pub mod docker_roundtrip;
pub mod fixtures;
pub mod governance;
pub mod podman_images;
pub mod registry;
pub mod skopeo_copy;
pub mod tls_clients;
pub mod token_clients;

/// Scenario result: the error is a message with the failing step and the
/// client's output.
pub type Result<T> = std::result::Result<T, String>;

/// Fails with `msg` unless `cond` holds.
pub fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// The last `n` lines of `text`, for failure messages.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
