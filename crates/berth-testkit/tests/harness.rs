//! Tests of the harness's own promises: bounded waits, nothing left running,
//! berth's ready-line contract. Berth itself is replaced by a shell script
//! that keeps the contract, so these run whatever state the server is in.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_testkit::process::Supervised;
use berth_testkit::{run_bounded, BerthOptions, BerthServer, ImageContext};

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; count it as dead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        .unwrap_or(false)
}

fn wait_dead(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A stand-in for `berth serve`: logs to stderr, records each start in the
/// data dir, prints the ready line for `$FAKE_ADDR` (unless `FAKE_MUTE`),
/// leaves a grandchild `sleep` in its process group, exits 0 on SIGTERM.
fn fake_berth(dir: &Path) -> PathBuf {
    let path = dir.join("fake-berth");
    let script = r#"#!/usr/bin/env bash
[ "$1" = serve ] || exit 2
echo "fake berth starting" >&2
touch "$REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY/start.$$"
sleep 300 &
echo $! > "$REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY/grandchild.$$"
trap 'exit 0' TERM
[ -n "${FAKE_MUTE:-}" ] || echo "berth listening on http://$FAKE_ADDR"
wait
"#;
    std::fs::write(&path, script).unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path
}

fn grandchildren(data: &Path) -> Vec<u32> {
    std::fs::read_dir(data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("grandchild."))
        .map(|e| std::fs::read_to_string(e.path()).unwrap().trim().parse().unwrap())
        .collect()
}

#[test]
fn berth_server_follows_the_ready_line_restarts_and_cleans_up() {
    let scratch = tempfile::tempdir().unwrap();
    let opts = BerthOptions::default().bin(fake_berth(scratch.path())).env("FAKE_ADDR", "127.0.0.1:4321");
    let mut server = BerthServer::start(opts).unwrap();
    assert_eq!(server.url(), "http://127.0.0.1:4321");
    let data = server.data_dir().to_owned();
    let first = server.pid();
    assert!(alive(first));

    server.restart().unwrap();
    assert!(wait_dead(first), "restart left the old server running");
    server.kill9();
    server.restart().unwrap();
    let starts = std::fs::read_dir(&data).unwrap().flatten();
    assert_eq!(starts.filter(|e| e.file_name().to_string_lossy().starts_with("start.")).count(), 3);
    assert!(server.log().matches("fake berth starting").count() == 3, "log kept across restarts");

    let last = server.pid();
    let sleepers = grandchildren(&data);
    assert_eq!(sleepers.len(), 3);
    drop(server);
    assert!(wait_dead(last));
    for pid in sleepers {
        assert!(wait_dead(pid), "grandchild {pid} survived");
    }
    assert!(!data.exists(), "data dir removed on drop");
}

#[test]
fn berth_server_without_ready_line_fails_in_time_with_its_log() {
    let scratch = tempfile::tempdir().unwrap();
    let mut opts = BerthOptions::default().bin(fake_berth(scratch.path())).env("FAKE_MUTE", "1");
    opts.ready_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = BerthServer::start(opts).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(err.contains("no ready line") && err.contains("fake berth starting"), "{err}");
}

#[test]
fn explicit_missing_binary_is_an_error_not_a_fallback() {
    let err = BerthServer::start(BerthOptions::default().bin("/nonexistent/berth")).unwrap_err();
    assert!(err.contains("/nonexistent/berth"), "{err}");
}

#[test]
fn run_bounded_kills_a_command_that_overruns() {
    let started = Instant::now();
    let err = run_bounded(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let out = run_bounded(Command::new("sh").args(["-c", "echo hi; echo err >&2; exit 3"]), Duration::from_secs(10));
    let out = out.unwrap();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.status.code()), ("hi\n", "err\n", Some(3)));
}

#[test]
fn supervised_child_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "trap '' TERM; sleep 300 & wait"]);
    let mut child = Supervised::spawn("stubborn", &mut cmd, &dir.path().join("log"), false).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let pid = child.pid();
    let started = Instant::now();
    assert!(child.terminate(Duration::from_millis(300)).is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(wait_dead(pid));
}

#[test]
fn image_context_has_busybox_data_layers_and_marker() {
    let ctx = ImageContext::small().build().unwrap();
    let dockerfile = std::fs::read_to_string(ctx.dir().join("Dockerfile")).unwrap();
    assert!(dockerfile.starts_with("FROM scratch\n"));
    assert_eq!(dockerfile.matches("COPY ").count(), ctx.layer_count());
    let sizes: Vec<u64> = ctx.data_files().iter().map(|(_, p)| p.metadata().unwrap().len()).collect();
    assert_eq!(sizes, [1 << 20, 2 << 20, 3 << 20]);
    let other = ImageContext::small().build().unwrap();
    assert_ne!(ctx.marker(), other.marker(), "each context is unique");
    let a = std::fs::read(&ctx.data_files()[0].1).unwrap();
    let b = std::fs::read(&other.data_files()[0].1).unwrap();
    assert_ne!(a, b, "random data differs between contexts");
}
