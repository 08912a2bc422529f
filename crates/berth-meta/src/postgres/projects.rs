//! [`ProjectStore`] on PostgreSQL (memberships and project robots cascade
//! with their project or user through foreign keys).

use super::{PostgresStore, TxError};
use crate::postgres::pool::retrying;
use crate::{Member, MetaError, Project, ProjectStore, Role};
use async_trait::async_trait;
use tokio_postgres::Row;

const COLUMNS: &str = "id, name, public, created_ms";

fn project_from_row(r: &Row) -> Project {
    Project { id: r.get(0), name: r.get(1), public: r.get(2), created_ms: r.get(3) }
}

fn role(id: i32) -> Result<Role, TxError> {
    Role::from_id(id).ok_or_else(|| MetaError::Database(format!("unknown role id {id}")).into())
}

#[async_trait]
impl ProjectStore for PostgresStore {
    async fn create_project(
        &self,
        name: &str,
        public: bool,
        admin: Option<i64>,
        now_ms: i64,
    ) -> Result<Project, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare_cached(&format!(
                    "INSERT INTO projects (name, public, created_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}"
                ))
                .await?;
            let Some(row) = tx.query_opt(&st, &[&name, &public, &now_ms]).await? else {
                return Err(MetaError::Conflict(format!("project {name}")).into());
            };
            let project = project_from_row(&row);
            if let Some(user) = admin {
                let st = tx
                    .prepare_cached("INSERT INTO project_members (project_id, user_id, role) VALUES ($1, $2, $3)")
                    .await?;
                tx.execute(&st, &[&project.id, &user, &Role::ProjectAdmin.id()]).await?;
            }
            tx.commit().await?;
            Ok(project)
        })
        .await
    }

    async fn project_by_name(&self, name: &str) -> Result<Option<Project>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!("SELECT {COLUMNS} FROM projects WHERE name = $1"))
            .await
            .map_err(TxError::from)?;
        Ok(c.query_opt(&st, &[&name]).await.map_err(TxError::from)?.map(|r| project_from_row(&r)))
    }

    async fn list_projects(&self, after: Option<&str>, limit: usize) -> Result<Vec<Project>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!("SELECT {COLUMNS} FROM projects WHERE name > $1 ORDER BY name LIMIT $2"))
            .await
            .map_err(TxError::from)?;
        let rows = c.query(&st, &[&after.unwrap_or(""), &(limit as i64)]).await.map_err(TxError::from)?;
        Ok(rows.iter().map(project_from_row).collect())
    }

    async fn set_project_public(&self, name: &str, public: bool) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c.prepare_cached("UPDATE projects SET public = $2 WHERE name = $1").await?;
            Ok(c.execute(&st, &[&name, &public]).await? == 1)
        })
        .await
    }

    async fn delete_project(&self, name: &str) -> Result<bool, MetaError> {
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            let st = tx.prepare_cached("DELETE FROM projects WHERE name = $1").await?;
            let deleted = tx.execute(&st, &[&name]).await? == 1;
            super::robots::delete_permissions_in(&tx, name).await?;
            tx.commit().await?;
            Ok(deleted)
        })
        .await
    }

    async fn set_member(&self, project: &str, user_id: i64, role: Role) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO project_members (project_id, user_id, role)
                     SELECT p.id, u.id, $3 FROM projects p, users u WHERE p.name = $1 AND u.id = $2
                     ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .await?;
            Ok(c.execute(&st, &[&project, &user_id, &role.id()]).await? == 1)
        })
        .await
    }

    async fn remove_member(&self, project: &str, user_id: i64) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "DELETE FROM project_members
                     WHERE project_id = (SELECT id FROM projects WHERE name = $1) AND user_id = $2",
                )
                .await?;
            Ok(c.execute(&st, &[&project, &user_id]).await? == 1)
        })
        .await
    }

    async fn members(&self, project: &str) -> Result<Vec<Member>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT u.id, u.name, m.role FROM project_members m
                 JOIN projects p ON p.id = m.project_id JOIN users u ON u.id = m.user_id
                 WHERE p.name = $1 ORDER BY u.name",
            )
            .await
            .map_err(TxError::from)?;
        let rows = c.query(&st, &[&project]).await.map_err(TxError::from)?;
        rows.iter()
            .map(|r| Ok(Member { user_id: r.get(0), user_name: r.get(1), role: role(r.get(2))? }))
            .collect::<Result<_, TxError>>()
            .map_err(MetaError::from)
    }

    async fn project_access(
        &self,
        project: &str,
        user_id: Option<i64>,
    ) -> Result<Option<(Project, Option<Role>)>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT p.id, p.name, p.public, p.created_ms, m.role FROM projects p
                 LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = $2
                 WHERE p.name = $1",
            )
            .await
            .map_err(TxError::from)?;
        let Some(row) = c.query_opt(&st, &[&project, &user_id]).await.map_err(TxError::from)? else {
            return Ok(None);
        };
        let role = row.get::<_, Option<i32>>(4).map(role).transpose()?;
        Ok(Some((project_from_row(&row), role)))
    }
}
