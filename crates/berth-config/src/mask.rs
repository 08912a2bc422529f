//! Masking of secrets for `berth config check`: any value under a key whose name says it is a
//! secret is printed as `********`.

use crate::model::Config;
use serde_norway::Value;

pub(crate) const MASK: &str = "********";

/// Key-name fragments that mark a secret (`http.secret`, `password`, s3 `accesskey`/`secretkey`,
/// azure `accountkey`, oss `accesskeysecret`, gcs `private_key`, an `Authorization` header...).
const SECRET_WORDS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "accesskey",
    "accountkey",
    "apikey",
    "licensekey",
    "privatekey",
    "private_key",
    "token",
    "authorization",
    "credential",
];

/// Keys that contain a secret word but name no secret: `berth.auth.tokenttl`.
const NOT_SECRET: &[&str] = &["tokenttl"];

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    !NOT_SECRET.contains(&key.as_str()) && SECRET_WORDS.iter().any(|word| key.contains(word))
}

/// Replaces every scalar below a secret-named key with the mask.
pub(crate) fn mask_value(value: &mut Value, under_secret: bool) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                // `auth.token` is a section of public settings (realm, issuer, ...).
                let section = k.as_str() == Some("token") && v.is_mapping();
                let secret = under_secret || (!section && k.as_str().is_some_and(is_secret_key));
                mask_value(v, secret);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|v| mask_value(v, under_secret)),
        Value::Null => {}
        _ if under_secret => *value = Value::String(MASK.into()),
        Value::String(s) => {
            if let Some(masked) = mask_url_password(s) {
                *s = masked;
            }
        }
        _ => {}
    }
}

/// Masks the password of a URL (`scheme://user:password@host/...`) or of a
/// libpq keyword string (`... password=secret ...`), wherever it appears.
fn mask_url_password(s: &str) -> Option<String> {
    if let Some(scheme_end) = s.find("://") {
        let rest = &s[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some(at) = authority.rfind('@') {
            if let Some(colon) = authority[..at].find(':') {
                let start = scheme_end + 3 + colon + 1;
                let end = scheme_end + 3 + at;
                return Some(format!("{}{MASK}{}", &s[..start], &s[end..]));
            }
        }
        return None;
    }
    let mut changed = false;
    let words: Vec<String> = s
        .split(' ')
        .map(|w| match w.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                changed = true;
                format!("{k}={MASK}")
            }
            _ => w.to_owned(),
        })
        .collect();
    changed.then(|| words.join(" "))
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn url_passwords_are_masked() {
        assert_eq!(
            mask_url_password("postgres://berth:hunter2@db:5432/berth?sslmode=disable").as_deref(),
            Some("postgres://berth:********@db:5432/berth?sslmode=disable")
        );
        assert_eq!(mask_url_password("postgres://berth@db/berth"), None);
        assert_eq!(mask_url_password("https://example.com/a:b@c"), None, "an @ in the path is no password");
        assert_eq!(
            mask_url_password("host=db user=berth password=hunter2").as_deref(),
            Some("host=db user=berth password=********")
        );
        assert_eq!(mask_url_password("plain text"), None);
    }
}

impl Config {
    /// The effective configuration as YAML, secrets masked, defaults filled in (including the
    /// derived `berth.database.path`).
    pub fn to_masked_yaml(&self) -> String {
        let mut effective = self.clone();
        effective.berth.database.path = Some(self.database_path());
        let mut value = match serde_norway::to_value(&effective) {
            Ok(v) => v,
            Err(e) => return format!("# cannot render configuration: {e}\n"),
        };
        mask_value(&mut value, false);
        serde_norway::to_string(&value).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secret_like_keys_at_any_depth() {
        let mut v: Value = serde_norway::from_str(
            "http: {secret: s3cr3t, addr: ':5000'}\nstorage: {s3: {accesskey: AK, secretkey: SK, bucket: b}}\nredis: {password: p}\n",
        )
        .unwrap_or(Value::Null);
        mask_value(&mut v, false);
        let text = serde_norway::to_string(&v).unwrap_or_default();
        for leaked in ["s3cr3t", "AK", "SK", ": p\n"] {
            assert!(!text.contains(leaked), "{leaked} leaked in {text}");
        }
        assert!(text.contains("bucket: b") && text.contains(":5000"));
    }
}
