//! The keys a [`TokenVerifier`](crate::TokenVerifier) trusts, and nothing
//! else: the local issuer's key, Distribution's `auth.token.rootcertbundle`
//! (each certificate's key under its libtrust kid; the certificates are also
//! the roots an `x5c` chain must lead to) and `auth.token.jwks` (keys under
//! their own `kid`). A token never brings its own key material.
//!
//! Each [`TrustedKey`] verifies one family only (P-256 → ES256, RSA ≥ 2048
//! bits → RS256/384/512), so no header can make a public key an HMAC secret.

use crate::keys::{b64url, libtrust_kid, KeyError, MIN_RSA_BITS};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
enum PublicKind {
    P256 { x: Vec<u8>, y: Vec<u8> },
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// A public key that may sign tokens we accept, under its key ID.
#[derive(Clone)]
pub struct TrustedKey {
    kid: String,
    spki_der: Vec<u8>,
    kind: PublicKind,
    decoding: DecodingKey,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey").field("kid", &self.kid).field("alg", &self.algorithm()).finish()
    }
}

impl TrustedKey {
    pub(crate) fn from_p256(key: &p256::PublicKey) -> Result<Self, KeyError> {
        let spki = key.to_public_key_der().map_err(|_| KeyError::Encode)?;
        let point = key.to_encoded_point(false);
        let (x, y) = (point.x().ok_or(KeyError::Encode)?, point.y().ok_or(KeyError::Encode)?);
        Ok(TrustedKey {
            kid: libtrust_kid(spki.as_bytes()),
            spki_der: spki.as_bytes().to_vec(),
            kind: PublicKind::P256 { x: x.to_vec(), y: y.to_vec() },
            decoding: DecodingKey::from_ec_der(point.as_bytes()),
        })
    }

    pub(crate) fn from_rsa(key: &rsa::RsaPublicKey) -> Result<Self, KeyError> {
        if key.size() * 8 < MIN_RSA_BITS {
            return Err(KeyError::WeakRsa(key.size() * 8));
        }
        let spki = key.to_public_key_der().map_err(|_| KeyError::Encode)?;
        let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
        Ok(TrustedKey {
            kid: libtrust_kid(spki.as_bytes()),
            spki_der: spki.as_bytes().to_vec(),
            decoding: DecodingKey::from_rsa_raw_components(&n, &e),
            kind: PublicKind::Rsa { n, e },
        })
    }

    /// A DER SubjectPublicKeyInfo (a certificate's key), under its libtrust kid.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(k) = p256::PublicKey::from_public_key_der(der) {
            return Self::from_p256(&k);
        }
        let k = rsa::RsaPublicKey::from_public_key_der(der).map_err(|_| KeyError::Unsupported("public key"))?;
        Self::from_rsa(&k)
    }

    /// An EC P-256 point from its JWK coordinates.
    pub(crate) fn from_p256_xy(x: &[u8], y: &[u8]) -> Result<Self, KeyError> {
        let point = [&[4u8][..], x, y].concat();
        Self::from_p256(&p256::PublicKey::from_sec1_bytes(&point).map_err(|_| KeyError::Unsupported("EC JWK"))?)
    }

    /// An RSA key from its JWK modulus and exponent.
    pub(crate) fn from_rsa_ne(n: &[u8], e: &[u8]) -> Result<Self, KeyError> {
        let (n, e) = (rsa::BigUint::from_bytes_be(n), rsa::BigUint::from_bytes_be(e));
        Self::from_rsa(&rsa::RsaPublicKey::new(n, e).map_err(|_| KeyError::Unsupported("RSA JWK"))?)
    }

    /// The same key under another ID (a JWKS entry's own `kid`).
    pub(crate) fn with_kid(mut self, kid: String) -> Self {
        self.kid = kid;
        self
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match self.kind {
            PublicKind::P256 { .. } => Algorithm::ES256,
            PublicKind::Rsa { .. } => Algorithm::RS256,
        }
    }

    /// Whether a token's `alg` fits this key: ES256 for P-256, RS256/384/512
    /// for RSA. The key decides the family, so a header can never turn a
    /// public key into an HMAC secret.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        match self.kind {
            PublicKind::P256 { .. } => alg == Algorithm::ES256,
            PublicKind::Rsa { .. } => matches!(alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512),
        }
    }

    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    pub fn jwk(&self) -> serde_json::Value {
        match &self.kind {
            PublicKind::P256 { x, y } => serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": b64url(x), "y": b64url(y),
                "kid": self.kid, "alg": "ES256", "use": "sig",
            }),
            PublicKind::Rsa { n, e } => serde_json::json!({
                "kty": "RSA", "n": b64url(n), "e": b64url(e), "kid": self.kid, "alg": "RS256", "use": "sig",
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("rootcertbundle: no certificate found")]
    NoCertificates,
    #[error("rootcertbundle: certificate {index}: {reason}")]
    Certificate { index: usize, reason: String },
    #[error("jwks: {0}")]
    Jwks(String),
    #[error("key {kid:?}: {source}")]
    Key { kid: String, source: KeyError },
}

