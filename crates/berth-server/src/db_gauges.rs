//! Gauges read from the metadata database at scrape time:
//! `berth_project_storage_bytes{project}` and `berth_project_quota_bytes{project}`
//! (only projects with a limit), `berth_job_lease{job,holder}` (1 for each
//! lease held: which node runs garbage collection or a project's retention),
//! and the connection pool (`berth_db_connections{state}`,
//! `berth_db_connections_max`, `berth_db_waiting`; no query, read each scrape).
//!
//! Usage is computed in SQL over every manifest, so it is bounded here: one
//! query for all projects ([`berth_meta::QuotaStore::all_project_storage`]),
//! at most one in flight and one per [`REFRESH`]. A scrape waits at most
//! [`WAIT`] for it, then shows the last values (the query goes on and fills
//! them for the next scrape). A failed query leaves the gauges out until one
//! succeeds: better absent than silently stale. Labelled by project, which
//! administrators create; never by repository.

use berth_meta::{HeldLease, MetaStore, PoolStatus, ProjectStorage};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long values serve before a scrape asks again.
pub const REFRESH: Duration = Duration::from_secs(15);
/// How long a scrape waits for the query.
pub const WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Default)]
pub struct DbGauges(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    shown: Mutex<Shown>,
    /// Held by the task running the query: one at a time, across scrapes.
    querying: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug, Default)]
struct Shown {
    values: Arc<[ProjectStorage]>,
    leases: Arc<[HeldLease]>,
    /// Read at every scrape (cheap), unlike the rest.
    pool: Option<PoolStatus>,
    /// When the last query finished; `None` before the first.
    at: Option<Instant>,
}

impl DbGauges {
    fn fresh(&self) -> bool {
        let shown = self.0.shown.lock().unwrap_or_else(|p| p.into_inner());
        shown.at.is_some_and(|at| at.elapsed() < REFRESH)
    }

    /// Makes the values current if they are older than [`REFRESH`], waiting
    /// at most [`WAIT`].
    pub async fn refresh(&self, meta: &Arc<dyn MetaStore>) {
        self.0.shown.lock().unwrap_or_else(|p| p.into_inner()).pool = Some(meta.pool_status());
        if self.fresh() {
            return;
        }
        let querying = self.0.querying.clone();
        if let Ok(guard) = querying.clone().try_lock_owned() {
            // Another scrape's query may have finished just now.
            if self.fresh() {
                return;
            }
            let (me, meta) = (self.clone(), meta.clone());
            tokio::spawn(async move {
                let values = match meta.all_project_storage().await {
                    Ok(v) => v.into(),
                    Err(e) => {
                        tracing::warn!(error = %e, "project storage metrics: query failed");
                        Arc::from([])
                    }
                };
                let leases = match meta.held_leases(crate::state::now_ms()).await {
                    Ok(v) => v.into(),
                    Err(e) => {
                        tracing::warn!(error = %e, "job lease metrics: query failed");
                        Arc::from([])
                    }
                };
                let mut shown = me.0.shown.lock().unwrap_or_else(|p| p.into_inner());
                (shown.values, shown.leases, shown.at) = (values, leases, Some(Instant::now()));
                drop(shown);
                drop(guard);
            });
        }
        // Whoever runs the query releases the lock when it is done.
        let _ = tokio::time::timeout(WAIT, querying.lock()).await;
    }
}

impl Collector for DbGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (values, leases, pool) = {
            let shown = self.0.shown.lock().unwrap_or_else(|p| p.into_inner());
            (shown.values.clone(), shown.leases.clone(), shown.pool)
        };
        if let Some(p) = pool {
            encode_pool(&mut encoder, p)?;
        }
        if !leases.is_empty() {
            let mut family = encoder.encode_descriptor(
                "berth_job_lease",
                "1 for each background job lease held, by job and holding node",
                None,
                MetricType::Gauge,
            )?;
            for l in leases.iter() {
                let labels = [("job", l.job.as_str()), ("holder", l.holder.as_str())];
                ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
            }
        }
        if values.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "berth_project_storage_bytes",
            "Bytes counted against each project's quota (its manifests and the blobs they reference, each once)",
            None,
            MetricType::Gauge,
        )?;
        for p in values.iter() {
            let used = i64::try_from(p.used).unwrap_or(i64::MAX);
            ConstGauge::new(used).encode(family.encode_family(&[("project", p.project.as_str())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "berth_project_quota_bytes",
            "Each project's storage limit, for projects that have one",
            None,
            MetricType::Gauge,
        )?;
        for p in values.iter() {
            if let Some(limit) = p.limit {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                ConstGauge::new(limit).encode(family.encode_family(&[("project", p.project.as_str())])?)?;
            }
        }
        Ok(())
    }
}

fn encode_pool(encoder: &mut DescriptorEncoder, p: PoolStatus) -> Result<(), std::fmt::Error> {
    let gauge = |n: usize| ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
    let mut family = encoder.encode_descriptor(
        "berth_db_connections",
        "Metadata database connections open, by state",
        None,
        MetricType::Gauge,
    )?;
    gauge(p.open - p.idle.min(p.open)).encode(family.encode_family(&[("state", "in_use")])?)?;
    gauge(p.idle).encode(family.encode_family(&[("state", "idle")])?)?;
    if let Some(max) = p.max {
        let family = encoder.encode_descriptor(
            "berth_db_connections_max",
            "Most connections the metadata database pool opens",
            None,
            MetricType::Gauge,
        )?;
        gauge(max).encode(family)?;
    }
    let family = encoder.encode_descriptor(
        "berth_db_waiting",
        "Requests waiting for a metadata database connection",
        None,
        MetricType::Gauge,
    )?;
    gauge(p.waiting).encode(family)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(gauges: &DbGauges) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(gauges.clone()));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[tokio::test]
    async fn gauges_show_every_project_and_only_set_quotas_and_are_cached() {
        let dir = tempfile::tempdir().unwrap();
        let store = berth_meta::sqlite::SqliteStore::open(&dir.path().join("m.sqlite")).unwrap();
        let meta: Arc<dyn MetaStore> = Arc::new(store);
        meta.create_project("team-a", false, None, 1).await.unwrap();
        meta.set_project_quota("team-a", Some(1 << 20)).await.unwrap();
        let gauges = DbGauges::default();
        assert_eq!(scrape(&gauges), "# EOF\n", "nothing before the first query");
        assert!(meta.try_acquire_lease("gc", "node-1", Duration::from_secs(60), crate::state::now_ms()).await.unwrap());

        gauges.refresh(&meta).await;
        let text = scrape(&gauges);
        assert!(text.contains("berth_project_storage_bytes{project=\"library\"} 0\n"), "{text}");
        assert!(text.contains("berth_project_storage_bytes{project=\"team-a\"} 0\n"), "{text}");
        assert!(text.contains("berth_project_quota_bytes{project=\"team-a\"} 1048576\n"), "{text}");
        assert!(!text.contains("berth_project_quota_bytes{project=\"library\"}"), "{text}");
        assert!(text.contains("berth_job_lease{job=\"gc\",holder=\"node-1\"} 1\n"), "{text}");
        assert!(text.contains("berth_db_connections{state=\"idle\"}"), "{text}");
        assert!(text.contains("berth_db_waiting 0\n"), "{text}");

        // Within REFRESH a scrape asks nothing: a new project shows later.
        meta.create_project("team-b", false, None, 2).await.unwrap();
        gauges.refresh(&meta).await;
        assert!(!scrape(&gauges).contains("team-b"));
    }
}
