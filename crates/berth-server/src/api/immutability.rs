//! `/projects/{project}/immutable-rules`: Harbor's tag immutability rules
//! (matched by `berth_meta::selectors`, enforced by `crate::immutability`).
//! Every role sees them; Maintainers and ProjectAdmins change them.
//!
//! Bodies take Harbor's shape, reduced to what Berth stores: one tag
//! selector and one repository selector per rule, `kind` always
//! `doublestar`. A rule is addressed within its project: an id belonging to
//! another project answers 404 and is never touched. A change takes effect
//! on this node at once (its rules cache is told); on others within a few
//! seconds.

use super::access::{project_for, ProjectAction};
use super::caller::Caller;
use super::error::{AdminError, AdminResult};
use super::Body;
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use berth_meta::selectors::Decoration;
use berth_meta::{ImmutableRule, NewImmutableRule, RulePattern};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(list_rules, create_rule)).routes(routes!(
        get_rule,
        replace_rule,
        patch_rule,
        delete_rule
    ))
}

const DOUBLESTAR: &str = "doublestar";

/// One doublestar pattern: `*` any run but `/`, `**` any run, `?` one
/// character, `{a,b}` alternatives, `[...]` a class.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct SelectorBody {
    /// Always `doublestar` (the default).
    #[serde(default = "doublestar")]
    pub kind: String,
    /// Tags: `matches` or `excludes`; repositories: `repoMatches` or `repoExcludes`.
    pub decoration: String,
    pub pattern: String,
}

fn doublestar() -> String {
    DOUBLESTAR.into()
}

#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct ScopeSelectors {
    /// Exactly one selector, matched against the repository name without
    /// its project (`team-a/api/server` → `api/server`).
    pub repository: Vec<SelectorBody>,
}

/// A rule as created or replaced, e.g.
/// `{"disabled":false,"tag_selectors":[{"decoration":"matches","pattern":"v*"}],
/// "scope_selectors":{"repository":[{"decoration":"repoMatches","pattern":"**"}]}}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    #[serde(default)]
    pub disabled: bool,
    /// Exactly one selector.
    pub tag_selectors: Vec<SelectorBody>,
    pub scope_selectors: ScopeSelectors,
}

/// Changes to a rule; what is left out stays.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    pub disabled: Option<bool>,
    pub tag_selectors: Option<Vec<SelectorBody>>,
    pub scope_selectors: Option<ScopeSelectors>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RuleView {
    pub id: i64,
    pub disabled: bool,
    pub tag_selectors: Vec<SelectorBody>,
    pub scope_selectors: ScopeSelectors,
}

fn view(rule: &ImmutableRule) -> RuleView {
    let r = &rule.rule;
    let selector = |decoration: &str, p: &RulePattern| SelectorBody {
        kind: DOUBLESTAR.into(),
        decoration: decoration.into(),
        pattern: p.pattern.clone(),
    };
    let repo_decoration = match r.repository.decoration {
        Decoration::Matches => "repoMatches",
        Decoration::Excludes => "repoExcludes",
    };
    RuleView {
        id: rule.id,
        disabled: r.disabled,
        tag_selectors: vec![selector(r.tag.decoration.as_str(), &r.tag)],
        scope_selectors: ScopeSelectors { repository: vec![selector(repo_decoration, &r.repository)] },
    }
}

/// The one selector of a list, its decoration one of `allowed` (matches, excludes).
fn one_selector(what: &str, list: &[SelectorBody], allowed: [&str; 2]) -> AdminResult<RulePattern> {
    let [s] = list else {
        return Err(AdminError::invalid(format!("a rule takes exactly one {what} selector, not {}", list.len())));
    };
    if s.kind != DOUBLESTAR {
        return Err(AdminError::invalid(format!("unknown selector kind {:?}: only doublestar", s.kind)));
    }
    let decoration = match s.decoration.as_str() {
        d if d == allowed[0] => Decoration::Matches,
        d if d == allowed[1] => Decoration::Excludes,
        d => {
            return Err(AdminError::invalid(format!(
                "unknown {what} decoration {d:?}: {} or {}",
                allowed[0], allowed[1]
            )))
        }
    };
    Ok(RulePattern::new(decoration, &s.pattern))
}

