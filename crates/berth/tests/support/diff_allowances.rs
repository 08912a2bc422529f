//! The differential test's known differences: each [`Allowance`] says on
//! which steps and field Berth and Distribution 2.8 may differ, how exactly,
//! and which side the spec favours.

/// Values of one field: Berth's, then Distribution's (`None`: absent).
pub type Check = fn(Option<&str>, Option<&str>) -> bool;

/// A known, justified difference: on these steps, this field, values that
/// pass `check` (as exact as the behaviour allows).
pub struct Allowance {
    pub steps: &'static [&'static str],
    pub field: &'static str,
    pub check: Check,
    pub why: &'static str,
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
pub static ALLOWED: &[Allowance] = &[
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
