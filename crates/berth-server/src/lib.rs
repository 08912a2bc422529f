//! The HTTP edge of Berth: the OCI Distribution API on axum/hyper.
//!
//! A request is parsed once into an [`route::Endpoint`], dispatched to a
//! handler per resource (`handlers/`), and every failure is turned into the
//! spec's error JSON in one place (`error.rs`). Only this crate knows HTTP.
//! Depends on `berth-oci`, `berth-blob` and `berth-meta`; never the reverse.

mod body;
mod cache;
mod error;
mod handlers;
pub mod purge;
pub mod route;
mod settings;
mod state;
mod urls;

pub use settings::{IndexPolicy, Settings};
pub use state::App;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::Router;
use http::HeaderValue;
use std::sync::Arc;

/// The whole API as a router; tests call it in-process, the binary serves it.
pub fn app(state: Arc<App>) -> Router {
    Router::new().fallback(serve).with_state(state)
}

async fn serve(State(app): State<Arc<App>>, req: Request) -> Response {
    let mut resp = handlers::dispatch(&app, req).await;
    let headers = resp.headers_mut();
    headers.insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
    for (name, value) in &app.settings.headers {
        headers.append(name.clone(), value.clone());
    }
    resp
}