fn tag_pattern(list: &[SelectorBody]) -> AdminResult<RulePattern> {
    one_selector("tag", list, ["matches", "excludes"])
}

fn repo_pattern(scope: &ScopeSelectors) -> AdminResult<RulePattern> {
    one_selector("repository", &scope.repository, ["repoMatches", "repoExcludes"])
}

/// Checks the patterns compile, so a bad one is the caller's 400.
fn validated(rule: NewImmutableRule) -> AdminResult<NewImmutableRule> {
    rule.validate().map_err(|e| AdminError::invalid(e.to_string()))?;
    Ok(rule)
}

fn rule_not_found(project: &str, id: i64) -> AdminError {
    AdminError::not_found(format!("immutability rule {id} not found in project {project}"))
}

/// Rule `id` of `project`, or 404 (also when it belongs to another project).
async fn find(app: &App, project: &str, id: i64) -> AdminResult<ImmutableRule> {
    let rules = app.meta.immutable_rules(project).await?;
    rules.into_iter().find(|r| r.id == id).ok_or_else(|| rule_not_found(project, id))
}

#[utoipa::path(get, path = "/projects/{project}/immutable-rules", tag = "immutability",
    params(("project" = String, Path)),
    responses((status = 200, body = [RuleView]), (status = 404, body = super::error::ErrorBody)))]
/// The project's rules, by id (every role).
async fn list_rules(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> AdminResult<Json<Vec<RuleView>>> {
    project_for(&app, &caller, &name, ProjectAction::SeeProject).await?;
    Ok(Json(app.meta.immutable_rules(&name).await?.iter().map(view).collect()))
}

#[utoipa::path(post, path = "/projects/{project}/immutable-rules", tag = "immutability",
    params(("project" = String, Path)), request_body = RuleBody,
    responses((status = 201, body = RuleView), (status = 400, body = super::error::ErrorBody),
        (status = 403, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Adds a rule (Maintainer, ProjectAdmin).
async fn create_rule(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    Body(req): Body<RuleBody>,
) -> AdminResult<Response> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditImmutability).await?;
    let rule = validated(NewImmutableRule {
        repository: repo_pattern(&req.scope_selectors)?,
        tag: tag_pattern(&req.tag_selectors)?,
        disabled: req.disabled,
    })?;
    let created = app.meta.create_immutable_rule(&name, &rule).await?.ok_or_else(|| super::access::not_found(&name))?;
    app.immutable_rules.forget(&name);
    Ok((StatusCode::CREATED, Json(view(&created))).into_response())
}

#[utoipa::path(get, path = "/projects/{project}/immutable-rules/{id}", tag = "immutability",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = RuleView), (status = 404, body = super::error::ErrorBody)))]
/// One rule (every role).
async fn get_rule(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
) -> AdminResult<Json<RuleView>> {
    project_for(&app, &caller, &name, ProjectAction::SeeProject).await?;
    Ok(Json(view(&find(&app, &name, id).await?)))
}

/// Stores `rule` as rule `id` of `project` and tells the cache.
async fn store(app: &App, project: &str, id: i64, rule: NewImmutableRule) -> AdminResult<RuleView> {
    let rule = validated(rule)?;
    if !app.meta.update_immutable_rule(project, id, &rule).await? {
        return Err(rule_not_found(project, id));
    }
    app.immutable_rules.forget(project);
    Ok(view(&ImmutableRule { id, project: project.to_owned(), rule }))
}

#[utoipa::path(put, path = "/projects/{project}/immutable-rules/{id}", tag = "immutability",
    params(("project" = String, Path), ("id" = i64, Path)), request_body = RuleBody,
    responses((status = 200, body = RuleView), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Replaces a rule (Maintainer, ProjectAdmin).
async fn replace_rule(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
    Body(req): Body<RuleBody>,
) -> AdminResult<Json<RuleView>> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditImmutability).await?;
    let rule = NewImmutableRule {
        repository: repo_pattern(&req.scope_selectors)?,
        tag: tag_pattern(&req.tag_selectors)?,
        disabled: req.disabled,
    };
    Ok(Json(store(&app, &name, id, rule).await?))
}

