//! Doublestar patterns as Harbor's retention selectors use them: `*`
//! stays within one path component, `**` crosses `/`, `{a,b}` alternates.
//! Kept here rather than shared with immutable tags' selector in
//! `berth-meta` only so the two could be written at once; one can replace
//! the other.

use globset::{GlobBuilder, GlobMatcher};

#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    matcher: GlobMatcher,
}

#[derive(Debug, thiserror::Error)]
#[error("pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pattern: String,
    reason: String,
}

impl Pattern {
    pub fn new(pattern: &str) -> Result<Pattern, PatternError> {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| PatternError { pattern: pattern.to_owned(), reason: e.kind().to_string() })?;
        Ok(Pattern { source: pattern.to_owned(), matcher: glob.compile_matcher() })
    }

    pub fn matches(&self, s: &str) -> bool {
        self.matcher.is_match(s)
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Whether `name` is selected by `matches` (any of them; none means all)
/// and by none of `excludes`.
pub fn selected(name: &str, matches: &[Pattern], excludes: &[Pattern]) -> bool {
    (matches.is_empty() || matches.iter().any(|p| p.matches(name))) && !excludes.iter().any(|p| p.matches(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Pattern::new(p).unwrap().matches(s)
    }

    #[test]
    fn doublestar_as_harbor_documents_it() {
        // Harbor's examples: `*repo`, `repo*`, `**`.
        assert!(m("**", "a/b/c") && m("**", "app"));
        assert!(m("*repo", "myrepo") && !m("*repo", "team/myrepo"), "* stays in one component");
        assert!(m("repo*", "repo-1") && !m("repo*", "repo/x"));
        assert!(m("team/**", "team/a/b") && !m("team/**", "other/a"));
        assert!(m("{latest,snapshot}", "snapshot") && !m("{latest,snapshot}", "v1"));
        assert!(m("v1.*", "v1.2") && !m("v1.*", "v2.0"));
        assert!(Pattern::new("[").is_err());
    }

    #[test]
    fn matches_then_excludes() {
        let p = |v: &[&str]| v.iter().map(|s| Pattern::new(s).unwrap()).collect::<Vec<_>>();
        assert!(selected("app", &[], &[]));
        assert!(selected("app", &p(&["a*"]), &p(&["b*"])));
        assert!(!selected("app", &p(&["a*"]), &p(&["ap*"])));
        assert!(!selected("web", &p(&["a*"]), &[]));
    }
}
