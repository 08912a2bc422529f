//! `/v2/<name>/blobs/<digest>`: HEAD, GET (with `Range`), DELETE.
//! A repository sees only blobs pushed or mounted into it.

use super::{empty, header_value, parse_digest, parse_name, Ctx};
use crate::error::{ApiError, ApiResult};
use crate::events::{attach, Happened};
use axum::body::Body;
use axum::response::Response;
use berth_blob::BlobReader;
use berth_events::Action;
use berth_oci::{ByteRange, ErrorCode, RangeError};
use http::{header, HeaderValue, Method, StatusCode};

pub async fn get(ctx: &Ctx<'_>, name: &str, digest: &str) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let digest = parse_digest(digest)?;
    let unknown = || ApiError::new(ErrorCode::BlobUnknown).detail(serde_json::json!({ "digest": digest.as_str() }));
    let size = ctx.app.meta.repo_blob(&repo, &digest).await?.ok_or_else(unknown)?;

    // RFC 9110: a malformed Range is ignored; an unsatisfiable one is a 416.
    let range = match ctx.header("range").map(|h| ByteRange::parse_header(h, size)) {
        None | Some(Ok(None)) | Some(Err(RangeError::Malformed)) => None,
        Some(Ok(Some(r))) => Some(r),
        Some(Err(RangeError::Unsatisfiable)) => {
            return Err(ApiError::new(ErrorCode::RangeInvalid)
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .message("requested range not satisfiable")
                .header("content-range", header_value(&format!("bytes */{size}"))));
        }
    };
    let (status, len) = match range {
        Some(r) => (StatusCode::PARTIAL_CONTENT, r.len()),
        None => (StatusCode::OK, size),
    };
    let body = if ctx.parts.method == Method::HEAD {
        Body::empty()
    } else {
        let reader = ctx.app.blobs.open(&digest, range).await?;
        let (BlobReader::File { size: stored, .. }
        | BlobReader::Stream { size: stored, .. }
        | BlobReader::Redirect { size: stored, .. }) = reader;
        if stored != size {
            // Never promise bytes that are not there: fail before the headers.
            return Err(ApiError::internal(
                "blob file size differs from its record",
                format!("{digest}: {stored} bytes stored, {size} recorded"),
            ));
        }
        match reader {
            BlobReader::File { file, offset, len, .. } => match sendfile_slot(ctx) {
                Some(slot) => Body::new(crate::sendfile::SendfileBody::new(slot, file, offset, len)),
                None => Body::from_stream(berth_blob::file_stream(file, offset, len)),
            },
            BlobReader::Stream { body, .. } => Body::from_stream(body),
            // `storage.redirect` (S3): the client fetches the bytes from the store.
            BlobReader::Redirect { url, .. } => {
                return Ok(empty(
                    StatusCode::TEMPORARY_REDIRECT,
                    vec![("location", header_value(&url)), ("docker-content-digest", header_value(digest.as_str()))],
                ));
            }
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert("docker-content-digest", header_value(digest.as_str()));
    h.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=31536000"));
    if let Some(r) = range {
        h.insert(header::CONTENT_RANGE, header_value(&format!("bytes {}-{}/{size}", r.start, r.end)));
    }
    if ctx.parts.method == Method::HEAD {
        return Ok(resp);
    }
    Ok(attach(ctx.app, resp, || vec![Happened::blob(Action::Pull, &repo, &digest, Some(size))]))
}

pub async fn delete(ctx: &Ctx<'_>, name: &str, digest: &str) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let digest = parse_digest(digest)?;
    ctx.require_deletes()?;
    if !ctx.app.meta.unlink_blob(&repo, &digest).await? {
        return Err(ApiError::new(ErrorCode::BlobUnknown).detail(serde_json::json!({ "digest": digest.as_str() })));
    }
    let resp = empty(StatusCode::ACCEPTED, vec![("docker-content-digest", header_value(digest.as_str()))]);
    Ok(attach(ctx.app, resp, || vec![Happened::blob(Action::Delete, &repo, &digest, None)]))
}

/// The connection's sendfile slot, on plain HTTP/1.x connections that have one.
fn sendfile_slot(ctx: &Ctx<'_>) -> Option<std::sync::Arc<crate::sendfile::SendfileSlot>> {
    if ctx.parts.version > http::Version::HTTP_11 {
        return None;
    }
    ctx.parts.extensions.get::<std::sync::Arc<crate::sendfile::SendfileSlot>>().cloned()
}
