//! Byte ranges: the `Range` request header of blob GETs (RFC 9110, one range)
//! and the `Content-Range` of chunked upload PATCHes (`<start>-<end>`, inclusive).

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("malformed range")]
    Malformed,
    #[error("range not satisfiable")]
    Unsatisfiable,
}

/// A resolved, non-empty, inclusive byte range within an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Resolves a `Range` header against an object of `size` bytes.
    /// `Ok(None)` means "serve the whole object": RFC 9110 lets a server
    /// ignore a Range it does not support (several ranges, other units).
    pub fn parse_header(header: &str, size: u64) -> Result<Option<ByteRange>, RangeError> {
        let Some(spec) = header.trim().strip_prefix("bytes=") else {
            return Ok(None);
        };
        if spec.contains(',') {
            return Ok(None);
        }
        let (first, last) = spec.trim().split_once('-').ok_or(RangeError::Malformed)?;
        let num = |s: &str| -> Result<u64, RangeError> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RangeError::Malformed);
            }
            // Digits beyond u64 can only mean "past the end".
            Ok(s.parse().unwrap_or(u64::MAX))
        };
        let range = if first.is_empty() {
            let suffix = num(last)?;
            if suffix == 0 || size == 0 {
                return Err(RangeError::Unsatisfiable);
            }
            ByteRange { start: size.saturating_sub(suffix), end: size - 1 }
        } else {
            let start = num(first)?;
            let end = if last.is_empty() { u64::MAX } else { num(last)? };
            if end < start {
                return Err(RangeError::Malformed);
            }
            if start >= size {
                return Err(RangeError::Unsatisfiable);
            }
            ByteRange { start, end: end.min(size - 1) }
        };
        Ok(Some(range))
    }
}

/// The `Content-Range` of an upload chunk: inclusive `start-end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
}

impl ContentRange {
    /// Accepts the spec's `<start>-<end>` and, leniently, an RFC-style
    /// `bytes <start>-<end>[/<total>]` that some clients send.
    pub fn parse(header: &str) -> Result<ContentRange, RangeError> {
        let s = header.trim();
        let s = s.strip_prefix("bytes ").or_else(|| s.strip_prefix("bytes=")).unwrap_or(s);
        let s = s.split_once('/').map_or(s, |(r, _)| r);
        let (a, b) = s.split_once('-').ok_or(RangeError::Malformed)?;
        let num = |s: &str| -> Result<u64, RangeError> {
            if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RangeError::Malformed);
            }
            s.parse().map_err(|_| RangeError::Malformed)
        };
        let (start, end) = (num(a)?, num(b)?);
        if end < start {
            return Err(RangeError::Malformed);
        }
        Ok(ContentRange { start, end })
    }

    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(start: u64, end: u64) -> Option<ByteRange> {
        Some(ByteRange { start, end })
    }

    #[test]
    fn range_header_forms_from_rfc9110() {
        // RFC 9110 §14.1.2 examples, for a 10000-byte representation.
        assert_eq!(ByteRange::parse_header("bytes=0-499", 10000), Ok(r(0, 499)));
        assert_eq!(ByteRange::parse_header("bytes=500-999", 10000), Ok(r(500, 999)));
        assert_eq!(ByteRange::parse_header("bytes=-500", 10000), Ok(r(9500, 9999)));
        assert_eq!(ByteRange::parse_header("bytes=9500-", 10000), Ok(r(9500, 9999)));
        assert_eq!(ByteRange::parse_header("bytes=0-0,-1", 10000), Ok(None));
        assert_eq!(ByteRange::parse_header("bytes=0-99999", 10000), Ok(r(0, 9999)));
        assert_eq!(ByteRange::parse_header("bytes=-99999", 10000), Ok(r(0, 9999)));
        assert_eq!(ByteRange::parse_header("items=0-1", 10000), Ok(None));
        assert_eq!(ByteRange::parse_header("bytes=10000-", 10000), Err(RangeError::Unsatisfiable));
        assert_eq!(ByteRange::parse_header("bytes=-0", 10000), Err(RangeError::Unsatisfiable));
        assert_eq!(ByteRange::parse_header("bytes=5-1", 10000), Err(RangeError::Malformed));
        assert_eq!(ByteRange::parse_header("bytes=a-1", 10000), Err(RangeError::Malformed));
        assert_eq!(ByteRange::parse_header("bytes=0-", 0), Err(RangeError::Unsatisfiable));
    }

    #[test]
    fn content_range_forms() {
        assert_eq!(ContentRange::parse("0-1023"), Ok(ContentRange { start: 0, end: 1023 }));
        assert_eq!(ContentRange::parse("bytes 10-19/100"), Ok(ContentRange { start: 10, end: 19 }));
        assert_eq!(ContentRange::parse("5-4"), Err(RangeError::Malformed));
        assert_eq!(ContentRange::parse("-4"), Err(RangeError::Malformed));
        assert_eq!(ContentRange::parse("99999999999999999999-1"), Err(RangeError::Malformed));
    }

    proptest! {
        #[test]
        fn resolved_ranges_lie_within_the_object(h in "bytes=[0-9]{0,5}-[0-9]{0,5}", size in 0u64..20000) {
            if let Ok(Some(br)) = ByteRange::parse_header(&h, size) {
                prop_assert!(br.start <= br.end && br.end < size);
            }
        }

        #[test]
        fn content_range_roundtrip(a in 0u64..u64::MAX / 2, len in 1u64..1 << 40) {
            let cr = ContentRange::parse(&format!("{}-{}", a, a + len - 1)).unwrap();
            prop_assert_eq!(cr.len(), len);
        }

        #[test]
        fn never_panic(s in "\\PC{0,60}", size in any::<u64>()) {
            let _ = ByteRange::parse_header(&s, size);
            let _ = ContentRange::parse(&s);
        }
    }
}
