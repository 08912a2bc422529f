//! `/users`: Berth's user accounts. Administrators manage everyone; a user
//! may read their own account and change their own password (with the old
//! one). Privileged fields (`admin`, `disabled`) in a request by anyone
//! else are refused, and unknown fields (an `id`, a `role`) are invalid.

use super::caller::Caller;
use super::error::{AdminError, AdminResult};
use super::page::{page, PageQuery};
use super::{rfc3339_ms, Body, Query};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_meta::{valid_user_name, NewUser, User};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Shortest password accepted (as `berth admin bootstrap`).
pub const MIN_PASSWORD: usize = 12;
/// Longest: argon2 input stays bounded.
pub const MAX_PASSWORD: usize = 256;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(current_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(set_password))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    /// A system administrator.
    pub admin: bool,
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            username: u.name.clone(),
            admin: u.admin,
            disabled: u.disabled,
            created_at: rfc3339_ms(u.created_ms),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    /// Administrators only.
    pub admin: Option<bool>,
    /// Administrators only.
    pub disabled: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// Required when changing one's own password.
    pub old_password: Option<String>,
    pub new_password: String,
}

#[utoipa::path(get, path = "/users", tag = "users", params(PageQuery),
    responses((status = 200, body = [UserView]), (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Lists users by name (administrators).
async fn list_users(State(app): State<Arc<App>>, caller: Caller, Query(q): Query<PageQuery>) -> AdminResult<Response> {
    caller.admin()?;
    let users = app.meta.list_users(q.after.as_deref(), q.limit()).await?;
    let views: Vec<UserView> = users.iter().map(UserView::from).collect();
    Ok(page(views, q.limit(), "/users", |u| u.username.clone()))
}

#[utoipa::path(post, path = "/users", tag = "users", request_body = NewUserRequest,
    responses((status = 201, body = UserView), (status = 409, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Creates a user (administrators).
async fn create_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(req): Body<NewUserRequest>,
) -> AdminResult<Response> {
    caller.admin()?;
    if !valid_user_name(&req.username) {
        return Err(AdminError::invalid(format!(
            "invalid user name {:?}: 1–255 letters, digits, '.', '_' or '-', starting with a letter or digit",
            req.username
        )));
    }
    check_password(&req.password)?;
    let password_hash = hash(req.password).await?;
    let user = app
        .meta
        .create_user(&NewUser { name: req.username.clone(), password_hash, admin: req.admin }, crate::state::now_ms())
        .await
        .map_err(|e| match e {
            berth_meta::MetaError::Conflict(_) => AdminError::conflict(format!("user {} already exists", req.username)),
            e => e.into(),
        })?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))).into_response())
}

#[utoipa::path(get, path = "/users/current", tag = "users",
    responses((status = 200, body = UserView), (status = 401, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// The calling user.
async fn current_user(caller: Caller) -> AdminResult<Json<UserView>> {
    Ok(Json(UserView::from(caller.user()?.as_ref())))
}

/// The named user if the caller is an administrator or that user.
async fn visible_user(app: &App, caller: &Caller, name: &str) -> AdminResult<User> {
    let me = caller.user()?;
    if !me.admin && me.name != name {
        // Not "forbidden": whether another account exists is not theirs to learn.
        return Err(AdminError::not_found(format!("user {name} not found")));
    }
    app.meta.user_by_name(name).await?.ok_or_else(|| AdminError::not_found(format!("user {name} not found")))
}

#[utoipa::path(get, path = "/users/{name}", tag = "users", params(("name" = String, Path)),
    responses((status = 200, body = UserView), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// One user (administrators, or the user themself).
async fn get_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> AdminResult<Json<UserView>> {
    Ok(Json(UserView::from(&visible_user(&app, &caller, &name).await?)))
}

#[utoipa::path(patch, path = "/users/{name}", tag = "users", params(("name" = String, Path)), request_body = UserUpdate,
    responses((status = 200, body = UserView), (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Grants or revokes administration, disables or enables (administrators).
async fn update_user(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<UserUpdate>,
) -> AdminResult<Json<UserView>> {
    let user = visible_user(&app, &caller, &name).await?;
    if !caller.is_admin() {
        return Err(AdminError::forbidden("only system administrators may change admin or disabled"));
    }
    let demotes = (req.admin == Some(false) || req.disabled == Some(true)) && user.admin && !user.disabled;
    if demotes && app.meta.count_admins().await? <= 1 {
        return Err(AdminError::precondition(format!("{name} is the last enabled administrator")));
    }
    if let Some(admin) = req.admin {
        app.meta.set_admin(&name, admin).await?;
    }
    if let Some(disabled) = req.disabled {
        app.meta.set_disabled(&name, disabled).await?;
    }
    let user =
        app.meta.user_by_name(&name).await?.ok_or_else(|| AdminError::not_found(format!("user {name} not found")))?;
    Ok(Json(UserView::from(&user)))
}

#[utoipa::path(delete, path = "/users/{name}", tag = "users", params(("name" = String, Path)),
    responses((status = 204), (status = 412, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Deletes a user (administrators; never the last administrator).
async fn delete_user(State(app): State<Arc<App>>, caller: Caller, Path(name): Path<String>) -> AdminResult<StatusCode> {
    caller.admin()?;
    let user = visible_user(&app, &caller, &name).await?;
    if user.admin && !user.disabled && app.meta.count_admins().await? <= 1 {
        return Err(AdminError::precondition(format!("{name} is the last enabled administrator")));
    }
    app.meta.delete_user(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/users/{name}/password", tag = "users", params(("name" = String, Path)),
    request_body = PasswordChange,
    responses((status = 204), (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Changes a password: one's own with the old one, anyone's as an
/// administrator. Refresh tokens issued before stop working.
async fn set_password(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<PasswordChange>,
) -> AdminResult<StatusCode> {
    let user = visible_user(&app, &caller, &name).await?;
    let me = caller.user()?;
    if me.name == name {
        let old = req.old_password.ok_or_else(|| AdminError::invalid("old_password is required"))?;
        let stored = user.password_hash.clone();
        let ok = tokio::task::spawn_blocking(move || berth_auth::verify_password(&old, &stored))
            .await
            .map_err(|_| AdminError::internal())?;
        if !ok {
            return Err(AdminError::forbidden("the old password is wrong"));
        }
    } else if !me.admin {
        return Err(AdminError::forbidden("only system administrators may change another user's password"));
    }
    check_password(&req.new_password)?;
    let hash = hash(req.new_password).await?;
    app.meta.set_password(&name, &hash).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn check_password(p: &str) -> AdminResult<()> {
    let n = p.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(AdminError::invalid(format!("a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")));
    }
    Ok(())
}

/// argon2id takes tens of milliseconds: off the async workers.
async fn hash(password: String) -> AdminResult<String> {
    tokio::task::spawn_blocking(move || berth_auth::hash_password(&password)).await.map_err(|_| AdminError::internal())
}
