//! The admin REST API under `/api/v1`: users, projects, members, robots,
//! quotas, immutability and retention rules, webhook policies, usage, the
//! audit log and read-only mode.
//!
//! JSON in and out; errors `{"errors":[{"code","message"}]}` with stable
//! codes (`error.rs`); keyset pagination (`page.rs`). Each route is
//! registered together with its OpenAPI description (utoipa-axum's
//! `routes!`), and `/api/v1/openapi.json` serves the document built from
//! them, so the description cannot drift from the routes. Mounted only with
//! Berth's own users (`berth.auth.enabled`); every call that changes
//! something is audited with its outcome (`audit_changes`).

mod access;
mod audit_log;
mod caller;
mod error;
mod immutability;
mod page;
mod projects;
mod quotas;
mod repositories;
mod retention;
mod robots;
mod system;
mod users;
mod webhooks;

pub use caller::API_SCOPE;
pub use error::AdminError;

use crate::state::App;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::{Json, Router};
use berth_meta::AuditEvent;
use caller::ActorSlot;
use http::Method;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(title = "Berth admin API", version = "1", description = "Users, projects, members, robots, quotas, rules, webhooks and audit of a Berth registry."),
    servers((url = "/api/v1")),
    modifiers(&SecuritySchemes),
    tags(
        (name = "users"), (name = "projects"), (name = "members"), (name = "quotas"), (name = "immutability"),
        (name = "repositories"), (name = "robots"), (name = "retention"), (name = "webhooks"), (name = "audit"),
        (name = "system"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The routes and their OpenAPI document, built together.
fn routes() -> (Router<Arc<App>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(users::router())
        .merge(projects::router())
        .merge(repositories::router())
        .merge(quotas::router())
        .merge(immutability::router())
        .merge(robots::router())
        .merge(retention::router())
        .merge(webhooks::router())
        .merge(audit_log::router())
        .merge(system::router())
        .split_for_parts()
}

/// The OpenAPI document (also for `berth admin openapi` and the tests).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().1
}

/// The admin API, to be nested at `/api/v1`.
pub fn router(app: Arc<App>) -> Router {
    let (api, doc) = routes();
    let doc = Arc::new(doc);
    api.route("/openapi.json", axum::routing::get(move || async move { Json(doc.as_ref().clone()) }))
        .fallback(|| async { AdminError::not_found("no such admin API route") })
        .layer(axum::middleware::from_fn_with_state(app.clone(), audit_changes))
        .with_state(app)
}

/// Records every call that changes something (any method but GET/HEAD),
/// whatever its outcome, with who made it once the handler has
/// authenticated them.
async fn audit_changes(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    if !app.audit.enabled() || matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let slot = ActorSlot::default();
    req.extensions_mut().insert(slot.clone());
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let source = crate::auth::source_of(req.extensions());
    let resp = next.run(req).await;
    let action = format!("api {method} {}", route.as_deref().unwrap_or("(unknown route)"));
    let status = resp.status().as_u16();
    app.audit.record(AuditEvent {
        time_ms: crate::state::now_ms(),
        actor: slot.0.get().cloned().unwrap_or_else(|| "anonymous".into()),
        source: source.to_string(),
        action,
        resource: path.strip_prefix("/api/v1").unwrap_or(&path).to_owned(),
        success: status < 400,
        status,
    });
    resp
}

/// A JSON request body whose rejection is an [`AdminError`].
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(v) = Json::<T>::from_request(req, state).await?;
        Ok(Body(v))
    }
}

/// Query parameters whose rejection is an [`AdminError`].
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(v))
    }
}

/// Unix milliseconds as RFC 3339 (seconds precision).
pub fn rfc3339_ms(ms: i64) -> String {
    berth_auth::rfc3339(ms.div_euclid(1000))
}
