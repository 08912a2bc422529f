//! Robot accounts (Harbor's v2 robots): `/projects/{project}/robots` for a
//! project's robots (Maintainers and ProjectAdmins see them, ProjectAdmins
//! change them) and `/robots` for every robot, system robots included
//! (system administrators only).
//!
//! Bodies take Harbor's shape: `permissions: [{"namespace": "<project>",
//! "access": [{"resource": "repository", "action": "pull"}]}]`, `duration`
//! in days (`-1`: never expires). Every grant passes `Policy::may_grant`:
//! nobody gives a robot more than they hold. The secret is generated here,
//! answered once (on creation and on rotation) and stored only as an
//! argon2id hash; no listing shows either. A robot of another project is
//! invisible (404) and never touched. Logins read the robot row every time,
//! so a change applies to the next login.

use super::access::{project_for, ProjectAction};
use super::caller::{service, Caller};
use super::error::{AdminError, AdminResult};
use super::page::{page, PageQuery};
use super::{rfc3339_ms, Body, Query};
use crate::auth::GrantError;
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_meta::{
    robot_name, valid_user_name, MetaError, NewRobot, Robot, RobotAction, RobotPermission, RobotUpdate, User,
};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_project_robots, create_project_robot))
        .routes(routes!(get_project_robot, patch_project_robot, delete_project_robot))
        .routes(routes!(rotate_project_robot))
        .routes(routes!(list_robots, create_system_robot))
        .routes(routes!(get_robot, patch_robot, delete_robot))
        .routes(routes!(rotate_robot))
}

const REPOSITORY: &str = "repository";
const MS_PER_DAY: i64 = 86_400_000;
/// Longest lifetime in days (a century): keeps the expiry arithmetic bounded.
const MAX_DURATION_DAYS: i64 = 36_500;

/// One action on a resource; only `repository` exists in Berth.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct AccessBody {
    /// Always `repository`.
    pub resource: String,
    /// `pull`, `push` or `delete`.
    pub action: String,
}

/// What a robot may do in one namespace: a project, or `*` (every project,
/// system robots only).
#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct PermissionBody {
    /// Harbor's `project` (the only kind; may be left out).
    #[serde(default = "project_kind")]
    pub kind: String,
    pub namespace: String,
    pub access: Vec<AccessBody>,
}

fn project_kind() -> String {
    "project".into()
}

/// A new robot, e.g. `{"name":"ci","duration_days":-1,"permissions":
/// [{"namespace":"team-a","access":[{"resource":"repository","action":"push"}]}]}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRobotRequest {
    /// The short name; the account is `robot$<project>+<name>` (project
    /// robots) or `robot$<name>` (system robots).
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Days from creation until it expires; `-1`: never (Harbor's `duration`).
    pub duration_days: i64,
    pub permissions: Vec<PermissionBody>,
}

/// Changes to a robot; what is left out stays.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RobotPatch {
    pub description: Option<String>,
    pub disabled: Option<bool>,
    /// Days from the robot's creation (as Harbor counts); `-1`: never.
    pub duration_days: Option<i64>,
    pub permissions: Option<Vec<PermissionBody>>,
}

/// A robot as listed: never its secret or hash.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RobotView {
    pub id: i64,
    /// The full account name, `robot$…`: what `docker login` takes.
    pub name: String,
    /// Its project; `null` for a system robot.
    pub project: Option<String>,
    pub description: String,
    pub disabled: bool,
    /// RFC 3339; `null`: never.
    pub expires_at: Option<String>,
    pub expired: bool,
    pub creator: String,
    /// RFC 3339.
    pub created_at: String,
    pub permissions: Vec<PermissionBody>,
}

/// A robot with its secret: answered only by creation and rotation.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RobotWithSecret {
    #[serde(flatten)]
    pub robot: RobotView,
    /// Shown this once; only its hash is kept.
    pub secret: String,
}

fn view(robot: &Robot, now_ms: i64) -> RobotView {
    let mut by_namespace: BTreeMap<&str, Vec<AccessBody>> = BTreeMap::new();
    for p in &robot.permissions {
        by_namespace
            .entry(&p.namespace)
            .or_default()
            .push(AccessBody { resource: REPOSITORY.into(), action: p.action.as_str().into() });
    }
    RobotView {
        id: robot.id,
        name: robot.name.clone(),
        project: robot.project.clone(),
        description: robot.description.clone(),
        disabled: robot.disabled,
        expires_at: robot.expires_ms.map(rfc3339_ms),
        expired: robot.expired(now_ms),
        creator: robot.creator.clone(),
        created_at: rfc3339_ms(robot.created_ms),
        permissions: by_namespace
            .into_iter()
            .map(|(namespace, access)| PermissionBody { kind: project_kind(), namespace: namespace.into(), access })
            .collect(),
    }
}

