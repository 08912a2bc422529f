use super::*;
use crate::jws::MAX_TOKEN_LEN;
use crate::keys::SigningKey;
use crate::scope::{PULL, PUSH};
use crate::test_util::*;
use serde_json::{json, Value};

fn keys() -> KeySet {
    let mut keys = KeySet::new();
    keys.insert(SigningKey::from_pem(EC_PEM.as_bytes()).unwrap().public_key());
    keys.insert(SigningKey::from_pem(RSA_PEM.as_bytes()).unwrap().public_key());
    keys
}

fn verifier() -> TokenVerifier {
    TokenVerifier::new(keys(), ISS, AUD)
}

fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims();
    change(&mut c);
    c
}

fn refused(token: &str, want: TokenError) {
    let got = verifier().verify(token, now()).map(|c| c.sub.clone());
    assert_eq!(got, Err(want.clone()));
    // No part of the token in the message.
    let msg = want.to_string();
    assert!(token.split('.').filter(|p| p.len() > 3).all(|p| !msg.contains(p)), "{msg}");
}

#[test]
fn accepts_es256_and_rs256_made_by_hand() {
    let got = verifier().verify(&ec_token(&claims()), now()).unwrap();
    assert_eq!(got.sub, "alice");
    assert_eq!(got.aud, [AUD]);
    assert_eq!(got.exp, T as i64 + 300);
    assert!(got.allows("repository", "foo/bar", PULL));
    assert!(!got.allows("repository", "foo/bar", PUSH));
    assert!(!got.allows("repository", "foo/baz", PULL));
    let rs = rs256(&rsa_key(), &json!({"alg": "RS256", "typ": "JWT", "kid": RSA_KID}), &claims());
    assert_eq!(verifier().verify(&rs, now()).unwrap().sub, "alice");
}

#[test]
fn audience_may_be_an_array() {
    let t = ec_token(&with(|c| c["aud"] = json!(["other", AUD])));
    assert!(verifier().verify(&t, now()).is_ok());
    refused(&ec_token(&with(|c| c["aud"] = json!(["other"]))), TokenError::Audience);
    refused(&ec_token(&with(|c| c["aud"] = json!("other.registry"))), TokenError::Audience);
    refused(&ec_token(&with(|c| c.as_object_mut().unwrap().remove("aud").map(drop).unwrap())), TokenError::Audience);
}

