//! Differential test: one request script, run against Berth and against
//! CNCF Distribution 2.8 (Debian's `docker-registry`), both with deletes
//! enabled, comparing what the OCI Distribution spec lets a client rely on:
//! status, error `code`, `Docker-Content-Digest`, `Content-Length` (success
//! only: error messages differ in wording), `Content-Type` (success only),
//! `Location` (normalised to its path, upload ids and Distribution's
//! `_state` query elided), `Range`, `Content-Range`, `Docker-Upload-UUID`
//! presence, `Link`, and the body (a digest for blobs and manifests, the
//! JSON for lists).
//!
//! The script is data ([`script`]): each step names a request by templates
//! over values both runs share (digests) and values each run captured
//! (upload `Location`s). The full comparison table is printed; every
//! difference must match an entry of [`ALLOWED`], which says why the spec
//! favours one side (or permits both). A new difference fails the test, and
//! so does an allowance that no longer matches (so the list stays true).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use berth_testkit::{BerthOptions, BerthServer, Distribution, DistributionOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::http::{path_of, request, with_query, Response};
use support::{image_manifest, sha256, BlobRef, ManifestFormat, DOCKER_MANIFEST, OCI_MANIFEST};

/// One request of the script.
#[derive(Debug, Clone)]
struct Step {
    /// Short unique key, used by allowances.
    id: &'static str,
    desc: &'static str,
    method: &'static str,
    /// Path template: `{var}` is replaced by a shared or captured value.
    target: String,
    /// Query parameter (`k=v` template) appended to the target.
    query: Option<String>,
    headers: Vec<(&'static str, String)>,
    /// Name of a body in the shared bodies map.
    body: Option<&'static str>,
    /// Capture the response's `Location` (as a path) under this name.
    save_location: Option<&'static str>,
}

fn step(id: &'static str, desc: &'static str, method: &'static str, target: impl Into<String>) -> Step {
    Step { id, desc, method, target: target.into(), query: None, headers: Vec::new(), body: None, save_location: None }
}

impl Step {
    fn query(mut self, q: impl Into<String>) -> Self {
        self.query = Some(q.into());
        self
    }
    fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    fn body(mut self, name: &'static str) -> Self {
        self.body = Some(name);
        self
    }
    fn save(mut self, name: &'static str) -> Self {
        self.save_location = Some(name);
        self
    }
}

/// Blobs and manifests the script pushes; the same bytes for both servers.
struct Fixture {
    bodies: HashMap<&'static str, Vec<u8>>,
    vars: HashMap<String, String>,
}

fn fixture() -> Fixture {
    // Fixed seed: the script, and so the table, is the same on every run.
    let mut rng = StdRng::seed_from_u64(0x0c1_d1ff);
    let mut random = |len: usize| {
        let mut v = vec![0u8; len];
        rng.fill(&mut v[..]);
        v
    };
    let mut bodies: HashMap<&'static str, Vec<u8>> = HashMap::new();
    bodies.insert("a", random(3000));
    bodies.insert("b", random(2000));
    bodies.insert("c", random(1000));
    bodies.insert("d", random(1500));
    bodies.insert("e", random(500));
    bodies.insert("cfg", br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec());
    let a = BlobRef::of(&bodies["a"]);
    let b = BlobRef::of(&bodies["b"]);
    let cfg = BlobRef::of(&bodies["cfg"]);
    let missing = BlobRef { digest: format!("sha256:{}", "e".repeat(64)), size: 42 };
    bodies.insert("m_docker", image_manifest(ManifestFormat::Docker, &cfg, std::slice::from_ref(&a)));
    bodies.insert("m_oci", image_manifest(ManifestFormat::Oci, &cfg, &[a.clone(), b.clone()]));
    bodies.insert("m_missing", image_manifest(ManifestFormat::Oci, &cfg, &[a, missing]));
    bodies.insert("not_json", b"this is not a manifest".to_vec());
    bodies.insert("a1", bodies["a"][..1500].to_vec());
    bodies.insert("a2", bodies["a"][1500..].to_vec());
    bodies.insert("a_bad", bodies["a"][2000..2500].to_vec());
    let mut vars = HashMap::new();
    for (var, body) in [("dA", "a"), ("dB", "b"), ("dC", "c"), ("dD", "d"), ("dCfg", "cfg")] {
        vars.insert(var.to_owned(), sha256(&bodies[body]));
    }
    vars.insert("mDocker".into(), sha256(&bodies["m_docker"]));
    vars.insert("mOci".into(), sha256(&bodies["m_oci"]));
    vars.insert("zero".into(), format!("sha256:{}", "0".repeat(64)));
    Fixture { bodies, vars }
}

/// Step ids and descriptions built in a loop live for the whole test.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

const OCT: &str = "application/octet-stream";

fn script() -> Vec<Step> {
    let app = "/v2/diff/app";
    let other = "/v2/diff/other";
    let mut s = vec![
        step("base", "GET /v2/", "GET", "/v2/"),
        // Chunked upload: POST, PATCH, status, out-of-order PATCH, PATCH, PUT.
        step("up-start", "start an upload", "POST", format!("{app}/blobs/uploads/")).save("up1"),
        step("up-patch1", "PATCH first chunk 0-1499", "PATCH", "{up1}")
            .header("Content-Type", OCT)
            .header("Content-Range", "0-1499")
            .body("a1")
            .save("up1"),
        step("up-status", "upload status after one chunk", "GET", "{up1}"),
        step("up-patch2", "PATCH second chunk 1500-2999", "PATCH", "{up1}")
            .header("Content-Type", OCT)
            .header("Content-Range", "1500-2999")
            .body("a2")
            .save("up1"),
        step("up-put", "PUT ?digest= closes the chunked upload", "PUT", "{up1}").query("digest={dA}"),
        step("up-status-done", "status of a finished upload", "GET", "{up1}"),
        // Out-of-order chunk, on a session of its own: Distribution's answer
        // would derail the session (and so every later step).
        step("gap-start", "start an upload (out-of-order chunk)", "POST", format!("{app}/blobs/uploads/")).save("upg"),
        step("gap-patch1", "PATCH first chunk 0-1499", "PATCH", "{upg}")
            .header("Content-Type", OCT)
            .header("Content-Range", "0-1499")
            .body("a1")
            .save("upg"),
        step("gap-patch", "PATCH out of order (2000-2499)", "PATCH", "{upg}")
            .header("Content-Type", OCT)
            .header("Content-Range", "2000-2499")
            .body("a_bad"),
        // Reads.
        step("blob-head", "HEAD blob", "HEAD", format!("{app}/blobs/{{dA}}")),
        step("blob-get", "GET blob", "GET", format!("{app}/blobs/{{dA}}")),
        step("blob-range", "GET blob Range: bytes=10-19", "GET", format!("{app}/blobs/{{dA}}"))
            .header("Range", "bytes=10-19"),
        step("blob-other-repo", "GET blob in a repo that never got it", "GET", format!("{other}/blobs/{{dA}}")),
        step("blob-unknown-head", "HEAD unknown blob", "HEAD", format!("{app}/blobs/{{zero}}")),
        step("blob-unknown-get", "GET unknown blob", "GET", format!("{app}/blobs/{{zero}}")),
        // Monolithic POST + PUT.
        step("mono-start", "start an upload (monolithic)", "POST", format!("{app}/blobs/uploads/")).save("up2"),
        step("mono-put", "PUT whole blob with ?digest=", "PUT", "{up2}")
            .query("digest={dB}")
            .header("Content-Type", OCT)
            .body("b"),
        step("mono-head", "HEAD the monolithic blob", "HEAD", format!("{app}/blobs/{{dB}}")),
        // Bad digests.
        step("digest-short", "GET blob sha256:abc", "GET", format!("{app}/blobs/sha256:abc")),
        step("digest-63hex", "GET blob with 63 hex chars", "GET", format!("{app}/blobs/sha256:{}", "a".repeat(63))),
        step("digest-algo", "GET blob md5:<32 hex>", "GET", format!("{app}/blobs/md5:{}", "a".repeat(32))),
        step("digest-upper", "GET blob with uppercase hex", "GET", format!("{app}/blobs/sha256:{}", "A".repeat(64))),
        // Wrong and malformed digests on PUT.
        step("wrong-start", "start an upload (wrong digest)", "POST", format!("{app}/blobs/uploads/")).save("up3"),
        step("wrong-put", "PUT content with another blob's digest", "PUT", "{up3}")
            .query("digest={dD}")
            .header("Content-Type", OCT)
            .body("c"),
        step("wrong-status", "status after the failed PUT", "GET", "{up3}"),
        step("malformed-start", "start an upload (malformed digest)", "POST", format!("{app}/blobs/uploads/"))
            .save("up4"),
        step("malformed-put", "PUT ?digest=sha256:zz", "PUT", "{up4}").query("digest=sha256:zz").body("c"),
        step("nodigest-start", "start an upload (no digest)", "POST", format!("{app}/blobs/uploads/")).save("up5"),
        step("nodigest-put", "PUT without ?digest=", "PUT", "{up5}").body("c"),
        // Cancel.
        step("cancel-start", "start an upload (to cancel)", "POST", format!("{app}/blobs/uploads/")).save("up6"),
        step("cancel", "DELETE the upload", "DELETE", "{up6}"),
        step("cancel-status", "status of the cancelled upload", "GET", "{up6}"),
        step("cancel-again", "DELETE it again", "DELETE", "{up6}"),
        step(
            "upload-unknown",
            "status of an upload id never issued",
            "GET",
            format!("{app}/blobs/uploads/00000000-0000-0000-0000-000000000000"),
        ),
        // Single-request upload (spec: POST ?digest= with the body).
        step("single-post", "POST ?digest= with the blob", "POST", format!("{app}/blobs/uploads/"))
            .query("digest={dD}")
            .header("Content-Type", OCT)
            .body("d"),
        step("single-post-head", "HEAD the single-POST blob", "HEAD", format!("{app}/blobs/{{dD}}")),
        // Mounts.
        step("mount", "mount blob A from diff/app", "POST", format!("{other}/blobs/uploads/"))
            .query("mount={dA}&from=diff/app"),
        step("mount-head", "HEAD the mounted blob", "HEAD", format!("{other}/blobs/{{dA}}")),
        step("mount-missing", "mount from a repo without the blob", "POST", format!("{other}/blobs/uploads/"))
            .query("mount={dB}&from=diff/nowhere"),
        // Config blob for the manifests.
        step("cfg-start", "start an upload (config)", "POST", format!("{app}/blobs/uploads/")).save("up7"),
        step("cfg-put", "PUT the config blob", "PUT", "{up7}").query("digest={dCfg}").body("cfg"),
        // Manifests.
        step("man-put-docker", "PUT Docker schema2 manifest as v1", "PUT", format!("{app}/manifests/v1"))
            .header("Content-Type", DOCKER_MANIFEST)
            .body("m_docker"),
        step("man-put-oci", "PUT OCI manifest as oci", "PUT", format!("{app}/manifests/oci"))
            .header("Content-Type", OCI_MANIFEST)
            .body("m_oci"),
    ];
    let accepts: [(&str, Option<&str>); 4] = [
        ("docker", Some(DOCKER_MANIFEST)),
        ("oci", Some(OCI_MANIFEST)),
        (
            "both",
            Some("application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"),
        ),
        ("none", None),
    ];
    // GET/HEAD by tag and digest, for both manifests, with each Accept.
    for (reference, what) in
        [("v1", "Docker by tag"), ("{mDocker}", "Docker by digest"), ("oci", "OCI by tag"), ("{mOci}", "OCI by digest")]
    {
        for method in ["GET", "HEAD"] {
            for (accept_name, accept) in accepts {
                let name = reference.trim_matches(['{', '}']);
                let id = leak(format!("{}-{name}-{accept_name}", method.to_lowercase()));
                let desc = leak(format!("{method} {what}, Accept: {accept_name}"));
                let mut st = step(id, desc, method, format!("{app}/manifests/{reference}"));
                if let Some(a) = accept {
                    st = st.header("Accept", a);
                }
                s.push(st);
            }
        }
    }
    s.extend([
        step("man-unknown-tag", "GET unknown tag", "GET", format!("{app}/manifests/nope")),
        step("man-unknown-digest", "GET unknown manifest digest", "GET", format!("{app}/manifests/{{zero}}")),
        step("man-missing-blob", "PUT manifest with a missing layer", "PUT", format!("{app}/manifests/broken"))
            .header("Content-Type", OCI_MANIFEST)
            .body("m_missing"),
        step("man-not-json", "PUT a manifest that is not JSON", "PUT", format!("{app}/manifests/junk"))
            .header("Content-Type", OCI_MANIFEST)
            .body("not_json"),
        step("man-wrong-digest", "PUT by digest with another body", "PUT", format!("{app}/manifests/{{mOci}}"))
            .header("Content-Type", DOCKER_MANIFEST)
            .body("m_docker"),
        step("man-put-digest", "PUT by its own digest", "PUT", format!("{app}/manifests/{{mDocker}}"))
            .header("Content-Type", DOCKER_MANIFEST)
            .body("m_docker"),
        step("man-bad-tag", "PUT with an invalid tag", "PUT", format!("{app}/manifests/-bad"))
            .header("Content-Type", DOCKER_MANIFEST)
            .body("m_docker"),
    ]);
    for (id, tag) in [("tag-a", "a"), ("tag-b", "b"), ("tag-c", "c")] {
        s.push(
            step(id, "PUT the Docker manifest under another tag", "PUT", format!("{app}/manifests/{tag}"))
                .header("Content-Type", DOCKER_MANIFEST)
                .body("m_docker"),
        );
    }
    s.extend([
        step("zeta-start", "start an upload in diff/zeta", "POST", "/v2/diff/zeta/blobs/uploads/").save("up8"),
        step("zeta-put", "PUT a blob in diff/zeta", "PUT", "{up8}").query("digest={dC}").body("c"),
        // Lists.
        step("tags", "tags/list", "GET", format!("{app}/tags/list")),
        step("tags-n2", "tags/list?n=2", "GET", format!("{app}/tags/list")).query("n=2"),
        step("tags-n2-last", "tags/list?n=2&last=b", "GET", format!("{app}/tags/list")).query("n=2&last=b"),
        step("tags-last", "tags/list?last=c", "GET", format!("{app}/tags/list")).query("last=c"),
        step("tags-n0", "tags/list?n=0", "GET", format!("{app}/tags/list")).query("n=0"),
        step("tags-n-bad", "tags/list?n=x", "GET", format!("{app}/tags/list")).query("n=x"),
        step("catalog", "_catalog", "GET", "/v2/_catalog"),
        step("catalog-n1", "_catalog?n=1", "GET", "/v2/_catalog").query("n=1"),
        step("catalog-n1-last", "_catalog?n=1&last=diff/app", "GET", "/v2/_catalog").query("n=1&last=diff/app"),
        step("catalog-n2-last", "_catalog?n=2&last=diff/app", "GET", "/v2/_catalog").query("n=2&last=diff/app"),
        step("catalog-n-bad", "_catalog?n=x", "GET", "/v2/_catalog").query("n=x"),
        // Deletes.
        step("del-man", "DELETE the OCI manifest by digest", "DELETE", format!("{app}/manifests/{{mOci}}")),
        step("del-man-get", "GET it by digest", "GET", format!("{app}/manifests/{{mOci}}")),
        step("del-man-tag", "GET its tag", "GET", format!("{app}/manifests/oci")).header("Accept", OCI_MANIFEST),
        step("del-man-again", "DELETE it again", "DELETE", format!("{app}/manifests/{{mOci}}")),
        step("del-man-unknown", "DELETE an unknown manifest digest", "DELETE", format!("{app}/manifests/{{zero}}")),
        step("del-tag", "DELETE by tag", "DELETE", format!("{app}/manifests/a")),
        step("del-tag-tags", "tags/list after the tag delete", "GET", format!("{app}/tags/list")),
        step("del-blob", "DELETE blob B", "DELETE", format!("{app}/blobs/{{dB}}")),
        step("del-blob-head", "HEAD it", "HEAD", format!("{app}/blobs/{{dB}}")),
        step("del-blob-again", "DELETE it again", "DELETE", format!("{app}/blobs/{{dB}}")),
        step("del-blob-other", "the mounted copy in diff/other", "HEAD", format!("{other}/blobs/{{dA}}")),
        // Unknown repository.
        step("unknown-tags", "tags/list of an unknown repo", "GET", "/v2/diff/nope/tags/list"),
        step("unknown-manifest", "manifest in an unknown repo", "GET", "/v2/diff/nope/manifests/latest"),
        step("unknown-blob", "blob in an unknown repo", "GET", "/v2/diff/nope/blobs/{dA}"),
        step("unknown-upload", "upload status in an unknown repo", "GET", "/v2/diff/nope/blobs/uploads/{up6id}"),
        // Invalid names.
        step("name-upper", "tags/list of Diff/App", "GET", "/v2/Diff/App/tags/list"),
        step("name-upper-post", "POST upload to UPPER", "POST", "/v2/UPPER/blobs/uploads/"),
        step("name-dash", "manifest of -bad/x", "GET", "/v2/-bad/x/manifests/latest"),
        step("name-dots", "tags/list of a..b", "GET", "/v2/a..b/tags/list"),
        step("name-long", "tags/list of a 300-character name", "GET", format!("/v2/{}/tags/list", "a".repeat(300))),
    ]);
    s
}

/// What one response said, field by field (absent fields are left out).
type Observation = BTreeMap<&'static str, String>;

fn observe(st: &Step, r: &Response) -> Observation {
    let mut o = Observation::new();
    o.insert("status", r.status.to_string());
    if let Some(code) = r.error_code() {
        o.insert("code", code);
    }
    let ok = (200..300).contains(&r.status);
    let mut copy = |field: &'static str, value: Option<String>| {
        if let Some(v) = value {
            o.insert(field, v);
        }
    };
    copy("docker-content-digest", r.header("docker-content-digest").map(str::to_owned));
    copy("api-version", r.header("docker-distribution-api-version").map(str::to_owned));
    if ok {
        copy("content-length", r.header("content-length").map(str::to_owned));
        // The type of what was returned: a body, or what a HEAD describes.
        if r.status != 204 && (st.method == "HEAD" || !r.body.is_empty()) {
            copy("content-type", r.header("content-type").map(str::to_owned));
        }
    }
    copy("location", r.header("location").map(normalise_location));
    copy("range", r.header("range").map(str::to_owned));
    copy("content-range", r.header("content-range").map(str::to_owned));
    copy("docker-upload-uuid", r.header("docker-upload-uuid").map(|_| "present".to_owned()));
    copy("link", r.header("link").map(normalise_link));
    if ok && !r.body.is_empty() {
        let json = serde_json::from_slice::<serde_json::Value>(&r.body).ok();
        let listing = json.as_ref().is_some_and(|v| v.get("tags").is_some() || v.get("repositories").is_some());
        let body = match json {
            Some(v) if listing => v.to_string(),
            _ => format!("{} bytes {}", r.body.len(), &sha256(&r.body)[..19]),
        };
        o.insert("body", body);
    }
    o
}

