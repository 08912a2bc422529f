//! What robot accounts may do, and who may give them what (Harbor's robot
//! accounts v2).
//!
//! A robot holds exactly its permissions: an action on repository R is
//! granted iff R's project exists and the robot holds that action with the
//! project as namespace (or `*`, for a system robot). Robots never create
//! projects and never get the catalog or `*`.
//!
//! Granting: nobody gives a robot more than they hold. System
//! administrators may grant anything and alone create system robots;
//! otherwise the creator must be ProjectAdmin of the robot's project
//! (Harbor: "an account that has at least project administrator
//! privileges"), and every permission must be in that project and an
//! action the creator's role holds.

use super::policy::{role_allows, Policy};
use berth_meta::{project_of, MetaError, Robot, RobotAction, RobotPermission, Role, User};

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// What the creator may not grant.
    #[error("{0}")]
    Exceeds(String),
    #[error(transparent)]
    Store(#[from] MetaError),
}

/// Whether `robot`'s permissions hold `action` in `project`.
pub fn robot_holds(robot: &Robot, project: &str, action: &str) -> bool {
    let Some(action) = RobotAction::parse(action) else { return false };
    robot.permissions.iter().any(|p| {
        let covers = match robot.project.as_deref() {
            // A project robot acts in its own project only, whatever a row says.
            Some(own) => p.namespace == own && own == project,
            None => p.namespace == project || p.namespace == "*",
        };
        covers && p.action == action
    })
}

/// Whether `creator`, holding `role` in `project` (`None`: a system
/// robot), may give a robot `permissions`; the first thing missing if not.
pub fn check_grant(
    creator: &User,
    project: Option<&str>,
    role: Option<Role>,
    permissions: &[RobotPermission],
) -> Result<(), String> {
    if creator.disabled {
        return Err(format!("{} is disabled", creator.name));
    }
    // The shape holds for everyone: a project robot acts in its project only.
    if let Some(p) = project {
        if let Some(outside) = permissions.iter().find(|perm| perm.namespace != p) {
            return Err(format!("a robot of project {p} cannot hold permissions in {:?}", outside.namespace));
        }
    }
    if creator.admin {
        return Ok(());
    }
    let Some(project) = project else {
        return Err("only system administrators create system robots".into());
    };
    match role {
        Some(Role::ProjectAdmin) => {}
        _ => return Err(format!("creating robots in {project} needs the ProjectAdmin role there")),
    }
    let role = Role::ProjectAdmin;
    match permissions.iter().find(|p| !role_allows(role, p.action.as_str())) {
        Some(p) => Err(format!("{} in {project} is more than {role:?} holds", p.action.as_str())),
        None => Ok(()),
    }
}

