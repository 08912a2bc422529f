//! The OCI distribution operations the scenarios are made of: blob uploads
//! (monolithic, streamed, chunked), cross-repository mounts, manifest puts
//! and a zb-style image pull.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::Method;
use rand::{Rng, RngCore};

use crate::http::{location_path, sha256_digest, with_query, Conn};

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// Distribution 2.8 answers 404 to a client that does not accept OCI manifests.
pub const ACCEPT: (&str, &str) = ("accept", MANIFEST_TYPE);

/// Bytes and their digest.
#[derive(Clone)]
pub struct Blob {
    pub data: Bytes,
    pub digest: String,
}

impl Blob {
    pub fn new(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        let digest = sha256_digest(&data);
        Self { data, digest }
    }

    /// zb's data: 4 KiB random, then zeros.
    pub fn zb(size: usize, rng: &mut impl RngCore) -> Self {
        let mut data = vec![0u8; size];
        let head = size.min(4096);
        rng.fill_bytes(&mut data[..head]);
        Self::new(data)
    }

    /// Entirely random bytes (nothing a filesystem could compress).
    pub fn random(size: usize, rng: &mut impl RngCore) -> Self {
        let mut data = vec![0u8; size];
        rng.fill_bytes(&mut data);
        Self::new(data)
    }

    /// A small image config: unique JSON of about 250 bytes.
    pub fn config(rng: &mut impl RngCore) -> Self {
        let id: u64 = rng.random();
        Self::new(format!(
            "{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Env\":[\"BENCH={id:016x}\"]}},\
             \"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[]}},\"history\":[{{\"created_by\":\"berth-bench\"}}]}}"
        ))
    }

    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }
}

/// An OCI image manifest naming `config` and `layers` by (digest, size).
pub fn manifest(config: (&str, u64), layers: &[(&str, u64)]) -> Blob {
    let layers: Vec<String> = layers
        .iter()
        .map(|(d, s)| format!("{{\"mediaType\":\"{LAYER_TYPE}\",\"digest\":\"{d}\",\"size\":{s}}}"))
        .collect();
    Blob::new(format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{MANIFEST_TYPE}\",\
         \"config\":{{\"mediaType\":\"{CONFIG_TYPE}\",\"digest\":\"{}\",\"size\":{}}},\"layers\":[{}]}}",
        config.0,
        config.1,
        layers.join(",")
    ))
}

async fn start_upload(conn: &mut Conn, repo: &str) -> Result<String> {
    let resp = conn.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), &[], Bytes::new()).await?;
    let resp = resp.expect(202, "POST upload")?;
    Ok(location_path(resp.header("location").context("POST upload: no Location")?))
}

async fn finish_upload(conn: &mut Conn, location: &str, blob: &Blob, body: Bytes) -> Result<()> {
    let url = with_query(location, "digest", &blob.digest);
    let headers = [("content-type", "application/octet-stream")];
    conn.request(Method::PUT, &url, &headers, body).await?.expect(201, "PUT upload")?;
    Ok(())
}

/// `POST` then `PUT ?digest=` carrying the whole blob.
pub async fn push_monolithic(conn: &mut Conn, repo: &str, blob: &Blob) -> Result<()> {
    let location = start_upload(conn, repo).await?;
    finish_upload(conn, &location, blob, blob.data.clone()).await
}

/// zb's "chunk streamed": one `PATCH` with the whole body and no
/// `Content-Range` (what `docker push` does), then an empty `PUT`.
pub async fn push_streamed(conn: &mut Conn, repo: &str, blob: &Blob) -> Result<()> {
    let location = start_upload(conn, repo).await?;
    let headers = [("content-type", "application/octet-stream")];
    let resp = conn.request(Method::PATCH, &location, &headers, blob.data.clone()).await?.expect(202, "PATCH")?;
    let location = location_path(resp.header("location").context("PATCH: no Location")?);
    finish_upload(conn, &location, blob, Bytes::new()).await
}

/// `PATCH`es of `chunk` bytes with `Content-Range`, then an empty `PUT`.
pub async fn push_chunked(conn: &mut Conn, repo: &str, blob: &Blob, chunk: usize) -> Result<()> {
    let mut location = start_upload(conn, repo).await?;
    let mut offset = 0;
    while offset < blob.data.len() {
        let end = (offset + chunk).min(blob.data.len());
        let range = format!("{}-{}", offset, end - 1);
        let headers = [("content-type", "application/octet-stream"), ("content-range", range.as_str())];
        let resp = conn.request(Method::PATCH, &location, &headers, blob.data.slice(offset..end)).await?;
        let resp = resp.expect(202, "PATCH chunk")?;
        location = location_path(resp.header("location").context("PATCH: no Location")?);
        offset = end;
    }
    finish_upload(conn, &location, blob, Bytes::new()).await
}

