//! Who may do what with Berth's own users: projects and roles, as Harbor.
//!
//! A repository belongs to a project ([`berth_meta::project_of`]). System
//! administrators may do anything. In a project, the registry actions follow
//! Harbor's documented matrix ("User Permissions By Role"): every role pulls;
//! Developer, Maintainer and ProjectAdmin push; Maintainer and ProjectAdmin
//! delete. A public project lets anyone pull, even anonymously. `*` and the
//! catalog are for administrators only. A push into a project that does not
//! exist creates it, with the pusher as ProjectAdmin, when project creation
//! is open to them (`berth.projects`).
//!
//! One policy, used both to fill tokens and to check Basic credentials, so
//! the two paths cannot disagree. Project lookups are cached for a few
//! seconds: a changed role takes effect within that (issued tokens keep
//! what they list until they expire, minutes at most).

use berth_meta::{project_of, valid_project_name, MetaError, MetaStore, NewImmutableRule, Project, Role, User};
use moka::sync::Cache;
use std::sync::Arc;
use std::time::Duration;

/// Who may create projects (Harbor's `project_creation_restriction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectCreation {
    Everyone,
    AdminOnly,
}

/// A project, if it exists, and the user's role in it.
type Access = Option<(Project, Option<Role>)>;

/// What a project created by a first push starts with
/// (`berth.projects.template`), validated at start-up.
#[derive(Debug, Clone, Default)]
pub struct ProjectTemplate {
    pub public: bool,
    pub storage_limit: Option<u64>,
    /// Rules making these tags immutable in every repository.
    pub immutable: Vec<NewImmutableRule>,
    /// A retention policy (Harbor's JSON) and its schedule.
    pub retention: Option<(String, Option<String>)>,
}

pub struct Policy {
    meta: Arc<dyn MetaStore>,
    template: ProjectTemplate,
    /// `berth.auth.anonymouspull`: anonymous clients pull from every project.
    anonymous_pull: bool,
    /// Whether a first push creates its project.
    autocreate: bool,
    creation: ProjectCreation,
    projects: Cache<(String, Option<i64>), Access>,
}

/// What a role may do with a project's repositories (Harbor's matrix rows
/// "Pull image", "Push image", "Scan/delete image").
pub fn role_allows(role: Role, action: &str) -> bool {
    match action {
        "pull" => true,
        "push" => matches!(role, Role::Developer | Role::Maintainer | Role::ProjectAdmin),
        "delete" => matches!(role, Role::Maintainer | Role::ProjectAdmin),
        _ => false,
    }
}

