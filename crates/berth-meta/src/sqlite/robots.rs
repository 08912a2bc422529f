//! [`RobotStore`] on SQLite. Foreign keys are not enforced on SQLite
//! connections here, so deletes remove permissions explicitly.

use super::SqliteStore;
use crate::robots::{check_new, check_permissions, fold_rows, normalized, PermissionRow};
use crate::{MetaError, NewRobot, Robot, RobotPermission, RobotStore, RobotUpdate};
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, ToSql};

/// Robots (the subquery `r`, filtered and limited by the caller) joined
/// with their project's name and their permissions, one row per permission.
fn select_sql(robots: &str) -> String {
    format!(
        "SELECT r.id, r.name, p.name, r.description, r.secret_hash, r.expires_ms, r.disabled, r.created_ms,
                r.creator, r.generation, rp.namespace, rp.action
         FROM ({robots}) r LEFT JOIN projects p ON p.id = r.project_id
         LEFT JOIN robot_permissions rp ON rp.robot_id = r.id
         ORDER BY r.name, r.id"
    )
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Robot, PermissionRow)> {
    let robot = Robot {
        id: r.get(0)?,
        name: r.get(1)?,
        project: r.get(2)?,
        description: r.get(3)?,
        secret_hash: r.get(4)?,
        expires_ms: r.get(5)?,
        disabled: r.get(6)?,
        created_ms: r.get(7)?,
        creator: r.get(8)?,
        generation: r.get(9)?,
        permissions: Vec::new(),
    };
    let ns: Option<String> = r.get(10)?;
    let action: Option<String> = r.get(11)?;
    Ok((robot, ns.zip(action)))
}

