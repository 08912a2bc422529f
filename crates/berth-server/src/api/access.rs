//! What each project role may do through the admin API: Harbor's documented
//! matrix ("User Permissions By Role", rows named on each variant). System
//! administrators may do everything; on a public project everyone may see
//! the project and its repositories.
//!
//! A project the caller may not see answers 404 exactly as a missing one
//! (401 to anonymous callers, in both cases), so names of private projects
//! do not leak; one the caller sees but may not change answers 403.

use super::caller::Caller;
use super::error::{AdminError, AdminResult};
use crate::state::App;
use berth_meta::{Project, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProjectAction {
    /// "See the project configurations" (also its immutability and retention rules).
    SeeProject,
    /// "Edit the project configurations".
    EditProject,
    /// "See a list of project members".
    SeeMembers,
    /// "Create/edit/delete project members".
    EditMembers,
    /// "See a list of project logs".
    SeeLogs,
    /// "See a list of repositories".
    SeeRepositories,
    /// "Edit/delete repositories".
    EditRepositories,
    /// "See a list of project robots".
    SeeRobots,
    /// "Create/edit/delete project robots".
    EditRobots,
    /// "Create/delete tag retention rules", "Enable/deactivate tag retention rules".
    EditRetention,
    /// "Create/delete tag immutability rules", "Enable/deactivate …".
    EditImmutability,
    /// "See project quotas".
    SeeQuota,
    /// "Edit project quotas": system administrators only.
    EditQuota,
    /// "Delete Project".
    DeleteProject,
    /// List/read webhook policies and their deliveries (Harbor's
    /// `notification-policy` list/read in rbac_role.go; not in the documented table).
    SeeWebhooks,
    /// Create/update/delete webhook policies (rbac_role.go, as above).
    EditWebhooks,
}

impl ProjectAction {
    fn describe(self) -> &'static str {
        use ProjectAction::*;
        match self {
            SeeProject => "see the project",
            EditProject => "edit the project",
            SeeMembers => "see the members",
            EditMembers => "change the members",
            SeeLogs => "see the project's logs",
            SeeRepositories => "see the repositories",
            EditRepositories => "delete repositories",
            SeeRobots => "see the robot accounts",
            EditRobots => "change robot accounts",
            EditRetention => "change retention rules",
            EditImmutability => "change immutability rules",
            SeeQuota => "see the quota",
            EditQuota => "change the quota",
            DeleteProject => "delete the project",
            SeeWebhooks => "see the webhook policies",
            EditWebhooks => "change webhook policies",
        }
    }
}

/// Whether `role` holds `action` (Harbor's table; system administrators aside).
pub fn role_may(role: Role, action: ProjectAction) -> bool {
    use ProjectAction::*;
    use Role::*;
    match action {
        SeeProject | SeeRepositories | SeeQuota => true,
        SeeMembers | SeeLogs => role != LimitedGuest,
        SeeRobots | SeeWebhooks | EditImmutability | EditRepositories => matches!(role, Maintainer | ProjectAdmin),
        EditRetention => matches!(role, Developer | Maintainer | ProjectAdmin),
        EditProject | EditMembers | EditRobots | EditWebhooks | DeleteProject => role == ProjectAdmin,
        EditQuota => false,
    }
}

/// What a non-member may do on a public project.
fn public_may(action: ProjectAction) -> bool {
    matches!(action, ProjectAction::SeeProject | ProjectAction::SeeRepositories)
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::ProjectAdmin => "projectAdmin",
        Role::Maintainer => "maintainer",
        Role::Developer => "developer",
        Role::Guest => "guest",
        Role::LimitedGuest => "limitedGuest",
    }
}

pub fn parse_role(name: &str) -> Option<Role> {
    [Role::ProjectAdmin, Role::Maintainer, Role::Developer, Role::Guest, Role::LimitedGuest]
        .into_iter()
        .find(|r| role_name(*r).eq_ignore_ascii_case(name))
}

/// The project, if `caller` may do `action` in it; 404 if they may not
/// even see it (or it does not exist), 401/403 otherwise.
pub async fn project_for(
    app: &App,
    caller: &Caller,
    name: &str,
    action: ProjectAction,
) -> AdminResult<(Project, Option<Role>)> {
    let found = app.meta.project_access(name, caller.user.as_ref().map(|u| u.id)).await?;
    // Anonymous callers are asked to log in whether the project is private
    // or missing, so neither answer tells them which.
    let hidden = || if caller.user.is_none() { AdminError::unauthorized() } else { not_found(name) };
    let Some((project, role)) = found else { return Err(hidden()) };
    if caller.is_admin() {
        return Ok((project, role));
    }
    let allowed = match role {
        Some(r) => role_may(r, action) || (project.public && public_may(action)),
        None => project.public && public_may(action),
    };
    if allowed {
        return Ok((project, role));
    }
    if caller.user.is_none() || (role.is_none() && !project.public) {
        return Err(hidden());
    }
    let held = role.map_or("no role", role_name);
    Err(AdminError::forbidden(format!(
        "your role in project {name} ({held}) does not allow you to {}",
        action.describe()
    )))
}

pub fn not_found(project: &str) -> AdminError {
    AdminError::not_found(format!("project {project} not found"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProjectAction::*;

    /// Rows of Harbor's "User Permissions By Role" (goharbor/website,
    /// docs/administration/managing-users/user-permissions-by-role.md),
    /// columns Limited Guest, Guest, Developer, Maintainer, Project Admin.
    /// Copied from the documentation, not from the code above.
    const HARBOR: &[(ProjectAction, [bool; 5])] = &[
        (SeeProject, [true, true, true, true, true]),
        (EditProject, [false, false, false, false, true]),
        (SeeMembers, [false, true, true, true, true]),
        (EditMembers, [false, false, false, false, true]),
        (SeeLogs, [false, true, true, true, true]),
        (SeeRepositories, [true, true, true, true, true]),
        (EditRepositories, [false, false, false, true, true]),
        (SeeRobots, [false, false, false, true, true]),
        (EditRobots, [false, false, false, false, true]),
        (EditRetention, [false, false, true, true, true]),
        (EditImmutability, [false, false, false, true, true]),
        (SeeQuota, [true, true, true, true, true]),
        (EditQuota, [false, false, false, false, false]),
        (DeleteProject, [false, false, false, false, true]),
        // Not in the documentation: goharbor/harbor src/common/rbac/project/rbac_role.go,
        // resource notification-policy (maintainer: list and read; projectAdmin: all).
        (SeeWebhooks, [false, false, false, true, true]),
        (EditWebhooks, [false, false, false, false, true]),
    ];

    #[test]
    fn roles_follow_harbors_matrix() {
        let roles = [Role::LimitedGuest, Role::Guest, Role::Developer, Role::Maintainer, Role::ProjectAdmin];
        for (action, row) in HARBOR {
            for (role, expected) in roles.iter().zip(row) {
                assert_eq!(role_may(*role, *action), *expected, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn role_names_are_harbors() {
        assert_eq!(parse_role("projectAdmin"), Some(Role::ProjectAdmin));
        assert_eq!(parse_role("limitedGuest"), Some(Role::LimitedGuest));
        assert_eq!(parse_role("maintainer"), Some(Role::Maintainer));
        assert_eq!(parse_role("owner"), None);
    }
}
