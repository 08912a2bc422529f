//! Names, references, digests and ranges arrive in URLs and headers.
#![no_main]

use berth_oci::{ByteRange, ContentRange, Digest, Reference, RepoName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, u64)| {
    let (s, size) = input;
    if let Ok(d) = s.parse::<Digest>() {
        assert_eq!(d.to_string(), s, "a digest parses only in canonical form");
    }
    if let Ok(n) = RepoName::parse(s) {
        assert_eq!(n.as_str(), s);
    }
    let _ = Reference::parse(s);
    if let Ok(Some(r)) = ByteRange::parse_header(s, size) {
        assert!(r.start <= r.end && r.end < size);
    }
    if let Ok(r) = ContentRange::parse(s) {
        assert!(r.start <= r.end);
    }
});
