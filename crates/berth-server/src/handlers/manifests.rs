//! `/v2/<name>/manifests/<reference>`: GET, HEAD, PUT, DELETE.
//! Reads by tag are answered from the manifest cache, touching neither the
//! database nor the blob store once warm.

use super::{empty, header_value, parse_digest, parse_name, Ctx};
use crate::cache::CachedManifest;
use crate::error::{ApiError, ApiResult};
use crate::events::{attach, Happened};
use crate::settings::{IndexPolicy, LayerUrlPolicy};
use axum::body::Body;
use axum::response::Response;
use berth_events::{Action, Kind, Target};
use berth_meta::{ChildRef, NewManifest};
use berth_oci::media_type::{self, OCI_INDEX, OCI_MANIFEST};
use berth_oci::{Algorithm, Digest, ErrorCode, ManifestKind, ParsedManifest, Reference, RepoName, Tag};
use http::{header, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;

enum Ref {
    Tag(Tag),
    Digest(Digest),
}

/// A reference from the URL. An unparsable tag names nothing (404 on reads);
/// a malformed digest is the client's error.
fn parse_reference(reference: &str) -> ApiResult<Option<Ref>> {
    match Reference::parse(reference) {
        Ok(Reference::Tag(t)) => Ok(Some(Ref::Tag(t))),
        Ok(Reference::Digest(d)) => Ok(Some(Ref::Digest(d))),
        Err(berth_oci::reference::ReferenceError::InvalidTag) => Ok(None),
        Err(berth_oci::reference::ReferenceError::Digest(_)) => parse_digest(reference).map(|d| Some(Ref::Digest(d))),
    }
}

async fn lookup(ctx: &Ctx<'_>, repo: &RepoName, r: &Ref) -> ApiResult<Option<Arc<CachedManifest>>> {
    let cache = &ctx.app.cache;
    // With peers, the cache is trusted only while this node is in touch
    // with them (it would otherwise miss their invalidations).
    let usable = crate::peers::cache_usable(ctx.app);
    let hit = match r {
        Ref::Tag(t) if usable => cache.by_tag(repo, t),
        Ref::Digest(d) if usable => cache.by_digest(repo, d),
        _ => None,
    };
    if hit.is_some() {
        ctx.app.metrics.berth.manifest_cache_hits.inc();
        return Ok(hit);
    }
    ctx.app.metrics.berth.manifest_cache_misses.inc();
    let seen = cache.generation();
    let record = match r {
        Ref::Tag(t) => ctx.app.meta.get_tagged_manifest(repo, t).await?,
        Ref::Digest(d) => ctx.app.meta.get_manifest(repo, d).await?,
    };
    let Some(m) = record.and_then(CachedManifest::from_record).map(Arc::new) else {
        return Ok(None);
    };
    let tag = match r {
        Ref::Tag(t) => Some(t),
        Ref::Digest(_) => None,
    };
    cache.fill(repo, tag, m.clone(), seen);
    Ok(Some(m))
}

/// Distribution refuses, by tag, an OCI manifest or index to a client whose
/// `Accept` does not list its type (such a client could not parse it). A
/// missing `Accept` or `*/*` accepts everything.
fn accepts(ctx: &Ctx<'_>, media_type: &str) -> bool {
    if media_type != OCI_MANIFEST && media_type != OCI_INDEX {
        return true;
    }
    let mut any = false;
    for value in ctx.parts.headers.get_all(header::ACCEPT) {
        for item in value.to_str().unwrap_or("").split(',') {
            let essence = item.split(';').next().unwrap_or("").trim();
            any = true;
            if essence == media_type || essence == "*/*" {
                return true;
            }
        }
    }
    !any
}

pub async fn get(ctx: &Ctx<'_>, name: &str, reference: &str) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let unknown = || ApiError::new(ErrorCode::ManifestUnknown).detail(serde_json::json!({ "reference": reference }));
    let Some(r) = parse_reference(reference)? else { return Err(unknown()) };
    let m = lookup(ctx, &repo, &r).await?.ok_or_else(unknown)?;
    if matches!(r, Ref::Tag(_)) && !accepts(ctx, m.content_type.to_str().unwrap_or("")) {
        let what = if m.content_type == OCI_INDEX { "OCI index" } else { "OCI manifest" };
        return Err(unknown().message(format!("{what} found, but accept header does not support it")));
    }
    // Like Distribution, accept the digest quoted (the ETag) or bare.
    let not_modified = ctx.parts.headers.get(header::IF_NONE_MATCH).is_some_and(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .any(|t| t == m.etag.as_bytes() || t == m.digest_header.as_bytes())
    });
    let status = if not_modified { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    if ctx.parts.method == Method::GET {
        ctx.app.pull_stats.record(&repo, &m.digest, crate::state::now_ms());
    }
    let body =
        if ctx.parts.method == Method::HEAD || not_modified { Body::empty() } else { Body::from(m.body.clone()) };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, m.content_type.clone());
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(m.body.len()));
    h.insert("docker-content-digest", m.digest_header.clone());
    h.insert(header::ETAG, m.etag.clone());
    if not_modified {
        return Ok(resp);
    }
    // Distribution reports a pull for HEAD too (its handler fetches the manifest for both).
    Ok(attach(ctx.app, resp, || {
        let target = Target {
            media_type: m.content_type.to_str().ok().map(str::to_owned),
            digest: Some(m.digest.to_string()),
            size: Some(m.body.len() as u64),
            repository: repo.to_string(),
            tag: match &r {
                Ref::Tag(t) => Some(t.to_string()),
                Ref::Digest(_) => None,
            },
            manifest: Some(m.body.clone()),
            ..Target::default()
        };
        vec![Happened::new(Action::Pull, Kind::Manifest, target)]
    }))
}

