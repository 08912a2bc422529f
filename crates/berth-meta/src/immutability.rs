//! [`ImmutabilityStore`]: Harbor's tag immutability rules, per project.
//!
//! A tag is immutable when any enabled rule of its project selects its
//! repository and it (rules are OR-ed, as in Harbor). An immutable tag
//! that exists may not move to another manifest, and neither it nor the
//! manifest it points at may be deleted; pushing the same manifest again,
//! a new tag, or a manifest by digest (signatures, SBOMs) is allowed.

use crate::selectors::{repo_in_project, Decoration, Pattern, PatternError, Selector};
use crate::MetaError;
use async_trait::async_trait;
use berth_oci::{Digest, RepoName};

/// A decorated pattern as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulePattern {
    pub decoration: Decoration,
    pub pattern: String,
}

impl RulePattern {
    pub fn new(decoration: Decoration, pattern: &str) -> RulePattern {
        RulePattern { decoration, pattern: pattern.to_owned() }
    }

    fn compile(&self) -> Result<Pattern, PatternError> {
        Pattern::new(self.decoration, &self.pattern)
    }
}

/// A rule as created or updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImmutableRule {
    pub repository: RulePattern,
    pub tag: RulePattern,
    pub disabled: bool,
}

impl NewImmutableRule {
    /// Both patterns compile (stores refuse rules that do not).
    pub fn validate(&self) -> Result<(), PatternError> {
        self.repository.compile()?;
        self.tag.compile()?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImmutableRule {
    pub id: i64,
    pub project: String,
    pub rule: NewImmutableRule,
}

/// A project's enabled rules, compiled once.
#[derive(Debug, Clone, Default)]
pub struct TagRules(Vec<(i64, Selector)>);

impl TagRules {
    /// Compiles the enabled rules (a stored rule always compiles; one that
    /// does not is skipped rather than failing every push).
    pub fn new(rules: &[ImmutableRule]) -> TagRules {
        TagRules(
            rules
                .iter()
                .filter(|r| !r.rule.disabled)
                .filter_map(|r| {
                    let (repo, tag) = (r.rule.repository.compile().ok()?, r.rule.tag.compile().ok()?);
                    Some((r.id, Selector::new(repo, tag)))
                })
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The id of the first rule that makes `tag` of `repository` (the full
/// name, project included) immutable, if any. The retention job skips such tags.
pub fn immutable(rules: &TagRules, repository: &str, tag: &str) -> Option<i64> {
    let repo = repo_in_project(repository);
    rules.0.iter().find(|(_, s)| s.matches(repo, tag)).map(|(id, _)| *id)
}

/// A pattern that does not compile, as a store error.
pub(crate) fn invalid(e: PatternError) -> MetaError {
    MetaError::Invalid(e.to_string())
}

#[async_trait]
pub trait ImmutabilityStore: Send + Sync + 'static {
    /// Adds a rule to `project`; `None` if there is no such project,
    /// [`MetaError::Invalid`] if a pattern does not compile.
    async fn create_immutable_rule(
        &self,
        project: &str,
        rule: &NewImmutableRule,
    ) -> Result<Option<ImmutableRule>, MetaError>;
    /// The project's rules, in id order.
    async fn immutable_rules(&self, project: &str) -> Result<Vec<ImmutableRule>, MetaError>;
    /// Replaces rule `id` of `project`; false if it has no such rule.
    async fn update_immutable_rule(&self, project: &str, id: i64, rule: &NewImmutableRule) -> Result<bool, MetaError>;
    async fn delete_immutable_rule(&self, project: &str, id: i64) -> Result<bool, MetaError>;
    /// The tags pointing at `digest` in `repo`, in lexical order (a manifest
    /// deleted by digest takes its tags with it).
    async fn manifest_tags(&self, repo: &RepoName, digest: &Digest) -> Result<Vec<String>, MetaError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: i64, repo: &str, tag: (Decoration, &str), disabled: bool) -> ImmutableRule {
        ImmutableRule {
            id,
            project: "team-a".into(),
            rule: NewImmutableRule {
                repository: RulePattern::new(Decoration::Matches, repo),
                tag: RulePattern::new(tag.0, tag.1),
                disabled,
            },
        }
    }

    #[test]
    fn any_enabled_rule_makes_a_tag_immutable() {
        let rules = TagRules::new(&[
            rule(1, "**", (Decoration::Matches, "**"), true),
            rule(2, "api/*", (Decoration::Matches, "v*"), false),
            rule(3, "app", (Decoration::Excludes, "latest"), false),
        ]);
        assert_eq!(immutable(&rules, "team-a/api/server", "v1"), Some(2));
        assert_eq!(immutable(&rules, "team-a/api/server", "dev"), None, "rule 1 is disabled");
        assert_eq!(immutable(&rules, "team-a/app", "v1"), Some(3));
        assert_eq!(immutable(&rules, "team-a/app", "latest"), None);
        assert!(TagRules::new(&[]).is_empty());
    }
}
