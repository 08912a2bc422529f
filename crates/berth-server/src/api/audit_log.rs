//! `/audit-logs`: the tamper-evident audit log, read by administrators
//! (oldest first, paged by entry id; `berth audit verify` checks the chain).

use super::caller::Caller;
use super::error::AdminResult;
use super::page::{page, PageQuery};
use super::{rfc3339_ms, Query};
use crate::state::App;
use axum::extract::State;
use axum::response::Response;
use berth_meta::AuditEntry;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub time: String,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub resource: String,
    pub success: bool,
    pub status: u16,
    pub hash: String,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            id: e.id,
            time: rfc3339_ms(e.event.time_ms),
            actor: e.event.actor,
            source: e.event.source,
            action: e.event.action,
            resource: e.event.resource,
            success: e.event.success,
            status: e.event.status,
            hash: e.hash,
        }
    }
}

#[utoipa::path(get, path = "/audit-logs", tag = "audit", params(PageQuery),
    responses((status = 200, body = [AuditView]), (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Audit entries after the entry id `after` (administrators).
async fn list_audit(State(app): State<Arc<App>>, caller: Caller, Query(q): Query<PageQuery>) -> AdminResult<Response> {
    caller.admin()?;
    let after = match q.after.as_deref() {
        None => 0,
        Some(s) => s.parse().map_err(|_| super::error::AdminError::invalid("after is an entry id"))?,
    };
    let entries = app.meta.audit_entries(after, q.limit()).await?;
    let views: Vec<AuditView> = entries.into_iter().map(AuditView::from).collect();
    Ok(page(views, q.limit(), "/audit-logs", |e| e.id.to_string()))
}
