//! Registry events at the HTTP edge. A handler that did something worth an
//! event attaches a [`Happened`] to its response; dispatch turns it into a
//! [`berth_events::Event`] with the request's record and the caller, and
//! publishes it to Distribution's endpoints and the webhook router. Both
//! only queue; with neither configured handlers attach nothing.

use crate::auth::Principal;
use crate::settings::Settings;
use axum::response::Response;
use berth_events::webhook::{payload::QUOTA_EXCEED, Notice, Resource, Router};
use berth_events::{Action, Endpoints, Event, Kind, RequestRecord, Target};
use http::request::Parts;
use std::sync::Arc;

/// Who hears of events; [`Events::default`] is no one.
#[derive(Clone, Default)]
pub struct Events {
    endpoints: Option<Arc<Endpoints>>,
    webhooks: Option<Arc<Router>>,
    /// Which addresses webhook targets may have (`berth.webhooks.allownets`).
    addresses: Arc<berth_events::outbound::AddressPolicy>,
}

/// What a handler did, attached to its response for dispatch (a push by
/// digest with several `?tag=`s is one event per tag).
#[derive(Debug, Clone)]
pub struct Happened {
    pub action: Action,
    pub kind: Kind,
    pub target: Target,
}

/// The request id, put in the request's extensions when events are on.
#[derive(Debug, Clone)]
pub struct RequestId(pub http::HeaderValue);

impl Events {
    pub fn new(endpoints: Option<Arc<Endpoints>>, webhooks: Option<Arc<Router>>) -> Self {
        let endpoints = endpoints.filter(|e| !e.is_empty());
        let addresses = Arc::new(webhooks.as_ref().map(|w| w.addresses().clone()).unwrap_or_default());
        Events { endpoints, webhooks, addresses }
    }

    /// Which addresses webhook targets may have: the admin API checks new targets with it.
    pub fn webhook_addresses(&self) -> &berth_events::outbound::AddressPolicy {
        &self.addresses
    }

    /// The admin API changed webhook policies: the router reloads them.
    pub fn webhooks_changed(&self) {
        if let Some(w) = &self.webhooks {
            w.invalidate();
        }
    }

    pub fn webhooks(&self) -> Option<&Arc<Router>> {
        self.webhooks.as_ref()
    }

    /// Whether anyone listens: handlers build nothing otherwise (with
    /// webhooks on but no policy anywhere, a relaxed pointer load).
    pub fn enabled(&self) -> bool {
        self.endpoints.is_some() || self.webhooks.as_ref().is_some_and(|w| w.has_policies())
    }

    pub fn endpoints(&self) -> Option<&Arc<Endpoints>> {
        self.endpoints.as_ref()
    }

    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        if let Some(e) = &self.endpoints {
            e.publish(&event);
        }
        if let Some(w) = &self.webhooks {
            w.publish(&event);
        }
    }
}

#[derive(Debug, Clone)]
struct Happenings(Vec<Happened>);

/// Attaches what `happened` says to `resp`, if anyone listens.
pub fn attach(app: &crate::App, mut resp: Response, happened: impl FnOnce() -> Vec<Happened>) -> Response {
    if app.events.enabled() {
        resp.extensions_mut().insert(Happenings(happened()));
    }
    resp
}

/// Publishes what the handler attached, once the response is known.
pub(crate) fn after(app: &crate::App, parts: &Parts, principal: &Principal, resp: &mut Response) {
    let Some(Happenings(list)) = resp.extensions_mut().remove::<Happenings>() else { return };
    let request = record(&app.settings, parts);
    for h in list {
        let actor = principal.name().map(str::to_owned);
        app.events.publish(Event::new(h.action, h.kind, h.target, request.clone(), actor));
    }
}

impl Happened {
    pub fn new(action: Action, kind: Kind, target: Target) -> Self {
        Happened { action, kind, target }
    }

    /// A blob event in `repo`.
    pub fn blob(action: Action, repo: &berth_oci::RepoName, digest: &berth_oci::Digest, size: Option<u64>) -> Self {
        let target =
            Target { digest: Some(digest.to_string()), size, repository: repo.to_string(), ..Target::default() };
        Happened::new(action, Kind::Blob, target)
    }
}

