//! [`UserStore`] on PostgreSQL. Creating the first administrator takes a
//! transaction-scoped advisory lock, so nodes bootstrapping at once create
//! exactly one; a secret is inserted with `ON CONFLICT DO NOTHING` and read
//! back, so every node ends up with the first node's value.

use super::{PostgresStore, TxError};
use crate::postgres::pool::retrying;
use crate::{MetaError, NewUser, User, UserStore};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

const COLUMNS: &str = "id, name, password_hash, admin, disabled, created_ms, generation";

fn user_from_row(r: &Row) -> User {
    User {
        id: r.get(0),
        name: r.get(1),
        password_hash: r.get(2),
        admin: r.get(3),
        disabled: r.get(4),
        created_ms: r.get(5),
        generation: r.get(6),
    }
}

async fn insert(c: &impl GenericClient, u: &NewUser, now_ms: i64) -> Result<User, TxError> {
    let st = c
        .prepare_cached(&format!(
            "INSERT INTO users (name, password_hash, admin, created_ms) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}"
        ))
        .await?;
    let row = c.query_opt(&st, &[&u.name, &u.password_hash, &u.admin, &now_ms]).await?;
    row.map(|r| user_from_row(&r)).ok_or_else(|| MetaError::Conflict(format!("user {}", u.name)).into())
}

impl PostgresStore {
    async fn update_user(&self, sql: &str, name: &str, value: &(dyn ToSql + Sync)) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c.prepare_cached(sql).await?;
            Ok(c.execute(&st, &[&name, value]).await? == 1)
        })
        .await
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, u: &NewUser, now_ms: i64) -> Result<User, MetaError> {
        retrying(|| async { insert(&self.client().await?, u, now_ms).await }).await
    }

    async fn create_first_admin(&self, u: &NewUser, now_ms: i64) -> Result<Option<User>, MetaError> {
        let u = NewUser { admin: true, ..u.clone() };
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext('berth-meta first admin'))", &[]).await?;
            let admins: i64 =
                tx.query_one("SELECT count(*) FROM users WHERE admin AND NOT disabled", &[]).await?.get(0);
            if admins > 0 {
                return Ok(None);
            }
            let user = insert(&tx, &u, now_ms).await?;
            tx.commit().await?;
            Ok(Some(user))
        })
        .await
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>, MetaError> {
        let c = self.client().await?;
        let st =
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE name = $1")).await.map_err(TxError::from)?;
        Ok(c.query_opt(&st, &[&name]).await.map_err(TxError::from)?.map(|r| user_from_row(&r)))
    }

    async fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE name > $1 ORDER BY name LIMIT $2"))
            .await
            .map_err(TxError::from)?;
        let rows = c.query(&st, &[&after.unwrap_or(""), &(limit as i64)]).await.map_err(TxError::from)?;
        Ok(rows.iter().map(user_from_row).collect())
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, MetaError> {
        let sql = "UPDATE users SET password_hash = $2, generation = generation + 1 WHERE name = $1";
        self.update_user(sql, name, &password_hash).await
    }

    async fn set_admin(&self, name: &str, admin: bool) -> Result<bool, MetaError> {
        self.update_user("UPDATE users SET admin = $2 WHERE name = $1", name, &admin).await
    }

    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, MetaError> {
        self.update_user("UPDATE users SET disabled = $2 WHERE name = $1", name, &disabled).await
    }

    async fn delete_user(&self, name: &str) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c.prepare_cached("DELETE FROM users WHERE name = $1").await?;
            Ok(c.execute(&st, &[&name]).await? == 1)
        })
        .await
    }

    async fn count_admins(&self) -> Result<u64, MetaError> {
        let c = self.client().await?;
        let row =
            c.query_one("SELECT count(*) FROM users WHERE admin AND NOT disabled", &[]).await.map_err(TxError::from)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn secret_or_insert(&self, name: &str, candidate: &[u8], now_ms: i64) -> Result<Vec<u8>, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO secrets (name, value, created_ms) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                )
                .await?;
            c.execute(&st, &[&name, &candidate, &now_ms]).await?;
            let st = c.prepare_cached("SELECT value FROM secrets WHERE name = $1").await?;
            Ok(c.query_one(&st, &[&name]).await?.get(0))
        })
        .await
    }
}
