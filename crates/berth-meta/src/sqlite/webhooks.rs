//! [`WebhookStore`] on SQLite. Deletes remove deliveries (and a project's
//! policies) explicitly rather than rely on `ON DELETE CASCADE`, which only
//! acts where the SQLite build enables foreign keys (the bundled one does).
//! Claims are once per cluster because every write runs on the one writer
//! connection, in an IMMEDIATE transaction.

use super::SqliteStore;
use crate::webhooks::{
    due_after, event_types_json, parse_event_types, parse_status, parse_targets, status_after, targets_json,
};
use crate::{
    DeliveryAttempt, MetaError, NewWebhookDelivery, NewWebhookPolicy, WebhookDelivery, WebhookPolicy, WebhookStore,
};
use async_trait::async_trait;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, ToSql};

const POLICIES: &str = "SELECT w.id, p.name, w.name, w.description, w.enabled, w.event_types, w.targets, w.creator,
        w.created_ms, w.updated_ms
    FROM webhook_policies w JOIN projects p ON p.id = w.project_id";

const DELIVERIES: &str = "SELECT d.id, d.policy_id, p.name, d.target, d.event_type, d.payload, d.status, d.attempts,
        d.due_ms, d.last_status, d.last_error, d.created_ms, d.updated_ms
    FROM webhook_deliveries d JOIN webhook_policies w ON w.id = d.policy_id JOIN projects p ON p.id = w.project_id";

