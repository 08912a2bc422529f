//! Crash test: `kill -9` the real `berth` binary at random moments while
//! several clients push, restart it on the same data dir, and check that
//! nothing the server acknowledged was lost and nothing half-done is visible.
//!
//! Each round:
//! 1. `CLIENTS` threads push concurrently, each op picked at random: single
//!    `POST ?digest=`, `POST` + monolithic `PUT`, chunked `PATCH`es with
//!    `Content-Range` then `PUT`, cross-repository mount, manifest `PUT`
//!    (OCI or Docker schema2, by tag or by digest). Every `201` is written
//!    to a shared ledger; a connection error after the kill means "not
//!    acknowledged" and ends that client's round.
//! 2. After a random delay the server is SIGKILLed (the kill flag is raised
//!    first, so an error a client sees *before* it is a real failure).
//! 3. Restart on the same data dir, then check:
//!    - (a) blobs acknowledged this round are pullable byte-exact from their
//!      repository, manifests by digest byte-exact, every tag resolves to
//!      its last acknowledged manifest (or to the one whose PUT was in
//!      flight at the kill); a sample of older acknowledgements too;
//!    - (b) every tag of every repository in `_catalog` resolves to a
//!      manifest whose config and layers all exist in that repository;
//!    - (c) the server answers normally: `/v2/`, a fresh push and pull, an
//!      upload session started and cancelled;
//!    - (d) every chunked upload the kill cut off still reports at least
//!      the bytes acknowledged, resumes from there and completes (issue 12:
//!      "uploads are resumable across a restart"). Failures of (d) are
//!      collected and reported at the end, so they do not hide (a)–(c).
//!
//! At the end every acknowledged blob and manifest is pulled byte-exact once.
//! Blob contents are derived from a per-blob seed, so the ledger stays small.
//!
//! Seed: `BERTH_CRASH_SEED=<u64>` replays the same contents and choices (the
//! kill moments are timing and cannot be replayed exactly). The seed is
//! printed at the start and in every failure message.

#[path = "support/crash_checks.rs"]
mod checks;
#[path = "support/crash_ledger.rs"]
mod ledger;
mod support;
#[path = "support/crash_workload.rs"]
mod workload;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use berth_testkit::{BerthOptions, BerthServer};
use checks::{verify_everything, verify_round};
use ledger::Ledger;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use workload::Client;

/// Kill/restart cycles. The issue asks for at least 50.
const ROUNDS: usize = 52;
/// Concurrent pushing clients.
const CLIENTS: usize = 4;
/// Tags each client owns per repository (a tag has one writer, so its
/// expected value is known).
const TAGS_PER_CLIENT: usize = 2;
const REPOS: [&str; 4] = ["crash/alpha", "crash/beta", "crash/gamma/deep", "crash/delta"];
const MIN_BLOB: usize = 1024;
const MAX_BLOB: usize = 2 * 1024 * 1024;
/// Older acknowledgements re-checked (HEAD / GET) after each restart.
const OLD_SAMPLE: usize = 24;
/// The kill lands this long after the clients start, uniformly.
const KILL_DELAY_MS: std::ops::Range<u64> = 10..350;

#[test]
fn kill9_while_pushing_loses_nothing_acknowledged() {
    let seed: u64 = match std::env::var("BERTH_CRASH_SEED") {
        Ok(s) => s.parse().expect("BERTH_CRASH_SEED must be a u64"),
        Err(_) => rand::random(),
    };
    println!("crash test seed: {seed} (replay with BERTH_CRASH_SEED={seed})");
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let opts = BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth"));
    let mut server = BerthServer::start(opts).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let fail = |server: &BerthServer, round: usize, problems: &[String]| -> ! {
        let log = server.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
        panic!(
            "crash test failed (seed {seed}, round {round}):\n  {}\n--- berth log tail ---\n{}",
            problems.join("\n  "),
            tail.join("\n")
        );
    };

    let mut kill_delays = Vec::new();
    let mut resume_problems = Vec::new();
    for round in 0..ROUNDS {
        let killing = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let client = Client {
                    id,
                    round,
                    addr: server.addr(),
                    rng: StdRng::seed_from_u64(seed ^ ((round as u64) << 16) ^ id as u64),
                    ledger: ledger.clone(),
                    killing: killing.clone(),
                    upload: None,
                };
                thread::spawn(move || client.run())
            })
            .collect();
        let delay = rng.random_range(KILL_DELAY_MS);
        kill_delays.push(delay);
        thread::sleep(Duration::from_millis(delay));
        killing.store(true, Ordering::SeqCst);
        server.kill9();
        for c in clients {
            c.join().expect("client thread panicked");
        }
        let mut guard = ledger.lock().unwrap();
        if !guard.failures.is_empty() {
            let failures = std::mem::take(&mut guard.failures);
            drop(guard);
            fail(&server, round, &failures);
        }
        drop(guard);
        if let Err(e) = server.restart() {
            fail(&server, round, &[format!("restart after kill -9 failed: {e}")]);
        }
        let mut guard = ledger.lock().unwrap();
        let (problems, resume) = verify_round(server.addr(), server.data_dir().to_owned(), &mut guard, round, &mut rng);
        resume_problems.extend(resume.into_iter().map(|p| format!("round {round}: {p}")));
        drop(guard);
        if !problems.is_empty() {
            fail(&server, round, &problems);
        }
    }

    let mut guard = ledger.lock().unwrap();
    let problems = verify_everything(server.addr(), server.data_dir().to_owned(), &mut guard);
    if !problems.is_empty() {
        drop(guard);
        fail(&server, ROUNDS, &problems);
    }
    let blobs: usize = guard.repo_blobs.values().map(Vec::len).sum();
    let bytes: usize = guard.blobs.values().map(|b| b.len).sum();
    println!(
        "{ROUNDS} kill -9s in {:.1}s; acknowledged: {blobs} (repository, blob) pairs ({} distinct blobs, {:.1} MiB), \
         {} manifests, {} tags; interrupted uploads resumed: {}; mount fallbacks: {}",
        started.elapsed().as_secs_f64(),
        guard.blobs.len(),
        bytes as f64 / (1024.0 * 1024.0),
        guard.manifests.len(),
        guard.tags.len(),
        guard.resumed,
        guard.mount_fallbacks
    );
    for (op, (acked, interrupted)) in &guard.stats {
        println!("  {op:<14} acknowledged {acked:>5}, interrupted by the kill {interrupted:>3}");
    }
    println!("  kill delays (ms): {kill_delays:?}");
    assert_eq!(guard.mount_fallbacks, 0, "seed {seed}: a mount of an acknowledged blob fell back to an upload");
    assert!(
        resume_problems.is_empty(),
        "seed {seed}: {} of {} interrupted uploads could not be resumed after the restart \
         (issue 12: uploads are resumable across a restart):\n  {}",
        resume_problems.len(),
        resume_problems.len() + guard.resumed,
        resume_problems.join("\n  ")
    );
}
