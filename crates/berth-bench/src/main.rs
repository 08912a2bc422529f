//! `berth-bench`: Berth against CNCF Distribution, side by side, in one run
//! (issue 14). It is both the orchestrator (starts the servers, pins them,
//! alternates, reports) and the load generator (a concurrent HTTP/1.1 client
//! on a single-threaded tokio runtime, pinned to its own core).
//!
//! Run it through `scripts/bench`, which builds Berth in release mode first.

mod http;
mod registry;
mod report;
mod scenarios;
mod servers;
mod stats;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Parser;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::json;

use report::{fmt, Report, Row};
use scenarios::{Ctx, Sizes, MIB};
use servers::{Backend, Kind, CLIENT_CPU, SERVER_CPU};

#[derive(Parser, Debug)]
#[command(about = "Benchmark Berth against CNCF Distribution on loopback (issue 14)")]
struct Args {
    /// Every scenario at a tiny size: checks that every figure is non-zero
    /// and every digest verified, not speed.
    #[arg(long)]
    quick: bool,
    /// Write the JSON results here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The Berth binary (release build).
    #[arg(long, env = "BERTH_BIN")]
    berth_bin: PathBuf,
    /// Berth's storage: `fs` (filesystem blobs, embedded metadata) or `s3-postgres` (blobs in a
    /// local Garage, metadata in a local PostgreSQL, both pinned to the server core with Berth).
    /// Distribution runs on the filesystem either way.
    #[arg(long, value_enum, default_value = "fs")]
    backend: Backend,
    /// Scenarios to run (default: all): blobs, manifests, images, zb, listings, gc.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Repositories seeded for the `_catalog` walk (default 10000, 1000 with --quick; the issue's
    /// 100000 takes Distribution 5–8 minutes to seed through the API, past the 10-minute budget).
    #[arg(long)]
    catalog_repos: Option<usize>,
    /// Tags seeded for the `tags/list` walk (default 10000; 200 with --quick).
    #[arg(long)]
    tags: Option<usize>,
    /// Small images pushed by the `images` scenario (default 1000; 32 with --quick).
    #[arg(long)]
    small_images: Option<usize>,
    /// Unreferenced blobs seeded for the `gc` scenario (default 10000; 500 with --quick).
    #[arg(long)]
    gc_blobs: Option<usize>,
    /// Seconds per manifest hot-loop measurement (default 5; 1 with --quick).
    #[arg(long)]
    manifest_secs: Option<f64>,
    /// Alternating rounds (A/B/A/B) of the cheap scenarios (default 2).
    #[arg(long)]
    rounds: Option<usize>,
    /// Berth with its own token service: requests carry a bearer token, as
    /// docker's do after `docker login` (the manifests scenario only).
    #[arg(long)]
    auth: bool,
    /// The command line to record in the JSON (scripts/bench passes its own).
    #[arg(long, default_value = "")]
    command: String,
}

fn sizes(args: &Args) -> Sizes {
    let q = args.quick;
    Sizes {
        quick: q,
        rounds: args.rounds.unwrap_or(if q { 1 } else { 2 }),
        blob_bytes: if q { 16 * MIB } else { 256 * MIB },
        pull_reps_single: if q { 2 } else { 4 },
        pull_clients: 32,
        manifest_conns: 64,
        manifest_secs: args.manifest_secs.unwrap_or(if q { 1.0 } else { 5.0 }),
        small_images: args.small_images.unwrap_or(if q { 32 } else { 1000 }),
        small_clients: if q { 4 } else { 16 },
        tags: args.tags.unwrap_or(if q { 200 } else { 10_000 }),
        catalog_repos: args.catalog_repos.unwrap_or(if q { 1000 } else { 10_000 }),
        seed_clients: 64,
        gc_blobs: args.gc_blobs.unwrap_or(if q { 500 } else { 10_000 }),
    }
}

