//! `/projects/{project}/webhook/policies`: Harbor's webhook policies (which
//! events go to which HTTP targets in which payload format) and their
//! delivery log (`deliveries.rs`). ProjectAdmins change them, Maintainers
//! see them (Harbor's rbac_role.go); other roles get 403.
//!
//! Bodies take Harbor's shape (`body.rs`); answers never show a secret or
//! auth header. A policy is addressed within its project: an id of another
//! project answers 404 and is never touched. Every change tells the event
//! router to reload its policies.

mod body;
mod deliveries;

use super::access::{project_for, ProjectAction};
use super::caller::Caller;
use super::error::{AdminError, AdminResult};
use super::page::{page, PageQuery};
use super::{Body, Query};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_meta::{MetaError, WebhookPolicy};
use body::{PolicyBody, PolicyView};
use http::StatusCode;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(get_policy, replace_policy, delete_policy))
        .merge(deliveries::router())
}

fn policy_not_found(project: &str, id: i64) -> AdminError {
    AdminError::not_found(format!("webhook policy {id} not found in project {project}"))
}

/// Policy `id` of `project`, or 404 (also when it belongs to another project).
async fn find(app: &App, project: &str, id: i64) -> AdminResult<WebhookPolicy> {
    match app.meta.webhook_policy(id).await? {
        Some(p) if p.project == project => Ok(p),
        _ => Err(policy_not_found(project, id)),
    }
}

/// A store refusal in the caller's terms.
fn store_error(e: MetaError) -> AdminError {
    match e {
        MetaError::Conflict(what) => AdminError::conflict(format!("{what} already exists")),
        // The project went away meanwhile.
        MetaError::NotFound(what) => AdminError::not_found(format!("{what} not found")),
        e => e.into(),
    }
}

#[utoipa::path(get, path = "/projects/{project}/webhook/policies", tag = "webhooks",
    params(("project" = String, Path), PageQuery),
    responses((status = 200, body = [PolicyView]), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// The project's policies by id (Maintainer, ProjectAdmin); `after` is a policy id.
async fn list_policies(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> AdminResult<Response> {
    project_for(&app, &caller, &name, ProjectAction::SeeWebhooks).await?;
    let after = match &q.after {
        None => i64::MIN,
        Some(s) => s.parse::<i64>().map_err(|_| AdminError::invalid("after is a policy id"))?,
    };
    // A project has few policies: the store reads them all.
    let policies = app.meta.webhook_policies(&name).await?;
    let views: Vec<PolicyView> = policies.iter().filter(|p| p.id > after).take(q.limit()).map(body::view).collect();
    Ok(page(views, q.limit(), &format!("/projects/{name}/webhook/policies"), |p| p.id.to_string()))
}

#[utoipa::path(post, path = "/projects/{project}/webhook/policies", tag = "webhooks",
    params(("project" = String, Path)), request_body = PolicyBody,
    responses((status = 201, body = PolicyView, headers(("location" = String))),
        (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Creates a policy (ProjectAdmin).
async fn create_policy(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<PolicyBody>,
) -> AdminResult<Response> {
    let user = caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditWebhooks).await?;
    let new = body::policy(req, &name, &user.name, None, app.events.webhook_addresses())?;
    let created = app.meta.create_webhook_policy(&new, crate::state::now_ms()).await.map_err(store_error)?;
    app.events.webhooks_changed();
    let location = format!("/api/v1/projects/{name}/webhook/policies/{}", created.id);
    Ok((StatusCode::CREATED, [(http::header::LOCATION, location)], Json(body::view(&created))).into_response())
}

#[utoipa::path(get, path = "/projects/{project}/webhook/policies/{id}", tag = "webhooks",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = PolicyView), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// One policy (Maintainer, ProjectAdmin).
async fn get_policy(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
) -> AdminResult<Json<PolicyView>> {
    project_for(&app, &caller, &name, ProjectAction::SeeWebhooks).await?;
    Ok(Json(body::view(&find(&app, &name, id).await?)))
}

#[utoipa::path(put, path = "/projects/{project}/webhook/policies/{id}", tag = "webhooks",
    params(("project" = String, Path), ("id" = i64, Path)), request_body = PolicyBody,
    responses((status = 200, body = PolicyView), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Replaces a policy (ProjectAdmin); a target's `"********"` secret or
/// auth header keeps the stored one of the target at that index, if its
/// address is unchanged.
async fn replace_policy(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
    Body(req): Body<PolicyBody>,
) -> AdminResult<Json<PolicyView>> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditWebhooks).await?;
    let stored = find(&app, &name, id).await?;
    let new = body::policy(req, &name, &stored.creator, Some(&stored), app.events.webhook_addresses())?;
    let updated = app.meta.update_webhook_policy(&name, id, &new, crate::state::now_ms()).await.map_err(store_error)?;
    let updated = updated.ok_or_else(|| policy_not_found(&name, id))?;
    app.events.webhooks_changed();
    Ok(Json(body::view(&updated)))
}

#[utoipa::path(delete, path = "/projects/{project}/webhook/policies/{id}", tag = "webhooks",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Deletes a policy and its delivery log (ProjectAdmin).
async fn delete_policy(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
) -> AdminResult<StatusCode> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditWebhooks).await?;
    if !app.meta.delete_webhook_policy(&name, id).await? {
        return Err(policy_not_found(&name, id));
    }
    app.events.webhooks_changed();
    Ok(StatusCode::NO_CONTENT)
}
