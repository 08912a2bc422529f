//! The upload machinery of the S3 store (the design is in `mod.rs`):
//! appends cut into parts and tails, assembly of the staging object,
//! commit by server-side copy, reads, and removal of an upload.

use super::state::{Part, Tail, UploadState};
use super::{code, corrupt, s3_error, status, S3BlobStore};
use crate::{Appended, ByteStream, StoreError};
use aws_sdk_s3::primitives::ByteStream as S3Body;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use berth_oci::{ByteRange, Digest, Hasher};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::io;
use tokio::task::JoinHandle;

/// S3's minimum size of every part but the last.
const MIN_PART: usize = super::MIN_CHUNK_SIZE as usize;
/// S3's limit on part numbers.
const MAX_PARTS: i32 = 10_000;
/// Largest object CopyObject copies in one request.
const MAX_SINGLE_COPY: u64 = 5 << 30;
/// Part size of a multipart copy beyond that.
const COPY_PART: u64 = 1 << 30;

/// A part upload running beside the body pump; aborted if dropped early.
struct InFlight(JoinHandle<Result<Part, StoreError>>);

impl InFlight {
    async fn join(mut self) -> Result<Part, StoreError> {
        (&mut self.0).await.map_err(|e| StoreError::Io(io::Error::other(e)))?
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn upload_part(
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    number: i32,
    data: Bytes,
) -> Result<Part, StoreError> {
    let size = data.len() as u64;
    let req = client.upload_part().bucket(bucket).key(key).upload_id(upload_id).part_number(number);
    let out =
        req.content_length(size as i64).body(S3Body::from(data)).send().await.map_err(|e| s3_error("UploadPart", e))?;
    let etag = out.e_tag().ok_or_else(|| corrupt("s3 UploadPart: no ETag in the answer".into()))?;
    Ok(Part { number, etag: etag.to_owned(), size })
}

/// `bucket/key` for `x-amz-copy-source`, percent-encoded except `/`.
fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = String::with_capacity(bucket.len() + key.len() + 1);
    for b in format!("{bucket}/{key}").bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl S3BlobStore {
    /// Fails with `UploadNotFound` unless the upload exists (committed and
    /// cancelled uploads do not).
    async fn require_upload(&self, dir: &str) -> Result<(), StoreError> {
        match self.head(&format!("{dir}startedat")).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::UploadNotFound(dir.trim_end_matches('/').rsplit('/').next().unwrap_or("").into())),
        }
    }

    /// The state recorded with `offset`, checked to account for exactly it.
    fn state_at(state: &[u8], offset: u64) -> Result<UploadState, StoreError> {
        let st = UploadState::decode(state)?;
        match st.len() {
            n if n < offset => Err(StoreError::UploadTruncated { expected: offset, actual: n }),
            n if n > offset => Err(corrupt(format!("s3 upload state holds {n} bytes, {offset} acknowledged"))),
            _ => Ok(st),
        }
    }

    async fn read_all(&self, key: &str) -> Result<BytesMut, StoreError> {
        let out = self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(|e| {
            if status(&e) == Some(404) {
                StoreError::UploadTruncated { expected: 0, actual: 0 }
            } else {
                s3_error("GetObject", e)
            }
        })?;
        let data = out.body.collect().await.map_err(|e| StoreError::Io(io::Error::other(e)))?;
        Ok(BytesMut::from(data.into_bytes().as_ref()))
    }

    async fn start_part(&self, dir: &str, st: &mut UploadState, data: Bytes) -> Result<InFlight, StoreError> {
        let key = format!("{dir}data");
        let upload_id = match &st.multipart {
            Some(id) => id.clone(),
            None => {
                let req = self.client.create_multipart_upload().bucket(&self.bucket).key(&key);
                let out = req.send().await.map_err(|e| s3_error("CreateMultipartUpload", e))?;
                let id = out.upload_id().ok_or_else(|| corrupt("s3 CreateMultipartUpload: no upload id".into()))?;
                st.multipart = Some(id.to_owned());
                id.to_owned()
            }
        };
        let number = st.next_part_number();
        if number > MAX_PARTS {
            return Err(StoreError::Io(io::Error::other(format!(
                "upload needs more than S3's {MAX_PARTS} parts: raise storage.s3.chunksize"
            ))));
        }
        let task = upload_part(self.client.clone(), self.bucket.clone(), key, upload_id, number, data);
        Ok(InFlight(tokio::spawn(task)))
    }

