//! GC scenarios run on SQLite + filesystem and on PostgreSQL + Garage
//! (`tests/gc_*.rs`). Pushes go through the stores exactly as the upload
//! handler drives them: stage, `touch_blob`, commit bytes, `commit_blob`.
#![allow(dead_code)]

use berth_blob::{BlobReader, BlobStore};
use berth_jobs::gc::{collect, GcOptions};
use berth_jobs::{GcError, ManualClock};
use berth_meta::{ChildRef, MetaError, MetaStore, NewManifest};
use berth_oci::{Algorithm, Digest, Hasher, RepoName, Tag};
use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub struct Env {
    pub meta: Arc<dyn MetaStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: ManualClock,
}

pub const T0: i64 = 1_700_000_000_000;

pub fn repo(s: &str) -> RepoName {
    RepoName::parse(s).unwrap()
}

pub fn content(seed: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed.wrapping_mul(7919)) as u8).collect()
}

#[derive(Debug)]
pub enum PushError {
    Busy,
    Meta(MetaError),
}

/// Uploads `data` into `repo` as the upload handler does.
pub async fn push_blob(e: &Env, repo: &RepoName, data: &[u8]) -> Result<Digest, PushError> {
    let id = uuid::Uuid::new_v4().to_string();
    e.blobs.create_upload(&id).await.unwrap();
    let body = futures_util::stream::iter(vec![Ok(Bytes::copy_from_slice(data))]).boxed();
    let a = e.blobs.append(&id, 0, &[], Hasher::new(Algorithm::Sha256), body, None).await.unwrap();
    let digest = a.hasher.finish();
    let now = e.clock_now();
    if !e.meta.touch_blob(&digest, now).await.map_err(PushError::Meta)? {
        e.blobs.delete_upload(&id).await.unwrap();
        return Err(PushError::Busy);
    }
    e.blobs.commit_upload(&id, a.len, &a.store_state, &digest).await.unwrap();
    match e.meta.commit_blob(repo, &digest, a.len, None, now).await {
        Ok(()) => Ok(digest),
        Err(MetaError::BlobBusy(_)) => Err(PushError::Busy),
        Err(err) => Err(PushError::Meta(err)),
    }
}

impl Env {
    pub fn clock_now(&self) -> i64 {
        use berth_jobs::Clock;
        self.clock.now_ms()
    }
}

pub fn manifest(name: &str, blobs: &[&Digest]) -> NewManifest {
    let body = format!("{{\"name\":\"{name}\",\"layers\":{:?}}}", blobs.iter().map(|d| d.as_str()).collect::<Vec<_>>());
    NewManifest {
        digest: Digest::compute(Algorithm::Sha256, body.as_bytes()),
        media_type: berth_oci::media_type::OCI_MANIFEST.into(),
        artifact_type: None,
        subject: None,
        annotations: None,
        body: Bytes::from(body),
        children: blobs.iter().map(|d| ChildRef { digest: (*d).clone(), is_manifest: false, required: true }).collect(),
    }
}

pub async fn read_blob(blobs: &dyn BlobStore, d: &Digest) -> Option<Vec<u8>> {
    match blobs.open(d, None).await {
        Err(berth_blob::StoreError::BlobNotFound(_)) => None,
        Err(e) => panic!("{e}"),
        Ok(BlobReader::File { file, offset, len, .. }) => {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0; len as usize];
            file.read_exact_at(&mut buf, offset).unwrap();
            Some(buf)
        }
        Ok(BlobReader::Stream { mut body, .. }) => {
            let mut buf = Vec::new();
            while let Some(c) = body.next().await {
                buf.extend_from_slice(&c.unwrap());
            }
            Some(buf)
        }
        Ok(BlobReader::Redirect { .. }) => panic!("no redirects in tests"),
    }
}

pub fn opts(grace: Duration) -> GcOptions {
    GcOptions { grace, batch: 3, ..GcOptions::default() }
}

pub async fn gc(e: &Env, o: &GcOptions) -> berth_jobs::GcReport {
    collect(&*e.meta, &*e.blobs, &e.clock, o).await.unwrap()
}

