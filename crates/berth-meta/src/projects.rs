//! [`ProjectStore`]: projects and their members' roles.
//!
//! Every repository belongs to a project: the first component of its name
//! (`team-a/api/server` is in `team-a`); a one-component name (`busybox`)
//! belongs to `library`, which the schema creates public, as on Docker Hub
//! and Harbor. What each role may do is `berth-auth`'s business; this crate
//! only stores who holds which role where.

use crate::MetaError;
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    /// Anyone, even anonymous, may pull.
    pub public: bool,
    pub created_ms: i64,
}

/// A project role, stored as Harbor's role id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    ProjectAdmin,
    Maintainer,
    Developer,
    Guest,
    LimitedGuest,
}

impl Role {
    /// Harbor's `role_id` (1 projectAdmin, 2 developer, 3 guest, 4 maintainer, 5 limitedGuest).
    pub fn id(self) -> i32 {
        match self {
            Role::ProjectAdmin => 1,
            Role::Developer => 2,
            Role::Guest => 3,
            Role::Maintainer => 4,
            Role::LimitedGuest => 5,
        }
    }

    pub fn from_id(id: i32) -> Option<Role> {
        Some(match id {
            1 => Role::ProjectAdmin,
            2 => Role::Developer,
            3 => Role::Guest,
            4 => Role::Maintainer,
            5 => Role::LimitedGuest,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: i64,
    pub user_name: String,
    pub role: Role,
}

/// The project a repository belongs to.
pub fn project_of(repository: &str) -> &str {
    match repository.split_once('/') {
        Some((first, _)) => first,
        None => "library",
    }
}

/// A project name: a lowercase repository path component (the OCI name
/// grammar's `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`), at most 255 bytes.
pub fn valid_project_name(name: &str) -> bool {
    name.len() <= 255 && berth_oci::RepoName::parse(name).is_ok() && !name.contains('/')
}

#[async_trait]
pub trait ProjectStore: Send + Sync + 'static {
    /// Creates a project; [`MetaError::Conflict`] if the name is taken. With
    /// `admin`, that user becomes its ProjectAdmin in the same transaction.
    async fn create_project(
        &self,
        name: &str,
        public: bool,
        admin: Option<i64>,
        now_ms: i64,
    ) -> Result<Project, MetaError>;
    async fn project_by_name(&self, name: &str) -> Result<Option<Project>, MetaError>;
    /// Projects in name order after `after`, at most `limit`.
    async fn list_projects(&self, after: Option<&str>, limit: usize) -> Result<Vec<Project>, MetaError>;
    async fn set_project_public(&self, name: &str, public: bool) -> Result<bool, MetaError>;
    /// Deletes a project and its memberships (not its repositories).
    async fn delete_project(&self, name: &str) -> Result<bool, MetaError>;
    /// Gives `user_id` `role` in the project (replacing any other). False if
    /// the project or the user does not exist.
    async fn set_member(&self, project: &str, user_id: i64, role: Role) -> Result<bool, MetaError>;
    async fn remove_member(&self, project: &str, user_id: i64) -> Result<bool, MetaError>;
    /// Members in user-name order.
    async fn members(&self, project: &str) -> Result<Vec<Member>, MetaError>;
    /// The project and `user_id`'s role in it (`None` for no user or no
    /// membership), in one query: asked on every token request.
    async fn project_access(
        &self,
        project: &str,
        user_id: Option<i64>,
    ) -> Result<Option<(Project, Option<Role>)>, MetaError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_belong_to_their_first_component_or_library() {
        assert_eq!(project_of("team-a/api/server"), "team-a");
        assert_eq!(project_of("team-a/app"), "team-a");
        assert_eq!(project_of("busybox"), "library");
    }

    #[test]
    fn harbor_role_ids_round_trip() {
        for r in [Role::ProjectAdmin, Role::Maintainer, Role::Developer, Role::Guest, Role::LimitedGuest] {
            assert_eq!(Role::from_id(r.id()), Some(r));
        }
        assert_eq!(Role::from_id(1), Some(Role::ProjectAdmin));
        assert_eq!(Role::from_id(4), Some(Role::Maintainer));
        assert_eq!(Role::from_id(0), None);
    }

    #[test]
    fn project_names() {
        assert!(valid_project_name("team-a") && valid_project_name("library") && valid_project_name("a.b_c"));
        assert!(
            !valid_project_name("Team")
                && !valid_project_name("a/b")
                && !valid_project_name("")
                && !valid_project_name("-x")
        );
    }
}
