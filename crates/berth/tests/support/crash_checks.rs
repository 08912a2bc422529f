//! The crash test's checks after each restart ((a)–(d) of the test's
//! docs) and at the end, against the [`Ledger`]. They collect every problem
//! instead of stopping at the first.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use berth_testkit::http::{request, Response};
use rand::rngs::StdRng;
use rand::Rng;

use crate::ledger::{blob_bytes, Ledger, ManifestRec};
use crate::support::{path_of, referenced_blobs, sha256, with_query, ACCEPT_ALL_MANIFESTS};
use crate::OLD_SAMPLE;

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

pub fn verify_round(
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

pub fn verify_everything(addr: SocketAddr, data_dir: PathBuf, ledger: &mut Ledger) -> Vec<String> {
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
