//! Berth's own token service (`berth.auth`), per the Docker token spec:
//! `GET /token` with Basic credentials (or none, for anonymous pulls) and
//! `POST /token` with OAuth2's `password` and `refresh_token` grants.
//! A token lists only the requested actions the account holds
//! ([`super::policy`]); asking for more is not an error, the token is
//! just smaller, and the registry then refuses what it lacks.
//! `offline_token=true` (`access_type=offline`) adds a refresh token, which
//! docker keeps as its identity token instead of the password. Robots get
//! none: a refresh token outlives a secret rotation, which could not revoke
//! it (docker then keeps the robot's secret instead).

use super::account::Account;
use super::policy::Policy;
use super::throttled;
use super::users::{LoginError, UserDirectory};
use super::Principal;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use berth_auth::{parse_basic, parse_scope, Access, TokenIssuer};
use berth_meta::is_robot_name;
use berth_oci::{ErrorCode, RepoName};
use http::{HeaderValue, Method, StatusCode};
use serde_json::json;
use std::sync::Arc;
use std::time::SystemTime;

/// Largest `POST /token` form accepted.
const MAX_FORM: usize = 64 * 1024;

pub struct TokenService {
    pub issuer: TokenIssuer,
    pub users: UserDirectory,
    pub service: String,
    pub policy: Policy,
}

/// What a token request asked for, whichever form it came in.
struct TokenRequest {
    service: Option<String>,
    scopes: Vec<String>,
    offline: bool,
}

impl TokenService {
    pub async fn handle(&self, req: Request) -> Response {
        let result = match *req.method() {
            Method::GET => self.get(req).await,
            Method::POST => self.post(req).await,
            _ => Err(ApiError::new(ErrorCode::Unsupported).status(StatusCode::METHOD_NOT_ALLOWED)),
        };
        let mut resp = result.unwrap_or_else(IntoResponse::into_response);
        // Tokens must not be cached by anything in between.
        resp.headers_mut().insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    async fn get(&self, req: Request) -> Result<Response, ApiError> {
        let query: Vec<(String, String)> =
            req.uri().query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        let request = token_request(&query, "offline_token");
        self.check_service(&request)?;
        let (parts, _) = req.into_parts();
        let account = match parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            None => None,
            Some(h) => {
                let (name, password) = parse_basic(h).ok_or_else(|| self.bad_credentials())?;
                if let Some(account) = param(&query, "account").filter(|a| !a.is_empty() && *a != name) {
                    return Err(invalid_request(&format!("account {account:?} differs from the credentials' user")));
                }
                Some(self.login(&name, &password, super::source(&parts)).await?)
            }
        };
        self.respond(account.as_ref(), &request, false).await
    }

