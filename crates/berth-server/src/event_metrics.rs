//! Metrics of notifications and webhooks, read at scrape time from the
//! counters the senders keep. Notification endpoints' under Distribution's
//! names (`notifications/metrics.go`: `registry_notifications_events_total
//! {type,endpoint}` with types Events, Successes, Failures, Errors;
//! `registry_notifications_pending_total{endpoint}`;
//! `registry_notifications_status_total{code,endpoint}` with codes such as
//! "200 OK"), Berth's own under `berth_`.

use crate::events::Events;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug)]
pub struct EventMetrics(pub Events);

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&str, String)>, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ConstCounter::new(*value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for EventMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(endpoints) = self.0.endpoints() {
            let stats = endpoints.stats();
            let mut events = Vec::new();
            let mut statuses = Vec::new();
            let mut dropped = Vec::new();
            for (name, s) in &stats {
                for (kind, v) in [
                    ("Events", &s.events),
                    ("Successes", &s.successes),
                    ("Failures", &s.failures),
                    ("Errors", &s.errors),
                ] {
                    events.push((vec![("type", kind.to_owned()), ("endpoint", name.to_string())], v.load(Relaxed)));
                }
                let codes = s.statuses.lock().unwrap_or_else(|p| p.into_inner()).clone();
                for (code, n) in codes {
                    let reason = http::StatusCode::from_u16(code).ok().and_then(|c| c.canonical_reason()).unwrap_or("");
                    let label = format!("{code} {reason}").trim_end().to_owned();
                    statuses.push((vec![("code", label), ("endpoint", name.to_string())], n));
                }
                dropped.push((vec![("endpoint", name.to_string())], s.dropped.load(Relaxed)));
            }
            counter(&mut encoder, "registry_notifications_events", "The number of total events", &events)?;
            counter(&mut encoder, "registry_notifications_status", "The number of status code", &statuses)?;
            let mut family = encoder.encode_descriptor(
                "registry_notifications_pending_total",
                "The gauge of pending events in queue",
                None,
                MetricType::Gauge,
            )?;
            for (name, s) in &stats {
                ConstGauge::new(s.pending.load(Relaxed)).encode(family.encode_family(&[("endpoint", *name)])?)?;
            }
            counter(
                &mut encoder,
                "berth_notifications_dropped",
                "Notification events lost: queue full, or still queued at shutdown",
                &dropped,
            )?;
        }
        if let Some(w) = self.0.webhooks() {
            let outcomes = [
                ("delivered", w.delivered.load(Relaxed)),
                ("retried", w.retried.load(Relaxed)),
                ("failed", w.failed.load(Relaxed)),
            ];
            let series: Vec<_> = outcomes.iter().map(|(o, n)| (vec![("outcome", o.to_string())], *n)).collect();
            counter(
                &mut encoder,
                "berth_webhook_attempts",
                "Webhook delivery attempts made by this node, by outcome",
                &series,
            )?;
            counter(
                &mut encoder,
                "berth_webhook_events_dropped",
                "Webhook events dropped because the routing queue was full",
                &[(Vec::new(), w.dropped())],
            )?;
        }
        Ok(())
    }
}
