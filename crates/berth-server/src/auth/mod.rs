//! Authentication and authorization at the edge, decided once per request
//! before dispatch from the parsed endpoint ([`access::Needed`]).
//!
//! Providers, at most one (as in Distribution):
//! - none: anyone may do anything, exactly like `registry:2`;
//! - `auth.htpasswd`: Basic credentials, every user may do everything;
//! - bearer tokens (the Docker token spec): from an external token server
//!   (`auth.token`) or Berth's own service at `/token` (`berth.auth`), whose
//!   users may also send Basic credentials to the API directly.
//!
//! Refusals carry a challenge naming the scope to ask for: `401
//! UNAUTHORIZED` without valid credentials, `403 DENIED` with
//! `error="insufficient_scope"` when valid ones lack the action (RFC 6750);
//! throttled logins are `429 TOOMANYREQUESTS`.

mod access;
mod account;
mod policy;
mod principal;
mod robot_policy;
mod token_service;
mod users;

pub use access::Needed;
pub use account::Account;
pub use policy::{Policy, ProjectCreation, ProjectTemplate};
pub use principal::Principal;
pub use robot_policy::GrantError;
pub use token_service::TokenService;
pub use users::{LoginError, UserDirectory};

use crate::error::ApiError;
use crate::settings::Settings;
use berth_auth::{parse_basic, FailureThrottle, Htpasswd, TokenVerifier};
use berth_oci::ErrorCode;
use http::request::Parts;
use http::HeaderValue;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

#[derive(Clone, Default)]
pub enum Authenticator {
    #[default]
    Anonymous,
    /// htpasswd users, with repeated failures per (user, source) throttled.
    Htpasswd(Arc<Htpasswd>, Arc<FailureThrottle>),
    Token(Arc<TokenAuth>),
}

/// Bearer-token authentication, by an external token server or Berth's own.
pub struct TokenAuth {
    pub verifier: TokenVerifier,
    pub realm: Realm,
    /// This registry's name: the challenge's `service`, the tokens' `aud`.
    pub service: String,
    /// Berth's own token service and users; `None` with an external server.
    pub builtin: Option<Arc<TokenService>>,
}

/// Where clients are sent for tokens.
pub enum Realm {
    Fixed(String),
    /// This server's own URL as the client reached it, plus this path
    /// (Berth's `/token`, or Distribution 3's `autoredirect`).
    SameHost {
        path: String,
        https: bool,
    },
}

impl Authenticator {
    /// Berth's own users-and-projects policy, when that is the provider.
    pub fn policy(&self) -> Option<&policy::Policy> {
        match self {
            Authenticator::Token(t) => t.builtin.as_ref().map(|b| &b.policy),
            _ => None,
        }
    }

    /// The principal if the request may proceed; the refusal otherwise.
    pub async fn authorize(
        &self,
        settings: &Settings,
        parts: &Parts,
        needed: &Needed<'_>,
    ) -> Result<Principal, ApiError> {
        match self {
            Authenticator::Anonymous => Ok(Principal::Open),
            Authenticator::Htpasswd(h, throttle) => {
                if let Some((user, password)) = basic(parts) {
                    let source = source(parts);
                    throttle.check(&user, source, Instant::now()).map_err(throttled)?;
                    if h.verify(&user, &password).await {
                        throttle.succeeded(&user, source);
                        return Ok(Principal::Htpasswd(user));
                    }
                    throttle.failed(&user, source, Instant::now());
                    tracing::info!(user = %user, "basic authentication failed");
                }
                Err(unauthorized(&h.challenge()))
            }
            Authenticator::Token(t) => t.authorize(settings, parts, needed).await,
        }
    }
}

