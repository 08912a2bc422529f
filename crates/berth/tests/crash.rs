//! Crash test: `kill -9` the real `berth` binary at random moments while
//! several clients push, restart it on the same data dir, and check that
//! nothing the server acknowledged was lost and nothing half-done is visible.
//!
//! Each round:
//! 1. `CLIENTS` threads push concurrently, each op picked at random: single
//!    `POST ?digest=`, `POST` + monolithic `PUT`, chunked `PATCH`es with
//!    `Content-Range` then `PUT`, cross-repository mount, manifest `PUT`
//!    (OCI or Docker schema2, by tag or by digest). Every `201` is written
//!    to a shared ledger; a connection error after the kill means "not
//!    acknowledged" and ends that client's round.
//! 2. After a random delay the server is SIGKILLed (the kill flag is raised
//!    first, so an error a client sees *before* it is a real failure).
//! 3. Restart on the same data dir, then check:
//!    - (a) blobs acknowledged this round are pullable byte-exact from their
//!      repository, manifests by digest byte-exact, every tag resolves to
//!      its last acknowledged manifest (or to the one whose PUT was in
//!      flight at the kill); a sample of older acknowledgements too;
//!    - (b) every tag of every repository in `_catalog` resolves to a
//!      manifest whose config and layers all exist in that repository;
//!    - (c) the server answers normally: `/v2/`, a fresh push and pull, an
//!      upload session started and cancelled;
//!    - (d) every chunked upload the kill cut off still reports at least
//!      the bytes acknowledged, resumes from there and completes (issue 12:
//!      "uploads are resumable across a restart"). Failures of (d) are
//!      collected and reported at the end, so they do not hide (a)–(c).
//!
//! At the end every acknowledged blob and manifest is pulled byte-exact once.
//! Blob contents are derived from a per-blob seed, so the ledger stays small.
//!
//! Seed: `BERTH_CRASH_SEED=<u64>` replays the same contents and choices (the
//! kill moments are timing and cannot be replayed exactly). The seed is
//! printed at the start and in every failure message.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use berth_testkit::{BerthOptions, BerthServer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::http::{path_of, request, with_query, Response};
use support::{image_manifest, referenced_blobs, sha256, BlobRef, ManifestFormat, ACCEPT_ALL_MANIFESTS};

/// Kill/restart cycles. The issue asks for at least 50.
const ROUNDS: usize = 52;
/// Concurrent pushing clients.
const CLIENTS: usize = 4;
/// Tags each client owns per repository (a tag has one writer, so its
/// expected value is known).
const TAGS_PER_CLIENT: usize = 2;
const REPOS: [&str; 4] = ["crash/alpha", "crash/beta", "crash/gamma/deep", "crash/delta"];
const MIN_BLOB: usize = 1024;
const MAX_BLOB: usize = 2 * 1024 * 1024;
/// Older acknowledgements re-checked (HEAD / GET) after each restart.
const OLD_SAMPLE: usize = 24;
/// The kill lands this long after the clients start, uniformly.
const KILL_DELAY_MS: std::ops::Range<u64> = 10..350;

/// Blob contents are a function of (seed, len): regenerate instead of keeping them.
fn blob_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill(&mut data[..]);
    data
}

/// Log-uniform in [MIN_BLOB, MAX_BLOB]: mostly small, some large.
fn blob_len(rng: &mut StdRng) -> usize {
    let (lo, hi) = ((MIN_BLOB as f64).ln(), (MAX_BLOB as f64).ln());
    (rng.random_range(lo..=hi).exp() as usize).clamp(MIN_BLOB, MAX_BLOB)
}

#[derive(Debug, Clone, Copy)]
struct BlobData {
    seed: u64,
    len: usize,
}

#[derive(Debug, Clone)]
struct ManifestRec {
    repo: String,
    digest: String,
    media_type: &'static str,
    body: Vec<u8>,
    round: usize,
}

#[derive(Debug, Default, Clone)]
struct TagRec {
    /// Last acknowledged manifest for the tag.
    acked: Option<String>,
    /// A PUT sent but never answered: it may or may not have landed.
    in_flight: Option<ManifestRec>,
}