/// Grace periods on an injected clock: nothing goes early; links, then
/// blobs, go a grace after they became unreferenced; uploads expire.
pub async fn grace_periods_on_an_injected_clock(e: Env) {
    const HOUR: i64 = 3_600_000;
    let r = repo("app");
    let keep = push_blob(&e, &r, &content(1, 3000)).await.unwrap();
    let drop = push_blob(&e, &r, &content(2, 5000)).await.unwrap();
    let m = manifest("v1", &[&keep]);
    e.meta.put_manifest(&r, &m, &[Tag::parse("v1").unwrap()], e.clock_now()).await.unwrap();
    let o = opts(Duration::from_millis(HOUR as u64));
    // Young: nothing goes, however often we collect.
    e.clock.advance(HOUR - 1);
    assert_eq!(gc(&e, &o).await, Default::default());
    // The unreferenced link is a grace old: it goes, and its blob is marked now…
    e.clock.advance(2);
    let r1 = gc(&e, &o).await;
    assert_eq!((r1.links, r1.blobs), (1, 0));
    assert!(read_blob(&*e.blobs, &drop).await.is_some(), "marked, not yet deleted");
    e.clock.advance(HOUR - 1);
    assert_eq!(gc(&e, &o).await.blobs, 0);
    // …and deleted a grace after the mark.
    e.clock.advance(1);
    let r2 = gc(&e, &o).await;
    assert_eq!((r2.blobs, r2.bytes_freed), (1, 5000));
    assert!(read_blob(&*e.blobs, &drop).await.is_none());
    assert_eq!(read_blob(&*e.blobs, &keep).await.unwrap(), content(1, 3000));
    // A dry run lists and removes nothing.
    e.meta.delete_manifest(&r, &m.digest).await.unwrap();
    e.clock.advance(2 * HOUR);
    let dry = collect(&*e.meta, &*e.blobs, &e.clock, &GcOptions { dry_run: true, ..o.clone() }).await.unwrap();
    assert_eq!((dry.links, dry.blobs, dry.bytes_freed), (1, 1, 3000), "{:?}", dry.listed);
    assert!(e.meta.repo_blob(&r, &keep).await.unwrap().is_some());
    // Zero grace: link, mark and blob in one run.
    let r3 = gc(&e, &opts(Duration::ZERO)).await;
    assert_eq!((r3.links, r3.blobs, r3.bytes_freed), (1, 1, 3000));
    assert!(read_blob(&*e.blobs, &keep).await.is_none());
}

/// Failpoints: a collection paused after choosing candidates (marked)
/// while a push re-uploads one and references it: the blob survives. A
/// collection paused after switching to deleting refuses the push instead.
pub async fn failpoint_push_during_collection(e: Env) {
    let e = Arc::new(e);
    let r = repo("fp");
    let data = content(7, 4000);
    let d = push_blob(&e, &r, &data).await.unwrap();
    e.meta.unlink_blob(&r, &d).await.unwrap();
    e.clock.advance(10);
    let env = e.clone();
    let (r2, data2) = (r.clone(), data.clone());
    let o = GcOptions {
        after_mark: Some(Arc::new(move || {
            let (env, r2, data2) = (env.clone(), r2.clone(), data2.clone());
            async move {
                let d = push_blob(&env, &r2, &data2).await.unwrap();
                let m = manifest("fp", &[&d]);
                env.meta.put_manifest(&r2, &m, &[Tag::parse("v1").unwrap()], env.clock_now()).await.unwrap();
            }
            .boxed()
        })),
        ..opts(Duration::ZERO)
    };
    let report = gc(&e, &o).await;
    assert_eq!(report.blobs, 0, "the push spared it");
    assert_eq!(read_blob(&*e.blobs, &d).await.unwrap(), data);
    assert!(e.meta.repo_blob(&r, &d).await.unwrap().is_some());

    // Paused after the switch: the push is refused (never acknowledged), and succeeds after.
    let other = content(8, 2000);
    let d2 = push_blob(&e, &r, &other).await.unwrap();
    e.meta.unlink_blob(&r, &d2).await.unwrap();
    e.clock.advance(10);
    let env = e.clone();
    let (r3, other2) = (r.clone(), other.clone());
    let o = GcOptions {
        before_delete: Some(Arc::new(move |_| {
            let (env, r3, other2) = (env.clone(), r3.clone(), other2.clone());
            async move {
                assert!(matches!(push_blob(&env, &r3, &other2).await, Err(PushError::Busy)));
            }
            .boxed()
        })),
        ..opts(Duration::ZERO)
    };
    assert_eq!(gc(&e, &o).await.blobs, 1);
    assert_eq!(push_blob(&e, &r, &other).await.unwrap(), d2);
    assert_eq!(read_blob(&*e.blobs, &d2).await.unwrap(), other);
}

