//! Dispatch from endpoint and method to the handler, and what handlers share.

mod base;
mod blobs;
mod catalog;
mod manifests;
mod pagination;
mod referrers;
mod tags;
mod uploads;

use crate::auth::{Needed, Principal};
use crate::error::{ApiError, ApiResult};
use crate::route::{self, Endpoint};
use crate::state::App;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use berth_oci::{Digest, DigestError, ErrorCode, RepoName};
use http::request::Parts;
use http::{HeaderValue, Method, StatusCode};
use std::borrow::Cow;

/// What a handler gets: the shared state and the request head.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub parts: &'a Parts,
    pub principal: &'a Principal,
}

impl Ctx<'_> {
    pub fn location(&self, path: &str) -> HeaderValue {
        let url = crate::urls::location(&self.app.settings, &self.parts.headers, path);
        HeaderValue::from_str(&url).unwrap_or_else(|_| HeaderValue::from_static("/"))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Decoded query parameters, in order (`tag` may repeat).
    pub fn query(&self) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
        self.parts.uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).collect()).unwrap_or_default()
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query().into_iter().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    pub fn require_deletes(&self) -> ApiResult<()> {
        if self.app.settings.delete_enabled {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Unsupported).message("deletes are disabled on this registry"))
        }
    }
}

pub fn parse_name(name: &str) -> ApiResult<RepoName> {
    RepoName::parse(name).map_err(|e| {
        ApiError::new(ErrorCode::NameInvalid).message(e.to_string()).detail(serde_json::json!({ "name": name }))
    })
}

pub fn parse_digest(s: &str) -> ApiResult<Digest> {
    s.parse().map_err(|e: DigestError| {
        ApiError::new(ErrorCode::DigestInvalid).message(e.to_string()).detail(serde_json::json!({ "digest": s }))
    })
}

fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::Unsupported)
        .status(StatusCode::METHOD_NOT_ALLOWED)
        .message("the method is not allowed on this endpoint")
}

fn is_write(m: &Method) -> bool {
    matches!(*m, Method::POST | Method::PUT | Method::PATCH | Method::DELETE)
}

pub async fn dispatch(app: &App, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // Clients may percent-encode the digest's ':'; names never contain '%'.
    let raw = parts.uri.path();
    let path = percent_encoding::percent_decode_str(raw).decode_utf8().unwrap_or(Cow::Borrowed(raw)).into_owned();
    let Some(endpoint) = route::parse(&path) else {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    };
    let in_flight = app.metrics.http.begin(crate::metrics::Handler::of(&endpoint));
    let resp = authorize_and_route(app, &parts, endpoint, body).await;
    in_flight.finish(&parts, &resp);
    resp
}

async fn authorize_and_route(app: &App, parts: &Parts, endpoint: Endpoint<'_>, body: Body) -> Response {
    let needed = Needed::of(&endpoint, &parts.method);
    let principal = match app.auth.authorize(&app.settings, parts, &needed).await {
        Ok(principal) => principal,
        Err(refusal) => {
            let resp = refusal.into_response();
            if app.audit.enabled() {
                crate::audit::refusal(&app.audit, parts, &needed, &resp);
            }
            return resp;
        }
    };
    if let (Some(limiter), Some(name)) = (&app.limiters.per_user, principal.name()) {
        if let Err(wait) = limiter.check(name, std::time::Instant::now()) {
            return crate::ratelimit::refusal(wait).into_response();
        }
    }
    let ctx = Ctx { app, parts, principal: &principal };
    let audited = app.audit.enabled().then(|| endpoint.clone());
    let mut resp = route_to(&ctx, endpoint, body).await.unwrap_or_else(IntoResponse::into_response);
    if let Some(endpoint) = audited {
        crate::audit::request(&app.audit, parts, &principal, &endpoint, &resp);
    }
    if app.events.enabled() {
        crate::events::after(app, parts, &principal, &mut resp);
    }
    resp
}

async fn route_to(ctx: &Ctx<'_>, endpoint: Endpoint<'_>, body: Body) -> ApiResult<Response> {
    use Endpoint::*;
    let method = &ctx.parts.method;
    if is_write(method) && ctx.app.read_only.is_on() {
        return Err(ApiError::new(ErrorCode::Unsupported).message("the registry is in read-only mode"));
    }
    match (endpoint, method.clone()) {
        (Base, Method::GET | Method::HEAD) => Ok(base::get()),
        (Catalog, Method::GET) => catalog::list(ctx).await,
        (Tags { name }, Method::GET) => tags::list(ctx, name).await,
        (Manifest { name, reference }, Method::GET | Method::HEAD) => manifests::get(ctx, name, reference).await,
        (Manifest { name, reference }, Method::PUT) => manifests::put(ctx, name, reference, body).await,
        (Manifest { name, reference }, Method::DELETE) => manifests::delete(ctx, name, reference).await,
        (Blob { name, digest }, Method::GET | Method::HEAD) => blobs::get(ctx, name, digest).await,
        (Blob { name, digest }, Method::DELETE) => blobs::delete(ctx, name, digest).await,
        (UploadStart { name }, Method::POST) => uploads::start(ctx, name, body).await,
        (Upload { name, id }, Method::GET | Method::HEAD) => uploads::status(ctx, name, id).await,
        (Upload { name, id }, Method::PATCH) => uploads::patch(ctx, name, id, body).await,
        (Upload { name, id }, Method::PUT) => uploads::finish(ctx, name, id, body).await,
        (Upload { name, id }, Method::DELETE) => uploads::cancel(ctx, name, id).await,
        (Referrers { name, digest }, Method::GET) => referrers::list(ctx, name, digest).await,
        _ => Err(method_not_allowed()),
    }
}

/// A response with no body and the given status and headers.
pub fn empty(status: StatusCode, headers: Vec<(&'static str, HeaderValue)>) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    for (name, value) in headers {
        h.insert(name, value);
    }
    resp
}

pub fn json_response(status: StatusCode, content_type: &'static str, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}
