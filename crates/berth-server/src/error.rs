//! The one place where failures become HTTP: every error a handler can hit
//! is mapped here to the spec's status and `{"errors":[...]}` body.
//! Internal details are logged, never sent.

use axum::response::{IntoResponse, Response};
use berth_blob::StoreError;
use berth_meta::MetaError;
use berth_oci::ErrorCode;
use http::{HeaderValue, StatusCode};
use std::borrow::Cow;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub status: StatusCode,
    pub message: Cow<'static, str>,
    pub detail: Option<serde_json::Value>,
    /// Extra response headers (a Vec: a HeaderMap would make every
    /// `Result` of the handlers several times larger).
    pub headers: Vec<(&'static str, HeaderValue)>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode) -> Self {
        ApiError {
            code,
            status: StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message: Cow::Borrowed(code.message()),
            detail: None,
            headers: Vec::new(),
        }
    }

    pub fn message(mut self, message: impl Into<Cow<'static, str>>) -> Self {
        self.message = message.into();
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn header(mut self, name: &'static str, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn internal(context: &str, err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "{context}");
        ApiError::new(ErrorCode::Unknown)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut entry = serde_json::json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(detail) = self.detail {
            entry["detail"] = detail;
        }
        let body = serde_json::to_vec(&serde_json::json!({ "errors": [entry] })).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in self.headers {
            resp.headers_mut().insert(name, value);
        }
        resp
    }
}

/// 503 with `Retry-After`: garbage collection is deleting this blob's bytes
/// right now; a retry in a moment stores them afresh.
pub fn blob_busy(digest: &berth_oci::Digest) -> ApiError {
    ApiError::new(ErrorCode::Unavailable)
        .message(format!("blob {digest} is being garbage-collected; retry"))
        .header("retry-after", HeaderValue::from_static("1"))
}

impl From<MetaError> for ApiError {
    fn from(e: MetaError) -> Self {
        match e {
            MetaError::BlobUnknown(d) => ApiError::new(ErrorCode::ManifestBlobUnknown)
                .message(format!("blob unknown to registry: {d}"))
                .detail(serde_json::json!({ "digest": d.as_str() })),
            MetaError::ManifestUnknown(d) => ApiError::new(ErrorCode::ManifestBlobUnknown)
                .message(format!("manifest referenced by the index is unknown: {d}"))
                .detail(serde_json::json!({ "digest": d.as_str() })),
            MetaError::BlobBusy(d) => blob_busy(&d),
            other => ApiError::internal("metadata store failed", other),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full => {
                tracing::error!("blob storage is full");
                ApiError::new(ErrorCode::Unknown)
                    .status(StatusCode::INSUFFICIENT_STORAGE)
                    .message("storage is full; the upload was not stored")
            }
            StoreError::TooLarge(limit) => ApiError::new(ErrorCode::SizeInvalid)
                .message(format!("body is larger than the {limit} bytes announced")),
            StoreError::Body(err) => {
                ApiError::new(ErrorCode::BlobUploadInvalid).message(format!("reading the request body failed: {err}"))
            }
            StoreError::UploadNotFound(_) => ApiError::new(ErrorCode::BlobUploadUnknown),
            StoreError::UploadTruncated { .. } => {
                tracing::error!(error = %e, "upload staging data lost");
                ApiError::new(ErrorCode::BlobUploadInvalid).message("upload data was lost; restart the upload")
            }
            StoreError::BlobNotFound(d) => {
                tracing::error!(digest = %d, "blob listed in metadata is missing from storage");
                ApiError::new(ErrorCode::BlobUnknown)
            }
            StoreError::Io(err) => ApiError::internal("blob storage failed", err),
        }
    }
}
