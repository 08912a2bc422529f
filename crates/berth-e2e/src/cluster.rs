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

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use berth_testkit::http::{self, Response};
use berth_testkit::{run_bounded, tools, BerthOptions, BerthServer, Dockerd, Garage, ImageContext, Postgres};
use serde_json::{json, Value};

use crate::docker_roundtrip::{image_id, pushed_digest};
use crate::fixtures::{layout_blob, layout_descriptor, skopeo_ok};
use crate::registry::{self, json, ACCEPT_MANIFESTS};
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

/// Durations of the steps, in order, for the report.
#[derive(Debug, Default)]
pub struct Timings {
    entries: Vec<(String, Duration)>,
}

impl Timings {
    /// Runs `f` and records how long it took under `name`.
    pub fn measure<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let out = f();
        self.record(name, start.elapsed());
        out
    }

    /// Records a duration.
    pub fn record(&mut self, name: &str, d: Duration) {
        self.entries.push((name.to_owned(), d));
    }

    /// One line per step: `   123.4 ms  name`.
    pub fn table(&self) -> String {
        self.entries
            .iter()
            .map(|(n, d)| format!("{:>10.1} ms  {n}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Keeps alive the thread that started some child processes: the testkit
/// sets `PR_SET_PDEATHSIG`, which fires when the *thread* that spawned a
/// child exits, so a server started on a short-lived thread would be killed
/// at once. Dropping this lets the thread end (after the servers stopped).
#[derive(Debug)]
pub struct KeepAlive {
    _stop: mpsc::Sender<()>,
}

/// Runs `start` on a new thread that stays alive until the returned
/// [`KeepAlive`] is dropped; `recv()` on the receiver gives its result
/// (an error if it panicked).
pub fn start_on_own_thread<T: Send + 'static>(
    start: impl FnOnce() -> T + Send + 'static,
) -> (mpsc::Receiver<T>, KeepAlive) {
    let (result_tx, result_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let _ = result_tx.send(start());
        // Returns when the KeepAlive is dropped.
        let _ = stop_rx.recv();
    });
    (result_rx, KeepAlive { _stop: stop_tx })
}

/// Waits for the result of [`start_on_own_thread`].
pub fn started<T>(rx: mpsc::Receiver<Result<T>>, what: &str) -> Result<T> {
    rx.recv().map_err(|_| format!("starting {what} panicked"))?.map_err(|e| format!("{what}: {e}"))
}

/// Garage, PostgreSQL and three Berth nodes. Field order is drop order:
/// the nodes stop before the servers they use, the starting threads last.
#[derive(Debug)]
pub struct Cluster {
    /// A, B, C.
    pub nodes: Vec<BerthServer>,
    pub garage: Garage,
    pub postgres: Postgres,
    _threads: Vec<KeepAlive>,
}

/// The `config.yml` nodes A and C share: S3 blobs, PostgreSQL metadata,
/// deletes on, redirects to presigned URLs on (Distribution's default).
/// `http.addr` is overridden by the harness (`REGISTRY_HTTP_ADDR`).
pub fn config_yml(garage: &Garage, database_url: &str) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: info\n\
         http:\n  addr: :5000\n\
         storage:\n\
         \x20 s3:\n\
         \x20   accesskey: {ak}\n\
         \x20   secretkey: {sk}\n\
         \x20   region: {region}\n\
         \x20   regionendpoint: {endpoint}\n\
         \x20   bucket: {bucket}\n\
         \x20   rootdirectory: {ROOT_DIRECTORY}\n\
         \x20   forcepathstyle: true\n\
         \x20   secure: false\n\
         \x20   chunksize: {CHUNK_SIZE}\n\
         \x20 delete:\n    enabled: true\n\
         \x20 redirect:\n    disable: false\n\
         berth:\n  database:\n    url: {database_url}\n",
        ak = garage.access_key(),
        sk = garage.secret_key(),
        region = garage.region(),
        endpoint = garage.endpoint(),
        bucket = garage.bucket(),
    )
}

