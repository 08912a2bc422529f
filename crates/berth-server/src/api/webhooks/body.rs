//! Webhook policy bodies: Harbor's shape in, checked into the store's form;
//! out with secrets masked. A masked value sent back keeps what is stored,
//! so a GET-modify-PUT round trip needs no secrets.

use super::super::error::{AdminError, AdminResult};
use super::super::rfc3339_ms;
use berth_events::outbound::AddressPolicy;
use berth_meta::{NewWebhookPolicy, WebhookPolicy, WebhookTarget};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Shown instead of a stored secret or auth header.
pub const MASK: &str = "********";
/// Harbor's event types that Berth raises.
pub const EVENT_TYPES: &[&str] = berth_events::webhook::EVENT_TYPES;
const PAYLOAD_FORMATS: [&str; 2] = ["Default", "CloudEvents"];
const MAX_NAME: usize = 128;
const MAX_TARGETS: usize = 10;

/// Where a policy sends its events. In answers, `secret` and `auth_header`
/// are `"********"` when set; sent back so, they keep the stored value.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    /// Always `http` (the default); Harbor's `slack` is not supported.
    #[serde(rename = "type", default = "http")]
    pub kind: String,
    /// An `http://` or `https://` URL; internal addresses are refused unless
    /// `berth.webhooks.allownets` allows them.
    pub address: String,
    /// Sent as the `Authorization` header.
    #[serde(default)]
    pub auth_header: Option<String>,
    #[serde(default)]
    pub skip_cert_verify: bool,
    /// `Default` (Harbor's payload, the default) or `CloudEvents`.
    #[serde(default = "default_format")]
    pub payload_format: String,
    /// HMAC-SHA256 key that signs each body.
    #[serde(default)]
    pub secret: Option<String>,
}

fn http() -> String {
    "http".into()
}

fn default_format() -> String {
    PAYLOAD_FORMATS[0].into()
}

fn yes() -> bool {
    true
}

/// A policy as created or replaced, e.g. `{"name":"ci","event_types":["PUSH_ARTIFACT"],
/// "targets":[{"type":"http","address":"https://ci.example/hook"}]}`. The
/// read-only fields of an answer are accepted (and ignored) so it can be sent back.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// 1–128 characters, unique in the project.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `PUSH_ARTIFACT`, `PULL_ARTIFACT`, `DELETE_ARTIFACT`, `QUOTA_EXCEED`, `TAG_RETENTION`.
    pub event_types: Vec<String>,
    /// 1–10 targets.
    pub targets: Vec<TargetBody>,
    /// Read-only; if given, must be the policy's.
    pub id: Option<i64>,
    /// Read-only, ignored.
    #[allow(dead_code)] // accepted only so an answer can be sent back
    pub project: Option<String>,
    /// Read-only, ignored.
    #[allow(dead_code)] // accepted only so an answer can be sent back
    pub creator: Option<String>,
    /// Read-only, ignored.
    #[allow(dead_code)] // accepted only so an answer can be sent back
    pub created_at: Option<String>,
    /// Read-only, ignored.
    #[allow(dead_code)] // accepted only so an answer can be sent back
    pub updated_at: Option<String>,
}

/// A stored policy, secrets masked.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    pub id: i64,
    pub project: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub event_types: Vec<String>,
    pub targets: Vec<TargetBody>,
    pub creator: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

pub fn view(p: &WebhookPolicy) -> PolicyView {
    let mask = |v: &Option<String>| v.as_ref().map(|_| MASK.to_owned());
    PolicyView {
        id: p.id,
        project: p.project.clone(),
        name: p.name.clone(),
        description: p.description.clone(),
        enabled: p.enabled,
        event_types: p.event_types.clone(),
        targets: p
            .targets
            .iter()
            .map(|t| TargetBody {
                kind: http(),
                address: t.address.clone(),
                auth_header: mask(&t.auth_header),
                skip_cert_verify: t.skip_cert_verify,
                payload_format: t.payload_format.clone(),
                secret: mask(&t.secret),
            })
            .collect(),
        creator: p.creator.clone(),
        created_at: rfc3339_ms(p.created_ms),
        updated_at: rfc3339_ms(p.updated_ms),
    }
}

