//! The shared suite (`crate::test_suite`) plus what only a file can show:
//! the staging file's length after failures, and corruption on disk.

use super::*;
use futures_util::stream;

mod suite {
    crate::blobstore_test_suite!(|| async {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::FsBlobStore::open(dir.path()).unwrap();
        (store, dir)
    });
}

fn body(chunks: Vec<&'static [u8]>) -> ByteStream {
    stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed()
}

fn store() -> (tempfile::TempDir, FsBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = FsBlobStore::open(dir.path()).unwrap();
    (dir, s)
}

#[tokio::test]
async fn failed_append_leaves_the_file_at_the_acknowledged_length() {
    let (_d, s) = store();
    s.create_upload("u2").await.unwrap();
    s.append("u2", 0, &[], Hasher::new(Algorithm::Sha256), body(vec![b"abc"]), None).await.unwrap();
    let broken: ByteStream =
        stream::iter(vec![Ok(Bytes::from_static(b"def")), Err(io::Error::other("client went away"))]).boxed();
    let err = s.append("u2", 3, &[], Hasher::new(Algorithm::Sha256), broken, None).await;
    assert!(matches!(err, Err(StoreError::Body(_))), "{:?}", err.err());
    let too_big = s.append("u2", 3, &[], Hasher::new(Algorithm::Sha256), body(vec![b"defgh"]), Some(4)).await;
    assert!(matches!(too_big, Err(StoreError::TooLarge(4))));
    assert_eq!(fs::metadata(s.upload_path("u2").unwrap()).unwrap().len(), 3);
}

#[tokio::test]
async fn interrupted_append_is_cut_back_on_resume() {
    let (_d, s) = store();
    s.create_upload("u3").await.unwrap();
    // Simulate a crash after 3 acknowledged bytes plus 2 unacknowledged.
    fs::write(s.upload_path("u3").unwrap(), b"abcXY").unwrap();
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(b"abc");
    let a = s.append("u3", 3, &[], h, body(vec![b"def"]), None).await.unwrap();
    assert_eq!(a.hasher.finish(), Digest::compute(Algorithm::Sha256, b"abcdef"));
    // Fewer bytes than acknowledged is corruption, not something to paper over.
    fs::write(s.upload_path("u3").unwrap(), b"ab").unwrap();
    let err = s.append("u3", 3, &[], Hasher::new(Algorithm::Sha256), body(vec![]), None).await;
    assert!(matches!(err, Err(StoreError::UploadTruncated { expected: 3, actual: 2 })));
}

#[tokio::test]
async fn large_append_crosses_buffers() {
    let (_d, s) = store();
    s.create_upload("big").await.unwrap();
    let data: Vec<u8> = (0..(3 * WRITE_BUFFER + 17)).map(|i| (i % 253) as u8).collect();
    let chunks: Vec<io::Result<Bytes>> = data.chunks(60_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let a = s.append("big", 0, &[], Hasher::new(Algorithm::Sha256), stream::iter(chunks).boxed(), None).await.unwrap();
    assert_eq!(a.len, data.len() as u64);
    assert!(a.store_state.is_empty());
    assert_eq!(a.hasher.finish(), Digest::compute(Algorithm::Sha256, &data));
}
