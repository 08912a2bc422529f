use berth_oci::Digest;
use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    pub id: String,
    pub repository: String,
    /// Bytes acknowledged so far.
    pub offset: u64,
    /// `berth_oci::Hasher::save()` after those bytes.
    pub hash_state: Vec<u8>,
    /// The blob store's own resumable state (S3: multipart id, parts, tail);
    /// empty for the filesystem.
    pub store_state: Vec<u8>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// What a manifest references, as far as storage and validation care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRef {
    pub digest: Digest,
    /// A manifest (child of an index) rather than a blob.
    pub is_manifest: bool,
    /// Must be present in the repository. False for a non-distributable
    /// layer, or for an index child the index policy lets be absent.
    pub required: bool,
}

#[derive(Debug, Clone)]
pub struct NewManifest {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// JSON object of the manifest's annotations, for referrers listings.
    pub annotations: Option<String>,
    pub body: Bytes,
    pub children: Vec<ChildRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub subject: Option<Digest>,
    pub body: Bytes,
}

/// One entry of a referrers index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub size: u64,
    pub annotations: Option<String>,
}
