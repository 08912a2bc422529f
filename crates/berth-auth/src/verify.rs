//! Verifying registry bearer tokens: ours, or an external token server's
//! configured as in Distribution (`auth.token.issuer`, `service`,
//! `rootcertbundle`, `jwks`). Only configured keys are trusted (see `jws.rs`
//! for the header rules); then `iss`, `aud` (a string or an array), `exp`
//! (required), `nbf`, with a small leeway for clock skew.
//!
//! Clients send the same token on every request of a pull, so successes are
//! cached by SHA-256 of the token until the token's `exp` and never beyond; a
//! failure is never cached.

use crate::jws::{self, Trust};
use crate::keyset::KeySet;
use crate::scope::Access;
use jsonwebtoken::Algorithm;
use moka::sync::Cache;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Why a token was refused. Never holds the token or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("malformed token")]
    Malformed,
    #[error("unsigned token (alg none)")]
    Unsigned,
    #[error("HMAC-signed tokens are not accepted")]
    Hmac,
    #[error("token algorithm not allowed for its key")]
    Algorithm,
    #[error("token header carries key material (jwk, jku or x5u); only configured keys are trusted")]
    EmbeddedKey,
    #[error("token signed by an untrusted key")]
    UnknownKey,
    #[error("token certificate chain does not lead to a trusted certificate")]
    UntrustedChain,
    #[error("bad token signature")]
    Signature,
    #[error("token issued by another issuer")]
    Issuer,
    #[error("token meant for another service")]
    Audience,
    #[error("token has no expiry")]
    NoExpiry,
    #[error("token expired")]
    Expired,
    #[error("token not valid yet")]
    NotYetValid,
    #[error("a refresh token is not an access token")]
    RefreshToken,
    #[error("not a refresh token")]
    NotRefreshToken,
}

/// What a verified access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    pub exp: i64,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    pub access: Vec<Access>,
}

impl Claims {
    /// Whether the token grants `action` on the resource; `*` grants every action.
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| a.allows(kind, name, action))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// NumericDate: seconds, possibly fractional (RFC 7519 §2).
fn de_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n: Option<serde_json::Number> = Option::deserialize(d)?;
    Ok(n.and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f.floor() as i64))))
}

/// The claims as they come, before the checks decide what is required.
#[derive(Deserialize)]
pub(crate) struct RawClaims {
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    aud: Option<OneOrMany>,
    #[serde(default, deserialize_with = "de_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "de_date")]
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "de_date")]
    iat: Option<i64>,
    jti: Option<String>,
    access: Option<Vec<Access>>,
    /// `refresh` on our refresh tokens.
    pub token_use: Option<String>,
    pub generation: Option<String>,
}

pub(crate) fn unix(now: SystemTime) -> i64 {
    now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Checks the registered claims shared by access and refresh tokens.
pub(crate) fn check_claims(
    bytes: &[u8],
    issuer: &str,
    audience: &str,
    leeway: Duration,
    now: SystemTime,
) -> Result<(RawClaims, Claims), TokenError> {
    let raw: RawClaims = serde_json::from_slice(bytes).map_err(|_| TokenError::Malformed)?;
    let (now, leeway) = (unix(now), leeway.as_secs() as i64);
    if raw.iss.as_deref() != Some(issuer) {
        return Err(TokenError::Issuer);
    }
    let aud = match &raw.aud {
        Some(OneOrMany::One(a)) => vec![a.clone()],
        Some(OneOrMany::Many(a)) => a.clone(),
        None => vec![],
    };
    if !aud.iter().any(|a| a == audience) {
        return Err(TokenError::Audience);
    }
    let exp = raw.exp.ok_or(TokenError::NoExpiry)?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    if raw.nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf) {
        return Err(TokenError::NotYetValid);
    }
    let claims = Claims {
        iss: issuer.to_owned(),
        sub: raw.sub.clone().unwrap_or_default(),
        aud,
        exp,
        nbf: raw.nbf,
        iat: raw.iat,
        jti: raw.jti.clone(),
        access: raw.access.clone().unwrap_or_default(),
    };
    Ok((raw, claims))
}

/// `typ` of our refresh tokens (RFC 8725 §3.11: distinct kinds, distinct types).
pub(crate) const REFRESH_TYP: &str = "berth-refresh+jwt";

pub struct TokenVerifier {
    trust: Trust,
    issuer: String,
    audience: String,
    leeway: Duration,
    cache: Cache<[u8; 32], Arc<Claims>>,
}

/// Cached claims expire at the token's `exp` as seen by the wall clock, and
/// after an hour at most (a far-future `exp` must not overflow the timer).
/// Hits are also checked against the `now` given to `verify`.
struct UntilExp;

const MAX_CACHED: Duration = Duration::from_secs(3600);

impl moka::Expiry<[u8; 32], Arc<Claims>> for UntilExp {
    fn expire_after_create(&self, _: &[u8; 32], claims: &Arc<Claims>, _: Instant) -> Option<Duration> {
        let left = claims.exp.saturating_sub(unix(SystemTime::now())).clamp(0, MAX_CACHED.as_secs() as i64);
        Some(Duration::from_secs(left as u64))
    }
}

impl TokenVerifier {
    /// Trusts `keys` for tokens from `issuer` meant for `audience` (the
    /// `service`). Defaults: ES256 and RS256, 5 s leeway, 10 000 cached tokens.
    pub fn new(keys: KeySet, issuer: &str, audience: &str) -> Self {
        TokenVerifier {
            trust: Trust::new(keys, vec![Algorithm::ES256, Algorithm::RS256]),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway: Duration::from_secs(5),
            cache: Cache::builder().max_capacity(10_000).expire_after(UntilExp).build(),
        }
    }

    /// Algorithms a token may use (each key still accepts only its own family).
    pub fn with_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.trust.algorithms = algorithms.to_vec();
        self
    }

    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    pub fn with_cache_capacity(mut self, entries: u64) -> Self {
        self.cache = Cache::builder().max_capacity(entries).expire_after(UntilExp).build();
        self
    }

    /// Verifies an access token at `now`.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Arc<Claims>, TokenError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.cache.get(&key) {
            // Cached until exp, without the leeway; past it, verify afresh.
            if unix(now) < claims.exp {
                return Ok(claims);
            }
        }
        let verified = jws::verify_signature(&self.trust, token, now)?;
        if verified.typ.as_deref() == Some(REFRESH_TYP) {
            return Err(TokenError::RefreshToken);
        }
        let (raw, claims) = check_claims(&verified.claims, &self.issuer, &self.audience, self.leeway, now)?;
        if raw.token_use.is_some_and(|u| u != "access") {
            return Err(TokenError::RefreshToken);
        }
        let claims = Arc::new(claims);
        if unix(now) < claims.exp {
            self.cache.insert(key, claims.clone());
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests;
