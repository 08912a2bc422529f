//! What each endpoint needs, in the token spec's terms: an action on a
//! repository, the catalog, or just an authenticated client. The table is
//! Distribution's (`registry/handlers/app.go`): reads need `pull`, writes
//! `pull` and `push`, deletes `delete`; the catalog `registry:catalog:*`.

use crate::route::Endpoint;
use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed<'a> {
    /// `/v2/`: any authenticated client (a token with no scope will do).
    Authenticated,
    Catalog,
    Repository {
        name: &'a str,
        actions: &'static [&'static str],
    },
}

const PULL: &[&str] = &["pull"];
const PULL_PUSH: &[&str] = &["pull", "push"];
const DELETE: &[&str] = &["delete"];

impl<'a> Needed<'a> {
    pub fn of(endpoint: &Endpoint<'a>, method: &Method) -> Needed<'a> {
        use Endpoint::*;
        let name = match endpoint {
            Base => return Needed::Authenticated,
            Catalog => return Needed::Catalog,
            Tags { name }
            | Manifest { name, .. }
            | Blob { name, .. }
            | UploadStart { name }
            | Upload { name, .. }
            | Referrers { name, .. } => *name,
        };
        let actions = match *method {
            Method::GET | Method::HEAD => PULL,
            Method::DELETE => DELETE,
            // POST, PUT, PATCH and anything the handler will refuse anyway.
            _ => PULL_PUSH,
        };
        Needed::Repository { name, actions }
    }

    /// The challenge's `scope` parameter: what a client should ask the
    /// token service for.
    pub fn scope(&self) -> Option<String> {
        match self {
            Needed::Authenticated => None,
            Needed::Catalog => Some("registry:catalog:*".into()),
            Needed::Repository { name, actions } => Some(format!("repository:{name}:{}", actions.join(","))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_access_table() {
        let m = Endpoint::Manifest { name: "a/b", reference: "v1" };
        assert_eq!(Needed::of(&m, &Method::GET).scope().unwrap(), "repository:a/b:pull");
        assert_eq!(Needed::of(&m, &Method::HEAD).scope().unwrap(), "repository:a/b:pull");
        assert_eq!(Needed::of(&m, &Method::PUT).scope().unwrap(), "repository:a/b:pull,push");
        assert_eq!(Needed::of(&m, &Method::DELETE).scope().unwrap(), "repository:a/b:delete");
        let up = Endpoint::Upload { name: "x", id: "1" };
        assert_eq!(Needed::of(&up, &Method::PATCH).scope().unwrap(), "repository:x:pull,push");
        assert_eq!(Needed::of(&Endpoint::Catalog, &Method::GET).scope().unwrap(), "registry:catalog:*");
        assert_eq!(Needed::of(&Endpoint::Base, &Method::GET), Needed::Authenticated);
    }
}
