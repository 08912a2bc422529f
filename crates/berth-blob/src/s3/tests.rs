//! The shared suite against a real S3 server: Garage, single node on
//! loopback, started per test by `berth_testkit::Garage` (no fake S3).
//! Chunk size is S3's minimum, 5 MiB, so the suite's sizes cross parts.

use super::*;
use crate::test_suite::{data, framed, read};
use berth_testkit::Garage;

fn config(g: &Garage) -> S3Config {
    S3Config {
        accesskey: g.access_key().to_owned(),
        secretkey: g.secret_key().to_owned(),
        region: g.region().to_owned(),
        regionendpoint: Some(g.endpoint()),
        bucket: g.bucket().to_owned(),
        rootdirectory: "/registry/root/".into(),
        forcepathstyle: true,
        chunksize: MIN_CHUNK_SIZE,
        secure: false,
        redirect: false,
        ..S3Config::default()
    }
}

/// Starts Garage on this (the test's) thread: the server is tied to it.
fn garage() -> Garage {
    Garage::start().unwrap_or_else(|e| panic!("starting Garage: {e}"))
}

mod suite {
    crate::blobstore_test_suite!(|| async {
        let g = super::garage();
        let store = super::S3BlobStore::new(&super::config(&g)).unwrap();
        store.check().await.unwrap();
        (store, g)
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_presigned_urls_and_keys_follow_distribution() {
    let g = garage();
    let store = S3BlobStore::new(&S3Config { redirect: true, ..config(&g) }).unwrap();
    store.create_upload("r1").await.unwrap();
    let content = data(2 << 20, 5);
    let a = store.append("r1", 0, &[], Hasher::new(Algorithm::Sha256), framed(&content, 1 << 16), None).await.unwrap();
    let digest = a.hasher.finish();
    store.commit_upload("r1", a.len, &a.store_state, &digest).await.unwrap();
    let BlobReader::Redirect { url, size } = store.open(&digest, None).await.unwrap() else {
        panic!("redirect expected");
    };
    assert_eq!(size, content.len() as u64);
    let hex = digest.hex();
    let key = format!("registry/root/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]);
    assert!(url.contains(&key), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert_eq!(read(&store, &digest, None).await.unwrap(), content);
    let r = ByteRange { start: 10, end: 1 << 20 };
    assert_eq!(read(&store, &digest, Some(r)).await.unwrap(), &content[10..=1 << 20]);
    // A missing blob is reported, not redirected to a 404.
    store.delete(&digest).await.unwrap();
    assert!(matches!(store.open(&digest, None).await, Err(StoreError::BlobNotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_names_parts_and_tails_and_leftovers_are_removed() {
    let g = garage();
    let store = S3BlobStore::new(&config(&g)).unwrap();
    store.create_upload("s1").await.unwrap();
    let content = data(12 << 20, 9);
    // 7 MiB: one 5 MiB part and a 2 MiB tail.
    let a = store
        .append("s1", 0, &[], Hasher::new(Algorithm::Sha256), framed(&content[..7 << 20], 1 << 20), None)
        .await
        .unwrap();
    let st = state::UploadState::decode(&a.store_state).unwrap();
    assert_eq!(st.parts.len(), 1);
    assert_eq!(st.tail.as_ref().map(|t| t.size), Some(2 << 20));
    // 5 MiB more: the tail is folded into the next part; 7 MiB → one part of
    // 5 MiB plus a 2 MiB remainder that is not a part on its own…
    let b =
        store.append("s1", a.len, &a.store_state, a.hasher, framed(&content[7 << 20..], 1 << 20), None).await.unwrap();
    let st = state::UploadState::decode(&b.store_state).unwrap();
    assert_eq!(st.parts.iter().map(|p| p.size).collect::<Vec<_>>(), vec![5 << 20, 5 << 20]);
    assert_eq!(st.tail.as_ref().map(|t| t.size), Some(2 << 20));
    assert_eq!(st.garbage.len(), 1, "the first tail is superseded");
    let digest = b.hasher.finish();
    store.commit_upload("s1", b.len, &b.store_state, &digest).await.unwrap();
    assert_eq!(read(&store, &digest, None).await.unwrap(), content);
    // Nothing of the upload is left: no objects, no multipart uploads.
    let dir = store.upload_dir("s1").unwrap();
    let objects = store.client.list_objects_v2().bucket(&store.bucket).prefix(&dir).send().await.unwrap();
    assert_eq!(objects.key_count(), Some(0), "{:?}", objects.contents());
    let mpus = store.client.list_multipart_uploads().bucket(&store.bucket).prefix(&dir).send().await.unwrap();
    assert!(mpus.uploads().is_empty(), "{:?}", mpus.uploads());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_unacknowledged_appends_are_reported_after_the_commit() {
    let g = garage();
    let store = S3BlobStore::new(&config(&g)).unwrap();
    let dir = store.upload_dir("o1").unwrap();
    let keys = |store: &S3BlobStore| {
        let req = store.client.list_objects_v2().bucket(&store.bucket).prefix(&dir);
        async move {
            let out = req.send().await.unwrap();
            out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect::<Vec<_>>()
        }
    };
    let mpus = |store: &S3BlobStore| {
        let req = store.client.list_multipart_uploads().bucket(&store.bucket).prefix(&dir);
        async move { req.send().await.unwrap().uploads().len() }
    };
    store.create_upload("o1").await.unwrap();
    let content = data(1 << 20, 3);
    let h = || Hasher::new(Algorithm::Sha256);
    // Two appends whose states are never acknowledged: a tail, and a
    // multipart upload with a part plus a 1 MiB tail (6 MiB), named by no state.
    store.append("o1", 0, &[], h(), framed(&content[..1000], 500), None).await.unwrap();
    store.append("o1", 0, &[], h(), framed(&data(6 << 20, 4), 1 << 20), None).await.unwrap();
    // The acknowledged one, then the commit: it removes what its state names.
    let a = store.append("o1", 0, &[], h(), framed(&content, 1 << 16), None).await.unwrap();
    let digest = a.hasher.finish();
    store.commit_upload("o1", a.len, &a.store_state, &digest).await.unwrap();
    assert_eq!(read(&store, &digest, None).await.unwrap(), content);
    let left = keys(&store).await;
    assert_eq!(left.len(), 2, "only the unacknowledged tails: {left:?}");
    assert!(!left.iter().any(|k| k.ends_with("/startedat")), "{left:?}");
    assert_eq!(mpus(&store).await, 1);
    // Too young for the purge's cutoff, then reported once older than it.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!(store.staged_uploads(now - 3_600_000, 100).await.unwrap().is_empty());
    assert_eq!(store.staged_uploads(now + 3_600_000, 100).await.unwrap(), vec!["o1".to_owned()]);
    // The purge's removal lists the prefix and takes everything.
    store.delete_upload("o1").await.unwrap();
    assert!(keys(&store).await.is_empty());
    assert_eq!(mpus(&store).await, 0);
    assert!(store.staged_uploads(now + 3_600_000, 100).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_the_start_up_check() {
    let g = garage();
    let store = S3BlobStore::new(&S3Config { secretkey: "wrong".into(), max_attempts: 1, ..config(&g) }).unwrap();
    assert!(store.check().await.is_err());
}
