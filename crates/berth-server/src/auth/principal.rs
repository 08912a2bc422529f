//! Who made a request, once authenticated, and what that lets them do.
//! Handlers that need a second decision (a mount's source repository) ask
//! the principal the request carries in its extensions.

use super::policy;
use berth_auth::Claims;
use berth_meta::User;
use std::sync::Arc;

#[derive(Clone)]
pub enum Principal {
    /// No authentication configured: anyone may do anything (`registry:2`).
    Open,
    /// An htpasswd user: as in Distribution, any authenticated user may do anything.
    Htpasswd(String),
    /// One of Berth's users, by Basic credentials on the API itself.
    User(Arc<User>),
    /// No credentials, with Berth's own users or a token server configured.
    Anonymous { pull: bool },
    /// A verified bearer token: exactly the access it lists.
    Token(Arc<Claims>),
}

impl Principal {
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        let one = [action.to_owned()];
        match self {
            Principal::Open | Principal::Htpasswd(_) => true,
            Principal::User(u) => !policy::granted(Some(u), false, kind, &one).is_empty(),
            Principal::Anonymous { pull } => !policy::granted(None, *pull, kind, &one).is_empty(),
            Principal::Token(claims) => claims.allows(kind, name, action),
        }
    }

    /// The account name for logs and audit; `None` when anonymous.
    pub fn name(&self) -> Option<&str> {
        match self {
            Principal::Htpasswd(n) => Some(n.as_str()),
            Principal::User(u) => Some(u.name.as_str()),
            Principal::Token(c) => Some(c.sub.as_str()).filter(|s| !s.is_empty()),
            Principal::Open | Principal::Anonymous { .. } => None,
        }
    }
}
