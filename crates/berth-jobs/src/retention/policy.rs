//! A project's tag retention policy in Harbor's JSON shape (the body of
//! Harbor's `POST /retentions`), so policies carry over:
//!
//! ```json
//! {"algorithm": "or",
//!  "rules": [{"template": "latestPushedK", "params": {"latestPushedK": 10},
//!             "tag_selectors": [{"kind": "doublestar", "decoration": "matches",
//!                                "pattern": "**", "extras": "{\"untagged\":true}"}],
//!             "scope_selectors": {"repository": [{"kind": "doublestar",
//!                                 "decoration": "repoMatches", "pattern": "**"}]}}],
//!  "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 0 * * *"}}}
//! ```
//!
//! [`Policy::compile`] checks it and turns it into [`Rule`]s the planner
//! uses. Semantics follow Harbor's "Create Tag Retention Rules" page
//! (goharbor.io/docs/latest/working-with-projects/working-with-images/
//! create-tag-retention-rules/): at most 15 rules, OR between them, a rule
//! picks repositories, then tags, then how many / how recent to retain.

use super::selector::{Pattern, PatternError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Harbor's limit on rules per project.
pub const MAX_RULES: usize = 15;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// Harbor's `{"level": "project", "ref": <id>}`; kept, not used (the
    /// store keys policies by project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleSpec {
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub template: String,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub tag_selectors: Vec<SelectorSpec>,
    #[serde(default)]
    pub scope_selectors: BTreeMap<String, Vec<SelectorSpec>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelectorSpec {
    #[serde(default = "doublestar")]
    pub kind: String,
    /// `matches`/`excludes` for tags, `repoMatches`/`repoExcludes` for repositories.
    pub decoration: String,
    pub pattern: String,
    /// Harbor keeps a JSON object in a string here: `{"untagged":true}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<String>,
}

fn doublestar() -> String {
    "doublestar".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub settings: TriggerSettings,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
}

/// How much of the selected artifacts a rule retains (Harbor's templates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The N most recently pushed, per repository.
    LatestPushed(usize),
    /// The N most recently pulled, per repository.
    LatestPulled(usize),
    /// Pushed within the last N days.
    PushedWithinDays(u32),
    /// Pulled within the last N days.
    PulledWithinDays(u32),
    Always,
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Template::LatestPushed(n) => write!(f, "latestPushedK {n}"),
            Template::LatestPulled(n) => write!(f, "latestPulledN {n}"),
            Template::PushedWithinDays(n) => write!(f, "nDaysSinceLastPush {n}"),
            Template::PulledWithinDays(n) => write!(f, "nDaysSinceLastPull {n}"),
            Template::Always => f.write_str("always"),
        }
    }
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its place in the policy's `rules` (from 0), for reasons.
    pub index: usize,
    pub template: Template,
    pub repo_matches: Vec<Pattern>,
    pub repo_excludes: Vec<Pattern>,
    pub tag_matches: Vec<Pattern>,
    pub tag_excludes: Vec<Pattern>,
    /// Untagged artifacts are among those the rule selects.
    pub untagged: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid retention policy JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0} rules: at most {MAX_RULES}")]
    TooManyRules(usize),
    #[error("algorithm {0:?} is not supported (only \"or\")")]
    Algorithm(String),
    #[error("rules[{0}]: {1}")]
    Rule(usize, String),
    #[error("rules[{0}]: {1}")]
    Pattern(usize, PatternError),
}

impl Policy {
    pub fn parse(json: &str) -> Result<Policy, PolicyError> {
        Ok(serde_json::from_str(json)?)
    }

    /// The schedule, if any: `trigger.settings.cron`.
    pub fn cron(&self) -> Option<&str> {
        self.trigger.as_ref()?.settings.cron.as_deref().filter(|c| !c.trim().is_empty())
    }

    /// The enabled rules, checked.
    pub fn compile(&self) -> Result<Vec<Rule>, PolicyError> {
        if self.rules.len() > MAX_RULES {
            return Err(PolicyError::TooManyRules(self.rules.len()));
        }
        if let Some(a) = self.algorithm.as_deref().filter(|a| !a.eq_ignore_ascii_case("or")) {
            return Err(PolicyError::Algorithm(a.to_owned()));
        }
        let mut out = Vec::new();
        for (i, spec) in self.rules.iter().enumerate() {
            if !spec.disabled {
                out.push(spec.compile(i).map_err(|e| match e {
                    RuleError::Pattern(p) => PolicyError::Pattern(i, p),
                    RuleError::Other(m) => PolicyError::Rule(i, m),
                })?);
            }
        }
        Ok(out)
    }
}

