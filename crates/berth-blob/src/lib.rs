//! Blob storage: where layer and config bytes live, addressed by digest.
//!
//! The [`BlobStore`] trait is deliberately narrow: uploads (append with
//! inline hashing, commit under a digest, cancel) and reads of committed
//! blobs. It knows nothing of repositories, manifests or HTTP: which blobs a
//! repository may see is metadata, kept by `berth-meta`. Depends only on
//! `berth-oci`.

mod error;
mod fs;
mod stream;

pub use error::StoreError;
pub use fs::FsBlobStore;
pub use stream::ByteStream;

use async_trait::async_trait;
use berth_oci::{Algorithm, ByteRange, Digest, Hasher};

/// What an append did: the upload's new length and the hash state after it.
pub struct Appended {
    pub len: u64,
    pub hasher: Hasher,
}

/// A committed blob opened for reading.
pub enum BlobReader {
    /// A local file: the server may stream it from a blocking thread or hand
    /// it to `sendfile`. `offset` and `len` select the bytes to send; `size`
    /// is the whole file's, for the caller to check against its records.
    File { file: std::fs::File, offset: u64, len: u64, size: u64 },
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Creates the (empty) staging area of a new upload.
    async fn create_upload(&self, upload: &str) -> Result<(), StoreError>;

    /// Appends `body` to an upload that holds `offset` acknowledged bytes,
    /// updating `hasher` as it goes; at most `limit` bytes are accepted.
    /// Bytes beyond `offset` left by an interrupted append are discarded
    /// first. On error the upload is cut back to `offset`, so the client can
    /// retry from the last acknowledged byte. Returns once the data is durable.
    async fn append(
        &self,
        upload: &str,
        offset: u64,
        hasher: Hasher,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<Appended, StoreError>;

    /// Hashes the first `len` bytes of an upload with another algorithm (a
    /// client may name a sha512 digest only at the end of an upload).
    async fn hash_upload(&self, upload: &str, len: u64, algorithm: Algorithm) -> Result<Digest, StoreError>;

    /// Makes the first `len` bytes of an upload the durable blob `digest`
    /// (already verified). Idempotent: if an earlier call got as far as the
    /// rename, this one succeeds too.
    async fn commit_upload(&self, upload: &str, len: u64, digest: &Digest) -> Result<(), StoreError>;

    /// Discards an upload's staged bytes. Missing uploads are not an error.
    async fn delete_upload(&self, upload: &str) -> Result<(), StoreError>;

    /// The size of a committed blob, if present.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;

    /// Opens a committed blob, optionally a range of it.
    async fn open(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobReader, StoreError>;

    /// Removes a committed blob. Missing blobs are not an error.
    async fn delete(&self, digest: &Digest) -> Result<(), StoreError>;
}
