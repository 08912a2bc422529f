//! Shared helpers of the black-box API tests (`tests/api_*.rs`): a real
//! `berth serve` on port 0 and a blocking HTTP client, plus pushes of blobs
//! and manifests. Expected values in the tests come from the OCI
//! Distribution Spec 1.1 and Distribution's documented behaviour.
#![allow(dead_code)]

pub mod admin;
pub mod receiver;

use berth_oci::{Algorithm, Digest};
use berth_testkit::{BerthOptions, BerthServer};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Options for a server of this package's own `berth` binary.
pub fn options() -> BerthOptions {
    BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth"))
}

/// A running registry and a client for it.
pub struct Reg {
    pub server: BerthServer,
    pub http: Client,
}

impl Reg {
    pub fn start() -> Reg {
        Reg::start_with(options())
    }

    pub fn with_deletes() -> Reg {
        Reg::start_with(options().delete_enabled(true))
    }

    pub fn start_with(opts: BerthOptions) -> Reg {
        let server = BerthServer::start(opts).unwrap_or_else(|e| panic!("{e}"));
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .expect("http client");
        Reg { server, http }
    }

    /// `path` relative to the server root, or an absolute `Location` URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.server.url())
        }
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().expect("GET")
    }

    pub fn head(&self, path: &str) -> Response {
        self.req(Method::HEAD, path).send().expect("HEAD")
    }

    pub fn delete(&self, path: &str) -> Response {
        self.req(Method::DELETE, path).send().expect("DELETE")
    }

    /// Starts an upload session; returns its `Location`.
    pub fn start_upload(&self, repo: &str) -> String {
        let resp = self.req(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).send().expect("POST");
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "POST upload: {}", text(resp));
        location(&resp)
    }

    /// Pushes `data` with POST then a monolithic PUT; returns its sha256 digest.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let digest = sha256(data);
        self.push_blob_as(repo, data, &digest);
        digest
    }

    /// Pushes `data` under `digest` (any algorithm), asserting 201.
    pub fn push_blob_as(&self, repo: &str, data: &[u8], digest: &str) {
        let loc = self.start_upload(repo);
        let resp = self
            .req(Method::PUT, &with_query(&loc, &format!("digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(data.to_vec())
            .send()
            .expect("PUT");
        assert_eq!(resp.status(), StatusCode::CREATED, "PUT blob: {}", text(resp));
    }

    /// PUTs a manifest; returns the response for the caller to check.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .expect("PUT manifest")
    }

    /// PUTs a manifest and asserts 201; returns its sha256 digest.
    pub fn push_manifest(&self, repo: &str, reference: &str, media_type: &str, body: &[u8]) -> String {
        let resp = self.put_manifest(repo, reference, media_type, body);
        assert_eq!(resp.status(), StatusCode::CREATED, "PUT manifest {repo}:{reference}: {}", text(resp));
        let digest = sha256(body);
        assert_eq!(header(&resp, "docker-content-digest"), digest);
        digest
    }

    /// Pushes a random OCI image (config + one layer) and tags it.
    pub fn push_image(&self, repo: &str, tag: &str) -> Image {
        let image = Image::oci(self, repo);
        self.push_manifest(repo, tag, OCI_MANIFEST, &image.manifest);
        image
    }
}

/// An image whose blobs are in the registry (the manifest not yet, unless
/// [`Reg::push_image`] made it).
pub struct Image {
    pub config: Value,
    pub layer: Vec<u8>,
    pub layer_digest: String,
    pub manifest: Vec<u8>,
    pub digest: String,
}

impl Image {
    /// Blobs of a random OCI image pushed to `repo`; the manifest built.
    pub fn oci(reg: &Reg, repo: &str) -> Image {
        Image::build(reg, repo, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
    }

    /// Same, as a Docker schema2 image.
    pub fn docker(reg: &Reg, repo: &str) -> Image {
        Image::build(reg, repo, DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
    }

    fn build(reg: &Reg, repo: &str, media_type: &str, config_type: &str, layer_type: &str) -> Image {
        let layer = random_bytes(1000);
        let layer_digest = reg.push_blob(repo, &layer);
        let config = json!({ "architecture": "amd64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": [] },
                             "nonce": sha256(&random_bytes(16)) });
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_desc = reg.push_blob_descriptor(repo, config_type, &config_bytes);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": config_desc,
            "layers": [ { "mediaType": layer_type, "digest": layer_digest, "size": layer.len() } ],
        });
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let digest = sha256(&manifest);
        Image { config, layer, layer_digest, manifest, digest }
    }

    /// This image's manifest as a descriptor (for indexes and `subject`).
    pub fn descriptor(&self, media_type: &str) -> Value {
        json!({ "mediaType": media_type, "digest": self.digest, "size": self.manifest.len() })
    }
}

