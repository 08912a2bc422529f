//! [`RobotStore`]: robot accounts, as Harbor's (v2) robot accounts.
//!
//! A robot is a non-human account for CI and the like: a project robot
//! `robot$<project>+<name>` belongs to one project (and goes with it), a
//! system robot `robot$<name>` to none. Its secret arrives hashed (argon2id
//! by `berth-auth`): this crate never sees it. A `generation` bumped by each
//! secret rotation lets callers tell a rotated secret from the current one.
//!
//! Permissions have Harbor's v2 shape (namespace, resource, action); only
//! the `repository` resource exists here, so the stored form is (namespace,
//! action). They live in a child table rather than a JSON column: deleting a
//! project can then remove, in the same statement set, what system robots
//! held in it (a project later re-created with the same name must not hand
//! its repositories to an old robot), and a lookup still costs one query
//! (a join).

use crate::{valid_project_name, valid_user_name, MetaError};
use async_trait::async_trait;

/// Harbor's default robot name prefix.
pub const ROBOT_PREFIX: &str = "robot$";

/// What a robot may do to a repository (Harbor's `repository` resource actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RobotAction {
    Pull,
    Push,
    Delete,
}

impl RobotAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RobotAction::Pull => "pull",
            RobotAction::Push => "push",
            RobotAction::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<RobotAction> {
        Some(match s {
            "pull" => RobotAction::Pull,
            "push" => RobotAction::Push,
            "delete" => RobotAction::Delete,
            _ => return None,
        })
    }
}

/// One permission: `action` on the repositories of project `namespace`, or
/// of every project with `*` (system robots only).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RobotPermission {
    pub namespace: String,
    pub action: RobotAction,
}

impl RobotPermission {
    pub fn new(namespace: &str, action: RobotAction) -> Self {
        RobotPermission { namespace: namespace.to_owned(), action }
    }
}

/// A robot as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Robot {
    pub id: i64,
    /// The full name, `robot$…`.
    pub name: String,
    /// The project of a project robot; `None` for a system robot.
    pub project: Option<String>,
    pub description: String,
    /// argon2id PHC string of the secret.
    pub secret_hash: String,
    /// Unix milliseconds after which it may no longer log in; `None`: never.
    pub expires_ms: Option<i64>,
    pub disabled: bool,
    pub created_ms: i64,
    /// The user who created it.
    pub creator: String,
    /// Bumped by every secret rotation.
    pub generation: i64,
    /// Sorted, without duplicates.
    pub permissions: Vec<RobotPermission>,
}

impl Robot {
    /// Whether it has expired at `now_ms` (the expiry instant included).
    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_ms.is_some_and(|e| now_ms >= e)
    }
}

#[derive(Debug, Clone)]
pub struct NewRobot {
    /// The full name; must agree with `project` ([`parse_robot_name`]).
    pub name: String,
    pub project: Option<String>,
    pub description: String,
    pub secret_hash: String,
    pub expires_ms: Option<i64>,
    pub creator: String,
    pub permissions: Vec<RobotPermission>,
}

/// What an update replaces.
#[derive(Debug, Clone)]
pub struct RobotUpdate {
    pub description: String,
    pub disabled: bool,
    pub expires_ms: Option<i64>,
    pub permissions: Vec<RobotPermission>,
}

/// The full name of a robot: `robot$<project>+<name>` or `robot$<name>`.
pub fn robot_name(project: Option<&str>, name: &str) -> String {
    match project {
        Some(p) => format!("{ROBOT_PREFIX}{p}+{name}"),
        None => format!("{ROBOT_PREFIX}{name}"),
    }
}

/// Splits a full robot name into (project, name), if it is one. `+` is in
/// neither a project nor a user name, so the split is unambiguous.
pub fn parse_robot_name(full: &str) -> Option<(Option<&str>, &str)> {
    let rest = full.strip_prefix(ROBOT_PREFIX)?;
    let (project, name) = match rest.split_once('+') {
        Some((p, n)) if valid_project_name(p) => (Some(p), n),
        Some(_) => return None,
        None => (None, rest),
    };
    valid_user_name(name).then_some((project, name))
}

/// Whether a login name is a robot's (Harbor's prefix).
pub fn is_robot_name(name: &str) -> bool {
    name.starts_with(ROBOT_PREFIX)
}

/// Sorted and deduplicated, as stored.
pub(crate) fn normalized(permissions: &[RobotPermission]) -> Vec<RobotPermission> {
    let mut out = permissions.to_vec();
    out.sort();
    out.dedup();
    out
}

