//! `notifications.endpoints` as the server runs them (berth-events).

use berth_events::{EndpointConfig, Endpoints, SourceRecord};
use std::sync::Arc;

/// Starts the enabled endpoints; `None` when there are none.
pub fn start(config: &berth_config::Config, port: u16) -> anyhow::Result<Option<Arc<Endpoints>>> {
    let n = &config.notifications;
    let mut enabled = Vec::new();
    for e in &n.endpoints {
        if e.disabled {
            tracing::info!(endpoint = %e.name, "notification endpoint disabled, skipping");
            continue;
        }
        let headers = e.headers.iter().flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone()))).collect();
        let mut ignored_media_types = e.ignoredmediatypes.clone();
        ignored_media_types.extend(e.ignore.mediatypes.iter().cloned());
        enabled.push(EndpointConfig {
            name: e.name.clone(),
            url: e.url.clone(),
            headers,
            timeout: e.timeout,
            threshold: e.threshold,
            backoff: e.backoff,
            ignored_media_types,
            ignored_actions: e.ignore.actions.clone(),
            queue: 0,
        });
    }
    if enabled.is_empty() {
        return Ok(None);
    }
    let source = SourceRecord { addr: format!("{}:{port}", hostname()), instance_id: uuid::Uuid::new_v4().to_string() };
    Ok(Some(Arc::new(Endpoints::start(enabled, source, n.events.includereferences)?)))
}

/// This machine's name (Distribution's `os.Hostname()`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Starts webhook routing and delivery (`berth.webhooks`) when Berth's own
/// users are on: only they have projects with webhook policies.
pub async fn start_webhooks(
    config: &berth_config::Config,
    meta: &Arc<dyn berth_meta::MetaStore>,
    port: u16,
) -> anyhow::Result<Option<Arc<berth_events::webhook::Router>>> {
    if !config.berth.auth.enabled {
        return Ok(None);
    }
    let w = &config.berth.webhooks;
    let addresses = berth_events::outbound::AddressPolicy::new(&w.allownets)
        .map_err(|e| anyhow::anyhow!("berth.webhooks.allownets: {e}"))?;
    let opts = berth_events::webhook::WebhookOptions {
        addresses,
        timeout: w.timeout,
        max_attempts: w.maxattempts.max(1),
        backoff: w.backoff,
        keep: w.keep,
        deliver: w.enabled,
        node: format!("{}:{port}/{}", hostname(), &uuid::Uuid::new_v4().to_string()[..8]),
    };
    Ok(Some(berth_events::webhook::Router::start(meta.clone(), opts).await?))
}
