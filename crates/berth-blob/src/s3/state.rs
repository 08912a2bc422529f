//! The S3 store's state of one upload, recorded by the caller with the
//! acknowledged offset (see `Appended::store_state`) and handed back on the
//! next call. JSON with short keys: a few hundred bytes for a typical layer,
//! about 50 bytes per 10 MiB part beyond that.

use crate::StoreError;
use serde::{Deserialize, Serialize};
use std::io;

/// One uploaded part of the upload's multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Part {
    /// Part number (1 to 10,000).
    #[serde(rename = "n")]
    pub number: i32,
    /// The ETag S3 answered; CompleteMultipartUpload checks it, so a part
    /// overwritten by a stray concurrent append is an error, not silently
    /// different bytes.
    #[serde(rename = "e")]
    pub etag: String,
    #[serde(rename = "s")]
    pub size: u64,
}

/// Bytes after the last part, too few for a part of their own: a small
/// object, written once under a fresh name and never overwritten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Tail {
    /// Object name inside the upload's directory.
    #[serde(rename = "k")]
    pub name: String,
    #[serde(rename = "s")]
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct UploadState {
    /// Multipart upload id, once the upload has a full part.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<String>,
    #[serde(rename = "p", default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<Tail>,
    /// Tail objects superseded by this state. Deleting them is safe once
    /// this state is acknowledged, i.e. when an append starts from it
    /// (until then the previous state, which needs them, may be the one
    /// that counts).
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub garbage: Vec<String>,
}

impl UploadState {
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_slice(bytes)
            .map_err(|e| StoreError::Io(io::Error::new(io::ErrorKind::InvalidData, format!("s3 upload state: {e}"))))
    }

    pub fn encode(&self) -> Vec<u8> {
        if *self == Self::default() {
            return Vec::new();
        }
        serde_json::to_vec(self).expect("upload state serialises")
    }

    /// Bytes the state accounts for.
    pub fn len(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum::<u64>() + self.tail.as_ref().map_or(0, |t| t.size)
    }

    pub fn next_part_number(&self) -> i32 {
        self.parts.last().map_or(1, |p| p.number + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_empty_is_empty() {
        assert_eq!(UploadState::default().encode(), Vec::<u8>::new());
        assert_eq!(UploadState::decode(b"").unwrap(), UploadState::default());
        let s = UploadState {
            multipart: Some("mpu".into()),
            parts: vec![Part { number: 1, etag: "\"e\"".into(), size: 5 << 20 }],
            tail: Some(Tail { name: "tail-x".into(), size: 3 }),
            garbage: vec!["tail-y".into()],
        };
        assert_eq!(UploadState::decode(&s.encode()).unwrap(), s);
        assert_eq!(s.len(), (5 << 20) + 3);
        assert_eq!(s.next_part_number(), 2);
        assert!(UploadState::decode(b"{not json").is_err());
    }
}
