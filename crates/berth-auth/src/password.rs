//! Passwords of users kept in the metadata database: argon2id in PHC string
//! form (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the parameters travel
//! with each hash and can be raised later without invalidating old ones.
//!
//! Parameters are OWASP's first recommendation for argon2id (Password Storage
//! Cheat Sheet): 19 MiB of memory, 2 passes, 1 lane. Measured by
//! `cost_is_measured` (`cargo test -p berth-auth cost -- --nocapture`): about
//! 20 ms per hash and per check on one core of an AMD EPYC build machine, and
//! 19 MiB while it runs. So callers verify on a blocking thread, cache
//! successes as htpasswd does, and throttle failures (`throttle.rs`).
//!
//! An unknown user is answered after [`verify_dummy`], which spends the same
//! time, so response time does not tell which users exist.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

/// OWASP: m = 19 MiB, t = 2, p = 1.
const M_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_LANES: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_KIB, T_COST, P_LANES, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with a fresh random salt; returns the PHC string.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand_core_06::OsRng);
    argon2().hash_password(password.as_bytes(), &salt).expect("argon2 hashes any password").to_string()
}

/// Length of a generated robot secret: 40 alphanumerics, about 238 bits.
pub const SECRET_LEN: usize = 40;

/// A fresh secret for a robot account: [`SECRET_LEN`] letters and digits
/// from `rand`'s thread generator (a CSPRNG seeded from the OS).
pub fn generate_secret() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), SECRET_LEN)
}

/// Whether `password` matches the PHC string `phc` (parameters read from it;
/// the comparison is the argon2 crate's constant-time one). A malformed PHC
/// string never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // Only argon2id is ever written; refuse weaker variants a row might hold.
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// Spends the time of one [`verify_password`] with the current parameters
/// and returns `false`: call it when the user does not exist. The first call
/// also makes the dummy hash, so call it once at start-up.
pub fn verify_dummy() -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash_password("berth: no such user"));
    verify_password("berth: not the password", phc)
}

/// A password or other secret held by a caller: prints as `***` so it cannot
/// reach a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for the one place that checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn generated_secrets_are_long_alphanumeric_and_distinct() {
        let (a, b) = (generate_secret(), generate_secret());
        assert!(a.len() >= 32 && a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn hash_then_verify() {
        let phc = hash_password("correct horse");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horse ", &phc));
        assert!(!verify_password("", &phc));
        // Fresh salt each time.
        assert_ne!(hash_password("correct horse"), phc);
    }

    #[test]
    fn phc_from_another_implementation() {
        // OpenSSL's argon2id through Python `cryptography` (Argon2id(salt=b"somesalt",
        // length=32, iterations=2, lanes=1, memory_cost=19456).derive(b"password")),
        // written as a PHC string by hand.
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$PL01amPyeUuxG7H0vIr5X+qHkZvWnHmGBGXFYvh8z2E";
        assert!(verify_password("password", phc));
        assert!(!verify_password("not it", phc));
    }

    #[test]
    fn malformed_or_weaker_never_matches() {
        assert!(!verify_password("x", ""));
        assert!(!verify_password("x", "$2y$10$abcdefghijklmnopqrstuv"));
        let phc = hash_password("x").replace("$argon2id$", "$argon2i$");
        assert!(!verify_password("x", &phc));
        assert!(!verify_dummy());
    }

    #[test]
    fn cost_is_measured() {
        let start = Instant::now();
        let phc = hash_password("measure me");
        let hashed = start.elapsed();
        let start = Instant::now();
        assert!(verify_password("measure me", &phc));
        let verified = start.elapsed();
        let start = Instant::now();
        assert!(!verify_dummy());
        let dummy = start.elapsed();
        println!("argon2id m=19456KiB t=2 p=1: hash {hashed:?}, verify {verified:?}, dummy (first call) {dummy:?}");
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}