/// What the server acknowledged, shared by the clients and the checker.
#[derive(Default)]
struct Ledger {
    blobs: HashMap<String, BlobData>,
    /// Acknowledged (repository, digest) pairs with the round that acked them.
    repo_blobs: BTreeMap<String, Vec<(String, usize)>>,
    manifests: Vec<ManifestRec>,
    tags: BTreeMap<(String, String), TagRec>,
    /// Per op kind: (acknowledged, interrupted by the kill).
    stats: BTreeMap<&'static str, (usize, usize)>,
    /// Mounts of an acknowledged blob that fell back to an upload (202).
    mount_fallbacks: usize,
    /// Failures seen by clients before the kill (wrong status, I/O error).
    failures: Vec<String>,
    /// Chunked uploads the kill interrupted, to resume after the restart.
    interrupted_uploads: Vec<PendingUpload>,
    /// Interrupted uploads resumed and completed after a restart.
    resumed: usize,
}

/// A chunked upload in progress: its session and the bytes acknowledged so far.
#[derive(Debug, Clone)]
struct PendingUpload {
    repo: &'static str,
    location: String,
    data: BlobData,
    digest: String,
    acked_offset: usize,
}

impl Ledger {
    fn ack_blob(&mut self, repo: &str, digest: &str, data: BlobData, round: usize) {
        self.blobs.entry(digest.to_owned()).or_insert(data);
        let list = self.repo_blobs.entry(repo.to_owned()).or_default();
        if !list.iter().any(|(d, _)| d == digest) {
            list.push((digest.to_owned(), round));
        }
    }
}

/// Why a client op stopped early.
enum Stop {
    /// Connection error or unexpected status while the kill flag was up.
    Killed,
    /// Something went wrong before the kill: a server bug.
    Failed(String),
}

struct Client {
    id: usize,
    round: usize,
    addr: SocketAddr,
    rng: StdRng,
    ledger: Arc<Mutex<Ledger>>,
    killing: Arc<AtomicBool>,
    /// The chunked upload under way, if any.
    upload: Option<PendingUpload>,
}

