//! `GET /v2/<name>/referrers/<digest>`: an image index of the manifests whose
//! `subject` is the digest, optionally filtered by `artifactType`. An empty
//! index, never a 404, when there are none.

use super::{json_response, parse_digest, parse_name, Ctx};
use crate::error::ApiResult;
use axum::response::Response;
use berth_oci::media_type::OCI_INDEX;
use http::{HeaderValue, StatusCode};

pub async fn list(ctx: &Ctx<'_>, name: &str, digest: &str) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let subject = parse_digest(digest)?;
    let filter = ctx.query_param("artifactType").filter(|f| !f.is_empty());
    let referrers = ctx.app.meta.referrers(&repo, &subject, filter.as_deref()).await?;
    let manifests: Vec<serde_json::Value> = referrers
        .into_iter()
        .map(|r| {
            let mut d = serde_json::json!({ "mediaType": r.media_type, "digest": r.digest.as_str(), "size": r.size });
            if let Some(a) = r.artifact_type {
                d["artifactType"] = a.into();
            }
            if let Some(ann) = r.annotations.and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok()) {
                d["annotations"] = ann;
            }
            d
        })
        .collect();
    let index = serde_json::json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut resp = json_response(StatusCode::OK, OCI_INDEX, &index);
    if filter.is_some() {
        resp.headers_mut().insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    Ok(resp)
}
