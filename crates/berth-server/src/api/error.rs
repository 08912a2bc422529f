//! The admin API's errors: an HTTP status and a stable machine code, mapped
//! once here to `{"errors":[{"code","message"}]}` (the shape of Harbor's and
//! of the registry API's error bodies).

use axum::response::{IntoResponse, Response};
use berth_meta::MetaError;
use http::{HeaderValue, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The error body every failing admin API call answers.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorItem>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorItem {
    /// Stable: UNAUTHORIZED, FORBIDDEN, NOT_FOUND, CONFLICT, INVALID_INPUT,
    /// PRECONDITION_FAILED, QUOTA_EXCEEDED, TOO_MANY_REQUESTS, INTERNAL_ERROR.
    pub code: String,
    pub message: String,
}

pub type AdminResult<T> = Result<T, AdminError>;

impl AdminError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AdminError { status, code, message: message.into() }
    }
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "authentication required")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", message)
    }
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED", message)
    }
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", message)
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "internal error; see the server log")
    }
}

impl From<MetaError> for AdminError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::Conflict(what) => AdminError::conflict(what),
            e => {
                tracing::error!(error = %e, "admin API: metadata store failed");
                AdminError::internal()
            }
        }
    }
}

/// A JSON body that did not parse: axum's rejection, in our error shape.
impl From<axum::extract::rejection::JsonRejection> for AdminError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        AdminError::invalid(e.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for AdminError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        AdminError::invalid(e.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for AdminError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        AdminError::invalid(e.body_text())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = ErrorBody { errors: vec![ErrorItem { code: self.code.to_owned(), message: self.message }] };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"berth\""));
        }
        resp
    }
}
