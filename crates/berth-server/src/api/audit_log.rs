//! `/audit-logs`: the tamper-evident audit log, read by administrators
//! (oldest first, paged by entry id; `berth audit verify` checks the chain),
//! and `/projects/{project}/audit-logs`: the entries about one project, for
//! its members (Harbor's "See a list of project logs").

use super::access::{project_for, ProjectAction};
use super::caller::Caller;
use super::error::{AdminError, AdminResult};
use super::page::{page, PageQuery};
use super::{rfc3339_ms, Query};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_meta::{action, project_of, AuditEntry};
use http::HeaderValue;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(list_audit)).routes(routes!(list_project_audit))
}

/// Entries a project's log scans per request: a request costs at most this
/// many rows however rare the project's entries are; the `Link` cursor is
/// the last entry scanned, so paging on covers the rest.
const SCAN: usize = 10_000;

/// The project an entry is about: an admin API change under
/// `/projects/{project}`, or a registry action on one of its repositories
/// (`repo[:tag][@digest]`). Logins are about accounts, not projects.
fn entry_project(e: &AuditEntry) -> Option<&str> {
    let r = e.event.resource.as_str();
    if let Some(rest) = r.strip_prefix("/projects/") {
        return rest.split('/').next();
    }
    if e.event.action == action::LOGIN || r.starts_with('/') {
        return None;
    }
    let name = r.split([':', '@']).next().unwrap_or(r);
    Some(project_of(name))
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

#[utoipa::path(get, path = "/projects/{project}/audit-logs", tag = "audit", params(("project" = String, Path), PageQuery),
    responses((status = 200, body = [AuditView]), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// The project's audit entries after entry id `after`: pushes, pulls and
/// deletes in its repositories and changes to it through this API (every
/// role but LimitedGuest, as Harbor).
async fn list_project_audit(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query<PageQuery>,
) -> AdminResult<Response> {
    caller.user()?;
    project_for(&app, &caller, &project, ProjectAction::SeeLogs).await?;
    let mut after = match q.after.as_deref() {
        None => 0,
        Some(s) => s.parse().map_err(|_| AdminError::invalid("after is an entry id"))?,
    };
    let limit = q.limit();
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut more = true;
    while found.len() < limit && scanned < SCAN {
        let batch = app.meta.audit_entries(after, 1000).await?;
        more = batch.len() == 1000;
        scanned += batch.len();
        for e in batch {
            after = e.id;
            if entry_project(&e) == Some(project.as_str()) {
                found.push(AuditView::from(e));
                if found.len() == limit {
                    more = true;
                    break;
                }
            }
        }
        if !more {
            break;
        }
    }
    let mut resp = Json(found).into_response();
    if more {
        let link = format!("</api/v1/projects/{project}/audit-logs?limit={limit}&after={after}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(http::header::LINK, v);
        }
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_meta::AuditEvent;

    fn entry(action: &str, resource: &str) -> AuditEntry {
        let event = AuditEvent {
            time_ms: 0,
            actor: "a".into(),
            source: "::1".into(),
            action: action.into(),
            resource: resource.into(),
            success: true,
            status: 200,
        };
        AuditEntry { id: 1, event, prev_hash: String::new(), hash: String::new() }
    }

    #[test]
    fn entries_belong_to_the_project_they_touch() {
        assert_eq!(entry_project(&entry("push", "team-a/app:v1@sha256:ab")), Some("team-a"));
        assert_eq!(entry_project(&entry("pull", "team-a/x/y@sha256:ab")), Some("team-a"));
        assert_eq!(entry_project(&entry("pull", "busybox:latest")), Some("library"));
        assert_eq!(
            entry_project(&entry("api PUT /api/v1/projects/{project}/quota", "/projects/team-a/quota")),
            Some("team-a")
        );
        assert_eq!(entry_project(&entry("api PATCH /api/v1/projects/{project}", "/projects/team-b")), Some("team-b"));
        assert_eq!(entry_project(&entry("login", "alice")), None);
        assert_eq!(entry_project(&entry("api POST /api/v1/users", "/users")), None);
        assert_eq!(entry_project(&entry("denied pull,push", "team-c/app")), Some("team-c"));
    }
}
