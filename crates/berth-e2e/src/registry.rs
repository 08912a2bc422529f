//! Plain-HTTP reads of a registry's API beside the real clients, so a
//! scenario can check what the registry itself holds (manifest bytes and
//! digests, tags, referrers, the answer to a DELETE).

use std::net::SocketAddr;

use berth_testkit::http::{self, Response};
use serde_json::Value;

use crate::{ensure, Result};

/// Every manifest media type a client may ask for.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest as served: its `Docker-Content-Digest`, bytes and JSON.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub digest: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
    pub json: Value,
}

/// `GET /v2/REPO/manifests/REFERENCE`, which must answer 200.
pub fn manifest(addr: SocketAddr, repo: &str, reference: &str) -> Result<Manifest> {
    let r = get(addr, &format!("/v2/{repo}/manifests/{reference}"), &[("Accept", ACCEPT_MANIFESTS)])?;
    ensure(r.status == 200, || format!("GET manifest {repo}:{reference}: {}", r.describe()))?;
    Ok(Manifest {
        digest: r.header("docker-content-digest").unwrap_or_default().to_owned(),
        content_type: r.header("content-type").unwrap_or_default().to_owned(),
        json: json(&r.text())?,
        bytes: r.body,
    })
}

/// `GET /v2/REPO/blobs/DIGEST`, which must answer 200; the bytes.
pub fn blob(addr: SocketAddr, repo: &str, digest: &str) -> Result<Vec<u8>> {
    let r = get(addr, &format!("/v2/{repo}/blobs/{digest}"), &[])?;
    ensure(r.status == 200, || format!("GET blob {repo}@{digest}: {}", r.status))?;
    Ok(r.body)
}

/// The tags of `repo` from `GET /v2/REPO/tags/list` (none if 404).
pub fn tags(addr: SocketAddr, repo: &str) -> Result<Vec<String>> {
    let r = get(addr, &format!("/v2/{repo}/tags/list"), &[])?;
    if r.status == 404 {
        return Ok(Vec::new());
    }
    ensure(r.status == 200, || format!("GET tags of {repo}: {}", r.describe()))?;
    let v = json(&r.text())?;
    Ok(v["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect())
}

/// `GET path` with headers.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
    http::request(addr, "GET", path, headers, &[])
}

/// Parses JSON text, with the text in the error.
pub fn json(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| format!("bad JSON ({e}): {text}"))
}

/// Asserts that `r` is the spec's answer to a DELETE with deletes disabled:
/// 405 with an `UNSUPPORTED` error code.
pub fn ensure_unsupported(r: &Response, what: &str) -> Result<()> {
    let code = json(&r.text()).ok().and_then(|v| v["errors"][0]["code"].as_str().map(str::to_owned));
    ensure(r.status == 405 && code.as_deref() == Some("UNSUPPORTED"), || {
        format!("{what} with deletes disabled: expected 405 UNSUPPORTED, got {}", r.describe())
    })
}
