//! [`WebhookStore`] on PostgreSQL. Policies cascade with their project and
//! deliveries with their policy through foreign keys. Claims are once per
//! cluster: due rows are locked `FOR UPDATE SKIP LOCKED` and claimed in the
//! same statement, so concurrent claimers on any node take disjoint rows.

use super::{PostgresStore, TxError};
use crate::postgres::pool::retrying;
use crate::webhooks::{
    due_after, event_types_json, parse_event_types, parse_status, parse_targets, status_after, targets_json,
};
use crate::{
    DeliveryAttempt, MetaError, NewWebhookDelivery, NewWebhookPolicy, WebhookDelivery, WebhookPolicy, WebhookStore,
};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

const POLICY_COLUMNS: &str =
    "w.id, p.name, w.name, w.description, w.enabled, w.event_types, w.targets, w.creator, w.created_ms, w.updated_ms";

const DELIVERY_COLUMNS: &str = "d.id, d.policy_id, p.name, d.target, d.event_type, d.payload, d.status, d.attempts,
    d.due_ms, d.last_status, d.last_error, d.created_ms, d.updated_ms";

/// `d` (deliveries, or rows just claimed) with their policy's project.
const DELIVERY_JOIN: &str = "JOIN webhook_policies w ON w.id = d.policy_id JOIN projects p ON p.id = w.project_id";

fn policy_from_row(r: &Row) -> Result<WebhookPolicy, TxError> {
    Ok(WebhookPolicy {
        id: r.get(0),
        project: r.get(1),
        name: r.get(2),
        description: r.get(3),
        enabled: r.get(4),
        event_types: parse_event_types(r.get(5))?,
        targets: parse_targets(r.get(6))?,
        creator: r.get(7),
        created_ms: r.get(8),
        updated_ms: r.get(9),
    })
}

fn delivery_from_row(r: &Row) -> Result<WebhookDelivery, TxError> {
    Ok(WebhookDelivery {
        id: r.get(0),
        policy_id: r.get(1),
        project: r.get(2),
        target: r.get::<_, i32>(3) as u32,
        event_type: r.get(4),
        payload: r.get(5),
        status: parse_status(r.get(6))?,
        attempts: r.get::<_, i32>(7) as u32,
        due_ms: r.get(8),
        last_status: r.get::<_, Option<i32>>(9).map(|s| s as u16),
        last_error: r.get(10),
        created_ms: r.get(11),
        updated_ms: r.get(12),
    })
}

async fn policies(
    c: &impl GenericClient,
    filter: &str,
    args: &[&(dyn ToSql + Sync)],
) -> Result<Vec<WebhookPolicy>, TxError> {
    let st = c
        .prepare_cached(&format!(
            "SELECT {POLICY_COLUMNS} FROM webhook_policies w JOIN projects p ON p.id = w.project_id
             {filter} ORDER BY w.id"
        ))
        .await?;
    c.query(&st, args).await?.iter().map(policy_from_row).collect()
}

