//! `/system/readonly`: read-only maintenance mode, switched at run time by
//! system administrators (`crate::read_only` keeps it and tells the other
//! nodes). Pushes, uploads in progress and deletes are then refused with
//! `405 UNSUPPORTED`, as Distribution does in read-only mode; pulls and this
//! API go on.

use super::caller::Caller;
use super::error::{AdminError, AdminResult};
use super::Body;
use crate::state::App;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(get_read_only, set_read_only))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadOnlyMode {
    /// Whether writes are refused. Other nodes follow a change within a
    /// few seconds.
    pub enabled: bool,
}

#[utoipa::path(get, path = "/system/readonly", tag = "system",
    responses((status = 200, body = ReadOnlyMode), (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Whether the registry is in read-only mode (system administrators).
async fn get_read_only(State(app): State<Arc<App>>, caller: Caller) -> AdminResult<Json<ReadOnlyMode>> {
    caller.admin()?;
    Ok(Json(ReadOnlyMode { enabled: app.read_only.is_on() }))
}

#[utoipa::path(put, path = "/system/readonly", tag = "system", request_body = ReadOnlyMode,
    responses((status = 200, body = ReadOnlyMode), (status = 403, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Switches read-only mode on or off for every node (system administrators).
/// Refused with 409 when the configuration forces it on.
async fn set_read_only(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(req): Body<ReadOnlyMode>,
) -> AdminResult<Json<ReadOnlyMode>> {
    caller.admin()?;
    if !req.enabled && app.read_only.configured() {
        return Err(AdminError::conflict(
            "read-only mode is set in the configuration (storage.maintenance.readonly.enabled)",
        ));
    }
    app.read_only.set(app.meta.as_ref(), req.enabled).await?;
    Ok(Json(ReadOnlyMode { enabled: app.read_only.is_on() }))
}
