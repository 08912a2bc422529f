//! [`UserStore`] on SQLite. Writes run on the single writer connection, so
//! "create the first administrator if none exists" is one transaction with
//! no concurrent writer.

use super::SqliteStore;
use crate::{MetaError, NewUser, User, UserStore};
use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Transaction};

const COLUMNS: &str = "id, name, password_hash, admin, disabled, created_ms, generation";

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        password_hash: r.get(2)?,
        admin: r.get(3)?,
        disabled: r.get(4)?,
        created_ms: r.get(5)?,
        generation: r.get(6)?,
    })
}

fn insert(tx: &Transaction<'_>, u: &NewUser, now_ms: i64) -> Result<User, MetaError> {
    let inserted = tx
        .prepare_cached(&format!(
            "INSERT INTO users (name, password_hash, admin, created_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}"
        ))?
        .query_row(params![u.name, u.password_hash, u.admin, now_ms], user_from_row)
        .optional()?;
    inserted.ok_or_else(|| MetaError::Conflict(format!("user {}", u.name)))
}

impl SqliteStore {
    async fn update_user(
        &self,
        sql: &'static str,
        name: &str,
        value: rusqlite::types::Value,
    ) -> Result<bool, MetaError> {
        let name = name.to_owned();
        self.pool.write(move |tx| Ok(tx.prepare_cached(sql)?.execute(params![name, value])? == 1)).await
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, u: &NewUser, now_ms: i64) -> Result<User, MetaError> {
        let u = u.clone();
        self.pool.write(move |tx| insert(tx, &u, now_ms)).await
    }

    async fn create_first_admin(&self, u: &NewUser, now_ms: i64) -> Result<Option<User>, MetaError> {
        let u = NewUser { admin: true, ..u.clone() };
        self.pool
            .write(move |tx| {
                let admins: i64 = tx
                    .prepare_cached("SELECT count(*) FROM users WHERE admin AND NOT disabled")?
                    .query_row([], |r| r.get(0))?;
                if admins > 0 {
                    return Ok(None);
                }
                insert(tx, &u, now_ms).map(Some)
            })
            .await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>, MetaError> {
        let name = name.to_owned();
        self.pool
            .read(move |c| {
                Ok(c.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE name = ?1"))?
                    .query_row([name], user_from_row)
                    .optional()?)
            })
            .await
    }

    async fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>, MetaError> {
        let after = after.unwrap_or("").to_owned();
        self.pool
            .read(move |c| {
                let mut st =
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE name > ?1 ORDER BY name LIMIT ?2"))?;
                let rows = st.query_map(params![after, limit as i64], user_from_row)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, MetaError> {
        let sql = "UPDATE users SET password_hash = ?2, generation = generation + 1 WHERE name = ?1";
        self.update_user(sql, name, password_hash.to_owned().into()).await
    }

    async fn set_admin(&self, name: &str, admin: bool) -> Result<bool, MetaError> {
        self.update_user("UPDATE users SET admin = ?2 WHERE name = ?1", name, i64::from(admin).into()).await
    }

    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, MetaError> {
        self.update_user("UPDATE users SET disabled = ?2 WHERE name = ?1", name, i64::from(disabled).into()).await
    }

    async fn delete_user(&self, name: &str) -> Result<bool, MetaError> {
        let name = name.to_owned();
        self.pool
            .write(move |tx| {
                tx.prepare_cached(
                    "DELETE FROM project_members WHERE user_id = (SELECT id FROM users WHERE name = ?1)",
                )?
                .execute([&name])?;
                Ok(tx.prepare_cached("DELETE FROM users WHERE name = ?1")?.execute([&name])? == 1)
            })
            .await
    }

    async fn count_admins(&self) -> Result<u64, MetaError> {
        self.pool
            .read(|c| {
                let n: i64 = c
                    .prepare_cached("SELECT count(*) FROM users WHERE admin AND NOT disabled")?
                    .query_row([], |r| r.get(0))?;
                Ok(n as u64)
            })
            .await
    }

    async fn secret_or_insert(&self, name: &str, candidate: &[u8], now_ms: i64) -> Result<Vec<u8>, MetaError> {
        let (name, candidate) = (name.to_owned(), candidate.to_vec());
        self.pool
            .write(move |tx| {
                tx.prepare_cached(
                    "INSERT INTO secrets (name, value, created_ms) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
                )?
                .execute(params![name, candidate, now_ms])?;
                Ok(tx.prepare_cached("SELECT value FROM secrets WHERE name = ?1")?.query_row([name], |r| r.get(0))?)
            })
            .await
    }
}
