//! Helpers shared by the crash and differential tests: URL helpers for the
//! raw HTTP client they use (`berth_testkit::http`, which sends exactly the
//! headers asked for: no `Accept` unless given), digests, and the manifests
//! the tests push.
//!
//! Each test binary uses part of this module, hence the `dead_code` allowance.
//! The pieces only one test uses (`crash_*.rs`, `diff_*.rs` beside this file)
//! are declared by that test alone, with `#[path]`.
#![allow(dead_code)]

use berth_oci::{Algorithm, Digest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    Digest::compute(Algorithm::Sha256, data).to_string()
}

/// A blob a manifest references: digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    pub size: usize,
}

impl BlobRef {
    pub fn of(data: &[u8]) -> Self {
        BlobRef { digest: sha256(data), size: data.len() }
    }
}

/// Which manifest format to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestFormat {
    Oci,
    Docker,
}

impl ManifestFormat {
    pub fn media_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_MANIFEST,
            ManifestFormat::Docker => DOCKER_MANIFEST,
        }
    }
}

/// An image manifest of `format` with `config` and `layers`.
pub fn image_manifest(format: ManifestFormat, config: &BlobRef, layers: &[BlobRef]) -> Vec<u8> {
    let (config_type, layer_type) = match format {
        ManifestFormat::Oci => (OCI_CONFIG, OCI_LAYER),
        ManifestFormat::Docker => (DOCKER_CONFIG, DOCKER_LAYER),
    };
    let descriptor = |media_type: &str, b: &BlobRef| serde_json::json!({ "mediaType": media_type, "digest": b.digest, "size": b.size });
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": format.media_type(),
        "config": descriptor(config_type, config),
        "layers": layers.iter().map(|l| descriptor(layer_type, l)).collect::<Vec<_>>(),
    });
    serde_json::to_vec_pretty(&manifest).expect("a JSON value serialises")
}

/// Digests of the config and layers a manifest body references.
pub fn referenced_blobs(manifest: &[u8]) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_slice(manifest).map_err(|e| format!("manifest is not JSON: {e}"))?;
    let mut out = Vec::new();
    if let Some(d) = v.pointer("/config/digest").and_then(|d| d.as_str()) {
        out.push(d.to_owned());
    }
    for l in v.get("layers").and_then(|l| l.as_array()).into_iter().flatten() {
        out.push(l.get("digest").and_then(|d| d.as_str()).ok_or("layer without digest")?.to_owned());
    }
    Ok(out)
}

/// An `Accept` value listing every image manifest type the tests push.
pub const ACCEPT_ALL_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// The path and query of a `Location` or `Link` URL, relative or absolute.
pub fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, after)) => after.find('/').map(|i| after[i..].to_owned()).unwrap_or_else(|| "/".into()),
        None => url.to_owned(),
    }
}

/// `url` with `param` (`k=v`) appended to its query.
pub fn with_query(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(path_of("http://h:1/v2/a?x=1"), "/v2/a?x=1");
        assert_eq!(path_of("/v2/a"), "/v2/a");
        assert_eq!(with_query("/u?_state=x", "digest=d"), "/u?_state=x&digest=d");
        assert_eq!(with_query("/u", "digest=d"), "/u?digest=d");
    }
}
