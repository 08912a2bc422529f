//! The signature half of token verification, shared by access and refresh
//! tokens: parse the compact JWS strictly, refuse what could let a token pick
//! its own key or algorithm, find the trusted key, check the signature.
//!
//! `x5c` (Distribution's way for a token server to name its certificate): the
//! leaf is accepted when its key is already trusted (a rootcertbundle
//! certificate's, or the local issuer's: the signature must still verify), or
//! when the chain verifies (webpki, any extended key usage as Distribution's
//! `ExtKeyUsageAny`, at the verification time) up to a rootcertbundle
//! certificate. `jwk`, `jku` and `x5u` are refused outright: key material or
//! URLs supplied by the token are never used.

use crate::keyset::KeySet;
use crate::keyset::TrustedKey;
use crate::verify::TokenError;
use base64::Engine;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

/// A bearer token is a few hundred bytes; an `x5c` chain a few KiB.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
const MAX_CHAIN: usize = 4;

/// Keys and roots a signature may verify against, with the algorithms allowed.
pub(crate) struct Trust {
    pub keys: KeySet,
    pub anchors: Vec<TrustAnchor<'static>>,
    pub algorithms: Vec<Algorithm>,
}

impl Trust {
    pub fn new(keys: KeySet, algorithms: Vec<Algorithm>) -> Self {
        // Roots were parsed when the set was loaded.
        let anchors = keys
            .roots()
            .iter()
            .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok().map(|a| a.to_owned()))
            .collect();
        Trust { keys, anchors, algorithms }
    }
}

/// A signature-verified token: its `typ` header and decoded claims JSON.
pub(crate) struct Verified {
    pub typ: Option<String>,
    pub claims: Vec<u8>,
}

fn b64url(part: &str) -> Result<Vec<u8>, TokenError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Malformed)
}

/// Accepts any extended key usage, as Distribution's `x509.ExtKeyUsageAny`.
struct AnyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, mut iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        iter.try_for_each(|p| p.map(drop))
    }
}

static CHAIN_ALGS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::ED25519,
];

fn key_from_chain(trust: &Trust, x5c: &serde_json::Value, now: SystemTime) -> Result<Arc<TrustedKey>, TokenError> {
    let list = x5c.as_array().filter(|l| !l.is_empty() && l.len() <= MAX_CHAIN).ok_or(TokenError::Malformed)?;
    let mut der = Vec::with_capacity(list.len());
    for c in list {
        let s = c.as_str().ok_or(TokenError::Malformed)?;
        // x5c is standard base64, not base64url (RFC 7515 §4.1.6).
        let bytes = base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| TokenError::Malformed)?;
        der.push(CertificateDer::from(bytes));
    }
    let leaf = webpki::EndEntityCert::try_from(&der[0]).map_err(|_| TokenError::UntrustedChain)?;
    let spki = leaf.subject_public_key_info();
    let kid = crate::keys::libtrust_kid(spki.as_ref());
    // The leaf only names a key we already trust (a rootcertbundle
    // certificate's, or ours): the signature check below still needs that key.
    if let Some(key) = trust.keys.get(&kid).filter(|k| k.spki_der() == spki.as_ref()) {
        return Ok(key.clone());
    }
    let secs = now.duration_since(SystemTime::UNIX_EPOCH).map_err(|_| TokenError::UntrustedChain)?;
    leaf.verify_for_usage(
        CHAIN_ALGS,
        &trust.anchors,
        &der[1..],
        UnixTime::since_unix_epoch(secs),
        AnyUsage,
        None,
        None,
    )
    .map_err(|_| TokenError::UntrustedChain)?;
    Ok(Arc::new(TrustedKey::from_spki_der(spki.as_ref()).map_err(|_| TokenError::UntrustedChain)?))
}

/// Verifies the compact JWS `token` against `trust`. Claims are not checked.
pub(crate) fn verify_signature(trust: &Trust, token: &str, now: SystemTime) -> Result<Verified, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&b64url(head)?).map_err(|_| TokenError::Malformed)?;
    let alg = header.get("alg").and_then(|a| a.as_str()).ok_or(TokenError::Malformed)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::Unsigned);
    }
    let alg = Algorithm::from_str(alg).map_err(|_| TokenError::Algorithm)?;
    if alg.family() == AlgorithmFamily::Hmac {
        return Err(TokenError::Hmac);
    }
    if !trust.algorithms.contains(&alg) {
        return Err(TokenError::Algorithm);
    }
    if ["jwk", "jku", "x5u"].iter().any(|k| header.contains_key(*k)) {
        return Err(TokenError::EmbeddedKey);
    }
    // No header extension is understood, so a critical one cannot be honoured.
    if header.contains_key("crit") {
        return Err(TokenError::Malformed);
    }
    let key = match (header.get("x5c"), header.get("kid")) {
        (Some(x5c), _) => key_from_chain(trust, x5c, now)?,
        (None, Some(kid)) => {
            trust.keys.get(kid.as_str().ok_or(TokenError::Malformed)?).ok_or(TokenError::UnknownKey)?.clone()
        }
        (None, None) => return Err(TokenError::UnknownKey),
    };
    if !key.accepts(alg) {
        return Err(TokenError::Algorithm);
    }
    b64url(sig)?;
    let message = &token[..head.len() + 1 + body.len()];
    match jsonwebtoken::crypto::verify(sig, message.as_bytes(), key.decoding_key(), alg) {
        Ok(true) => {}
        _ => return Err(TokenError::Signature),
    }
    let typ = header.get("typ").and_then(|t| t.as_str()).map(str::to_owned);
    Ok(Verified { typ, claims: b64url(body)? })
}

#[cfg(test)]
mod tests;
