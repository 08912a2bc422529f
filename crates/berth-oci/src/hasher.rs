//! Incremental digest computation whose state can be saved and restored, so
//! that an upload resumes after a restart (or on another node) without
//! re-reading what was already received.

use crate::{Algorithm, Digest};
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest as _, Sha256, Sha512};

#[derive(Clone)]
pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

#[derive(Debug, thiserror::Error)]
#[error("saved hash state is corrupt or from an unknown version")]
pub struct StateError;

impl Hasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest::from_bytes(Algorithm::Sha256, &h.finalize()),
            Hasher::Sha512(h) => Digest::from_bytes(Algorithm::Sha512, &h.finalize()),
        }
    }

    /// Serialized state: one algorithm byte, then sha2's own state encoding
    /// (stable across sha2 releases, which test it for exactly this use).
    pub fn save(&self) -> Vec<u8> {
        let (tag, state): (u8, Vec<u8>) = match self {
            Hasher::Sha256(h) => (1, h.serialize().to_vec()),
            Hasher::Sha512(h) => (2, h.serialize().to_vec()),
        };
        let mut out = Vec::with_capacity(state.len() + 1);
        out.push(tag);
        out.extend_from_slice(&state);
        out
    }

    pub fn restore(saved: &[u8]) -> Result<Self, StateError> {
        let (&tag, state) = saved.split_first().ok_or(StateError)?;
        match tag {
            1 => Sha256::deserialize(state.try_into().map_err(|_| StateError)?)
                .map(Hasher::Sha256)
                .map_err(|_| StateError),
            2 => Sha512::deserialize(state.try_into().map_err(|_| StateError)?)
                .map(Hasher::Sha512)
                .map_err(|_| StateError),
            _ => Err(StateError),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_resumes_to_same_digest() {
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            for split in [0, 1, 63, 64, 65, 127, 128, 129, 99_999] {
                let mut h = Hasher::new(alg);
                h.update(&data[..split]);
                let mut resumed = Hasher::restore(&h.save()).unwrap();
                resumed.update(&data[split..]);
                assert_eq!(resumed.finish(), Digest::compute(alg, &data), "{alg} split {split}");
            }
        }
    }

    #[test]
    fn corrupt_state_is_an_error() {
        assert!(Hasher::restore(&[]).is_err());
        assert!(Hasher::restore(&[9, 1, 2]).is_err());
        assert!(Hasher::restore(&[1, 1, 2]).is_err());
    }
}
