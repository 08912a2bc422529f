//! `berth.gc.schedule` wires garbage collection into `berth serve`; a bad
//! cron expression stops start-up naming the key. (When runs happen is tested
//! with an injected clock in berth-jobs.)

use berth_testkit::{BerthOptions, BerthServer};
use std::process::Command;

#[test]
fn scheduled_gc_is_announced() {
    let s = BerthServer::start(
        BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth")).env("REGISTRY_BERTH_GC_SCHEDULE", "@daily"),
    )
    .unwrap();
    assert!(s.log().contains("scheduled garbage collection"), "{}", s.log());
}

#[test]
fn bad_schedule_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("serve")
        .env("REGISTRY_HTTP_ADDR", "127.0.0.1:0")
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", dir.path())
        .env("REGISTRY_BERTH_GC_SCHEDULE", "every tuesday")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("berth.gc.schedule"), "{stderr}");
}
