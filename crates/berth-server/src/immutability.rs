//! Tag immutability at push and delete time (Harbor's rules, stored by
//! `berth_meta::ImmutabilityStore`, matched by `berth_meta::immutable`).
//!
//! A project's rules are read through a cache of a few seconds, as the
//! policy caches projects (`auth/policy.rs`): every manifest PUT and DELETE
//! needs them, rules change rarely, and a query per push would be a
//! database round trip on the hottest write path. A rule changed through
//! this node's admin API takes effect here at once ([`RulesCache::forget`]);
//! on other nodes within `RULES_TTL`.

use crate::error::{ApiError, ApiResult};
use crate::state::App;
use berth_meta::{immutable, project_of, TagRules};
use berth_oci::{Digest, ErrorCode, RepoName, Tag};
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

const RULES_TTL: Duration = Duration::from_secs(5);

pub struct RulesCache(Cache<String, Arc<TagRules>>);

impl RulesCache {
    pub fn new() -> RulesCache {
        RulesCache(Cache::builder().max_capacity(10_000).time_to_live(RULES_TTL).build())
    }

    /// Drops the cached rules of `project`, so the next push reads them anew.
    pub fn forget(&self, project: &str) {
        self.0.invalidate(project);
    }
}

impl Default for RulesCache {
    fn default() -> Self {
        RulesCache::new()
    }
}

async fn rules(app: &App, repo: &RepoName) -> ApiResult<Arc<TagRules>> {
    let project = project_of(repo.as_str());
    if let Some(rules) = app.immutable_rules.0.get(project) {
        return Ok(rules);
    }
    let rules = Arc::new(TagRules::new(&app.meta.immutable_rules(project).await?));
    app.immutable_rules.0.insert(project.to_owned(), rules.clone());
    Ok(rules)
}

fn denied(repo: &RepoName, tag: &str, rule: i64) -> ApiError {
    ApiError::new(ErrorCode::Denied).message(format!("tag {tag} of {repo} is immutable (rule {rule})"))
}

/// A push of `digest` under `tags`: refused if one of them exists, points
/// at another manifest, and is immutable. A new tag, or the same manifest
/// pushed again, is allowed.
pub async fn check_push(app: &App, repo: &RepoName, tags: &[Tag], digest: &Digest) -> ApiResult<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let rules = rules(app, repo).await?;
    if rules.is_empty() {
        return Ok(());
    }
    for tag in tags {
        let Some(rule) = immutable(&rules, repo.as_str(), tag.as_str()) else { continue };
        let current = app.meta.get_tagged_manifest(repo, tag).await?;
        if current.is_some_and(|m| m.digest != *digest) {
            return Err(denied(repo, tag.as_str(), rule));
        }
    }
    Ok(())
}

/// Deleting `tag`: refused if it exists and is immutable (a missing tag
/// stays a 404, whatever the rules).
pub async fn check_delete_tag(app: &App, repo: &RepoName, tag: &Tag) -> ApiResult<()> {
    let Some(rule) = immutable(&*rules(app, repo).await?, repo.as_str(), tag.as_str()) else {
        return Ok(());
    };
    match app.meta.get_tagged_manifest(repo, tag).await? {
        Some(_) => Err(denied(repo, tag.as_str(), rule)),
        None => Ok(()),
    }
}

/// Deleting a manifest by digest deletes its tags: refused if one of them
/// is immutable (Harbor: an artifact holding an immutable tag cannot be
/// deleted). Not atomic with the delete: a tag moved onto the manifest
/// meanwhile is deleted with it.
pub async fn check_delete_manifest(app: &App, repo: &RepoName, digest: &Digest) -> ApiResult<()> {
    let rules = rules(app, repo).await?;
    if rules.is_empty() {
        return Ok(());
    }
    for tag in app.meta.manifest_tags(repo, digest).await? {
        if let Some(rule) = immutable(&rules, repo.as_str(), &tag) {
            return Err(denied(repo, &tag, rule));
        }
    }
    Ok(())
}
