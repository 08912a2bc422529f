//! `/projects/{project}/webhook/policies/{id}/deliveries`: a policy's
//! delivery log (what the event router queued, sent, retried or gave up),
//! newest first. Listings leave payloads out (they can be large); one
//! delivery shows its payload.

use super::super::access::{project_for, ProjectAction};
use super::super::caller::Caller;
use super::super::error::{AdminError, AdminResult};
use super::super::page::{page, PageQuery};
use super::super::{rfc3339_ms, Query};
use super::find;
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use berth_meta::{WebhookDelivery, WebhookPolicy};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(list_deliveries)).routes(routes!(get_delivery))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    /// RFC 3339: when the next attempt is due (pending), or the last was made.
    pub due_at: String,
    /// The last attempt's HTTP status, if it got one.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The target's address; null if the policy no longer has that target.
    pub target: Option<String>,
}

/// One delivery with the body it sends.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// The body as JSON, or as a string if it is not JSON.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

fn view(d: &WebhookDelivery, policy: &WebhookPolicy) -> DeliveryView {
    DeliveryView {
        id: d.id,
        event_type: d.event_type.clone(),
        status: d.status.as_str().to_owned(),
        attempts: d.attempts,
        due_at: rfc3339_ms(d.due_ms),
        last_status: d.last_status,
        last_error: d.last_error.clone(),
        created_at: rfc3339_ms(d.created_ms),
        updated_at: rfc3339_ms(d.updated_ms),
        // The index is into the targets as they were when queued: an edit since may have moved them.
        target: policy.targets.get(d.target as usize).map(|t| t.address.clone()),
    }
}

#[utoipa::path(get, path = "/projects/{project}/webhook/policies/{id}/deliveries", tag = "webhooks",
    params(("project" = String, Path), ("id" = i64, Path), PageQuery),
    responses((status = 200, body = [DeliveryView]), (status = 403, body = super::super::error::ErrorBody),
        (status = 404, body = super::super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// The policy's deliveries, newest first (Maintainer, ProjectAdmin); `after` is a delivery id.
async fn list_deliveries(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
    Query(q): Query<PageQuery>,
) -> AdminResult<Response> {
    project_for(&app, &caller, &name, ProjectAction::SeeWebhooks).await?;
    let policy = find(&app, &name, id).await?;
    let before = match &q.after {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| AdminError::invalid("after is a delivery id"))?),
    };
    let deliveries = app.meta.webhook_deliveries(id, before, q.limit()).await?;
    let views: Vec<DeliveryView> = deliveries.iter().map(|d| view(d, &policy)).collect();
    let path = format!("/projects/{name}/webhook/policies/{id}/deliveries");
    Ok(page(views, q.limit(), &path, |d| d.id.to_string()))
}

#[utoipa::path(get, path = "/projects/{project}/webhook/policies/{id}/deliveries/{delivery_id}", tag = "webhooks",
    params(("project" = String, Path), ("id" = i64, Path), ("delivery_id" = i64, Path)),
    responses((status = 200, body = DeliveryDetail), (status = 403, body = super::super::error::ErrorBody),
        (status = 404, body = super::super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// One delivery with its payload (Maintainer, ProjectAdmin).
async fn get_delivery(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id, delivery_id)): Path<(String, i64, i64)>,
) -> AdminResult<Json<DeliveryDetail>> {
    project_for(&app, &caller, &name, ProjectAction::SeeWebhooks).await?;
    let policy = find(&app, &name, id).await?;
    // The store reads deliveries by keyset only: the newest one below
    // `delivery_id + 1` is that delivery if the policy has it.
    let found = app.meta.webhook_deliveries(id, Some(delivery_id.saturating_add(1)), 1).await?;
    let d = found.into_iter().find(|d| d.id == delivery_id).ok_or_else(|| {
        AdminError::not_found(format!("delivery {delivery_id} not found for webhook policy {id} of project {name}"))
    })?;
    let payload = serde_json::from_str(&d.payload).unwrap_or_else(|_| serde_json::Value::String(d.payload.clone()));
    Ok(Json(DeliveryDetail { delivery: view(&d, &policy), payload }))
}
