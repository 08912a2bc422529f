//! Garbage collection at scale: seed N unreferenced blobs through the API
//! (many concurrent small monolithic uploads, each leaving real metadata and
//! a stored object), then time the collector as an operator runs it:
//! `berth gc --grace 0s CONFIG` beside the running server (online), and
//! Distribution's `registry garbage-collect CONFIG` on its own data (offline
//! by design: Distribution requires the registry read-only or stopped; here
//! its server is idle while it runs). Both collectors run pinned to the
//! server core, like the servers.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use serde_json::json;

use super::{run_workers, Ctx};
use crate::http::Conn;
use crate::registry::{push_blob, Blob, Upload};
use crate::report::Row;
use crate::servers::{backing_cpu, Server, SERVER_CPU};
use crate::stats::Phase;

/// Each seeded blob: random bytes (unique, incompressible).
const BLOB_BYTES: usize = 1024;

/// Seeds `count` distinct unreferenced blobs into `server`; returns seconds.
async fn seed(server: &Server, count: usize, clients: usize, seed: u64) -> Result<f64> {
    let addr = server.addr;
    let phase = Phase::start(server.pid);
    // Progress every 10,000 blobs: the rate over time shows whether pushes
    // slow down as the store grows.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    run_workers(clients, |w| {
        let done = done.clone();
        async move {
            let mut conn = Conn::new(addr);
            let mut rng = SmallRng::seed_from_u64(seed ^ ((w as u64) << 32));
            let repo = format!("gc/w{w:02}");
            for _ in (w..count).step_by(clients) {
                let mut data = vec![0u8; BLOB_BYTES];
                rng.fill_bytes(&mut data);
                push_blob(&mut conn, &repo, &Blob::new(data), Upload::Monolithic).await?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_multiple_of(10_000) {
                    eprintln!("    {n} seeded after {:.0} s", started.elapsed().as_secs_f64());
                }
            }
            Ok(())
        }
    })
    .await?;
    Ok(phase.end().secs)
}

/// What one collector run did.
struct Collected {
    secs: f64,
    blobs: u64,
    bytes: u64,
    cpu_s: f64,
    output_tail: String,
}

fn run_collector(server: &Server) -> Result<Collected> {
    let gc = server.gc.as_ref().context("no collector command for this server")?;
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &SERVER_CPU.to_string()]).arg(&gc.program).args(&gc.args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(gc.env.iter().map(|(k, v)| (k, v)));
    let backing = backing_cpu(server);
    let own = children_cpu();
    let t = Instant::now();
    let out = cmd.output().with_context(|| format!("running {}", gc.program.display()))?;
    let secs = t.elapsed().as_secs_f64();
    let backing = backing_cpu(server) - backing;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{} {:?} failed: {}\n{}", gc.program.display(), gc.args, out.status, tail(&stderr, 20));
    }
    // getrusage of the children waited for, before and after: the collector's own CPU.
    let cpu_s = children_cpu() - own;
    let text = format!("{stdout}\n{stderr}");
    let summary = |needle: &str| text.lines().find(|l| l.contains(needle)).unwrap_or_default().to_owned();
    let ((blobs, bytes), output_tail) = match gc.kind {
        crate::servers::Kind::Berth => (parse_berth(&stdout)?, summary("removed:")),
        _ => ((parse_distribution(&text)?, 0), summary("manifests eligible for deletion")),
    };
    Ok(Collected { secs, blobs, bytes, cpu_s: cpu_s + backing, output_tail })
}

