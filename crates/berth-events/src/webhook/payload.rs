//! Harbor's webhook payloads (docs: "Configure Webhooks", payload format
//! `Default` and `CloudEvents`), built from a [`Notice`].

use serde_json::{json, Map, Value};

/// Harbor's event types Berth sends.
pub const PUSH_ARTIFACT: &str = "PUSH_ARTIFACT";
pub const PULL_ARTIFACT: &str = "PULL_ARTIFACT";
pub const DELETE_ARTIFACT: &str = "DELETE_ARTIFACT";
pub const QUOTA_EXCEED: &str = "QUOTA_EXCEED";
pub const TAG_RETENTION: &str = "TAG_RETENTION";
pub const EVENT_TYPES: &[&str] = &[PUSH_ARTIFACT, PULL_ARTIFACT, DELETE_ARTIFACT, QUOTA_EXCEED, TAG_RETENTION];

pub const DEFAULT_FORMAT: &str = "Default";
pub const CLOUD_EVENTS_FORMAT: &str = "CloudEvents";
pub const PAYLOAD_FORMATS: &[&str] = &[DEFAULT_FORMAT, CLOUD_EVENTS_FORMAT];

/// The CloudEvents type of a Harbor event type (Harbor's mapping table).
fn cloud_event_type(event_type: &str) -> String {
    match event_type {
        PUSH_ARTIFACT => "harbor.artifact.pushed".into(),
        PULL_ARTIFACT => "harbor.artifact.pulled".into(),
        DELETE_ARTIFACT => "harbor.artifact.deleted".into(),
        QUOTA_EXCEED => "harbor.quota.exceeded".into(),
        TAG_RETENTION => "harbor.tag_retention.finished".into(),
        other => format!("berth.{}", other.to_ascii_lowercase()),
    }
}

/// The `Content-Type` a payload format is sent with.
pub fn content_type(format: &str) -> &'static str {
    if format == CLOUD_EVENTS_FORMAT {
        "application/cloudevents+json"
    } else {
        "application/json"
    }
}

/// One artifact an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub digest: Option<String>,
    pub tag: Option<String>,
    /// `host/namespace/name:tag` (or `@digest`), as Harbor writes it.
    pub resource_url: Option<String>,
}

/// Something a webhook policy may be told of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub event_type: &'static str,
    pub occur_at_ms: i64,
    /// The account that caused it (`""` when anonymous, as Harbor).
    pub operator: String,
    /// The project whose policies hear of it.
    pub project: String,
    /// The full repository name, `namespace/name…` (empty for project-wide events).
    pub repository: String,
    pub resources: Vec<Resource>,
    /// `custom_attributes` (quota details).
    pub custom: Vec<(String, String)>,
    /// The request that caused it, for CloudEvents' `requestid`.
    pub request_id: String,
    /// A retention run's `event_data.retention` (then there are no resources).
    pub retention: Option<Value>,
}

impl Notice {
    pub fn project(&self) -> &str {
        &self.project
    }

    /// Harbor's `event_data`: the resources and the repository, or a retention run.
    fn data(&self, public: bool) -> Value {
        if let Some(r) = &self.retention {
            return json!({ "retention": r });
        }
        let (namespace, name) = self.repository.split_once('/').unwrap_or(("library", &self.repository));
        let resources: Vec<Value> = self
            .resources
            .iter()
            .map(|r| {
                let mut m = Map::new();
                if let Some(d) = &r.digest {
                    m.insert("digest".into(), d.as_str().into());
                }
                if let Some(t) = &r.tag {
                    m.insert("tag".into(), t.as_str().into());
                }
                if let Some(u) = &r.resource_url {
                    m.insert("resource_url".into(), u.as_str().into());
                }
                Value::Object(m)
            })
            .collect();
        let mut data = json!({
            "resources": resources,
            "repository": {
                "date_created": self.occur_at_ms / 1000,
                "name": name,
                "namespace": namespace,
                "repo_full_name": self.repository,
                "repo_type": if public { "public" } else { "private" },
            },
        });
        if !self.custom.is_empty() {
            let custom: Map<String, Value> = self.custom.iter().map(|(k, v)| (k.clone(), v.as_str().into())).collect();
            data["custom_attributes"] = Value::Object(custom);
        }
        data
    }

    /// The body for `format`; `policy_source` is CloudEvents' `source`
    /// (`/projects/<project>/webhook/policies/<id>`).
    pub fn payload(&self, format: &str, public: bool, policy_source: &str) -> String {
        let body = if format == CLOUD_EVENTS_FORMAT {
            json!({
                "specversion": "1.0",
                "id": uuid::Uuid::new_v4().to_string(),
                "requestid": self.request_id,
                "source": policy_source,
                "type": cloud_event_type(self.event_type),
                "datacontenttype": "application/json",
                "time": crate::event::rfc3339(self.occur_at_ms - self.occur_at_ms % 1000),
                "data": self.data(public),
                "operator": self.operator,
            })
        } else {
            json!({
                "type": self.event_type,
                "occur_at": self.occur_at_ms / 1000,
                "operator": self.operator,
                "event_data": self.data(public),
            })
        };
        body.to_string()
    }
}

