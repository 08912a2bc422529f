//! The behaviour every blob store must share. Each backend's tests invoke
//! [`blobstore_test_suite!`] with a factory returning a fresh store (plus
//! anything that must live as long: a temp dir, a Garage server).
//! Sizes are chosen around S3's 5 MiB minimum part, which the S3 tests use
//! as their chunk size, so parts, tails and their folding are all crossed.

use crate::{Appended, BlobReader, BlobStore, ByteStream, StoreError};
use berth_oci::{Algorithm, ByteRange, Digest, Hasher};
use bytes::Bytes;
use futures_util::{stream, StreamExt};
use std::io;

const MIB: usize = 1 << 20;

#[macro_export]
macro_rules! blobstore_test_suite {
    ($factory:expr) => {
        $crate::blobstore_test_suite!(@tests $factory;
            append_commit_read_back,
            failed_append_keeps_acknowledged_bytes_only,
            interrupted_append_is_discarded_on_resume,
            crash_after_parts_resumes_from_acknowledged_state,
            small_chunks_below_min_part,
            large_upload_in_uneven_chunks,
            concurrent_commits_of_one_digest,
            range_reads,
            empty_blob,
            deletes,
            upload_ids_cannot_escape,
            deletes_in_bulk_and_quarantines,
            lists_staged_uploads_by_age,
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, guard) = ($factory)().await;
                $crate::test_suite::$name(&store).await;
                // The store first: a server stopped while its client still
                // holds keep-alive connections may wait for them to close.
                drop(store);
                drop(guard);
            }
        )*
    };
}

/// A body of the given frames.
pub fn body(frames: Vec<Bytes>) -> ByteStream {
    stream::iter(frames.into_iter().map(Ok)).boxed()
}

/// `data` as a body cut into frames of `frame` bytes.
pub fn framed(data: &[u8], frame: usize) -> ByteStream {
    body(data.chunks(frame.max(1)).map(Bytes::copy_from_slice).collect())
}

/// Deterministic, non-repeating-looking test bytes.
pub fn data(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn sha256() -> Hasher {
    Hasher::new(Algorithm::Sha256)
}

/// Progress as the server records it between requests.
struct Session {
    offset: u64,
    hash: Vec<u8>,
    state: Vec<u8>,
}

impl Session {
    fn new() -> Self {
        Session { offset: 0, hash: sha256().save(), state: Vec::new() }
    }
    fn record(&mut self, a: Appended) {
        self.offset = a.len;
        self.hash = a.hasher.save();
        self.state = a.store_state;
    }
    fn hasher(&self) -> Hasher {
        Hasher::restore(&self.hash).unwrap()
    }
    fn digest(&self) -> Digest {
        self.hasher().finish()
    }
}

/// One append of `chunk` from the recorded session, recorded on success.
async fn append<S: BlobStore>(s: &S, id: &str, sess: &mut Session, chunk: ByteStream, limit: Option<u64>) {
    let a = s.append(id, sess.offset, &sess.state, sess.hasher(), chunk, limit).await.unwrap();
    sess.record(a);
}

/// Reads a committed blob (or a range) whatever reader the store returns.
pub async fn read<S: BlobStore>(s: &S, digest: &Digest, range: Option<ByteRange>) -> Result<Vec<u8>, StoreError> {
    match s.open(digest, range).await? {
        BlobReader::File { file, offset, len, .. } => {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0; len as usize];
            file.read_exact_at(&mut buf, offset)?;
            Ok(buf)
        }
        BlobReader::Stream { mut body, len, .. } => {
            let mut buf = Vec::new();
            while let Some(chunk) = body.next().await {
                buf.extend_from_slice(&chunk?);
            }
            assert_eq!(buf.len() as u64, len, "stream length differs from the announced one");
            Ok(buf)
        }
        BlobReader::Redirect { url, .. } => {
            let mut req = reqwest::Client::new().get(&url);
            if let Some(r) = range {
                req = req.header("range", format!("bytes={}-{}", r.start, r.end));
            }
            let resp = req.send().await.map_err(io::Error::other)?;
            let want = if range.is_some() { 206 } else { 200 };
            assert_eq!(resp.status().as_u16(), want, "GET of the redirect URL");
            Ok(resp.bytes().await.map_err(io::Error::other)?.to_vec())
        }
    }
}