/// Checks a new robot's name against its project and its permissions'
/// namespaces against what such a robot may name.
pub(crate) fn check_new(robot: &NewRobot) -> Result<(), MetaError> {
    let invalid = |why: String| Err(MetaError::Invalid(why));
    match parse_robot_name(&robot.name) {
        Some((p, _)) if p == robot.project.as_deref() => {}
        _ => return invalid(format!("{:?} is not a robot name for this project", robot.name)),
    }
    check_permissions(robot.project.as_deref(), &robot.permissions)
}

/// A project robot names only its project; a system robot any project or `*`.
pub(crate) fn check_permissions(project: Option<&str>, permissions: &[RobotPermission]) -> Result<(), MetaError> {
    for p in permissions {
        let ok = match project {
            Some(own) => p.namespace == own,
            None => p.namespace == "*" || valid_project_name(&p.namespace),
        };
        if !ok {
            return Err(MetaError::Invalid(format!(
                "a robot of this kind cannot hold permissions in {:?}",
                p.namespace
            )));
        }
    }
    Ok(())
}

/// A robot's permission as a backend reads it: (namespace, action) text.
pub(crate) type PermissionRow = Option<(String, String)>;

/// Folds rows of (robot, one permission) ordered by robot into robots with
/// their sorted permissions: what a backend's robot-permission join returns.
pub(crate) fn fold_rows(rows: impl IntoIterator<Item = (Robot, PermissionRow)>) -> Result<Vec<Robot>, MetaError> {
    let mut out: Vec<Robot> = Vec::new();
    for (robot, permission) in rows {
        if out.last().is_none_or(|last| last.id != robot.id) {
            out.push(robot);
        }
        if let Some((namespace, action)) = permission {
            let action = RobotAction::parse(&action)
                .ok_or_else(|| MetaError::Database(format!("unknown robot action {action:?}")))?;
            out.last_mut().expect("pushed above").permissions.push(RobotPermission { namespace, action });
        }
    }
    for r in &mut out {
        r.permissions.sort();
    }
    Ok(out)
}

#[async_trait]
pub trait RobotStore: Send + Sync + 'static {
    /// Creates a robot; [`MetaError::Conflict`] if the name is taken,
    /// [`MetaError::NotFound`] if its project (or one its permissions name)
    /// does not exist,
    /// [`MetaError::Invalid`] if its name or permissions do not fit it.
    async fn create_robot(&self, robot: &NewRobot, now_ms: i64) -> Result<Robot, MetaError>;
    async fn robot_by_name(&self, name: &str) -> Result<Option<Robot>, MetaError>;
    async fn robot_by_id(&self, id: i64) -> Result<Option<Robot>, MetaError>;
    /// Robots in name order after `after`, at most `limit`; with `project`,
    /// only that project's robots, otherwise every robot.
    async fn list_robots(
        &self,
        project: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Robot>, MetaError>;
    /// Replaces description, disabled, expiry and permissions. False if no
    /// such robot; [`MetaError::Invalid`] if the permissions do not fit it,
    /// [`MetaError::NotFound`] if they name a project that does not exist.
    async fn update_robot(&self, id: i64, update: &RobotUpdate) -> Result<bool, MetaError>;
    /// Replaces the secret hash and bumps the generation: the new
    /// generation, `None` if no such robot.
    async fn rotate_robot_secret(&self, id: i64, secret_hash: &str) -> Result<Option<i64>, MetaError>;
    async fn delete_robot(&self, id: i64) -> Result<bool, MetaError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_robot_names() {
        assert_eq!(robot_name(Some("team-a"), "ci"), "robot$team-a+ci");
        assert_eq!(robot_name(None, "mirror"), "robot$mirror");
        assert_eq!(parse_robot_name("robot$team-a+ci"), Some((Some("team-a"), "ci")));
        assert_eq!(parse_robot_name("robot$mirror"), Some((None, "mirror")));
        for bad in ["robot$", "robot$Team+ci", "robot$a+", "robot$a+b+c", "robot$a+b:c", "ci", "robot-ci", "robot$+ci"]
        {
            assert_eq!(parse_robot_name(bad), None, "{bad}");
        }
        assert!(is_robot_name("robot$x") && !is_robot_name("robotx"));
    }

    #[test]
    fn permissions_fit_the_robot_kind() {
        let pull = |ns: &str| RobotPermission::new(ns, RobotAction::Pull);
        assert!(check_permissions(Some("team-a"), &[pull("team-a")]).is_ok());
        assert!(check_permissions(Some("team-a"), &[pull("team-b")]).is_err());
        assert!(check_permissions(Some("team-a"), &[pull("*")]).is_err());
        assert!(check_permissions(None, &[pull("*"), pull("team-b")]).is_ok());
        assert!(check_permissions(None, &[pull("Bad")]).is_err());
        for a in [RobotAction::Pull, RobotAction::Push, RobotAction::Delete] {
            assert_eq!(RobotAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(RobotAction::parse("*"), None);
    }
}