    pub(super) async fn append_upload(
        &self,
        upload: &str,
        offset: u64,
        state: &[u8],
        mut hasher: Hasher,
        mut body: ByteStream,
        limit: Option<u64>,
    ) -> Result<Appended, StoreError> {
        let dir = self.upload_dir(upload)?;
        let mut st = Self::state_at(state, offset)?;
        self.require_upload(&dir).await?;
        // Being called with this state means it was acknowledged: what it
        // superseded can go.
        for name in std::mem::take(&mut st.garbage) {
            let _ = self.client.delete_object().bucket(&self.bucket).key(format!("{dir}{name}")).send().await;
        }
        let mut old_tail = st.tail.take();
        let mut buf = BytesMut::new();
        let mut total: u64 = 0;
        let mut inflight: Option<InFlight> = None;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StoreError::Body)?;
            total += chunk.len() as u64;
            if limit.is_some_and(|l| total > l) {
                return Err(StoreError::TooLarge(limit.unwrap_or_default()));
            }
            if let Some(tail) = old_tail.take() {
                // The bytes after the last part go in front of the next one.
                buf = self.read_all(&format!("{dir}{}", tail.name)).await.map_err(|e| match e {
                    StoreError::UploadTruncated { .. } => {
                        StoreError::UploadTruncated { expected: offset, actual: offset - tail.size }
                    }
                    e => e,
                })?;
                if buf.len() as u64 != tail.size {
                    return Err(corrupt(format!("s3 tail {} holds {} bytes, not {}", tail.name, buf.len(), tail.size)));
                }
                st.garbage.push(tail.name);
            }
            hasher.update(&chunk);
            buf.extend_from_slice(&chunk);
            while buf.len() >= self.chunk {
                let part = buf.split_to(self.chunk).freeze();
                if let Some(prev) = inflight.take() {
                    st.parts.push(prev.join().await?);
                }
                inflight = Some(self.start_part(&dir, &mut st, part).await?);
            }
        }
        if let Some(prev) = inflight.take() {
            st.parts.push(prev.join().await?);
        }
        if total == 0 {
            st.tail = old_tail;
            return Ok(Appended { len: offset, hasher, store_state: st.encode() });
        }
        if buf.len() >= MIN_PART {
            let last = self.start_part(&dir, &mut st, buf.freeze()).await?;
            st.parts.push(last.join().await?);
        } else if !buf.is_empty() {
            let size = buf.len() as u64;
            let name = format!("tail-{}-{}", offset + total - size, uuid::Uuid::new_v4().simple());
            let req = self.client.put_object().bucket(&self.bucket).key(format!("{dir}{name}"));
            req.content_length(size as i64)
                .body(S3Body::from(buf.freeze()))
                .send()
                .await
                .map_err(|e| s3_error("PutObject", e))?;
            st.tail = Some(Tail { name, size });
        }
        debug_assert_eq!(st.len(), offset + total);
        Ok(Appended { len: offset + total, hasher, store_state: st.encode() })
    }

    /// Makes the upload's `len` bytes one object and returns its key
    /// (`None` for an empty upload). Idempotent.
    pub(super) async fn assemble(&self, upload: &str, len: u64, state: &[u8]) -> Result<Option<String>, StoreError> {
        let dir = self.upload_dir(upload)?;
        self.require_upload(&dir).await?;
        let st = Self::state_at(state, len)?;
        let Some(upload_id) = &st.multipart else {
            return Ok(st.tail.map(|t| format!("{dir}{}", t.name)));
        };
        let data = format!("{dir}data");
        if self.head(&data).await? == Some(len) {
            return Ok(Some(data)); // assembled already (hash_upload, then commit)
        }
        let mut parts = st.parts.clone();
        if let Some(tail) = &st.tail {
            // The last part may be small: fold the tail in server-side.
            let number = st.next_part_number();
            let req = self.client.upload_part_copy().bucket(&self.bucket).key(&data).upload_id(upload_id);
            let req = req.part_number(number).copy_source(copy_source(&self.bucket, &format!("{dir}{}", tail.name)));
            let out = req.send().await.map_err(|e| s3_error("UploadPartCopy", e))?;
            let etag = out
                .copy_part_result()
                .and_then(|r| r.e_tag())
                .ok_or_else(|| corrupt("s3 UploadPartCopy: no ETag".into()))?;
            parts.push(Part { number, etag: etag.to_owned(), size: tail.size });
        }
        let completed = parts.iter().map(|p| CompletedPart::builder().part_number(p.number).e_tag(&p.etag).build());
        let req = self.client.complete_multipart_upload().bucket(&self.bucket).key(&data).upload_id(upload_id);
        let req =
            req.multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed.collect())).build());
        match req.send().await {
            Ok(_) => {}
            // Completed meanwhile by a concurrent request of the same upload.
            Err(e) if code(&e) == Some("NoSuchUpload") && self.head(&data).await? == Some(len) => {}
            Err(e) => return Err(s3_error("CompleteMultipartUpload", e)),
        }
        match self.head(&data).await? {
            Some(n) if n == len => Ok(Some(data)),
            n => Err(corrupt(format!("s3 assembled upload holds {n:?} bytes, not {len}"))),
        }
    }

    pub(super) async fn commit(&self, upload: &str, len: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError> {
        let dir = self.upload_dir(upload)?;
        let blob = self.blob_key(digest);
        if self.head(&blob).await? == Some(len) {
            // Committed already: by an earlier call cut short before the
            // metadata recorded it, or by another upload of the same bytes.
            if self.head(&format!("{dir}startedat")).await?.is_some() {
                self.remove_committed(&dir, state).await?;
            }
            return Ok(());
        }
        match self.assemble(upload, len, state).await? {
            None => {
                let req = self.client.put_object().bucket(&self.bucket).key(&blob).body(S3Body::from(Vec::new()));
                req.send().await.map_err(|e| s3_error("PutObject", e))?;
            }
            Some(src) => self.copy(&src, &blob, len).await.map_err(|e| match e {
                StoreError::BlobNotFound(_) => StoreError::UploadNotFound(upload.to_owned()),
                e => e,
            })?,
        }
        if let Err(e) = self.remove_committed(&dir, state).await {
            // The blob is there; leftovers are only storage.
            tracing::warn!(upload, error = %e, "s3: removing a committed upload's objects failed");
        }
        Ok(())
    }

    /// Server-side copy; a multipart copy past CopyObject's 5 GiB.
    async fn copy(&self, src: &str, dst: &str, len: u64) -> Result<(), StoreError> {
        let source = copy_source(&self.bucket, src);
        if len <= MAX_SINGLE_COPY {
            let req = self.client.copy_object().bucket(&self.bucket).key(dst).copy_source(source);
            return match req.send().await {
                Ok(_) => Ok(()),
                Err(e) if status(&e) == Some(404) => Err(StoreError::BlobNotFound(src.to_owned())),
                Err(e) => Err(s3_error("CopyObject", e)),
            };
        }
        let req = self.client.create_multipart_upload().bucket(&self.bucket).key(dst);
        let out = req.send().await.map_err(|e| s3_error("CreateMultipartUpload", e))?;
        let upload_id = out.upload_id().unwrap_or_default().to_owned();
        let result = async {
            let mut parts = Vec::new();
            let mut start = 0;
            while start < len {
                let end = (start + COPY_PART).min(len) - 1;
                let number = parts.len() as i32 + 1;
                let req = self.client.upload_part_copy().bucket(&self.bucket).key(dst).upload_id(&upload_id);
                let req =
                    req.part_number(number).copy_source(&source).copy_source_range(format!("bytes={start}-{end}"));
                let out = req.send().await.map_err(|e| s3_error("UploadPartCopy", e))?;
                let etag = out.copy_part_result().and_then(|r| r.e_tag()).unwrap_or_default();
                parts.push(CompletedPart::builder().part_number(number).e_tag(etag).build());
                start = end + 1;
            }
            let req = self.client.complete_multipart_upload().bucket(&self.bucket).key(dst).upload_id(&upload_id);
            let req = req.multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build());
            req.send().await.map(|_| ()).map_err(|e| s3_error("CompleteMultipartUpload", e))
        }
        .await;
        if result.is_err() {
            let _ =
                self.client.abort_multipart_upload().bucket(&self.bucket).key(dst).upload_id(&upload_id).send().await;
        }
        result
    }

    /// A (ranged) GET: the body, its length and the whole object's size.
    pub(super) async fn get(&self, key: &str, range: Option<ByteRange>) -> Result<(ByteStream, u64, u64), StoreError> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(r) = range {
            req = req.range(format!("bytes={}-{}", r.start, r.end));
        }
        let out = req.send().await.map_err(|e| match status(&e) {
            Some(404) => StoreError::BlobNotFound(key.to_owned()),
            _ => s3_error("GetObject", e),
        })?;
        let len = out.content_length().unwrap_or(0).max(0) as u64;
        let size = match out.content_range().and_then(|r| r.rsplit('/').next()).map(str::parse::<u64>) {
            Some(Ok(size)) => size,
            _ => len,
        };
        let body = futures_util::stream::unfold(out.body, |mut body| async move {
            body.next().await.map(|chunk| (chunk.map_err(io::Error::other), body))
        });
        Ok((body.boxed(), len, size))
    }

    /// Removes a committed upload's objects. An upload that never reached a
    /// full part (every small blob) goes by the names its acknowledged state
    /// gives (tail, superseded tails, then the marker), without listing: on
    /// Garage, ListObjectsV2 and ListMultipartUploads under a prefix cost
    /// time proportional to the keys (and tombstones of deleted keys) sorted
    /// after it, so two listings per commit made pushes slower the more the
    /// bucket held. An upload with a multipart upload is removed by listing,
    /// as before ([`Self::remove_upload`]): a node killed in an append may
    /// have started another multipart upload that no state names (on Garage
    /// these commits still grow with the bucket; docs/benchmarks.md). What an
    /// unacknowledged append left beside a small upload (a tail, rarely a
    /// multipart upload) is reported by `staged_uploads` once older than
    /// the purge's cutoff, and the purge removes it by listing. A state that
    /// does not decode is removed by listing too.
    async fn remove_committed(&self, dir: &str, state: &[u8]) -> Result<(), StoreError> {
        let st = match UploadState::decode(state) {
            Ok(st) if st.multipart.is_none() => st,
            st => return self.remove_upload(dir, st.ok()).await,
        };
        let mut names: Vec<String> = st.garbage.clone();
        names.extend(st.tail.as_ref().map(|t| t.name.clone()));
        // The marker goes last, so an interrupted removal still reads as an upload.
        names.push("startedat".into());
        for name in names {
            let req = self.client.delete_object().bucket(&self.bucket).key(format!("{dir}{name}"));
            match req.send().await {
                Err(e) if status(&e) != Some(404) => return Err(s3_error("DeleteObject", e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Deletes every object under the upload's prefix and aborts its
    /// multipart uploads (the recorded one and any an unacknowledged append
    /// started). Missing uploads are not an error.
    pub(super) async fn remove_upload(&self, dir: &str, st: Option<UploadState>) -> Result<(), StoreError> {
        let data = format!("{dir}data");
        let mut upload_ids: Vec<String> = st.and_then(|s| s.multipart).into_iter().collect();
        let req = self.client.list_multipart_uploads().bucket(&self.bucket).prefix(dir);
        match req.send().await {
            Ok(out) => upload_ids.extend(out.uploads().iter().filter_map(|u| u.upload_id().map(str::to_owned))),
            Err(e) => tracing::debug!(error = %super::DisplayErrorContext(&e), "s3: ListMultipartUploads failed"),
        }
        upload_ids.sort();
        upload_ids.dedup();
        for id in upload_ids {
            let req = self.client.abort_multipart_upload().bucket(&self.bucket).key(&data).upload_id(id);
            match req.send().await {
                Err(e) if status(&e) != Some(404) => return Err(s3_error("AbortMultipartUpload", e)),
                _ => {}
            }
        }
        let mut token = None;
        loop {
            let req = self.client.list_objects_v2().bucket(&self.bucket).prefix(dir).set_continuation_token(token);
            let out = req.send().await.map_err(|e| s3_error("ListObjectsV2", e))?;
            // The marker goes last, so an interrupted removal still reads as an upload.
            let mut keys: Vec<String> = out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
            keys.sort_by_key(|k| k.ends_with("/startedat"));
            for key in keys {
                let req = self.client.delete_object().bucket(&self.bucket).key(key);
                match req.send().await {
                    Err(e) if status(&e) != Some(404) => return Err(s3_error("DeleteObject", e)),
                    _ => {}
                }
            }
            token = out.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_source_encodes_all_but_slashes() {
        assert_eq!(super::copy_source("b", "r/berth/uploads/x-1/tail-0-ab"), "b/r/berth/uploads/x-1/tail-0-ab");
        assert_eq!(super::copy_source("b", "a b/ü"), "b/a%20b/%C3%BC");
    }
}
