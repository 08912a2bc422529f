//! `GET /v2/_catalog`: repositories in lexical order, paginated. Answered
//! from the metadata store, never by walking storage.

use super::pagination::Page;
use super::{json_response, Ctx};
use crate::error::ApiResult;
use axum::response::Response;
use http::StatusCode;

pub async fn list(ctx: &Ctx<'_>) -> ApiResult<Response> {
    let page = Page::from_query(ctx, ctx.app.settings.catalog_max_entries)?;
    let repos =
        if page.n == 0 { Vec::new() } else { ctx.app.meta.list_repositories(page.last.as_deref(), page.n + 1).await? };
    let (repos, link) = page.finish(ctx, "/v2/_catalog", repos);
    let mut resp = json_response(StatusCode::OK, "application/json", &serde_json::json!({ "repositories": repos }));
    if let Some(link) = link {
        resp.headers_mut().insert(http::header::LINK, link);
    }
    Ok(resp)
}