/// Uploads `content` in one append per entry of `chunks` (sizes), each
/// sent as frames of `frame` bytes, resuming from recorded state each time.
async fn upload<S: BlobStore>(s: &S, id: &str, content: &[u8], chunks: &[usize], frame: usize) -> Session {
    s.create_upload(id).await.unwrap();
    let mut sess = Session::new();
    let mut pos = 0;
    for &n in chunks {
        append(s, id, &mut sess, framed(&content[pos..pos + n], frame), Some(n as u64)).await;
        pos += n;
        assert_eq!(sess.offset, pos as u64);
    }
    assert_eq!(pos, content.len(), "chunks must cover the content");
    sess
}

pub async fn append_commit_read_back<S: BlobStore>(s: &S) {
    s.create_upload("u1").await.unwrap();
    let mut sess = Session::new();
    append(s, "u1", &mut sess, body(vec![Bytes::from_static(b"hello "), Bytes::from_static(b"wor")]), None).await;
    assert_eq!(sess.offset, 9);
    append(s, "u1", &mut sess, body(vec![Bytes::from_static(b"ld")]), Some(2)).await;
    let digest = sess.digest();
    assert_eq!(digest, Digest::compute(Algorithm::Sha256, b"hello world"));
    assert_eq!(
        s.hash_upload("u1", 11, &sess.state, Algorithm::Sha512).await.unwrap(),
        Digest::compute(Algorithm::Sha512, b"hello world")
    );
    assert_eq!(s.stat(&digest).await.unwrap(), None, "not visible before commit");
    s.commit_upload("u1", 11, &sess.state, &digest).await.unwrap();
    // A retry after a crash between making the blob visible and the metadata commit.
    s.commit_upload("u1", 11, &sess.state, &digest).await.unwrap();
    let again = s.commit_upload("u1", 12, &sess.state, &digest).await;
    assert!(matches!(again, Err(StoreError::UploadNotFound(_))), "{:?}", again.err());
    assert_eq!(s.stat(&digest).await.unwrap(), Some(11));
    assert_eq!(read(s, &digest, None).await.unwrap(), b"hello world");
    assert_eq!(read(s, &digest, Some(ByteRange { start: 6, end: 10 })).await.unwrap(), b"world");
    // The upload is gone once committed.
    let after = s.append("u1", 11, &sess.state, sess.hasher(), body(vec![]), None).await;
    assert!(matches!(after, Err(StoreError::UploadNotFound(_))), "{:?}", after.err());
}

pub async fn failed_append_keeps_acknowledged_bytes_only<S: BlobStore>(s: &S) {
    s.create_upload("u2").await.unwrap();
    let mut sess = Session::new();
    append(s, "u2", &mut sess, body(vec![Bytes::from_static(b"abc")]), None).await;
    let broken: ByteStream =
        stream::iter(vec![Ok(Bytes::from_static(b"def")), Err(io::Error::other("client went away"))]).boxed();
    let err = s.append("u2", 3, &sess.state, sess.hasher(), broken, None).await;
    assert!(matches!(err, Err(StoreError::Body(_))), "{:?}", err.err());
    let too_big =
        s.append("u2", 3, &sess.state, sess.hasher(), body(vec![Bytes::from_static(b"defgh")]), Some(4)).await;
    assert!(matches!(too_big, Err(StoreError::TooLarge(4))), "{:?}", too_big.err());
    // A body that breaks after more than a part's worth of bytes.
    let big = data(6 * MIB + 5, 7);
    let mut frames: Vec<io::Result<Bytes>> = big.chunks(MIB).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    frames.push(Err(io::Error::other("reset")));
    let err = s.append("u2", 3, &sess.state, sess.hasher(), stream::iter(frames).boxed(), None).await;
    assert!(matches!(err, Err(StoreError::Body(_))), "{:?}", err.err());
    append(s, "u2", &mut sess, body(vec![Bytes::from_static(b"def")]), None).await;
    assert_eq!(sess.offset, 6);
    let digest = sess.digest();
    s.commit_upload("u2", 6, &sess.state, &digest).await.unwrap();
    assert_eq!(read(s, &digest, None).await.unwrap(), b"abcdef");
}

