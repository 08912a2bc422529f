//! Once per cluster, across real processes: `berth gc` against a shared
//! PostgreSQL refuses to run while another node holds a live `gc` lease, and
//! takes over the lease of a node that died holding it (its lease expired).

use berth_meta::postgres::{PostgresOptions, PostgresStore};
use berth_meta::LeaseStore;
use berth_testkit::Postgres;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn gc(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["gc", "--grace", "0s"])
        .arg(config)
        .env_remove("REGISTRY_CONFIGURATION_PATH")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_runs_once_per_cluster_and_survives_a_dead_holder() {
    let pg = Postgres::start().unwrap();
    let url = pg.url("postgres");
    let store = PostgresStore::connect(&PostgresOptions::new(url.clone())).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nberth:\n  database:\n    url: {url}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();

    // Another node is collecting right now.
    assert!(store.try_acquire_lease("gc", "node-alive", Duration::from_secs(600), now_ms()).await.unwrap());
    let busy = gc(&config);
    assert!(!busy.status.success(), "must not run beside a live holder");
    assert!(String::from_utf8_lossy(&busy.stderr).contains("holds the gc lease"), "{busy:?}");
    store.release_lease("gc", "node-alive").await.unwrap();

    // A node took the lease an hour ago and died: its lease has expired.
    let hour_ago = now_ms() - 3_600_000;
    assert!(store.try_acquire_lease("gc", "node-dead", Duration::from_secs(120), hour_ago).await.unwrap());
    let taken_over = gc(&config);
    assert!(taken_over.status.success(), "{}", String::from_utf8_lossy(&taken_over.stderr));
    assert!(String::from_utf8_lossy(&taken_over.stdout).contains("removed:"), "{taken_over:?}");
    // Finished and released: anyone may take the lease now.
    assert!(store.try_acquire_lease("gc", "node-next", Duration::from_secs(60), now_ms()).await.unwrap());
}
