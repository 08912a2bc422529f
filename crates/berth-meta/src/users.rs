//! [`UserStore`]: registry users and the secrets every node must share.
//!
//! Passwords arrive already hashed (argon2id PHC strings made by
//! `berth-auth`): this crate never sees a password. Projects, members and
//! robot accounts (issue #18) extend this model.

use crate::MetaError;
use async_trait::async_trait;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub admin: bool,
    pub disabled: bool,
    pub created_ms: i64,
    /// Changes with every password change; refresh tokens carry it, so a new
    /// password revokes every refresh token issued before.
    pub generation: i64,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub password_hash: String,
    pub admin: bool,
}

/// A user name: 1–255 of ASCII letters, digits, `.`, `_`, `-`, starting
/// with a letter or digit. Excludes `:` (it ends the user in Basic
/// credentials) and `$` (robot accounts are named `robot$…`).
pub fn valid_user_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Creates a user; [`MetaError::Conflict`] if the name is taken.
    async fn create_user(&self, user: &NewUser, now_ms: i64) -> Result<User, MetaError>;
    /// Creates `user` as an administrator only if no administrator exists,
    /// in one transaction (so two nodes bootstrapping at once make one).
    /// `None` if an administrator already existed.
    async fn create_first_admin(&self, user: &NewUser, now_ms: i64) -> Result<Option<User>, MetaError>;
    async fn user_by_name(&self, name: &str) -> Result<Option<User>, MetaError>;
    /// Users in name order after `after`, at most `limit`.
    async fn list_users(&self, after: Option<&str>, limit: usize) -> Result<Vec<User>, MetaError>;
    /// Replaces the password hash and bumps the generation. False if no such user.
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, MetaError>;
    async fn set_admin(&self, name: &str, admin: bool) -> Result<bool, MetaError>;
    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, MetaError>;
    async fn delete_user(&self, name: &str) -> Result<bool, MetaError>;
    /// Enabled administrators.
    async fn count_admins(&self) -> Result<u64, MetaError>;
    /// The secret stored under `name`, storing `candidate` first if there is
    /// none: the first node to start generates the token-signing key, every
    /// other node (and every restart) gets the same one.
    async fn secret_or_insert(&self, name: &str, candidate: &[u8], now_ms: i64) -> Result<Vec<u8>, MetaError>;
}

#[cfg(test)]
mod tests {
    use super::valid_user_name;

    #[test]
    fn user_names() {
        for ok in ["admin", "a", "alice.smith", "ci-bot_2", "0day"] {
            assert!(valid_user_name(ok), "{ok}");
        }
        let long = "a".repeat(256);
        for bad in ["", "robot$x", "a:b", "-lead", ".hidden", "with space", "ü", long.as_str()] {
            assert!(!valid_user_name(bad), "{bad}");
        }
    }
}
