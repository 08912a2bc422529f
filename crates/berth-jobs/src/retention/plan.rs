//! The plan: which artifacts of a project a policy retains, which it
//! removes, and why. Pure (no I/O): the run records and applies it.
//!
//! Harbor's semantics ("Create Tag Retention Rules"): rules combine with OR;
//! a rule first selects repositories (the name without the project), then
//! among their artifacts those whose tags it selects (untagged ones only if
//! the rule says so), then retains by count or age — counts are per
//! repository ("the most recently pushed N artifacts" of each). An artifact
//! in a repository some rule selects that no rule retains is removed;
//! repositories no rule selects are left alone. Immutable tags are never
//! removed. An artifact is a manifest or an index: the children of an
//! index go with it, referrers (a `subject`) go with their subject, so
//! neither is judged on its own (a child that has tags of its own is, as
//! well as going with its index).

use super::policy::{Rule, Template};
use super::selector::selected;
use berth_meta::RetentionArtifact;
use berth_oci::Digest;
use std::collections::{BTreeMap, HashMap, HashSet};

const DAY_MS: i64 = 86_400_000;

/// How an artifact relates to the rest, which decides the order of removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Has a subject present in its repository: removed first.
    Referrer,
    /// Judged by the rules.
    Artifact,
    /// Only listed by an index: removed after it.
    Child,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub repository: String,
    pub digest: Digest,
    pub tags: Vec<String>,
    pub retained: bool,
    pub reason: String,
    pub role: Role,
}

/// The repository's name within its project (what selectors match).
fn within_project<'a>(project: &str, repository: &'a str) -> &'a str {
    repository.strip_prefix(project).and_then(|r| r.strip_prefix('/')).unwrap_or(repository)
}

fn tags_selected(rule: &Rule, a: &RetentionArtifact) -> bool {
    if a.tags.is_empty() {
        return rule.untagged;
    }
    a.tags.iter().any(|t| selected(t, &rule.tag_matches, &rule.tag_excludes))
}

/// What one rule retains among `candidates` (one repository's, selected by its tags).
fn retained_by<'a>(rule: &Rule, mut candidates: Vec<&'a RetentionArtifact>, now_ms: i64) -> Vec<&'a RetentionArtifact> {
    let since = |days: u32| now_ms.saturating_sub(i64::from(days).saturating_mul(DAY_MS));
    match rule.template {
        Template::Always => candidates,
        Template::LatestPushed(n) => {
            candidates.sort_by(|a, b| b.pushed_ms.cmp(&a.pushed_ms).then_with(|| a.digest.cmp(&b.digest)));
            candidates.truncate(n);
            candidates
        }
        Template::LatestPulled(n) => {
            candidates.sort_by(|a, b| {
                (b.last_pulled_ms, b.pushed_ms)
                    .cmp(&(a.last_pulled_ms, a.pushed_ms))
                    .then_with(|| a.digest.cmp(&b.digest))
            });
            candidates.truncate(n);
            candidates
        }
        Template::PushedWithinDays(d) => candidates.into_iter().filter(|a| a.pushed_ms >= since(d)).collect(),
        Template::PulledWithinDays(d) => {
            candidates.into_iter().filter(|a| a.last_pulled_ms > 0 && a.last_pulled_ms >= since(d)).collect()
        }
    }
}

/// Decides every artifact of `project` (as `RetentionStore::retention_artifacts`
/// lists them). `is_immutable(repository, tag)` says which tags must stay.
pub fn plan(
    project: &str,
    rules: &[Rule],
    artifacts: &[RetentionArtifact],
    now_ms: i64,
    is_immutable: &dyn Fn(&str, &str) -> bool,
) -> Vec<Decision> {
    let mut by_repo: BTreeMap<&str, Vec<&RetentionArtifact>> = BTreeMap::new();
    for a in artifacts {
        by_repo.entry(a.repository.as_str()).or_default().push(a);
    }
    let mut out = Vec::with_capacity(artifacts.len());
    for (repo, arts) in by_repo {
        plan_repository(project, repo, rules, &arts, now_ms, is_immutable, &mut out);
    }
    out
}

fn plan_repository(
    project: &str,
    repo: &str,
    rules: &[Rule],
    arts: &[&RetentionArtifact],
    now_ms: i64,
    is_immutable: &dyn Fn(&str, &str) -> bool,
    out: &mut Vec<Decision>,
) {
    let name = within_project(project, repo);
    let present: HashSet<&Digest> = arts.iter().map(|a| &a.digest).collect();
    let listed: HashSet<&Digest> = arts.iter().flat_map(|a| &a.children).collect();
    let role = |a: &RetentionArtifact| match &a.subject {
        Some(s) if present.contains(s) => Role::Referrer,
        _ if listed.contains(&a.digest) && a.tags.is_empty() => Role::Child,
        _ => Role::Artifact,
    };
    let scoped: Vec<&Rule> = rules.iter().filter(|r| selected(name, &r.repo_matches, &r.repo_excludes)).collect();
    let decide = |a: &RetentionArtifact, retained: bool, reason: String| Decision {
        repository: repo.to_owned(),
        digest: a.digest.clone(),
        tags: a.tags.clone(),
        retained,
        reason,
        role: role(a),
    };
    if scoped.is_empty() {
        out.extend(arts.iter().map(|a| decide(a, true, "no rule selects its repository".into())));
        return;
    }
    let judged: Vec<&RetentionArtifact> = arts.iter().copied().filter(|a| role(a) == Role::Artifact).collect();
    let mut reasons: HashMap<&Digest, String> = HashMap::new();
    for a in &judged {
        if let Some(t) = a.tags.iter().find(|t| is_immutable(repo, t)) {
            reasons.insert(&a.digest, format!("immutable tag {t}"));
        }
    }
    for rule in scoped {
        let candidates = judged.iter().copied().filter(|a| tags_selected(rule, a)).collect();
        for a in retained_by(rule, candidates, now_ms) {
            reasons.entry(&a.digest).or_insert_with(|| format!("rule {} ({})", rule.index + 1, rule.template));
        }
    }
    // What a retained artifact needs stays with it: its children, its referrers.
    let by_digest: HashMap<&Digest, &RetentionArtifact> = arts.iter().map(|a| (&a.digest, *a)).collect();
    let mut referrers: HashMap<&Digest, Vec<&Digest>> = HashMap::new();
    for a in arts {
        if let Some(s) = a.subject.as_ref().filter(|s| present.contains(s)) {
            referrers.entry(s).or_default().push(&a.digest);
        }
    }
    let mut work: Vec<&Digest> = reasons.keys().copied().collect();
    while let Some(d) = work.pop() {
        let children = by_digest.get(d).map(|a| a.children.iter()).into_iter().flatten();
        let deps = children
            .filter(|c| present.contains(c))
            .map(|c| (c, format!("child of retained {d}")))
            .chain(referrers.get(d).into_iter().flatten().map(|r| (*r, format!("referrer of retained {d}"))));
        for (dep, why) in deps.collect::<Vec<_>>() {
            if let std::collections::hash_map::Entry::Vacant(e) = reasons.entry(dep) {
                e.insert(why);
                work.push(dep);
            }
        }
    }
    for a in arts {
        let d = match reasons.get(&a.digest) {
            Some(why) => decide(a, true, why.clone()),
            None => {
                let why = match role(a) {
                    Role::Artifact => "no rule retains it",
                    Role::Child => "its index is removed",
                    Role::Referrer => "its subject is removed",
                };
                decide(a, false, why.into())
            }
        };
        out.push(d);
    }
}