/// CPU seconds of all waited-for children so far (cumulative; callers diff).
fn children_cpu() -> f64 {
    // SAFETY: getrusage only writes into the struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `removed: 0 untagged manifests, 12 repository links, 12 blobs (12288 bytes freed), 0 expired uploads`
fn parse_berth(stdout: &str) -> Result<(u64, u64)> {
    let line = stdout.lines().find(|l| l.starts_with("removed:")).context("berth gc printed no summary")?;
    let number_before = |what: &str| -> Option<u64> {
        let i = line.find(what)?;
        line[..i].trim_end().rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let blobs = number_before(" blobs (").context("no blob count")?;
    let bytes = number_before(" bytes freed").context("no byte count")?;
    Ok((blobs, bytes))
}

/// Distribution 2.8: `N blobs marked, M blobs and K manifests eligible for deletion`.
fn parse_distribution(text: &str) -> Result<u64> {
    let line = text
        .lines()
        .find(|l| l.contains("eligible for deletion") && l.contains("blobs and"))
        .with_context(|| format!("registry garbage-collect printed no summary:\n{}", tail(text, 10)))?;
    let after = line.split("marked, ").nth(1).context("summary format")?;
    after.split_whitespace().next().context("summary format")?.parse().context("blob count")
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let (count, clients) = (ctx.sizes.gc_blobs, ctx.sizes.seed_clients);
    let mut seeded = [0.0; 2];
    let mut runs = Vec::new();
    for (i, server) in ctx.registries().into_iter().enumerate() {
        seeded[i] = seed(server, count, clients, 16 + i as u64).await?;
        eprintln!(
            "  seeded {count} unreferenced blobs into {} in {:.1} s ({:.0}/s)",
            server.kind.name(),
            seeded[i],
            count as f64 / seeded[i]
        );
        let c = run_collector(server)?;
        eprintln!("  {} collector: {:.1} s, {} blobs — {}", server.kind.name(), c.secs, c.blobs, c.output_tail);
        if c.blobs < count as u64 {
            bail!("{} collected {} blobs, {count} were seeded", server.kind.name(), c.blobs);
        }
        runs.push(c);
    }
    let (b, d) = (&runs[0], &runs[1]);
    let bytes_d = d.blobs * BLOB_BYTES as u64; // Distribution does not count bytes
    let detail = json!({
        "blobs_seeded": count, "blob_bytes": BLOB_BYTES, "seed_clients": clients,
        "seed_secs": {"berth": seeded[0], "distribution": seeded[1]},
        "seed_blobs_per_s": {"berth": count as f64 / seeded[0], "distribution": count as f64 / seeded[1]},
        "berth": {"secs": b.secs, "blobs": b.blobs, "bytes_freed": b.bytes, "cpu_s_incl_backing": b.cpu_s,
                  "summary": b.output_tail},
        "distribution": {"secs": d.secs, "blobs": d.blobs, "bytes_freed_estimate": bytes_d, "cpu_s": d.cpu_s,
                         "summary": d.output_tail, "mode": "offline (registry idle; it must be read-only or stopped)"},
    });
    let label = format!("GC of {count} unreferenced {BLOB_BYTES}-byte blobs (berth gc online; Distribution offline)");
    ctx.report.push(
        Row::new("gc_blobs_per_s", label.clone(), "blobs/s", true)
            .values(b.blobs as f64 / b.secs, d.blobs as f64 / d.secs)
            .detail(detail),
    );
    ctx.report.push(Row::new("gc_wall", format!("{label}: wall time"), "s", false).values(b.secs, d.secs));
    ctx.report.push(
        Row::new("gc_freed", format!("{label}: bytes freed"), "MB", true)
            .values(b.bytes as f64 / 1e6, bytes_d as f64 / 1e6),
    );
    ctx.report.push(
        Row::new("gc_seed", format!("seeding {count} blobs, {clients} clients (POST + PUT each)"), "blobs/s", true)
            .values(count as f64 / seeded[0], count as f64 / seeded[1]),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_summaries() {
        let b = "removed: 0 untagged manifests, 12 repository links, 12 blobs (12288 bytes freed), 0 expired uploads";
        assert_eq!(parse_berth(b).unwrap(), (12, 12288));
        let d = "time=\"x\" level=info msg=\"...\"\n3 blobs marked, 500 blobs and 0 manifests eligible for deletion\n";
        assert_eq!(parse_distribution(d).unwrap(), 500);
    }
}