impl TokenAuth {
    async fn authorize(&self, settings: &Settings, parts: &Parts, needed: &Needed<'_>) -> Result<Principal, ApiError> {
        let header = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let principal = match header {
            Some(h) if h.len() > 7 && h[..7].eq_ignore_ascii_case("bearer ") => {
                match self.verifier.verify(h[7..].trim(), SystemTime::now()) {
                    Ok(claims) => Principal::Token(claims),
                    Err(e) => {
                        tracing::info!(error = %e, "bearer token refused");
                        return Err(self.challenge(settings, parts, needed, Some("invalid_token")));
                    }
                }
            }
            Some(_) if self.builtin.is_some() => {
                let Some((user, password)) = basic(parts) else {
                    return Err(self.challenge(settings, parts, needed, None));
                };
                let users = &self.builtin.as_ref().expect("checked above").users;
                match users.login(&user, &password, source(parts)).await {
                    Ok(account) => account.into(),
                    Err(LoginError::Throttled(wait)) => return Err(throttled(wait)),
                    Err(LoginError::Store(e)) => return Err(e.into()),
                    Err(LoginError::Invalid) => {
                        tracing::info!(user = %user, "basic authentication failed");
                        return Err(self.challenge(settings, parts, needed, None));
                    }
                }
            }
            _ => Principal::Anonymous,
        };
        let policy = self.builtin.as_ref().map(|b| &b.policy);
        let allowed = match needed {
            Needed::Authenticated => !matches!(principal, Principal::Anonymous),
            Needed::Catalog => principal.allows(policy, "registry", "catalog", "*").await,
            Needed::Repository { name, actions } => {
                let mut all = true;
                for a in actions.iter() {
                    all = all && principal.allows(policy, "repository", name, a).await;
                }
                all
            }
        };
        if allowed {
            if let (Some(b), Needed::Repository { name, actions }) = (&self.builtin, needed) {
                if actions.contains(&"push") {
                    b.before_push(name, &principal).await?;
                }
            }
            return Ok(principal);
        }
        let error = (!matches!(principal, Principal::Anonymous)).then_some("insufficient_scope");
        Err(self.challenge(settings, parts, needed, error))
    }

    fn challenge(&self, settings: &Settings, parts: &Parts, needed: &Needed<'_>, error: Option<&str>) -> ApiError {
        let realm = match &self.realm {
            Realm::Fixed(r) => r.clone(),
            Realm::SameHost { path, https } => same_host_url(settings, parts, path, *https),
        };
        let mut value = format!("Bearer realm=\"{}\",service=\"{}\"", quote(&realm), quote(&self.service));
        if let Some(scope) = needed.scope() {
            value.push_str(&format!(",scope=\"{}\"", quote(&scope)));
        }
        if let Some(error) = error {
            value.push_str(&format!(",error=\"{error}\""));
        }
        let refusal = unauthorized(&value);
        if error == Some("insufficient_scope") {
            // RFC 6750 §3.1, and Harbor: a valid credential lacking the
            // scope is 403 DENIED (Distribution says 401, which leaves
            // clients such as oras-py retrying the same token and docker
            // printing "authentication required" for a missing permission).
            // The challenge still names the scope, so a client may fetch a
            // better token.
            return ApiError::new(ErrorCode::Denied)
                .header("www-authenticate", refusal.headers[0].1.clone())
                .message("the credentials do not grant this action");
        }
        refusal
    }
}

/// This server's URL for `path`: `http.host` when set, else what the client
/// used (`X-Forwarded-*` from a proxy, else the `Host` header).
fn same_host_url(settings: &Settings, parts: &Parts, path: &str, https: bool) -> String {
    let url = crate::urls::location(settings, &parts.headers, path);
    if url.starts_with('/') {
        let host = parts.headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
        format!("{}://{host}{url}", if https { "https" } else { "http" })
    } else {
        url
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn basic(parts: &Parts) -> Option<(String, String)> {
    parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(parse_basic)
}

/// The client's address, for throttling failed logins.
pub fn source(parts: &Parts) -> IpAddr {
    source_of(&parts.extensions)
}

pub fn source_of(extensions: &http::Extensions) -> IpAddr {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn unauthorized(challenge: &str) -> ApiError {
    let value =
        HeaderValue::from_str(challenge).unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"registry\""));
    ApiError::new(ErrorCode::Unauthorized).header("www-authenticate", value)
}

pub fn throttled(wait: std::time::Duration) -> ApiError {
    ApiError::new(ErrorCode::TooManyRequests)
        .message("too many failed logins; retry later")
        .header("retry-after", crate::handlers::header_value(&wait.as_secs().max(1).to_string()))
}
