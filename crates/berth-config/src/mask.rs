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

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| key.contains(word))
}

/// Replaces every scalar below a secret-named key with the mask.
pub(crate) fn mask_value(value: &mut Value, under_secret: bool) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let secret = under_secret || k.as_str().is_some_and(is_secret_key);
                mask_value(v, secret);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|v| mask_value(v, under_secret)),
        Value::Null => {}
        _ if under_secret => *value = Value::String(MASK.into()),
        _ => {}
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
