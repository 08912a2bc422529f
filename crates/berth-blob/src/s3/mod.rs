//! The S3 blob store: blobs in S3-compatible object storage (AWS S3, Garage,
//! MinIO, Ceph RGW …), so that several Berth nodes serve one registry.
//!
//! # Library
//! `aws-sdk-s3`, used only inside this module. A resumable upload needs the
//! multipart primitives themselves (CreateMultipartUpload, UploadPart,
//! UploadPartCopy, CompleteMultipartUpload with recorded ETags), which the
//! SDK exposes one to one; OpenDAL's writer hides the multipart upload id
//! and part list inside one process and cannot be resumed on another node.
//! The SDK also brings presigning and a retry strategy (exponential backoff
//! with jitter, throttling errors such as `SlowDown` and 503 classified as
//! retryable). Its HTTP stack is replaced by reqwest (see `http.rs`).
//!
//! # Layout
//! Under `rootdirectory`, Distribution's: committed blobs at
//! `docker/registry/v2/blobs/<alg>/<xx>/<hex>/data`. Uploads under
//! `berth/uploads/<id>/`: `startedat` (exists while the upload does),
//! `data` (the multipart upload's object), `tail-<offset>-<nonce>` objects.
//!
//! # Uploads as multipart uploads
//! An append hashes the body as it arrives (the caller's `Hasher`) and cuts
//! it into parts of `chunksize`; one part fills while the previous one
//! uploads, so an append holds at most two parts in memory, never a layer.
//! At the end of an append the remainder must be durable too:
//! - at least 5 MiB (S3's minimum part): it becomes a part of its own;
//! - less: it is written as a small *tail object* under a fresh name.
//!
//! The next append reads the tail back (under 5 MiB, by construction) and
//! puts it in front of its first part: a part cannot be assembled from a
//! copied range plus new bytes, and UploadPartCopy of a tail below 5 MiB
//! would make a part that is too small unless it is the last. At the end of
//! the upload it *is* the last, so there the tail is folded in server-side
//! with UploadPartCopy, then CompleteMultipartUpload. Clients that send
//! 5 MiB chunks or one streamed PATCH (docker) never re-read anything;
//! clients sending small chunks re-read under 5 MiB per chunk. A blob that
//! never reached a full part never starts a multipart upload: its tail
//! object is the whole content.
//!
//! # Resuming anywhere
//! Everything needed to continue (multipart upload id, part numbers, ETags
//! and sizes, the tail object's name) is the upload's *state*, returned by
//! `append` as `Appended::store_state` and recorded by the caller with the
//! offset and hash state in one compare-and-set; any node handed it back
//! continues exactly there. Nothing written for an append that was never
//! acknowledged is referenced: its parts are overwritten by the next append
//! (same part numbers) or left out of the completion, its tail objects are
//! never named, so bytes past the acknowledged offset are discarded as the
//! trait requires. Tails are written once and never overwritten, so a state
//! stays valid until a later one is acknowledged; superseded tails are
//! deleted by the append that starts from the state superseding them. A
//! stray concurrent append that overwrote an acknowledged part is caught by
//! CompleteMultipartUpload's ETag check instead of committing other bytes.
//!
//! # Commit
//! Assemble the staging object (above), then copy it server-side to the
//! blob's key (CopyObject, or a multipart copy past 5 GiB): an S3 object
//! appears whole or not at all, so the blob is visible only complete.
//! Then the upload's objects are removed: for an upload that never reached a
//! full part (every small blob), by the names its state gives, without
//! listing (on Garage a listing under a prefix costs time in proportion to
//! the keys and tombstones sorted after it, so two listings per commit
//! slowed pushes as the bucket grew); for a multipart upload, by listing
//! the prefix and its multipart uploads, which also catches one a killed
//! node started. Whatever an unacknowledged append left beside a small
//! upload is reported by `staged_uploads` and removed by the purge.
//! Idempotent: a blob already at its key with the expected size means an earlier commit (or another upload of the same
//! content) got there first.
//!
//! # Reads
//! Ranged GETs streamed through, or (`S3Config::redirect`) a presigned GET
//! URL after a HEAD that proves the object is there, for a 307.

mod config;
mod http;
mod state;
mod upload;

pub use config::{S3Config, S3ConfigError, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};

use crate::{Appended, BlobReader, BlobStore, ByteStream, StoreError};
use async_trait::async_trait;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use berth_oci::{Algorithm, ByteRange, Digest, Hasher};
use futures_util::StreamExt;
use std::io;
use std::time::Duration;

/// A blob store in one S3 bucket. Cheap to share: the client is pooled.
#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    prefix: String,
    chunk: usize,
    redirect: Option<Duration>,
}

impl std::fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3BlobStore").field("bucket", &self.bucket).field("prefix", &self.prefix).finish()
    }
}

