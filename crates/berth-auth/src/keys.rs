//! Token signing keys and trusted public keys.
//!
//! A token's `kid` is the libtrust key ID Distribution uses
//! (`keyIDFromCryptoKey`: SHA-256 of the DER SubjectPublicKeyInfo, the first
//! 240 bits in base32, 12 groups of 4 joined by `:`), so a Distribution
//! registry configured with our certificate finds our key, and we find keys of
//! a `rootcertbundle` the same way. Only P-256 (ES256) and RSA ≥ 2048 bits
//! (RS256) are supported: what Docker token servers use.

use crate::keyset::TrustedKey;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use sha2::{Digest, Sha256};

/// Errors never carry key bytes or the parser's detail about them.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no PEM private key block found")]
    NoPem,
    #[error("unsupported or malformed {0} (supported: P-256 EC, RSA of at least 2048 bits)")]
    Unsupported(&'static str),
    #[error("RSA key of {0} bits is too small (at least 2048)")]
    WeakRsa(usize),
    #[error("could not encode the key")]
    Encode,
}

pub(crate) const MIN_RSA_BITS: usize = 2048;

pub(crate) fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// RFC 4648 base32 without padding (libtrust trims the `=`).
fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut acc, mut bits) = (String::new(), 0u32, 0u32);
    for &byte in data {
        acc = (acc << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// libtrust key ID of a DER SubjectPublicKeyInfo.
pub fn libtrust_kid(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let encoded = base32(&digest[..30]);
    let groups: Vec<&str> = encoded.as_bytes().chunks(4).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    groups.join(":")
}

enum Private {
    Es256(p256::SecretKey),
    Rs256(Box<rsa::RsaPrivateKey>),
}

/// The token service's private key. Debug shows only the algorithm and kid.
pub struct SigningKey {
    private: Private,
    encoding: EncodingKey,
    public: TrustedKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.algorithm()).field("kid", &self.kid()).finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate_es256() -> Self {
        Self::from_p256(p256::SecretKey::random(&mut rand_core_06::OsRng)).expect("a fresh P-256 key encodes")
    }

    fn from_p256(secret: p256::SecretKey) -> Result<Self, KeyError> {
        let der = secret.to_pkcs8_der().map_err(|_| KeyError::Encode)?;
        let public = TrustedKey::from_p256(&secret.public_key())?;
        Ok(SigningKey { encoding: EncodingKey::from_ec_der(der.as_bytes()), private: Private::Es256(secret), public })
    }

    fn from_rsa(secret: rsa::RsaPrivateKey) -> Result<Self, KeyError> {
        let public = TrustedKey::from_rsa(&secret.to_public_key())?;
        // jsonwebtoken's RustCrypto signer reads PKCS#1.
        let der = secret.to_pkcs1_der().map_err(|_| KeyError::Encode)?;
        let encoding = EncodingKey::from_rsa_der(der.as_bytes());
        Ok(SigningKey { encoding, private: Private::Rs256(Box::new(secret)), public })
    }

    /// A PEM private key: PKCS#8 (`PRIVATE KEY`, EC or RSA), SEC1
    /// (`EC PRIVATE KEY`, as `openssl ecparam -genkey` writes, possibly after
    /// an `EC PARAMETERS` block) or PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let text = std::str::from_utf8(pem).map_err(|_| KeyError::NoPem)?;
        let (label, block) = private_block(text).ok_or(KeyError::NoPem)?;
        match label {
            "PRIVATE KEY" => {
                if let Ok(k) = p256::SecretKey::from_pkcs8_pem(block) {
                    Self::from_p256(k)
                } else {
                    let k =
                        rsa::RsaPrivateKey::from_pkcs8_pem(block).map_err(|_| KeyError::Unsupported("PKCS#8 key"))?;
                    Self::from_rsa(k)
                }
            }
            "EC PRIVATE KEY" => Self::from_p256(
                p256::SecretKey::from_sec1_pem(block).map_err(|_| KeyError::Unsupported("SEC1 EC key"))?,
            ),
            "RSA PRIVATE KEY" => Self::from_rsa(
                rsa::RsaPrivateKey::from_pkcs1_pem(block).map_err(|_| KeyError::Unsupported("PKCS#1 RSA key"))?,
            ),
            _ => Err(KeyError::Unsupported("PEM block")),
        }
    }

    /// PKCS#8 PEM, for persisting a generated key.
    pub fn to_pkcs8_pem(&self) -> Result<String, KeyError> {
        let pem = match &self.private {
            Private::Es256(k) => k.to_pkcs8_pem(LineEnding::LF),
            Private::Rs256(k) => k.to_pkcs8_pem(LineEnding::LF),
        };
        Ok(pem.map_err(|_| KeyError::Encode)?.to_string())
    }

    pub fn kid(&self) -> &str {
        self.public.kid()
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.private {
            Private::Es256(_) => Algorithm::ES256,
            Private::Rs256(_) => Algorithm::RS256,
        }
    }

    /// RFC 7517 public JWK with our kid, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> serde_json::Value {
        self.public.jwk()
    }

    /// The public half, as a verifier trusts it.
    pub fn public_key(&self) -> TrustedKey {
        self.public.clone()
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }
}

/// The first PEM block whose label ends in `PRIVATE KEY`, from BEGIN to END.
fn private_block(text: &str) -> Option<(&str, &str)> {
    let mut from = 0;
    while let Some(i) = text[from..].find("-----BEGIN ") {
        let start = from + i;
        let label_start = start + "-----BEGIN ".len();
        let label = &text[label_start..label_start + text[label_start..].find("-----")?];
        let end_marker = format!("-----END {label}-----");
        let end = label_start + text[label_start..].find(&end_marker)? + end_marker.len();
        if label.ends_with("PRIVATE KEY") {
            return Some((label, &text[start..end]));
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests;
