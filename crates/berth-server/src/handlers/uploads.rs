//! Blob uploads: `POST` (start, single-request, or cross-repository mount),
//! `PATCH` (streamed or `Content-Range` chunks), `PUT` (final chunk and
//! digest), `GET` (status) and `DELETE` (cancel).
//!
//! The session (offset and hash state) lives in the metadata store, the
//! bytes in the blob store; each request appends, then records progress with
//! a compare-and-set on the offset. A restart, or another node, resumes
//! from the recorded state: bytes past it are discarded by the next append.

use super::{empty, header_value, parse_digest, parse_name, Ctx};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::events::{attach, Happened};
use crate::state::{now_ms, ClaimRefused, UploadClaim};
use axum::body::Body;
use axum::response::Response;
use berth_blob::ByteStream;
use berth_events::Action;
use berth_meta::UploadSession;
use berth_oci::{Algorithm, ContentRange, Digest, ErrorCode, Hasher, RepoName};
use futures_util::{StreamExt, TryStreamExt};
use http::{HeaderValue, StatusCode};

/// The request body as the blob store reads it: cut off with `TimedOut`
/// when the client sends nothing for `idle` (a stalled client would
/// otherwise hold its upload slot and connection for ever).
fn byte_stream(body: Body, idle: std::time::Duration) -> ByteStream {
    let data = body.into_data_stream().map_err(std::io::Error::other);
    if idle.is_zero() {
        return data.boxed();
    }
    futures_util::stream::unfold(Some(data), move |state| async move {
        let mut data = state?;
        match tokio::time::timeout(idle, data.next()).await {
            Ok(Some(item)) => Some((item, Some(data))),
            Ok(None) => None,
            Err(_) => {
                let why = format!("the client sent nothing for {} s", idle.as_secs());
                Some((Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why)), None))
            }
        }
    })
    .boxed()
}

/// `429 TOOMANYREQUESTS` when the node serves `berth.limits.maxuploads` uploads already.
fn uploads_full() -> ApiError {
    ApiError::new(ErrorCode::TooManyRequests)
        .message("this registry node is serving its limit of concurrent uploads; retry shortly")
        .header("retry-after", HeaderValue::from_static("1"))
}

fn restore_hasher(session: &UploadSession) -> ApiResult<Hasher> {
    Hasher::restore(&session.hash_state).map_err(|e| ApiError::internal("restoring hash state", e))
}

fn upload_unknown(id: &str) -> ApiError {
    ApiError::new(ErrorCode::BlobUploadUnknown).detail(serde_json::json!({ "uuid": id }))
}

/// `Range` as Distribution reports progress: `0-<last byte>` (`0-0` when empty).
fn range_header(offset: u64) -> HeaderValue {
    header_value(&format!("0-{}", offset.saturating_sub(1)))
}

fn progress_headers(ctx: &Ctx<'_>, repo: &RepoName, id: &str, offset: u64) -> Vec<(&'static str, HeaderValue)> {
    vec![
        ("location", ctx.location(&format!("/v2/{repo}/blobs/uploads/{id}"))),
        ("range", range_header(offset)),
        ("docker-upload-uuid", header_value(id)),
    ]
}

fn created(ctx: &Ctx<'_>, repo: &RepoName, digest: &Digest) -> Response {
    empty(
        StatusCode::CREATED,
        vec![
            ("location", ctx.location(&format!("/v2/{repo}/blobs/{digest}"))),
            ("docker-content-digest", header_value(digest.as_str())),
        ],
    )
}

/// Content-Length, when the client sent one.
fn content_length(ctx: &Ctx<'_>) -> ApiResult<Option<u64>> {
    match ctx.header("content-length") {
        None => Ok(None),
        Some(v) => {
            v.parse().map(Some).map_err(|_| ApiError::new(ErrorCode::SizeInvalid).message("invalid Content-Length"))
        }
    }
}

async fn load_session<'a>(ctx: &'a Ctx<'_>, repo: &RepoName, id: &str) -> ApiResult<(UploadSession, UploadClaim<'a>)> {
    let session = ctx.app.meta.get_upload(id).await?.filter(|s| s.repository == repo.as_str());
    let session = session.ok_or_else(|| upload_unknown(id))?;
    let claim = ctx.app.claim_upload(id).map_err(|refused| match refused {
        ClaimRefused::Full => uploads_full(),
        ClaimRefused::Busy => ApiError::new(ErrorCode::BlobUploadInvalid)
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .message("another request on this upload is in progress"),
    })?;
    Ok((session, claim))
}