pub async fn interrupted_append_is_discarded_on_resume<S: BlobStore>(s: &S) {
    s.create_upload("u3").await.unwrap();
    let mut sess = Session::new();
    append(s, "u3", &mut sess, body(vec![Bytes::from_static(b"abc")]), None).await;
    // An append that completed in storage but was never acknowledged (the
    // node died before recording it): its result is dropped.
    let lost = s.append("u3", 3, &sess.state, sess.hasher(), body(vec![Bytes::from_static(b"XY")]), None).await;
    assert_eq!(lost.unwrap().len, 5);
    append(s, "u3", &mut sess, body(vec![Bytes::from_static(b"def")]), None).await;
    let digest = sess.digest();
    assert_eq!(digest, Digest::compute(Algorithm::Sha256, b"abcdef"));
    s.commit_upload("u3", 6, &sess.state, &digest).await.unwrap();
    assert_eq!(read(s, &digest, None).await.unwrap(), b"abcdef");
}

pub async fn crash_after_parts_resumes_from_acknowledged_state<S: BlobStore>(s: &S) {
    let good = data(19 * MIB + 3, 11);
    let junk = data(13 * MIB, 12);
    s.create_upload("u4").await.unwrap();
    let mut sess = Session::new();
    append(s, "u4", &mut sess, framed(&good[..7 * MIB + 1], 64 * 1024), None).await;
    // A crash after whole parts (and a tail) of junk were stored.
    let lost = s.append("u4", sess.offset, &sess.state, sess.hasher(), framed(&junk, 100_000), None).await.unwrap();
    assert_eq!(lost.len, (7 * MIB + 1 + 13 * MIB) as u64);
    // The client retries from the last acknowledged byte, possibly on
    // another node: only the recorded session travels.
    let restarted = Session { offset: sess.offset, hash: sess.hash.clone(), state: sess.state.clone() };
    let mut sess = restarted;
    append(s, "u4", &mut sess, framed(&good[7 * MIB + 1..], 1 << 20), None).await;
    let digest = sess.digest();
    assert_eq!(digest, Digest::compute(Algorithm::Sha256, &good));
    s.commit_upload("u4", good.len() as u64, &sess.state, &digest).await.unwrap();
    assert_eq!(read(s, &digest, None).await.unwrap(), good);
}

pub async fn small_chunks_below_min_part<S: BlobStore>(s: &S) {
    // Chunks of a few hundred KiB to 3 MiB: no single one reaches S3's minimum part.
    let sizes = [1, 300 * 1024, 3 * MIB, 2 * MIB + 17, 700 * 1024, 4 * MIB - 1, 3 * MIB, 100, 1_234_567];
    let content = data(sizes.iter().sum(), 21);
    let sess = upload(s, "u5", &content, &sizes, 50_000).await;
    let digest = sess.digest();
    assert_eq!(digest, Digest::compute(Algorithm::Sha256, &content));
    s.commit_upload("u5", content.len() as u64, &sess.state, &digest).await.unwrap();
    assert_eq!(s.stat(&digest).await.unwrap(), Some(content.len() as u64));
    assert_eq!(read(s, &digest, None).await.unwrap(), content);
}

