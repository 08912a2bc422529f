//! The HTTP edge of Berth: the OCI Distribution API on axum/hyper.
//!
//! A request is parsed once into an [`route::Endpoint`], dispatched to a
//! handler per resource (`handlers/`), and every failure is turned into the
//! spec's error JSON in one place (`error.rs`). Only this crate knows HTTP.
//! Depends on `berth-oci`, `berth-blob` and `berth-meta`; never the reverse.

mod access_log;
pub mod api;
pub mod audit;
mod auth;
mod cache;
mod db_gauges;
mod error;
mod event_metrics;
pub mod events;
mod handlers;
mod health;
mod immutability;
mod listener;
mod metrics;
pub mod peers;
pub mod pull_stats;
mod quota;
pub mod ratelimit;
pub mod read_only;
mod request_id;
pub mod retention;
pub mod route;
mod sendfile;
mod settings;
mod state;
mod timed_store;
pub mod tls;
mod urls;

pub use audit::{AuditOptions, AuditSink, AuditWriter};
pub use auth::{
    Account, Authenticator, GrantError, Policy, ProjectCreation, ProjectTemplate, Realm, TokenAuth, TokenService,
    UserDirectory,
};
pub use health::debug_app;
pub use listener::{serve, Limits};
pub use settings::{IndexPolicy, LayerUrlPolicy, MetricsToken, Settings};
pub use state::App;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::HeaderValue;
use std::sync::Arc;

/// The whole API as a router; tests call it in-process, the binary serves it.
pub fn app(state: Arc<App>) -> Router {
    // The admin API needs Berth's own users; without them `/api` is not
    // there at all, as on `registry:2`.
    let admin = state.auth.policy().is_some().then(|| Router::new().nest("/api/v1", api::router(state.clone())));
    Router::new()
        .fallback(move |State(app): State<Arc<App>>, req: Request| handle(app, admin.clone(), req))
        .with_state(state)
}

async fn handle(app: Arc<App>, admin: Option<Router>, req: Request) -> Response {
    // Kubernetes probes and the token-protected metrics: outside
    // `http.prefix`, not counted as registry requests.
    match (req.uri().path(), &app.settings.metrics_token) {
        ("/healthz", _) => return health::alive(),
        ("/readyz", _) => return health::ready(&app).await,
        ("/metrics", Some(token)) => return health::metrics_with_token(&app, token, req.headers()).await,
        _ => {}
    }
    let id = request_id::of(req.headers());
    let mut req = req;
    if app.events.enabled() {
        req.extensions_mut().insert(events::RequestId(id.clone()));
    }
    let access = app.settings.access_log.then(|| access_log::AccessEntry::begin(&req));
    let mut resp = match limit_by_address(&app, &req) {
        Err(refusal) => refusal.into_response(),
        Ok(()) => route(&app, admin, req).await,
    };
    let headers = resp.headers_mut();
    headers.insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
    for (name, value) in &app.settings.headers {
        headers.append(name.clone(), value.clone());
    }
    if let Some(entry) = access {
        entry.finish(&resp, &id);
    }
    resp.headers_mut().insert(request_id::HEADER, id);
    resp
}

/// The per-address rate limit, before authentication: a flood from one
/// address costs a lookup and a compare-and-swap per request.
fn limit_by_address(app: &App, req: &Request) -> Result<(), error::ApiError> {
    match &app.limiters.per_ip {
        None => Ok(()),
        Some(limiter) => {
            limiter.check(&auth::source_of(req.extensions()), std::time::Instant::now()).map_err(ratelimit::refusal)
        }
    }
}

async fn route(app: &App, admin: Option<Router>, req: Request) -> Response {
    use tower::ServiceExt;
    match strip_prefix(&app.settings.prefix, req) {
        Some(req) => match &app.auth {
            Authenticator::Token(t) if t.builtin.is_some() && req.uri().path() == "/token" => {
                t.builtin.as_ref().expect("checked").handle(req).await
            }
            _ if is_admin_api(req.uri().path()) => match admin {
                Some(api) => api.oneshot(req).await.unwrap_or_else(|never| match never {}),
                None => (http::StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
            },
            _ => handlers::dispatch(app, req).await,
        },
        None => (http::StatusCode::NOT_FOUND, "404 page not found\n").into_response(),
    }
}

fn is_admin_api(path: &str) -> bool {
    path == "/api/v1" || path.starts_with("/api/v1/")
}

/// Removes `http.prefix` from the request path; `None` if the path lies outside it.
fn strip_prefix(prefix: &str, mut req: Request) -> Option<Request> {
    if prefix.is_empty() {
        return Some(req);
    }
    let path_and_query = req.uri().path_and_query()?.as_str();
    let rest = path_and_query.strip_prefix(prefix).filter(|r| r.starts_with('/'))?;
    *req.uri_mut() = rest.parse().ok()?;
    Some(req)
}
