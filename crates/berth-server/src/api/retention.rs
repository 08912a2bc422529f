//! `/projects/{project}/retention`: a project's tag retention policy in
//! Harbor's JSON (`berth_jobs::retention::policy` documents its shape),
//! runs made now (dry or not) and the runs recorded with what each kept or
//! removed and why. Every role sees them; Developers, Maintainers and
//! ProjectAdmins change the policy and start runs (Harbor's "Create/delete
//! tag retention rules").
//!
//! A run started here takes the same `retention:<project>` lease as the
//! scheduler (a second run at once answers 409) and tells the manifest
//! caches what it removed exactly as the scheduler does
//! (`crate::retention::invalidation`). A run is addressed within its
//! project: an id of another project answers 404.

use super::access::{project_for, ProjectAction};
use super::caller::Caller;
use super::error::{AdminError, AdminResult};
use super::page::{page, PageQuery};
use super::{rfc3339_ms, Body, Query};
use crate::state::App;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_jobs::retention::policy::{five_field_cron, Policy};
use berth_jobs::retention::{run, RetentionError, RetentionOptions, RetentionReport};
use berth_jobs::{Schedule, SystemClock};
use berth_meta::{RetentionItem, RetentionRun};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(get_policy, set_policy, delete_policy))
        .routes(routes!(list_runs, start_run))
        .routes(routes!(get_run))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// True: plan and record what would be removed, remove nothing.
    /// Required, so a forgotten field never deletes.
    pub dry_run: bool,
}

/// What a run started now did.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunSummary {
    pub id: i64,
    pub dry_run: bool,
    /// Artifacts kept.
    pub retained: u64,
    /// Artifacts removed (dry: that would be removed).
    pub removed: u64,
}

/// A recorded run.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunView {
    pub id: i64,
    pub dry_run: bool,
    pub started_at: String,
    /// Null while running (or if its node died).
    pub finished_at: Option<String>,
    /// `running`, `succeeded` or `failed: <why>`.
    pub status: String,
}

/// What a run decided for one artifact (a manifest and its tags).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ItemView {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub retained: bool,
    /// The rule that kept it, or why nothing did.
    pub reason: String,
}

/// A recorded run with every decision, in the order it made them.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RunDetail {
    #[serde(flatten)]
    pub run: RunView,
    pub retained: u64,
    pub removed: u64,
    pub items: Vec<ItemView>,
}

fn run_view(r: &RetentionRun) -> RunView {
    RunView {
        id: r.id,
        dry_run: r.dry_run,
        started_at: rfc3339_ms(r.started_ms),
        finished_at: r.finished_ms.map(rfc3339_ms),
        status: r.status.clone(),
    }
}

fn item_view(i: RetentionItem) -> ItemView {
    ItemView {
        repository: i.repository,
        digest: i.digest.to_string(),
        tags: i.tags,
        retained: i.retained,
        reason: i.reason,
    }
}

fn no_policy(project: &str) -> AdminError {
    AdminError::not_found(format!("project {project} has no retention policy"))
}

/// Parses and compiles a policy, and its cron if it has one, so a bad one is
/// the caller's 400 and never reaches the scheduler. Returns the cron to store.
fn validate(body: &[u8]) -> AdminResult<(Policy, Option<String>)> {
    let text = std::str::from_utf8(body).map_err(|_| AdminError::invalid("the policy is not UTF-8"))?;
    let policy = Policy::parse(text).map_err(|e| AdminError::invalid(format!("retention policy: {e}")))?;
    policy.compile().map_err(|e| AdminError::invalid(format!("retention policy: {e}")))?;
    let cron = policy.cron().map(str::to_owned);
    if let Some(c) = &cron {
        Schedule::parse(&five_field_cron(c))
            .map_err(|e| AdminError::invalid(format!("trigger.settings.cron {c:?}: {e}")))?;
    }
    Ok((policy, cron))
}

#[utoipa::path(get, path = "/projects/{project}/retention", tag = "retention",
    params(("project" = String, Path)),
    responses((status = 200, description = "Harbor's retention policy JSON, as set", body = Object),
        (status = 404, body = super::error::ErrorBody)))]
/// The project's retention policy (every role); 404 when it has none.
async fn get_policy(State(app): State<Arc<App>>, caller: Caller, Path(name): Path<String>) -> AdminResult<Response> {
    project_for(&app, &caller, &name, ProjectAction::SeeProject).await?;
    let stored = app.meta.retention_policy(&name).await?.ok_or_else(|| no_policy(&name))?;
    // Stored only after it parsed; answered as JSON either way.
    let resp = ([(http::header::CONTENT_TYPE, "application/json")], stored.policy).into_response();
    Ok(resp)
}

