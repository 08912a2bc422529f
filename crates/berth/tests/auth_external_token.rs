//! `auth.token`: trusting an external token server as Distribution does,
//! with only the configured key material. Each token here is built by hand
//! (header and claims as JSON, signed with p256/HMAC directly), so what is
//! refused is decided by the Docker token spec and RFC 7515/7519, not by the
//! code under test.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use common::{options, Reg};
use p256::ecdsa::signature::Signer;
use p256::pkcs8::DecodePrivateKey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

const SERVICE: &str = "registry.test";
const ISSUER: &str = "auth.test";

struct Signer256 {
    key: p256::ecdsa::SigningKey,
    kid: String,
    spki_pem: String,
}

fn signer() -> (Signer256, String) {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["token-signer".into()]).unwrap().self_signed(&pair).unwrap();
    let key = p256::ecdsa::SigningKey::from_pkcs8_der(&pair.serialize_der()).unwrap();
    let kid = berth_auth::libtrust_kid(&pair.public_key_der());
    (Signer256 { key, kid, spki_pem: pair.public_key_pem() }, cert.pem())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn claims(access: Value) -> Value {
    let t = now();
    json!({"iss": ISSUER, "sub": "alice", "aud": SERVICE, "exp": t + 300, "nbf": t - 5, "iat": t, "jti": "j1", "access": access})
}

fn pull(repo: &str) -> Value {
    json!([{"type": "repository", "name": repo, "actions": ["pull"]}])
}

fn es256(s: &Signer256, header: Value, claims: &Value) -> String {
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let sig: p256::ecdsa::Signature = s.key.sign(input.as_bytes());
    format!("{input}.{}", B64.encode(sig.to_bytes()))
}

fn hs256(secret: &[u8], header: Value, claims: &Value) -> String {
    use hmac::{Hmac, Mac};
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let mut mac = Hmac::<sha2_010::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", B64.encode(mac.finalize().into_bytes()))
}

fn get(reg: &Reg, path: &str, token: &str) -> StatusCode {
    reg.http.get(reg.url(path)).bearer_auth(token).send().unwrap().status()
}

#[test]
fn only_tokens_signed_by_configured_keys_with_the_right_claims_pass() {
    let (trusted, bundle) = signer();
    let (foreign, _) = signer();
    let dir = tempfile::tempdir().unwrap();
    let bundle_path = dir.path().join("bundle.pem");
    std::fs::write(&bundle_path, bundle).unwrap();
    let reg = Reg::start_with(
        options()
            .env("REGISTRY_AUTH_TOKEN_REALM", "https://auth.test/token")
            .env("REGISTRY_AUTH_TOKEN_SERVICE", SERVICE)
            .env("REGISTRY_AUTH_TOKEN_ISSUER", ISSUER)
            .env("REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE", bundle_path.display().to_string()),
    );
    let resp = reg.get("/v2/lib/app/tags/list");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"https://auth.test/token\",service=\"registry.test\",scope=\"repository:lib/app:pull\""
    );

    let head = json!({"typ": "JWT", "alg": "ES256", "kid": trusted.kid});
    let good = es256(&trusted, head.clone(), &claims(pull("lib/app")));
    // The repository does not exist: 404 means the token was accepted.
    assert_eq!(get(&reg, "/v2/lib/app/tags/list", &good), StatusCode::NOT_FOUND);
    assert_eq!(get(&reg, "/v2/", &good), StatusCode::OK);

    let with = |k: &str, v: Value| {
        let mut c = claims(pull("lib/app"));
        c[k] = v;
        c
    };
    let t = now();
    let header_with = |k: &str, v: Value| {
        let mut h = head.clone();
        h[k] = v;
        h
    };
    let foreign_jwk = json!({"kty": "EC", "crv": "P-256", "kid": trusted.kid, "x": "AAAA", "y": "AAAA"});
    let refused: Vec<(&str, String)> = vec![
        ("a scope for another repository", es256(&trusted, head.clone(), &claims(pull("lib/other")))),
        (
            "alg none",
            format!(
                "{}.{}.",
                B64.encode(json!({"alg": "none", "kid": trusted.kid}).to_string()),
                B64.encode(claims(pull("lib/app")).to_string())
            ),
        ),
        (
            "HS256 keyed with the public key",
            hs256(trusted.spki_pem.as_bytes(), json!({"alg": "HS256", "kid": trusted.kid}), &claims(pull("lib/app"))),
        ),
        ("a foreign key under a trusted kid", es256(&foreign, head.clone(), &claims(pull("lib/app")))),
        ("an unknown kid", es256(&foreign, json!({"alg": "ES256", "kid": foreign.kid}), &claims(pull("lib/app")))),
        ("an embedded jwk", es256(&foreign, header_with("jwk", foreign_jwk), &claims(pull("lib/app")))),
        ("a jku", es256(&trusted, header_with("jku", json!("https://evil.test/jwks")), &claims(pull("lib/app")))),
        ("an x5u", es256(&trusted, header_with("x5u", json!("https://evil.test/cert")), &claims(pull("lib/app")))),
        ("wrong iss", es256(&trusted, head.clone(), &with("iss", json!("evil")))),
        ("another service (aud)", es256(&trusted, head.clone(), &with("aud", json!("other.registry")))),
        ("expired", es256(&trusted, head.clone(), &with("exp", json!(t - 120)))),
        ("not yet valid", es256(&trusted, head.clone(), &with("nbf", json!(t + 3600)))),
        ("no expiry", {
            let mut c = claims(pull("lib/app"));
            c.as_object_mut().unwrap().remove("exp");
            es256(&trusted, head.clone(), &c)
        }),
        ("a tampered payload", {
            let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
            parts[1] = B64.encode(claims(pull("lib/other")).to_string());
            parts.join(".")
        }),
        ("garbage", "not.a.token".into()),
    ];
    for (what, token) in &refused {
        let path = if what.contains("tampered") { "/v2/lib/other/tags/list" } else { "/v2/lib/app/tags/list" };
        // A valid token lacking the scope is 403 (RFC 6750 §3.1); any invalid one 401.
        let expected =
            if what.contains("another repository") { StatusCode::FORBIDDEN } else { StatusCode::UNAUTHORIZED };
        assert_eq!(get(&reg, path, token), expected, "{what} must be refused");
    }
    // An audience list containing the service is fine (RFC 7519 §4.1.3).
    let listed = es256(&trusted, head.clone(), &with("aud", json!(["other", SERVICE])));
    assert_eq!(get(&reg, "/v2/lib/app/tags/list", &listed), StatusCode::NOT_FOUND);
    // No token material in the log.
    let log = reg.server.log();
    for (_, token) in refused.iter().chain([&("", good.clone())]) {
        if let Some(sig) = token.rsplit('.').next().filter(|s| s.len() > 20) {
            assert!(!log.contains(sig), "a token is in the log");
        }
    }
}
