//! `/projects/{project}/repositories`: a project's repositories, and
//! deleting one whole (Harbor's "See a list of repositories" and
//! "Edit/delete repositories"). A project is only deleted empty, so this
//! is how one is emptied without deleting every manifest over the registry API.

use super::access::{project_for, ProjectAction};
use super::caller::Caller;
use super::error::{AdminError, AdminResult};
use super::page::{page, PageQuery};
use super::{rfc3339_ms, Query};
use crate::state::App;
use axum::extract::{Path, State};
use axum::response::Response;
use berth_meta::{immutable, project_of, RetentionArtifact, TagRules};
use berth_oci::RepoName;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(list_repositories)).routes(routes!(delete_repository))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RepositoryView {
    /// The full name, project included (`library`'s one-part names as they are).
    pub name: String,
    /// Manifests and indexes.
    pub artifact_count: u64,
    pub tag_count: u64,
    /// RFC 3339: the newest push or tag move.
    pub pushed_at: String,
    /// RFC 3339; `null`: never pulled (pulls are recorded within seconds).
    pub pulled_at: Option<String>,
}

fn summarize(artifacts: &[RetentionArtifact]) -> Vec<RepositoryView> {
    let mut by_repo: BTreeMap<&str, (u64, u64, i64, i64)> = BTreeMap::new();
    for a in artifacts {
        let e = by_repo.entry(&a.repository).or_default();
        e.0 += 1;
        e.1 += a.tags.len() as u64;
        e.2 = e.2.max(a.pushed_ms);
        e.3 = e.3.max(a.last_pulled_ms);
    }
    by_repo
        .into_iter()
        .map(|(name, (artifacts, tags, pushed, pulled))| RepositoryView {
            name: name.to_owned(),
            artifact_count: artifacts,
            tag_count: tags,
            pushed_at: rfc3339_ms(pushed),
            pulled_at: (pulled > 0).then(|| rfc3339_ms(pulled)),
        })
        .collect()
}

#[utoipa::path(get, path = "/projects/{project}/repositories", tag = "repositories",
    params(("project" = String, Path), PageQuery),
    responses((status = 200, body = [RepositoryView]), (status = 404, body = super::error::ErrorBody)))]
/// The project's repositories that hold manifests, by name.
async fn list_repositories(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(project): Path<String>,
    Query(q): Query<PageQuery>,
) -> AdminResult<Response> {
    project_for(&app, &caller, &project, ProjectAction::SeeRepositories).await?;
    let artifacts = app.meta.retention_artifacts(&project).await?;
    let limit = q.limit();
    let views: Vec<RepositoryView> = summarize(&artifacts)
        .into_iter()
        .filter(|r| q.after.as_deref().is_none_or(|after| r.name.as_str() > after))
        .take(limit)
        .collect();
    Ok(page(views, limit, &format!("/projects/{project}/repositories"), |r| r.name.clone()))
}

/// The full name `repository` means in `project`: itself if it belongs
/// there (`team-a/api`, `busybox` in library), else `project/repository`
/// (Harbor's API names repositories without their project).
fn full_name(project: &str, repository: &str) -> Option<RepoName> {
    let full =
        if project_of(repository) == project { repository.to_owned() } else { format!("{project}/{repository}") };
    RepoName::parse(&full).ok().filter(|r| project_of(r.as_str()) == project)
}

#[utoipa::path(delete, path = "/projects/{project}/repositories/{repository}", tag = "repositories",
    params(("project" = String, Path), ("repository" = String, Path, description = "The name (with or without the project; `/` encoded as %2F)")),
    responses((status = 204), (status = 403, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)),
    security(("basic" = []), ("bearer" = [])))]
/// Deletes a repository whole: tags, manifests and blob links (the bytes go
/// with the next garbage collection). Refused while it holds an immutable tag.
async fn delete_repository(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((project, repository)): Path<(String, String)>,
) -> AdminResult<StatusCode> {
    caller.user()?;
    project_for(&app, &caller, &project, ProjectAction::EditRepositories).await?;
    let not_found = || AdminError::not_found(format!("repository {repository} not found in project {project}"));
    let repo = full_name(&project, &repository).ok_or_else(not_found)?;
    let rules = TagRules::new(&app.meta.immutable_rules(&project).await?);
    if !rules.is_empty() {
        let artifacts = app.meta.retention_artifacts(&project).await?;
        let held = artifacts
            .iter()
            .filter(|a| a.repository == repo.as_str())
            .flat_map(|a| a.tags.iter())
            .find_map(|t| immutable(&rules, repo.as_str(), t).map(|rule| (t, rule)));
        if let Some((tag, rule)) = held {
            return Err(AdminError::forbidden(format!(
                "tag {tag} of {repo} is immutable (rule {rule}); the repository cannot be deleted"
            )));
        }
    }
    if !app.meta.delete_repository(&repo).await? {
        return Err(not_found());
    }
    // Every cached manifest of the repository, here and on peers.
    crate::peers::invalidate_all(&app).await.map_err(|_| AdminError::internal())?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::full_name;

    #[test]
    fn names_with_or_without_their_project() {
        let name = |p, r| full_name(p, r).map(|n| n.to_string());
        assert_eq!(name("team-a", "team-a/api/server").as_deref(), Some("team-a/api/server"));
        assert_eq!(name("team-a", "api/server").as_deref(), Some("team-a/api/server"));
        assert_eq!(name("library", "busybox").as_deref(), Some("busybox"));
        assert_eq!(name("library", "library/busybox").as_deref(), Some("library/busybox"));
        assert_eq!(name("team-a", "Bad Name"), None);
    }
}
