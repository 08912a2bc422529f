//! Trust from a rootcertbundle (kid and x5c) and from a jwks file.

use crate::keys::SigningKey;
use crate::keyset::{KeySet, KeySetError};
use crate::test_util::*;
use crate::verify::{TokenError, TokenVerifier};
use base64::Engine;
use p256::pkcs8::DecodePrivateKey;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use serde_json::{json, Value};

struct Pki {
    ca: rcgen::Certificate,
    leaf: rcgen::Certificate,
    leaf_key: p256::ecdsa::SigningKey,
}

fn p256_of(kp: &KeyPair) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_pkcs8_der(&kp.serialize_der()).unwrap()
}

fn pki() -> Pki {
    let ca_kp = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(vec![]).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_kp).unwrap();
    let leaf_kp = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["token-signer".into()]).unwrap().signed_by(&leaf_kp, &ca, &ca_kp).unwrap();
    Pki { ca, leaf, leaf_key: p256_of(&leaf_kp) }
}

fn std_b64(der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(der)
}

fn verifier(bundle: &str) -> TokenVerifier {
    let mut keys = KeySet::new();
    keys.add_root_cert_bundle(bundle.as_bytes()).unwrap();
    TokenVerifier::new(keys, ISS, AUD)
}

fn x5c_header(chain: &[&rcgen::Certificate]) -> Value {
    json!({"alg": "ES256", "typ": "JWT", "x5c": chain.iter().map(|c| std_b64(c.der())).collect::<Vec<_>>()})
}

#[test]
fn rootcertbundle_key_by_libtrust_kid() {
    // A self-signed certificate for the fixture key: its kid is known.
    let kp = KeyPair::from_pem(EC_PEM).unwrap();
    let cert = CertificateParams::new(vec![]).unwrap().self_signed(&kp).unwrap();
    let v = verifier(&cert.pem());
    assert_eq!(v.verify(&ec_token(&claims()), now()).unwrap().sub, "alice");
    // The same certificate as x5c: its key is a trusted one.
    assert!(v.verify(&es256(&ec_key(), &x5c_header(&[&cert]), &claims()), now()).is_ok());
}

#[test]
fn x5c_chain_to_a_bundled_ca() {
    let pki = pki();
    let v = verifier(&pki.ca.pem());
    let token = es256(&pki.leaf_key, &x5c_header(&[&pki.leaf]), &claims());
    assert_eq!(v.verify(&token, now()).unwrap().sub, "alice");
    assert!(v.verify(&es256(&pki.leaf_key, &x5c_header(&[&pki.leaf, &pki.ca]), &claims()), now()).is_ok());
    // Right chain, wrong signer.
    let forged = es256(&ec_key(), &x5c_header(&[&pki.leaf]), &claims());
    assert_eq!(v.verify(&forged, now()).unwrap_err(), TokenError::Signature);
}

#[test]
fn x5c_from_an_unknown_ca_is_refused_even_with_a_trusted_kid() {
    let (trusted, stranger) = (pki(), pki());
    let v = verifier(&trusted.ca.pem());
    let token = es256(&stranger.leaf_key, &x5c_header(&[&stranger.leaf, &stranger.ca]), &claims());
    assert_eq!(v.verify(&token, now()).unwrap_err(), TokenError::UntrustedChain);
    // x5c decides the key, so a trusted kid beside it changes nothing.
    let mut header = x5c_header(&[&stranger.leaf]);
    let ca = webpki::EndEntityCert::try_from(trusted.ca.der()).unwrap();
    header["kid"] = json!(crate::keys::libtrust_kid(ca.subject_public_key_info().as_ref()));
    assert_eq!(
        v.verify(&es256(&stranger.leaf_key, &header, &claims()), now()).unwrap_err(),
        TokenError::UntrustedChain
    );
    // Without a bundle nothing chains.
    let none = TokenVerifier::new(KeySet::new(), ISS, AUD);
    assert_eq!(
        none.verify(&es256(&trusted.leaf_key, &x5c_header(&[&trusted.leaf]), &claims()), now()).unwrap_err(),
        TokenError::UntrustedChain
    );
}

#[test]
fn x5c_garbage() {
    let v = verifier(&pki().ca.pem());
    for x5c in [json!([]), json!("MIIB"), json!(["***"]), json!(["AAAA"]), json!([1])] {
        let token = es256(&ec_key(), &json!({"alg": "ES256", "x5c": x5c}), &claims());
        let err = v.verify(&token, now()).unwrap_err();
        assert!(matches!(err, TokenError::Malformed | TokenError::UntrustedChain), "{err:?}");
    }
}

#[test]
fn bundle_errors() {
    let mut keys = KeySet::new();
    assert!(matches!(keys.add_root_cert_bundle(b""), Err(KeySetError::NoCertificates)));
    let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(keys.add_root_cert_bundle(bad.as_bytes()), Err(KeySetError::Certificate { index: 0, .. })));
    let two = format!("{}{}", pki().ca.pem(), pki().leaf.pem());
    assert_eq!(keys.add_root_cert_bundle(two.as_bytes()).unwrap(), 2);
    assert_eq!(keys.roots().len(), 2);
}

#[test]
fn jwks_keys_by_their_kid() {
    let ec = SigningKey::from_pem(EC_PEM.as_bytes()).unwrap().public_jwk();
    let rsa = SigningKey::from_pem(RSA_PEM.as_bytes()).unwrap().public_jwk();
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "x": ec["x"], "y": ec["y"], "kid": "ec-1", "use": "sig"},
        {"kty": "RSA", "n": rsa["n"], "e": rsa["e"], "kid": "rsa-1"},
        {"kty": "EC", "crv": "P-256", "x": ec["x"], "y": ec["y"], "kid": "enc-1", "use": "enc"},
        {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "ed"},
    ]});
    let mut keys = KeySet::new();
    assert_eq!(keys.add_jwks(jwks.to_string().as_bytes()).unwrap(), 2);
    let v = TokenVerifier::new(keys, ISS, AUD);
    let es = es256(&ec_key(), &json!({"alg": "ES256", "kid": "ec-1"}), &claims());
    assert!(v.verify(&es, now()).is_ok());
    let rs = rs256(&rsa_key(), &json!({"alg": "RS256", "kid": "rsa-1"}), &claims());
    assert!(v.verify(&rs, now()).is_ok());
    // Skipped entries are not trusted; the libtrust kid is not an alias.
    let enc = es256(&ec_key(), &json!({"alg": "ES256", "kid": "enc-1"}), &claims());
    assert_eq!(v.verify(&enc, now()).unwrap_err(), TokenError::UnknownKey);
    assert_eq!(v.verify(&ec_token(&claims()), now()).unwrap_err(), TokenError::UnknownKey);
}

#[test]
fn jwks_errors() {
    let mut keys = KeySet::new();
    assert!(keys.add_jwks(b"nope").is_err());
    assert!(keys.add_jwks(b"{}").is_err());
    let bad = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "k"}]});
    assert!(matches!(keys.add_jwks(bad.to_string().as_bytes()), Err(KeySetError::Key { .. })));
}
