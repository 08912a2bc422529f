//! `berth gc` and `berth usage`: garbage collection on demand, with the
//! configuration `serve` reads (file, then `REGISTRY_*`), safe to run while
//! servers serve the same data (docs/garbage-collection.md).

use anyhow::Context;
use berth_jobs::gc::{collect, GcOptions};
use berth_jobs::SystemClock;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

pub struct GcArgs {
    pub dry_run: bool,
    pub grace: Option<Duration>,
    pub untagged: Option<String>,
}

/// `1h`, `30m`, `45s`, `500ms`, `2d`, `0s` (Go-style units, one or more: `1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| format!("bad duration {s:?}"))?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let ms = match &rest[..unit] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            u => return Err(format!("bad unit {u:?} in {s:?} (ms, s, m, h, d)")),
        };
        total += Duration::from_millis(n * ms);
        rest = &rest[unit..];
    }
    Ok(total)
}

fn progress() -> Option<berth_jobs::gc::OnProgress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(Arc::new(|phase: &str, n: u64| {
        eprint!("\r\x1b[2K{phase}: {n}");
        let _ = std::io::stderr().flush();
    }))
}

pub fn run(loaded: berth_config::Loaded, args: GcArgs) -> anyhow::Result<()> {
    let config = loaded.config;
    crate::logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let stores = crate::stores::open(&config).await?;
        let (meta, blobs) = (&*stores.meta, &*stores.blobs);
        let purging = &config.storage.maintenance.uploadpurging;
        let mut opts = GcOptions { dry_run: args.dry_run, on_progress: progress(), ..GcOptions::default() };
        opts.upload_age = purging.age;
        opts.grace = args.grace.unwrap_or(config.berth.gc.grace);
        if let Some(p) = args.untagged.as_ref().or(config.berth.gc.untagged.as_ref()) {
            opts.untagged = Some(regex::Regex::new(&format!("^(?:{p})$")).context("--untagged")?);
        }
        let r = collect(meta, blobs, &SystemClock, &opts).await;
        if opts.on_progress.is_some() {
            eprintln!();
        }
        let r = r?;
        let verb = if args.dry_run { "would remove" } else { "removed" };
        for line in &r.listed {
            println!("{line}");
        }
        println!(
            "{verb}: {} untagged manifests, {} repository links, {} blobs ({} bytes freed), {} expired uploads",
            r.manifests, r.links, r.blobs, r.bytes_freed, r.uploads
        );
        Ok(())
    })
}

pub fn usage(loaded: berth_config::Loaded, repo: Option<String>) -> anyhow::Result<()> {
    let config = loaded.config;
    crate::logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let stores = crate::stores::open(&config).await?;
        let rows = stores.meta.repository_usage(repo.as_deref()).await?;
        if rows.is_empty() && repo.is_some() {
            anyhow::bail!("no repository {}", repo.unwrap_or_default());
        }
        println!(
            "{:<40} {:>8} {:>10} {:>14} {:>14} {:>14}",
            "REPOSITORY", "BLOBS", "MANIFESTS", "LOGICAL", "SHARED", "FREEABLE"
        );
        for u in rows {
            println!(
                "{:<40} {:>8} {:>10} {:>14} {:>14} {:>14}",
                u.repository,
                u.blobs,
                u.manifests,
                u.logical_bytes + u.manifest_bytes,
                u.shared_bytes,
                u.exclusive_bytes + u.manifest_bytes
            );
        }
        Ok(())
    })
}

/// Runs garbage collection inside `berth serve` on `berth.gc.schedule`. The
/// `gc` lease makes it run on one node of a cluster at a time; a node that
/// finds the lease taken skips that run.
pub fn spawn_scheduled(
    config: &berth_config::Config,
    schedule: &str,
    meta: std::sync::Arc<dyn berth_meta::MetaStore>,
    blobs: std::sync::Arc<dyn berth_blob::BlobStore>,
) -> anyhow::Result<()> {
    let schedule = berth_jobs::Schedule::parse(schedule).map_err(|e| anyhow::anyhow!("berth.gc.schedule: {e}"))?;
    let untagged = match &config.berth.gc.untagged {
        Some(p) => Some(regex::Regex::new(&format!("^(?:{p})$")).context("berth.gc.untagged")?),
        None => None,
    };
    let opts = std::sync::Arc::new(GcOptions {
        grace: config.berth.gc.grace,
        untagged,
        upload_age: config.storage.maintenance.uploadpurging.age,
        ..GcOptions::default()
    });
    let job: berth_jobs::schedule::JobFn = std::sync::Arc::new(move || {
        let (meta, blobs, opts) = (meta.clone(), blobs.clone(), opts.clone());
        Box::pin(async move {
            match collect(&*meta, &*blobs, &SystemClock, &opts).await {
                Ok(r) => Ok(format!(
                    "garbage collection removed {} manifests, {} links, {} blobs ({} bytes), {} uploads",
                    r.manifests, r.links, r.blobs, r.bytes_freed, r.uploads
                )),
                Err(e) => Err(e.to_string()),
            }
        })
    });
    berth_jobs::Worker::new("gc", schedule, std::sync::Arc::new(SystemClock), job).spawn();
    tracing::info!(schedule = %config.berth.gc.schedule.as_deref().unwrap_or(""), "scheduled garbage collection");
    Ok(())
}