/// Target indexes are `u32` in the API, `INTEGER` here.
fn target_index(t: u32) -> Result<i32, TxError> {
    i32::try_from(t).map_err(|_| MetaError::Invalid(format!("webhook target index {t}")).into())
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn create_webhook_policy(&self, policy: &NewWebhookPolicy, now_ms: i64) -> Result<WebhookPolicy, MetaError> {
        let p = policy;
        let (types, targets) = (event_types_json(&p.event_types), targets_json(&p.targets));
        retrying(|| async {
            let mut c = self.client().await?;
            let tx = c.transaction().await?;
            // FOR SHARE: a concurrent delete_project waits, so no policy outlives its project.
            let st = tx.prepare_cached("SELECT id FROM projects WHERE name = $1 FOR SHARE").await?;
            let Some(project) = tx.query_opt(&st, &[&p.project]).await? else {
                return Err(MetaError::NotFound(format!("project {}", p.project)).into());
            };
            let project_id: i64 = project.get(0);
            let st = tx
                .prepare_cached(
                    "INSERT INTO webhook_policies (project_id, name, description, enabled, event_types, targets,
                        creator, created_ms, updated_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                     ON CONFLICT (project_id, name) DO NOTHING RETURNING id",
                )
                .await?;
            let args: [&(dyn ToSql + Sync); 8] =
                [&project_id, &p.name, &p.description, &p.enabled, &types, &targets, &p.creator, &now_ms];
            let Some(row) = tx.query_opt(&st, &args).await? else {
                return Err(MetaError::Conflict(format!("webhook policy {} in {}", p.name, p.project)).into());
            };
            tx.commit().await?;
            Ok(p.clone().stored(row.get(0), now_ms))
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
        let p = policy;
        let (types, targets) = (event_types_json(&p.event_types), targets_json(&p.targets));
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(&format!(
                    "UPDATE webhook_policies w SET name = $3, description = $4, enabled = $5, event_types = $6,
                        targets = $7, updated_ms = $8
                     FROM projects p WHERE w.id = $1 AND p.id = w.project_id AND p.name = $2
                     RETURNING {POLICY_COLUMNS}"
                ))
                .await?;
            let args: [&(dyn ToSql + Sync); 8] =
                [&id, &project, &p.name, &p.description, &p.enabled, &types, &targets, &now_ms];
            match c.query_opt(&st, &args).await {
                Ok(row) => row.as_ref().map(policy_from_row).transpose(),
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    Err(MetaError::Conflict(format!("webhook policy {} in {project}", p.name)).into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn webhook_policy(&self, id: i64) -> Result<Option<WebhookPolicy>, MetaError> {
        let c = self.client().await?;
        Ok(policies(&c, "WHERE w.id = $1", &[&id]).await?.pop())
    }

    async fn webhook_policies(&self, project: &str) -> Result<Vec<WebhookPolicy>, MetaError> {
        let c = self.client().await?;
        Ok(policies(&c, "WHERE p.name = $1", &[&project]).await?)
    }

    async fn enabled_webhook_policies(&self) -> Result<Vec<WebhookPolicy>, MetaError> {
        let c = self.client().await?;
        Ok(policies(&c, "WHERE w.enabled", &[]).await?)
    }

    async fn delete_webhook_policy(&self, project: &str, id: i64) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "DELETE FROM webhook_policies w USING projects p
                     WHERE w.id = $1 AND p.id = w.project_id AND p.name = $2",
                )
                .await?;
            Ok(c.execute(&st, &[&id, &project]).await? == 1)
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
        let policy_ids: Vec<i64> = deliveries.iter().map(|d| d.policy_id).collect();
        let targets: Vec<i32> = deliveries.iter().map(|d| target_index(d.target)).collect::<Result<_, _>>()?;
        let types: Vec<&str> = deliveries.iter().map(|d| d.event_type.as_str()).collect();
        let payloads: Vec<&str> = deliveries.iter().map(|d| d.payload.as_str()).collect();
        let due: Vec<i64> = deliveries.iter().map(|d| d.due_ms).collect();
        retrying(|| async {
            let c = self.client().await?;
            // One statement: all or none. The live policies are locked FOR
            // KEY SHARE first, so a policy deleted meanwhile is either gone
            // (skipped) or waits and then cascades over what we inserted; a
            // plain EXISTS could instead fail the insert on the foreign key.
            let st = c
                .prepare_cached(
                    "WITH live AS (SELECT id FROM webhook_policies WHERE id = ANY($1) ORDER BY id FOR KEY SHARE)
                     INSERT INTO webhook_deliveries (policy_id, target, event_type, payload, status, due_ms,
                        created_ms, updated_ms)
                     SELECT d.policy_id, d.target, d.event_type, d.payload, 'pending', d.due_ms, $6, $6
                     FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::bigint[])
                          WITH ORDINALITY AS d(policy_id, target, event_type, payload, due_ms, n)
                     WHERE d.policy_id IN (SELECT id FROM live)
                     ORDER BY d.n",
                )
                .await?;
            c.execute(&st, &[&policy_ids, &targets, &types, &payloads, &due, &now_ms]).await?;
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
        let until = now_ms.saturating_add(claim_ms.max(0));
        retrying(|| async {
            let c = self.client().await?;
            // The due rows are picked in a CTE (always evaluated once) and
            // locked SKIP LOCKED: a concurrent claimer skips them, and one
            // that waited re-checks the claim and finds it taken.
            let st = c
                .prepare_cached(&format!(
                    "WITH due AS (
                         SELECT id FROM webhook_deliveries
                         WHERE status = 'pending' AND due_ms <= $2
                           AND (claimed_until_ms IS NULL OR claimed_until_ms <= $2)
                         ORDER BY due_ms, id LIMIT $3 FOR UPDATE SKIP LOCKED
                     ), claimed AS (
                         UPDATE webhook_deliveries SET claimed_by = $1, claimed_until_ms = $4
                         WHERE id IN (SELECT id FROM due) RETURNING *
                     )
                     SELECT {DELIVERY_COLUMNS} FROM claimed d {DELIVERY_JOIN} ORDER BY d.due_ms, d.id"
                ))
                .await?;
            c.query(&st, &[&node, &now_ms, &(limit as i64), &until]).await?.iter().map(delivery_from_row).collect()
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
        let http = attempt.http_status.map(i32::from);
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, due_ms = $3,
                        last_status = $4, last_error = $5, claimed_by = NULL, claimed_until_ms = NULL,
                        updated_ms = $6
                     WHERE id = $1",
                )
                .await?;
            Ok(c.execute(&st, &[&id, &status, &due, &http, &attempt.error, &now_ms]).await? == 1)
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
        let c = self.client().await?;
        let st = c
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d {DELIVERY_JOIN}
                 WHERE d.policy_id = $1 AND d.id < $2 ORDER BY d.id DESC LIMIT $3"
            ))
            .await
            .map_err(TxError::from)?;
        let rows = c.query(&st, &[&policy_id, &before, &(limit as i64)]).await.map_err(TxError::from)?;
        Ok(rows.iter().map(delivery_from_row).collect::<Result<_, _>>()?)
    }

    async fn prune_webhook_deliveries(&self, before_ms: i64) -> Result<u64, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached("DELETE FROM webhook_deliveries WHERE status <> 'pending' AND updated_ms < $1")
                .await?;
            Ok(c.execute(&st, &[&before_ms]).await?)
        })
        .await
    }
}
