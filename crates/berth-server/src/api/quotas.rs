//! `/projects/{project}/quota`: a project's storage limit and what it uses
//! (counted as `berth_meta::QuotaStore` documents; enforced at push time by
//! `crate::quota`). Every role sees it; only system administrators change
//! it (Harbor's "Edit project quotas").

use super::access::{project_for, ProjectAction};
use super::caller::Caller;
use super::error::AdminResult;
use super::Body;
use crate::state::App;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(get_quota, set_quota))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct QuotaView {
    /// The storage limit in bytes; null for none.
    pub limit: Option<u64>,
    /// Bytes counted: every blob and manifest a manifest of the project
    /// references, once however many of its repositories hold it.
    pub used: u64,
    /// Of `used`, bytes another project counts too.
    pub shared: u64,
    /// `used - shared`: what deleting the project's manifests would free.
    pub exclusive: u64,
    /// Distinct blobs and manifests counted.
    pub blob_count: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaUpdate {
    /// The new limit in bytes, or null to remove it. Required: a body
    /// without it is refused rather than read as "no limit". A limit below
    /// the current usage is accepted; pushes that add storage are then refused.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(required = true)]
    pub limit: Option<u64>,
}

async fn view(app: &App, project: &str) -> AdminResult<QuotaView> {
    let limit = app.meta.project_quota(project).await?.flatten();
    let usage = app.meta.project_usage(project).await?;
    Ok(QuotaView {
        limit,
        used: usage.total,
        shared: usage.shared,
        exclusive: usage.exclusive,
        blob_count: usage.blob_count,
    })
}

#[utoipa::path(get, path = "/projects/{project}/quota", tag = "quotas", params(("project" = String, Path)),
    responses((status = 200, body = QuotaView), (status = 404, body = super::error::ErrorBody)))]
/// The project's storage limit and usage (every role).
async fn get_quota(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> AdminResult<Json<QuotaView>> {
    project_for(&app, &caller, &name, ProjectAction::SeeQuota).await?;
    Ok(Json(view(&app, &name).await?))
}

#[utoipa::path(put, path = "/projects/{project}/quota", tag = "quotas", params(("project" = String, Path)),
    request_body = QuotaUpdate,
    responses((status = 200, body = QuotaView), (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Sets or removes the project's storage limit (system administrators).
async fn set_quota(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<QuotaUpdate>,
) -> AdminResult<Json<QuotaView>> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditQuota).await?;
    if !app.meta.set_project_quota(&name, req.limit).await? {
        return Err(super::access::not_found(&name));
    }
    Ok(Json(view(&app, &name).await?))
}