#[utoipa::path(put, path = "/projects/{project}/retention", tag = "retention",
    params(("project" = String, Path)),
    request_body(content = Object, description = "Harbor's retention policy JSON: algorithm, rules, trigger"),
    responses((status = 200, description = "The policy as stored", body = Object),
        (status = 400, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Sets (replaces) the policy (Developer, Maintainer, ProjectAdmin). A
/// `trigger.settings.cron` makes it run on that schedule, once per cluster.
async fn set_policy(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> AdminResult<Response> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditRetention).await?;
    let (_, cron) = validate(&body)?;
    let text = String::from_utf8_lossy(&body).into_owned();
    app.meta.set_retention_policy(&name, &text, cron.as_deref(), crate::state::now_ms()).await?;
    Ok(([(http::header::CONTENT_TYPE, "application/json")], text).into_response())
}

#[utoipa::path(delete, path = "/projects/{project}/retention", tag = "retention",
    params(("project" = String, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Deletes the policy (Developer, Maintainer, ProjectAdmin); recorded runs stay.
async fn delete_policy(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> AdminResult<StatusCode> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditRetention).await?;
    if !app.meta.delete_retention_policy(&name).await? {
        return Err(no_policy(&name));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn run_error(project: &str, e: RetentionError) -> AdminError {
    match e {
        RetentionError::Busy(_) => AdminError::conflict(format!("a retention run of project {project} is in progress")),
        RetentionError::NoPolicy(_) => no_policy(project),
        RetentionError::Policy(e) => AdminError::invalid(format!("the stored retention policy: {e}")),
        RetentionError::Meta(e) => e.into(),
        e @ (RetentionError::LeaseLost | RetentionError::Invalidate(_)) => {
            tracing::error!(project, error = %e, "retention run failed");
            AdminError::internal()
        }
    }
}

fn summary(r: &RetentionReport, dry_run: bool) -> RunSummary {
    RunSummary { id: r.run_id, dry_run, retained: r.retained, removed: r.removed }
}

#[utoipa::path(post, path = "/projects/{project}/retention/runs", tag = "retention",
    params(("project" = String, Path)), request_body = RunRequest,
    responses((status = 201, body = RunSummary), (status = 404, body = super::error::ErrorBody),
        (status = 409, description = "another run holds the project's lease, or read-only mode", body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Runs the policy now (Developer, Maintainer, ProjectAdmin), e.g.
/// `{"dry_run":true}` to see what it would remove; the run is recorded.
async fn start_run(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<RunRequest>,
) -> AdminResult<Response> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditRetention).await?;
    if !req.dry_run && app.read_only.is_on() {
        return Err(AdminError::conflict("the registry is in read-only mode: only a dry run is possible"));
    }
    let opts = RetentionOptions {
        dry_run: req.dry_run,
        invalidate: Some(crate::retention::invalidation(app.clone())),
        ..RetentionOptions::default()
    };
    let report = run(&*app.meta, &SystemClock, &name, &opts).await.map_err(|e| run_error(&name, e))?;
    crate::events::retention_finished(&app, &name, &report, req.dry_run, "MANUAL");
    Ok((StatusCode::CREATED, Json(summary(&report, req.dry_run))).into_response())
}

#[utoipa::path(get, path = "/projects/{project}/retention/runs", tag = "retention",
    params(("project" = String, Path), PageQuery),
    responses((status = 200, body = [RunView]), (status = 404, body = super::error::ErrorBody)))]
/// The project's runs, newest first (every role); `after` is a run id.
async fn list_runs(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> AdminResult<Response> {
    project_for(&app, &caller, &name, ProjectAction::SeeProject).await?;
    let before = match &q.after {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| AdminError::invalid("after is a run id"))?),
    };
    let runs = app.meta.retention_runs_before(&name, before, q.limit()).await?;
    let views: Vec<RunView> = runs.iter().map(run_view).collect();
    Ok(page(views, q.limit(), &format!("/projects/{name}/retention/runs"), |r| r.id.to_string()))
}

#[utoipa::path(get, path = "/projects/{project}/retention/runs/{id}", tag = "retention",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = RunDetail), (status = 404, body = super::error::ErrorBody)))]
/// One run with what it kept or removed and why (every role).
async fn get_run(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
) -> AdminResult<Json<RunDetail>> {
    project_for(&app, &caller, &name, ProjectAction::SeeProject).await?;
    let run = app.meta.retention_run(id).await?.filter(|r| r.project == name);
    let run = run.ok_or_else(|| AdminError::not_found(format!("retention run {id} not found in project {name}")))?;
    let items: Vec<ItemView> = app.meta.retention_items(id).await?.into_iter().map(item_view).collect();
    let retained = items.iter().filter(|i| i.retained).count() as u64;
    Ok(Json(RunDetail { run: run_view(&run), retained, removed: items.len() as u64 - retained, items }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"{"algorithm":"or","rules":[{"template":"latestPushedK","params":{"latestPushedK":2},
        "tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"**"}],
        "scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}],
        "trigger":{"kind":"Schedule","settings":{"cron":"0 0 0 * * *"}}}"#;

    #[test]
    fn a_harbor_policy_with_its_six_field_cron_is_accepted() {
        let (policy, cron) = validate(POLICY.as_bytes()).unwrap();
        assert_eq!(policy.rules.len(), 1);
        assert_eq!(cron.as_deref(), Some("0 0 0 * * *"));
    }

    #[test]
    fn bad_policies_are_bad_input() {
        let bad = [
            "not json".to_owned(),
            POLICY.replace("latestPushedK\",\"params", "nosuchTemplate\",\"params"),
            POLICY.replace("0 0 0 * * *", "every day"),
            POLICY.replace(r#""algorithm":"or""#, r#""algorithm":"and""#),
        ];
        for body in bad {
            let err = validate(body.as_bytes()).unwrap_err();
            assert_eq!((err.status, err.code), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{body}");
        }
    }
}