impl Client {
    fn send(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, Stop> {
        match request(self.addr, method, target, headers, body) {
            Ok(r) => Ok(r),
            Err(_) if self.killing.load(Ordering::SeqCst) => Err(Stop::Killed),
            Err(e) => Err(Stop::Failed(format!("{method} {target}: {e} (before the kill)"))),
        }
    }

    /// `r` must have status `want`; a wrong status after the kill flag went
    /// up is treated as part of the crash (the server may be half-dead).
    fn expect(&self, r: &Response, want: u16, what: &str) -> Result<(), Stop> {
        if r.status == want {
            Ok(())
        } else if self.killing.load(Ordering::SeqCst) {
            Err(Stop::Killed)
        } else {
            Err(Stop::Failed(format!(
                "{what}: status {} (want {want}), body {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )))
        }
    }

    fn location(&self, r: &Response, what: &str) -> Result<String, Stop> {
        r.header("location").map(path_of).ok_or_else(|| Stop::Failed(format!("{what}: no Location")))
    }

    fn run(mut self) {
        while !self.killing.load(Ordering::SeqCst) {
            let kind = self.rng.random_range(0..10);
            let (name, outcome) = match kind {
                0..=1 => ("single POST", self.single_post()),
                2..=3 => ("POST+PUT", self.post_put()),
                4..=5 => ("chunked PATCH", self.chunked()),
                6 => ("mount", self.mount()),
                _ => ("manifest PUT", self.manifest()),
            };
            // Ops that lack material (a mount with no blob elsewhere, a
            // manifest with too few blobs) push a blob instead and say so.
            let mut ledger = self.ledger.lock().unwrap();
            match outcome {
                Ok(done) => ledger.stats.entry(done.unwrap_or(name)).or_default().0 += 1,
                Err(Stop::Killed) => {
                    ledger.stats.entry(name).or_default().1 += 1;
                    ledger.interrupted_uploads.extend(self.upload.take());
                    return;
                }
                Err(Stop::Failed(why)) => {
                    ledger.failures.push(format!("client {} round {}: {name}: {why}", self.id, self.round));
                    return;
                }
            }
        }
    }

    fn repo(&mut self) -> &'static str {
        REPOS[self.rng.random_range(0..REPOS.len())]
    }

    fn new_blob(&mut self) -> (BlobData, Vec<u8>, String) {
        let data = BlobData { seed: self.rng.random(), len: blob_len(&mut self.rng) };
        let bytes = blob_bytes(data.seed, data.len);
        let digest = sha256(&bytes);
        (data, bytes, digest)
    }

    fn ack(&self, repo: &str, digest: &str, data: BlobData) {
        self.ledger.lock().unwrap().ack_blob(repo, digest, data, self.round);
    }

    fn check_created(&self, r: &Response, repo: &str, digest: &str, what: &str) -> Result<(), Stop> {
        self.expect(r, 201, what)?;
        if r.header("docker-content-digest") != Some(digest) {
            return Err(Stop::Failed(format!("{what}: Docker-Content-Digest {:?}", r.header("docker-content-digest"))));
        }
        let want = format!("/v2/{repo}/blobs/{digest}");
        match r.header("location").map(path_of) {
            Some(l) if l == want => Ok(()),
            other => Err(Stop::Failed(format!("{what}: Location {other:?}, want {want}"))),
        }
    }

    fn single_post(&mut self) -> Result<Option<&'static str>, Stop> {
        let repo = self.repo();
        let (data, bytes, digest) = self.new_blob();
        let target = format!("/v2/{repo}/blobs/uploads/?digest={digest}");
        let r = self.send("POST", &target, &[("Content-Type", "application/octet-stream")], &bytes)?;
        self.check_created(&r, repo, &digest, "single POST")?;
        self.ack(repo, &digest, data);
        Ok(Some("single POST"))
    }

    fn start_upload(&mut self, repo: &str) -> Result<String, Stop> {
        let r = self.send("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[])?;
        self.expect(&r, 202, "POST upload")?;
        self.location(&r, "POST upload")
    }

    fn post_put(&mut self) -> Result<Option<&'static str>, Stop> {
        let repo = self.repo();
        let (data, bytes, digest) = self.new_blob();
        let loc = self.start_upload(repo)?;
        let target = with_query(&loc, &format!("digest={digest}"));
        let r = self.send("PUT", &target, &[("Content-Type", "application/octet-stream")], &bytes)?;
        self.check_created(&r, repo, &digest, "monolithic PUT")?;
        self.ack(repo, &digest, data);
        Ok(None)
    }

    fn chunked(&mut self) -> Result<Option<&'static str>, Stop> {
        let repo = self.repo();
        let (data, bytes, digest) = self.new_blob();
        let mut loc = self.start_upload(repo)?;
        self.upload =
            Some(PendingUpload { repo, location: loc.clone(), data, digest: digest.clone(), acked_offset: 0 });
        let chunks = self.rng.random_range(2..=4);
        // No chunk boundary below 512: an upload status `Range: 0-0` then
        // always means "empty" (it is ambiguous between 0 and 1 byte).
        let mut cuts: Vec<usize> = (1..chunks).map(|_| self.rng.random_range(512..bytes.len())).collect();
        cuts.extend([0, bytes.len()]);
        cuts.sort_unstable();
        cuts.dedup();
        for w in cuts.windows(2) {
            let (start, end) = (w[0], w[1]);
            let range = format!("{}-{}", start, end - 1);
            let headers = [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str())];
            let r = self.send("PATCH", &loc, &headers, &bytes[start..end])?;
            self.expect(&r, 202, "chunk PATCH")?;
            let want_range = format!("0-{}", end - 1);
            if r.header("range") != Some(want_range.as_str()) {
                return Err(Stop::Failed(format!("chunk PATCH: Range {:?}, want {want_range}", r.header("range"))));
            }
            loc = self.location(&r, "chunk PATCH")?;
            self.upload =
                Some(PendingUpload { repo, location: loc.clone(), data, digest: digest.clone(), acked_offset: end });
        }
        let r = self.send("PUT", &with_query(&loc, &format!("digest={digest}")), &[], &[])?;
        // Answered: the session is over whatever the answer was.
        self.upload = None;
        self.check_created(&r, repo, &digest, "final PUT")?;
        self.ack(repo, &digest, data);
        Ok(None)
    }