    async fn post(&self, req: Request) -> Result<Response, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(Body::new(body), MAX_FORM)
            .await
            .map_err(|_| oauth_error(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", "form too large"))?;
        let form: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let request = token_request(&form, "access_type");
        self.check_service(&request)?;
        let account = match param(&form, "grant_type") {
            Some("password") => {
                let (Some(name), Some(password)) = (param(&form, "username"), param(&form, "password")) else {
                    return Err(oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "username and password required",
                    ));
                };
                self.login(name, password, super::source(&parts)).await?
            }
            Some("refresh_token") => {
                let token = param(&form, "refresh_token").unwrap_or_default();
                let refused = || oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "refresh token refused");
                let (subject, generation) =
                    self.issuer.verify_refresh(token, &self.service, SystemTime::now()).map_err(|e| {
                        tracing::info!(error = %e, "refresh token refused");
                        refused()
                    })?;
                Account::User(self.users.current(&subject, &generation).await?.ok_or_else(refused)?)
            }
            other => {
                let what = format!("grant_type {:?} is not supported", other.unwrap_or(""));
                return Err(oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &what));
            }
        };
        self.respond(Some(&account), &request, true).await
    }

    async fn login(&self, name: &str, password: &str, source: std::net::IpAddr) -> Result<Account, ApiError> {
        match self.users.login(name, password, source).await {
            Ok(account) => Ok(account),
            Err(LoginError::Throttled(wait)) => Err(throttled(wait)),
            Err(LoginError::Store(e)) => Err(e.into()),
            Err(LoginError::Invalid) => {
                tracing::info!(user = %name, "token request with invalid credentials");
                Err(self.bad_credentials())
            }
        }
    }

    async fn respond(
        &self,
        account: Option<&Account>,
        request: &TokenRequest,
        oauth: bool,
    ) -> Result<Response, ApiError> {
        let access = self.grant(account, &request.scopes).await?;
        let subject = account.map(Account::name).unwrap_or("");
        let now = SystemTime::now();
        let issued = self
            .issuer
            .issue(subject, &self.service, &access, now)
            .map_err(|e| ApiError::internal("signing a token failed", e))?;
        let mut body = json!({
            "access_token": issued.token,
            "expires_in": issued.expires_in_s,
            "issued_at": issued.issued_at,
        });
        if !oauth {
            body["token"] = json!(issued.token);
        } else {
            body["scope"] = json!(access.iter().map(Access::to_scope).collect::<Vec<_>>().join(" "));
        }
        if let (true, Some(Account::User(u))) = (request.offline, account) {
            let refresh = self
                .issuer
                .issue_refresh(&u.name, &self.service, &u.generation.to_string(), now)
                .map_err(|e| ApiError::internal("signing a refresh token failed", e))?;
            body["refresh_token"] = json!(refresh);
        }
        let mut resp = (StatusCode::OK, body.to_string()).into_response();
        resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(resp)
    }

    /// The requested scopes cut down to what `account` holds.
    async fn grant(&self, account: Option<&Account>, scopes: &[String]) -> Result<Vec<Access>, ApiError> {
        let now = crate::state::now_ms();
        let mut out: Vec<Access> = Vec::new();
        for scope in scopes {
            let parsed = parse_scope(scope).map_err(|e| invalid_request(&e.to_string()))?;
            for requested in parsed {
                // Only repositories with valid names, the catalog and the
                // admin API exist here.
                let known = match requested.kind.as_str() {
                    "repository" => RepoName::parse(&requested.name).is_ok(),
                    "registry" => requested.name == "catalog",
                    "berth" => requested.name == "api",
                    _ => false,
                };
                if !known {
                    continue;
                }
                let (kind, name, actions) = (&requested.kind, &requested.name, &requested.actions);
                let actions = match account {
                    Some(Account::Robot(r)) => self.policy.granted_to_robot(r, kind, name, actions, now).await?,
                    _ => self.policy.granted(account.and_then(Account::user), kind, name, actions).await?,
                };
                match out.iter_mut().find(|a| a.kind == requested.kind && a.name == requested.name) {
                    Some(existing) => {
                        for a in actions {
                            if !existing.actions.contains(&a) {
                                existing.actions.push(a);
                            }
                        }
                    }
                    None if !actions.is_empty() => out.push(Access { actions, ..requested }),
                    None => {}
                }
            }
        }
        Ok(out)
    }

    /// Before a write: a first push creates its project (when the pusher
    /// may create projects), with the pusher as its ProjectAdmin.
    pub async fn before_push(&self, repository: &str, principal: &Principal) -> Result<(), ApiError> {
        // Every PATCH of a push comes here: the usual case (the project
        // exists) costs one cached lookup and no user query.
        if self.policy.project_exists(repository).await? {
            return Ok(());
        }
        let user = match principal {
            Principal::User(u) => Some(u.clone()),
            // Robots never create projects.
            Principal::Token(c) if !c.sub.is_empty() && !is_robot_name(&c.sub) => {
                self.users.meta().user_by_name(&c.sub).await?.map(Arc::new)
            }
            _ => None,
        };
        Ok(self.policy.ensure_project(repository, user.as_deref()).await?)
    }

    fn check_service(&self, request: &TokenRequest) -> Result<(), ApiError> {
        match &request.service {
            Some(s) if s != &self.service => {
                Err(invalid_request(&format!("this token service serves {:?}", self.service)))
            }
            _ => Ok(()),
        }
    }

    fn bad_credentials(&self) -> ApiError {
        let challenge = format!("Basic realm=\"{}\"", self.service.replace('"', ""));
        ApiError::new(ErrorCode::Unauthorized)
            .message("invalid username or password")
            .header("www-authenticate", crate::handlers::header_value(&challenge))
    }
}

/// `scope` may repeat (GET) or hold several space-separated scopes (OAuth2).
fn token_request(params: &[(String, String)], offline_key: &str) -> TokenRequest {
    TokenRequest {
        service: param(params, "service").map(str::to_owned),
        scopes: params.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.clone()).collect(),
        offline: param(params, offline_key).is_some_and(|v| v == "true" || v == "offline"),
    }
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn invalid_request(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unsupported).status(StatusCode::BAD_REQUEST).message(message.to_owned())
}

/// RFC 6749 §5.2 error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> ApiError {
    ApiError::new(ErrorCode::Denied).status(status).message(format!("{error}: {description}"))
}
