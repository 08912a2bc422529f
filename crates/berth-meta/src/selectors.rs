//! Harbor's repository and tag selectors (tag immutability and retention
//! rules): a doublestar pattern that either selects what it matches
//! (`repoMatches`, `matches`) or what it does not (`repoExcludes`, `excludes`).
//!
//! Pattern syntax, as Harbor documents it: `*` is any run of characters but
//! `/`, `**` any run including `/`, `?` one character but `/`, `{a,b}`
//! either alternative, `[...]` a class. The repository pattern is matched
//! against the name *without* its project (`team-a/api/server` →
//! `api/server`; `busybox` in `library` → `busybox`): [`repo_in_project`].
//! Pure: no I/O, so the server, the store and the retention job share it.

use globset::{GlobBuilder, GlobMatcher};

/// Whether a pattern selects what it matches or what it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decoration {
    Matches,
    Excludes,
}

impl Decoration {
    /// Harbor's decoration names: `matches`/`repoMatches` and `excludes`/`repoExcludes`.
    pub fn parse(s: &str) -> Option<Decoration> {
        match s {
            "matches" | "repoMatches" => Some(Decoration::Matches),
            "excludes" | "repoExcludes" => Some(Decoration::Excludes),
            _ => None,
        }
    }

    /// The stored form (`matches` / `excludes`).
    pub fn as_str(self) -> &'static str {
        match self {
            Decoration::Matches => "matches",
            Decoration::Excludes => "excludes",
        }
    }
}

/// A pattern that cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[error("invalid selector pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

/// One compiled doublestar pattern with its decoration.
#[derive(Debug, Clone)]
pub struct Pattern {
    decoration: Decoration,
    matcher: GlobMatcher,
}

impl Pattern {
    pub fn new(decoration: Decoration, pattern: &str) -> Result<Pattern, PatternError> {
        let glob = GlobBuilder::new(pattern)
            // `*` stops at `/`; only `**` crosses it (doublestar).
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| PatternError { pattern: pattern.to_owned(), reason: e.kind().to_string() })?;
        Ok(Pattern { decoration, matcher: glob.compile_matcher() })
    }

    /// Whether `value` is selected.
    pub fn selects(&self, value: &str) -> bool {
        self.matcher.is_match(value) == (self.decoration == Decoration::Matches)
    }
}

/// A repository selector and a tag selector: a tag is selected when both are.
#[derive(Debug, Clone)]
pub struct Selector {
    repository: Pattern,
    tag: Pattern,
}

impl Selector {
    pub fn new(repository: Pattern, tag: Pattern) -> Selector {
        Selector { repository, tag }
    }

    /// `repo_in_project` is the repository name without its project
    /// ([`repo_in_project`]).
    pub fn matches(&self, repo_in_project: &str, tag: &str) -> bool {
        self.repository.selects(repo_in_project) && self.tag.selects(tag)
    }
}

/// The part of a repository name a repository pattern sees: without the
/// project component (`team-a/api/server` → `api/server`), or the whole
/// one-component name of a `library` repository (`busybox`).
pub fn repo_in_project(repository: &str) -> &str {
    repository.split_once('/').map_or(repository, |(_, rest)| rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(repo: (&str, &str), tag: (&str, &str)) -> Selector {
        let p = |(d, s): (&str, &str)| Pattern::new(Decoration::parse(d).unwrap(), s).unwrap();
        Selector::new(p(repo), p(tag))
    }

    #[test]
    fn double_star_matches_every_repository_and_tag() {
        let all = sel(("repoMatches", "**"), ("matches", "**"));
        for (r, t) in [("busybox", "latest"), ("api/server", "v1.0"), ("a/b/c", "x")] {
            assert!(all.matches(r, t), "{r}:{t}");
        }
    }

    #[test]
    fn single_star_stops_at_a_slash() {
        let top = sel(("repoMatches", "*"), ("matches", "**"));
        assert!(top.matches("app", "v1"));
        assert!(!top.matches("api/server", "v1"), "* does not cross /");
        let under = sel(("repoMatches", "api/*"), ("matches", "**"));
        assert!(under.matches("api/server", "v1") && !under.matches("api/server/x", "v1"));
        assert!(sel(("repoMatches", "api/**"), ("matches", "**")).matches("api/server/x", "v1"));
    }

    #[test]
    fn alternatives_and_prefixes() {
        let v12 = sel(("repoMatches", "**"), ("matches", "v{1,2}.*"));
        assert!(v12.matches("app", "v1.0") && v12.matches("app", "v2.13"));
        assert!(!v12.matches("app", "v3.0") && !v12.matches("app", "v1") && !v12.matches("app", "latest"));
        let two = sel(("repoMatches", "{app,web}"), ("matches", "v2.*"));
        assert!(two.matches("web", "v2.1") && !two.matches("db", "v2.1"));
    }

    #[test]
    fn excludes_select_what_does_not_match() {
        let not_latest = sel(("repoMatches", "**"), ("excludes", "latest"));
        assert!(not_latest.matches("app", "v1") && !not_latest.matches("app", "latest"));
        let not_tmp = sel(("repoExcludes", "tmp/**"), ("matches", "**"));
        assert!(not_tmp.matches("app", "v1") && !not_tmp.matches("tmp/x", "v1"));
    }

    #[test]
    fn repository_patterns_see_the_name_without_its_project() {
        assert_eq!(repo_in_project("team-a/api/server"), "api/server");
        assert_eq!(repo_in_project("team-a/app"), "app");
        assert_eq!(repo_in_project("busybox"), "busybox");
    }

    #[test]
    fn bad_patterns_are_errors_not_panics() {
        let err = Pattern::new(Decoration::Matches, "v{1,2").unwrap_err();
        assert!(err.to_string().contains("v{1,2"), "{err}");
        assert!(Pattern::new(Decoration::Matches, "[").is_err());
        assert_eq!(Decoration::parse("sometimes"), None);
    }
}
