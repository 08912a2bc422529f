use super::*;
use crate::keyset::TrustedKey;

// Expected values computed independently with Python `cryptography`
// (tests/data/README.md).
const EC_KID: &str = "C6H4:VQTC:NZKL:CKUQ:MHX3:6FBD:VKPH:RELU:7EX7:DHVC:MVVW:FHGM";
const EC_X: &str = "kwklh-axPEGVC5xXwWUil3bGCHxQrDB2aW3Pzo6vgGw";
const EC_Y: &str = "ux4DJpeqMcp56Qq0xyQat_nWNedKHJbkKakXtgVUTDU";
const RSA_KID: &str = "FH5O:YP4V:DE6M:LNIT:BM7X:JF6Q:DYHW:QOFS:PL3T:LS32:KNTE:BVKS";

pub(crate) const EC_SEC1: &str = include_str!("../../tests/data/ec-sec1.pem");
pub(crate) const EC_PKCS8: &str = include_str!("../../tests/data/ec-pkcs8.pem");
pub(crate) const RSA_PKCS1: &str = include_str!("../../tests/data/rsa-pkcs1.pem");
pub(crate) const RSA_PKCS8: &str = include_str!("../../tests/data/rsa-pkcs8.pem");

#[test]
fn base32_rfc4648_vectors() {
    // RFC 4648 §10, padding trimmed as libtrust does.
    for (input, want) in
        [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("fooba", "MZXW6YTB"), ("foobar", "MZXW6YTBOI")]
    {
        assert_eq!(base32(input.as_bytes()), want);
    }
}

#[test]
fn ec_keys_in_both_encodings() {
    for pem in [EC_SEC1, EC_PKCS8] {
        let key = SigningKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(key.kid(), EC_KID);
        assert_eq!(key.algorithm(), Algorithm::ES256);
        let jwk = key.public_jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["x"], EC_X);
        assert_eq!(jwk["y"], EC_Y);
        assert_eq!(jwk["kid"], EC_KID);
    }
}

#[test]
fn ec_key_after_ec_parameters_block() {
    // `openssl ecparam -genkey` without -noout writes the curve first.
    let pem = format!("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{EC_SEC1}");
    assert_eq!(SigningKey::from_pem(pem.as_bytes()).unwrap().kid(), EC_KID);
}

#[test]
fn rsa_keys_in_both_encodings() {
    for pem in [RSA_PKCS1, RSA_PKCS8] {
        let key = SigningKey::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(key.kid(), RSA_KID);
        assert_eq!(key.algorithm(), Algorithm::RS256);
        let jwk = key.public_jwk();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["kid"], RSA_KID);
    }
}

#[test]
fn pkcs8_round_trip_keeps_the_kid() {
    let key = SigningKey::generate_es256();
    let pem = key.to_pkcs8_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(SigningKey::from_pem(pem.as_bytes()).unwrap().kid(), key.kid());
    let rsa = SigningKey::from_pem(RSA_PKCS1.as_bytes()).unwrap();
    assert_eq!(SigningKey::from_pem(rsa.to_pkcs8_pem().unwrap().as_bytes()).unwrap().kid(), RSA_KID);
    assert_ne!(SigningKey::generate_es256().kid(), key.kid());
}

#[test]
fn kid_format() {
    let kid = SigningKey::generate_es256().kid().to_owned();
    let groups: Vec<&str> = kid.split(':').collect();
    assert_eq!(groups.len(), 12);
    assert!(groups
        .iter()
        .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))));
}

#[test]
fn public_key_from_spki_matches() {
    let key = SigningKey::from_pem(EC_PKCS8.as_bytes()).unwrap();
    let public = TrustedKey::from_spki_der(key.public_key().spki_der()).unwrap();
    assert_eq!(public.kid(), EC_KID);
    assert!(public.accepts(Algorithm::ES256));
    assert!(
        !public.accepts(Algorithm::HS256) && !public.accepts(Algorithm::RS256) && !public.accepts(Algorithm::ES384)
    );
    let rsa = SigningKey::from_pem(RSA_PKCS8.as_bytes()).unwrap().public_key();
    assert!(rsa.accepts(Algorithm::RS256) && !rsa.accepts(Algorithm::HS256) && !rsa.accepts(Algorithm::ES256));
}

#[test]
fn refusals_carry_no_key_material() {
    assert!(matches!(SigningKey::from_pem(b"nothing here"), Err(KeyError::NoPem)));
    let public_only = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    assert!(matches!(SigningKey::from_pem(public_only.as_bytes()), Err(KeyError::NoPem)));
    // A corrupted body: the error names the format only.
    let broken = EC_PKCS8.replace("MIG", "MIX");
    let err = SigningKey::from_pem(broken.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("PKCS#8") && !err.contains("MIX"), "{err}");
    let debug = format!("{:?}", SigningKey::from_pem(EC_PKCS8.as_bytes()).unwrap());
    assert!(debug.contains(EC_KID) && !debug.contains("MIG"), "{debug}");
}

#[test]
fn weak_rsa_is_refused() {
    let weak = include_str!("../../tests/data/rsa-1024.pem");
    assert!(matches!(SigningKey::from_pem(weak.as_bytes()), Err(KeyError::WeakRsa(1024))));
}
