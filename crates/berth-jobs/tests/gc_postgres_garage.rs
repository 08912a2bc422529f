//! GC scenarios on PostgreSQL + Garage (S3), each test with its own servers.

mod gc_common;

use berth_blob::s3::{S3BlobStore, S3Config, MIN_CHUNK_SIZE};
use berth_jobs::ManualClock;
use berth_testkit::{Garage, Postgres};
use gc_common::*;
use std::sync::Arc;
use std::time::Duration;

async fn env() -> (Env, (Postgres, Garage)) {
    let pg = Postgres::start().unwrap();
    let g = Garage::start().unwrap();
    let mut opts = berth_meta::postgres::PostgresOptions::new(pg.url("postgres"));
    opts.pool_size = 16;
    let meta = berth_meta::postgres::PostgresStore::connect(&opts).await.unwrap();
    let cfg = S3Config {
        accesskey: g.access_key().to_owned(),
        secretkey: g.secret_key().to_owned(),
        region: g.region().to_owned(),
        regionendpoint: Some(g.endpoint()),
        bucket: g.bucket().to_owned(),
        rootdirectory: "/gc/".into(),
        forcepathstyle: true,
        chunksize: MIN_CHUNK_SIZE,
        secure: false,
        redirect: false,
        ..S3Config::default()
    };
    let blobs = S3BlobStore::new(&cfg).unwrap();
    (Env { meta: Arc::new(meta), blobs: Arc::new(blobs), clock: ManualClock::new(T0) }, (pg, g))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grace_periods() {
    let (e, _g) = env().await;
    grace_periods_on_an_injected_clock(e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failpoints() {
    let (e, _g) = env().await;
    failpoint_push_during_collection(e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_and_rerun() {
    let (e, _g) = env().await;
    kill_mid_run_then_rerun(e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency() {
    let (e, _g) = env().await;
    concurrent_clients_and_collections(e, Duration::from_secs(4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn untagged_removals_reach_caches() {
    let (e, _g) = env().await;
    untagged_removals_are_announced(e).await;
}