/// Harbor's permission list as stored (namespace, action) pairs.
fn permissions(body: &[PermissionBody]) -> AdminResult<Vec<RobotPermission>> {
    let mut out = Vec::new();
    for p in body {
        if p.kind != "project" {
            return Err(AdminError::invalid(format!("unknown permission kind {:?}: only project", p.kind)));
        }
        for a in &p.access {
            if a.resource != REPOSITORY {
                return Err(AdminError::invalid(format!(
                    "unknown resource {:?}: robots hold only repository permissions",
                    a.resource
                )));
            }
            let action = RobotAction::parse(&a.action)
                .ok_or_else(|| AdminError::invalid(format!("unknown action {:?}: pull, push or delete", a.action)))?;
            out.push(RobotPermission::new(&p.namespace, action));
        }
    }
    if out.is_empty() {
        return Err(AdminError::invalid("a robot needs at least one permission"));
    }
    Ok(out)
}

/// Harbor's `duration` from `created_ms`: `-1` never, else 1 to a century of days.
fn expiry(created_ms: i64, days: i64) -> AdminResult<Option<i64>> {
    match days {
        -1 => Ok(None),
        1..=MAX_DURATION_DAYS => Ok(Some(created_ms + days * MS_PER_DAY)),
        _ => Err(AdminError::invalid(format!("duration_days must be -1 (never) or 1–{MAX_DURATION_DAYS}, not {days}"))),
    }
}

/// Refuses a grant beyond what `creator` holds (403, naming what is missing).
async fn check_grant(app: &App, creator: &User, project: Option<&str>, perms: &[RobotPermission]) -> AdminResult<()> {
    match service(app)?.policy.may_grant(creator, project, perms).await {
        Ok(()) => Ok(()),
        Err(GrantError::Exceeds(what)) => {
            Err(AdminError::forbidden(format!("a robot can never get more than its creator holds: {what}")))
        }
        Err(GrantError::Store(e)) => Err(e.into()),
    }
}

/// A store refusal in the caller's terms.
fn store_error(e: MetaError) -> AdminError {
    match e {
        MetaError::Conflict(what) => AdminError::conflict(format!("{what} already exists")),
        MetaError::NotFound(what) => AdminError::not_found(format!("{what} does not exist")),
        MetaError::Invalid(why) => AdminError::invalid(why),
        e => e.into(),
    }
}

/// A fresh secret and its argon2id hash (made off the async threads: ~20 ms of CPU).
async fn new_secret() -> AdminResult<(String, String)> {
    tokio::task::spawn_blocking(|| {
        let secret = berth_auth::generate_secret();
        let hash = berth_auth::hash_password(&secret);
        (secret, hash)
    })
    .await
    .map_err(|_| AdminError::internal())
}

fn robot_not_found(id: i64) -> AdminError {
    AdminError::not_found(format!("robot {id} not found"))
}

/// Robot `id`, if it belongs to `project` (`None`: any robot); 404 otherwise.
async fn find(app: &App, project: Option<&str>, id: i64) -> AdminResult<Robot> {
    match app.meta.robot_by_id(id).await? {
        Some(r) if project.is_none() || r.project.as_deref() == project => Ok(r),
        _ => Err(robot_not_found(id)),
    }
}

