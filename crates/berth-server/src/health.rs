//! Health: `/healthz` (alive) and `/readyz` (storage and database reachable)
//! on the main listener for Kubernetes probes; `/debug/health` and the
//! Prometheus text on the debug listener (`http.debug.addr`), as Distribution,
//! and on the main listener behind a bearer token (`berth.metrics.token`).

use crate::settings::MetricsToken;
use crate::state::App;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// How long each dependency may take to answer a probe: a probe that hangs
/// is worse than one that fails (kubelet's own timeout is 1 s by default).
const CHECK_TIMEOUT: Duration = Duration::from_millis(900);

/// The empty blob's digest: a `stat` of it proves the storage answers,
/// whether or not anyone ever pushed it.
const EMPTY_SHA256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Each failing check by name (Distribution's `storagedriver_<driver>`
/// style), with why; empty when everything answered.
pub async fn failures(app: &App) -> Vec<(&'static str, String)> {
    let storage = async {
        let digest = EMPTY_SHA256.parse().expect("a valid digest");
        match tokio::time::timeout(CHECK_TIMEOUT, app.blobs.stat(&digest)).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(("storage", e.to_string())),
            Err(_) => Some(("storage", format!("no answer within {CHECK_TIMEOUT:?}"))),
        }
    };
    let database = async {
        // Any read does: it needs a connection and a round trip.
        match tokio::time::timeout(CHECK_TIMEOUT, app.meta.get_upload("berth-health-probe")).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(("database", e.to_string())),
            Err(_) => Some(("database", format!("no answer within {CHECK_TIMEOUT:?}"))),
        }
    };
    let (s, d) = tokio::join!(storage, database);
    s.into_iter().chain(d).collect()
}

/// `/healthz`: the process serves requests.
pub fn alive() -> Response {
    text(StatusCode::OK, "ok\n".to_owned())
}

/// `/readyz`: 200 when storage and database answer, else 503 naming each failure.
pub async fn ready(app: &App) -> Response {
    let failed = failures(app).await;
    if failed.is_empty() {
        return text(StatusCode::OK, "ok\n".to_owned());
    }
    let body: String = failed.iter().map(|(name, why)| format!("{name}: {why}\n")).collect();
    text(StatusCode::SERVICE_UNAVAILABLE, body)
}

/// Distribution's `/debug/health`: `{}` when healthy, else 503 and
/// `{"<check>": "<error>"}`.
async fn debug_health(app: &App) -> Response {
    let failed = failures(app).await;
    let status = if failed.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body: serde_json::Map<String, serde_json::Value> =
        failed.into_iter().map(|(name, why)| (name.to_owned(), why.into())).collect();
    crate::handlers::json_response(status, "application/json; charset=utf-8", &serde_json::Value::Object(body))
}

async fn prometheus(app: &App) -> Response {
    app.metrics.refresh(&app.meta).await;
    let mut resp = app.metrics.encode().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE));
    resp
}

/// `/metrics` on the main listener: the debug listener's text, to requests
/// bearing the token; else 401 with a challenge naming no scope, so a
/// registry client never mistakes it for the token service's.
pub async fn metrics_with_token(app: &App, token: &MetricsToken, headers: &HeaderMap) -> Response {
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer);
    if presented.is_some_and(|t| token.matches(t)) {
        return prometheus(app).await;
    }
    let mut resp = text(StatusCode::UNAUTHORIZED, "401 Unauthorized\n".to_owned());
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"metrics\""));
    resp
}

/// The credentials of `Bearer <token>` (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The debug listener's routes: `/debug/health`, and the metrics at
/// `prometheus_path` when `http.debug.prometheus.enabled`. Matched by hand:
/// any configured path is fine, none can clash with a route.
pub fn debug_app(app: Arc<App>, prometheus_path: Option<&str>) -> Router {
    let metrics_path = prometheus_path.map(|p| format!("/{}", p.trim_start_matches('/')));
    Router::new()
        .fallback(move |State(app): State<Arc<App>>, req: Request| {
            let serve_metrics = metrics_path.as_deref() == Some(req.uri().path());
            async move {
                if serve_metrics {
                    prometheus(&app).await
                } else if req.uri().path() == "/debug/health" {
                    debug_health(&app).await
                } else {
                    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
                }
            }
        })
        .with_state(app)
}

fn text(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}