fn manifest_invalid(message: String) -> ApiError {
    ApiError::new(ErrorCode::ManifestInvalid).message(message)
}

/// Layers that name external URLs: a non-distributable layer must name at
/// least one, and each must pass `validation.manifests.urls`.
fn check_layer_urls(policy: &LayerUrlPolicy, layers: &[berth_oci::Descriptor]) -> ApiResult<()> {
    for (i, layer) in layers.iter().enumerate() {
        if layer.urls.is_empty() && layer.media_type == media_type::DOCKER_FOREIGN_LAYER {
            return Err(manifest_invalid(format!("layers[{i}]: a foreign layer must name its URLs")));
        }
        if let Some(url) = layer.urls.iter().find(|u| !policy.permits(u)) {
            return Err(manifest_invalid(format!("layers[{i}]: URL {url:?} is not allowed by this registry")));
        }
    }
    Ok(())
}

/// Which children an index needs present, per `validation.manifests.indexes`.
fn child_required(policy: &IndexPolicy, d: &berth_oci::Descriptor) -> bool {
    match policy {
        IndexPolicy::All => true,
        IndexPolicy::None => false,
        IndexPolicy::List(platforms) => d
            .platform
            .as_ref()
            .is_some_and(|p| platforms.iter().any(|w| w.architecture == p.architecture && w.os == p.os)),
    }
}

/// What a manifest adds to its project's usage: itself, and the blobs of an
/// image that are stored here (an index's children are manifests the
/// repository already holds, so already counted).
fn quota_items(digest: &Digest, size: usize, kind: &ManifestKind) -> Vec<(Digest, u64)> {
    let mut items = vec![(digest.clone(), size as u64)];
    if let ManifestKind::Image { config, layers } = kind {
        let stored = std::iter::once(config)
            .chain(layers)
            .filter(|d| !media_type::is_non_distributable(&d.media_type) && d.urls.is_empty());
        items.extend(stored.map(|d| (d.digest.clone(), d.size)));
    }
    items
}

