//! `/projects` and their members. Who may do what follows Harbor's matrix
//! (see `access.rs`); a private project is invisible (404) to non-members.

use super::access::{not_found, parse_role, project_for, role_name, ProjectAction};
use super::caller::{service, Caller};
use super::error::{AdminError, AdminResult};
use super::page::{page, PageQuery};
use super::{rfc3339_ms, Body, Query};
use crate::auth::ProjectCreation;
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_meta::{valid_project_name, MetaError, Project, Role};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(get_project, update_project, delete_project))
        .routes(routes!(list_members))
        .routes(routes!(set_member, remove_member))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    /// Anyone, even anonymous, may pull.
    pub public: bool,
    pub created_at: String,
    /// The caller's role, if a member.
    pub role: Option<String>,
}

fn view(p: &Project, role: Option<Role>) -> ProjectView {
    ProjectView {
        id: p.id,
        name: p.name.clone(),
        public: p.public,
        created_at: rfc3339_ms(p.created_ms),
        role: role.map(|r| role_name(r).to_owned()),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    pub name: String,
    #[serde(default)]
    pub public: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdate {
    pub public: Option<bool>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub user_id: i64,
    pub username: String,
    /// projectAdmin, maintainer, developer, guest or limitedGuest.
    pub role: String,
    /// Harbor's role id (1 projectAdmin, 2 developer, 3 guest, 4 maintainer, 5 limitedGuest).
    pub role_id: i32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRole {
    /// projectAdmin, maintainer, developer, guest or limitedGuest.
    pub role: String,
}

#[utoipa::path(get, path = "/projects", tag = "projects", params(PageQuery),
    responses((status = 200, body = [ProjectView])))]
/// Projects the caller may see, by name: all for administrators, else the
/// public ones and those the caller is a member of.
async fn list_projects(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<PageQuery>,
) -> AdminResult<Response> {
    let limit = q.limit();
    let mut out = Vec::new();
    let mut after = q.after.clone();
    // Filtering may drop rows: read on until the page is full or the list ends.
    loop {
        let batch = app.meta.list_projects(after.as_deref(), limit).await?;
        let done = batch.len() < limit;
        for p in &batch {
            let role = match &caller.user {
                Some(u) => app.meta.project_access(&p.name, Some(u.id)).await?.and_then(|(_, r)| r),
                None => None,
            };
            if caller.is_admin() || p.public || role.is_some() {
                out.push(view(p, role));
                if out.len() == limit {
                    break;
                }
            }
        }
        after = batch.last().map(|p| p.name.clone());
        if done || out.len() == limit {
            break;
        }
    }
    Ok(page(out, limit, "/projects", |p| p.name.clone()))
}

#[utoipa::path(post, path = "/projects", tag = "projects", request_body = NewProject,
    responses((status = 201, body = ProjectView), (status = 409, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Creates a project, the caller its ProjectAdmin; open to every user or to
/// administrators only (`berth.projects.creation`).
async fn create_project(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(req): Body<NewProject>,
) -> AdminResult<Response> {
    let user = caller.user()?;
    let policy = &service(&app)?.policy;
    if !user.admin && policy.creation() == ProjectCreation::AdminOnly {
        return Err(AdminError::forbidden("only system administrators may create projects here"));
    }
    if !valid_project_name(&req.name) {
        return Err(AdminError::invalid(format!(
            "invalid project name {:?}: lowercase letters and digits, separated by '.', '_', '__' or '-'",
            req.name
        )));
    }
    let project = match app.meta.create_project(&req.name, req.public, Some(user.id), crate::state::now_ms()).await {
        Ok(p) => p,
        Err(MetaError::Conflict(_)) => {
            return Err(AdminError::conflict(format!("project {} already exists", req.name)))
        }
        Err(e) => return Err(e.into()),
    };
    policy.forget();
    Ok((StatusCode::CREATED, Json(view(&project, Some(Role::ProjectAdmin)))).into_response())
}

#[utoipa::path(get, path = "/projects/{project}", tag = "projects", params(("project" = String, Path)),
    responses((status = 200, body = ProjectView), (status = 404, body = super::error::ErrorBody)))]
/// One project.
async fn get_project(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> AdminResult<Json<ProjectView>> {
    let (p, role) = project_for(&app, &caller, &name, ProjectAction::SeeProject).await?;
    Ok(Json(view(&p, role)))
}

#[utoipa::path(patch, path = "/projects/{project}", tag = "projects", params(("project" = String, Path)),
    request_body = ProjectUpdate,
    responses((status = 200, body = ProjectView), (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Makes a project public or private (ProjectAdmin).
async fn update_project(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<ProjectUpdate>,
) -> AdminResult<Json<ProjectView>> {
    let (mut p, role) = project_for(&app, &caller, &name, ProjectAction::EditProject).await?;
    if let Some(public) = req.public {
        app.meta.set_project_public(&name, public).await?;
        p.public = public;
        service(&app)?.policy.forget();
    }
    Ok(Json(view(&p, role)))
}

#[utoipa::path(delete, path = "/projects/{project}", tag = "projects", params(("project" = String, Path)),
    responses((status = 204), (status = 412, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Deletes an empty project (ProjectAdmin). `library` holds every
/// one-component name and is never deleted.
async fn delete_project(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> AdminResult<StatusCode> {
    project_for(&app, &caller, &name, ProjectAction::DeleteProject).await?;
    if name == "library" {
        return Err(AdminError::precondition("the library project holds one-component names and cannot be deleted"));
    }
    // Names sort bytewise and none ends in '/': the first name after
    // "<project>/" is in the project if any is.
    let first = app.meta.list_repositories(Some(&format!("{name}/")), 1).await?;
    if first.first().is_some_and(|r| r.starts_with(&format!("{name}/"))) {
        return Err(AdminError::precondition(format!("project {name} still has repositories; delete them first")));
    }
    if !app.meta.delete_project(&name).await? {
        return Err(not_found(&name));
    }
    service(&app)?.policy.forget();
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/projects/{project}/members", tag = "members", params(("project" = String, Path)),
    responses((status = 200, body = [MemberView]), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// A project's members (every role but LimitedGuest).
async fn list_members(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> AdminResult<Json<Vec<MemberView>>> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::SeeMembers).await?;
    let members = app.meta.members(&name).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|m| MemberView {
                user_id: m.user_id,
                username: m.user_name,
                role: role_name(m.role).into(),
                role_id: m.role.id(),
            })
            .collect(),
    ))
}

#[utoipa::path(put, path = "/projects/{project}/members/{username}", tag = "members",
    params(("project" = String, Path), ("username" = String, Path)), request_body = MemberRole,
    responses((status = 200, body = MemberView), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Gives a user a role in the project, replacing any other (ProjectAdmin).
async fn set_member(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, username)): Path<(String, String)>,
    Body(req): Body<MemberRole>,
) -> AdminResult<Json<MemberView>> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditMembers).await?;
    let role = parse_role(&req.role).ok_or_else(|| {
        AdminError::invalid(format!(
            "unknown role {:?}: projectAdmin, maintainer, developer, guest or limitedGuest",
            req.role
        ))
    })?;
    let user = app
        .meta
        .user_by_name(&username)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("user {username} not found")))?;
    if !app.meta.set_member(&name, user.id, role).await? {
        return Err(not_found(&name));
    }
    service(&app)?.policy.forget();
    Ok(Json(MemberView { user_id: user.id, username: user.name, role: role_name(role).into(), role_id: role.id() }))
}

#[utoipa::path(delete, path = "/projects/{project}/members/{username}", tag = "members",
    params(("project" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Removes a member (ProjectAdmin).
async fn remove_member(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, username)): Path<(String, String)>,
) -> AdminResult<StatusCode> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditMembers).await?;
    let user = app
        .meta
        .user_by_name(&username)
        .await?
        .ok_or_else(|| AdminError::not_found(format!("user {username} not found")))?;
    if !app.meta.remove_member(&name, user.id).await? {
        return Err(AdminError::not_found(format!("{username} is not a member of {name}")));
    }
    service(&app)?.policy.forget();
    Ok(StatusCode::NO_CONTENT)
}