impl Policy {
    pub fn new(meta: Arc<dyn MetaStore>, anonymous_pull: bool, autocreate: bool, creation: ProjectCreation) -> Self {
        let projects = Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(5)).build();
        Policy { meta, template: ProjectTemplate::default(), anonymous_pull, autocreate, creation, projects }
    }

    pub fn with_template(mut self, template: ProjectTemplate) -> Self {
        self.template = template;
        self
    }

    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    pub fn creation(&self) -> ProjectCreation {
        self.creation
    }

    /// Drops cached project lookups after a change through the admin API
    /// (this node at once; other nodes within the cache's few seconds).
    pub fn forget(&self) {
        self.projects.invalidate_all();
    }

    async fn project_access(
        &self,
        project: &str,
        user: Option<i64>,
    ) -> Result<Option<(Project, Option<Role>)>, MetaError> {
        let key = (project.to_owned(), user);
        if let Some(hit) = self.projects.get(&key) {
            return Ok(hit);
        }
        let found = self.meta.project_access(project, user).await?;
        self.projects.insert(key, found.clone());
        Ok(found)
    }

    fn may_create_projects(&self, user: Option<&User>) -> bool {
        match user {
            Some(u) if !u.disabled => self.autocreate && (u.admin || self.creation == ProjectCreation::Everyone),
            _ => false,
        }
    }

    /// The subset of `requested` actions on the resource that `user`
    /// (`None`: anonymous) holds.
    pub async fn granted(
        &self,
        user: Option<&User>,
        kind: &str,
        name: &str,
        requested: &[String],
    ) -> Result<Vec<String>, MetaError> {
        if user.is_some_and(|u| u.disabled) {
            return Ok(Vec::new());
        }
        if user.is_some_and(|u| u.admin) {
            return Ok(dedup(requested.iter().cloned()));
        }
        if (kind, name) == ("berth", "api") {
            // The admin API: any enabled user may hold a token for it (what
            // they may do there is decided per call, as with Basic credentials).
            return Ok(if user.is_some() {
                dedup(requested.iter().filter(|a| *a == "*").cloned())
            } else {
                Vec::new()
            });
        }
        if kind != "repository" {
            return Ok(Vec::new());
        }
        let project = project_of(name);
        let holds: Box<dyn Fn(&str) -> bool + Send> = match self.project_access(project, user.map(|u| u.id)).await? {
            Some((p, role)) => {
                let anonymous_pull = self.anonymous_pull;
                Box::new(move |a: &str| match role {
                    Some(r) => role_allows(r, a),
                    None => a == "pull" && (p.public || anonymous_pull),
                })
            }
            // No such project yet: whoever may create it may push (and so pull) there.
            None if self.may_create_projects(user) && valid_project_name(project) => {
                Box::new(|a: &str| matches!(a, "pull" | "push"))
            }
            None => Box::new(|_: &str| false),
        };
        Ok(dedup(requested.iter().filter(|a| holds(a)).cloned()))
    }

    /// Whether the repository's project exists (cached like every lookup).
    pub async fn project_exists(&self, repository: &str) -> Result<bool, MetaError> {
        Ok(self.project_access(project_of(repository), None).await?.is_some())
    }

    /// Before a push: creates the repository's project, with `user` as its
    /// ProjectAdmin, if it does not exist and `user` may create projects.
    pub async fn ensure_project(&self, repository: &str, user: Option<&User>) -> Result<(), MetaError> {
        let project = project_of(repository);
        if self.project_exists(repository).await? || !self.may_create_projects(user) {
            return Ok(());
        }
        let now = crate::state::now_ms();
        match self.meta.create_project(project, self.template.public, user.map(|u| u.id), now).await {
            Ok(_) => {
                tracing::info!(project, user = user.map(|u| u.name.as_str()), "created project on first push");
                self.apply_template(project, now).await?;
            }
            Err(MetaError::Conflict(_)) => {} // another push created it first
            Err(e) => return Err(e),
        }
        self.projects.invalidate_all();
        Ok(())
    }

    /// Gives a project just created by a push the template's quota,
    /// immutability rules and retention policy. Not in the creating
    /// transaction: a failure here is logged and returned (the push fails,
    /// the project stays; an administrator completes it through the API).
    async fn apply_template(&self, project: &str, now_ms: i64) -> Result<(), MetaError> {
        let t = &self.template;
        let result = async {
            if t.storage_limit.is_some() {
                self.meta.set_project_quota(project, t.storage_limit).await?;
            }
            for rule in &t.immutable {
                self.meta.create_immutable_rule(project, rule).await?;
            }
            if let Some((policy, cron)) = &t.retention {
                self.meta.set_retention_policy(project, policy, cron.as_deref(), now_ms).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = &result {
            tracing::error!(project, error = %e, "applying berth.projects.template to a new project failed");
        }
        result
    }
}

fn dedup(actions: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in actions {
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Harbor's "User Permissions By Role" table (docs 2.4–2.16), rows "Pull
    /// image", "Push image", "Scan/delete image"; columns Limited Guest,
    /// Guest, Developer, Maintainer, Project Admin. Written from the docs,
    /// not from the code.
    const HARBOR: &[(&str, [bool; 5])] = &[
        ("pull", [true, true, true, true, true]),
        ("push", [false, false, true, true, true]),
        ("delete", [false, false, false, true, true]),
        ("*", [false, false, false, false, false]),
    ];

    #[test]
    fn registry_actions_follow_harbors_matrix() {
        let roles = [Role::LimitedGuest, Role::Guest, Role::Developer, Role::Maintainer, Role::ProjectAdmin];
        for (action, row) in HARBOR {
            for (role, expected) in roles.iter().zip(row) {
                assert_eq!(role_allows(*role, action), *expected, "{role:?} {action}");
            }
        }
    }
}