/// A JSON or status column that does not parse, as a row error.
fn bad(e: MetaError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

fn policy_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookPolicy> {
    Ok(WebhookPolicy {
        id: r.get(0)?,
        project: r.get(1)?,
        name: r.get(2)?,
        description: r.get(3)?,
        enabled: r.get(4)?,
        event_types: parse_event_types(&r.get::<_, String>(5)?).map_err(bad)?,
        targets: parse_targets(&r.get::<_, String>(6)?).map_err(bad)?,
        creator: r.get(7)?,
        created_ms: r.get(8)?,
        updated_ms: r.get(9)?,
    })
}

fn delivery_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookDelivery> {
    Ok(WebhookDelivery {
        id: r.get(0)?,
        policy_id: r.get(1)?,
        project: r.get(2)?,
        target: r.get(3)?,
        event_type: r.get(4)?,
        payload: r.get(5)?,
        status: parse_status(&r.get::<_, String>(6)?).map_err(bad)?,
        attempts: r.get(7)?,
        due_ms: r.get(8)?,
        last_status: r.get(9)?,
        last_error: r.get(10)?,
        created_ms: r.get(11)?,
        updated_ms: r.get(12)?,
    })
}

fn policies(c: &Connection, filter: &str, args: &[&dyn ToSql]) -> Result<Vec<WebhookPolicy>, MetaError> {
    let mut st = c.prepare_cached(&format!("{POLICIES} {filter} ORDER BY w.id"))?;
    let rows = st.query_map(args, policy_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A unique (project, name) violation as [`MetaError::Conflict`].
fn conflict_on_unique(e: rusqlite::Error, project: &str, name: &str) -> MetaError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => MetaError::Conflict(format!("webhook policy {name} in {project}")),
        _ => e.into(),
    }
}

/// Removes project `name`'s policies and their deliveries, inside the
/// caller's transaction (`delete_project`), before the project row goes.
pub(super) fn delete_for_project(c: &Connection, name: &str) -> Result<(), MetaError> {
    c.prepare_cached(
        "DELETE FROM webhook_deliveries WHERE policy_id IN
         (SELECT w.id FROM webhook_policies w JOIN projects p ON p.id = w.project_id WHERE p.name = ?1)",
    )?
    .execute([name])?;
    c.prepare_cached("DELETE FROM webhook_policies WHERE project_id = (SELECT id FROM projects WHERE name = ?1)")?
        .execute([name])?;
    Ok(())
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook_policy(&self, policy: &NewWebhookPolicy, now_ms: i64) -> Result<WebhookPolicy, MetaError> {
        let p = policy.clone();
        self.pool
            .write(move |tx| {
                let project_id: i64 = tx
                    .prepare_cached("SELECT id FROM projects WHERE name = ?1")?
                    .query_row([&p.project], |r| r.get(0))
                    .optional()?
                    .ok_or_else(|| MetaError::NotFound(format!("project {}", p.project)))?;
                let id: i64 = tx
                    .prepare_cached(
                        "INSERT INTO webhook_policies (project_id, name, description, enabled, event_types, targets,
                            creator, created_ms, updated_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                         ON CONFLICT (project_id, name) DO NOTHING RETURNING id",
                    )?
                    .query_row(
                        params![
                            project_id,
                            p.name,
                            p.description,
                            p.enabled,
                            event_types_json(&p.event_types),
                            targets_json(&p.targets),
                            p.creator,
                            now_ms
                        ],
                        |r| r.get(0),
                    )
                    .optional()?
                    .ok_or_else(|| MetaError::Conflict(format!("webhook policy {} in {}", p.name, p.project)))?;
                Ok(p.stored(id, now_ms))
            })
            .await
    }

    async fn update_webhook_policy(
        &self,
        project: &str,
        id: i64,
        policy: &NewWebhookPolicy,
        now_ms: i64,
    ) -> Result<Option<WebhookPolicy>, MetaError> {
        let (project, p) = (project.to_owned(), policy.clone());
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE webhook_policies SET name = ?3, description = ?4, enabled = ?5, event_types = ?6,
                            targets = ?7, updated_ms = ?8
                         WHERE id = ?1 AND project_id = (SELECT id FROM projects WHERE name = ?2)",
                    )?
                    .execute(params![
                        id,
                        project,
                        p.name,
                        p.description,
                        p.enabled,
                        event_types_json(&p.event_types),
                        targets_json(&p.targets),
                        now_ms
                    ])
                    .map_err(|e| conflict_on_unique(e, &project, &p.name))?;
                if n == 0 {
                    return Ok(None);
                }
                Ok(policies(tx, "WHERE w.id = ?1", &[&id])?.pop())
            })
            .await
    }

    async fn webhook_policy(&self, id: i64) -> Result<Option<WebhookPolicy>, MetaError> {
        self.pool.read(move |c| Ok(policies(c, "WHERE w.id = ?1", &[&id])?.pop())).await
    }

    async fn webhook_policies(&self, project: &str) -> Result<Vec<WebhookPolicy>, MetaError> {
        let project = project.to_owned();
        self.pool.read(move |c| policies(c, "WHERE p.name = ?1", &[&project])).await
    }

    async fn enabled_webhook_policies(&self) -> Result<Vec<WebhookPolicy>, MetaError> {
        self.pool.read(move |c| policies(c, "WHERE w.enabled", &[])).await
    }

    async fn delete_webhook_policy(&self, project: &str, id: i64) -> Result<bool, MetaError> {
        let project = project.to_owned();
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "DELETE FROM webhook_policies
                         WHERE id = ?1 AND project_id = (SELECT id FROM projects WHERE name = ?2)",
                    )?
                    .execute(params![id, project])?;
                if n == 1 {
                    tx.prepare_cached("DELETE FROM webhook_deliveries WHERE policy_id = ?1")?.execute([id])?;
                }
                Ok(n == 1)
            })
            .await
    }

    async fn enqueue_webhook_deliveries(
        &self,
        deliveries: &[NewWebhookDelivery],
        now_ms: i64,
    ) -> Result<(), MetaError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let deliveries = deliveries.to_vec();
        self.pool
            .write(move |tx| {
                // One transaction: all or none. One writer: no policy can
                // be deleted between the EXISTS and the commit.
                let mut st = tx.prepare_cached(
                    "INSERT INTO webhook_deliveries (policy_id, target, event_type, payload, status, due_ms,
                        created_ms, updated_ms)
                     SELECT ?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?6
                     WHERE EXISTS (SELECT 1 FROM webhook_policies WHERE id = ?1)",
                )?;
                for d in &deliveries {
                    st.execute(params![d.policy_id, d.target, d.event_type, d.payload, d.due_ms, now_ms])?;
                }
                Ok(())
            })
            .await
    }

    async fn claim_webhook_deliveries(
        &self,
        node: &str,
        now_ms: i64,
        claim_ms: i64,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, MetaError> {
        let node = node.to_owned();
        let until = now_ms.saturating_add(claim_ms.max(0));
        self.pool
            .write(move |tx| {
                let mut st = tx.prepare_cached(&format!(
                    "{DELIVERIES} WHERE d.status = 'pending' AND d.due_ms <= ?1
                     AND (d.claimed_until_ms IS NULL OR d.claimed_until_ms <= ?1)
                     ORDER BY d.due_ms, d.id LIMIT ?2"
                ))?;
                let due: Vec<WebhookDelivery> =
                    st.query_map(params![now_ms, limit as i64], delivery_from_row)?.collect::<Result<_, _>>()?;
                let mut claim = tx.prepare_cached(
                    "UPDATE webhook_deliveries SET claimed_by = ?2, claimed_until_ms = ?3 WHERE id = ?1",
                )?;
                for d in &due {
                    claim.execute(params![d.id, node, until])?;
                }
                Ok(due)
            })
            .await
    }

    async fn finish_webhook_delivery(
        &self,
        id: i64,
        attempt: &DeliveryAttempt,
        now_ms: i64,
    ) -> Result<bool, MetaError> {
        let status = status_after(attempt).as_str();
        let due = due_after(attempt, now_ms);
        let (http, error) = (attempt.http_status, attempt.error.clone());
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1, due_ms = ?3,
                            last_status = ?4, last_error = ?5, claimed_by = NULL, claimed_until_ms = NULL,
                            updated_ms = ?6
                         WHERE id = ?1",
                    )?
                    .execute(params![id, status, due, http, error, now_ms])?;
                Ok(n == 1)
            })
            .await
    }

    async fn webhook_deliveries(
        &self,
        policy_id: i64,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>, MetaError> {
        let before = before.unwrap_or(i64::MAX);
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "{DELIVERIES} WHERE d.policy_id = ?1 AND d.id < ?2 ORDER BY d.id DESC LIMIT ?3"
                ))?;
                let rows = st.query_map(params![policy_id, before, limit as i64], delivery_from_row)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn prune_webhook_deliveries(&self, before_ms: i64) -> Result<u64, MetaError> {
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached("DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_ms < ?1")?
                    .execute([before_ms])?;
                Ok(n as u64)
            })
            .await
    }
}