/// Checks `body` into the store's form. `stored`: the policy it replaces,
/// whose secrets masked values keep.
pub fn policy(
    body: PolicyBody,
    project: &str,
    creator: &str,
    stored: Option<&WebhookPolicy>,
    addresses: &AddressPolicy,
) -> AdminResult<NewWebhookPolicy> {
    if let (Some(given), Some(s)) = (body.id, stored) {
        if given != s.id {
            return Err(AdminError::invalid(format!("id {given} is not this policy's ({})", s.id)));
        }
    }
    let len = body.name.chars().count();
    if len == 0 || len > MAX_NAME {
        return Err(AdminError::invalid(format!("name must have 1 to {MAX_NAME} characters, not {len}")));
    }
    event_types(&body.event_types)?;
    if body.targets.is_empty() || body.targets.len() > MAX_TARGETS {
        return Err(AdminError::invalid(format!(
            "a policy needs 1 to {MAX_TARGETS} targets, not {}",
            body.targets.len()
        )));
    }
    let old = stored.map_or(&[][..], |s| &s.targets[..]);
    let targets = body
        .targets
        .into_iter()
        .enumerate()
        .map(|(i, t)| target(i, t, old.get(i), addresses))
        .collect::<AdminResult<_>>()?;
    Ok(NewWebhookPolicy {
        project: project.to_owned(),
        name: body.name,
        description: body.description,
        enabled: body.enabled,
        event_types: body.event_types,
        targets,
        creator: creator.to_owned(),
    })
}

fn event_types(types: &[String]) -> AdminResult<()> {
    if types.is_empty() {
        return Err(AdminError::invalid("event_types must name at least one event type"));
    }
    for (i, t) in types.iter().enumerate() {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(AdminError::invalid(format!("unknown event type {t:?}: one of {}", EVENT_TYPES.join(", "))));
        }
        if types[..i].contains(t) {
            return Err(AdminError::invalid(format!("event type {t} is listed twice")));
        }
    }
    Ok(())
}

fn target(
    i: usize,
    t: TargetBody,
    old: Option<&WebhookTarget>,
    addresses: &AddressPolicy,
) -> AdminResult<WebhookTarget> {
    let bad = |why: String| AdminError::invalid(format!("targets[{i}]: {why}"));
    match t.kind.as_str() {
        "http" => {}
        "slack" => return Err(bad("type slack is not supported: only http".into())),
        k => return Err(bad(format!("unknown type {k:?}: only http"))),
    }
    if !PAYLOAD_FORMATS.contains(&t.payload_format.as_str()) {
        return Err(bad(format!("unknown payload_format {:?}: Default or CloudEvents", t.payload_format)));
    }
    let url = addresses.check_url(&t.address).map_err(bad)?;
    // Credentials in the URL would be shown to everyone who may read the policy.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("put credentials in auth_header, not in the address".into()));
    }
    // Keeping a stored value for a new address would hand it to whoever
    // changed the address without ever knowing it.
    let same = old.filter(|o| o.address == t.address);
    let auth_header = kept(t.auth_header, same.and_then(|o| o.auth_header.as_ref()), old.is_some())
        .map_err(|why| bad(format!("auth_header {why}")))?;
    if let Some(h) = &auth_header {
        http::HeaderValue::from_str(h).map_err(|_| bad("auth_header is not a valid header value".into()))?;
    }
    let secret = kept(t.secret, same.and_then(|o| o.secret.as_ref()), old.is_some())
        .map_err(|why| bad(format!("secret {why}")))?;
    Ok(WebhookTarget {
        address: t.address,
        payload_format: t.payload_format,
        auth_header,
        secret,
        skip_cert_verify: t.skip_cert_verify,
    })
}