fn select(c: &Connection, robots: &str, args: &[&dyn ToSql]) -> Result<Vec<Robot>, MetaError> {
    let mut st = c.prepare_cached(&select_sql(robots))?;
    let rows = st.query_map(args, row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    fold_rows(rows)
}

fn insert_permissions(c: &Connection, robot_id: i64, permissions: &[RobotPermission]) -> Result<(), MetaError> {
    let mut st = c.prepare_cached("INSERT INTO robot_permissions (robot_id, namespace, action) VALUES (?1, ?2, ?3)")?;
    for p in normalized(permissions) {
        st.execute(params![robot_id, p.namespace, p.action.as_str()])?;
    }
    Ok(())
}

/// Checks that every project the permissions name exists (one writer:
/// no delete can come between this and the commit).
fn check_namespaces(c: &Connection, permissions: &[RobotPermission]) -> Result<(), MetaError> {
    let mut st = c.prepare_cached("SELECT 1 FROM projects WHERE name = ?1")?;
    for p in permissions.iter().filter(|p| p.namespace != "*") {
        if !st.exists([&p.namespace])? {
            return Err(MetaError::NotFound(format!("project {}", p.namespace)));
        }
    }
    Ok(())
}

/// Removes the robots of project `name` and every permission naming it,
/// inside the caller's transaction (`delete_project`).
pub(super) fn delete_for_project(c: &Connection, name: &str) -> Result<(), MetaError> {
    c.prepare_cached(
        "DELETE FROM robot_permissions WHERE namespace = ?1 OR robot_id IN
         (SELECT r.id FROM robots r JOIN projects p ON p.id = r.project_id WHERE p.name = ?1)",
    )?
    .execute([name])?;
    c.prepare_cached("DELETE FROM robots WHERE project_id = (SELECT id FROM projects WHERE name = ?1)")?
        .execute([name])?;
    Ok(())
}

#[async_trait]
impl RobotStore for SqliteStore {
    async fn create_robot(&self, robot: &NewRobot, now_ms: i64) -> Result<Robot, MetaError> {
        check_new(robot)?;
        let robot = robot.clone();
        self.pool
            .write(move |tx| {
                let project_id: Option<i64> = match &robot.project {
                    Some(p) => Some(
                        tx.prepare_cached("SELECT id FROM projects WHERE name = ?1")?
                            .query_row([p], |r| r.get(0))
                            .optional()?
                            .ok_or_else(|| MetaError::NotFound(format!("project {p}")))?,
                    ),
                    None => None,
                };
                let id: i64 = tx
                    .prepare_cached(
                        "INSERT INTO robots (name, project_id, description, secret_hash, expires_ms, created_ms, creator)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (name) DO NOTHING RETURNING id",
                    )?
                    .query_row(
                        params![
                            robot.name,
                            project_id,
                            robot.description,
                            robot.secret_hash,
                            robot.expires_ms,
                            now_ms,
                            robot.creator
                        ],
                        |r| r.get(0),
                    )
                    .optional()?
                    .ok_or_else(|| MetaError::Conflict(format!("robot {}", robot.name)))?;
                check_namespaces(tx, &robot.permissions)?;
                insert_permissions(tx, id, &robot.permissions)?;
                select(tx, "SELECT * FROM robots WHERE id = ?1", &[&id])?
                    .pop()
                    .ok_or_else(|| MetaError::Database("a robot vanished inside its own transaction".into()))
            })
            .await
    }

    async fn robot_by_name(&self, name: &str) -> Result<Option<Robot>, MetaError> {
        let name = name.to_owned();
        self.pool.read(move |c| Ok(select(c, "SELECT * FROM robots WHERE name = ?1", &[&name])?.pop())).await
    }

    async fn robot_by_id(&self, id: i64) -> Result<Option<Robot>, MetaError> {
        self.pool.read(move |c| Ok(select(c, "SELECT * FROM robots WHERE id = ?1", &[&id])?.pop())).await
    }

    async fn list_robots(
        &self,
        project: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Robot>, MetaError> {
        let (project, after) = (project.map(str::to_owned), after.unwrap_or("").to_owned());
        self.pool
            .read(move |c| {
                select(
                    c,
                    "SELECT * FROM robots WHERE name > ?1
                     AND (?2 IS NULL OR project_id = (SELECT id FROM projects WHERE name = ?2))
                     ORDER BY name LIMIT ?3",
                    &[&after, &project, &(limit as i64)],
                )
            })
            .await
    }

    async fn update_robot(&self, id: i64, update: &RobotUpdate) -> Result<bool, MetaError> {
        let update = update.clone();
        self.pool
            .write(move |tx| {
                let Some(project) = tx
                    .prepare_cached(
                        "SELECT p.name FROM robots r LEFT JOIN projects p ON p.id = r.project_id WHERE r.id = ?1",
                    )?
                    .query_row([id], |r| r.get::<_, Option<String>>(0))
                    .optional()?
                else {
                    return Ok(false);
                };
                check_permissions(project.as_deref(), &update.permissions)?;
                check_namespaces(tx, &update.permissions)?;
                tx.prepare_cached("UPDATE robots SET description = ?2, disabled = ?3, expires_ms = ?4 WHERE id = ?1")?
                    .execute(params![id, update.description, update.disabled, update.expires_ms])?;
                tx.prepare_cached("DELETE FROM robot_permissions WHERE robot_id = ?1")?.execute([id])?;
                insert_permissions(tx, id, &update.permissions)?;
                Ok(true)
            })
            .await
    }

    async fn rotate_robot_secret(&self, id: i64, secret_hash: &str) -> Result<Option<i64>, MetaError> {
        let hash = secret_hash.to_owned();
        self.pool
            .write(move |tx| {
                Ok(tx
                    .prepare_cached(
                        "UPDATE robots SET secret_hash = ?2, generation = generation + 1 WHERE id = ?1
                         RETURNING generation",
                    )?
                    .query_row(params![id, hash], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    async fn delete_robot(&self, id: i64) -> Result<bool, MetaError> {
        self.pool
            .write(move |tx| {
                tx.prepare_cached("DELETE FROM robot_permissions WHERE robot_id = ?1")?.execute([id])?;
                Ok(tx.prepare_cached("DELETE FROM robots WHERE id = ?1")?.execute([id])? == 1)
            })
            .await
    }
}