impl S3BlobStore {
    /// Builds the client; no request is made (see [`S3BlobStore::check`]).
    pub fn new(cfg: &S3Config) -> Result<Self, S3ConfigError> {
        cfg.validate()?;
        let mut conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(cfg.region.clone()))
            .credentials_provider(Credentials::new(&cfg.accesskey, &cfg.secretkey, None, None, "berth-config"))
            .force_path_style(cfg.forcepathstyle)
            .http_client(http::client(cfg).map_err(S3ConfigError)?)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(cfg.max_attempts)
                    .with_initial_backoff(Duration::from_millis(100))
                    .with_max_backoff(Duration::from_secs(20)),
            )
            .timeout_config(TimeoutConfig::builder().connect_timeout(Duration::from_secs(10)).build())
            // Checksums only where the API requires them: S3-compatible
            // servers differ in which flexible checksums they accept.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            // A slow client pulling through us stalls the download on
            // purpose; stalls of S3 itself are caught by the read timeout.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
        if let Some(url) = cfg.endpoint_url() {
            conf = conf.endpoint_url(url);
        }
        Ok(S3BlobStore {
            client: Client::from_conf(conf.build()),
            bucket: cfg.bucket.clone(),
            prefix: cfg.key_prefix(),
            chunk: cfg.chunksize as usize,
            redirect: cfg.redirect.then_some(cfg.redirect_expiry),
        })
    }

    /// One request proving the bucket is reachable with these credentials
    /// (for start-up: fail then, not on the first push).
    pub async fn check(&self) -> Result<(), StoreError> {
        let prefix = format!("{}docker/", self.prefix);
        let req = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).max_keys(1);
        req.send().await.map(|_| ()).map_err(|e| s3_error("ListObjectsV2", e))
    }

    fn blob_key(&self, digest: &Digest) -> String {
        let hex = digest.hex();
        format!("{}docker/registry/v2/blobs/{}/{}/{}/data", self.prefix, digest.algorithm().as_str(), &hex[..2], hex)
    }

    /// `…/berth/uploads/<id>/`, for a well-formed upload id.
    fn upload_dir(&self, upload: &str) -> Result<String, StoreError> {
        // Upload ids come from URLs: never let one name a key elsewhere.
        let safe =
            !upload.is_empty() && upload.len() <= 64 && upload.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !safe {
            return Err(StoreError::UploadNotFound(upload.to_owned()));
        }
        Ok(format!("{}berth/uploads/{upload}/", self.prefix))
    }

    /// Size of an object, `None` if absent.
    async fn head(&self, key: &str) -> Result<Option<u64>, StoreError> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(s3_error("HeadObject", e)),
        }
    }
}

/// HTTP status of a failed request, if it got an answer.
fn status<E>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// S3 error code (`NoSuchUpload`, `SlowDown` …) of a failed request.
fn code<E: ProvideErrorMetadata>(e: &SdkError<E, aws_smithy_runtime_api::http::Response>) -> Option<&str> {
    e.as_service_error().and_then(|s| s.code())
}

fn s3_error<E, R>(op: &str, e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Io(io::Error::other(format!("s3 {op}: {}", DisplayErrorContext(&e))))
}

