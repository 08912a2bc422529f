//! `berth audit verify|export|prune`, and the audit log's start-up in
//! `berth serve` (its writer and the periodic retention). The design and
//! the hash encoding: docs/audit-log.md.

use anyhow::Context;
use berth_meta::{apply_retention, verify_chain, AuditEntry, MetaStore, Verdict};
use berth_server::{AuditOptions, AuditSink, AuditWriter};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Entries read per page by `verify` and `export`.
const PAGE: usize = 1000;
/// How often a server applies `berth.audit.retention` (also once at start).
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

/// The audit log of `berth serve`: disabled, or its writer started.
pub fn start(config: &berth_config::Config, meta: &Arc<dyn MetaStore>) -> (AuditSink, Option<AuditWriter>) {
    if !config.audit_enabled() {
        return (AuditSink::disabled(), None);
    }
    let (sink, writer) = AuditSink::start(meta.clone(), AuditOptions::default());
    if let Some(retention) = config.berth.audit.retention {
        spawn_retention(meta.clone(), retention);
    }
    (sink, Some(writer))
}

/// Applies the retention every [`RETENTION_INTERVAL`], under the lease, so
/// one node of a cluster does it.
fn spawn_retention(meta: Arc<dyn MetaStore>, retention: Duration) {
    let holder = format!("audit-{:016x}", random_u64());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RETENTION_INTERVAL);
        loop {
            tick.tick().await;
            match apply_retention(&*meta, &holder, retention, crate::now_ms).await {
                Ok(Some(n)) if n > 0 => tracing::info!(deleted = n, "audit retention applied"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "audit retention failed"),
            }
        }
    });
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.finish()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// `berth audit verify`: true if the chain is intact.
pub fn verify(loaded: berth_config::Loaded) -> anyhow::Result<bool> {
    runtime()?.block_on(async {
        let (meta, _) = crate::stores::open_meta(&loaded.config).await?;
        match verify_chain(&*meta, PAGE).await.context("reading the audit log")? {
            Verdict::Intact { entries, head_hash, anchor_id, .. } => {
                println!("chain intact: {entries} entries, head {head_hash}");
                if anchor_id > 0 {
                    println!(
                        "(entries up to {anchor_id} were deleted by retention; the chain starts from their anchor)"
                    );
                }
                Ok(true)
            }
            Verdict::Broken { id, reason } => {
                println!("chain broken at entry {id}: {reason}");
                Ok(false)
            }
        }
    })
}

pub struct ExportArgs {
    pub since: Option<String>,
    pub until: Option<String>,
}

/// `berth audit export`: JSON lines, in id order, `since <= time < until`.
pub fn export(loaded: berth_config::Loaded, args: ExportArgs) -> anyhow::Result<bool> {
    let now = crate::now_ms();
    let since = args.since.as_deref().map(|s| parse_time(s, now)).transpose().context("--since")?;
    let until = args.until.as_deref().map(|s| parse_time(s, now)).transpose().context("--until")?;
    runtime()?.block_on(async {
        let (meta, _) = crate::stores::open_meta(&loaded.config).await?;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut after = 0;
        loop {
            let page = meta.audit_entries(after, PAGE).await.context("reading the audit log")?;
            let Some(last) = page.last() else { break };
            after = last.id;
            for e in &page {
                let t = e.event.time_ms;
                if since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u) {
                    serde_json::to_writer(&mut out, &entry_json(e))?;
                    out.write_all(b"\n")?;
                }
            }
        }
        out.flush()?;
        Ok(true)
    })
}

pub fn entry_json(e: &AuditEntry) -> serde_json::Value {
    let v = &e.event;
    serde_json::json!({
        "id": e.id,
        "time": format_time(v.time_ms),
        "time_ms": v.time_ms,
        "actor": v.actor,
        "source": v.source,
        "action": v.action,
        "resource": v.resource,
        "outcome": if v.success { "success" } else { "failure" },
        "status": v.status,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    })
}

/// `berth audit prune`: applies a retention now (the configured one unless given).
pub fn prune(loaded: berth_config::Loaded, older_than: Option<Duration>) -> anyhow::Result<bool> {
    let retention = older_than
        .or(loaded.config.berth.audit.retention)
        .context("no retention: set berth.audit.retention or pass --older-than")?;
    runtime()?.block_on(async {
        let (meta, _) = crate::stores::open_meta(&loaded.config).await?;
        let holder = format!("audit-cli-{:016x}", random_u64());
        match apply_retention(&*meta, &holder, retention, crate::now_ms).await? {
            Some(n) => println!("deleted {n} audit entries"),
            None => anyhow::bail!("another node is applying the audit retention now; try again later"),
        }
        Ok(true)
    })
}

/// RFC 3339 in UTC with milliseconds: `2024-05-01T12:00:00.123Z`.
pub fn format_time(ms: i64) -> String {
    static FORMAT: std::sync::OnceLock<Vec<time::format_description::BorrowedFormatItem<'static>>> =
        std::sync::OnceLock::new();
    let format = FORMAT.get_or_init(|| {
        time::format_description::parse_borrowed::<2>(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z",
        )
        .expect("a valid format description")
    });
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// `2024-05-01`, `2024-05-01T12:00:00Z` (fraction and `±hh:mm` offset
/// allowed), or a duration before `now_ms` (`24h`, `7d`).
pub fn parse_time(s: &str, now_ms: i64) -> anyhow::Result<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(ago) = crate::gc::parse_duration(s) {
        return Ok(now_ms - ago.as_millis() as i64);
    }
    let bad = || anyhow::anyhow!("{s:?} is neither an RFC 3339 time (2024-05-01T12:00:00Z) nor a duration (24h)");
    let at = match time::OffsetDateTime::parse(s, &Rfc3339) {
        Ok(t) => t,
        Err(_) => {
            let date = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]").map_err(|_| bad())?;
            time::Date::parse(s, &date).map_err(|_| bad())?.midnight().assume_utc()
        }
    };
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        // Values from `date -u -d @1714564800.123 +%FT%T.%3NZ` and friends.
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_714_564_800_123), "2024-05-01T12:00:00.123Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(parse_time("2024-05-01T12:00:00.123Z", 0).unwrap(), 1_714_564_800_123);
        assert_eq!(parse_time("2024-05-01T14:00:00+02:00", 0).unwrap(), 1_714_564_800_000);
        assert_eq!(parse_time("2024-05-01", 0).unwrap(), 1_714_521_600_000);
        assert_eq!(parse_time("2000-02-29T00:00:00Z", 0).unwrap(), 951_782_400_000);
        assert_eq!(parse_time("24h", 100_000_000).unwrap(), 100_000_000 - 86_400_000);
        for bad in ["", "yesterday", "2024-13-01", "2024-05-01T12:00", "2024-05-01T12:00:00", "2024/05/01"] {
            assert!(parse_time(bad, 0).is_err(), "{bad}");
        }
    }
}
