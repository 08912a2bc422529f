//! Parses a `/v2/...` path into the endpoint it names. One parser rather than
//! one route per endpoint: repository names contain `/` and may even contain
//! path components such as `blobs` or `manifests`, so the endpoint is read
//! from the right-hand end of the path.

/// An endpoint with its still-unvalidated path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint<'a> {
    Base,
    Catalog,
    Tags { name: &'a str },
    Manifest { name: &'a str, reference: &'a str },
    Blob { name: &'a str, digest: &'a str },
    UploadStart { name: &'a str },
    Upload { name: &'a str, id: &'a str },
    Referrers { name: &'a str, digest: &'a str },
}

/// `path` is the request path (no query). Returns `None` for anything that
/// is not an API endpoint.
pub fn parse(path: &str) -> Option<Endpoint<'_>> {
    let rest = path.strip_prefix("/v2/")?;
    if rest.is_empty() {
        return Some(Endpoint::Base);
    }
    if rest == "_catalog" {
        return Some(Endpoint::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return non_empty(name).map(|name| Endpoint::Tags { name });
    }
    // Uploads: `<name>/blobs/uploads/` (start) or `<name>/blobs/uploads/<id>`.
    if let Some(name) = rest.strip_suffix("/blobs/uploads/").or_else(|| rest.strip_suffix("/blobs/uploads")) {
        return non_empty(name).map(|name| Endpoint::UploadStart { name });
    }
    let (head, last) = rest.rsplit_once('/')?;
    if last.is_empty() {
        return None;
    }
    let (name, kind) = head.rsplit_once('/')?;
    let name = non_empty(name)?;
    match kind {
        "manifests" => Some(Endpoint::Manifest { name, reference: last }),
        "blobs" => Some(Endpoint::Blob { name, digest: last }),
        "referrers" => Some(Endpoint::Referrers { name, digest: last }),
        "uploads" => {
            let name = name.strip_suffix("/blobs")?;
            non_empty(name).map(|name| Endpoint::Upload { name, id: last })
        }
        _ => None,
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Endpoint::*;

    #[test]
    fn every_endpoint() {
        assert_eq!(parse("/v2/"), Some(Base));
        assert_eq!(parse("/v2/_catalog"), Some(Catalog));
        assert_eq!(parse("/v2/a/b/tags/list"), Some(Tags { name: "a/b" }));
        assert_eq!(parse("/v2/a/manifests/latest"), Some(Manifest { name: "a", reference: "latest" }));
        assert_eq!(parse("/v2/a/b/blobs/sha256:x"), Some(Blob { name: "a/b", digest: "sha256:x" }));
        assert_eq!(parse("/v2/a/blobs/uploads/"), Some(UploadStart { name: "a" }));
        assert_eq!(parse("/v2/a/blobs/uploads"), Some(UploadStart { name: "a" }));
        assert_eq!(parse("/v2/a/blobs/uploads/123-abc"), Some(Upload { name: "a", id: "123-abc" }));
        assert_eq!(parse("/v2/a/referrers/sha256:x"), Some(Referrers { name: "a", digest: "sha256:x" }));
    }

    #[test]
    fn names_may_contain_endpoint_words() {
        assert_eq!(
            parse("/v2/blobs/manifests/manifests/v1"),
            Some(Manifest { name: "blobs/manifests", reference: "v1" })
        );
        assert_eq!(parse("/v2/tags/list/tags/list"), Some(Tags { name: "tags/list" }));
        assert_eq!(parse("/v2/x/blobs/uploads/blobs/uploads/id"), Some(Upload { name: "x/blobs/uploads", id: "id" }));
    }

    #[test]
    fn non_endpoints() {
        for p in [
            "/v2",
            "/v1/",
            "/v2/a",
            "/v2/a/manifests/",
            "/v2/manifests/x",
            "/v2/tags/list",
            "/v2/a/uploads/x",
            "/v2/a/other/x",
            "/v2//blobs/uploads/",
        ] {
            assert_eq!(parse(p), None, "{p}");
        }
    }
}