async fn create(app: &App, creator: &User, project: Option<&str>, req: NewRobotRequest) -> AdminResult<Response> {
    if !valid_user_name(&req.name) {
        return Err(AdminError::invalid(format!(
            "invalid robot name {:?}: letters, digits, '.', '_' or '-', starting with a letter or digit",
            req.name
        )));
    }
    let perms = permissions(&req.permissions)?;
    let now = crate::state::now_ms();
    let expires_ms = expiry(now, req.duration_days)?;
    check_grant(app, creator, project, &perms).await?;
    let (secret, secret_hash) = new_secret().await?;
    let robot = NewRobot {
        name: robot_name(project, &req.name),
        project: project.map(str::to_owned),
        description: req.description,
        secret_hash,
        expires_ms,
        creator: creator.name.clone(),
        permissions: perms,
    };
    let created = app.meta.create_robot(&robot, now).await.map_err(store_error)?;
    let body = RobotWithSecret { robot: view(&created, now), secret };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn patch(app: &App, creator: &User, robot: Robot, req: RobotPatch) -> AdminResult<Json<RobotView>> {
    let mut update = RobotUpdate {
        description: req.description.unwrap_or(robot.description.clone()),
        disabled: req.disabled.unwrap_or(robot.disabled),
        expires_ms: robot.expires_ms,
        permissions: robot.permissions.clone(),
    };
    if let Some(days) = req.duration_days {
        update.expires_ms = expiry(robot.created_ms, days)?;
    }
    if let Some(body) = &req.permissions {
        update.permissions = permissions(body)?;
        check_grant(app, creator, robot.project.as_deref(), &update.permissions).await?;
    }
    if !app.meta.update_robot(robot.id, &update).await.map_err(store_error)? {
        return Err(robot_not_found(robot.id));
    }
    let updated = find(app, robot.project.as_deref(), robot.id).await?;
    Ok(Json(view(&updated, crate::state::now_ms())))
}

async fn rotate(app: &App, robot: Robot) -> AdminResult<Json<RobotWithSecret>> {
    let (secret, hash) = new_secret().await?;
    if app.meta.rotate_robot_secret(robot.id, &hash).await?.is_none() {
        return Err(robot_not_found(robot.id));
    }
    Ok(Json(RobotWithSecret { robot: view(&robot, crate::state::now_ms()), secret }))
}

async fn delete(app: &App, id: i64) -> AdminResult<StatusCode> {
    if !app.meta.delete_robot(id).await? {
        return Err(robot_not_found(id));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn listing(robots: Vec<Robot>, q: &PageQuery, path: &str) -> Response {
    let now = crate::state::now_ms();
    let views: Vec<RobotView> = robots.iter().map(|r| view(r, now)).collect();
    page(views, q.limit(), path, |r| r.name.clone())
}

#[utoipa::path(get, path = "/projects/{project}/robots", tag = "robots",
    params(("project" = String, Path), PageQuery),
    responses((status = 200, body = [RobotView]), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// The project's robots by name (Maintainer, ProjectAdmin).
async fn list_project_robots(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> AdminResult<Response> {
    project_for(&app, &caller, &name, ProjectAction::SeeRobots).await?;
    let robots = app.meta.list_robots(Some(&name), q.after.as_deref(), q.limit()).await?;
    Ok(listing(robots, &q, &format!("/projects/{name}/robots")))
}

#[utoipa::path(post, path = "/projects/{project}/robots", tag = "robots",
    params(("project" = String, Path)), request_body = NewRobotRequest,
    responses((status = 201, body = RobotWithSecret), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Creates a project robot and answers its secret, once (ProjectAdmin).
async fn create_project_robot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<NewRobotRequest>,
) -> AdminResult<Response> {
    let user = caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditRobots).await?;
    create(&app, user, Some(&name), req).await
}

#[utoipa::path(get, path = "/projects/{project}/robots/{id}", tag = "robots",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = RobotView), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// One robot of the project (Maintainer, ProjectAdmin).
async fn get_project_robot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
) -> AdminResult<Json<RobotView>> {
    project_for(&app, &caller, &name, ProjectAction::SeeRobots).await?;
    Ok(Json(view(&find(&app, Some(&name), id).await?, crate::state::now_ms())))
}

#[utoipa::path(patch, path = "/projects/{project}/robots/{id}", tag = "robots",
    params(("project" = String, Path), ("id" = i64, Path)), request_body = RobotPatch,
    responses((status = 200, body = RobotView), (status = 403, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Changes a robot, e.g. `{"disabled":true}` (ProjectAdmin).
async fn patch_project_robot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
    Body(req): Body<RobotPatch>,
) -> AdminResult<Json<RobotView>> {
    let user = caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditRobots).await?;
    let robot = find(&app, Some(&name), id).await?;
    patch(&app, user, robot, req).await
}

#[utoipa::path(delete, path = "/projects/{project}/robots/{id}", tag = "robots",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Deletes a robot (ProjectAdmin).
async fn delete_project_robot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
) -> AdminResult<StatusCode> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditRobots).await?;
    find(&app, Some(&name), id).await?;
    delete(&app, id).await
}

#[utoipa::path(post, path = "/projects/{project}/robots/{id}/secret", tag = "robots",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = RobotWithSecret), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Replaces the secret and answers the new one, once; the old one stops
/// working at once (ProjectAdmin).
async fn rotate_project_robot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
) -> AdminResult<Json<RobotWithSecret>> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditRobots).await?;
    rotate(&app, find(&app, Some(&name), id).await?).await
}

