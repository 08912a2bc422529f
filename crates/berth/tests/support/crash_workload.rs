//! The crash test's pushing clients: each picks ops at random (single
//! `POST ?digest=`, `POST` + monolithic `PUT`, chunked `PATCH`es, mount,
//! manifest `PUT`) and records every acknowledgement in the [`Ledger`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use berth_testkit::http::{request, Response};
use rand::rngs::StdRng;
use rand::Rng;

use crate::ledger::{blob_bytes, blob_len, BlobData, Ledger, ManifestRec, PendingUpload};
use crate::support::{image_manifest, path_of, sha256, with_query, BlobRef, ManifestFormat};
use crate::{REPOS, TAGS_PER_CLIENT};

/// Why a client op stopped early.
enum Stop {
    /// Connection error or unexpected status while the kill flag was up.
    Killed,
    /// Something went wrong before the kill: a server bug.
    Failed(String),
}

pub struct Client {
    pub id: usize,
    pub round: usize,
    pub addr: SocketAddr,
    pub rng: StdRng,
    pub ledger: Arc<Mutex<Ledger>>,
    pub killing: Arc<AtomicBool>,
    /// The chunked upload under way, if any.
    pub upload: Option<PendingUpload>,
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

    pub fn run(mut self) {
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