/// Kill the collector mid-run (while deleting), run it again: no error,
/// the same end state as an uninterrupted run.
pub async fn kill_mid_run_then_rerun(e: Env) {
    let r = repo("kill");
    let mut digests = Vec::new();
    for i in 0..10 {
        let d = push_blob(&e, &r, &content(100 + i, 1000 + i as usize)).await.unwrap();
        digests.push(d);
    }
    let m = manifest("keep", &[&digests[0], &digests[1]]);
    e.meta.put_manifest(&r, &m, &[Tag::parse("v1").unwrap()], e.clock_now()).await.unwrap();
    e.clock.advance(10);
    let o = GcOptions {
        holder: "first".into(),
        before_delete: Some(Arc::new(|_| futures_util::future::pending().boxed())),
        ..opts(Duration::ZERO)
    };
    let killed = tokio::time::timeout(Duration::from_millis(500), collect(&*e.meta, &*e.blobs, &e.clock, &o)).await;
    assert!(killed.is_err(), "paused in the failpoint, then dropped (killed)");
    // Its lease is still held: another run waits until it expires.
    let second = GcOptions { holder: "second".into(), ..opts(Duration::ZERO) };
    assert!(matches!(collect(&*e.meta, &*e.blobs, &e.clock, &second).await, Err(GcError::Busy)));
    e.clock.advance(121_000);
    let report = gc(&e, &second).await;
    assert_eq!(report.links, 8, "progress of the killed run is carried over");
    assert_eq!(report.blobs, 8);
    for (i, d) in digests.iter().enumerate() {
        assert_eq!(read_blob(&*e.blobs, d).await.is_some(), i < 2, "blob {i}");
    }
    assert_eq!(e.meta.list_blobs(None, 100).await.unwrap().len(), 2);
    assert!(e.meta.blobs_being_deleted(None, 10).await.unwrap().is_empty());
    assert_eq!(gc(&e, &second).await, Default::default(), "a further run has nothing to do");
}

/// Collections in a loop while clients push, mount, retag and delete.
/// The injected clock runs 100× faster than real time and the grace is 30 s
/// of it (300 ms real): the grace must only exceed how long one push takes
/// between `touch_blob` and `commit_blob` (the safety argument's one
/// assumption), while links and blobs still go many times over. Afterwards
/// every acknowledged, not deleted manifest is readable byte-exact, and
/// every unreferenced blob older than the grace is gone.
const SPEEDUP: i64 = 100;
const GRACE: Duration = Duration::from_secs(30);

