//! Content digests (`algorithm:encoded`), as the OCI image spec defines them.

use std::fmt;
use std::str::FromStr;

/// The digest algorithms Berth can compute. The spec registers sha256
/// (required) and sha512 (optional); anything else is well-formed but
/// unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the lowercase hex encoding.
    pub const fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest format")]
    Malformed,
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("invalid {0} digest: expected {1} lowercase hex characters")]
    BadEncoding(Algorithm, usize),
}

/// A validated digest of a supported algorithm. Stored as its canonical
/// string so that formatting, hashing and comparison are free.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    text: Box<str>,
    algorithm: Algorithm,
}

impl Digest {
    /// Builds a digest from raw hash output.
    pub fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Self {
        let text = format!("{}:{}", algorithm, hex::encode(bytes)).into_boxed_str();
        Digest { text, algorithm }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded part, after the colon.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.as_str().len() + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Digest of `data` with `algorithm`.
    pub fn compute(algorithm: Algorithm, data: &[u8]) -> Self {
        let mut hasher = crate::Hasher::new(algorithm);
        hasher.update(data);
        hasher.finish()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `algorithm-component (algorithm-separator algorithm-component)*` where a
/// component is `[a-z0-9]+` and a separator one of `+._-`.
fn is_valid_algorithm_grammar(alg: &str) -> bool {
    !alg.is_empty()
        && alg
            .split(['+', '.', '_', '-'])
            .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

fn is_valid_encoded_grammar(enc: &str) -> bool {
    !enc.is_empty() && enc.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, enc) = s.split_once(':').ok_or(DigestError::Malformed)?;
        if !is_valid_algorithm_grammar(alg) || !is_valid_encoded_grammar(enc) {
            return Err(DigestError::Malformed);
        }
        let algorithm = Algorithm::from_name(alg).ok_or_else(|| DigestError::UnsupportedAlgorithm(alg.to_owned()))?;
        let want = algorithm.hex_len();
        if enc.len() != want || !enc.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::BadEncoding(algorithm, want));
        }
        Ok(Digest { text: s.into(), algorithm })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The sha256 of the empty string, from FIPS 180-2 test vectors.
    const EMPTY_SHA256: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_canonical_sha256() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex().len(), 64);
        assert_eq!(d.to_string(), EMPTY_SHA256);
        assert_eq!(Digest::compute(Algorithm::Sha256, b""), d);
    }

    #[test]
    fn sha512_of_abc_matches_fips_vector() {
        let d = Digest::compute(Algorithm::Sha512, b"abc");
        assert_eq!(
            d.hex(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn rejects_bad_forms() {
        assert_eq!("sha256".parse::<Digest>(), Err(DigestError::Malformed));
        assert_eq!(":abc".parse::<Digest>(), Err(DigestError::Malformed));
        assert_eq!("sha256:".parse::<Digest>(), Err(DigestError::Malformed));
        assert_eq!("SHA256:abc".parse::<Digest>(), Err(DigestError::Malformed));
        assert_eq!(
            "md5:d41d8cd98f00b204e9800998ecf8427e".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm("md5".into()))
        );
        assert_eq!("sha256:abc".parse::<Digest>(), Err(DigestError::BadEncoding(Algorithm::Sha256, 64)));
        let upper = EMPTY_SHA256.to_uppercase().replace("SHA256", "sha256");
        assert!(matches!(upper.parse::<Digest>(), Err(DigestError::BadEncoding(..))));
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,200}") {
            let _ = s.parse::<Digest>();
        }

        #[test]
        fn roundtrips_any_hex(bytes in proptest::collection::vec(any::<u8>(), 32)) {
            let d = Digest::from_bytes(Algorithm::Sha256, &bytes);
            prop_assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        }

        #[test]
        fn well_formed_unknown_algorithms_are_unsupported(alg in "[a-z0-9]{1,8}([+._-][a-z0-9]{1,8}){0,2}", enc in "[a-zA-Z0-9=_-]{1,64}") {
            prop_assume!(alg != "sha256" && alg != "sha512");
            let s = format!("{alg}:{enc}");
            prop_assert_eq!(s.parse::<Digest>(), Err(DigestError::UnsupportedAlgorithm(alg)));
        }
    }
}
