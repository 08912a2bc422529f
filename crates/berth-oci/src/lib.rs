//! OCI distribution and image-spec vocabulary: digests, repository names,
//! references, manifests, byte ranges and the spec's error codes.
//!
//! Pure: no I/O, no async, no HTTP types. Every other Berth crate depends on
//! this one and it depends on none of them. Everything here parses untrusted
//! input, so every parser returns an error instead of panicking.

pub mod digest;
pub mod error_code;
pub mod hasher;
pub mod manifest;
pub mod media_type;
pub mod name;
pub mod range;
pub mod reference;

pub use digest::{Algorithm, Digest, DigestError};
pub use error_code::ErrorCode;
pub use hasher::Hasher;
pub use manifest::{Descriptor, ManifestError, ManifestKind, ParsedManifest, Platform};
pub use name::{NameError, RepoName};
pub use range::{ByteRange, ContentRange, RangeError};
pub use reference::{Reference, Tag};