impl Cluster {
    /// Starts Garage and PostgreSQL side by side, then the three nodes side
    /// by side (so their migrations race, as they would in a rollout).
    pub fn start(timings: &mut Timings) -> Result<Self> {
        let mut threads = Vec::new();
        let (garage, postgres) = timings.measure("start Garage and PostgreSQL (in parallel)", || {
            let (garage, keep) = start_on_own_thread(Garage::start);
            threads.push(keep);
            let postgres = Postgres::start();
            Ok((started(garage, "Garage")?, postgres?))
        })?;
        let url = postgres.url(DATABASE);
        let config = garage.dir().join("berth-config.yml");
        std::fs::write(&config, config_yml(&garage, &url)).map_err(|e| format!("{}: {e}", config.display()))?;
        let from_file = BerthOptions::default().config_file(&config).filesystem_root(false).delete_enabled(true);
        let from_env = BerthOptions::default()
            .filesystem_root(false)
            .delete_enabled(true)
            .env("REGISTRY_STORAGE", "s3")
            .env("REGISTRY_STORAGE_S3_ACCESSKEY", garage.access_key())
            .env("REGISTRY_STORAGE_S3_SECRETKEY", garage.secret_key())
            .env("REGISTRY_STORAGE_S3_REGION", garage.region())
            .env("REGISTRY_STORAGE_S3_REGIONENDPOINT", garage.endpoint())
            .env("REGISTRY_STORAGE_S3_BUCKET", garage.bucket())
            .env("REGISTRY_STORAGE_S3_ROOTDIRECTORY", ROOT_DIRECTORY)
            .env("REGISTRY_STORAGE_S3_FORCEPATHSTYLE", "true")
            .env("REGISTRY_STORAGE_S3_SECURE", "false")
            .env("REGISTRY_STORAGE_S3_CHUNKSIZE", CHUNK_SIZE.to_string())
            .env("REGISTRY_STORAGE_REDIRECT_DISABLE", "true")
            .env("REGISTRY_BERTH_DATABASE_URL", &url);
        let nodes = timings.measure("start nodes A, B, C (in parallel)", || {
            let pending: Vec<_> = [from_file.clone(), from_env, from_file]
                .into_iter()
                .map(|opts| start_on_own_thread(move || BerthServer::start(opts)))
                .collect();
            // Every result first, so that on an error the nodes that did
            // start are dropped (stopped, dirs removed) before we return.
            let results: Vec<_> = NAMES
                .iter()
                .zip(pending)
                .map(|(name, (rx, keep))| {
                    threads.push(keep);
                    started(rx, &format!("node {name}"))
                })
                .collect();
            let nodes = results.into_iter().collect::<Result<Vec<_>>>()?;
            Ok(nodes)
        })?;
        Ok(Self { nodes, garage, postgres, _threads: threads })
    }