pub async fn large_upload_in_uneven_chunks<S: BlobStore>(s: &S) {
    let sizes = [7 * MIB + 3, 1, 5 * MIB, 4 * MIB - 4, 4 * MIB];
    let content = data(20 * MIB, 31);
    assert_eq!(sizes.iter().sum::<usize>(), content.len());
    let sess = upload(s, "u6", &content, &sizes, 61_440).await;
    let digest = sess.digest();
    assert_eq!(digest, Digest::compute(Algorithm::Sha256, &content));
    let len = content.len() as u64;
    // A client naming a sha512 digest at the end makes the store hash it.
    assert_eq!(
        s.hash_upload("u6", len, &sess.state, Algorithm::Sha512).await.unwrap(),
        Digest::compute(Algorithm::Sha512, &content)
    );
    s.commit_upload("u6", len, &sess.state, &digest).await.unwrap();
    assert_eq!(s.stat(&digest).await.unwrap(), Some(len));
    assert_eq!(read(s, &digest, None).await.unwrap(), content);
    let r = ByteRange { start: 5 * MIB as u64 - 10, end: 10 * MIB as u64 + 10 };
    assert_eq!(read(s, &digest, Some(r)).await.unwrap(), &content[r.start as usize..=r.end as usize]);
}

pub async fn concurrent_commits_of_one_digest<S: BlobStore>(s: &S) {
    let content = data(6 * MIB + 99, 41);
    let a = upload(s, "u7a", &content, &[content.len()], 1 << 16).await;
    let b = upload(s, "u7b", &content, &[MIB, content.len() - MIB], 1 << 16).await;
    let small = b"same small blob";
    let c = upload(s, "u7c", small, &[small.len()], 4).await;
    let d = upload(s, "u7d", small, &[small.len()], 4).await;
    let (digest, small_digest) = (a.digest(), c.digest());
    assert_eq!(digest, b.digest());
    let len = content.len() as u64;
    let (ra, rb, rc, rd) = tokio::join!(
        s.commit_upload("u7a", len, &a.state, &digest),
        s.commit_upload("u7b", len, &b.state, &digest),
        s.commit_upload("u7c", small.len() as u64, &c.state, &small_digest),
        s.commit_upload("u7d", small.len() as u64, &d.state, &small_digest),
    );
    for r in [ra, rb, rc, rd] {
        r.unwrap();
    }
    assert_eq!(read(s, &digest, None).await.unwrap(), content);
    assert_eq!(read(s, &small_digest, None).await.unwrap(), small);
    for (id, sess) in [("u7a", &a), ("u7b", &b)] {
        let gone = s.append(id, len, &sess.state, sess.hasher(), body(vec![]), None).await;
        assert!(matches!(gone, Err(StoreError::UploadNotFound(_))), "{id}: {:?}", gone.err());
    }
}

pub async fn range_reads<S: BlobStore>(s: &S) {
    let content = data(3 * MIB + 7, 51);
    let sess = upload(s, "u8", &content, &[content.len()], 1 << 16).await;
    let digest = sess.digest();
    let last = content.len() as u64 - 1;
    s.commit_upload("u8", last + 1, &sess.state, &digest).await.unwrap();
    for (start, end) in [(0, 0), (last, last), (0, last), (MIB as u64 - 1, 2 * MIB as u64 + 1), (17, 4096)] {
        let got = read(s, &digest, Some(ByteRange { start, end })).await.unwrap();
        assert_eq!(got, &content[start as usize..=end as usize], "range {start}-{end}");
    }
}

pub async fn empty_blob<S: BlobStore>(s: &S) {
    s.create_upload("u9").await.unwrap();
    let mut sess = Session::new();
    append(s, "u9", &mut sess, body(vec![]), None).await;
    assert_eq!(sess.offset, 0);
    let digest = sess.digest();
    assert_eq!(
        s.hash_upload("u9", 0, &sess.state, Algorithm::Sha512).await.unwrap(),
        Digest::compute(Algorithm::Sha512, b"")
    );
    s.commit_upload("u9", 0, &sess.state, &digest).await.unwrap();
    assert_eq!(s.stat(&digest).await.unwrap(), Some(0));
    assert_eq!(read(s, &digest, None).await.unwrap(), b"");
}

