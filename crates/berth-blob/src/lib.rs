//! Blob storage: where layer and config bytes live, addressed by digest.
//!
//! The [`BlobStore`] trait is deliberately narrow: uploads (append with
//! inline hashing, commit under a digest, cancel) and reads of committed
//! blobs. It knows nothing of repositories, manifests or HTTP: which blobs a
//! repository may see is metadata, kept by `berth-meta`. Depends only on
//! `berth-oci`.
//!
//! Implementations: [`FsBlobStore`] (a local directory) and
//! [`s3::S3BlobStore`] (S3-compatible object storage). Both run the one
//! behaviour suite in [`test_suite`] through [`blobstore_test_suite!`].

mod error;
mod fs;
pub mod s3;
mod stream;
#[doc(hidden)]
pub mod test_suite;

pub use error::StoreError;
pub use fs::FsBlobStore;
pub use stream::{file_stream, ByteStream};

use async_trait::async_trait;
use berth_oci::{Algorithm, ByteRange, Digest, Hasher};

/// What an append did: the upload's new length, the hash state after it,
/// and the store's own state of the upload after it.
pub struct Appended {
    pub len: u64,
    pub hasher: Hasher,
    /// Opaque to the caller, who records it with `len` (in the same
    /// compare-and-set) and passes it back to the next `append`,
    /// `hash_upload` and `commit_upload` of the upload. Empty for stores
    /// that keep no such state (the filesystem); the S3 store keeps its
    /// multipart upload id, part ETags and tail object here, so that any
    /// node can continue the upload.
    pub store_state: Vec<u8>,
}

/// A committed blob opened for reading.
pub enum BlobReader {
    /// A local file: the server may stream it from a blocking thread or hand
    /// it to `sendfile`. `offset` and `len` select the bytes to send; `size`
    /// is the whole file's, for the caller to check against its records.
    File { file: std::fs::File, offset: u64, len: u64, size: u64 },
    /// Bytes streamed from a remote store: exactly `len` bytes (the range
    /// asked for, or the whole blob); `size` is the whole blob's.
    Stream { body: ByteStream, len: u64, size: u64 },
    /// A URL (presigned, time-limited) the client may fetch the blob from
    /// directly; the server answers `307 Temporary Redirect` to it. `size`
    /// is the stored blob's, for the caller to check against its records.
    Redirect { url: String, size: u64 },
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// The name of Distribution's driver for the same storage (`filesystem`,
    /// `s3aws`), the `driver` label of the storage metrics.
    fn driver_name(&self) -> &'static str {
        "filesystem"
    }

    /// Creates the (empty) staging area of a new upload.
    async fn create_upload(&self, upload: &str) -> Result<(), StoreError>;

    /// Appends `body` to an upload that holds `offset` acknowledged bytes,
    /// updating `hasher` as it goes; at most `limit` bytes are accepted.
    /// `state` is the `store_state` recorded with `offset` (empty for a new
    /// upload). Bytes beyond `offset` left by an interrupted append are
    /// discarded first. On error the upload is cut back to `offset`, so the
    /// client can retry from the last acknowledged byte. Returns once the
    /// data is durable.
    async fn append(
        &self,
        upload: &str,
        offset: u64,
        state: &[u8],
        hasher: Hasher,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<Appended, StoreError>;

    /// Hashes the first `len` bytes of an upload with another algorithm (a
    /// client may name a sha512 digest only at the end of an upload).
    /// `state` as recorded with `len`. The upload accepts no further appends
    /// afterwards (the S3 store assembles its staging object here).
    async fn hash_upload(
        &self,
        upload: &str,
        len: u64,
        state: &[u8],
        algorithm: Algorithm,
    ) -> Result<Digest, StoreError>;

    /// Makes the first `len` bytes of an upload the durable blob `digest`
    /// (already verified). `state` as recorded with `len`. Idempotent: if an
    /// earlier call got as far as making the blob visible, this one succeeds
    /// too.
    async fn commit_upload(&self, upload: &str, len: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError>;

    /// Discards an upload's staged bytes. Missing uploads are not an error.
    async fn delete_upload(&self, upload: &str) -> Result<(), StoreError>;

    /// Ids of uploads staged before `before_ms` (Unix milliseconds; the
    /// filesystem counts from the last write, S3 from `create_upload`), at
    /// most `limit`. The upload purge removes those no session names: a crash
    /// between [`BlobStore::create_upload`] and recording the session leaves
    /// such orphans, which nothing else would ever remove.
    async fn staged_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<String>, StoreError>;

    /// The size of a committed blob, if present.
    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError>;

    /// Opens a committed blob, optionally a range of it.
    async fn open(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobReader, StoreError>;

    /// Removes a committed blob. Missing blobs are not an error.
    async fn delete(&self, digest: &Digest) -> Result<(), StoreError>;

    /// Removes many committed blobs (garbage collection). Missing blobs are
    /// not an error. By default [`BlobStore::delete`]s, a few at a time;
    /// the S3 store sends one `DeleteObjects` per 1,000.
    async fn delete_many(&self, digests: &[Digest]) -> Result<(), StoreError> {
        use futures_util::StreamExt;
        let mut results =
            futures_util::stream::iter(0..digests.len()).map(|i| self.delete(&digests[i])).buffer_unordered(8);
        while let Some(r) = results.next().await {
            r?;
        }
        Ok(())
    }

    /// Moves a committed blob out of its content address into
    /// `berth/quarantine/` (scrub found it corrupt): never served again,
    /// kept for inspection. Missing blobs are not an error.
    async fn quarantine(&self, digest: &Digest) -> Result<(), StoreError>;
}
