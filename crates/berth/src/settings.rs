//! Maps the configuration onto what each layer takes.

use anyhow::{anyhow, Context};
use berth_config::{Config, Platforms};
use berth_server::ratelimit::{Bucket, RateLimits};
use berth_server::{IndexPolicy, LayerUrlPolicy, MetricsToken, Settings};
use http::{HeaderName, HeaderValue};

pub fn server_settings(c: &Config) -> anyhow::Result<Settings> {
    let mut headers = Vec::new();
    for (name, values) in &c.http.headers {
        let name = HeaderName::try_from(name.as_str())
            .with_context(|| format!("http.headers: invalid header name {name:?}"))?;
        for v in values {
            let v = HeaderValue::try_from(v.as_str()).with_context(|| format!("http.headers.{name}: invalid value"))?;
            headers.push((name.clone(), v));
        }
    }
    let index_policy = match c.validation.manifests.indexes.platforms {
        Platforms::All => IndexPolicy::All,
        Platforms::None => IndexPolicy::None,
        Platforms::List => IndexPolicy::List(
            c.validation
                .manifests
                .indexes
                .platformlist
                .iter()
                .map(|p| berth_oci::Platform { architecture: p.architecture.clone(), os: p.os.clone(), variant: None })
                .collect(),
        ),
    };
    // Distribution joins each list into one alternation.
    let joined = |list: &[String]| -> anyhow::Result<Option<regex::Regex>> {
        if list.is_empty() {
            return Ok(None);
        }
        Ok(Some(regex::Regex::new(&list.join("|")).context("validation.manifests.urls")?))
    };
    let urls = &c.validation.manifests.urls;
    let layer_urls =
        LayerUrlPolicy { enabled: c.validation.is_active(), allow: joined(&urls.allow)?, deny: joined(&urls.deny)? };
    let manifest_max_bytes =
        usize::try_from(c.berth.manifests.maxbytes).map_err(|_| anyhow!("berth.manifests.maxbytes is too large"))?;
    Ok(Settings {
        delete_enabled: c.storage.delete.enabled,
        read_only: c.storage.maintenance.readonly.enabled,
        // Distribution wants "/path/"; routes then live at /path/v2/.
        prefix: c.http.prefix.trim_end_matches('/').to_owned(),
        host: c.http.host.clone(),
        relative_urls: c.http.relativeurls,
        headers,
        catalog_max_entries: c.catalog.maxentries,
        tags_max_entries: c.berth.tags.maxentries,
        manifest_max_bytes,
        index_policy,
        layer_urls,
        manifest_cache_bytes: c.berth.cache.manifestbytes,
        access_log: !c.log.accesslog.disabled,
        rate_limits: RateLimits {
            per_ip: bucket("perip", &c.berth.ratelimit.perip)?,
            per_user: bucket("peruser", &c.berth.ratelimit.peruser)?,
        },
        tls: c.http.tls.certificate.as_ref().is_some_and(|p| !p.as_os_str().is_empty()),
        max_uploads: c.berth.limits.maxuploads,
        upload_idle: c.berth.limits.uploadidletimeout,
        metrics_token: metrics_token(c)?,
    })
}

/// `berth.metrics.token`; an empty one would let any `Bearer ` through.
fn metrics_token(c: &Config) -> anyhow::Result<Option<MetricsToken>> {
    match c.berth.metrics.token.as_ref().map(|t| t.expose()) {
        None => Ok(None),
        Some("") => Err(anyhow!("berth.metrics.token: must not be empty")),
        Some(t) => Ok(Some(MetricsToken::new(t))),
    }
}

/// `berth.ratelimit.<name>` as the server takes it: rate and burst at least 1.
fn bucket(name: &str, b: &Option<berth_config::Bucket>) -> anyhow::Result<Option<Bucket>> {
    let Some(b) = b else { return Ok(None) };
    let positive = |key: &str, v: u64| match u32::try_from(v) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(anyhow!("berth.ratelimit.{name}.{key}: must be between 1 and {}", u32::MAX)),
    };
    Ok(Some(Bucket { rate: positive("rate", b.rate)?, burst: positive("burst", b.burst())? }))
}

/// `berth.limits` as the listener takes it.
pub fn listener_limits(c: &Config) -> berth_server::Limits {
    let l = &c.berth.limits;
    berth_server::Limits {
        max_connections: l.maxconnections,
        max_header_bytes: l.maxheaderbytes,
        header_timeout: l.headertimeout,
    }
}