/// `Location` as a path, with the upload id and any query (Distribution's
/// `_state`) elided: both are opaque to clients.
fn normalise_location(l: &str) -> String {
    let path = path_of(l);
    let path = path.split('?').next().unwrap_or_default().to_owned();
    match path.split_once("/blobs/uploads/") {
        Some((repo, id)) if !id.is_empty() => format!("{repo}/blobs/uploads/<id>"),
        _ => path,
    }
}

/// `<URL>; rel="next"` with the URL reduced to its path and query.
fn normalise_link(l: &str) -> String {
    match (l.find('<'), l.find('>')) {
        (Some(a), Some(b)) if a < b => format!("<{}>{}", path_of(&l[a + 1..b]), &l[b + 1..]),
        _ => l.to_owned(),
    }
}

fn substitute(template: &str, vars: &HashMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    assert!(!out.contains('{'), "unresolved variable in {template:?} -> {out:?}");
    out
}

/// Runs the script on one server; one observation per step.
fn run(addr: SocketAddr, fx: &Fixture, steps: &[Step]) -> Vec<Observation> {
    let mut vars = fx.vars.clone();
    let mut out = Vec::new();
    for st in steps {
        let mut target = substitute(&st.target, &vars);
        if let Some(q) = &st.query {
            target = with_query(&target, &substitute(q, &vars));
        }
        let headers: Vec<(&str, String)> = st.headers.iter().map(|(k, v)| (*k, substitute(v, &vars))).collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = st.body.map(|b| fx.bodies[b].as_slice()).unwrap_or_default();
        let r = request(addr, st.method, &target, &headers, body)
            .unwrap_or_else(|e| panic!("step {}: {} {target}: {e}", st.id, st.method));
        if let (Some(name), Some(loc)) = (st.save_location, r.header("location")) {
            let path = path_of(loc);
            if let Some(id) = path.split('?').next().and_then(|p| p.rsplit('/').next()) {
                vars.insert(format!("{name}id"), id.to_owned());
            }
            vars.insert(name.to_owned(), path);
        }
        out.push(observe(st, &r));
    }
    out
}