pub async fn concurrent_clients_and_collections(e: Env, duration: Duration) {
    let e = Arc::new(e);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A small pool of contents, so collected blobs are pushed again.
    let pool: Vec<Vec<u8>> = (0..48).map(|i| content(500 + i, 700 + 53 * i as usize)).collect();
    let mut clients = Vec::new();
    for c in 0..4u32 {
        let (e, stop, pool) = (e.clone(), stop.clone(), pool.clone());
        clients.push(tokio::spawn(async move {
            use rand::{Rng, SeedableRng};
            let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64);
            let r = repo(&format!("client{c}"));
            // (manifest digest → blob contents) acknowledged and not deleted.
            let mut live: HashMap<Digest, (NewManifest, Vec<Vec<u8>>)> = HashMap::new();
            let mut n = 0u32;
            let began = std::time::Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let op = rng.random_range(0..10);
                if live.len() > 3 {
                    let d = live.keys().next().unwrap().clone();
                    e.meta.delete_manifest(&r, &d).await.unwrap();
                    live.remove(&d);
                } else if op < 5 || live.is_empty() {
                    // Push an image of two layers from the pool.
                    // The first half of the pool, then the second: the first half becomes garbage.
                    let base = if began.elapsed() < duration / 2 { 0 } else { pool.len() / 2 };
                    let half = base..base + pool.len() / 2;
                    let (a, b) = (rng.random_range(half.clone()), rng.random_range(half));
                    let mut ds = Vec::new();
                    let mut ok = true;
                    for &i in &[a, b] {
                        // A mount from another client's repository first, as docker does.
                        let d = Digest::compute(Algorithm::Sha256, &pool[i]);
                        let from = repo(&format!("client{}", (c + 1) % 4));
                        if e.meta.mount_blob(&r, &d, Some(&from), e.clock_now()).await.unwrap().is_some() {
                            ds.push(d);
                            continue;
                        }
                        match push_blob(&e, &r, &pool[i]).await {
                            Ok(d) => ds.push(d),
                            Err(PushError::Busy) => ok = false,
                            Err(PushError::Meta(err)) => panic!("{err}"),
                        }
                    }
                    if !ok {
                        continue;
                    }
                    let m = manifest(&format!("c{c}-{n}"), &[&ds[0], &ds[1]]);
                    let tag = Tag::parse(&format!("t{}", n % 5)).unwrap();
                    match e.meta.put_manifest(&r, &m, &[tag], e.clock_now()).await {
                        Ok(()) => {
                            live.insert(m.digest.clone(), (m, vec![pool[a].clone(), pool[b].clone()]));
                        }
                        Err(MetaError::BlobUnknown(_)) => {} // a layer collected before the manifest: not acknowledged
                        Err(err) => panic!("{err}"),
                    }
                } else if op < 7 {
                    // Retag an existing manifest.
                    let (_, (m, _)) = live.iter().nth(rng.random_range(0..live.len())).unwrap();
                    let tag = Tag::parse(&format!("t{}", rng.random_range(0..5))).unwrap();
                    e.meta.put_manifest(&r, m, &[tag], e.clock_now()).await.unwrap();
                } else {
                    let d = live.keys().nth(rng.random_range(0..live.len())).unwrap().clone();
                    e.meta.delete_manifest(&r, &d).await.unwrap();
                    live.remove(&d);
                }
                tokio::task::yield_now().await;
            }
            (r, live)
        }));
    }
    let collector = {
        let (e, stop) = (e.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut runs, mut collected) = (0, 0);
            let start = std::time::Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                e.clock.set(T0 + start.elapsed().as_millis() as i64 * SPEEDUP);
                collected += gc(&e, &opts(GRACE)).await.blobs;
                runs += 1;
            }
            (runs, collected)
        })
    };
    tokio::time::sleep(duration).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (runs, collected) = collector.await.unwrap();
    assert!(runs > 3 && collected > 0, "the collector ran {runs} times, collected {collected} blobs");
    let mut acknowledged = 0;
    for client in clients {
        let (r, live) = client.await.unwrap();
        for (d, (m, layers)) in live {
            acknowledged += 1;
            let got = e.meta.get_manifest(&r, &d).await.unwrap().expect("acknowledged manifest present");
            assert_eq!(got.body, m.body);
            for (child, bytes) in m.children.iter().zip(&layers) {
                assert!(e.meta.repo_blob(&r, &child.digest).await.unwrap().is_some(), "{r}: {} linked", child.digest);
                assert_eq!(
                    read_blob(&*e.blobs, &child.digest).await.as_ref(),
                    Some(bytes),
                    "{r}: {} byte-exact",
                    child.digest
                );
            }
        }
    }
    assert!(acknowledged > 0);
    // Quiet now: a grace and two collections later nothing unreferenced is left.
    e.clock.advance(GRACE.as_millis() as i64 + 1);
    gc(&e, &opts(GRACE)).await;
    e.clock.advance(GRACE.as_millis() as i64 + 1);
    gc(&e, &opts(GRACE)).await;
    let rows: Vec<Digest> = e.meta.list_blobs(None, 1000).await.unwrap().into_iter().map(|b| b.digest).collect();
    assert!(e.meta.unreferenced_links(i64::MAX, None, 10).await.unwrap().is_empty());
    assert!(e.meta.collectable_blobs(i64::MAX, None, 10).await.unwrap().is_empty());
    for data in &pool {
        let d = Digest::compute(Algorithm::Sha256, data);
        assert_eq!(read_blob(&*e.blobs, &d).await.is_some(), rows.contains(&d), "{d}: storage matches metadata");
    }
}

