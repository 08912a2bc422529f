use super::*;
use crate::test_util::*;
use crate::verify::TokenVerifier;
use base64::Engine;
use serde_json::Value;

fn issuer() -> TokenIssuer {
    TokenIssuer::new(SigningKey::from_pem(EC_PEM.as_bytes()).unwrap(), ISS)
}

fn verifier_for(issuer: &TokenIssuer) -> TokenVerifier {
    let mut keys = KeySet::new();
    keys.insert(issuer.public_key());
    TokenVerifier::new(keys, ISS, AUD)
}

fn part(token: &str, i: usize) -> Value {
    let raw = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw).unwrap()).unwrap()
}

#[test]
fn rfc3339_vectors() {
    // Python: datetime.fromtimestamp(s, timezone.utc).isoformat().
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
}

#[test]
fn access_token_has_the_spec_claims_and_header() {
    let access = [Access::new("repository", "foo/bar", &["pull", "push"])];
    let issued = issuer().issue("alice", AUD, &access, now()).unwrap();
    assert_eq!(issued.expires_in_s, 300);
    assert_eq!(issued.issued_at, "2030-03-17T17:46:40Z");
    let header = part(&issued.token, 0);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], EC_KID);
    let claims = part(&issued.token, 1);
    assert_eq!(claims["iss"], ISS);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], AUD);
    assert_eq!(claims["iat"], T);
    assert_eq!(claims["nbf"], T);
    assert_eq!(claims["exp"], T + 300);
    assert_eq!(claims["access"][0]["type"], "repository");
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull", "push"]));
    let other = issuer().issue("alice", AUD, &access, now()).unwrap();
    assert_ne!(part(&other.token, 1)["jti"], claims["jti"], "jti is random");
}

#[test]
fn our_tokens_verify_with_ttl() {
    let issuer = issuer().with_ttl(Duration::from_secs(60));
    let issued = issuer.issue("alice", AUD, &[Access::new("repository", "a", &["pull"])], now()).unwrap();
    let verifier = verifier_for(&issuer);
    let claims = verifier.verify(&issued.token, now()).unwrap();
    assert!(claims.allows("repository", "a", "pull") && !claims.allows("repository", "a", "delete"));
    assert_eq!(verifier.verify(&issued.token, at(65)).unwrap_err(), TokenError::Expired);
    // Another service name: refused (a token replayed elsewhere).
    let elsewhere = TokenVerifier::new(KeySet::new(), ISS, "other.registry");
    assert!(elsewhere.verify(&issued.token, now()).is_err());
}

#[test]
fn rs256_issuer() {
    let issuer = TokenIssuer::new(SigningKey::from_pem(RSA_PEM.as_bytes()).unwrap(), ISS);
    let issued = issuer.issue("bob", AUD, &[], now()).unwrap();
    assert_eq!(part(&issued.token, 0)["alg"], "RS256");
    assert_eq!(part(&issued.token, 0)["kid"], RSA_KID);
    assert_eq!(verifier_for(&issuer).verify(&issued.token, now()).unwrap().sub, "bob");
}

#[test]
fn refresh_round_trip() {
    let issuer = issuer();
    let refresh = issuer.issue_refresh("alice", AUD, "gen-7", now()).unwrap();
    assert_eq!(part(&refresh, 0)["typ"], REFRESH_TYP);
    assert!(part(&refresh, 1).get("access").is_none());
    assert_eq!(issuer.verify_refresh(&refresh, AUD, at(86_400)).unwrap(), ("alice".into(), "gen-7".into()));
    assert_eq!(issuer.verify_refresh(&refresh, "other", now()).unwrap_err(), TokenError::Audience);
    assert_eq!(issuer.verify_refresh(&refresh, AUD, at(90 * 86_400 + 5)).unwrap_err(), TokenError::Expired);
    let short = TokenIssuer::new(SigningKey::generate_es256(), ISS).with_refresh_ttl(Duration::from_secs(10));
    let r = short.issue_refresh("alice", AUD, "g", now()).unwrap();
    assert_eq!(short.verify_refresh(&r, AUD, at(20)).unwrap_err(), TokenError::Expired);
}

#[test]
fn refresh_is_never_an_access_token_and_back() {
    let issuer = issuer();
    let refresh = issuer.issue_refresh("alice", AUD, "g", now()).unwrap();
    assert_eq!(verifier_for(&issuer).verify(&refresh, now()).unwrap_err(), TokenError::RefreshToken);
    let access = issuer.issue("alice", AUD, &[], now()).unwrap().token;
    assert_eq!(issuer.verify_refresh(&access, AUD, now()).unwrap_err(), TokenError::NotRefreshToken);
    // Hand-made: refresh claims under an access `typ`, and the reverse.
    let claims = serde_json::json!({"iss": ISS, "sub": "alice", "aud": AUD, "exp": T + 60, "generation": "g"});
    let untyped = es256(&ec_key(), &serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": EC_KID}), &claims);
    assert_eq!(issuer.verify_refresh(&untyped, AUD, now()).unwrap_err(), TokenError::NotRefreshToken);
    let mut with_use = claims.clone();
    with_use["token_use"] = "refresh".into();
    let access_typ = es256(&ec_key(), &serde_json::json!({"alg": "ES256", "kid": EC_KID}), &with_use);
    assert_eq!(issuer.verify_refresh(&access_typ, AUD, now()).unwrap_err(), TokenError::NotRefreshToken);
}

#[test]
fn refresh_from_another_key_is_refused() {
    let stranger = TokenIssuer::new(SigningKey::generate_es256(), ISS);
    let refresh = stranger.issue_refresh("alice", AUD, "g", now()).unwrap();
    assert_eq!(issuer().verify_refresh(&refresh, AUD, now()).unwrap_err(), TokenError::UnknownKey);
}