    fn mount(&mut self) -> Result<Option<&'static str>, Stop> {
        let repo = self.repo();
        let source = {
            let ledger = self.ledger.lock().unwrap();
            let candidates: Vec<(String, String, BlobData)> = ledger
                .repo_blobs
                .iter()
                .filter(|(r, _)| r.as_str() != repo)
                .flat_map(|(r, list)| list.iter().map(move |(d, _)| (r.clone(), d.clone())))
                .map(|(r, d)| {
                    let data = ledger.blobs[&d];
                    (r, d, data)
                })
                .collect();
            match candidates.len() {
                0 => None,
                n => Some(candidates[self.rng.random_range(0..n)].clone()),
            }
        };
        let Some((from, digest, data)) = source else { return self.single_post() };
        let target = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
        let r = self.send("POST", &target, &[], &[])?;
        if r.status == 202 {
            // Allowed by the spec, but the blob was acknowledged in `from`:
            // counted and reported. Clean up the session it opened.
            self.ledger.lock().unwrap().mount_fallbacks += 1;
            let loc = self.location(&r, "mount fallback")?;
            let r = self.send("DELETE", &loc, &[], &[])?;
            return self.expect(&r, 204, "cancel mount fallback").map(|()| Some("mount fallback"));
        }
        self.check_created(&r, repo, &digest, "mount")?;
        self.ack(repo, &digest, data);
        Ok(None)
    }

    fn manifest(&mut self) -> Result<Option<&'static str>, Stop> {
        let repo = self.repo();
        let blobs: Vec<BlobRef> = {
            let ledger = self.ledger.lock().unwrap();
            let list = ledger.repo_blobs.get(repo).map(Vec::as_slice).unwrap_or_default();
            if list.len() < 2 {
                drop(ledger);
                return self.single_post();
            }
            let count = self.rng.random_range(2..=list.len().min(4));
            (0..count)
                .map(|_| {
                    let (d, _) = &list[self.rng.random_range(0..list.len())];
                    BlobRef { digest: d.clone(), size: ledger.blobs[d].len }
                })
                .collect()
        };
        let format = if self.rng.random_bool(0.5) { ManifestFormat::Oci } else { ManifestFormat::Docker };
        let body = image_manifest(format, &blobs[0], &blobs[1..]);
        let digest = sha256(&body);
        let rec = ManifestRec {
            repo: repo.to_owned(),
            digest: digest.clone(),
            media_type: format.media_type(),
            body: body.clone(),
            round: self.round,
        };
        let tag =
            self.rng.random_bool(0.8).then(|| format!("c{}-{}", self.id, self.rng.random_range(0..TAGS_PER_CLIENT)));
        let key = (repo.to_owned(), tag.clone().unwrap_or_default());
        if tag.is_some() {
            self.ledger.lock().unwrap().tags.entry(key.clone()).or_default().in_flight = Some(rec.clone());
        }
        let reference = tag.as_deref().unwrap_or(&digest);
        let target = format!("/v2/{repo}/manifests/{reference}");
        let r = self.send("PUT", &target, &[("Content-Type", format.media_type())], &body)?;
        // Answered: no longer in doubt, whatever the answer.
        if tag.is_some() {
            self.ledger.lock().unwrap().tags.get_mut(&key).expect("inserted above").in_flight = None;
        }
        self.expect(&r, 201, "manifest PUT")?;
        if r.header("docker-content-digest") != Some(digest.as_str()) {
            return Err(Stop::Failed(format!(
                "manifest PUT: Docker-Content-Digest {:?}",
                r.header("docker-content-digest")
            )));
        }
        let mut ledger = self.ledger.lock().unwrap();
        if tag.is_some() {
            ledger.tags.get_mut(&key).expect("inserted above").acked = Some(digest);
        }
        ledger.manifests.push(rec);
        Ok(None)
    }
}

/// The checks after a restart. Collects every problem instead of stopping at the first.
struct Checker<'a> {
    addr: SocketAddr,
    data_dir: PathBuf,
    problems: Vec<String>,
    /// Failures to resume an interrupted upload: reported at the end of the
    /// test, so that they do not hide the other checks (see `resume_uploads`).
    resume_problems: Vec<String>,
    ledger: &'a mut Ledger,
}

