//! Hand-made tokens for tests: header and claims written as JSON, signed
//! with the RustCrypto primitives directly, not through this crate's issuer.

use base64::Engine;
use p256::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

pub const EC_PEM: &str = include_str!("../tests/data/ec-pkcs8.pem");
pub const RSA_PEM: &str = include_str!("../tests/data/rsa-pkcs8.pem");
pub const EC_KID: &str = "C6H4:VQTC:NZKL:CKUQ:MHX3:6FBD:VKPH:RELU:7EX7:DHVC:MVVW:FHGM";
pub const RSA_KID: &str = "FH5O:YP4V:DE6M:LNIT:BM7X:JF6Q:DYHW:QOFS:PL3T:LS32:KNTE:BVKS";
pub const ISS: &str = "test-issuer";
pub const AUD: &str = "registry.test";
pub const T: u64 = 1_900_000_000;

pub fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T)
}

pub fn at(offset: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(T.saturating_add_signed(offset))
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn claims() -> Value {
    json!({
        "iss": ISS, "sub": "alice", "aud": AUD, "exp": T + 300, "nbf": T, "iat": T, "jti": "j1",
        "access": [{"type": "repository", "name": "foo/bar", "actions": ["pull"]}],
    })
}

fn input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
}

pub fn ec_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_pkcs8_pem(EC_PEM).unwrap()
}

pub fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::from_pkcs8_pem(RSA_PEM).unwrap()
}

pub fn es256(key: &p256::ecdsa::SigningKey, header: &Value, claims: &Value) -> String {
    use p256::ecdsa::signature::Signer;
    let input = input(header, claims);
    let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_bytes()))
}

pub fn rs256(key: &rsa::RsaPrivateKey, header: &Value, claims: &Value) -> String {
    use rsa::signature::{SignatureEncoding, Signer};
    let input = input(header, claims);
    let sig = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key.clone()).sign(input.as_bytes());
    format!("{input}.{}", b64(&sig.to_vec()))
}

pub fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    use hmac::Mac;
    let input = input(header, claims);
    let mut mac = hmac::Hmac::<rsa::sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// A token signed by the fixture EC key under its kid.
pub fn ec_token(claims: &Value) -> String {
    es256(&ec_key(), &json!({"alg": "ES256", "typ": "JWT", "kid": EC_KID}), claims)
}
