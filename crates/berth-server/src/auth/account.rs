//! The party a password (or robot secret) login proved: one of Berth's
//! users or one of its robot accounts. Both log in the same way (Basic
//! credentials, the token service), are throttled and audited alike; what
//! they may then do differs ([`super::policy`], [`super::robot_policy`]).

use berth_meta::{Robot, User};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Account {
    User(Arc<User>),
    Robot(Arc<Robot>),
}

impl Account {
    pub fn name(&self) -> &str {
        match self {
            Account::User(u) => &u.name,
            Account::Robot(r) => &r.name,
        }
    }

    /// The argon2id hash of its password or secret.
    pub(super) fn secret_hash(&self) -> &str {
        match self {
            Account::User(u) => &u.password_hash,
            Account::Robot(r) => &r.secret_hash,
        }
    }

    /// Bumped by every password change or secret rotation.
    pub(super) fn generation(&self) -> i64 {
        match self {
            Account::User(u) => u.generation,
            Account::Robot(r) => r.generation,
        }
    }

    /// Whether it may log in at `now_ms`: enabled, and for a robot not
    /// expired (checked on every login, cached secret or not).
    pub(super) fn usable(&self, now_ms: i64) -> bool {
        match self {
            Account::User(u) => !u.disabled,
            Account::Robot(r) => !r.disabled && !r.expired(now_ms),
        }
    }

    pub fn user(&self) -> Option<&User> {
        match self {
            Account::User(u) => Some(u),
            Account::Robot(_) => None,
        }
    }
}
