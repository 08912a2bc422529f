//! Authentication at the edge, before dispatch. With no provider anyone may
//! use the registry, exactly like `registry:2` without `auth`.

use crate::error::ApiError;
use berth_auth::{parse_basic, Htpasswd};
use berth_oci::ErrorCode;
use http::{HeaderMap, HeaderValue};
use std::sync::Arc;

#[derive(Clone, Default)]
pub enum Authenticator {
    #[default]
    Anonymous,
    Htpasswd(Arc<Htpasswd>),
}

impl Authenticator {
    /// `Ok` if the request may proceed; the 401 challenge otherwise.
    pub async fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self {
            Authenticator::Anonymous => Ok(()),
            Authenticator::Htpasswd(h) => {
                let credentials =
                    headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(parse_basic);
                if let Some((user, password)) = credentials {
                    if h.verify(&user, &password).await {
                        return Ok(());
                    }
                    tracing::info!(user = %user, "basic authentication failed");
                }
                let challenge = HeaderValue::from_str(&h.challenge())
                    .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"registry\""));
                Err(ApiError::new(ErrorCode::Unauthorized).header("www-authenticate", challenge))
            }
        }
    }
}