#[utoipa::path(patch, path = "/projects/{project}/immutable-rules/{id}", tag = "immutability",
    params(("project" = String, Path), ("id" = i64, Path)), request_body = RulePatch,
    responses((status = 200, body = RuleView), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Changes part of a rule, e.g. `{"disabled":true}` (Maintainer, ProjectAdmin).
async fn patch_rule(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
    Body(req): Body<RulePatch>,
) -> AdminResult<Json<RuleView>> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditImmutability).await?;
    let mut rule = find(&app, &name, id).await?.rule;
    if let Some(disabled) = req.disabled {
        rule.disabled = disabled;
    }
    if let Some(tags) = &req.tag_selectors {
        rule.tag = tag_pattern(tags)?;
    }
    if let Some(scope) = &req.scope_selectors {
        rule.repository = repo_pattern(scope)?;
    }
    Ok(Json(store(&app, &name, id, rule).await?))
}

#[utoipa::path(delete, path = "/projects/{project}/immutable-rules/{id}", tag = "immutability",
    params(("project" = String, Path), ("id" = i64, Path)),
    responses((status = 204), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Deletes a rule (Maintainer, ProjectAdmin).
async fn delete_rule(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, id)): Path<(String, i64)>,
) -> AdminResult<StatusCode> {
    caller.user()?;
    project_for(&app, &caller, &name, ProjectAction::EditImmutability).await?;
    if !app.meta.delete_immutable_rule(&name, id).await? {
        return Err(rule_not_found(&name, id));
    }
    app.immutable_rules.forget(&name);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(decoration: &str, pattern: &str) -> SelectorBody {
        SelectorBody { kind: DOUBLESTAR.into(), decoration: decoration.into(), pattern: pattern.into() }
    }

    #[test]
    fn harbors_decorations_are_read_by_position() {
        assert_eq!(
            tag_pattern(&[sel("excludes", "latest")]).unwrap(),
            RulePattern::new(Decoration::Excludes, "latest")
        );
        let scope = ScopeSelectors { repository: vec![sel("repoMatches", "api/**")] };
        assert_eq!(repo_pattern(&scope).unwrap(), RulePattern::new(Decoration::Matches, "api/**"));
        // A repository decoration on a tag and the reverse are mistakes.
        assert_eq!(tag_pattern(&[sel("repoMatches", "v*")]).unwrap_err().code, "INVALID_INPUT");
        let swapped = ScopeSelectors { repository: vec![sel("matches", "**")] };
        assert_eq!(repo_pattern(&swapped).unwrap_err().code, "INVALID_INPUT");
    }

    #[test]
    fn a_rule_has_one_selector_of_each_and_only_doublestar() {
        assert!(tag_pattern(&[]).is_err());
        assert!(tag_pattern(&[sel("matches", "v*"), sel("matches", "x")]).is_err());
        let mut regex = sel("matches", "v.*");
        regex.kind = "regex".into();
        assert!(tag_pattern(&[regex]).is_err());
    }

    #[test]
    fn patterns_that_do_not_compile_are_bad_input() {
        let rule = NewImmutableRule {
            repository: RulePattern::new(Decoration::Matches, "**"),
            tag: RulePattern::new(Decoration::Matches, "v{1,2"),
            disabled: false,
        };
        let err = validated(rule).unwrap_err();
        assert_eq!((err.status, err.code), (StatusCode::BAD_REQUEST, "INVALID_INPUT"));
    }
}
