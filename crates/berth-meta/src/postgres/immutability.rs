//! [`ImmutabilityStore`] on PostgreSQL (rules cascade with their project).

use super::{PostgresStore, TxError};
use crate::immutability::invalid;
use crate::postgres::pool::retrying;
use crate::selectors::Decoration;
use crate::{ImmutabilityStore, ImmutableRule, MetaError, NewImmutableRule, RulePattern};
use async_trait::async_trait;
use berth_oci::{Digest, RepoName};
use tokio_postgres::Row;

fn decoration(s: &str) -> Result<Decoration, TxError> {
    Decoration::parse(s).ok_or_else(|| MetaError::Database(format!("unknown decoration {s}")).into())
}

fn rule_from_row(r: &Row) -> Result<ImmutableRule, TxError> {
    Ok(ImmutableRule {
        id: r.get(0),
        project: r.get(1),
        rule: NewImmutableRule {
            repository: RulePattern { decoration: decoration(r.get(2))?, pattern: r.get(3) },
            tag: RulePattern { decoration: decoration(r.get(4))?, pattern: r.get(5) },
            disabled: r.get(6),
        },
    })
}

#[async_trait]
impl ImmutabilityStore for PostgresStore {
    async fn create_immutable_rule(
        &self,
        project: &str,
        rule: &NewImmutableRule,
    ) -> Result<Option<ImmutableRule>, MetaError> {
        rule.validate().map_err(invalid)?;
        let (repo_dec, tag_dec) = (rule.repository.decoration.as_str(), rule.tag.decoration.as_str());
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "INSERT INTO immutable_rules
                         (project_id, repo_decoration, repo_pattern, tag_decoration, tag_pattern, disabled)
                     SELECT id, $2, $3, $4, $5, $6 FROM projects WHERE name = $1 RETURNING id",
                )
                .await?;
            let row = c
                .query_opt(
                    &st,
                    &[&project, &repo_dec, &rule.repository.pattern, &tag_dec, &rule.tag.pattern, &rule.disabled],
                )
                .await?;
            Ok(row.map(|r| ImmutableRule { id: r.get(0), project: project.to_owned(), rule: rule.clone() }))
        })
        .await
    }

    async fn immutable_rules(&self, project: &str) -> Result<Vec<ImmutableRule>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT i.id, p.name, i.repo_decoration, i.repo_pattern, i.tag_decoration, i.tag_pattern, i.disabled
                 FROM immutable_rules i JOIN projects p ON p.id = i.project_id WHERE p.name = $1 ORDER BY i.id",
            )
            .await
            .map_err(TxError::from)?;
        let rows = c.query(&st, &[&project]).await.map_err(TxError::from)?;
        rows.iter().map(rule_from_row).collect::<Result<_, TxError>>().map_err(MetaError::from)
    }

    async fn update_immutable_rule(&self, project: &str, id: i64, rule: &NewImmutableRule) -> Result<bool, MetaError> {
        rule.validate().map_err(invalid)?;
        let (repo_dec, tag_dec) = (rule.repository.decoration.as_str(), rule.tag.decoration.as_str());
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "UPDATE immutable_rules SET repo_decoration = $3, repo_pattern = $4, tag_decoration = $5,
                         tag_pattern = $6, disabled = $7
                     WHERE id = $2 AND project_id = (SELECT id FROM projects WHERE name = $1)",
                )
                .await?;
            let n = c
                .execute(
                    &st,
                    &[&project, &id, &repo_dec, &rule.repository.pattern, &tag_dec, &rule.tag.pattern, &rule.disabled],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete_immutable_rule(&self, project: &str, id: i64) -> Result<bool, MetaError> {
        retrying(|| async {
            let c = self.client().await?;
            let st = c
                .prepare_cached(
                    "DELETE FROM immutable_rules WHERE id = $2 AND project_id = (SELECT id FROM projects WHERE name = $1)",
                )
                .await?;
            Ok(c.execute(&st, &[&project, &id]).await? == 1)
        })
        .await
    }

    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<String>, MetaError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
                 WHERE r.name = $1 AND t.digest = $2 ORDER BY t.name",
            )
            .await
            .map_err(TxError::from)?;
        let rows = c.query(&st, &[&repo.as_str(), &digest.as_str()]).await.map_err(TxError::from)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
