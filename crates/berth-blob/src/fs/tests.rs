use super::*;
use futures_util::stream;

fn body(chunks: Vec<&'static [u8]>) -> ByteStream {
    stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c)))).boxed()
}

fn store() -> (tempfile::TempDir, FsBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = FsBlobStore::open(dir.path()).unwrap();
    (dir, s)
}

#[tokio::test]
async fn append_commit_read_back() {
    let (_d, s) = store();
    s.create_upload("u1").await.unwrap();
    let a = s.append("u1", 0, Hasher::new(Algorithm::Sha256), body(vec![b"hello ", b"wor"]), None).await.unwrap();
    assert_eq!(a.len, 9);
    // Resume from saved state, as after a restart.
    let h = Hasher::restore(&a.hasher.save()).unwrap();
    let b = s.append("u1", 9, h, body(vec![b"ld"]), Some(2)).await.unwrap();
    let digest = b.hasher.finish();
    assert_eq!(digest, Digest::compute(Algorithm::Sha256, b"hello world"));
    assert_eq!(
        s.hash_upload("u1", 11, Algorithm::Sha512).await.unwrap(),
        Digest::compute(Algorithm::Sha512, b"hello world")
    );
    s.commit_upload("u1", 11, &digest).await.unwrap();
    // A retry after a crash between the rename and the metadata commit.
    s.commit_upload("u1", 11, &digest).await.unwrap();
    assert!(matches!(s.commit_upload("u1", 12, &digest).await, Err(StoreError::UploadNotFound(_))));
    assert_eq!(s.stat(&digest).await.unwrap(), Some(11));
    let BlobReader::File { mut file, offset, len, size } =
        s.open(&digest, Some(ByteRange { start: 6, end: 10 })).await.unwrap();
    assert_eq!((offset, len, size), (6, 5, 11));
    let mut all = String::new();
    file.read_to_string(&mut all).unwrap();
    assert_eq!(all, "hello world");
    // The upload is gone once committed.
    assert!(matches!(
        s.append("u1", 11, Hasher::new(Algorithm::Sha256), body(vec![]), None).await,
        Err(StoreError::UploadNotFound(_))
    ));
    s.delete(&digest).await.unwrap();
    assert_eq!(s.stat(&digest).await.unwrap(), None);
}

#[tokio::test]
async fn failed_append_keeps_acknowledged_bytes_only() {
    let (_d, s) = store();
    s.create_upload("u2").await.unwrap();
    s.append("u2", 0, Hasher::new(Algorithm::Sha256), body(vec![b"abc"]), None).await.unwrap();
    let broken: ByteStream =
        stream::iter(vec![Ok(Bytes::from_static(b"def")), Err(io::Error::other("client went away"))]).boxed();
    let err = s.append("u2", 3, Hasher::new(Algorithm::Sha256), broken, None).await;
    assert!(matches!(err, Err(StoreError::Body(_))), "{:?}", err.err());
    let too_big = s.append("u2", 3, Hasher::new(Algorithm::Sha256), body(vec![b"defgh"]), Some(4)).await;
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
    let a = s.append("u3", 3, h, body(vec![b"def"]), None).await.unwrap();
    assert_eq!(a.hasher.finish(), Digest::compute(Algorithm::Sha256, b"abcdef"));
    // Fewer bytes than acknowledged is corruption, not something to paper over.
    fs::write(s.upload_path("u3").unwrap(), b"ab").unwrap();
    let err = s.append("u3", 3, Hasher::new(Algorithm::Sha256), body(vec![]), None).await;
    assert!(matches!(err, Err(StoreError::UploadTruncated { expected: 3, actual: 2 })));
}

#[tokio::test]
async fn upload_ids_cannot_escape() {
    let (_d, s) = store();
    for bad in ["../x", "a/b", "", "a.b"] {
        assert!(matches!(s.create_upload(bad).await, Err(StoreError::UploadNotFound(_))), "{bad}");
    }
}

#[tokio::test]
async fn large_append_crosses_buffers() {
    let (_d, s) = store();
    s.create_upload("big").await.unwrap();
    let data: Vec<u8> = (0..(3 * WRITE_BUFFER + 17)).map(|i| (i % 253) as u8).collect();
    let chunks: Vec<io::Result<Bytes>> = data.chunks(60_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let a = s.append("big", 0, Hasher::new(Algorithm::Sha256), stream::iter(chunks).boxed(), None).await.unwrap();
    assert_eq!(a.len, data.len() as u64);
    assert_eq!(a.hasher.finish(), Digest::compute(Algorithm::Sha256, &data));
}