/// Removed untagged manifests are announced (so servers drop them from their
/// manifest caches) after each page; a run killed before announcing makes the
/// next run start by telling servers to forget everything.
pub async fn untagged_removals_are_announced(e: Env) {
    use berth_jobs::gc::{Forget, Invalidate};
    use std::sync::Mutex;
    let r = repo("untag");
    let d = push_blob(&e, &r, &content(300, 100)).await.unwrap();
    let (m1, m2) = (manifest("u1", &[&d]), manifest("u2", &[&d]));
    e.meta.put_manifest(&r, &m1, &[], e.clock_now()).await.unwrap();
    e.meta.put_manifest(&r, &m2, &[], e.clock_now()).await.unwrap();
    e.clock.advance(10);
    let recorder = |pend: bool| -> (Invalidate, Arc<Mutex<Vec<Forget>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let hook: Invalidate = Arc::new(move |f| {
            log.lock().unwrap().push(f);
            match pend {
                true => futures_util::future::pending().boxed(),
                false => futures_util::future::ready(Ok(())).boxed(),
            }
        });
        (hook, seen)
    };
    let untagged = Some(regex::Regex::new("^untag$").unwrap());
    // Killed while announcing: the manifests are gone, no server was told.
    let (hook, seen) = recorder(true);
    let o =
        GcOptions { untagged: untagged.clone(), holder: "a".into(), invalidate: Some(hook), ..opts(Duration::ZERO) };
    let killed = tokio::time::timeout(Duration::from_millis(500), collect(&*e.meta, &*e.blobs, &e.clock, &o)).await;
    assert!(killed.is_err());
    let mut expected = vec![(r.to_string(), m1.digest.clone()), (r.to_string(), m2.digest.clone())];
    expected.sort();
    match &seen.lock().unwrap()[..] {
        [Forget::Manifests(m)] => {
            let mut m = m.clone();
            m.sort();
            assert_eq!(m, expected);
        }
        other => panic!("{other:?}"),
    }
    // The next run (the lease expired) starts by making servers forget everything.
    e.clock.advance(121_000);
    let (hook, seen) = recorder(false);
    let o =
        GcOptions { untagged: untagged.clone(), holder: "b".into(), invalidate: Some(hook), ..opts(Duration::ZERO) };
    gc(&e, &o).await;
    assert_eq!(*seen.lock().unwrap(), vec![Forget::All]);
    // An ordinary run announces exactly what it removed, and nothing when it removes nothing.
    let m3 = manifest("u3", &[]);
    e.meta.put_manifest(&r, &m3, &[], e.clock_now()).await.unwrap();
    e.clock.advance(10);
    let (hook, seen) = recorder(false);
    let o = GcOptions { untagged, holder: "c".into(), invalidate: Some(hook), ..opts(Duration::ZERO) };
    assert_eq!(gc(&e, &o).await.manifests, 1);
    assert_eq!(*seen.lock().unwrap(), vec![Forget::Manifests(vec![(r.to_string(), m3.digest.clone())])]);
    gc(&e, &o).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "nothing removed, nothing announced");
}