/// Cross-repository mount; fails unless the server mounted (201).
pub async fn mount(conn: &mut Conn, repo: &str, from: &str, digest: &str) -> Result<()> {
    let path = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
    conn.request(Method::POST, &path, &[], Bytes::new()).await?.expect(201, "POST mount")?;
    Ok(())
}

/// `PUT /v2/<repo>/manifests/<reference>`.
pub async fn put_manifest(conn: &mut Conn, repo: &str, reference: &str, manifest: &Blob) -> Result<()> {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let headers = [("content-type", MANIFEST_TYPE)];
    conn.request(Method::PUT, &path, &headers, manifest.data.clone()).await?.expect(201, "PUT manifest")?;
    Ok(())
}

/// How an image's blobs are uploaded.
#[derive(Clone, Copy, Debug)]
pub enum Upload {
    Monolithic,
    Streamed,
    Chunked(usize),
}

pub async fn push_blob(conn: &mut Conn, repo: &str, blob: &Blob, how: Upload) -> Result<()> {
    match how {
        Upload::Monolithic => push_monolithic(conn, repo, blob).await,
        Upload::Streamed => push_streamed(conn, repo, blob).await,
        Upload::Chunked(chunk) => push_chunked(conn, repo, blob, chunk).await,
    }
}

/// zb's push unit: the layers, the config, then the manifest under `tag`.
pub async fn push_image(
    conn: &mut Conn,
    repo: &str,
    tag: &str,
    config: &Blob,
    layers: &[&Blob],
    how: Upload,
) -> Result<Blob> {
    for layer in layers {
        push_blob(conn, repo, layer, how).await?;
    }
    push_blob(conn, repo, config, how).await?;
    let refs: Vec<(&str, u64)> = layers.iter().map(|l| (l.digest.as_str(), l.len())).collect();
    let manifest = manifest((&config.digest, config.len()), &refs);
    put_manifest(conn, repo, tag, &manifest).await?;
    Ok(manifest)
}

/// What one pull moved.
pub struct Pulled {
    pub bytes: u64,
    /// Layers whose digest the client recomputed and found right.
    pub verified: u64,
}

/// zb's pull unit: HEAD+GET manifest, HEAD+GET config, HEAD+GET each layer.
/// Layer bodies are hashed and checked when `verify`, else their length is.
pub async fn pull_image(conn: &mut Conn, repo: &str, tag: &str, verify: bool) -> Result<Pulled> {
    let path = format!("/v2/{repo}/manifests/{tag}");
    conn.request(Method::HEAD, &path, &[ACCEPT], Bytes::new()).await?.expect(200, "HEAD manifest")?;
    let resp = conn.request(Method::GET, &path, &[ACCEPT], Bytes::new()).await?.expect(200, "GET manifest")?;
    let doc: serde_json::Value = serde_json::from_slice(&resp.body).context("manifest JSON")?;
    let mut bytes = resp.body.len() as u64;
    let mut verified = 0;
    let config = doc["config"]["digest"].as_str().context("manifest has no config")?;
    let blob = |d: &str| format!("/v2/{repo}/blobs/{d}");
    conn.request(Method::HEAD, &blob(config), &[], Bytes::new()).await?.expect(200, "HEAD config")?;
    let resp = conn.request(Method::GET, &blob(config), &[], Bytes::new()).await?.expect(200, "GET config")?;
    if sha256_digest(&resp.body) != config {
        bail!("config {config} came back with another digest");
    }
    bytes += resp.body.len() as u64;
    for layer in doc["layers"].as_array().into_iter().flatten() {
        let digest = layer["digest"].as_str().context("layer without digest")?;
        let size = layer["size"].as_u64().context("layer without size")?;
        conn.request(Method::HEAD, &blob(digest), &[], Bytes::new()).await?.expect(200, "HEAD layer")?;
        let got = conn.get_sink(&blob(digest), verify).await?;
        if got.status != 200 || got.bytes != size {
            bail!("GET layer {digest}: status {}, {} bytes of {size}", got.status, got.bytes);
        }
        if let Some(d) = got.digest {
            if d != digest {
                bail!("layer {digest} came back as {d}");
            }
            verified += 1;
        }
        bytes += got.bytes;
    }
    Ok(Pulled { bytes, verified })
}
