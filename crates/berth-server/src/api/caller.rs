//! Who calls the admin API: one of Berth's users by Basic credentials, or by
//! a bearer token from Berth's token service carrying the `berth:api:*`
//! scope (what `berth admin login` keeps). A registry token lacking that
//! scope is refused here, so a pull token handed to a CI job cannot be
//! turned into its owner's administrative rights. No credentials: anonymous,
//! which only reads public projects.

use super::error::AdminError;
use crate::auth::{LoginError, TokenService};
use crate::state::App;
use axum::extract::FromRequestParts;
use berth_meta::User;
use http::request::Parts;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// The token scope that admits a bearer token to the admin API.
pub const API_SCOPE: (&str, &str, &str) = ("berth", "api", "*");

pub struct Caller {
    /// `None`: anonymous.
    pub user: Option<Arc<User>>,
}

/// Where the audit layer learns who called (the extractor fills it in).
#[derive(Clone, Default)]
pub struct ActorSlot(pub Arc<OnceLock<String>>);

impl Caller {
    pub fn user(&self) -> Result<&Arc<User>, AdminError> {
        self.user.as_ref().ok_or_else(AdminError::unauthorized)
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.admin)
    }

    /// A system administrator, or 401/403.
    pub fn admin(&self) -> Result<&Arc<User>, AdminError> {
        let user = self.user()?;
        if user.admin {
            Ok(user)
        } else {
            Err(AdminError::forbidden("only system administrators may do this"))
        }
    }
}

/// The token service the API runs on; the router is only mounted with it.
pub fn service(app: &App) -> Result<&Arc<TokenService>, AdminError> {
    match &app.auth {
        crate::auth::Authenticator::Token(t) => t.builtin.as_ref().ok_or_else(AdminError::internal),
        _ => Err(AdminError::internal()),
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Self::Rejection> {
        let caller = authenticate(parts, app).await?;
        if let (Some(slot), Some(user)) = (parts.extensions.get::<ActorSlot>(), &caller.user) {
            let _ = slot.0.set(user.name.clone());
        }
        Ok(caller)
    }
}

async fn authenticate(parts: &Parts, app: &App) -> Result<Caller, AdminError> {
    let service = service(app)?;
    let Some(header) = parts.headers.get(http::header::AUTHORIZATION) else {
        return Ok(Caller { user: None });
    };
    let header = header.to_str().map_err(|_| AdminError::unauthorized())?;
    if header.len() > 7 && header[..7].eq_ignore_ascii_case("bearer ") {
        let crate::auth::Authenticator::Token(t) = &app.auth else { return Err(AdminError::internal()) };
        let claims = t.verifier.verify(header[7..].trim(), SystemTime::now()).map_err(|e| {
            tracing::info!(error = %e, "admin API: bearer token refused");
            AdminError::unauthorized()
        })?;
        let (kind, name, action) = API_SCOPE;
        if !claims.allows(kind, name, action) {
            return Err(AdminError::forbidden("this token does not carry the berth:api:* scope"));
        }
        let user = service.users.meta().user_by_name(&claims.sub).await?;
        return match user {
            Some(u) if !u.disabled => Ok(Caller { user: Some(Arc::new(u)) }),
            _ => Err(AdminError::unauthorized()),
        };
    }
    let (name, password) = berth_auth::parse_basic(header).ok_or_else(AdminError::unauthorized)?;
    match service.users.login(&name, &password, crate::auth::source(parts)).await {
        Ok(crate::auth::Account::User(user)) => Ok(Caller { user: Some(user) }),
        // Robots push and pull; administering is for people.
        Ok(crate::auth::Account::Robot(_)) => Err(AdminError::forbidden("robot accounts may not use the admin API")),
        Err(LoginError::Invalid) => Err(AdminError::unauthorized()),
        Err(LoginError::Throttled(wait)) => {
            Err(AdminError::too_many(format!("too many failed logins; retry in {} s", wait.as_secs().max(1))))
        }
        Err(LoginError::Store(e)) => Err(e.into()),
    }
}