fn corrupt(msg: String) -> StoreError {
    StoreError::Io(io::Error::new(io::ErrorKind::InvalidData, msg))
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn driver_name(&self) -> &'static str {
        "s3aws"
    }

    async fn create_upload(&self, upload: &str) -> Result<(), StoreError> {
        let key = format!("{}startedat", self.upload_dir(upload)?);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let body = aws_sdk_s3::primitives::ByteStream::from(now.as_millis().to_string().into_bytes());
        let req = self.client.put_object().bucket(&self.bucket).key(key).body(body);
        req.send().await.map(|_| ()).map_err(|e| s3_error("PutObject", e))
    }

    async fn append(
        &self,
        upload: &str,
        offset: u64,
        state: &[u8],
        hasher: Hasher,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<Appended, StoreError> {
        self.append_upload(upload, offset, state, hasher, body, limit).await
    }

    async fn hash_upload(
        &self,
        upload: &str,
        len: u64,
        state: &[u8],
        algorithm: Algorithm,
    ) -> Result<Digest, StoreError> {
        let mut hasher = Hasher::new(algorithm);
        if let Some(key) = self.assemble(upload, len, state).await?.filter(|_| len > 0) {
            let mut body = self.get(&key, Some(ByteRange { start: 0, end: len - 1 })).await?.0;
            while let Some(chunk) = body.next().await {
                hasher.update(&chunk?);
            }
        }
        Ok(hasher.finish())
    }

    async fn commit_upload(&self, upload: &str, len: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError> {
        self.commit(upload, len, state, digest).await
    }

    async fn delete_upload(&self, upload: &str) -> Result<(), StoreError> {
        let dir = self.upload_dir(upload)?;
        self.remove_upload(&dir, None).await
    }

    async fn staged_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        // Every upload has its `startedat` marker from `create_upload` until
        // it is removed (the marker goes last); its age is the marker's. A
        // commit removes only the objects its state names, so an append that
        // was never acknowledged can leave objects (aged by the newest) or a
        // multipart upload (aged by its initiation) without a marker: those
        // are reported too, for the purge to remove by listing.
        let root = format!("{}berth/uploads/", self.prefix);
        // id → (marker's time, newest object's time)
        let mut dirs: std::collections::BTreeMap<String, (Option<i64>, i64)> = Default::default();
        let mut token = None;
        loop {
            let req = self.client.list_objects_v2().bucket(&self.bucket).prefix(&root).set_continuation_token(token);
            let page = req.send().await.map_err(|e| s3_error("ListObjectsV2", e))?;
            for o in page.contents() {
                let Some((id, name)) = o.key().and_then(|k| k.strip_prefix(&root)?.split_once('/')) else {
                    continue;
                };
                let modified = o.last_modified().and_then(|t| t.to_millis().ok()).unwrap_or(i64::MAX);
                let entry = dirs.entry(id.to_owned()).or_insert((None, i64::MIN));
                if name == "startedat" {
                    entry.0 = Some(modified);
                }
                entry.1 = entry.1.max(modified);
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let req = self.client.list_multipart_uploads().bucket(&self.bucket).prefix(&root);
            let page = req
                .set_key_marker(key_marker)
                .set_upload_id_marker(id_marker)
                .send()
                .await
                .map_err(|e| s3_error("ListMultipartUploads", e))?;
            for u in page.uploads() {
                let Some((id, _)) = u.key().and_then(|k| k.strip_prefix(&root)?.split_once('/')) else {
                    continue;
                };
                let initiated = u.initiated().and_then(|t| t.to_millis().ok()).unwrap_or(i64::MAX);
                let entry = dirs.entry(id.to_owned()).or_insert((None, i64::MIN));
                entry.1 = entry.1.max(initiated);
            }
            if !page.is_truncated().unwrap_or(false) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        let aged = dirs.into_iter().filter(|(_, (marker, newest))| marker.unwrap_or(*newest) < before_ms);
        Ok(aged.map(|(id, _)| id).take(limit).collect())
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.head(&self.blob_key(digest)).await
    }

    async fn open(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobReader, StoreError> {
        let key = self.blob_key(digest);
        if let Some(expiry) = self.redirect {
            let size = self.head(&key).await?.ok_or_else(|| StoreError::BlobNotFound(digest.to_string()))?;
            let presigning = PresigningConfig::expires_in(expiry).map_err(|e| StoreError::Io(io::Error::other(e)))?;
            let req = self.client.get_object().bucket(&self.bucket).key(&key);
            let presigned = req.presigned(presigning).await.map_err(|e| s3_error("presign GetObject", e))?;
            return Ok(BlobReader::Redirect { url: presigned.uri().to_owned(), size });
        }
        let (body, len, size) = self.get(&key, range).await.map_err(|e| match e {
            StoreError::BlobNotFound(_) => StoreError::BlobNotFound(digest.to_string()),
            e => e,
        })?;
        Ok(BlobReader::Stream { body, len, size })
    }

    async fn delete_many(&self, digests: &[Digest]) -> Result<(), StoreError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        const BATCH: usize = 1000;
        let mut batches = futures_util::stream::iter((0..digests.len()).step_by(BATCH))
            .map(|start| async move {
                let batch = &digests[start..digests.len().min(start + BATCH)];
                let objects = batch
                    .iter()
                    .map(|d| ObjectIdentifier::builder().key(self.blob_key(d)).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| StoreError::Io(io::Error::other(e)))?;
                let delete = Delete::builder()
                    .set_objects(Some(objects))
                    .quiet(true)
                    .build()
                    .map_err(|e| StoreError::Io(io::Error::other(e)))?;
                let out = self.client.delete_objects().bucket(&self.bucket).delete(delete).send().await;
                let out = out.map_err(|e| s3_error("DeleteObjects", e))?;
                match out.errors().iter().find(|e| e.code() != Some("NoSuchKey")) {
                    Some(e) => Err(StoreError::Io(io::Error::other(format!(
                        "s3 DeleteObjects: {}: {}",
                        e.key().unwrap_or("?"),
                        e.message().unwrap_or("failed")
                    )))),
                    None => Ok(()),
                }
            })
            .buffer_unordered(4);
        while let Some(r) = batches.next().await {
            r?;
        }
        Ok(())
    }

    async fn quarantine(&self, digest: &Digest) -> Result<(), StoreError> {
        let key = self.blob_key(digest);
        let target = format!("{}berth/quarantine/{}-{}", self.prefix, digest.algorithm().as_str(), digest.hex());
        let source = format!("{}/{}", self.bucket, key);
        let req = self.client.copy_object().bucket(&self.bucket).copy_source(source).key(target);
        match req.send().await {
            Err(e) if status(&e) == Some(404) => return Ok(()),
            Err(e) => return Err(s3_error("CopyObject", e)),
            Ok(_) => {}
        }
        self.delete(digest).await
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        let req = self.client.delete_object().bucket(&self.bucket).key(self.blob_key(digest));
        match req.send().await {
            Err(e) if status(&e) != Some(404) => Err(s3_error("DeleteObject", e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
