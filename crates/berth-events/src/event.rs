//! A registry event: what the HTTP edge saw happen, in the terms of
//! Distribution's notifications (action, target, request, actor), from
//! which every payload format is built.

use bytes::Bytes;

/// What was done to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Push,
    Pull,
    Mount,
    Delete,
}

impl Action {
    /// Distribution's spelling (`notifications.endpoints[].ignore.actions` uses it).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Push => "push",
            Action::Pull => "pull",
            Action::Mount => "mount",
            Action::Delete => "delete",
        }
    }
}

/// What the event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Blob,
    /// A tag deleted by name (the manifest stays).
    Tag,
    /// A whole repository deleted.
    Repository,
}

/// Distribution's media type for blobs in events: it never knows a blob's own.
pub const BLOB_MEDIA_TYPE: &str = "application/octet-stream";

/// The object of the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    pub media_type: Option<String>,
    pub digest: Option<String>,
    pub size: Option<u64>,
    pub repository: String,
    /// The repository a mounted blob came from.
    pub from_repository: Option<String>,
    pub tag: Option<String>,
    /// A pushed or pulled manifest's bytes, from which references are read
    /// when an endpoint wants them (`notifications.events.includereferences`).
    pub manifest: Option<Bytes>,
}

/// The request that caused the event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: String,
    /// The client's address (`ip:port`).
    pub addr: String,
    /// The `Host` the client asked for: event URLs point there.
    pub host: String,
    pub method: String,
    pub user_agent: String,
    /// Where the registry's API is reached (`http://host:port`, and
    /// `http.prefix` if any), as Distribution's URL builder has it.
    pub base_url: String,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique (a UUID, as Distribution's).
    pub id: String,
    pub time_ms: i64,
    pub action: Action,
    pub kind: Kind,
    pub target: Target,
    pub request: RequestRecord,
    /// The authenticated account, `None` for anonymous requests.
    pub actor: Option<String>,
}

impl Event {
    pub fn new(action: Action, kind: Kind, target: Target, request: RequestRecord, actor: Option<String>) -> Self {
        Event { id: uuid::Uuid::new_v4().to_string(), time_ms: now_ms(), action, kind, target, request, actor }
    }

    /// The target's media type as Distribution reports it.
    pub fn media_type(&self) -> Option<&str> {
        match self.kind {
            Kind::Blob if self.action != Action::Delete => Some(BLOB_MEDIA_TYPE),
            _ => self.target.media_type.as_deref(),
        }
    }

    /// `<base>/v2/<repo>/{manifests,blobs}/<digest>`, as Distribution's URL builder makes it.
    pub fn url(&self) -> Option<String> {
        let digest = self.target.digest.as_deref()?;
        let what = match self.kind {
            Kind::Manifest if self.action != Action::Delete => "manifests",
            Kind::Blob if self.action != Action::Delete => "blobs",
            _ => return None,
        };
        Some(format!("{}/v2/{}/{what}/{digest}", self.request.base_url, self.target.repository))
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// RFC 3339 with the fraction Go's `time.Time` JSON has (UTC).
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}