enum RuleError {
    Pattern(PatternError),
    Other(String),
}

impl From<PatternError> for RuleError {
    fn from(e: PatternError) -> Self {
        RuleError::Pattern(e)
    }
}

impl RuleSpec {
    fn param(&self) -> Result<u64, RuleError> {
        let v = self
            .params
            .get(&self.template)
            .ok_or_else(|| RuleError::Other(format!("{} needs params.{}", self.template, self.template)))?;
        // Harbor's UI sends numbers; accept numeric strings too.
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| RuleError::Other(format!("params.{} must be a non-negative integer", self.template)))
    }

    fn compile(&self, index: usize) -> Result<Rule, RuleError> {
        if let Some(a) = self.action.as_deref().filter(|a| *a != "retain") {
            return Err(RuleError::Other(format!("action {a:?} is not supported (only \"retain\")")));
        }
        let days = |n: u64| u32::try_from(n).map_err(|_| RuleError::Other(format!("{n} days is too many")));
        let count = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let template = match self.template.as_str() {
            "latestPushedK" => Template::LatestPushed(count(self.param()?)),
            "latestPulledN" => Template::LatestPulled(count(self.param()?)),
            "nDaysSinceLastPush" => Template::PushedWithinDays(days(self.param()?)?),
            "nDaysSinceLastPull" => Template::PulledWithinDays(days(self.param()?)?),
            "always" => Template::Always,
            t => return Err(RuleError::Other(format!("template {t:?} is not supported"))),
        };
        let mut rule = Rule {
            index,
            template,
            repo_matches: vec![],
            repo_excludes: vec![],
            tag_matches: vec![],
            tag_excludes: vec![],
            untagged: false,
        };
        for (kind, selectors) in &self.scope_selectors {
            if kind != "repository" {
                return Err(RuleError::Other(format!("scope selector {kind:?} is not supported")));
            }
            for s in selectors {
                check_kind(s)?;
                match s.decoration.as_str() {
                    "repoMatches" => rule.repo_matches.push(Pattern::new(&s.pattern)?),
                    "repoExcludes" => rule.repo_excludes.push(Pattern::new(&s.pattern)?),
                    d => return Err(RuleError::Other(format!("repository decoration {d:?}"))),
                }
            }
        }
        for s in &self.tag_selectors {
            check_kind(s)?;
            match s.decoration.as_str() {
                "matches" => rule.tag_matches.push(Pattern::new(&s.pattern)?),
                "excludes" => rule.tag_excludes.push(Pattern::new(&s.pattern)?),
                d => return Err(RuleError::Other(format!("tag decoration {d:?}"))),
            }
            rule.untagged |= untagged(s.extras.as_deref())?;
        }
        Ok(rule)
    }
}

fn check_kind(s: &SelectorSpec) -> Result<(), RuleError> {
    match s.kind.as_str() {
        "doublestar" => Ok(()),
        k => Err(RuleError::Other(format!("selector kind {k:?} is not supported (only doublestar)"))),
    }
}

/// `extras` is a JSON object in a string; `{"untagged": true}` includes untagged artifacts.
fn untagged(extras: Option<&str>) -> Result<bool, RuleError> {
    let Some(extras) = extras.filter(|e| !e.trim().is_empty()) else { return Ok(false) };
    let v: serde_json::Value =
        serde_json::from_str(extras).map_err(|e| RuleError::Other(format!("tag selector extras: {e}")))?;
    Ok(v.get("untagged").and_then(serde_json::Value::as_bool).unwrap_or(false))
}

/// Harbor's crons have six fields (seconds first, `0 0 0 * * *`); Berth's
/// scheduler five. A six-field cron loses its seconds field (runs start on
/// the minute).
pub fn five_field_cron(cron: &str) -> String {
    let fields: Vec<&str> = cron.split_whitespace().collect();
    if fields.len() == 6 {
        fields[1..].join(" ")
    } else {
        cron.trim().to_owned()
    }
}
