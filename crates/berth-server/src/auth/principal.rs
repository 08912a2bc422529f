//! Who made a request, once authenticated, and what that lets them do.
//! Handlers that need a second decision (a mount's source repository) ask
//! the principal the request carries in its extensions.

use super::account::Account;
use super::policy::Policy;
use berth_auth::Claims;
use berth_meta::{Robot, User};
use std::sync::Arc;

#[derive(Clone)]
pub enum Principal {
    /// No authentication configured: anyone may do anything (`registry:2`).
    Open,
    /// An htpasswd user: as in Distribution, any authenticated user may do anything.
    Htpasswd(String),
    /// One of Berth's users, by Basic credentials on the API itself.
    User(Arc<User>),
    /// One of Berth's robot accounts, by Basic credentials on the API itself.
    Robot(Arc<Robot>),
    /// No credentials, with Berth's own users or a token server configured.
    Anonymous,
    /// A verified bearer token: exactly the access it lists.
    Token(Arc<Claims>),
}

impl Principal {
    /// Whether this principal may do `action` on the resource. `policy` is
    /// Berth's own (users and projects); `None` with other providers.
    pub async fn allows(&self, policy: Option<&Policy>, kind: &str, name: &str, action: &str) -> bool {
        let one = [action.to_owned()];
        let user = match self {
            Principal::Open | Principal::Htpasswd(_) => return true,
            Principal::Token(claims) => return claims.allows(kind, name, action),
            Principal::User(u) => Some(u.as_ref()),
            Principal::Robot(_) | Principal::Anonymous => None,
        };
        let Some(policy) = policy else { return false };
        let granted = match self {
            Principal::Robot(r) => policy.granted_to_robot(r, kind, name, &one, crate::state::now_ms()).await,
            _ => policy.granted(user, kind, name, &one).await,
        };
        match granted {
            Ok(granted) => !granted.is_empty(),
            Err(e) => {
                tracing::error!(error = %e, "authorization lookup failed");
                false
            }
        }
    }

    /// The account name for logs and audit; `None` when anonymous.
    pub fn name(&self) -> Option<&str> {
        match self {
            Principal::Htpasswd(n) => Some(n.as_str()),
            Principal::User(u) => Some(u.name.as_str()),
            Principal::Robot(r) => Some(r.name.as_str()),
            Principal::Token(c) => Some(c.sub.as_str()).filter(|s| !s.is_empty()),
            Principal::Open | Principal::Anonymous => None,
        }
    }
}

impl From<Account> for Principal {
    fn from(a: Account) -> Self {
        match a {
            Account::User(u) => Principal::User(u),
            Account::Robot(r) => Principal::Robot(r),
        }
    }
}