#[test]
fn refuses_alg_none() {
    let input = format!("{}.{}", b64(br#"{"alg":"none","typ":"JWT","kid":"x"}"#), b64(claims().to_string().as_bytes()));
    refused(&format!("{input}."), TokenError::Unsigned);
    let upper = format!("{}.{}.", b64(br#"{"alg":"None"}"#), b64(claims().to_string().as_bytes()));
    refused(&upper, TokenError::Unsigned);
}

#[test]
fn refuses_hmac_even_keyed_with_the_public_key() {
    let public = SigningKey::from_pem(EC_PEM.as_bytes()).unwrap().public_key();
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, public.spki_der())
    );
    for secret in [pem.as_bytes(), public.spki_der()] {
        refused(&hs256(secret, &json!({"alg": "HS256", "typ": "JWT", "kid": EC_KID}), &claims()), TokenError::Hmac);
    }
    for alg in ["HS384", "HS512"] {
        refused(&hs256(b"k", &json!({"alg": alg, "kid": EC_KID}), &claims()), TokenError::Hmac);
    }
}

#[test]
fn refuses_algorithms_not_allowed_or_not_the_keys() {
    let rs = rs256(&rsa_key(), &json!({"alg": "RS256", "kid": RSA_KID}), &claims());
    let es_only = TokenVerifier::new(keys(), ISS, AUD).with_algorithms(&[Algorithm::ES256]);
    assert_eq!(es_only.verify(&rs, now()).unwrap_err(), TokenError::Algorithm);
    // RS256 named for the EC key's kid; ES384 and PS256 are not allowed.
    refused(&rs256(&rsa_key(), &json!({"alg": "RS256", "kid": EC_KID}), &claims()), TokenError::Algorithm);
    refused(&es256(&ec_key(), &json!({"alg": "ES384", "kid": EC_KID}), &claims()), TokenError::Algorithm);
    refused(&rs256(&rsa_key(), &json!({"alg": "PS256", "kid": RSA_KID}), &claims()), TokenError::Algorithm);
    refused(&es256(&ec_key(), &json!({"alg": "XX999", "kid": EC_KID}), &claims()), TokenError::Algorithm);
}

#[test]
fn refuses_a_foreign_key_under_a_trusted_kid() {
    let foreign = p256::ecdsa::SigningKey::random(&mut rand_core_06::OsRng);
    refused(&es256(&foreign, &json!({"alg": "ES256", "kid": EC_KID}), &claims()), TokenError::Signature);
    // A valid token with its signature swapped for another's.
    let good = ec_token(&claims());
    let other = ec_token(&with(|c| c["sub"] = json!("mallory")));
    let forged = format!("{}.{}", good.rsplit_once('.').unwrap().0, other.rsplit_once('.').unwrap().1);
    refused(&forged, TokenError::Signature);
}

#[test]
fn refuses_unknown_or_missing_kid() {
    refused(&es256(&ec_key(), &json!({"alg": "ES256", "kid": "AAAA:BBBB"}), &claims()), TokenError::UnknownKey);
    refused(&es256(&ec_key(), &json!({"alg": "ES256"}), &claims()), TokenError::UnknownKey);
}

#[test]
fn refuses_embedded_key_material() {
    let jwk = SigningKey::from_pem(EC_PEM.as_bytes()).unwrap().public_jwk();
    // Even the trusted key itself, embedded, and even with a trusted kid.
    refused(&es256(&ec_key(), &json!({"alg": "ES256", "jwk": jwk}), &claims()), TokenError::EmbeddedKey);
    for (k, v) in [("jwk", jwk), ("jku", json!("https://evil.test/jwks")), ("x5u", json!("https://evil.test/c.pem"))] {
        let mut header = json!({"alg": "ES256", "kid": EC_KID});
        header[k] = v;
        refused(&es256(&ec_key(), &header, &claims()), TokenError::EmbeddedKey);
    }
}

#[test]
fn refuses_wrong_issuer() {
    refused(&ec_token(&with(|c| c["iss"] = json!("someone-else"))), TokenError::Issuer);
    refused(&ec_token(&with(|c| c["iss"] = Value::Null)), TokenError::Issuer);
}

#[test]
fn expiry_and_not_before_with_leeway() {
    let v = verifier();
    let t = ec_token(&claims());
    assert!(v.verify(&t, at(304)).is_ok(), "within the 5 s leeway");
    assert_eq!(v.verify(&t, at(305)).unwrap_err(), TokenError::Expired);
    let early = ec_token(&with(|c| c["nbf"] = json!(T + 60)));
    assert_eq!(v.verify(&early, now()).unwrap_err(), TokenError::NotYetValid);
    assert!(v.verify(&ec_token(&with(|c| c["nbf"] = json!(T + 5))), now()).is_ok());
    // Fractional NumericDate (RFC 7519 §2).
    assert!(v.verify(&ec_token(&with(|c| c["exp"] = json!(T as f64 + 10.5))), now()).is_ok());
}

#[test]
fn refuses_missing_exp() {
    refused(&ec_token(&with(|c| c.as_object_mut().unwrap().remove("exp").map(drop).unwrap())), TokenError::NoExpiry);
}

#[test]
fn refuses_refresh_tokens() {
    refused(&ec_token(&with(|c| c["token_use"] = json!("refresh"))), TokenError::RefreshToken);
    let typed = es256(&ec_key(), &json!({"alg": "ES256", "typ": REFRESH_TYP, "kid": EC_KID}), &claims());
    refused(&typed, TokenError::RefreshToken);
}

#[test]
fn refuses_malformed() {
    for t in ["", "abc", "a.b", "a.b.c.d", "!!.e30.AA", "e30.e30.AA"] {
        assert_eq!(verifier().verify(t, now()).unwrap_err(), TokenError::Malformed, "{t}");
    }
    // Signed correctly, but the claims are not a JSON object of claims.
    let input = format!("{}.{}", b64(format!(r#"{{"alg":"ES256","kid":"{EC_KID}"}}"#).as_bytes()), b64(b"[1,2]"));
    let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&ec_key(), input.as_bytes());
    refused(&format!("{input}.{}", b64(&sig.to_bytes())), TokenError::Malformed);
    refused(&ec_token(&with(|c| c["exp"] = json!("soon"))), TokenError::Malformed);
    let crit = es256(&ec_key(), &json!({"alg": "ES256", "kid": EC_KID, "crit": ["exp"], "exp": 1}), &claims());
    refused(&crit, TokenError::Malformed);
    let bad_sig = format!("{}.not*base64", ec_token(&claims()).rsplit_once('.').unwrap().0);
    refused(&bad_sig, TokenError::Malformed);
}

#[test]
fn refuses_oversized() {
    let big = ec_token(&with(|c| c["pad"] = json!("x".repeat(MAX_TOKEN_LEN))));
    refused(&big, TokenError::TooLarge);
}

#[test]
fn successes_are_cached_until_exp_only() {
    let v = verifier();
    let t = ec_token(&claims());
    let first = v.verify(&t, now()).unwrap();
    assert!(Arc::ptr_eq(&first, &v.verify(&t, at(10)).unwrap()), "second verification from the cache");
    // At exp the cache no longer answers; past the leeway the token is refused.
    assert!(!Arc::ptr_eq(&first, &v.verify(&t, at(300)).unwrap()));
    assert_eq!(v.verify(&t, at(400)).unwrap_err(), TokenError::Expired);
}

#[test]
fn failures_are_not_cached() {
    let v = verifier();
    let t = ec_token(&with(|c| c["nbf"] = json!(T + 60)));
    assert_eq!(v.verify(&t, now()).unwrap_err(), TokenError::NotYetValid);
    assert!(v.verify(&t, at(60)).is_ok());
    // And a cached success is per token: a tampered copy is checked afresh.
    let tampered = format!("{}x", t);
    assert!(v.verify(&tampered, at(60)).is_err());
}
