use super::*;

const D1: &str = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";
const D2: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The example manifest of the Docker Image Manifest V2, Schema 2 spec.
fn docker_manifest() -> String {
    format!(
        r#"{{
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
  "config": {{"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": "{D1}"}},
  "layers": [
    {{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 32654, "digest": "{D2}"}}
  ]
}}"#
    )
}

#[test]
fn docker_manifest_parses() {
    let m = ParsedManifest::parse(docker_manifest().as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
    assert_eq!(m.media_type, DOCKER_MANIFEST);
    assert_eq!(m.references().count(), 2);
    assert!(m.subject.is_none());
}

#[test]
fn content_type_must_match_body() {
    let err = ParsedManifest::parse(docker_manifest().as_bytes(), Some(OCI_MANIFEST)).unwrap_err();
    assert!(matches!(err, ManifestError::MediaTypeMismatch { .. }));
    // Parameters and a generic type defer to the body.
    assert!(ParsedManifest::parse(docker_manifest().as_bytes(), Some("application/json; charset=utf-8")).is_ok());
    assert!(ParsedManifest::parse(docker_manifest().as_bytes(), None).is_ok());
    let err = ParsedManifest::parse(docker_manifest().as_bytes(), Some("text/plain")).unwrap_err();
    assert!(matches!(err, ManifestError::UnsupportedMediaType(_)));
}

#[test]
fn oci_artifact_with_subject() {
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sbom",
        "config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{D2}","size":2}},
        "layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":10}},
        "annotations":{{"org.example":"x"}}}}"#
    );
    let m = ParsedManifest::parse(body.as_bytes(), Some(OCI_MANIFEST)).unwrap();
    assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.example.sbom"));
    assert_eq!(m.subject.unwrap().digest.as_str(), D1);
    assert_eq!(m.annotations.unwrap()["org.example"], "x");
}

#[test]
fn artifact_type_falls_back_to_config_media_type() {
    let body = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{D2}","size":2}},
        "layers":[{{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","digest":"{D1}","size":3}}]}}"#
    );
    let m = ParsedManifest::parse(body.as_bytes(), Some(OCI_MANIFEST)).unwrap();
    assert_eq!(m.media_type, OCI_MANIFEST);
    assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.cncf.helm.config.v1+json"));
}

#[test]
fn index_without_media_type_is_inferred() {
    let body = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":5,
        "platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#
    );
    let m = ParsedManifest::parse(body.as_bytes(), None).unwrap();
    assert_eq!(m.media_type, OCI_INDEX);
    let ManifestKind::Index { manifests } = &m.kind else { panic!() };
    assert_eq!(manifests[0].platform.as_ref().unwrap().architecture, "arm64");
    assert!(m.is_index());
}

#[test]
fn schema1_is_refused() {
    let body = br#"{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[],"history":[]}"#;
    assert_eq!(ParsedManifest::parse(body, None), Err(ManifestError::Schema1));
    assert_eq!(
        ParsedManifest::parse(body, Some("application/vnd.docker.distribution.manifest.v1+prettyjws")),
        Err(ManifestError::Schema1)
    );
}

#[test]
fn structural_errors() {
    let cases = [
        "not json".to_string(),
        "[]".to_string(),
        r#"{"schemaVersion":3,"config":{}}"#.to_string(),
        r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#.to_string(),
        format!(r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"{D1}","size":-1}},"layers":[]}}"#),
        r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"md5:abc","size":1},"layers":[]}"#.to_string(),
        format!(r#"{{"schemaVersion":2,"config":{{"digest":"{D1}","size":1}},"layers":[]}}"#),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","config":{{"mediaType":"x","digest":"{D1}","size":1}},"manifests":[]}}"#
        ),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"x","digest":"{D1}","size":1}}}}"#
        ),
        r#"{"schemaVersion":2,"mediaType":"application/vnd.example+json"}"#.to_string(),
    ];
    for body in cases {
        assert!(ParsedManifest::parse(body.as_bytes(), None).is_err(), "{body}");
    }
}