/// Values of one field: Berth's, then Distribution's (`None`: absent).
type Check = fn(Option<&str>, Option<&str>) -> bool;

/// A known, justified difference: on these steps, this field, values that
/// pass `check` (as exact as the behaviour allows).
struct Allowance {
    steps: &'static [&'static str],
    field: &'static str,
    check: Check,
    why: &'static str,
}

fn berth_only(b: Option<&str>, d: Option<&str>) -> bool {
    b.is_some() && d.is_none()
}

fn dist_only(b: Option<&str>, d: Option<&str>) -> bool {
    b.is_none() && d.is_some()
}

fn both_present(b: Option<&str>, d: Option<&str>) -> bool {
    b.is_some() && d.is_some()
}

/// Distribution's JSON encoder ends the body with a newline.
fn dist_one_longer(b: Option<&str>, d: Option<&str>) -> bool {
    let n = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok());
    matches!((n(b), n(d)), (Some(b), Some(d)) if d == b + 1)
}

fn tags_of(body: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["tags"].as_array()?.iter().map(|t| t.as_str().map(str::to_owned)).collect()
}

/// Berth's page is sorted and a contiguous run of Distribution's tags,
/// which Distribution 2.8 lists whole and in directory order.
fn berth_page_of_dist_tags(b: Option<&str>, d: Option<&str>) -> bool {
    let (Some(b), Some(mut d)) = (b.and_then(tags_of), d.and_then(tags_of)) else { return false };
    d.sort();
    b.is_sorted() && (b.is_empty() || d.windows(b.len()).any(|w| w == b.as_slice()))
}