/// The notice for a registry event, if Harbor has a webhook event for it:
/// manifest pushes, GET pulls (HEAD is a client checking, not pulling) and
/// deletes of manifests.
pub fn notice_of(event: &crate::Event) -> Option<Notice> {
    use crate::{Action, Kind};
    let event_type = match (event.kind, event.action) {
        (Kind::Manifest, Action::Push) => PUSH_ARTIFACT,
        (Kind::Manifest, Action::Pull) if event.request.method == "GET" => PULL_ARTIFACT,
        (Kind::Manifest, Action::Delete) => DELETE_ARTIFACT,
        _ => return None,
    };
    let t = &event.target;
    let host = event.request.base_url.split_once("://").map_or(event.request.base_url.as_str(), |(_, rest)| rest);
    let resource_url = match (&t.tag, &t.digest) {
        (Some(tag), _) => Some(format!("{host}/{}:{tag}", t.repository)),
        (None, Some(d)) => Some(format!("{host}/{}@{d}", t.repository)),
        (None, None) => None,
    };
    Some(Notice {
        event_type,
        occur_at_ms: event.time_ms,
        operator: event.actor.clone().unwrap_or_default(),
        project: berth_meta::project_of(&t.repository).to_owned(),
        repository: t.repository.clone(),
        resources: vec![Resource { digest: t.digest.clone(), tag: t.tag.clone(), resource_url }],
        custom: Vec::new(),
        request_id: event.request.id.clone(),
        retention: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push() -> Notice {
        Notice {
            event_type: PUSH_ARTIFACT,
            occur_at_ms: 1_586_922_308_123,
            operator: "admin".into(),
            project: "test-webhook".into(),
            repository: "test-webhook/debian".into(),
            resources: vec![Resource {
                digest: Some("sha256:8a9e".into()),
                tag: Some("latest".into()),
                resource_url: Some("hub.harbor.com/test-webhook/debian:latest".into()),
            }],
            custom: Vec::new(),
            request_id: "req-1".into(),
            retention: None,
        }
    }

    // Harbor's documented PUSH_ARTIFACT example, field by field.
    #[test]
    fn the_default_format_is_harbors() {
        let v: Value =
            serde_json::from_str(&push().payload(DEFAULT_FORMAT, false, "/projects/p/webhook/policies/1")).unwrap();
        let want = json!({
            "type": "PUSH_ARTIFACT",
            "occur_at": 1586922308,
            "operator": "admin",
            "event_data": {
                "resources": [{"digest": "sha256:8a9e", "tag": "latest", "resource_url": "hub.harbor.com/test-webhook/debian:latest"}],
                "repository": {"date_created": 1586922308, "name": "debian", "namespace": "test-webhook",
                               "repo_full_name": "test-webhook/debian", "repo_type": "private"}
            }
        });
        assert_eq!(v, want);
    }

    #[test]
    fn a_retention_run_carries_its_summary() {
        let n = Notice {
            event_type: TAG_RETENTION,
            project: "harbor".into(),
            repository: String::new(),
            resources: Vec::new(),
            retention: Some(json!({"total": 1, "retained": 0, "project_name": "harbor"})),
            ..push()
        };
        let v: Value =
            serde_json::from_str(&n.payload(DEFAULT_FORMAT, false, "/projects/harbor/webhook/policies/2")).unwrap();
        assert_eq!(v["type"], "TAG_RETENTION");
        assert_eq!(v["event_data"], json!({"retention": {"total": 1, "retained": 0, "project_name": "harbor"}}));
        let c: Value =
            serde_json::from_str(&n.payload(CLOUD_EVENTS_FORMAT, false, "/projects/harbor/webhook/policies/2"))
                .unwrap();
        assert_eq!(c["type"], "harbor.tag_retention.finished");
    }

    #[test]
    fn cloud_events_carry_the_same_data() {
        let mut n = push();
        n.event_type = QUOTA_EXCEED;
        n.custom = vec![("Details".into(), "over".into())];
        let v: Value =
            serde_json::from_str(&n.payload(CLOUD_EVENTS_FORMAT, true, "/projects/p/webhook/policies/7")).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "harbor.quota.exceeded");
        assert_eq!(v["source"], "/projects/p/webhook/policies/7");
        assert_eq!(v["requestid"], "req-1");
        assert_eq!(v["datacontenttype"], "application/json");
        assert_eq!(v["time"], "2020-04-15T03:45:08Z");
        assert_eq!(v["operator"], "admin");
        assert_eq!(v["data"]["repository"]["repo_type"], "public");
        assert_eq!(v["data"]["custom_attributes"]["Details"], "over");
        assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok());
    }
}