impl Checker<'_> {
    fn get(&mut self, method: &str, target: &str, headers: &[(&str, &str)]) -> Option<Response> {
        match request(self.addr, method, target, headers, &[]) {
            Ok(r) => Some(r),
            Err(e) => {
                self.problems.push(format!("{method} {target}: {e}"));
                None
            }
        }
    }

    fn blob(&mut self, repo: &str, digest: &str, full: bool) {
        let data = self.ledger.blobs[digest];
        let target = format!("/v2/{repo}/blobs/{digest}");
        let Some(r) = self.get(if full { "GET" } else { "HEAD" }, &target, &[]) else { return };
        if r.status != 200 {
            self.problems.push(format!("acknowledged blob lost: {target} -> {}", r.status));
            return;
        }
        if r.header("docker-content-digest") != Some(digest) {
            self.problems.push(format!("{target}: Docker-Content-Digest {:?}", r.header("docker-content-digest")));
        }
        if r.header("content-length") != Some(data.len.to_string().as_str()) {
            self.problems.push(format!("{target}: Content-Length {:?}, want {}", r.header("content-length"), data.len));
        }
        if full && r.body != blob_bytes(data.seed, data.len) {
            self.problems.push(format!(
                "{target}: content differs ({} bytes, digest {})",
                r.body.len(),
                sha256(&r.body)
            ));
        }
    }

    fn manifest(&mut self, m: &ManifestRec) {
        let target = format!("/v2/{}/manifests/{}", m.repo, m.digest);
        let Some(r) = self.get("GET", &target, &[("Accept", ACCEPT_ALL_MANIFESTS)]) else { return };
        if r.status != 200 || r.body != m.body {
            self.problems.push(format!("acknowledged manifest lost or changed: {target} -> {}", r.status));
        } else if r.header("content-type") != Some(m.media_type) {
            self.problems.push(format!("{target}: Content-Type {:?}, want {}", r.header("content-type"), m.media_type));
        }
    }

    /// (a) for tags: each resolves to its last acknowledged manifest or to
    /// the one in flight at the kill; the ledger then records what it is.
    fn tags(&mut self) {
        let keys: Vec<_> = self.ledger.tags.keys().cloned().collect();
        for key in keys {
            let rec = self.ledger.tags[&key].clone();
            let (repo, tag) = &key;
            let target = format!("/v2/{repo}/manifests/{tag}");
            let Some(r) = self.get("GET", &target, &[("Accept", ACCEPT_ALL_MANIFESTS)]) else { continue };
            let got = (r.status == 200).then(|| r.header("docker-content-digest").unwrap_or("").to_owned());
            let in_flight = rec.in_flight.as_ref().map(|m| m.digest.clone());
            if got.is_some() && got != rec.acked && got != in_flight {
                self.problems.push(format!("{target} -> {got:?}; acked {:?}, in flight {in_flight:?}", rec.acked));
                continue;
            }
            if got.is_none() && rec.acked.is_some() {
                self.problems.push(format!("{target} -> {} but {:?} was acknowledged", r.status, rec.acked));
                continue;
            }
            if let (Some(g), Some(m)) = (&got, &rec.in_flight) {
                if *g == m.digest {
                    if r.body != m.body {
                        self.problems.push(format!("{target}: body differs from the manifest PUT"));
                    }
                    // It landed unacknowledged; from now on it must stay.
                    self.ledger.manifests.push(m.clone());
                }
            }
            let entry = self.ledger.tags.get_mut(&key).expect("key from the map");
            entry.acked = got;
            entry.in_flight = None;
        }
    }

    /// (b) every tag of every repository resolves to a manifest whose blobs exist.
    fn walk(&mut self) {
        let Some(r) = self.get("GET", "/v2/_catalog?n=1000", &[]) else { return };
        let catalog: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let repos: BTreeSet<String> = catalog["repositories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let acked_repos: Vec<String> = self.ledger.repo_blobs.keys().cloned().collect();
        for repo in acked_repos {
            if !repos.contains(&repo) {
                self.problems.push(format!("_catalog lacks {repo}, which has acknowledged blobs: {repos:?}"));
            }
        }
        for repo in repos {
            let Some(r) = self.get("GET", &format!("/v2/{repo}/tags/list?n=1000"), &[]) else { continue };
            let list: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let tags: Vec<String> =
                list["tags"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect();
            let mut checked = BTreeSet::new();
            for tag in tags {
                let target = format!("/v2/{repo}/manifests/{tag}");
                let Some(r) = self.get("GET", &target, &[("Accept", ACCEPT_ALL_MANIFESTS)]) else { continue };
                if r.status != 200 {
                    self.problems.push(format!("tag listed but does not resolve: {target} -> {}", r.status));
                    continue;
                }
                match referenced_blobs(&r.body) {
                    Err(e) => self.problems.push(format!("{target}: {e}")),
                    Ok(digests) => {
                        for d in digests {
                            if !checked.insert(d.clone()) {
                                continue;
                            }
                            let t = format!("/v2/{repo}/blobs/{d}");
                            if let Some(r) = self.get("HEAD", &t, &[]) {
                                if r.status != 200 {
                                    self.problems
                                        .push(format!("{target} references {d}, but HEAD {t} -> {}", r.status));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// (d) uploads survive a restart: each chunked upload the kill cut off
    /// reports at least the bytes acknowledged, resumes from the offset it
    /// reports, and completes with the right digest.
    fn resume_uploads(&mut self, round: usize) {
        for up in std::mem::take(&mut self.ledger.interrupted_uploads) {
            let bytes = blob_bytes(up.data.seed, up.data.len);
            let Some(r) = self.get("GET", &up.location, &[]) else { continue };
            if r.status == 404 {
                // The final PUT may have landed with its 201 lost in the
                // kill: then the session is rightly gone and the blob is in
                // the repository (and must stay there from now on).
                let blob = format!("/v2/{}/blobs/{}", up.repo, up.digest);
                if self.get("HEAD", &blob, &[]).is_some_and(|h| h.status == 200) {
                    self.ledger.ack_blob(up.repo, &up.digest, up.data, round);
                    self.blob(up.repo, &up.digest, true);
                    continue;
                }
            }
            if r.status != 204 {
                self.resume_problems.push(format!(
                    "interrupted upload {} ({} bytes acknowledged) not resumable: status {} {}",
                    up.location,
                    up.acked_offset,
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
                continue;
            }
            let offset = match r
                .header("range")
                .and_then(|v| v.strip_prefix("0-"))
                .and_then(|e| e.parse::<usize>().ok())
            {
                Some(0) => 0,
                Some(end) => end + 1,
                None => {
                    self.resume_problems.push(format!("upload status {}: Range {:?}", up.location, r.header("range")));
                    continue;
                }
            };
            if offset < up.acked_offset || offset > bytes.len() {
                self.resume_problems.push(format!(
                    "upload {} reports {offset} bytes after the restart; {} were acknowledged, the blob has {}",
                    up.location,
                    up.acked_offset,
                    bytes.len()
                ));
                continue;
            }
            let mut loc = path_of(r.header("location").unwrap_or(&up.location));
            if offset < bytes.len() {
                let range = format!("{offset}-{}", bytes.len() - 1);
                let headers = [("Content-Type", "application/octet-stream"), ("Content-Range", range.as_str())];
                match request(self.addr, "PATCH", &loc, &headers, &bytes[offset..]) {
                    Ok(r) if r.status == 202 => loc = path_of(r.header("location").unwrap_or(&loc)),
                    Ok(r) => {
                        self.resume_problems.push(format!("resume PATCH {loc} from {offset}: status {}", r.status));
                        continue;
                    }
                    Err(e) => {
                        self.resume_problems.push(format!("resume PATCH {loc}: {e}"));
                        continue;
                    }
                }
            }
            let Some(r) = self.get("PUT", &with_query(&loc, &format!("digest={}", up.digest)), &[]) else { continue };
            if r.status != 201 {
                let on_disk = find_blob_file(&self.data_dir, up.digest.trim_start_matches("sha256:"));
                self.resume_problems.push(format!(
                    "resumed upload {loc} (status said {offset} of {} bytes, {} acknowledged): PUT ?digest= -> {} {}; \
                     blob file in the store: {}",
                    bytes.len(),
                    up.acked_offset,
                    r.status,
                    String::from_utf8_lossy(&r.body),
                    on_disk.map(|p| p.display().to_string()).unwrap_or_else(|| "none".into()),
                ));
                continue;
            }
            self.ledger.ack_blob(up.repo, &up.digest, up.data, round);
            self.ledger.resumed += 1;
            self.blob(up.repo, &up.digest, true);
        }
    }

    /// (c) the server works: base, a push and pull, an upload session.
    fn answers(&mut self, rng: &mut StdRng) {
        if let Some(r) = self.get("GET", "/v2/", &[]) {
            if r.status != 200 {
                self.problems.push(format!("GET /v2/ -> {}", r.status));
            }
        }
        let bytes = blob_bytes(rng.random(), 4096);
        let digest = sha256(&bytes);
        let repo = "crash/probe";
        match request(self.addr, "POST", &format!("/v2/{repo}/blobs/uploads/?digest={digest}"), &[], &bytes) {
            Ok(r) if r.status == 201 => match self.get("GET", &format!("/v2/{repo}/blobs/{digest}"), &[]) {
                Some(r) if r.status == 200 && r.body == bytes => {}
                Some(r) => self.problems.push(format!("probe blob pull -> {}", r.status)),
                None => {}
            },
            Ok(r) => self.problems.push(format!("probe push -> {} {}", r.status, String::from_utf8_lossy(&r.body))),
            Err(e) => self.problems.push(format!("probe push: {e}")),
        }
        match request(self.addr, "POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[]) {
            Ok(r) if r.status == 202 => {
                let loc = path_of(r.header("location").unwrap_or(""));
                let status = self.get("GET", &loc, &[]).map(|r| r.status);
                let cancel = self.get("DELETE", &loc, &[]).map(|r| r.status);
                if status != Some(204) || cancel != Some(204) {
                    self.problems.push(format!("upload session {loc}: status {status:?}, cancel {cancel:?}"));
                }
            }
            Ok(r) => self.problems.push(format!("POST upload -> {}", r.status)),
            Err(e) => self.problems.push(format!("POST upload: {e}")),
        }
    }
}

/// The committed file of blob `hex` anywhere under `dir` (a directory named
/// by the hex holding a `data` file), for diagnostics.
fn find_blob_file(dir: &Path, hex: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if entry.file_name() == hex && path.join("data").is_file() {
            return Some(path.join("data"));
        }
        if let Some(found) = find_blob_file(&path, hex) {
            return Some(found);
        }
    }
    None
}

fn sample<T: Clone>(rng: &mut StdRng, items: &[T], n: usize) -> Vec<T> {
    if items.len() <= n {
        return items.to_vec();
    }
    (0..n).map(|_| items[rng.random_range(0..items.len())].clone()).collect()
}

fn verify_round(
    addr: SocketAddr,
    data_dir: PathBuf,
    ledger: &mut Ledger,
    round: usize,
    rng: &mut StdRng,
) -> (Vec<String>, Vec<String>) {
    let pairs: Vec<(String, String, usize)> = ledger
        .repo_blobs
        .iter()
        .flat_map(|(r, list)| list.iter().map(move |(d, round)| (r.clone(), d.clone(), *round)))
        .collect();
    let (new, old): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|(_, _, r)| *r == round);
    let old = sample(rng, &old, OLD_SAMPLE);
    let manifests = ledger.manifests.clone();
    let (new_m, old_m): (Vec<_>, Vec<_>) = manifests.into_iter().partition(|m| m.round == round);
    let old_m = sample(rng, &old_m, OLD_SAMPLE);
    let mut c = Checker { addr, data_dir, problems: Vec::new(), resume_problems: Vec::new(), ledger };
    c.resume_uploads(round);
    for (repo, digest, _) in &new {
        c.blob(repo, digest, true);
    }
    for (repo, digest, _) in &old {
        c.blob(repo, digest, false);
    }
    for m in new_m.iter().chain(&old_m) {
        c.manifest(m);
    }
    c.tags();
    c.walk();
    c.answers(rng);
    (c.problems, c.resume_problems)
}

fn verify_everything(addr: SocketAddr, data_dir: PathBuf, ledger: &mut Ledger) -> Vec<String> {
    let pairs: Vec<(String, String)> =
        ledger.repo_blobs.iter().flat_map(|(r, list)| list.iter().map(move |(d, _)| (r.clone(), d.clone()))).collect();
    let manifests = ledger.manifests.clone();
    let mut c = Checker { addr, data_dir, problems: Vec::new(), resume_problems: Vec::new(), ledger };
    for (repo, digest) in &pairs {
        c.blob(repo, digest, true);
    }
    for m in &manifests {
        c.manifest(m);
    }
    c.tags();
    c.walk();
    c.problems
}

#[test]
fn kill9_while_pushing_loses_nothing_acknowledged() {
    let seed: u64 = match std::env::var("BERTH_CRASH_SEED") {
        Ok(s) => s.parse().expect("BERTH_CRASH_SEED must be a u64"),
        Err(_) => rand::random(),
    };
    println!("crash test seed: {seed} (replay with BERTH_CRASH_SEED={seed})");
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let opts = BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth"));
    let mut server = BerthServer::start(opts).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let fail = |server: &BerthServer, round: usize, problems: &[String]| -> ! {
        let log = server.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        panic!(
            "crash test failed (seed {seed}, round {round}):\n  {}\n--- berth log tail ---\n{}",
            problems.join("\n  "),
            tail.join("\n")
        );
    };

    let mut kill_delays = Vec::new();
    let mut resume_problems = Vec::new();
    for round in 0..ROUNDS {
        let killing = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let client = Client {
                    id,
                    round,
                    addr: server.addr(),
                    rng: StdRng::seed_from_u64(seed ^ ((round as u64) << 16) ^ id as u64),
                    ledger: ledger.clone(),
                    killing: killing.clone(),
                    upload: None,
                };
                thread::spawn(move || client.run())
            })
            .collect();
        let delay = rng.random_range(KILL_DELAY_MS);
        kill_delays.push(delay);
        thread::sleep(Duration::from_millis(delay));
        killing.store(true, Ordering::SeqCst);
        server.kill9();
        for c in clients {
            c.join().expect("client thread panicked");
        }
        let mut guard = ledger.lock().unwrap();
        if !guard.failures.is_empty() {
            let failures = std::mem::take(&mut guard.failures);
            drop(guard);
            fail(&server, round, &failures);
        }
        drop(guard);
        if let Err(e) = server.restart() {
            fail(&server, round, &[format!("restart after kill -9 failed: {e}")]);
        }
        let mut guard = ledger.lock().unwrap();
        let (problems, resume) = verify_round(server.addr(), server.data_dir().to_owned(), &mut guard, round, &mut rng);
        resume_problems.extend(resume.into_iter().map(|p| format!("round {round}: {p}")));
        drop(guard);
        if !problems.is_empty() {
            fail(&server, round, &problems);
        }
    }

    let mut guard = ledger.lock().unwrap();
    let problems = verify_everything(server.addr(), server.data_dir().to_owned(), &mut guard);
    if !problems.is_empty() {
        drop(guard);
        fail(&server, ROUNDS, &problems);
    }
    let blobs: usize = guard.repo_blobs.values().map(Vec::len).sum();
    let bytes: usize = guard.blobs.values().map(|b| b.len).sum();
    println!(
        "{ROUNDS} kill -9s in {:.1}s; acknowledged: {blobs} (repository, blob) pairs ({} distinct blobs, {:.1} MiB), \
         {} manifests, {} tags; interrupted uploads resumed: {}; mount fallbacks: {}",
        started.elapsed().as_secs_f64(),
        guard.blobs.len(),
        bytes as f64 / (1024.0 * 1024.0),
        guard.manifests.len(),
        guard.tags.len(),
        guard.resumed,
        guard.mount_fallbacks
    );
    for (op, (acked, interrupted)) in &guard.stats {
        println!("  {op:<14} acknowledged {acked:>5}, interrupted by the kill {interrupted:>3}");
    }
    println!("  kill delays (ms): {kill_delays:?}");
    assert_eq!(guard.mount_fallbacks, 0, "seed {seed}: a mount of an acknowledged blob fell back to an upload");
    assert!(
        resume_problems.is_empty(),
        "seed {seed}: {} of {} interrupted uploads could not be resumed after the restart \
         (issue 12: uploads are resumable across a restart):\n  {}",
        resume_problems.len(),
        resume_problems.len() + guard.resumed,
        resume_problems.join("\n  ")
    );
}
