//! [`RobotStore`] on PostgreSQL (permissions cascade with their robot, and
//! project robots with their project, through foreign keys).

use super::{PostgresStore, TxError};
use crate::postgres::pool::retrying;
use crate::robots::{check_new, check_permissions, fold_rows, normalized, PermissionRow};
use crate::{MetaError, NewRobot, Robot, RobotPermission, RobotStore, RobotUpdate};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

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

fn row(r: &Row) -> (Robot, PermissionRow) {
    let robot = Robot {
        id: r.get(0),
        name: r.get(1),
        project: r.get(2),
        description: r.get(3),
        secret_hash: r.get(4),
        expires_ms: r.get(5),
        disabled: r.get(6),
        created_ms: r.get(7),
        creator: r.get(8),
        generation: r.get(9),
        permissions: Vec::new(),
    };
    let ns: Option<String> = r.get(10);
    let action: Option<String> = r.get(11);
    (robot, ns.zip(action))
}

async fn select(c: &impl GenericClient, robots: &str, args: &[&(dyn ToSql + Sync)]) -> Result<Vec<Robot>, TxError> {
    let st = c.prepare_cached(&select_sql(robots)).await?;
    let rows = c.query(&st, args).await?;
    Ok(fold_rows(rows.iter().map(row))?)
}

async fn insert_permissions(
    c: &impl GenericClient,
    robot_id: i64,
    permissions: &[RobotPermission],
) -> Result<(), TxError> {
    let st =
        c.prepare_cached("INSERT INTO robot_permissions (robot_id, namespace, action) VALUES ($1, $2, $3)").await?;
    for p in normalized(permissions) {
        c.execute(&st, &[&robot_id, &p.namespace, &p.action.as_str()]).await?;
    }
    Ok(())
}

/// Checks that every project the permissions name exists, and keeps those
/// rows (`FOR SHARE`) until the caller commits: a concurrent
/// `delete_project` waits, then removes what was just granted in it.
async fn lock_namespaces(c: &impl GenericClient, permissions: &[RobotPermission]) -> Result<(), TxError> {
    let mut names: Vec<&str> = permissions.iter().map(|p| p.namespace.as_str()).filter(|n| *n != "*").collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        return Ok(());
    }
    let st = c.prepare_cached("SELECT name FROM projects WHERE name = ANY($1) FOR SHARE").await?;
    let found: Vec<String> = c.query(&st, &[&names]).await?.iter().map(|r| r.get(0)).collect();
    match names.iter().find(|n| !found.iter().any(|f| f == *n)) {
        Some(missing) => Err(MetaError::NotFound(format!("project {missing}")).into()),
        None => Ok(()),
    }
}

/// Removes every permission naming project `name` (system robots' too),
/// inside the caller's `delete_project` transaction, after the project row
/// is deleted (so a grant that held it `FOR SHARE` has committed and is
/// seen); the project's own robots go by cascade.
pub(super) async fn delete_permissions_in(c: &impl GenericClient, name: &str) -> Result<(), TxError> {
    let st = c.prepare_cached("DELETE FROM robot_permissions WHERE namespace = $1").await?;
    c.execute(&st, &[&name]).await?;
    Ok(())
}

#[async_trait]
impl RobotStore for PostgresStore {
    async fn create_robot(&self, robot: &NewRobot, now_ms: i64) -> Result<Robot, MetaError> {
        check_new(robot)?;
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let project_id: Option<i64> = match &robot.project {
                Some(p) => {
                    // FOR SHARE: a concurrent delete_project waits, so no robot outlives its project.
                    let st = tx.prepare_cached("SELECT id FROM projects WHERE name = $1 FOR SHARE").await?;
                    let row = tx.query_opt(&st, &[p]).await?;
                    Some(row.ok_or_else(|| MetaError::NotFound(format!("project {p}")))?.get(0))
                }
                None => None,
            };
            let st = tx
                .prepare_cached(
                    "INSERT INTO robots (name, project_id, description, secret_hash, expires_ms, created_ms, creator)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING RETURNING id",
                )
                .await?;
            let Some(inserted) = tx
                .query_opt(
                    &st,
                    &[
                        &robot.name,
                        &project_id,
                        &robot.description,
                        &robot.secret_hash,
                        &robot.expires_ms,
                        &now_ms,
                        &robot.creator,
                    ],
                )
                .await?
            else {
                return Err(MetaError::Conflict(format!("robot {}", robot.name)).into());
            };
            let id: i64 = inserted.get(0);
            lock_namespaces(&tx, &robot.permissions).await?;
            insert_permissions(&tx, id, &robot.permissions).await?;
            let created = select(&tx, "SELECT * FROM robots WHERE id = $1", &[&id]).await?.pop();
            tx.commit().await?;
            Ok(created.ok_or_else(|| MetaError::Database("a robot vanished inside its own transaction".into()))?)
        })
        .await
    }

    async fn robot_by_name(&self, name: &str) -> Result<Option<Robot>, MetaError> {
        let c = self.client().await?;
        Ok(select(&c, "SELECT * FROM robots WHERE name = $1", &[&name]).await?.pop())
    }

    async fn robot_by_id(&self, id: i64) -> Result<Option<Robot>, MetaError> {
        let c = self.client().await?;
        Ok(select(&c, "SELECT * FROM robots WHERE id = $1", &[&id]).await?.pop())
    }

    async fn list_robots(
        &self,
        project: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Robot>, MetaError> {
        let c = self.client().await?;
        let sql = "SELECT * FROM robots WHERE name > $1
                   AND ($2::TEXT IS NULL OR project_id = (SELECT id FROM projects WHERE name = $2))
                   ORDER BY name LIMIT $3";
        Ok(select(&c, sql, &[&after.unwrap_or(""), &project, &(limit as i64)]).await?)
    }

    async fn update_robot(&self, id: i64, update: &RobotUpdate) -> Result<bool, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare_cached(
                    "SELECT p.name FROM robots r LEFT JOIN projects p ON p.id = r.project_id
                     WHERE r.id = $1 FOR UPDATE OF r",
                )
                .await?;
            let Some(found) = tx.query_opt(&st, &[&id]).await? else {
                return Ok(false);
            };
            check_permissions(found.get::<_, Option<&str>>(0), &update.permissions)?;
            lock_namespaces(&tx, &update.permissions).await?;
            let st = tx
                .prepare_cached("UPDATE robots SET description = $2, disabled = $3, expires_ms = $4 WHERE id = $1")
                .await?;
            tx.execute(&st, &[&id, &update.description, &update.disabled, &update.expires_ms]).await?;
            let st = tx.prepare_cached("DELETE FROM robot_permissions WHERE robot_id = $1").await?;
            tx.execute(&st, &[&id]).await?;
            insert_permissions(&tx, id, &update.permissions).await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    async fn rotate_robot_secret(&self, id: i64, secret_hash: &str) -> Result<Option<i64>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE robots SET secret_hash = $2, generation = generation + 1 WHERE id = $1
                     RETURNING generation",
                )
                .await?;
            Ok(c.query_opt(&st, &[&id, &secret_hash]).await?.map(|r| r.get(0)))
        })
        .await
    }

    async fn delete_robot(&self, id: i64) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM robots WHERE id = $1").await?;
            Ok(c.execute(&st, &[&id]).await? == 1)
        })
        .await
    }
}