/// Every known difference. Each says which side the spec (OCI Distribution
/// Spec 1.0/1.1, and Docker's Registry HTTP API V2 where OCI is silent)
/// favours, or that it permits both.
static ALLOWED: &[Allowance] = &[
    // Out-of-order chunk. Spec (pushing a blob in chunks): "If a chunk is
    // uploaded out of order, the registry MUST respond with a 416". Berth
    // does, and reports the unchanged progress; Distribution 2.8 ignores the
    // Content-Range start and appends at 1500. Spec favours Berth.
    allow(
        &["gap-patch"],
        "status",
        |b, d| b == Some("416") && d == Some("202"),
        "spec: out-of-order chunk MUST be 416; Distribution 2.8 appends it",
    ),
    allow(
        &["gap-patch"],
        "code",
        |b, d| b == Some("BLOB_UPLOAD_INVALID") && d.is_none(),
        "416 carries an error body (Distribution: 202, no error)",
    ),
    allow(&["gap-patch"], "content-length", dist_only, "compared on success only; Distribution's answer is a 202"),
    allow(
        &["gap-patch"],
        "range",
        |b, d| b == Some("0-1499") && d == Some("0-1999"),
        "Berth kept 1500 bytes; Distribution appended the misplaced chunk",
    ),
    // Unknown upload ids. Spec error codes: BLOB_UPLOAD_UNKNOWN "upload has
    // been cancelled or was never started"; Distribution 2.8 says
    // BLOB_UPLOAD_INVALID when it cannot resolve the id (no `_state` token,
    // or the upload ended in a failed PUT). Spec favours Berth.
    allow(
        &["wrong-status", "upload-unknown", "unknown-upload"],
        "code",
        |b, d| b == Some("BLOB_UPLOAD_UNKNOWN") && d == Some("BLOB_UPLOAD_INVALID"),
        "spec: an upload never started or ended is BLOB_UPLOAD_UNKNOWN",
    ),
    // Cancel: the spec's answer is a bare 204; Distribution adds
    // Docker-Upload-UUID. Both conform.
    allow(
        &["cancel"],
        "docker-upload-uuid",
        dist_only,
        "spec requires only 204 on cancel; the extra header is harmless",
    ),
    // Single-request upload (POST ?digest= with the body). Spec: a registry
    // MAY support it; one that does not answers 202 and a session, which is
    // what Distribution 2.8 does (it has no single-POST upload). Both
    // conform; Berth implements the optional feature, so the blob exists
    // on Berth only.
    allow(
        &["single-post"],
        "status",
        |b, d| b == Some("201") && d == Some("202"),
        "Distribution 2.8 has no single-POST upload (spec: optional; 202 fallback allowed)",
    ),
    allow(
        &["single-post"],
        "location",
        |b, d| b.is_some_and(|b| b.contains("/blobs/sha256:")) && d.is_some_and(|d| d.ends_with("/blobs/uploads/<id>")),
        "201 points at the blob, the fallback 202 at the session",
    ),
    allow(&["single-post"], "docker-content-digest", berth_only, "only a completed upload has a digest"),
    allow(&["single-post"], "range", dist_only, "only a session has progress"),
    allow(&["single-post"], "docker-upload-uuid", dist_only, "only a session has an id"),
    allow(
        &["single-post-head"],
        "status",
        |b, d| b == Some("200") && d == Some("404"),
        "the single-POST blob exists on Berth only",
    ),
    allow(&["single-post-head"], "docker-content-digest", berth_only, "the single-POST blob exists on Berth only"),
    allow(&["single-post-head"], "content-length", berth_only, "the single-POST blob exists on Berth only"),
    allow(&["single-post-head"], "content-type", berth_only, "the single-POST blob exists on Berth only"),
    // A Docker schema2 manifest asked for by tag without listing its type
    // (Accept: OCI only, or no Accept). Distribution 2.8 tries to down-
    // convert to schema1, which it cannot (signing disabled), and answers
    // 400 MANIFEST_INVALID — an error for a valid, stored manifest. The spec
    // has no conversion: the registry returns the manifest with its
    // Content-Type and the client decides. Spec favours Berth.
    allow(
        &["get-v1-oci", "get-v1-none", "head-v1-oci", "head-v1-none"],
        "status",
        |b, d| b == Some("200") && d == Some("400"),
        "Distribution 2.8 fails a schema1 down-conversion; spec: return the manifest",
    ),
    allow(
        &["get-v1-oci", "get-v1-none"],
        "code",
        |b, d| b.is_none() && d == Some("MANIFEST_INVALID"),
        "Distribution 2.8 fails a schema1 down-conversion",
    ),
    allow(
        &["get-v1-oci", "get-v1-none", "head-v1-oci", "head-v1-none"],
        "docker-content-digest",
        berth_only,
        "answered on Berth only",
    ),
    allow(
        &["get-v1-oci", "get-v1-none", "head-v1-oci", "head-v1-none"],
        "content-length",
        berth_only,
        "answered on Berth only",
    ),
    allow(
        &["get-v1-oci", "get-v1-none", "head-v1-oci", "head-v1-none"],
        "content-type",
        berth_only,
        "answered on Berth only",
    ),
    allow(&["get-v1-oci", "get-v1-none"], "body", berth_only, "answered on Berth only"),
    // An OCI manifest without an Accept that names it. Distribution 2.8
    // answers 404 MANIFEST_UNKNOWN ("OCI manifest found, but accept header
    // does not support OCI manifests") by tag AND by digest, and also when
    // there is no Accept at all. Berth keeps that refusal only for a tag
    // read whose Accept lists types but not this one (`get-oci-docker`,
    // equal above); with no Accept, and for any read by digest, it returns
    // the manifest. Spec: a GET by digest returns that content, and
    // MANIFEST_UNKNOWN means the manifest is unknown, which it is not.
    // Spec favours Berth.
    allow(
        &["get-oci-none", "head-oci-none", "get-mOci-docker", "get-mOci-none", "head-mOci-docker", "head-mOci-none"],
        "status",
        |b, d| b == Some("200") && d == Some("404"),
        "Distribution 2.8 hides an existing OCI manifest from clients that did not list its type",
    ),
    allow(
        &["get-oci-none", "get-mOci-docker", "get-mOci-none"],
        "code",
        |b, d| b.is_none() && d == Some("MANIFEST_UNKNOWN"),
        "Distribution 2.8 hides an existing OCI manifest",
    ),
    allow(
        &["get-oci-none", "head-oci-none", "get-mOci-docker", "get-mOci-none", "head-mOci-docker", "head-mOci-none"],
        "docker-content-digest",
        berth_only,
        "answered on Berth only",
    ),
    allow(
        &["get-oci-none", "head-oci-none", "get-mOci-docker", "get-mOci-none", "head-mOci-docker", "head-mOci-none"],
        "content-length",
        berth_only,
        "answered on Berth only",
    ),
    allow(
        &["get-oci-none", "head-oci-none", "get-mOci-docker", "get-mOci-none", "head-mOci-docker", "head-mOci-none"],
        "content-type",
        berth_only,
        "answered on Berth only",
    ),
    allow(&["get-oci-none", "get-mOci-docker", "get-mOci-none"], "body", berth_only, "answered on Berth only"),
    // PUT to an invalid tag: Distribution's router does not match it and
    // answers a bare text 404; the spec wants its JSON error. OCI defines no
    // TAG_INVALID, and MANIFEST_INVALID (400) is the closest code. Spec
    // favours Berth.
    allow(
        &["man-bad-tag"],
        "status",
        |b, d| b == Some("400") && d == Some("404"),
        "Distribution 2.8: router 404 without an error body",
    ),
    allow(
        &["man-bad-tag"],
        "code",
        |b, d| b == Some("MANIFEST_INVALID") && d.is_none(),
        "Distribution 2.8: router 404 without an error body",
    ),
    // List bodies: Distribution's `application/json; charset=utf-8` and
    // trailing newline; both valid JSON responses. Spec permits both.
    allow(
        &[
            "tags",
            "tags-n2",
            "tags-n2-last",
            "tags-last",
            "tags-n0",
            "catalog",
            "catalog-n1",
            "catalog-n1-last",
            "catalog-n2-last",
            "catalog-n-bad",
            "del-tag-tags",
        ],
        "content-type",
        |b, d| b == Some("application/json") && d == Some("application/json; charset=utf-8"),
        "charset parameter only",
    ),
    allow(
        &["tags", "catalog", "catalog-n1", "catalog-n1-last", "catalog-n2-last"],
        "content-length",
        dist_one_longer,
        "Distribution's JSON ends with a newline",
    ),
    // tags/list: Distribution 2.8 ignores `n` and `last` and lists tags in
    // directory order. Spec: tags in lexical order, paginated by `n`/`last`
    // with a `Link` to the next page. Spec favours Berth.
    allow(
        &["tags", "tags-n2", "tags-n2-last", "tags-last", "tags-n0", "del-tag-tags"],
        "body",
        berth_page_of_dist_tags,
        "Distribution 2.8: tags unsorted, n/last ignored",
    ),
    allow(
        &["tags-n2", "tags-n2-last", "tags-last", "tags-n0", "del-tag-tags"],
        "content-length",
        both_present,
        "the bodies differ (see body)",
    ),
    allow(&["tags-n2", "tags-n2-last"], "link", berth_only, "Distribution 2.8 does not paginate tags/list"),
    // A non-numeric `n`: Distribution 2.8 ignores it (tags/list and
    // _catalog alike) and lists everything; Berth refuses with 400
    // PAGINATION_NUMBER_INVALID. OCI is silent; Docker's Registry API V2
    // defines that code for exactly this ("n is not an integer"). Both
    // defensible; the Docker API document favours Berth.
    allow(
        &["tags-n-bad", "catalog-n-bad"],
        "status",
        |b, d| b == Some("400") && d == Some("200"),
        "Distribution 2.8 ignores a non-numeric n",
    ),
    allow(
        &["tags-n-bad", "catalog-n-bad"],
        "code",
        |b, d| b == Some("PAGINATION_NUMBER_INVALID") && d.is_none(),
        "Docker API V2: PAGINATION_NUMBER_INVALID",
    ),
    allow(&["tags-n-bad", "catalog-n-bad"], "content-length", dist_only, "success on Distribution only"),
    allow(&["tags-n-bad", "catalog-n-bad"], "content-type", dist_only, "success on Distribution only"),
    allow(&["tags-n-bad", "catalog-n-bad"], "body", dist_only, "success on Distribution only"),
    // DELETE by tag: spec (content management) lets a registry delete a tag
    // (202) or refuse with 400/405. Distribution 2.8 refuses (and calls the
    // tag an invalid digest); Berth deletes it. Both conform; so the tag
    // is gone from Berth's list only (covered by the body rule above).
    allow(
        &["del-tag"],
        "status",
        |b, d| b == Some("202") && d == Some("400"),
        "Distribution 2.8 cannot delete tags (spec: optional)",
    ),
    allow(
        &["del-tag"],
        "code",
        |b, d| b.is_none() && d == Some("DIGEST_INVALID"),
        "Distribution 2.8 cannot delete tags",
    ),
    allow(&["del-tag"], "content-length", berth_only, "success on Berth only"),
    // Blob DELETE: Docker's Registry API V2 documents Docker-Content-Digest
    // on the 202; OCI requires only the 202. Both conform.
    allow(&["del-blob"], "docker-content-digest", berth_only, "Docker API V2 documents it; OCI does not require it"),
    // Invalid repository names: Distribution's router does not match them
    // and answers a bare text 404 (a 500 UNKNOWN for a name over its
    // 255-character limit). Spec: NAME_INVALID. Spec favours Berth.
    allow(
        &["name-upper", "name-upper-post", "name-dash", "name-dots"],
        "status",
        |b, d| b == Some("400") && d == Some("404"),
        "spec: NAME_INVALID; Distribution 2.8: router 404",
    ),
    allow(
        &["name-upper", "name-upper-post", "name-dash", "name-dots"],
        "code",
        |b, d| b == Some("NAME_INVALID") && d.is_none(),
        "spec: NAME_INVALID; Distribution 2.8: router 404",
    ),
    allow(
        &["name-long"],
        "status",
        |b, d| b == Some("400") && d == Some("500"),
        "Distribution 2.8 fails with a 500 on a 300-character name",
    ),
    allow(
        &["name-long"],
        "code",
        |b, d| b == Some("NAME_INVALID") && d == Some("UNKNOWN"),
        "Distribution 2.8 fails with a 500 on a 300-character name",
    ),
];

