//! Issue 15, "Several nodes": three `berth serve` processes on their own
//! loopback ports, one Garage bucket and one PostgreSQL database between
//! them, deletes enabled everywhere. Node B proxies blob bytes
//! (`storage.redirect.disable: true`); A and C answer blob GETs with a 307 to
//! a presigned Garage URL, so both pull paths are covered.
//!
//! A and C read the same `config.yml` (what nodes behind a load balancer
//! share, see [`config_yml`]); B is configured by `REGISTRY_*` variables only,
//! so both ways of configuring S3 and PostgreSQL run.
//!
//! 1. `docker push` through A, `docker pull` through B and C (same image ID),
//!    `skopeo inspect` (digest, layers, raw bytes) and `skopeo copy` to an
//!    `oci:` layout through C (layer digests and bytes).
//! 2. Read-your-writes: a tag moved on B is seen by the very next GET on A
//!    and C; a manifest deleted through C is 404 by tag and by digest on A
//!    and B at once; a blob unlinked through C is gone on A at once.
//! 3. `kill -9` of A in the middle of a chunked upload: `Content-Range`
//!    chunks, all below S3's 5 MiB part minimum; two acknowledged by A, the
//!    third in flight when A dies (A has uploaded an unacknowledged first
//!    multipart part by then). B reports the acknowledged range and finishes
//!    the upload; C serves the blob byte-exact; A, restarted, serves it too.
//! 4. Catalog and tag lists (also paginated) agree on all three nodes.
//! 5. The bucket holds the committed blobs and nothing else: no staging
//!    object survives, not even those of the killed node's upload.
//!
//! Every step is timed ([`Timings`]); the test prints the table.
//!
//! Modules: `setup` starts the cluster, `push_pull` is step 1, `consistency`
//! step 2, `kill_upload` step 3, `final_checks` steps 4 and 5.

mod consistency;
mod final_checks;
mod kill_upload;
mod push_pull;
mod setup;
mod timings;

use std::net::SocketAddr;
use std::path::Path;

use berth_testkit::http;
use berth_testkit::Dockerd;
use serde_json::Value;

pub use push_pull::Pushed;
pub use setup::{config_yml, start_on_own_thread, started, Cluster, KeepAlive};
pub use timings::Timings;

use crate::{ensure, Result};

/// Node names, in the order of [`Cluster::nodes`].
pub const NAMES: [&str; 3] = ["A", "B", "C"];
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
/// Key prefix of the registry in the shared bucket.
pub const ROOT_DIRECTORY: &str = "/cluster";
/// PostgreSQL database the nodes share.
const DATABASE: &str = "postgres";
const MIB: usize = 1024 * 1024;
/// `storage.s3.chunksize`: S3's minimum part size, so that the upload of
/// step 3 reaches a multipart part on A before A dies.
const CHUNK_SIZE: usize = 5 * MIB;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Runs steps 1–5 in order; `work` is a scratch dir.
pub fn run(cluster: &mut Cluster, docker: &Dockerd, work: &Path, t: &mut Timings) -> Result<()> {
    let pushed =
        t.measure("1 docker push (A), pull (B, C), skopeo (C)", || push_pull::push_and_pull(cluster, docker, work))?;
    t.measure("2a retag on B ×10, read on A and C", || consistency::retag_is_seen_everywhere(cluster, &pushed))?;
    t.measure("2b manifest DELETE on C, 404 on A and B", || consistency::manifest_delete_is_seen(cluster, &pushed))?;
    t.measure("2c blob DELETE on C, 404 on A", || consistency::blob_delete_is_seen(cluster, &pushed))?;
    kill_upload::chunked_upload_survives_kill(cluster, work, t)?;
    t.measure("4 catalog and tags agree", || final_checks::listings_agree(cluster))?;
    // Config + layers of the image, and the blob of step 3.
    let blobs = layer_digests(&pushed.manifest.json).len() + 2;
    t.measure("5 bucket holds committed blobs only", || final_checks::bucket_holds_only_blobs(cluster, blobs))?;
    Ok(())
}

fn layer_digests(manifest: &Value) -> Vec<&str> {
    manifest["layers"].as_array().into_iter().flatten().filter_map(|l| l["digest"].as_str()).collect()
}

/// `GET` of a blob, following a redirect (A and C send 307 to Garage):
/// the first status and the bytes.
fn blob_from(addr: SocketAddr, repo: &str, digest: &str) -> Result<(u16, Vec<u8>)> {
    let path = format!("/v2/{repo}/blobs/{digest}");
    let r = http::request(addr, "GET", &path, &[], &[])?;
    match r.status {
        200 => Ok((200, r.body)),
        307 => {
            let location = r.header("location").ok_or_else(|| format!("GET {path} on {addr}: 307 without Location"))?;
            let (target, target_path) = split_url(location)?;
            let followed = http::request(target, "GET", &target_path, &[], &[])?;
            ensure(followed.status == 200, || {
                format!("GET {path} on {addr} redirected to {location}, which answered {}", followed.describe())
            })?;
            Ok((307, followed.body))
        }
        _ => Err(format!("GET {path} on {addr}: {}", r.describe())),
    }
}

/// `http://IP:PORT/path?query` → (address, `/path?query`).
fn split_url(url: &str) -> Result<(SocketAddr, String)> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("redirect to {url}: not plain http"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = host.parse().map_err(|_| format!("redirect to {url}: host {host:?} is not IP:PORT"))?;
    Ok((addr, if path.is_empty() { "/".to_owned() } else { path.to_owned() }))
}

/// The path of an upload `Location` (relative or absolute).
fn location_path(location: &str) -> String {
    match location.strip_prefix("http://").or_else(|| location.strip_prefix("https://")) {
        Some(rest) => rest.find('/').map_or("/".to_owned(), |i| rest[i..].to_owned()),
        None => location.to_owned(),
    }
}
