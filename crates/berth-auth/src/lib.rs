//! Authentication. Today: Distribution's `auth.htpasswd` (HTTP basic auth
//! against an htpasswd file of bcrypt hashes). The token service, users,
//! robots and roles of the authentication issue build on this crate.
//! Knows nothing of HTTP beyond parsing an `Authorization` header value.
//! Depends on no other berth crate.

mod basic;
mod htpasswd;

pub use basic::parse_basic;
pub use htpasswd::{Htpasswd, HtpasswdError};
