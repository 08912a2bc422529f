//! `berth gc` and `berth usage`: garbage collection on demand, with the
//! configuration `serve` reads (file, then `REGISTRY_*`), safe to run while
//! servers serve the same data (docs/garbage-collection.md).

use anyhow::Context;
use berth_jobs::gc::{collect, Forget, GcOptions, Invalidate};
use berth_jobs::SystemClock;
use berth_meta::MetaStore;
use berth_oci::RepoName;
use berth_server::{peers, App};
use futures_util::{FutureExt, StreamExt};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

/// Invalidations published at once (each waits for every node's acknowledgement).
const PUBLISH_CONCURRENCY: usize = 16;

/// How `berth gc`, a process serving nothing, keeps servers from serving
/// the untagged manifests it removes: on PostgreSQL it publishes on the
/// nodes' invalidation bus (acknowledged, like a manifest write); on SQLite
/// it changes the value every server on that file watches
/// (`berth_server::peers::announce_outside_write`).
fn outside_invalidation(config: &berth_config::Config, meta: Arc<dyn MetaStore>) -> anyhow::Result<Invalidate> {
    Ok(match &config.berth.database.url {
        Some(url) => {
            let opts = berth_meta::postgres::PostgresOptions::new(url.expose());
            let bus = berth_meta::postgres::InvalidationBus::publisher(&opts).context("berth.database.url")?;
            Arc::new(move |what: Forget| {
                let bus = bus.clone();
                async move {
                    let payloads: Vec<String> = match what {
                        Forget::All => vec!["*".to_owned()],
                        Forget::Manifests(m) => m.iter().map(|(r, d)| peers::payload(r, &[], Some(d))).collect(),
                    };
                    let mut sent = futures_util::stream::iter(payloads)
                        .map(|p| {
                            let bus = bus.clone();
                            async move { bus.publish(&p).await }
                        })
                        .buffer_unordered(PUBLISH_CONCURRENCY);
                    while let Some(r) = sent.next().await {
                        r.map_err(|e| e.to_string())?;
                    }
                    Ok(())
                }
                .boxed()
            })
        }
        None => Arc::new(move |_what: Forget| {
            let meta = meta.clone();
            async move { peers::announce_outside_write(&*meta).await.map_err(|e| e.to_string()) }.boxed()
        }),
    })
}

/// How the scheduled run inside `berth serve` does it: this server's cache
/// directly, and with peers every other node's through the bus.
fn in_server_invalidation(app: Arc<App>) -> Invalidate {
    Arc::new(move |what: Forget| {
        let app = app.clone();
        async move {
            match what {
                Forget::All => peers::invalidate_all(&app).await.map_err(|e| format!("{e:?}")),
                Forget::Manifests(m) => {
                    let mut done = futures_util::stream::iter(m)
                        .map(|(repo, digest)| {
                            let app = app.clone();
                            async move {
                                // A name the store returned always parses; if not, forget everything.
                                match RepoName::parse(&repo) {
                                    Ok(repo) => peers::invalidate(&app, &repo, &[], Some(&digest)).await,
                                    Err(_) => peers::invalidate_all(&app).await,
                                }
                            }
                        })
                        .buffer_unordered(PUBLISH_CONCURRENCY);
                    while let Some(r) = done.next().await {
                        r.map_err(|e| format!("{e:?}"))?;
                    }
                    Ok(())
                }
            }
        }
        .boxed()
    })
}

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
        opts.invalidate = Some(outside_invalidation(&config, stores.meta.clone())?);
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
pub fn spawn_scheduled(config: &berth_config::Config, schedule: &str, app: Arc<App>) -> anyhow::Result<()> {
    let (meta, blobs, server) = (app.meta.clone(), app.blobs.clone(), app.clone());
    let schedule = berth_jobs::Schedule::parse(schedule).map_err(|e| anyhow::anyhow!("berth.gc.schedule: {e}"))?;
    let untagged = match &config.berth.gc.untagged {
        Some(p) => Some(regex::Regex::new(&format!("^(?:{p})$")).context("berth.gc.untagged")?),
        None => None,
    };
    let opts = std::sync::Arc::new(GcOptions {
        grace: config.berth.gc.grace,
        untagged,
        upload_age: config.storage.maintenance.uploadpurging.age,
        invalidate: Some(in_server_invalidation(app)),
        ..GcOptions::default()
    });
    let job: berth_jobs::schedule::JobFn = std::sync::Arc::new(move || {
        let (meta, blobs, opts, server) = (meta.clone(), blobs.clone(), opts.clone(), server.clone());
        Box::pin(async move {
            // Read-only mode freezes storage (backups, migrations): no deletions.
            if server.read_only.is_on() {
                return Ok("garbage collection skipped: read-only mode".to_owned());
            }
            match collect(&*meta, &*blobs, &SystemClock, &opts).await {
                Ok(r) => Ok({
                    server.metrics.berth.gc_finished(r.bytes_freed);
                    format!(
                        "garbage collection removed {} manifests, {} links, {} blobs ({} bytes), {} uploads",
                        r.manifests, r.links, r.blobs, r.bytes_freed, r.uploads
                    )
                }),
                Err(e) => Err(e.to_string()),
            }
        })
    });
    berth_jobs::Worker::new("gc", schedule, std::sync::Arc::new(SystemClock), job).spawn();
    tracing::info!(schedule = %config.berth.gc.schedule.as_deref().unwrap_or(""), "scheduled garbage collection");
    Ok(())
}