pub async fn put(ctx: &Ctx<'_>, name: &str, reference: &str, body: Body) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    let r = parse_reference(reference)?.ok_or_else(|| manifest_invalid(format!("invalid tag {reference:?}")))?;
    let max = ctx.app.settings.manifest_max_bytes;
    let too_large = || {
        ApiError::new(ErrorCode::ManifestInvalid)
            .status(StatusCode::PAYLOAD_TOO_LARGE)
            .message(format!("manifest is larger than the {max}-byte limit"))
    };
    // Read up to the limit before refusing: a client still sending would
    // otherwise see a broken pipe instead of the 413.
    let bytes = match http_body_util::Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(ApiError::new(ErrorCode::ManifestInvalid).message(format!("reading the manifest failed: {e}")))
        }
    };
    let algorithm = match &r {
        Ref::Digest(d) => d.algorithm(),
        Ref::Tag(_) => Algorithm::Sha256,
    };
    let digest = Digest::compute(algorithm, &bytes);
    if let Ref::Digest(want) = &r {
        if *want != digest {
            return Err(ApiError::new(ErrorCode::DigestInvalid)
                .message(format!("manifest digest {digest} does not match {want} in the URL")));
        }
    }
    let parsed =
        ParsedManifest::parse(&bytes, ctx.header("content-type")).map_err(|e| manifest_invalid(e.to_string()))?;

    let mut tags: Vec<Tag> = Vec::new();
    if let Ref::Tag(t) = &r {
        tags.push(t.clone());
    } else {
        // OCI 1.1: a push by digest may name tags as `?tag=` parameters.
        for (k, v) in ctx.query() {
            if k == "tag" {
                tags.push(Tag::parse(&v).ok_or_else(|| manifest_invalid(format!("invalid tag {v:?}")))?);
            }
        }
    }

    let policy = &ctx.app.settings.index_policy;
    let children = match &parsed.kind {
        ManifestKind::Image { config, layers } => {
            check_layer_urls(&ctx.app.settings.layer_urls, layers)?;
            std::iter::once(config)
                .chain(layers)
                .map(|d| ChildRef {
                    digest: d.digest.clone(),
                    is_manifest: false,
                    // Content served from elsewhere need not be here.
                    required: !media_type::is_non_distributable(&d.media_type) && d.urls.is_empty(),
                })
                .collect()
        }
        ManifestKind::Index { manifests } => manifests
            .iter()
            .map(|d| ChildRef { digest: d.digest.clone(), is_manifest: true, required: child_required(policy, d) })
            .collect(),
    };
    crate::immutability::check_push(ctx.app, &repo, &tags, &digest).await?;
    crate::quota::enforce(ctx, &repo, &quota_items(&digest, bytes.len(), &parsed.kind)).await?;
    let subject = parsed.subject.as_ref().map(|s| s.digest.clone());
    let pushed = Target {
        media_type: Some(parsed.media_type.clone()),
        digest: Some(digest.to_string()),
        size: Some(bytes.len() as u64),
        repository: repo.to_string(),
        manifest: Some(bytes.clone()),
        ..Target::default()
    };
    let new = NewManifest {
        digest: digest.clone(),
        media_type: parsed.media_type.clone(),
        artifact_type: parsed.artifact_type.clone(),
        subject: subject.clone(),
        annotations: parsed.annotations.as_ref().and_then(|a| serde_json::to_string(a).ok()),
        body: bytes,
        children,
    };
    ctx.app.meta.put_manifest(&repo, &new, &tags, crate::state::now_ms()).await?;
    crate::peers::invalidate(ctx.app, &repo, &tags, None).await?;

    let mut headers = vec![
        ("location", ctx.location(&format!("/v2/{repo}/manifests/{digest}"))),
        ("docker-content-digest", header_value(digest.as_str())),
    ];
    if let Some(s) = subject {
        headers.push(("oci-subject", header_value(s.as_str())));
    }
    Ok(attach(ctx.app, empty(StatusCode::CREATED, headers), || {
        let event = |tag: Option<String>| Happened::new(Action::Push, Kind::Manifest, Target { tag, ..pushed.clone() });
        if tags.is_empty() {
            vec![event(None)]
        } else {
            tags.iter().map(|t| event(Some(t.to_string()))).collect()
        }
    }))
}

pub async fn delete(ctx: &Ctx<'_>, name: &str, reference: &str) -> ApiResult<Response> {
    let repo = parse_name(name)?;
    ctx.require_deletes()?;
    let unknown = || ApiError::new(ErrorCode::ManifestUnknown).detail(serde_json::json!({ "reference": reference }));
    let mut deleted = Target { repository: repo.to_string(), ..Target::default() };
    let kind = match parse_reference(reference)?.ok_or_else(unknown)? {
        Ref::Digest(d) => {
            crate::immutability::check_delete_manifest(ctx.app, &repo, &d).await?;
            let tags = ctx.app.meta.delete_manifest(&repo, &d).await?.ok_or_else(unknown)?;
            crate::peers::invalidate(ctx.app, &repo, &tags, Some(&d)).await?;
            deleted.digest = Some(d.to_string());
            Kind::Manifest
        }
        Ref::Tag(t) => {
            crate::immutability::check_delete_tag(ctx.app, &repo, &t).await?;
            if !ctx.app.meta.delete_tag(&repo, &t).await? {
                return Err(unknown());
            }
            crate::peers::invalidate(ctx.app, &repo, std::slice::from_ref(&t), None).await?;
            deleted.tag = Some(t.to_string());
            Kind::Tag
        }
    };
    Ok(attach(ctx.app, empty(StatusCode::ACCEPTED, vec![]), || vec![Happened::new(Action::Delete, kind, deleted)]))
}