const fn allow(steps: &'static [&'static str], field: &'static str, check: Check, why: &'static str) -> Allowance {
    Allowance { steps, field, check, why }
}

#[test]
fn berth_matches_distribution_on_the_oci_1_0_subset() {
    let fx = fixture();
    let steps = script();
    let mut ids = std::collections::HashSet::new();
    for st in &steps {
        assert!(ids.insert(st.id), "duplicate step id {}", st.id);
    }
    let berth = BerthServer::start(BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth")).delete_enabled(true))
        .expect("berth starts");
    let dist = Distribution::start_with(DistributionOptions { delete_enabled: true, ..Default::default() })
        .expect("docker-registry starts");
    let ours = run(berth.addr(), &fx, &steps);
    let theirs = run(dist.addr(), &fx, &steps);

    let mut table =
        vec![["step".to_owned(), "field".into(), "berth".into(), "distribution 2.8".into(), "verdict".into()]];
    let mut new_diffs = Vec::new();
    let mut used = vec![false; ALLOWED.len()];
    let mut same = 0;
    let mut allowed = 0;
    for ((st, b), d) in steps.iter().zip(&ours).zip(&theirs) {
        let mut fields: Vec<&'static str> = b.keys().chain(d.keys()).copied().collect();
        fields.sort_by_key(|f| FIELD_ORDER.iter().position(|o| o == f));
        fields.dedup();
        for field in fields {
            let (bv, dv) = (b.get(field).map(String::as_str), d.get(field).map(String::as_str));
            let verdict = if bv == dv {
                same += 1;
                "=".to_owned()
            } else if let Some(i) =
                ALLOWED.iter().position(|a| a.steps.contains(&st.id) && a.field == field && (a.check)(bv, dv))
            {
                used[i] = true;
                allowed += 1;
                format!("allowed: {}", ALLOWED[i].why)
            } else {
                new_diffs.push(format!("{} [{}] {field}: berth {bv:?}, distribution {dv:?}", st.id, st.desc));
                "NEW DIFFERENCE".to_owned()
            };
            table.push([
                format!("{} ({})", st.id, st.desc),
                field.to_owned(),
                bv.unwrap_or("-").to_owned(),
                dv.unwrap_or("-").to_owned(),
                verdict,
            ]);
        }
    }
    print_table(&table);
    let stale: Vec<String> = ALLOWED
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(a, _)| format!("{:?} {}: {}", a.steps, a.field, a.why))
        .collect();
    println!(
        "\n{} steps, {same} fields equal, {allowed} allowed differences (by {} allowances), {} new, {} stale allowances",
        steps.len(),
        used.iter().filter(|u| **u).count(),
        new_diffs.len(),
        stale.len()
    );
    assert!(new_diffs.is_empty(), "new differences from Distribution 2.8:\n  {}", new_diffs.join("\n  "));
    assert!(stale.is_empty(), "allowances that no longer match (remove or update them):\n  {}", stale.join("\n  "));
}

const FIELD_ORDER: &[&str] = &[
    "status",
    "code",
    "docker-content-digest",
    "api-version",
    "content-length",
    "content-type",
    "location",
    "range",
    "content-range",
    "docker-upload-uuid",
    "link",
    "body",
];

fn print_table(rows: &[[String; 5]]) {
    let clip = |s: &str, n: usize| {
        if s.chars().count() > n {
            format!("{}…", s.chars().take(n - 1).collect::<String>())
        } else {
            s.to_owned()
        }
    };
    let widths = [58, 21, 40, 40];
    for row in rows {
        let cells: Vec<String> = (0..4).map(|i| format!("{:<w$}", clip(&row[i], widths[i]), w = widths[i])).collect();
        println!("{} | {} | {} | {} | {}", cells[0], cells[1], cells[2], cells[3], row[4]);
    }
}
