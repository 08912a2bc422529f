//! The differential test's request script, as data: the [`Step`]s and the
//! [`Fixture`] (bodies and digests) both runs share.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::{image_manifest, sha256, BlobRef, ManifestFormat, DOCKER_MANIFEST, OCI_MANIFEST};

/// One request of the script.
#[derive(Debug, Clone)]
pub struct Step {
    /// Short unique key, used by allowances.
    pub id: &'static str,
    pub desc: &'static str,
    pub method: &'static str,
    /// Path template: `{var}` is replaced by a shared or captured value.
    pub target: String,
    /// Query parameter (`k=v` template) appended to the target.
    pub query: Option<String>,
    pub headers: Vec<(&'static str, String)>,
    /// Name of a body in the shared bodies map.
    pub body: Option<&'static str>,
    /// Capture the response's `Location` (as a path) under this name.
    pub save_location: Option<&'static str>,
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
pub struct Fixture {
    pub bodies: HashMap<&'static str, Vec<u8>>,
    pub vars: HashMap<String, String>,
}

pub fn fixture() -> Fixture {
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

pub fn script() -> Vec<Step> {
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
