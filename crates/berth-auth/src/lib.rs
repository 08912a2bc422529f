//! Authentication building blocks, free of HTTP and storage:
//! - Distribution's `auth.htpasswd` (HTTP basic auth against bcrypt hashes)
//!   and `Authorization: Basic` parsing;
//! - argon2id password hashes for users kept in the database, a timing-safe
//!   answer for unknown users, and a [`Secret`] that never prints;
//! - [`FailureThrottle`], which slows down repeated failed logins;
//! - the Docker token service: scopes ([`parse_scope`], [`Access`]), signing
//!   keys with Distribution's libtrust key IDs, [`TokenIssuer`] for access and
//!   refresh tokens, and [`TokenVerifier`] for ours or an external token
//!   server's, trusting only configured keys.
//!
//! The server wires these to requests, users and configuration.
//! Depends on no other berth crate.

mod basic;
mod htpasswd;
mod issue;
mod jws;
mod keys;
mod keyset;
mod password;
mod scope;
mod throttle;
mod verify;

#[cfg(test)]
mod test_util;

pub use basic::parse_basic;
pub use htpasswd::{password_file as htpasswd_password_file, Htpasswd, HtpasswdError};
pub use issue::{rfc3339, IssueError, Issued, TokenIssuer};
pub use jsonwebtoken::Algorithm;
pub use jws::MAX_TOKEN_LEN;
pub use keys::{libtrust_kid, KeyError, SigningKey};
pub use keyset::{KeySet, KeySetError, TrustedKey};
pub use password::{generate_secret, hash_password, verify_dummy, verify_password, Secret, SECRET_LEN};
pub use scope::{parse_scope, Access, ScopeError, ALL, DELETE, PULL, PUSH};
pub use throttle::{FailureThrottle, ThrottleConfig};
pub use verify::{Claims, TokenError, TokenVerifier};
