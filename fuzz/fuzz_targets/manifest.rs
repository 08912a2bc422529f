//! Manifest and index bodies are untrusted input: parsing must never panic,
//! and whatever parses must be internally consistent.
#![no_main]

use berth_oci::{media_type, ManifestKind, ParsedManifest};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some(media_type::OCI_MANIFEST),
    Some(media_type::OCI_INDEX),
    Some(media_type::DOCKER_MANIFEST),
    Some(media_type::DOCKER_MANIFEST_LIST),
    Some(media_type::DOCKER_SCHEMA1_SIGNED),
    Some("text/plain; charset=utf-8"),
];

fuzz_target!(|input: (u8, &[u8])| {
    let (selector, body) = input;
    let content_type = CONTENT_TYPES[selector as usize % CONTENT_TYPES.len()];
    if let Ok(m) = ParsedManifest::parse(body, content_type) {
        assert!(media_type::is_manifest(&m.media_type));
        assert_eq!(m.is_index(), media_type::is_index(&m.media_type));
        if let ManifestKind::Image { .. } = m.kind {
            assert!(m.references().count() >= 1, "an image manifest always has its config");
        }
    }
});