/// A push refused over quota, for webhooks (Harbor's `QUOTA_EXCEED`).
pub(crate) fn quota_exceeded(
    ctx: &crate::handlers::Ctx<'_>,
    repo: &berth_oci::RepoName,
    digest: Option<&berth_oci::Digest>,
    details: &str,
) {
    let Some(router) = &ctx.app.events.webhooks else { return };
    let request = record(&ctx.app.settings, ctx.parts);
    router.notify(Notice {
        event_type: QUOTA_EXCEED,
        occur_at_ms: crate::state::now_ms(),
        operator: ctx.principal.name().unwrap_or_default().to_owned(),
        project: berth_meta::project_of(repo.as_str()).to_owned(),
        repository: repo.to_string(),
        resources: vec![Resource { digest: digest.map(ToString::to_string), tag: None, resource_url: None }],
        custom: vec![("Details".into(), details.to_owned())],
        request_id: request.id,
        retention: None,
    });
}

/// Most removed artifacts a `TAG_RETENTION` payload lists (the run's
/// record in the admin API has them all).
const RETENTION_LISTED: usize = 1000;

/// A retention run finished, for webhooks (Harbor's `TAG_RETENTION`):
/// `operator` is the trigger, `MANUAL` or `SCHEDULE`, as Harbor sends it.
pub fn retention_finished(
    app: &crate::App,
    project: &str,
    report: &berth_jobs::retention::RetentionReport,
    dry_run: bool,
    operator: &str,
) {
    let Some(router) = &app.events.webhooks else { return };
    let removed: Vec<serde_json::Value> = report
        .decisions
        .iter()
        .filter(|d| !d.retained)
        .take(RETENTION_LISTED)
        .map(|d| {
            let name_tag = match d.tags.as_slice() {
                [] => format!("{}@{}", d.repository, d.digest),
                tags => format!("{}:{}", d.repository, tags.join(",")),
            };
            let status = if dry_run { "DRY_RUN" } else { "SUCCESS" };
            serde_json::json!({ "type": "image", "status": status, "name_tag": name_tag })
        })
        .collect();
    let retention = serde_json::json!({
        "total": report.retained + report.removed,
        "retained": report.retained,
        "project_name": project,
        "retention_run_id": report.run_id,
        "dry_run": dry_run,
        "result": "SUCCESS",
        "deleted_artifact": removed,
    });
    router.notify(Notice {
        event_type: berth_events::webhook::payload::TAG_RETENTION,
        occur_at_ms: crate::state::now_ms(),
        operator: operator.to_owned(),
        project: project.to_owned(),
        repository: String::new(),
        resources: Vec::new(),
        custom: Vec::new(),
        request_id: String::new(),
        retention: Some(retention),
    });
}

/// Distribution's request record, and the base of event URLs.
pub fn record(settings: &Settings, parts: &Parts) -> RequestRecord {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let host = header("host");
    let addr = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    RequestRecord {
        id: parts.extensions.get::<RequestId>().and_then(|r| r.0.to_str().ok()).unwrap_or("").to_owned(),
        addr,
        base_url: base_url(settings, &parts.headers, &host),
        host,
        method: parts.method.to_string(),
        user_agent: header("user-agent"),
    }
}

/// `http.host`, else what a proxy says, else the `Host` asked for; with `http.prefix`.
fn base_url(settings: &Settings, headers: &http::HeaderMap, host: &str) -> String {
    if let Some(h) = &settings.host {
        return format!("{}{}", h.trim_end_matches('/'), settings.prefix);
    }
    let first = |name: &str| crate::urls::first_value(headers, name);
    let scheme = first("x-forwarded-proto").unwrap_or(if settings.tls { "https" } else { "http" });
    let host = first("x-forwarded-host").unwrap_or(if host.is_empty() { "localhost" } else { host });
    format!("{scheme}://{host}{}", settings.prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn event_urls_follow_host_proxy_and_prefix() {
        let s = Settings::default();
        assert_eq!(base_url(&s, &headers(&[]), "r:5000"), "http://r:5000");
        let proxied = headers(&[("x-forwarded-proto", "https"), ("x-forwarded-host", "reg.example")]);
        assert_eq!(base_url(&s, &proxied, "r:5000"), "https://reg.example");
        let s = Settings { host: Some("https://reg.example/".into()), prefix: "/r".into(), ..Settings::default() };
        assert_eq!(base_url(&s, &proxied, "r:5000"), "https://reg.example/r");
        let s = Settings { tls: true, ..Settings::default() };
        assert_eq!(base_url(&s, &headers(&[]), "r:5000"), "https://r:5000");
    }
}