fn shell(cmd: &str) -> String {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !args.berth_bin.is_file() {
        bail!("berth binary {} not found (scripts/bench builds it)", args.berth_bin.display());
    }
    servers::pin_self().context("pinning the load generator")?;
    let started = Instant::now();
    let scratch = tempfile::Builder::new().prefix("berth-bench-").tempdir_in(servers::bench_tmp())?;
    if args.auth && args.only != ["manifests"] {
        bail!("--auth measures the manifests scenario only: add --only manifests");
    }
    let berth = servers::start_berth(&args.berth_bin, scratch.path(), args.backend, args.auth)?;
    let distribution = servers::start_distribution()?;
    let mut pinning = format!(
        "servers pinned to CPU {SERVER_CPU} (taskset -a -p -c {SERVER_CPU} / taskset -c {SERVER_CPU}), load generator \
         (single-threaded tokio) pinned to CPU {CLIENT_CPU}"
    );
    if args.backend == Backend::S3Postgres {
        pinning.push_str(&format!(
            "; Garage and PostgreSQL (postmaster and every backend) pinned to CPU {SERVER_CPU} too, sharing the \
             core with Berth"
        ));
    }
    eprintln!("berth-bench: {pinning}");
    eprintln!(
        "berth-bench: berth pid {} on {}, distribution pid {} on {}",
        berth.pid, berth.addr, distribution.pid, distribution.addr
    );
    let sizes = sizes(&args);
    let mut ctx = Ctx { sizes, berth, distribution, rng: SmallRng::seed_from_u64(14), report: Report::default() };
    ctx.report.notes.push(pinning.clone());
    if args.auth {
        ctx.report.notes.push(
            "--auth: Berth runs its token service and every request carries a bearer token (verified, from the \
             verified-token cache, and checked against the endpoint's scope); Distribution runs without auth"
                .into(),
        );
    }
    match args.backend {
        Backend::Fs => ctx.report.notes.push(
            "Berth today: blob GETs over HTTP/1.1 use sendfile(2); manifests are served from an in-process cache"
                .into(),
        ),
        Backend::S3Postgres => {
            ctx.report.notes.push(
                "backend s3-postgres: Berth on S3 blob storage (local Garage, path-style, redirect disabled so Berth \
                 proxies every blob byte) and PostgreSQL metadata (local, fsync=off); Distribution on its filesystem \
                 config (its 2.8 S3 driver is not usable here), so this compares Berth-on-S3+PG against \
                 Distribution-on-filesystem"
                    .into(),
            );
            ctx.report.notes.push(
                "Berth's server CPU and memory figures count the Berth process only; Garage's and PostgreSQL's CPU is \
                 in the JSON (backing_cpu_s per scenario) and competes for the same core"
                    .into(),
            );
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let want = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let mut timings = serde_json::Map::new();
    for name in ["blobs", "manifests", "images", "zb", "listings", "gc"] {
        if !want(name) {
            continue;
        }
        eprintln!("berth-bench: scenario {name}");
        let t = Instant::now();
        let client_cpu = stats::self_cpu();
        let backing_cpu = servers::backing_cpu(&ctx.berth);
        let result = rt.block_on(async {
            match name {
                "blobs" => scenarios::blobs::run(&mut ctx).await,
                "manifests" => scenarios::manifests::run(&mut ctx).await,
                "images" => scenarios::images::run(&mut ctx).await,
                "zb" => scenarios::zb::run(&mut ctx).await,
                "gc" => scenarios::gc::run(&mut ctx).await,
                _ => scenarios::listings::run(&mut ctx).await,
            }
        });
        result.with_context(|| format!("scenario {name}"))?;
        timings.insert(
            name.into(),
            json!({
                "secs": t.elapsed().as_secs_f64(),
                "client_cpu_s": stats::self_cpu() - client_cpu,
                "backing_cpu_s": servers::backing_cpu(&ctx.berth) - backing_cpu,
            }),
        );
    }
    memory_rows(&mut ctx);
    check_targets(&mut ctx.report);

    let s3_only = |v: String| if args.backend == Backend::S3Postgres { v } else { String::new() };
    let header = json!({
        "schema": 1,
        "date": shell("date -u +%Y-%m-%dT%H:%M:%SZ"),
        "mode": if args.quick { "quick" } else { "full" },
        "backend": args.backend.name(),
        "command": args.command,
        "machine": {
            "nproc": shell("nproc"),
            "cpu": shell("lscpu | grep 'Model name' | sed 's/.*: *//'"),
            "kernel": shell("uname -r"),
            "memory": shell("free -h | awk '/Mem:/ {print $2}'"),
        },
        "versions": {
            "berth_commit": shell("git -C \"$(dirname \"$0\")\" rev-parse --short HEAD 2>/dev/null || git rev-parse --short HEAD"),
            "distribution": shell("docker-registry --version 2>&1 | head -1"),
            "nginx": shell("nginx -v 2>&1"),
            "garage": s3_only(shell("\"${BERTH_GARAGE:-/var/tmp/berth-tools/bin/garage}\" --version 2>&1 | head -1")),
            "postgres": s3_only(shell("\"$(ls -d /usr/lib/postgresql/*/bin/postgres | tail -1)\" --version")),
        },
        "pinning": pinning,
        "wall_secs": started.elapsed().as_secs_f64(),
        "scenario_timings": timings,
        "load_generator_cpu_s": stats::self_cpu(),
    });
    let doc = ctx.report.to_json(header);
    if args.backend == Backend::S3Postgres {
        println!("\nBerth: S3 (Garage) + PostgreSQL; Distribution: filesystem.");
    }
    println!("\n{}", ctx.report.markdown());
    for note in &ctx.report.notes {
        println!("- {note}");
    }
    println!("- digests verified by the client: {}", ctx.report.digests_verified);
    println!("- wall time {:.0} s, load generator CPU {:.0} s", started.elapsed().as_secs_f64(), stats::self_cpu());
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("berth-bench: wrote {}", out.display());
    }
    let zeros = ctx.report.zero_rows();
    if !zeros.is_empty() {
        bail!("figures that are zero or not finite: {}", zeros.join(", "));
    }
    if ctx.report.digests_verified == 0 && (want("blobs") || want("zb")) {
        bail!("no digest was verified");
    }
    Ok(())
}

/// RSS rows: idle (right after start) and peak (`VmHWM` at the end).
fn memory_rows(ctx: &mut Ctx) {
    let mib = |kib: u64| kib as f64 / 1024.0;
    let (b, d) = (&ctx.berth, &ctx.distribution);
    assert_eq!((b.kind, d.kind), (Kind::Berth, Kind::Distribution));
    let rows = [
        Row::new("rss_idle", "resident memory, idle after start", "MiB", false)
            .values(mib(b.idle_rss_kib), mib(d.idle_rss_kib)),
        Row::new("rss_peak", "resident memory, peak during the run (VmHWM)", "MiB", false)
            .values(mib(b.peak_rss_kib()), mib(d.peak_rss_kib())),
        Row::new("rss_end", "resident memory at the end of the run", "MiB", false)
            .values(mib(b.rss_kib()), mib(d.rss_kib())),
    ];
    for row in rows {
        ctx.report.push(row);
    }
}

/// Issue 14's floors and PERFORMANCE.md §4's aims, checked against the rows present.
fn check_targets(r: &mut Report) {
    let get = |r: &Report, k: &str| r.row(k).map(|row| (row.berth, row.distribution, row.nginx, row.ratio()));
    for (key, what) in [
        ("manifest_get_tag", "GET by tag"),
        ("manifest_head_tag", "HEAD by tag"),
        ("manifest_get_digest", "GET by digest"),
        ("manifest_head_digest", "HEAD by digest"),
    ] {
        if let Some((_, _, _, ratio)) = get(r, key) {
            r.check(format!("manifest {what} ≥ 3× Distribution req/s"), "floor", format!("{ratio:.1}×"), ratio >= 3.0);
        }
    }
    if let Some((b, _, _, _)) = get(r, "manifest_get_tag") {
        r.check("manifest GET by tag ≥ 60k req/s", "aim", format!("{} req/s", fmt(b)), b >= 60_000.0);
    }
    if let Some((b, d, _, _)) = get(r, "catalog_walk") {
        let speedup = d / b.max(1e-9);
        let label = r.row("catalog_walk").map(|row| row.label.clone()).unwrap_or_default();
        let measured = format!("{speedup:.1}× faster ({label})");
        r.check(
            "_catalog walk (issue: 100,000 repositories) ≥ 10× faster than Distribution",
            "floor",
            measured,
            speedup >= 10.0,
        );
    }
    for (key, what) in [("blob_push_monolithic", "monolithic"), ("blob_push_chunked", "chunked")] {
        if let Some((b, _, _, ratio)) = get(r, key) {
            r.check(
                format!("durable blob push ({what}) ≥ 1.5× Distribution"),
                "floor",
                format!("{ratio:.2}× ({} MB/s)", fmt(b)),
                ratio >= 1.5,
            );
        }
    }
    if let Some((b, _, _, _)) = get(r, "blob_push_monolithic") {
        r.check("blob push ≥ 380 MB/s", "aim", format!("{} MB/s", fmt(b)), b >= 380.0);
    }
    for key in ["blob_pull_1", "blob_pull_32"] {
        if let Some((b, d, Some(n), _)) = get(r, key) {
            let floor = (1.5 * d).min(0.9 * n);
            r.check(
                format!("{key}: ≥ min(1.5× Distribution, 90% of nginx) = {} MB/s", fmt(floor)),
                "floor",
                format!("{} MB/s ({:.0}% of nginx, {:.2}× Distribution)", fmt(b), 100.0 * b / n, b / d),
                b >= floor,
            );
            r.check(
                format!("{key}: within 10% of nginx sendfile"),
                "aim",
                format!("{:.0}%", 100.0 * b / n),
                b >= 0.9 * n,
            );
        }
        if let Some((b, _, _, _)) = get(r, &format!("{key}_cpu")) {
            r.check(format!("{key}: ≤ 0.1 server CPU-s/GB"), "aim", format!("{b:.3} CPU-s/GB"), b <= 0.1);
        }
    }
    if let Some((b, d, _, _)) = get(r, "rss_idle") {
        r.check("idle RSS below Distribution", "floor", format!("{b:.1} vs {d:.1} MiB"), b < d);
        r.check("idle RSS ≤ 8 MiB", "aim", format!("{b:.1} MiB"), b <= 8.0);
    }
    if let Some((b, d, _, _)) = get(r, "rss_peak") {
        r.check("peak RSS below Distribution", "floor", format!("{b:.1} vs {d:.1} MiB"), b < d);
    }
}
