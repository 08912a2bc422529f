//! [`ImmutabilityStore`] on SQLite.

use super::SqliteStore;
use crate::immutability::invalid;
use crate::selectors::Decoration;
use crate::{ImmutabilityStore, ImmutableRule, MetaError, NewImmutableRule, RulePattern};
use async_trait::async_trait;
use berth_oci::{Digest, RepoName};
use rusqlite::params;

fn decoration(s: String) -> rusqlite::Result<Decoration> {
    Decoration::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("decoration {s}").into())
    })
}

fn rule_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ImmutableRule> {
    Ok(ImmutableRule {
        id: r.get(0)?,
        project: r.get(1)?,
        rule: NewImmutableRule {
            repository: RulePattern { decoration: decoration(r.get(2)?)?, pattern: r.get(3)? },
            tag: RulePattern { decoration: decoration(r.get(4)?)?, pattern: r.get(5)? },
            disabled: r.get(6)?,
        },
    })
}

const COLUMNS: &str = "i.id, p.name, i.repo_decoration, i.repo_pattern, i.tag_decoration, i.tag_pattern, i.disabled";

#[async_trait]
impl ImmutabilityStore for SqliteStore {
    async fn create_immutable_rule(
        &self,
        project: &str,
        rule: &NewImmutableRule,
    ) -> Result<Option<ImmutableRule>, MetaError> {
        rule.validate().map_err(invalid)?;
        let (project, rule) = (project.to_owned(), rule.clone());
        self.pool
            .write(move |tx| {
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO immutable_rules
                             (project_id, repo_decoration, repo_pattern, tag_decoration, tag_pattern, disabled)
                         SELECT id, ?2, ?3, ?4, ?5, ?6 FROM projects WHERE name = ?1",
                    )?
                    .execute(params![
                        project,
                        rule.repository.decoration.as_str(),
                        rule.repository.pattern,
                        rule.tag.decoration.as_str(),
                        rule.tag.pattern,
                        rule.disabled
                    ])?;
                Ok((inserted == 1).then(|| ImmutableRule { id: tx.last_insert_rowid(), project, rule }))
            })
            .await
    }

    async fn immutable_rules(&self, project: &str) -> Result<Vec<ImmutableRule>, MetaError> {
        let project = project.to_owned();
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM immutable_rules i JOIN projects p ON p.id = i.project_id
                     WHERE p.name = ?1 ORDER BY i.id"
                ))?;
                let rows = st.query_map([project], rule_from_row)?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }

    async fn update_immutable_rule(&self, project: &str, id: i64, rule: &NewImmutableRule) -> Result<bool, MetaError> {
        rule.validate().map_err(invalid)?;
        let (project, rule) = (project.to_owned(), rule.clone());
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "UPDATE immutable_rules SET repo_decoration = ?3, repo_pattern = ?4, tag_decoration = ?5,
                             tag_pattern = ?6, disabled = ?7
                         WHERE id = ?2 AND project_id = (SELECT id FROM projects WHERE name = ?1)",
                    )?
                    .execute(params![
                        project,
                        id,
                        rule.repository.decoration.as_str(),
                        rule.repository.pattern,
                        rule.tag.decoration.as_str(),
                        rule.tag.pattern,
                        rule.disabled
                    ])?;
                Ok(n == 1)
            })
            .await
    }

    async fn delete_immutable_rule(&self, project: &str, id: i64) -> Result<bool, MetaError> {
        let project = project.to_owned();
        self.pool
            .write(move |tx| {
                let n = tx
                    .prepare_cached(
                        "DELETE FROM immutable_rules
                         WHERE id = ?2 AND project_id = (SELECT id FROM projects WHERE name = ?1)",
                    )?
                    .execute(params![project, id])?;
                Ok(n == 1)
            })
            .await
    }

    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<String>, MetaError> {
        let (repo, digest) = (repo.to_string(), digest.to_string());
        self.pool
            .read(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id
                     WHERE r.name = ?1 AND t.digest = ?2 ORDER BY t.name",
                )?;
                let rows = st.query_map(params![repo, digest], |r| r.get(0))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            })
            .await
    }
}
