//! `GET /v2/<name>/tags/list`: tags in lexical order, paginated.

use super::pagination::Page;
use super::{json_response, parse_name, Ctx};
use crate::error::{ApiError, ApiResult};
use axum::response::Response;
use berth_oci::ErrorCode;
use http::StatusCode;

pub async fn list(ctx: &Ctx<'_>, name: &str) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let page = Page::from_query(ctx, ctx.app.settings.tags_max_entries)?;
    let tags = ctx
        .app
        .meta
        .list_tags(&repo, page.last.as_deref(), page.n + 1)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::NameUnknown).detail(serde_json::json!({ "name": name })))?;
    let tags = if page.n == 0 { Vec::new() } else { tags };
    let (tags, link) = page.finish(ctx, &format!("/v2/{repo}/tags/list"), tags);
    let mut resp =
        json_response(StatusCode::OK, "application/json", &serde_json::json!({ "name": repo.as_str(), "tags": tags }));
    if let Some(link) = link {
        resp.headers_mut().insert(http::header::LINK, link);
    }
    Ok(resp)
}