impl Policy {
    /// The subset of `requested` actions on the resource that `robot` holds
    /// at `now_ms` (nothing once disabled or expired).
    pub async fn granted_to_robot(
        &self,
        robot: &Robot,
        kind: &str,
        name: &str,
        requested: &[String],
        now_ms: i64,
    ) -> Result<Vec<String>, MetaError> {
        if kind != "repository" || robot.disabled || robot.expired(now_ms) {
            return Ok(Vec::new());
        }
        let project = project_of(name);
        if !requested.iter().any(|a| robot_holds(robot, project, a)) || !self.project_exists(name).await? {
            return Ok(Vec::new());
        }
        let mut out: Vec<String> = Vec::new();
        for a in requested.iter().filter(|a| robot_holds(robot, project, a)) {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        Ok(out)
    }

    /// Whether `creator` may create (or update) a robot of `project` (`None`:
    /// a system robot) with `permissions`. The role is read from the
    /// database, not the cache: a grant must see a revoked role at once.
    pub async fn may_grant(
        &self,
        creator: &User,
        project: Option<&str>,
        permissions: &[RobotPermission],
    ) -> Result<(), GrantError> {
        let role = match project {
            Some(p) if !creator.admin => match self.meta().project_access(p, Some(creator.id)).await? {
                Some((_, role)) => role,
                None => return Err(GrantError::Exceeds(format!("project {p} does not exist"))),
            },
            _ => None,
        };
        check_grant(creator, project, role, permissions).map_err(GrantError::Exceeds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(admin: bool) -> User {
        User {
            id: 7,
            name: "alice".into(),
            password_hash: String::new(),
            admin,
            disabled: false,
            created_ms: 0,
            generation: 0,
        }
    }

    fn perm(ns: &str, action: RobotAction) -> RobotPermission {
        RobotPermission::new(ns, action)
    }

    fn robot(project: Option<&str>, permissions: Vec<RobotPermission>) -> Robot {
        Robot {
            id: 1,
            name: "robot$x".into(),
            project: project.map(str::to_owned),
            description: String::new(),
            secret_hash: String::new(),
            expires_ms: None,
            disabled: false,
            created_ms: 0,
            creator: "alice".into(),
            generation: 0,
            permissions,
        }
    }

    const ALL: [RobotAction; 3] = [RobotAction::Pull, RobotAction::Push, RobotAction::Delete];

    /// Harbor: project robots are created by "an account that has at least
    /// project administrator privileges" in the project; system robots by
    /// administrators (docs 2.3–2.13, "Create Project Robot Accounts",
    /// "Create System Robot Accounts").
    #[test]
    fn project_admins_create_project_robots_and_only_admins_system_robots() {
        let team: Vec<_> = ALL.iter().map(|a| perm("team-a", *a)).collect();
        assert_eq!(check_grant(&user(false), Some("team-a"), Some(Role::ProjectAdmin), &team), Ok(()));
        for role in [None, Some(Role::Maintainer), Some(Role::Developer), Some(Role::Guest), Some(Role::LimitedGuest)] {
            let pull = [perm("team-a", RobotAction::Pull)];
            assert!(check_grant(&user(false), Some("team-a"), role, &pull).is_err(), "{role:?}");
        }
        let star = [perm("*", RobotAction::Pull)];
        assert!(check_grant(&user(false), None, None, &star).unwrap_err().contains("system administrators"));
        assert!(check_grant(&user(false), None, None, &[]).is_err(), "not even an empty system robot");
        assert_eq!(check_grant(&user(true), None, None, &star), Ok(()));
        assert_eq!(check_grant(&user(true), Some("team-a"), None, &team), Ok(()), "admins need no membership");
    }

    #[test]
    fn nobody_grants_outside_the_robots_project_or_while_disabled() {
        let other = [perm("team-b", RobotAction::Pull)];
        let err = check_grant(&user(false), Some("team-a"), Some(Role::ProjectAdmin), &other).unwrap_err();
        assert!(err.contains("team-b"), "{err}");
        assert!(check_grant(&user(true), Some("team-a"), None, &[perm("*", RobotAction::Pull)]).is_err());
        let disabled = User { disabled: true, ..user(true) };
        assert!(check_grant(&disabled, None, None, &[]).is_err());
    }

    /// The database path: the creator's current role decides, and an
    /// unknown project grants nothing.
    #[tokio::test]
    async fn may_grant_reads_the_creators_role() {
        use berth_meta::{NewUser, ProjectStore, UserStore};
        let dir = tempfile::tempdir().unwrap();
        let meta = std::sync::Arc::new(berth_meta::sqlite::SqliteStore::open(&dir.path().join("m.sqlite")).unwrap());
        let new = |name: &str| NewUser { name: name.into(), password_hash: "x".into(), admin: false };
        let alice = meta.create_user(&new("alice"), 1).await.unwrap();
        let bob = meta.create_user(&new("bob"), 1).await.unwrap();
        meta.create_project("team-a", false, Some(alice.id), 1).await.unwrap();
        meta.set_member("team-a", bob.id, Role::Maintainer).await.unwrap();
        let policy = Policy::new(meta.clone(), false, true, crate::auth::ProjectCreation::Everyone);
        let push = [perm("team-a", RobotAction::Push)];
        assert!(policy.may_grant(&alice, Some("team-a"), &push).await.is_ok());
        assert!(matches!(policy.may_grant(&bob, Some("team-a"), &push).await, Err(GrantError::Exceeds(_))));
        assert!(matches!(policy.may_grant(&alice, Some("nope"), &[]).await, Err(GrantError::Exceeds(_))));
        meta.set_member("team-a", alice.id, Role::Developer).await.unwrap();
        assert!(policy.may_grant(&alice, Some("team-a"), &push).await.is_err(), "a lost role counts at once");
    }

    #[test]
    fn robots_hold_exactly_their_permissions() {
        let ci = robot(Some("team-a"), vec![perm("team-a", RobotAction::Pull), perm("team-a", RobotAction::Push)]);
        assert!(robot_holds(&ci, "team-a", "pull") && robot_holds(&ci, "team-a", "push"));
        assert!(!robot_holds(&ci, "team-a", "delete") && !robot_holds(&ci, "team-a", "*"));
        assert!(!robot_holds(&ci, "team-b", "pull"));
        // A project robot never acts outside its project, even with a stray row.
        let stray = robot(Some("team-a"), vec![perm("*", RobotAction::Pull), perm("team-b", RobotAction::Pull)]);
        assert!(!robot_holds(&stray, "team-b", "pull") && !robot_holds(&stray, "team-a", "pull"));
        let mirror = robot(None, vec![perm("*", RobotAction::Pull), perm("team-b", RobotAction::Push)]);
        assert!(robot_holds(&mirror, "anything", "pull") && robot_holds(&mirror, "team-b", "push"));
        assert!(!robot_holds(&mirror, "team-c", "push"));
    }
}
