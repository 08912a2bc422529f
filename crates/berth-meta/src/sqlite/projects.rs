//! [`ProjectStore`] on SQLite. Foreign keys are not enforced on SQLite
//! connections here, so deletes remove memberships, immutability rules
//! and robots explicitly.

use super::SqliteStore;
use crate::{Member, MetaError, Project, ProjectStore, Role};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

const COLUMNS: &str = "id, name, public, created_ms";

fn project_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project { id: r.get(0)?, name: r.get(1)?, public: r.get(2)?, created_ms: r.get(3)? })
}

fn role(id: i32) -> rusqlite::Result<Role> {
    Role::from_id(id).ok_or_else(|| rusqlite::Error::IntegralValueOutOfRange(0, i64::from(id)))
}

#[async_trait]
impl ProjectStore for SqliteStore {
    async fn create_project(
        &self,
        name: &str,
        public: bool,
        admin: Option<i64>,
        now_ms: i64,
    ) -> Result<Project, MetaError> {
        let name = name.to_owned();
        self.pool
            .write(move |tx| {
                let project = tx
                    .prepare_cached(&format!(
                        "INSERT INTO projects (name, public, created_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}"
                    ))?
                    .query_row(params![name, public, now_ms], project_from_row)
                    .optional()?
                    .ok_or_else(|| MetaError::Conflict(format!("project {name}")))?;
                if let Some(user) = admin {
                    tx.prepare_cached("INSERT INTO project_members (project_id, user_id, role) VALUES (?1, ?2, ?3)")?
                        .execute(params![project.id, user, Role::ProjectAdmin.id()])?;
                }
                Ok(project)
            })
            .await
    }

    async fn project_by_name(&self, name: &str) -> Result<Option<Project>, MetaError> {
        let name = name.to_owned();
        self.pool
            .read(move |c| {
                Ok(c.prepare_cached(&format!("SELECT {COLUMNS} FROM projects WHERE name = ?1"))?
                    .query_row([name], project_from_row)
                    .optional()?)
            })
            .await
    }

    async fn list_projects(&self, after: Option<&str>, limit: usize) -> Result<Vec<Project>, MetaError> {
        let after = after.unwrap_or("").to_owned();
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM projects WHERE name > ?1 ORDER BY name LIMIT ?2"
                ))?;
                let rows = st.query_map(params![after, limit as i64], project_from_row)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn set_project_public(&self, name: &str, public: bool) -> Result<bool, MetaError> {
        let name = name.to_owned();
        self.pool
            .write(move |tx| {
                Ok(tx
                    .prepare_cached("UPDATE projects SET public = ?2 WHERE name = ?1")?
                    .execute(params![name, public])?
                    == 1)
            })
            .await
    }

    async fn delete_project(&self, name: &str) -> Result<bool, MetaError> {
        let name = name.to_owned();
        self.pool
            .write(move |tx| {
                super::robots::delete_for_project(tx, &name)?;
                super::webhooks::delete_for_project(tx, &name)?;
                for table in ["project_members", "immutable_rules"] {
                    tx.prepare_cached(&format!(
                        "DELETE FROM {table} WHERE project_id = (SELECT id FROM projects WHERE name = ?1)"
                    ))?
                    .execute([&name])?;
                }
                Ok(tx.prepare_cached("DELETE FROM projects WHERE name = ?1")?.execute([&name])? == 1)
            })
            .await
    }

    async fn set_member(&self, project: &str, user_id: i64, role: Role) -> Result<bool, MetaError> {
        let project = project.to_owned();
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "INSERT INTO project_members (project_id, user_id, role)
                         SELECT p.id, u.id, ?3 FROM projects p, users u WHERE p.name = ?1 AND u.id = ?2
                         ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
                    )?
                    .execute(params![project, user_id, role.id()])?;
                Ok(n == 1)
            })
            .await
    }

    async fn remove_member(&self, project: &str, user_id: i64) -> Result<bool, MetaError> {
        let project = project.to_owned();
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "DELETE FROM project_members
                         WHERE project_id = (SELECT id FROM projects WHERE name = ?1) AND user_id = ?2",
                    )?
                    .execute(params![project, user_id])?;
                Ok(n == 1)
            })
            .await
    }

    async fn members(&self, project: &str) -> Result<Vec<Member>, MetaError> {
        let project = project.to_owned();
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT u.id, u.name, m.role FROM project_members m
                     JOIN projects p ON p.id = m.project_id JOIN users u ON u.id = m.user_id
                     WHERE p.name = ?1 ORDER BY u.name",
                )?;
                let rows = st.query_map([project], |r| {
                    Ok(Member { user_id: r.get(0)?, user_name: r.get(1)?, role: role(r.get(2)?)? })
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn project_access(
        &self,
        project: &str,
        user_id: Option<i64>,
    ) -> Result<Option<(Project, Option<Role>)>, MetaError> {
        let project = project.to_owned();
        self.pool
            .read(move |c| {
                let row = c
                    .prepare_cached(
                        "SELECT p.id, p.name, p.public, p.created_ms, m.role FROM projects p
                         LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?2
                         WHERE p.name = ?1",
                    )?
                    .query_row(params![project, user_id], |r| {
                        let role = r.get::<_, Option<i32>>(4)?.map(role).transpose()?;
                        Ok((project_from_row(r)?, role))
                    })
                    .optional()?;
                Ok(row)
            })
            .await
    }
}
