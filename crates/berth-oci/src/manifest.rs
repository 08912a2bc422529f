//! Manifest parsing and structural validation: Docker schema2 manifests and
//! manifest lists, OCI image manifests and indexes, artifacts (`artifactType`)
//! and `subject`. Existence checks against stored blobs belong to the caller;
//! this module only decides what a body *says*.

use crate::media_type::{self, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST};
use crate::Digest;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("schema1 manifests are not supported; push with a client that produces schema2 or OCI manifests")]
    Schema1,
    #[error("unsupported schemaVersion {0}; expected 2")]
    SchemaVersion(i64),
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("mediaType {body:?} in manifest does not match Content-Type {header:?}")]
    MediaTypeMismatch { body: String, header: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, rename = "variant", skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A validated content descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub urls: Vec<String>,
    pub artifact_type: Option<String>,
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestKind {
    Image { config: Descriptor, layers: Vec<Descriptor> },
    Index { manifests: Vec<Descriptor> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedManifest {
    /// The effective media type: the body's, else the Content-Type's, else
    /// inferred from the structure.
    pub media_type: String,
    pub kind: ManifestKind,
    pub subject: Option<Descriptor>,
    /// The `artifactType` a referrers listing reports: the manifest's own, or
    /// for an image manifest without one, its config's media type.
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<serde_json::Value>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
    // schema1 markers
    fs_layers: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<serde_json::Value>,
    #[serde(default)]
    urls: Vec<String>,
    artifact_type: Option<String>,
    platform: Option<Platform>,
}

/// `Content-Type` without parameters, lowercased.
fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

fn descriptor(raw: RawDescriptor, what: &str) -> Result<Descriptor, ManifestError> {
    let media_type = raw
        .media_type
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ManifestError::Invalid(format!("{what}: mediaType is required")))?;
    let digest_text = raw.digest.ok_or_else(|| ManifestError::Invalid(format!("{what}: digest is required")))?;
    let digest =
        digest_text.parse::<Digest>().map_err(|e| ManifestError::Invalid(format!("{what}: {e}: {digest_text:?}")))?;
    let size = match raw.size {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| ManifestError::Invalid(format!("{what}: size must be a non-negative integer")))?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
        urls: raw.urls,
        artifact_type: raw.artifact_type,
        platform: raw.platform,
    })
}

impl ParsedManifest {
    /// Parses `body` sent with `content_type` (the request's header, if any).
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Self, ManifestError> {
        let header = content_type.map(essence).filter(|h| !h.is_empty());
        if matches!(header.as_deref(), Some(media_type::DOCKER_SCHEMA1 | media_type::DOCKER_SCHEMA1_SIGNED)) {
            return Err(ManifestError::Schema1);
        }
        let raw: RawManifest = serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
        match raw.schema_version.as_ref().and_then(|v| v.as_i64()) {
            Some(2) => {}
            Some(1) => return Err(ManifestError::Schema1),
            _ if raw.fs_layers.is_some() => return Err(ManifestError::Schema1),
            Some(v) => return Err(ManifestError::SchemaVersion(v)),
            None => return Err(ManifestError::Invalid("schemaVersion 2 is required".into())),
        }

        // A Content-Type that names a manifest type must agree with the body;
        // a generic one (none, application/json) defers to the body.
        let header_manifest = header.filter(|h| h != "application/json");
        if let Some(h) = &header_manifest {
            if !media_type::is_manifest(h) {
                return Err(ManifestError::UnsupportedMediaType(h.clone()));
            }
        }
        let media_type = match (&raw.media_type, &header_manifest) {
            (Some(body), Some(h)) if body != h => {
                return Err(ManifestError::MediaTypeMismatch { body: body.clone(), header: h.clone() })
            }
            (Some(body), _) => body.clone(),
            (None, Some(h)) => h.clone(),
            (None, None) if raw.manifests.is_some() => OCI_INDEX.to_owned(),
            (None, None) => OCI_MANIFEST.to_owned(),
        };
        if !media_type::is_manifest(&media_type) {
            return Err(ManifestError::UnsupportedMediaType(media_type));
        }
        let is_docker = media_type == DOCKER_MANIFEST || media_type == DOCKER_MANIFEST_LIST;

        let kind = if media_type::is_index(&media_type) {
            if raw.config.is_some() || raw.layers.is_some() {
                return Err(ManifestError::Invalid("an index must not have config or layers".into()));
            }
            let manifests = raw
                .manifests
                .ok_or_else(|| ManifestError::Invalid("manifests is required in an index".into()))?
                .into_iter()
                .enumerate()
                .map(|(i, d)| descriptor(d, &format!("manifests[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            ManifestKind::Index { manifests }
        } else {
            if raw.manifests.is_some() {
                return Err(ManifestError::Invalid("an image manifest must not have manifests".into()));
            }
            let config =
                descriptor(raw.config.ok_or_else(|| ManifestError::Invalid("config is required".into()))?, "config")?;
            let layers = match raw.layers {
                Some(layers) => layers,
                None if is_docker => return Err(ManifestError::Invalid("layers is required".into())),
                None => Vec::new(),
            };
            let layers = layers
                .into_iter()
                .enumerate()
                .map(|(i, d)| descriptor(d, &format!("layers[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            ManifestKind::Image { config, layers }
        };

        if is_docker && (raw.subject.is_some() || raw.artifact_type.is_some()) {
            return Err(ManifestError::Invalid("subject and artifactType are only valid in OCI manifests".into()));
        }
        let subject = raw.subject.map(|s| descriptor(s, "subject")).transpose()?;
        let artifact_type = raw.artifact_type.filter(|a| !a.is_empty()).or_else(|| match &kind {
            ManifestKind::Image { config, .. } => Some(config.media_type.clone()),
            ManifestKind::Index { .. } => None,
        });
        Ok(ParsedManifest { media_type, kind, subject, artifact_type, annotations: raw.annotations })
    }

    /// Every descriptor this manifest points at, except its subject.
    pub fn references(&self) -> impl Iterator<Item = &Descriptor> {
        let (first, rest): (Option<&Descriptor>, &[Descriptor]) = match &self.kind {
            ManifestKind::Image { config, layers } => (Some(config), layers),
            ManifestKind::Index { manifests } => (None, manifests),
        };
        first.into_iter().chain(rest.iter())
    }

    pub fn is_index(&self) -> bool {
        matches!(self.kind, ManifestKind::Index { .. })
    }
}

#[cfg(test)]
mod tests;
