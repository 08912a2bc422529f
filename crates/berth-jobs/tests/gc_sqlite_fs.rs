//! GC scenarios on SQLite + the filesystem.

mod gc_common;

use berth_jobs::ManualClock;
use gc_common::*;
use std::sync::Arc;
use std::time::Duration;

fn env() -> (Env, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let meta = berth_meta::sqlite::SqliteStore::open(&dir.path().join("meta.sqlite")).unwrap();
    let blobs = berth_blob::FsBlobStore::open(dir.path()).unwrap();
    (Env { meta: Arc::new(meta), blobs: Arc::new(blobs), clock: ManualClock::new(T0) }, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grace_periods() {
    let (e, _d) = env();
    grace_periods_on_an_injected_clock(e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failpoints() {
    let (e, _d) = env();
    failpoint_push_during_collection(e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_and_rerun() {
    let (e, _d) = env();
    kill_mid_run_then_rerun(e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency() {
    let (e, _d) = env();
    concurrent_clients_and_collections(e, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn untagged_removals_reach_caches() {
    let (e, _d) = env();
    untagged_removals_are_announced(e).await;
}