pub async fn start(ctx: &Ctx<'_>, name: &str, body: Body) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    if let Some(mount) = ctx.query_param("mount") {
        // An unparsable digest or `from` cannot name a visible blob: fall
        // back to a plain upload, as for any failed mount (the spec, and
        // Distribution, which ignores such mount arguments).
        let digest = parse_digest(&mount).ok();
        let from = ctx.query_param("from").and_then(|f| RepoName::parse(&f).ok());
        let has_from = ctx.query_param("from").is_some();
        // The client must be able to pull the source: a mount must not
        // reveal a blob of a repository it cannot read. Without `from` the
        // source is any repository, so only a client that can read every
        // repository (no authentication, or htpasswd) mounts without one.
        let may_read_source = match &from {
            Some(f) => ctx.principal.allows(ctx.app.auth.policy(), "repository", f.as_str(), "pull").await,
            None => matches!(ctx.principal, Principal::Open | Principal::Htpasswd(_)),
        };
        if let Some(digest) = digest.filter(|_| (!has_from || from.is_some()) && may_read_source) {
            if let Some(size) = ctx.app.meta.mount_blob(&repo, &digest, from.as_ref(), now_ms()).await? {
                return Ok(attach(ctx.app, created(ctx, &repo, &digest), || {
                    let mut mounted = Happened::blob(Action::Mount, &repo, &digest, Some(size));
                    mounted.target.from_repository = from.as_ref().map(ToString::to_string);
                    vec![mounted]
                }));
            }
        }
    } else if let Some(digest) = ctx.query_param("digest") {
        let digest = parse_digest(&digest)?;
        return monolithic(ctx, &repo, &digest, body).await;
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    ctx.app.blobs.create_upload(&id).await?;
    let session = UploadSession {
        id: id.clone(),
        repository: repo.to_string(),
        offset: 0,
        hash_state: Hasher::new(Algorithm::Sha256).save(),
        created_ms: now,
        updated_ms: now,
        store_state: Vec::new(),
    };
    ctx.app.meta.create_upload(&session).await?;
    Ok(empty(StatusCode::ACCEPTED, progress_headers(ctx, &repo, &id, 0)))
}

/// `POST ?digest=` with the whole blob in the body: no session is recorded.
async fn monolithic(ctx: &Ctx<'_>, repo: &RepoName, digest: &Digest, body: Body) -> ApiResult<Response> {
    let _slot = ctx.app.upload_slot().ok_or_else(uploads_full)?;
    let id = uuid::Uuid::new_v4().to_string();
    let limit = content_length(ctx)?;
    let blobs = &ctx.app.blobs;
    blobs.create_upload(&id).await?;
    let result = async {
        let appended = blobs
            .append(
                &id,
                0,
                &[],
                Hasher::new(digest.algorithm()),
                byte_stream(body, ctx.app.settings.upload_idle),
                limit,
            )
            .await?;
        check_length(limit, appended.len)?;
        verify(appended.hasher.finish(), digest)?;
        crate::quota::enforce(ctx, repo, &[(digest.clone(), appended.len)]).await?;
        spare_from_gc(ctx, digest).await?;
        blobs.commit_upload(&id, appended.len, &appended.store_state, digest).await?;
        ctx.app.meta.commit_blob(repo, digest, appended.len, None, now_ms()).await?;
        Ok::<_, ApiError>(appended.len)
    }
    .await;
    if result.is_err() {
        let _ = blobs.delete_upload(&id).await;
    }
    let size = result?;
    Ok(attach(ctx.app, created(ctx, repo, digest), || vec![Happened::blob(Action::Push, repo, digest, Some(size))]))
}

/// Tells garbage collection these bytes are about to be stored again, so a
/// collection in progress spares them. A blob whose bytes are being deleted
/// at this very moment cannot be re-committed until that finishes: the
/// client is asked to retry (docker does).
async fn spare_from_gc(ctx: &Ctx<'_>, digest: &Digest) -> ApiResult<()> {
    if ctx.app.meta.touch_blob(digest, now_ms()).await? {
        Ok(())
    } else {
        Err(crate::error::blob_busy(digest))
    }
}

fn check_length(declared: Option<u64>, got: u64) -> ApiResult<()> {
    match declared {
        Some(want) if want != got => Err(ApiError::new(ErrorCode::SizeInvalid)
            .message(format!("received {got} bytes but Content-Length said {want}"))),
        _ => Ok(()),
    }
}

fn verify(actual: Digest, expected: &Digest) -> ApiResult<()> {
    if actual == *expected {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::DigestInvalid)
            .message(format!("uploaded content has digest {actual}, not {expected}"))
            .detail(serde_json::json!({ "digest": expected.as_str() })))
    }
}

