//! Tag retention from the binary: `berth retention run --project P
//! [--dry-run]` on the database, as `berth gc` (safe while servers run),
//! and the scheduler inside `berth serve` that runs each project's policy
//! on its `trigger.settings.cron`, once per cluster (berth_jobs::retention).

use anyhow::Context;
use berth_jobs::retention::policy::{five_field_cron, Policy};
use berth_jobs::retention::{run, run_due, Invalidate, Removed, RetentionOptions};
use berth_jobs::{Clock, Schedule, SystemClock};
use berth_meta::MetaStore;
use berth_oci::Tag;
use berth_server::{peers, App};
use futures_util::FutureExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often the scheduler re-reads the policies and looks for due runs.
const SCHEDULER_TICK: Duration = Duration::from_secs(30);

fn tags(r: &Removed) -> Vec<Tag> {
    r.tags.iter().filter_map(|t| Tag::parse(t)).collect()
}

/// `berth retention run`, a process serving nothing: on PostgreSQL it
/// publishes each removal on the nodes' invalidation bus; on SQLite it
/// announces an outside write, as `berth gc` does.
fn outside_invalidation(config: &berth_config::Config, meta: Arc<dyn MetaStore>) -> anyhow::Result<Invalidate> {
    Ok(match &config.berth.database.url {
        Some(url) => {
            let opts = berth_meta::postgres::PostgresOptions::new(url.expose());
            let bus = berth_meta::postgres::InvalidationBus::publisher(&opts).context("berth.database.url")?;
            Arc::new(move |removed: Vec<Removed>| {
                let bus = bus.clone();
                async move {
                    for r in removed {
                        bus.publish(&peers::payload(&r.repository, &tags(&r), Some(&r.digest)))
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    Ok(())
                }
                .boxed()
            })
        }
        None => Arc::new(move |removed: Vec<Removed>| {
            let meta = meta.clone();
            async move {
                if removed.is_empty() {
                    return Ok(());
                }
                peers::announce_outside_write(&*meta).await.map_err(|e| e.to_string())
            }
            .boxed()
        }),
    })
}

pub fn run_cli(loaded: berth_config::Loaded, project: String, dry_run: bool) -> anyhow::Result<()> {
    let config = loaded.config;
    crate::logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let stores = crate::stores::open(&config).await?;
        let opts = RetentionOptions {
            dry_run,
            invalidate: Some(outside_invalidation(&config, stores.meta.clone())?),
            ..RetentionOptions::default()
        };
        let report = run(&*stores.meta, &SystemClock, &project, &opts).await?;
        for d in &report.decisions {
            let verb = if d.retained {
                "retain"
            } else if dry_run {
                "would remove"
            } else {
                "remove"
            };
            println!("{verb}\t{}@{}\t{}\t{}", d.repository, d.digest, d.tags.join(","), d.reason);
        }
        let verb = if dry_run { "would remove" } else { "removed" };
        println!("run {}: retained {}, {verb} {}", report.run_id, report.retained, report.removed);
        Ok(())
    })
}

/// Runs every project's scheduled policy inside `berth serve`. Policies are
/// re-read every [`SCHEDULER_TICK`], so a changed cron applies without a
/// restart; each due time runs once per cluster (`run_due` under the
/// project's lease).
pub fn spawn_scheduler(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let clock = SystemClock;
        // project → (cron, next due time)
        let mut next: HashMap<String, (String, Option<i64>)> = HashMap::new();
        let invalidate = berth_server::retention::invalidation(app.clone());
        loop {
            match app.meta.scheduled_retention_policies().await {
                Ok(policies) => {
                    let now = clock.now_ms();
                    next.retain(|p, _| policies.iter().any(|s| &s.project == p));
                    for stored in policies {
                        let cron = match Policy::parse(&stored.policy) {
                            Ok(p) => p.cron().map(five_field_cron),
                            Err(_) => None,
                        }
                        .or(stored.cron.as_deref().map(five_field_cron));
                        let Some(cron) = cron else { continue };
                        let entry = next.entry(stored.project.clone()).or_insert_with(|| (String::new(), None));
                        if entry.0 != cron {
                            match Schedule::parse(&cron) {
                                Ok(s) => *entry = (cron, s.next_after(now)),
                                Err(e) => {
                                    tracing::warn!(project = %stored.project, error = %e, "retention cron");
                                    *entry = (cron, None);
                                }
                            }
                            continue;
                        }
                        let Some(due) = entry.1.filter(|due| *due <= now) else { continue };
                        // A due run waits while the registry is read-only.
                        if app.read_only.is_on() {
                            continue;
                        }
                        let opts = RetentionOptions { invalidate: Some(invalidate.clone()), ..Default::default() };
                        match run_due(&*app.meta, &clock, &stored.project, due, &opts).await {
                            Ok(Some(r)) => {
                                tracing::info!(
                                    project = %stored.project, run = r.run_id, retained = r.retained,
                                    removed = r.removed, "tag retention ran"
                                );
                                berth_server::events::retention_finished(&app, &stored.project, &r, false, "SCHEDULE");
                            }
                            Ok(None) => {}
                            Err(e) => tracing::warn!(project = %stored.project, error = %e, "tag retention failed"),
                        }
                        entry.1 = Schedule::parse(&entry.0).ok().and_then(|s| s.next_after(clock.now_ms()));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading retention schedules"),
            }
            tokio::time::sleep(SCHEDULER_TICK).await;
        }
    })
}
