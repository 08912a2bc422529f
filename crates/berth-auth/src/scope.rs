//! Docker token-spec scopes (`repository:library/alpine:pull,push`) and the
//! JWT `access` claim they become. Clients ask for scopes in `/token?scope=…`
//! and the registry names the scope it needs in `WWW-Authenticate`, so the
//! parser and [`Access::to_scope`] must round-trip.
//!
//! Grammar (Distribution `docs/spec/auth/scope.md`):
//! `type[(class)]:name:action[,action]*`, several separated by spaces. The name
//! may hold a `:` (a registry `host:port` prefix), so the type ends at the
//! first `:` and the actions start after the last. The resource class is
//! deprecated and ignored by Distribution (`repository(plugin)` authorizes as
//! `repository`), so it is dropped here.

use serde::{Deserialize, Serialize};

/// Actions the registry checks. Other actions are kept (a token server may
/// grant them) but grant nothing here.
pub const PULL: &str = "pull";
pub const PUSH: &str = "push";
pub const DELETE: &str = "delete";
/// Every action on the resource (admins; `registry:catalog:*`).
pub const ALL: &str = "*";

/// One resource and the actions on it: one entry of the JWT `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Access {
    /// `repository`, `registry`, …
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope {0:?}: expected type:name:actions")]
    Shape(String),
    #[error("scope {0:?}: resource type must be [a-z0-9]+ with an optional (class)")]
    Type(String),
    #[error("scope {0:?}: empty resource name")]
    Name(String),
    #[error("scope {0:?}: an action must be [a-z*]+")]
    Action(String),
}

impl Access {
    pub fn new(kind: &str, name: &str, actions: &[&str]) -> Self {
        Access {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// `type:name:a,b` as in a `scope=` parameter or a `WWW-Authenticate` challenge.
    pub fn to_scope(&self) -> String {
        format!("{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }

    /// Whether this entry grants `action` on `kind`/`name`; `*` grants every action.
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.kind == kind && self.name == name && self.actions.iter().any(|a| a == action || a == ALL)
    }
}

fn is_type_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `repository` or `repository(plugin)` → `repository`.
fn parse_type<'a>(t: &'a str, scope: &str) -> Result<&'a str, ScopeError> {
    let base = match t.split_once('(') {
        Some((base, class)) if class.strip_suffix(')').is_some_and(is_type_value) => base,
        Some(_) => return Err(ScopeError::Type(scope.to_owned())),
        None => t,
    };
    if is_type_value(base) {
        Ok(base)
    } else {
        Err(ScopeError::Type(scope.to_owned()))
    }
}

fn parse_one(scope: &str) -> Result<Access, ScopeError> {
    let shape = || ScopeError::Shape(scope.to_owned());
    let (kind, rest) = scope.split_once(':').ok_or_else(shape)?;
    let (name, actions) = rest.rsplit_once(':').ok_or_else(shape)?;
    let kind = parse_type(kind, scope)?;
    if name.is_empty() {
        return Err(ScopeError::Name(scope.to_owned()));
    }
    let mut list: Vec<String> = Vec::new();
    // The grammar allows an empty action ("repository:foo:"): it grants nothing.
    for action in actions.split(',').filter(|a| !a.is_empty()) {
        if !action.bytes().all(|b| b.is_ascii_lowercase() || b == b'*') {
            return Err(ScopeError::Action(scope.to_owned()));
        }
        if !list.iter().any(|a| a == action) {
            list.push(action.to_owned());
        }
    }
    Ok(Access { kind: kind.to_owned(), name: name.to_owned(), actions: list })
}

/// Parses one `scope=` value, which may hold several space-separated scopes.
/// An empty value is no scope (a plain `docker login`).
pub fn parse_scope(s: &str) -> Result<Vec<Access>, ScopeError> {
    s.split(' ').filter(|p| !p.is_empty()).map(parse_one).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        // Distribution docs/spec/auth/token.md and scope.md.
        assert_eq!(
            parse_scope("repository:samalba/my-app:pull,push").unwrap(),
            vec![Access::new("repository", "samalba/my-app", &["pull", "push"])]
        );
        assert_eq!(parse_scope("registry:catalog:*").unwrap(), vec![Access::new("registry", "catalog", &["*"])]);
        assert_eq!(
            parse_scope("repository:foo/bar:pull repository:foo/baz:push").unwrap(),
            vec![Access::new("repository", "foo/bar", &["pull"]), Access::new("repository", "foo/baz", &["push"])]
        );
        assert_eq!(parse_scope("").unwrap(), vec![]);
    }

    #[test]
    fn name_with_port_and_class() {
        let a = parse_scope("repository:localhost:5000/foo/bar:pull").unwrap();
        assert_eq!(a, vec![Access::new("repository", "localhost:5000/foo/bar", &["pull"])]);
        assert_eq!(a[0].to_scope(), "repository:localhost:5000/foo/bar:pull");
        let p = parse_scope("repository(plugin):vieux/sshfs:pull").unwrap();
        assert_eq!(p, vec![Access::new("repository", "vieux/sshfs", &["pull"])]);
    }

    #[test]
    fn round_trip_and_dedup() {
        let a = parse_scope("repository:a/b:pull,push,pull,,delete").unwrap();
        assert_eq!(a[0].actions, ["pull", "push", "delete"]);
        assert_eq!(parse_scope(&a[0].to_scope()).unwrap(), a);
        assert_eq!(parse_scope("repository:a:").unwrap()[0].actions, Vec::<String>::new());
    }

    #[test]
    fn malformed() {
        assert!(matches!(parse_scope("repository"), Err(ScopeError::Shape(_))));
        assert!(matches!(parse_scope("repository:foo"), Err(ScopeError::Shape(_))));
        assert!(matches!(parse_scope("Repository:foo:pull"), Err(ScopeError::Type(_))));
        assert!(matches!(parse_scope(":foo:pull"), Err(ScopeError::Type(_))));
        assert!(matches!(parse_scope("repository(:foo:pull"), Err(ScopeError::Type(_))));
        assert!(matches!(parse_scope("repository::pull"), Err(ScopeError::Name(_))));
        assert!(matches!(parse_scope("repository:foo:PULL"), Err(ScopeError::Action(_))));
    }

    #[test]
    fn access_claim_json() {
        // The `access` claim of Distribution docs/spec/auth/jwt.md.
        let json = r#"{"type":"repository","name":"samalba/my-app","actions":["pull","push"]}"#;
        let a: Access = serde_json::from_str(json).unwrap();
        assert_eq!(a, Access::new("repository", "samalba/my-app", &["pull", "push"]));
        assert_eq!(serde_json::to_string(&a).unwrap(), json);
        let no_actions: Access = serde_json::from_str(r#"{"type":"registry","name":"catalog"}"#).unwrap();
        assert!(no_actions.actions.is_empty());
    }

    #[test]
    fn allows_per_action() {
        let a = Access::new("repository", "foo", &["pull", "push"]);
        assert!(a.allows("repository", "foo", PULL) && a.allows("repository", "foo", PUSH));
        assert!(!a.allows("repository", "foo", DELETE));
        assert!(!a.allows("repository", "foo/bar", PULL));
        assert!(!a.allows("registry", "foo", PULL));
        assert!(Access::new("repository", "foo", &["*"]).allows("repository", "foo", DELETE));
    }
}
