//! The crash test's ledger: what the server acknowledged, shared by the
//! pushing clients ([`crate::workload`]) and the checks after each restart
//! ([`crate::checks`]). Blob contents are derived from a per-blob seed, so the
//! ledger stays small.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::{MAX_BLOB, MIN_BLOB};

/// Blob contents are a function of (seed, len): regenerate instead of keeping them.
pub fn blob_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill(&mut data[..]);
    data
}

/// Log-uniform in [MIN_BLOB, MAX_BLOB]: mostly small, some large.
pub fn blob_len(rng: &mut StdRng) -> usize {
    let (lo, hi) = ((MIN_BLOB as f64).ln(), (MAX_BLOB as f64).ln());
    (rng.random_range(lo..=hi).exp() as usize).clamp(MIN_BLOB, MAX_BLOB)
}

#[derive(Debug, Clone, Copy)]
pub struct BlobData {
    pub seed: u64,
    pub len: usize,
}

#[derive(Debug, Clone)]
pub struct ManifestRec {
    pub repo: String,
    pub digest: String,
    pub media_type: &'static str,
    pub body: Vec<u8>,
    pub round: usize,
}

#[derive(Debug, Default, Clone)]
pub struct TagRec {
    /// Last acknowledged manifest for the tag.
    pub acked: Option<String>,
    /// A PUT sent but never answered: it may or may not have landed.
    pub in_flight: Option<ManifestRec>,
}

/// What the server acknowledged, shared by the clients and the checker.
#[derive(Default)]
pub struct Ledger {
    pub blobs: HashMap<String, BlobData>,
    /// Acknowledged (repository, digest) pairs with the round that acked them.
    pub repo_blobs: BTreeMap<String, Vec<(String, usize)>>,
    pub manifests: Vec<ManifestRec>,
    pub tags: BTreeMap<(String, String), TagRec>,
    /// Per op kind: (acknowledged, interrupted by the kill).
    pub stats: BTreeMap<&'static str, (usize, usize)>,
    /// Mounts of an acknowledged blob that fell back to an upload (202).
    pub mount_fallbacks: usize,
    /// Failures seen by clients before the kill (wrong status, I/O error).
    pub failures: Vec<String>,
    /// Chunked uploads the kill interrupted, to resume after the restart.
    pub interrupted_uploads: Vec<PendingUpload>,
    /// Interrupted uploads resumed and completed after a restart.
    pub resumed: usize,
}

/// A chunked upload in progress: its session and the bytes acknowledged so far.
#[derive(Debug, Clone)]
pub struct PendingUpload {
    pub repo: &'static str,
    pub location: String,
    pub data: BlobData,
    pub digest: String,
    pub acked_offset: usize,
}

impl Ledger {
    pub fn ack_blob(&mut self, repo: &str, digest: &str, data: BlobData, round: usize) {
        self.blobs.entry(digest.to_owned()).or_insert(data);
        let list = self.repo_blobs.entry(repo.to_owned()).or_default();
        if !list.iter().any(|(d, _)| d == digest) {
            list.push((digest.to_owned(), round));
        }
    }
}