impl Reg {
    /// Pushes `data` and returns its descriptor with `media_type`.
    pub fn push_blob_descriptor(&self, repo: &str, media_type: &str, data: &[u8]) -> Value {
        let digest = self.push_blob(repo, data);
        json!({ "mediaType": media_type, "digest": digest, "size": data.len() })
    }
}

pub fn sha256(data: &[u8]) -> String {
    Digest::compute(Algorithm::Sha256, data).to_string()
}

pub fn sha512(data: &[u8]) -> String {
    Digest::compute(Algorithm::Sha512, data).to_string()
}

pub fn random_bytes(n: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut v = vec![0u8; n];
    rand::rng().fill_bytes(&mut v);
    v
}

pub fn header(resp: &Response, name: &str) -> String {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned).unwrap_or_default()
}

pub fn has_header(resp: &Response, name: &str) -> bool {
    resp.headers().contains_key(name)
}

pub fn location(resp: &Response) -> String {
    let loc = header(resp, "location");
    assert!(!loc.is_empty(), "no Location header on {}", resp.status());
    loc
}

/// Appends `query` to `url`, which may already have a query (spec: the
/// upload URL is opaque).
pub fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

pub fn text(resp: Response) -> String {
    let status = resp.status();
    format!("{status} {}", resp.text().unwrap_or_default())
}

pub fn json_body(resp: Response) -> Value {
    let status = resp.status();
    let body = resp.text().unwrap_or_default();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {body:?}"))
}

/// Asserts the spec's error shape (`{"errors":[{"code","message",...}]}`),
/// the status and the first error's code; returns the first error.
#[track_caller]
pub fn expect_error(resp: Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status for expected {code}");
    let ct = header(&resp, "content-type");
    assert!(ct.starts_with("application/json"), "error Content-Type {ct:?}");
    let body = json_body(resp);
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("no errors array: {body}"));
    assert!(!errors.is_empty(), "empty errors array");
    for e in errors {
        let c = e["code"].as_str().unwrap_or_else(|| panic!("code not a string: {e}"));
        assert!(c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'), "code {c:?} is not UPPER_SNAKE");
        assert!(e["message"].is_string(), "message not a string: {e}");
    }
    assert_eq!(errors[0]["code"], code, "{body}");
    errors[0].clone()
}

/// Parses a `Range: 0-N` upload progress header (with or without the
/// `bytes=` prefix the spec's examples show) into the end offset N.
#[track_caller]
pub fn upload_range_end(resp: &Response) -> u64 {
    let range = header(resp, "range");
    let r = range.strip_prefix("bytes=").unwrap_or(&range);
    let end = r.strip_prefix("0-").unwrap_or_else(|| panic!("upload Range {range:?} is not 0-N"));
    end.parse().unwrap_or_else(|_| panic!("upload Range {range:?} is not 0-N"))
}

/// `Link: <url>; rel="next"` → url.
#[track_caller]
pub fn next_link(resp: &Response) -> Option<String> {
    let link = header(resp, "link");
    if link.is_empty() {
        return None;
    }
    let (url, rel) = link.split_once(';').unwrap_or_else(|| panic!("Link {link:?} has no ;"));
    assert_eq!(rel.trim(), "rel=\"next\"", "Link {link:?}");
    let url = url.trim().strip_prefix('<').and_then(|u| u.strip_suffix('>'));
    Some(url.unwrap_or_else(|| panic!("Link {link:?} lacks <url>")).to_owned())
}

/// The decoded query parameters of a URL.
pub fn query_params(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_owned(), v.replace("%2F", "/").replace("%2f", "/"))
        })
        .collect()
}