#[utoipa::path(get, path = "/robots", tag = "robots", params(PageQuery),
    responses((status = 200, body = [RobotView]), (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Every robot, system and project ones, by name (administrators).
async fn list_robots(State(app): State<Arc<App>>, caller: Caller, Query(q): Query<PageQuery>) -> AdminResult<Response> {
    caller.admin()?;
    let robots = app.meta.list_robots(None, q.after.as_deref(), q.limit()).await?;
    Ok(listing(robots, &q, "/robots"))
}

#[utoipa::path(post, path = "/robots", tag = "robots", request_body = NewRobotRequest,
    responses((status = 201, body = RobotWithSecret), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Creates a system robot (namespaces: projects or `*`) and answers its
/// secret, once (administrators).
async fn create_system_robot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Body(req): Body<NewRobotRequest>,
) -> AdminResult<Response> {
    let user = caller.admin()?;
    create(&app, user, None, req).await
}

#[utoipa::path(get, path = "/robots/{id}", tag = "robots", params(("id" = i64, Path)),
    responses((status = 200, body = RobotView), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Any robot (administrators).
async fn get_robot(State(app): State<Arc<App>>, caller: Caller, Path(id): Path<i64>) -> AdminResult<Json<RobotView>> {
    caller.admin()?;
    Ok(Json(view(&find(&app, None, id).await?, crate::state::now_ms())))
}

#[utoipa::path(patch, path = "/robots/{id}", tag = "robots", params(("id" = i64, Path)), request_body = RobotPatch,
    responses((status = 200, body = RobotView), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Changes any robot (administrators).
async fn patch_robot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<i64>,
    Body(req): Body<RobotPatch>,
) -> AdminResult<Json<RobotView>> {
    let user = caller.admin()?;
    let robot = find(&app, None, id).await?;
    patch(&app, user, robot, req).await
}

#[utoipa::path(delete, path = "/robots/{id}", tag = "robots", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Deletes any robot (administrators).
async fn delete_robot(State(app): State<Arc<App>>, caller: Caller, Path(id): Path<i64>) -> AdminResult<StatusCode> {
    caller.admin()?;
    delete(&app, id).await
}

#[utoipa::path(post, path = "/robots/{id}/secret", tag = "robots", params(("id" = i64, Path)),
    responses((status = 200, body = RobotWithSecret), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Replaces any robot's secret and answers the new one, once (administrators).
async fn rotate_robot(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<i64>,
) -> AdminResult<Json<RobotWithSecret>> {
    caller.admin()?;
    rotate(&app, find(&app, None, id).await?).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(namespace: &str, actions: &[&str]) -> PermissionBody {
        PermissionBody {
            kind: project_kind(),
            namespace: namespace.into(),
            access: actions.iter().map(|a| AccessBody { resource: REPOSITORY.into(), action: (*a).into() }).collect(),
        }
    }

    #[test]
    fn harbors_permission_shape_becomes_namespace_action_pairs() {
        let got = permissions(&[perm("team-a", &["pull", "push"])]).unwrap();
        assert_eq!(
            got,
            vec![RobotPermission::new("team-a", RobotAction::Pull), RobotPermission::new("team-a", RobotAction::Push)]
        );
        for bad in [perm("team-a", &["*"]), perm("team-a", &["read"]), perm("team-a", &[])] {
            assert_eq!(permissions(&[bad]).unwrap_err().code, "INVALID_INPUT");
        }
        let mut artifact = perm("team-a", &["pull"]);
        artifact.access[0].resource = "artifact".into();
        assert_eq!(permissions(&[artifact]).unwrap_err().code, "INVALID_INPUT");
    }

    /// Harbor's `duration`: -1 never expires, otherwise days.
    #[test]
    fn durations_are_days_or_never() {
        assert_eq!(expiry(1_000, -1).unwrap(), None);
        assert_eq!(expiry(1_000, 30).unwrap(), Some(1_000 + 30 * 86_400_000));
        for bad in [0, -2, MAX_DURATION_DAYS + 1, i64::MAX] {
            assert!(expiry(0, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn views_group_permissions_by_namespace_and_hold_no_secret() {
        let robot = Robot {
            id: 3,
            name: "robot$mirror".into(),
            project: None,
            description: String::new(),
            secret_hash: "$argon2id$v=19$hash".into(),
            expires_ms: Some(10),
            disabled: false,
            created_ms: 0,
            creator: "admin".into(),
            generation: 0,
            permissions: vec![
                RobotPermission::new("*", RobotAction::Pull),
                RobotPermission::new("team-b", RobotAction::Push),
            ],
        };
        let v = serde_json::to_value(view(&robot, 10)).unwrap();
        assert_eq!(v["permissions"][0]["namespace"], "*");
        assert_eq!(v["permissions"][1]["access"][0]["action"], "push");
        assert_eq!(v["expired"], true);
        assert!(!v.to_string().contains("argon2") && !v.to_string().contains("secret"), "{v}");
    }
}