    /// Current address of node `i` (A changes port when restarted).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr()
    }

    /// The tail of every node's log, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        NAMES
            .iter()
            .zip(&self.nodes)
            .map(|(n, s)| format!("--- node {n} ({}) log (tail) ---\n{}", s.addr(), crate::tail(&s.log(), lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs steps 1–5 in order; `work` is a scratch dir.
pub fn run(cluster: &mut Cluster, docker: &Dockerd, work: &Path, t: &mut Timings) -> Result<()> {
    let pushed = t.measure("1 docker push (A), pull (B, C), skopeo (C)", || push_and_pull(cluster, docker, work))?;
    t.measure("2a retag on B ×10, read on A and C", || retag_is_seen_everywhere(cluster, &pushed))?;
    t.measure("2b manifest DELETE on C, 404 on A and B", || manifest_delete_is_seen(cluster, &pushed))?;
    t.measure("2c blob DELETE on C, 404 on A", || blob_delete_is_seen(cluster, &pushed))?;
    chunked_upload_survives_kill(cluster, work, t)?;
    t.measure("4 catalog and tags agree", || listings_agree(cluster))?;
    // Config + layers of the image, and the blob of step 3.
    let blobs = layer_digests(&pushed.manifest.json).len() + 2;
    t.measure("5 bucket holds committed blobs only", || bucket_holds_only_blobs(cluster, blobs))?;
    Ok(())
}

/// After every upload ended: no staging object (tail objects, `startedat`)
/// and no multipart upload (such as the one the killed node started) is
/// left in the bucket, only the committed blobs (manifests live in
/// PostgreSQL). Garage's object
/// counter may lag a write briefly, hence the short poll.
fn bucket_holds_only_blobs(cluster: &Cluster, blobs: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = cluster.garage.cli(&["bucket", "info", cluster.garage.bucket()])?;
        let objects = info.lines().find_map(|l| l.trim().strip_prefix("Objects:")).map(str::trim);
        let objects = objects.and_then(|n| n.parse::<usize>().ok());
        // "Unfinished uploads:  1 multipart uploads" (absent when none): the
        // multipart upload the killed node started must have been aborted.
        let unfinished = info
            .lines()
            .find_map(|l| l.trim().strip_prefix("Unfinished uploads:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<usize>().ok())
            .unwrap_or(0);
        if objects == Some(blobs) && unfinished == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the bucket should hold the {blobs} committed blobs only; `garage bucket info`:\n{info}"
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// What step 1 pushed.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub repo: String,
    pub digest: String,
    pub manifest: registry::Manifest,
}

/// Step 1.
fn push_and_pull(cluster: &Cluster, docker: &Dockerd, work: &Path) -> Result<Pushed> {
    let repo = "cluster/app";
    let context = ImageContext::small().build()?;
    let on = |i: usize| format!("{}/{repo}:v1", cluster.addr(i));
    docker.docker_ok(&["build", "-q", "-t", &on(A), &context.dir().to_string_lossy()])?;
    let built = image_id(docker, &on(A))?;
    let digest = pushed_digest(&docker.docker_ok(&["push", &on(A)])?)?;
    docker.docker_ok(&["rmi", &on(A)])?;

    // The same manifest bytes from every node.
    let manifest = registry::manifest(cluster.addr(A), repo, "v1")?;
    ensure(manifest.digest == digest, || format!("A serves {} for v1, docker pushed {digest}", manifest.digest))?;
    for i in [B, C] {
        let m = registry::manifest(cluster.addr(i), repo, "v1")?;
        ensure(m.digest == digest && m.bytes == manifest.bytes, || {
            format!("node {} serves v1 as {} ({} bytes), A as {digest}", NAMES[i], m.digest, m.bytes.len())
        })?;
    }

    for i in [B, C] {
        let image = on(i);
        docker.docker_ok(&["pull", &image]).map_err(|e| format!("docker pull through node {}: {e}", NAMES[i]))?;
        let id = image_id(docker, &image)?;
        ensure(id == built, || format!("pulled through node {} as {id}, built {built}", NAMES[i]))?;
        docker.docker_ok(&["rmi", &image])?;
    }

    let source = format!("docker://{}", on(C));
    let inspect = json(&skopeo_ok(&["inspect", "--tls-verify=false", &source])?)?;
    ensure(inspect["Digest"] == digest.as_str(), || {
        format!("skopeo inspect via C: {}, pushed {digest}", inspect["Digest"])
    })?;
    let layers = layer_digests(&manifest.json);
    let seen: Vec<&str> = inspect["Layers"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    ensure(seen == layers, || format!("skopeo inspect via C: layers {seen:?}, pushed {layers:?}"))?;

    let raw = skopeo_ok(&["inspect", "--raw", "--tls-verify=false", &source])?;
    ensure(raw.as_bytes() == manifest.bytes.trim_ascii_end(), || {
        "skopeo inspect --raw via C differs from A".to_owned()
    })?;

    // docker pushed a Docker schema 2 manifest; an OCI layout holds OCI
    // manifests only, so skopeo converts it (new manifest and config
    // digests); the layers keep their digests and bytes.
    let layout = work.join("oci-from-c");
    skopeo_ok(&["copy", "-q", "--src-tls-verify=false", &source, &format!("oci:{}:v1", layout.display())])?;
    let descriptor = layout_descriptor(&layout, "v1")?;
    let copied = json(&String::from_utf8_lossy(&layout_blob(&layout, descriptor["digest"].as_str().unwrap_or(""))?))?;
    ensure(layer_digests(&copied) == layers, || {
        format!("oci: copy via C has layers {:?}, pushed {layers:?}", layer_digests(&copied))
    })?;
    for d in &layers {
        // B proxies the bytes: compare with the layout byte for byte.
        let (status, bytes) = blob_from(cluster.addr(B), repo, d)?;
        ensure(status == 200, || format!("node B (redirect disabled) answered {status} for blob {d}, not 200"))?;
        ensure(layout_blob(&layout, d)? == bytes, || format!("blob {d}: oci: copy via C differs from B's bytes"))?;
    }
    Ok(Pushed { repo: repo.to_owned(), digest, manifest })
}

fn layer_digests(manifest: &Value) -> Vec<&str> {
    manifest["layers"].as_array().into_iter().flatten().filter_map(|l| l["digest"].as_str()).collect()
}

/// The same image as an OCI manifest (another digest, same blobs).
fn oci_variant(pushed: &Pushed) -> Vec<u8> {
    let m = &pushed.manifest.json;
    let desc = |d: &Value, media_type: &str| json!({"mediaType": media_type, "digest": d["digest"], "size": d["size"]});
    let layers: Vec<Value> = m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| desc(l, "application/vnd.oci.image.layer.v1.tar+gzip"))
        .collect();
    let v = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(&m["config"], "application/vnd.oci.image.config.v1+json"),
        "layers": layers,
        "annotations": {"org.example.berth.cluster-test": "retagged on node B"},
    });
    serde_json::to_vec(&v).expect("JSON")
}

fn put_manifest(addr: SocketAddr, repo: &str, reference: &str, content_type: &str, body: &[u8]) -> Result<String> {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let r = http::request(addr, "PUT", &path, &[("Content-Type", content_type)], body)?;
    ensure(r.status == 201, || format!("PUT {path} on {addr}: {}", r.describe()))?;
    Ok(r.header("docker-content-digest").unwrap_or_default().to_owned())
}

/// `GET` (or `HEAD`) of a manifest: status and `Docker-Content-Digest`.
fn manifest_status(addr: SocketAddr, method: &str, repo: &str, reference: &str) -> Result<(u16, String, Response)> {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let r = http::request(addr, method, &path, &[("Accept", ACCEPT_MANIFESTS)], &[])?;
    Ok((r.status, r.header("docker-content-digest").unwrap_or_default().to_owned(), r))
}

/// Step 2a: the tag `moving` flips between the two digests on B, ten times;
/// after each PUT's 201 the very next GET and HEAD on A and C see it.
fn retag_is_seen_everywhere(cluster: &Cluster, pushed: &Pushed) -> Result<()> {
    let repo = &pushed.repo;
    let oci = oci_variant(pushed);
    let docker_type = pushed.manifest.content_type.clone();
    let mut put_ms = Vec::new();
    let mut read_ms = Vec::new();
    for round in 0..10 {
        let (body, content_type) =
            if round % 2 == 0 { (&oci, OCI_MANIFEST) } else { (&pushed.manifest.bytes, docker_type.as_str()) };
        let start = Instant::now();
        let digest = put_manifest(cluster.addr(B), repo, "moving", content_type, body)?;
        put_ms.push(start.elapsed());
        if round % 2 == 1 {
            ensure(digest == pushed.digest, || format!("re-PUT of the pushed manifest on B gave {digest}"))?;
        }
        for i in [A, C] {
            for method in ["GET", "HEAD"] {
                let start = Instant::now();
                let (status, seen, r) = manifest_status(cluster.addr(i), method, repo, "moving")?;
                read_ms.push(start.elapsed());
                ensure(status == 200 && seen == digest, || {
                    format!(
                        "round {round}: PUT {repo}:moving on B answered 201 with {digest}; the next {method} on node {} \
                         answered:\n{}",
                        NAMES[i],
                        r.describe()
                    )
                })?;
            }
        }
    }
    eprintln!(
        "cluster: retag on B: PUT median {:.1} ms; next GET/HEAD on A or C median {:.1} ms, max {:.1} ms",
        median_ms(&mut put_ms),
        median_ms(&mut read_ms),
        read_ms.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    Ok(())
}

fn median_ms(v: &mut [Duration]) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Step 2b: `moving` ends on the OCI variant; DELETE it by digest through C.
fn manifest_delete_is_seen(cluster: &Cluster, pushed: &Pushed) -> Result<()> {
    let repo = &pushed.repo;
    let oci = put_manifest(cluster.addr(B), repo, "moving", OCI_MANIFEST, &oci_variant(pushed))?;
    // Warm whatever a node might cache: the deleted content was just read everywhere.
    for i in [A, B, C] {
        for reference in ["moving", oci.as_str()] {
            let (status, _, r) = manifest_status(cluster.addr(i), "GET", repo, reference)?;
            ensure(status == 200, || format!("before the delete, node {} {reference}: {}", NAMES[i], r.describe()))?;
        }
    }
    let path = format!("/v2/{repo}/manifests/{oci}");
    let r = http::request(cluster.addr(C), "DELETE", &path, &[], &[])?;
    ensure(r.status == 202, || format!("DELETE {path} on C: {}", r.describe()))?;
    for i in [A, B, C] {
        for reference in ["moving", oci.as_str()] {
            for method in ["GET", "HEAD"] {
                let (status, _, r) = manifest_status(cluster.addr(i), method, repo, reference)?;
                ensure(status == 404, || {
                    format!(
                        "DELETE {path} on C answered 202; the next {method} {repo}:{reference} on node {} answered:\n{}",
                        NAMES[i],
                        r.describe()
                    )
                })?;
            }
        }
        // The other manifest, which shares every blob, is untouched.
        let (status, seen, r) = manifest_status(cluster.addr(i), "GET", repo, "v1")?;
        ensure(status == 200 && seen == pushed.digest, || {
            format!("after deleting {oci}, {repo}:v1 on node {}: {}", NAMES[i], r.describe())
        })?;
        let tags = registry::tags(cluster.addr(i), repo)?;
        ensure(tags == ["v1"], || format!("tags of {repo} on node {} after the delete: {tags:?}", NAMES[i]))?;
    }
    Ok(())
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

fn blob_status(addr: SocketAddr, method: &str, repo: &str, digest: &str) -> Result<Response> {
    http::request(addr, method, &format!("/v2/{repo}/blobs/{digest}"), &[], &[])
}

/// Step 2c: a layer mounted (on A) into a second repository, deleted there
/// through C: gone from that repository on A and B at once, still in the
/// first.
fn blob_delete_is_seen(cluster: &Cluster, pushed: &Pushed) -> Result<()> {
    let layer = layer_digests(&pushed.manifest.json)[1].to_owned();
    let other = "cluster/blob-delete";
    let path = format!("/v2/{other}/blobs/uploads/?mount={layer}&from={}", pushed.repo);
    let r = http::request(cluster.addr(A), "POST", &path, &[], &[])?;
    ensure(r.status == 201, || format!("mount on A: POST {path}: {}", r.describe()))?;
    for i in [A, B, C] {
        let r = blob_status(cluster.addr(i), "HEAD", other, &layer)?;
        ensure(r.status == 200, || format!("HEAD of the mounted blob on node {}: {}", NAMES[i], r.describe()))?;
    }
    let delete = format!("/v2/{other}/blobs/{layer}");
    let r = http::request(cluster.addr(C), "DELETE", &delete, &[], &[])?;
    ensure(r.status == 202, || format!("DELETE {delete} on C: {}", r.describe()))?;
    for i in [A, B, C] {
        for method in ["HEAD", "GET"] {
            let r = blob_status(cluster.addr(i), method, other, &layer)?;
            ensure(r.status == 404, || {
                format!(
                    "DELETE {delete} on C answered 202; the next {method} on node {} answered:\n{}",
                    NAMES[i],
                    r.describe()
                )
            })?;
        }
        let r = blob_status(cluster.addr(i), "HEAD", &pushed.repo, &layer)?;
        ensure(r.status == 200, || {
            format!("the blob deleted from {other} is gone from {} on node {}: {}", pushed.repo, NAMES[i], r.describe())
        })?;
    }
    Ok(())
}

/// Pseudo-random bytes (xorshift).
fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `sha256:…` of `data`, by coreutils' `sha256sum` (no hashing crate here).
fn sha256(data: &[u8], work: &Path) -> Result<String> {
    let file = work.join("sha256-input");
    std::fs::write(&file, data).map_err(|e| format!("{}: {e}", file.display()))?;
    let out = run_bounded(Command::new(tools::require("sha256sum", "coreutils")?).arg(&file), Duration::from_secs(30))?
        .ok()?;
    let _ = std::fs::remove_file(&file);
    let hex = out.split_whitespace().next().unwrap_or_default();
    ensure(hex.len() == 64, || format!("sha256sum printed {out:?}"))?;
    Ok(format!("sha256:{hex}"))
}

/// The path of an upload `Location` (relative or absolute).
fn location_path(location: &str) -> String {
    match location.strip_prefix("http://").or_else(|| location.strip_prefix("https://")) {
        Some(rest) => rest.find('/').map_or("/".to_owned(), |i| rest[i..].to_owned()),
        None => location.to_owned(),
    }
}

fn patch(addr: SocketAddr, path: &str, data: &[u8], from: usize, to: usize) -> Result<Response> {
    let range = format!("{from}-{}", to - 1);
    let headers = [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str())];
    http::request(addr, "PATCH", path, &headers, &data[from..to])
}

fn ensure_range(r: &Response, what: &str, expected_end: usize) -> Result<()> {
    let expected = format!("0-{}", expected_end - 1);
    ensure(r.header("range") == Some(expected.as_str()), || {
        format!("{what}: expected Range {expected}, got:\n{}", r.describe())
    })
}

/// Step 3. Chunks (MiB): 1 and 3 acknowledged by A; 1.5, of which 1.25 sent
/// to A when it is killed, then sent whole to B; 0.5 in the PUT on B. All
/// below 5 MiB; the third crosses the 5 MiB mark (the first multipart part).
fn chunked_upload_survives_kill(cluster: &mut Cluster, work: &Path, t: &mut Timings) -> Result<()> {
    let repo = "cluster/chunked";
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64);
    let data = random_bytes(6 * MIB, seed);
    let digest = sha256(&data, work)?;
    let cuts = [0, MIB, 4 * MIB, 4 * MIB + 3 * MIB / 2, 6 * MIB];

    let start = Instant::now();
    let post = format!("/v2/{repo}/blobs/uploads/");
    let r = http::request(cluster.addr(A), "POST", &post, &[], &[])?;
    ensure(r.status == 202, || format!("POST {post} on A: {}", r.describe()))?;
    let upload =
        location_path(r.header("location").ok_or_else(|| format!("POST on A: no Location\n{}", r.describe()))?);
    for (n, w) in cuts.windows(2).take(2).enumerate() {
        let r = patch(cluster.addr(A), &upload, &data, w[0], w[1])?;
        ensure(r.status == 202, || format!("PATCH {} ({}-{}) on A: {}", n + 1, w[0], w[1] - 1, r.describe()))?;
        ensure_range(&r, &format!("PATCH {} on A", n + 1), w[1])?;
    }
    t.record("3 POST + 2 PATCHes (4 MiB) on A", start.elapsed());

    // The third chunk: headers and 1.25 MiB of its 1.5 MiB body, so that A
    // holds 4 MiB (the tail object it read back) + 1.25 MiB and uploads a
    // first 5 MiB part that is never acknowledged; then kill -9.
    let (from, to) = (cuts[2], cuts[3]);
    let mut stream = TcpStream::connect_timeout(&cluster.addr(A), Duration::from_secs(10))
        .and_then(|s| s.set_write_timeout(Some(Duration::from_secs(10))).map(|()| s))
        .map_err(|e| format!("connect to A: {e}"))?;
    let head = format!(
        "PATCH {upload} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/octet-stream\r\nContent-Range: {from}-{}\r\n\
         Content-Length: {}\r\n\r\n",
        cluster.addr(A),
        to - 1,
        to - from
    );
    stream.write_all(head.as_bytes()).map_err(|e| format!("half PATCH to A: {e}"))?;
    stream.write_all(&data[from..from + 5 * MIB / 4]).map_err(|e| format!("half PATCH to A: {e}"))?;
    thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    let pid = cluster.nodes[A].pid();
    cluster.nodes[A].kill9();
    drop(stream);
    eprintln!("cluster: node A (pid {pid}) killed with 1.25 of the 1.5 MiB of PATCH 3 sent");

    let r = http::request(cluster.addr(B), "GET", &upload, &[], &[])?;
    t.record("3 kill -9 A → status answered on B", killed.elapsed());
    ensure(r.status == 204, || format!("GET {upload} (status) on B after A died: {}", r.describe()))?;
    ensure_range(&r, "status on B after A died", cuts[2])?;

    let start = Instant::now();
    let r = patch(cluster.addr(B), &upload, &data, from, to)?;
    ensure(r.status == 202, || format!("PATCH 3 ({from}-{}) on B: {}", to - 1, r.describe()))?;
    ensure_range(&r, "PATCH 3 on B", to)?;
    let r = http::request(cluster.addr(C), "GET", &upload, &[], &[])?;
    ensure(r.status == 204, || format!("GET {upload} (status) on C: {}", r.describe()))?;
    ensure_range(&r, "status on C", to)?;
    let sep = if upload.contains('?') { '&' } else { '?' };
    let put = format!("{upload}{sep}digest={digest}");
    let range = format!("{}-{}", cuts[3], cuts[4] - 1);
    let headers = [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str())];
    let r = http::request(cluster.addr(B), "PUT", &put, &headers, &data[cuts[3]..])?;
    ensure(r.status == 201, || format!("PUT {put} on B: {}", r.describe()))?;
    ensure(r.header("docker-content-digest") == Some(digest.as_str()), || format!("PUT on B: {}", r.describe()))?;
    t.record("3 PATCH 3 + PUT on B (2 MiB)", start.elapsed());

    let start = Instant::now();
    for i in [C, B] {
        let (status, bytes) = blob_from(cluster.addr(i), repo, &digest)?;
        let expected = if i == B { 200 } else { 307 };
        ensure(status == expected, || format!("GET blob on node {}: {status}, expected {expected}", NAMES[i]))?;
        ensure(bytes == data, || {
            format!("node {} served {} bytes that differ from the {} uploaded", NAMES[i], bytes.len(), data.len())
        })?;
    }
    t.record("3 pull 6 MiB from C (redirect) and B (proxied)", start.elapsed());

    let start = Instant::now();
    cluster.nodes[A].restart().map_err(|e| format!("restarting A: {e}"))?;
    t.record("3 restart A", start.elapsed());
    let (status, bytes) = blob_from(cluster.addr(A), repo, &digest)?;
    ensure(status == 307 && bytes == data, || {
        format!("restarted A: blob {status}, {} bytes, not byte-exact", bytes.len())
    })?;
    let r = http::request(cluster.addr(A), "GET", &upload, &[], &[])?;
    ensure(r.status == 404, || format!("restarted A: status of the finished upload: {}", r.describe()))?;
    Ok(())
}

/// Every repository of the catalog, walked `n` at a time via `Link`.
fn catalog(addr: SocketAddr, n: Option<usize>) -> Result<Vec<String>> {
    let mut path = match n {
        Some(n) => format!("/v2/_catalog?n={n}"),
        None => "/v2/_catalog".to_owned(),
    };
    let mut repos = Vec::new();
    for _page in 0..100 {
        let r = registry::get(addr, &path, &[])?;
        ensure(r.status == 200, || format!("GET {path} on {addr}: {}", r.describe()))?;
        let v = json(&r.text())?;
        repos.extend(v["repositories"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned));
        // Link: </v2/_catalog?last=x&n=1>; rel="next"
        match r.header("link").and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_owned())) {
            Some(next) => path = location_path(&next),
            None => return Ok(repos),
        }
    }
    Err(format!("catalog on {addr}: more than 100 pages"))
}

/// Step 4.
fn listings_agree(cluster: &Cluster) -> Result<()> {
    let reference = catalog(cluster.addr(A), None)?;
    ensure(reference.iter().any(|r| r == "cluster/app"), || format!("catalog on A lacks cluster/app: {reference:?}"))?;
    for i in [A, B, C] {
        let whole = catalog(cluster.addr(i), None)?;
        let paged = catalog(cluster.addr(i), Some(1))?;
        ensure(whole == reference && paged == reference, || {
            format!("catalog: A {reference:?}; node {} {whole:?}, paginated by 1 {paged:?}", NAMES[i])
        })?;
    }
    for repo in &reference {
        let tags = registry::tags(cluster.addr(A), repo)?;
        for i in [B, C] {
            let other = registry::tags(cluster.addr(i), repo)?;
            ensure(other == tags, || format!("tags of {repo}: A {tags:?}, node {} {other:?}", NAMES[i]))?;
        }
    }
    let app = registry::tags(cluster.addr(B), "cluster/app")?;
    ensure(app == ["v1"], || format!("tags of cluster/app: {app:?}"))?;
    eprintln!("cluster: catalog on every node: {reference:?}");
    Ok(())
}
