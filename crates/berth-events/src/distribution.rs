//! Distribution's event envelope (`notifications/event.go`): the JSON body
//! existing `registry:2` listeners parse. Field names, omissions and the
//! media type are Distribution's; one event per envelope, as its HTTP sink sends.

use crate::event::{rfc3339, Event, Kind};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// The envelope's media type (Distribution 2.x; 3.x renamed it `v2` with the same fields).
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v1+json";

/// Identifies the registry node that generated the event.
#[derive(Debug, Clone, Serialize)]
pub struct SourceRecord {
    /// `hostname:port` of this node.
    pub addr: String,
    /// Changes with each start of the process.
    #[serde(rename = "instanceID")]
    pub instance_id: String,
}

/// The envelope for `event`, `include_references` adding a manifest's
/// config and layers (or an index's manifests) as Distribution's
/// `notifications.events.includereferences` does.
pub fn envelope(event: &Event, source: &SourceRecord, include_references: bool) -> Vec<u8> {
    let mut target = Map::new();
    let t = &event.target;
    if let Some(m) = event.media_type() {
        target.insert("mediaType".into(), m.into());
    }
    if let Some(d) = &t.digest {
        target.insert("digest".into(), d.as_str().into());
    }
    // Deletes carry no size (Distribution does not look the object up).
    if let Some(s) = t.size.filter(|_| event.action != crate::Action::Delete) {
        target.insert("size".into(), s.into());
        target.insert("length".into(), s.into());
    }
    target.insert("repository".into(), t.repository.as_str().into());
    if let Some(from) = &t.from_repository {
        target.insert("fromRepository".into(), from.as_str().into());
    }
    if let Some(url) = event.url() {
        target.insert("url".into(), url.into());
    }
    if let Some(tag) = &t.tag {
        target.insert("tag".into(), tag.as_str().into());
    }
    if include_references && event.kind == Kind::Manifest {
        let refs = t.manifest.as_deref().map(references).unwrap_or_default();
        if !refs.is_empty() {
            target.insert("references".into(), Value::Array(refs));
        }
    }
    let r = &event.request;
    let mut actor = Map::new();
    if let Some(name) = &event.actor {
        actor.insert("name".into(), name.as_str().into());
    }
    let mut request = Map::new();
    request.insert("id".into(), r.id.as_str().into());
    if !r.addr.is_empty() {
        request.insert("addr".into(), r.addr.as_str().into());
    }
    if !r.host.is_empty() {
        request.insert("host".into(), r.host.as_str().into());
    }
    request.insert("method".into(), r.method.as_str().into());
    request.insert("useragent".into(), r.user_agent.as_str().into());
    let body = json!({
        "events": [{
            "id": event.id,
            "timestamp": rfc3339(event.time_ms),
            "action": event.action.as_str(),
            "target": target,
            "request": request,
            "actor": actor,
            "source": source,
        }]
    });
    serde_json::to_vec_pretty(&body).unwrap_or_default()
}

/// The descriptors a manifest refers to: config then layers, or an index's manifests.
fn references(manifest: &[u8]) -> Vec<Value> {
    let Ok(v) = serde_json::from_slice::<Value>(manifest) else { return Vec::new() };
    let pick = |d: &Value| {
        let mut out = Map::new();
        for key in ["mediaType", "digest", "size", "urls", "annotations", "platform"] {
            if let Some(x) = d.get(key) {
                out.insert(key.into(), x.clone());
            }
        }
        Value::Object(out)
    };
    let mut refs = Vec::new();
    if let Some(c) = v.get("config") {
        refs.push(pick(c));
    }
    for list in ["layers", "manifests", "blobs"] {
        if let Some(Value::Array(items)) = v.get(list) {
            refs.extend(items.iter().map(pick));
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, RequestRecord, Target, BLOB_MEDIA_TYPE};

    fn source() -> SourceRecord {
        SourceRecord { addr: "node-1:5000".into(), instance_id: "i-1".into() }
    }

    fn request() -> RequestRecord {
        RequestRecord {
            id: "req-1".into(),
            addr: "10.0.0.9:4242".into(),
            host: "registry.example:5000".into(),
            method: "PUT".into(),
            user_agent: "docker/27".into(),
            base_url: "http://registry.example:5000".into(),
        }
    }

    // The shape of Distribution's documented push event (docs/content/about/notifications.md).
    #[test]
    fn a_manifest_push_has_distributions_fields() {
        let manifest = br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:l","size":9}]}"#;
        let target = Target {
            media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
            digest: Some("sha256:m".into()),
            size: Some(708),
            repository: "library/test".into(),
            tag: Some("latest".into()),
            manifest: Some(bytes::Bytes::from_static(manifest)),
            ..Target::default()
        };
        let e = Event::new(Action::Push, Kind::Manifest, target, request(), Some("alice".into()));
        let v: Value = serde_json::from_slice(&envelope(&e, &source(), true)).unwrap();
        let ev = &v["events"][0];
        assert_eq!(ev["action"], "push");
        assert_eq!(ev["target"]["mediaType"], "application/vnd.oci.image.manifest.v1+json");
        assert_eq!(ev["target"]["size"], 708);
        assert_eq!(ev["target"]["length"], 708);
        assert_eq!(ev["target"]["repository"], "library/test");
        assert_eq!(ev["target"]["tag"], "latest");
        assert_eq!(ev["target"]["url"], "http://registry.example:5000/v2/library/test/manifests/sha256:m");
        assert_eq!(ev["target"]["references"][1]["digest"], "sha256:l");
        assert_eq!(ev["request"]["useragent"], "docker/27");
        assert_eq!(ev["actor"]["name"], "alice");
        assert_eq!(ev["source"]["instanceID"], "i-1");
        assert!(ev["timestamp"].as_str().unwrap().ends_with('Z'));
        let again: Value = serde_json::from_slice(&envelope(&e, &source(), false)).unwrap();
        assert!(again["events"][0]["target"].get("references").is_none());
    }

    #[test]
    fn blob_events_say_octet_stream_and_deletes_carry_no_url_or_size() {
        let target = Target {
            digest: Some("sha256:b".into()),
            size: Some(3),
            repository: "a/b".into(),
            from_repository: Some("c/d".into()),
            ..Target::default()
        };
        let e = Event::new(Action::Mount, Kind::Blob, target.clone(), request(), None);
        let v: Value = serde_json::from_slice(&envelope(&e, &source(), false)).unwrap();
        assert_eq!(v["events"][0]["target"]["mediaType"], BLOB_MEDIA_TYPE);
        assert_eq!(v["events"][0]["target"]["fromRepository"], "c/d");
        assert_eq!(v["events"][0]["actor"], json!({}));
        let d = Event::new(Action::Delete, Kind::Blob, target, request(), None);
        let v: Value = serde_json::from_slice(&envelope(&d, &source(), false)).unwrap();
        let t = &v["events"][0]["target"];
        assert!(t.get("url").is_none() && t.get("size").is_none() && t.get("mediaType").is_none());
        assert_eq!(t["digest"], "sha256:b");
    }
}