#[derive(Debug, Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<TrustedKey>>,
    roots: Vec<CertificateDer<'static>>,
}

fn jwk_bytes(field: &str, v: &serde_json::Value) -> Result<Vec<u8>, KeySetError> {
    let s = v.as_str().ok_or_else(|| KeySetError::Jwks(format!("member {field:?} missing")))?;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| KeySetError::Jwks(format!("member {field:?} is not base64url")))
}

impl KeySet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` under its kid (replacing a key of the same kid).
    pub fn insert(&mut self, key: TrustedKey) {
        self.by_kid.insert(key.kid().to_owned(), Arc::new(key));
    }

    pub fn get(&self, kid: &str) -> Option<&Arc<TrustedKey>> {
        self.by_kid.get(kid)
    }

    pub fn len(&self) -> usize {
        self.by_kid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }

    /// The rootcertbundle certificates, as DER.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// A `rootcertbundle` file's contents: PEM certificates. Every one must
    /// parse and hold a supported key, so a typo fails at start-up.
    pub fn add_root_cert_bundle(&mut self, pem: &[u8]) -> Result<usize, KeySetError> {
        let mut added = 0;
        for (index, cert) in CertificateDer::pem_slice_iter(pem).enumerate() {
            let bad = |reason: String| KeySetError::Certificate { index, reason };
            let cert = cert.map_err(|e| bad(format!("bad PEM: {e}")))?;
            let anchor = webpki::anchor_from_trusted_cert(&cert).map_err(|e| bad(format!("{e:?}")))?;
            let spki = webpki::spki_for_anchor(&anchor);
            let key = TrustedKey::from_spki_der(spki.as_ref()).map_err(|e| bad(e.to_string()))?;
            self.insert(key);
            self.roots.push(cert.into_owned());
            added += 1;
        }
        if added == 0 {
            return Err(KeySetError::NoCertificates);
        }
        Ok(added)
    }

    /// A `jwks` file's contents (RFC 7517 `{"keys":[…]}`). Keys not meant for
    /// signatures (`use` other than `sig`) and other key types are skipped;
    /// returns how many were added.
    pub fn add_jwks(&mut self, json: &[u8]) -> Result<usize, KeySetError> {
        let set: serde_json::Value = serde_json::from_slice(json).map_err(|_| KeySetError::Jwks("not JSON".into()))?;
        let keys = set["keys"].as_array().ok_or_else(|| KeySetError::Jwks("no \"keys\" array".into()))?;
        let mut added = 0;
        for jwk in keys {
            if jwk.get("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let key = match (jwk["kty"].as_str(), jwk["crv"].as_str()) {
                (Some("EC"), Some("P-256")) => {
                    TrustedKey::from_p256_xy(&jwk_bytes("x", &jwk["x"])?, &jwk_bytes("y", &jwk["y"])?)
                }
                (Some("RSA"), _) => TrustedKey::from_rsa_ne(&jwk_bytes("n", &jwk["n"])?, &jwk_bytes("e", &jwk["e"])?),
                _ => continue,
            };
            let kid = jwk["kid"].as_str().map(str::to_owned);
            let key = key.map_err(|source| KeySetError::Key { kid: kid.clone().unwrap_or_default(), source })?;
            // Distribution 3.x looks JWKS keys up by their own kid; without one,
            // the libtrust kid.
            self.insert(match kid {
                Some(kid) => key.with_kid(kid),
                None => key,
            });
            added += 1;
        }
        Ok(added)
    }
}