pub async fn status(ctx: &Ctx<'_>, name: &str, id: &str) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let session = ctx.app.meta.get_upload(id).await?.filter(|s| s.repository == repo.as_str());
    let session = session.ok_or_else(|| upload_unknown(id))?;
    Ok(empty(StatusCode::NO_CONTENT, progress_headers(ctx, &repo, id, session.offset)))
}

/// Appends the request body to the session, honouring `Content-Range`, and
/// records the new offset. Returns the updated session.
async fn append(ctx: &Ctx<'_>, repo: &RepoName, mut session: UploadSession, body: Body) -> ApiResult<UploadSession> {
    let range = match ctx.header("content-range") {
        None => None,
        Some(h) => Some(ContentRange::parse(h).map_err(|_| {
            ApiError::new(ErrorCode::BlobUploadInvalid)
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .message(format!("invalid Content-Range {h:?}"))
        })?),
    };
    let length = content_length(ctx)?;
    if let Some(r) = range {
        // Chunks must arrive in order and without overlap.
        if r.start != session.offset {
            let mut err = ApiError::new(ErrorCode::BlobUploadInvalid)
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .message(format!("chunk starts at {} but the upload holds {} bytes", r.start, session.offset));
            for (k, v) in progress_headers(ctx, repo, &session.id, session.offset) {
                err = err.header(k, v);
            }
            return Err(err);
        }
        if length.is_some_and(|l| l != r.len()) {
            return Err(ApiError::new(ErrorCode::SizeInvalid).message("Content-Length does not match Content-Range"));
        }
    }
    let limit = range.map(|r| r.len()).or(length);
    if limit == Some(0) {
        return Ok(session);
    }
    let hasher = restore_hasher(&session)?;
    let appended = ctx
        .app
        .blobs
        .append(
            &session.id,
            session.offset,
            &session.store_state,
            hasher,
            byte_stream(body, ctx.app.settings.upload_idle),
            limit,
        )
        .await?;
    check_length(limit, appended.len - session.offset)?;
    let state = appended.hasher.save();
    let now = now_ms();
    let meta = &ctx.app.meta;
    if !meta.advance_upload(&session.id, session.offset, appended.len, &state, &appended.store_state, now).await? {
        // Another node advanced or ended the session meanwhile: ours is void.
        return Err(ApiError::new(ErrorCode::BlobUploadInvalid)
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .message("the upload was changed by a concurrent request"));
    }
    session.offset = appended.len;
    session.hash_state = state;
    session.store_state = appended.store_state;
    session.updated_ms = now;
    Ok(session)
}

pub async fn patch(ctx: &Ctx<'_>, name: &str, id: &str, body: Body) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let (session, _claim) = load_session(ctx, &repo, id).await?;
    let session = append(ctx, &repo, session, body).await?;
    Ok(empty(StatusCode::ACCEPTED, progress_headers(ctx, &repo, id, session.offset)))
}

pub async fn finish(ctx: &Ctx<'_>, name: &str, id: &str, body: Body) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let digest = ctx
        .query_param("digest")
        .ok_or_else(|| ApiError::new(ErrorCode::DigestInvalid).message("the digest parameter is required"))?;
    let digest = parse_digest(&digest)?;
    let (session, _claim) = load_session(ctx, &repo, id).await?;
    let session = append(ctx, &repo, session, body).await?;
    let hasher = restore_hasher(&session)?;
    let store_state = &session.store_state;
    let actual = if hasher.algorithm() == digest.algorithm() {
        hasher.finish()
    } else {
        ctx.app.blobs.hash_upload(id, session.offset, store_state, digest.algorithm()).await?
    };
    let checked = match verify(actual, &digest) {
        // Over its project's quota, the upload ends as a failed one does.
        Ok(()) => crate::quota::enforce(ctx, &repo, &[(digest.clone(), session.offset)]).await,
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        // As Distribution does: a failed verification ends the upload.
        let _ = ctx.app.meta.delete_upload(id).await;
        let _ = ctx.app.blobs.delete_upload(id).await;
        return Err(e);
    }
    spare_from_gc(ctx, &digest).await?;
    ctx.app.blobs.commit_upload(id, session.offset, store_state, &digest).await?;
    ctx.app.meta.commit_blob(&repo, &digest, session.offset, Some(id), now_ms()).await?;
    let size = session.offset;
    Ok(attach(ctx.app, created(ctx, &repo, &digest), || vec![Happened::blob(Action::Push, &repo, &digest, Some(size))]))
}

pub async fn cancel(ctx: &Ctx<'_>, name: &str, id: &str) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let (_session, _claim) = load_session(ctx, &repo, id).await?;
    ctx.app.meta.delete_upload(id).await?;
    ctx.app.blobs.delete_upload(id).await?;
    Ok(empty(StatusCode::NO_CONTENT, vec![]))
}