/// The value to store: `given`, or `keep` for the mask; empty is none.
fn kept(given: Option<String>, keep: Option<&String>, had_target: bool) -> Result<Option<String>, String> {
    match given.as_deref() {
        None | Some("") => Ok(None),
        Some(MASK) => match keep {
            Some(k) => Ok(Some(k.clone())),
            None if had_target => Err(format!(
                "{MASK:?} keeps the stored value only while the address is unchanged and has one: send the value itself"
            )),
            None => Err(format!("{MASK:?} keeps a stored value, but there is none here: send the value itself")),
        },
        Some(v) => Ok(Some(v.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> PolicyBody {
        serde_json::from_value(v).unwrap()
    }

    fn check(v: serde_json::Value, stored: Option<&WebhookPolicy>) -> AdminResult<NewWebhookPolicy> {
        policy(body(v), "team-a", "alice", stored, &AddressPolicy::default())
    }

    fn base() -> serde_json::Value {
        json!({"name": "ci", "event_types": ["PUSH_ARTIFACT"],
            "targets": [{"type": "http", "address": "https://ci.example/hook", "payload_format": "Default",
                "secret": "s3", "auth_header": "Bearer t"}]})
    }

    fn stored() -> WebhookPolicy {
        let p = check(base(), None).unwrap();
        WebhookPolicy {
            id: 7,
            project: p.project,
            name: p.name,
            description: p.description,
            enabled: p.enabled,
            event_types: p.event_types,
            targets: p.targets,
            creator: p.creator,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    #[test]
    fn defaults_are_harbors() {
        let p = check(base(), None).unwrap();
        assert!(p.enabled);
        assert_eq!(p.targets[0].payload_format, "Default");
        assert_eq!(p.targets[0].secret.as_deref(), Some("s3"));
    }

    #[test]
    fn views_mask_secrets_and_round_trip() {
        let s = stored();
        let v = serde_json::to_value(view(&s)).unwrap();
        assert_eq!(v["targets"][0]["secret"], MASK);
        assert_eq!(v["targets"][0]["auth_header"], MASK);
        assert!(!v.to_string().contains("s3") && !v.to_string().contains("Bearer"), "{v}");
        // The answer sent back as it is keeps both values.
        let again = check(v, Some(&s)).unwrap();
        assert_eq!(again.targets, s.targets);
    }

    #[test]
    fn the_mask_keeps_nothing_for_a_new_address_or_a_new_policy() {
        let s = stored();
        let mut moved = serde_json::to_value(view(&s)).unwrap();
        moved["targets"][0]["address"] = json!("https://elsewhere.example/");
        assert_eq!(check(moved, Some(&s)).unwrap_err().code, "INVALID_INPUT");
        let mut masked = base();
        masked["targets"][0]["secret"] = json!(MASK);
        assert_eq!(check(masked, None).unwrap_err().code, "INVALID_INPUT");
    }

    #[test]
    fn bad_bodies_are_bad_input() {
        let edits: [(&str, serde_json::Value); 10] = [
            ("/name", json!("")),
            ("/name", json!("x".repeat(129))),
            ("/event_types", json!([])),
            ("/event_types", json!(["PUSH_ARTIFACT", "SCANNING_FAILED"])),
            ("/event_types", json!(["PUSH_ARTIFACT", "PUSH_ARTIFACT"])),
            ("/targets", json!([])),
            ("/targets/0/type", json!("slack")),
            ("/targets/0/payload_format", json!("Xml")),
            ("/targets/0/address", json!("ftp://ci.example/")),
            ("/targets/0/auth_header", json!("Bearer a\r\nX-Evil: 1")),
        ];
        for (path, value) in edits {
            let mut v = base();
            *v.pointer_mut(path).unwrap() = value;
            let err = check(v, None).unwrap_err();
            assert_eq!(err.code, "INVALID_INPUT", "{path}");
        }
        let mut many = base();
        many["targets"] = json!(vec![base()["targets"][0].clone(); 11]);
        assert!(check(many, None).is_err());
        for address in ["http://127.0.0.1:9/x", "http://169.254.169.254/", "http://[::1]/", "https://u:p@ci.example/"] {
            let mut v = base();
            v["targets"][0]["address"] = json!(address);
            assert!(check(v, None).is_err(), "{address}");
        }
        let mut other_id = base();
        other_id["id"] = json!(9);
        assert!(check(other_id, Some(&stored())).is_err());
    }
}
