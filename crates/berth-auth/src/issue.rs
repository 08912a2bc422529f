//! Issuing tokens: short-lived access tokens as Distribution's token spec
//! describes them (`docs/spec/auth/jwt.md`), and long-lived refresh tokens for
//! the OAuth2 `refresh_token` grant and `offline_token=true`.
//!
//! A refresh token is a JWT signed by the same key but typed apart (header
//! `typ: berth-refresh+jwt`, claim `token_use: refresh`, no `access`): our
//! verifier refuses it as an access token and refuses an access token as a
//! refresh token. Its `generation` claim is compared by the server with the
//! user's current generation, so changing that (on a password change, say)
//! revokes every refresh token of the user at once.

use crate::jws::{self, Trust};
use crate::keys::SigningKey;
use crate::keyset::{KeySet, TrustedKey};
use crate::scope::Access;
use crate::verify::{check_claims, unix, TokenError, REFRESH_TYP};
use jsonwebtoken::Header;
use serde::Serialize;
use std::time::{Duration, SystemTime};

#[derive(Debug, thiserror::Error)]
#[error("could not sign the token")]
pub struct IssueError;

/// An access token and what `/token` answers with it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub expires_in_s: u64,
    /// RFC 3339, UTC.
    pub issued_at: String,
}

#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    // A string, not an array: Distribution 2.x reads `aud` as a string.
    aud: &'a str,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    access: &'a [Access],
}

#[derive(Serialize)]
struct RefreshClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    token_use: &'static str,
    generation: &'a str,
}

pub struct TokenIssuer {
    key: SigningKey,
    issuer: String,
    ttl: Duration,
    refresh_ttl: Duration,
    own: Trust,
}

fn jti() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `1970-01-01T00:00:00Z` form (the token spec's `issued_at`).
pub fn rfc3339(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

impl TokenIssuer {
    /// Defaults: access tokens live 5 minutes (Docker Hub's), refresh tokens 90 days.
    pub fn new(key: SigningKey, issuer: &str) -> Self {
        let mut keys = KeySet::new();
        keys.insert(key.public_key());
        let own = Trust::new(keys, vec![key.algorithm()]);
        TokenIssuer {
            key,
            issuer: issuer.to_owned(),
            ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(90 * 86_400),
            own,
        }
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn with_refresh_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Our public key, for the verifier's [`KeySet`].
    pub fn public_key(&self) -> TrustedKey {
        self.key.public_key()
    }

    fn header(&self, typ: &str) -> Header {
        let mut header = Header::new(self.key.algorithm());
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.key.kid().to_owned());
        header
    }

    /// An access token for `subject` on the service `audience`, granting `access`.
    pub fn issue(
        &self,
        subject: &str,
        audience: &str,
        access: &[Access],
        now: SystemTime,
    ) -> Result<Issued, IssueError> {
        let iat = unix(now);
        let claims = AccessClaims {
            iss: &self.issuer,
            sub: subject,
            aud: audience,
            exp: iat + self.ttl.as_secs() as i64,
            nbf: iat,
            iat,
            jti: jti(),
            access,
        };
        let token =
            jsonwebtoken::encode(&self.header("JWT"), &claims, self.key.encoding_key()).map_err(|_| IssueError)?;
        Ok(Issued { token, expires_in_s: self.ttl.as_secs(), issued_at: rfc3339(iat) })
    }

    /// A refresh token for `subject` on `audience`, valid while the user's
    /// generation is still `generation`.
    pub fn issue_refresh(
        &self,
        subject: &str,
        audience: &str,
        generation: &str,
        now: SystemTime,
    ) -> Result<String, IssueError> {
        let iat = unix(now);
        let claims = RefreshClaims {
            iss: &self.issuer,
            sub: subject,
            aud: audience,
            exp: iat + self.refresh_ttl.as_secs() as i64,
            nbf: iat,
            iat,
            jti: jti(),
            token_use: "refresh",
            generation,
        };
        jsonwebtoken::encode(&self.header(REFRESH_TYP), &claims, self.key.encoding_key()).map_err(|_| IssueError)
    }

    /// Checks one of our refresh tokens for `audience`: `(subject, generation)`.
    /// The caller must still compare the generation with the user's.
    pub fn verify_refresh(&self, token: &str, audience: &str, now: SystemTime) -> Result<(String, String), TokenError> {
        let verified = jws::verify_signature(&self.own, token, now)?;
        let (raw, claims) = check_claims(&verified.claims, &self.issuer, audience, Duration::from_secs(5), now)?;
        if verified.typ.as_deref() != Some(REFRESH_TYP) || raw.token_use.as_deref() != Some("refresh") {
            return Err(TokenError::NotRefreshToken);
        }
        let generation = raw.generation.ok_or(TokenError::NotRefreshToken)?;
        Ok((claims.sub, generation))
    }
}

#[cfg(test)]
mod tests;