pub async fn deletes<S: BlobStore>(s: &S) {
    let content = data(MIB + 1, 61);
    let sess = upload(s, "u10", &content, &[MIB, 1], 1 << 16).await;
    let digest = sess.digest();
    s.commit_upload("u10", content.len() as u64, &sess.state, &digest).await.unwrap();
    s.delete(&digest).await.unwrap();
    assert_eq!(s.stat(&digest).await.unwrap(), None);
    assert!(matches!(read(s, &digest, None).await, Err(StoreError::BlobNotFound(_))));
    s.delete(&digest).await.unwrap(); // missing is not an error
                                      // Cancelling an upload in progress, parts and all.
    let big = data(6 * MIB, 62);
    let sess = upload(s, "u11", &big, &[6 * MIB], 1 << 16).await;
    s.delete_upload("u11").await.unwrap();
    let gone = s.append("u11", sess.offset, &sess.state, sess.hasher(), body(vec![]), None).await;
    assert!(matches!(gone, Err(StoreError::UploadNotFound(_))), "{:?}", gone.err());
    let gone = s.commit_upload("u11", sess.offset, &sess.state, &sess.digest()).await;
    assert!(matches!(gone, Err(StoreError::UploadNotFound(_))), "{:?}", gone.err());
    s.delete_upload("u11").await.unwrap();
    s.delete_upload("never-existed").await.unwrap();
}

pub async fn upload_ids_cannot_escape<S: BlobStore>(s: &S) {
    for bad in ["../x", "a/b", "", "a.b"] {
        assert!(matches!(s.create_upload(bad).await, Err(StoreError::UploadNotFound(_))), "{bad}");
    }
}

pub async fn deletes_in_bulk_and_quarantines<S: BlobStore>(s: &S) {
    let mut digests = Vec::new();
    for i in 0..5u8 {
        let content = data(1000 + i as usize, 70 + i as u32);
        let id = format!("bulk{i}");
        let sess = upload(s, &id, &content, &[content.len()], 1 << 16).await;
        s.commit_upload(&id, content.len() as u64, &sess.state, &sess.digest()).await.unwrap();
        digests.push(sess.digest());
    }
    let absent = Digest::compute(berth_oci::Algorithm::Sha256, b"never stored");
    s.delete_many(&[digests[0].clone(), digests[1].clone(), absent.clone()]).await.unwrap();
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(s.stat(d).await.unwrap().is_some(), i >= 2, "blob {i}");
    }
    s.quarantine(&digests[2]).await.unwrap();
    assert_eq!(s.stat(&digests[2]).await.unwrap(), None, "no longer served");
    s.quarantine(&absent).await.unwrap();
    s.delete_many(&[]).await.unwrap();
}

/// Staged uploads are listed by age (the cutoff is the caller's clock), so
/// the purge can find staging that no session names; removed ones are not.
pub async fn lists_staged_uploads_by_age<S: BlobStore>(s: &S) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    s.create_upload("staged-a").await.unwrap();
    let _ = upload(s, "staged-b", &data(1000, 71), &[1000], 1 << 16).await;
    // An hour from now, both are older; an hour ago, neither existed.
    let mut later = s.staged_uploads(now + 3_600_000, 100).await.unwrap();
    later.sort();
    assert!(later.contains(&"staged-a".to_owned()) && later.contains(&"staged-b".to_owned()), "{later:?}");
    let earlier = s.staged_uploads(now - 3_600_000, 100).await.unwrap();
    assert!(!earlier.iter().any(|u| u.starts_with("staged-")), "{earlier:?}");
    assert_eq!(s.staged_uploads(now + 3_600_000, 1).await.unwrap().len(), 1, "limit");
    s.delete_upload("staged-a").await.unwrap();
    let left = s.staged_uploads(now + 3_600_000, 100).await.unwrap();
    assert!(!left.contains(&"staged-a".to_owned()) && left.contains(&"staged-b".to_owned()), "{left:?}");
}
