//! Password logins against Berth's users and robot accounts (the metadata
//! database), shared by the token service and Basic credentials on the API.
//! A name starting with `robot$` (Harbor's prefix, never a user name) is a
//! robot's; the rest is the same for both.
//!
//! argon2id costs tens of milliseconds by design, and a client sends the
//! same credentials on every request of a pull, so a success is cached under
//! a SHA-256 of (name, password, stored hash, generation): the account row
//! is still read every time (a disabled user, a disabled or expired robot,
//! a new password or secret take effect at once), only the hash computation
//! is saved. Unknown users cost the same
//! as known ones, and repeated failures per (user, source) are refused for
//! a growing while without checking the password.

use super::account::Account;
use crate::audit::AuditSink;
use berth_auth::{verify_dummy, verify_password, FailureThrottle, ThrottleConfig};
use berth_meta::{is_robot_name, MetaError, MetaStore, User};
use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    Invalid,
    #[error("too many failed logins; retry in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    #[error(transparent)]
    Store(#[from] MetaError),
}

pub struct UserDirectory {
    meta: Arc<dyn MetaStore>,
    verified: Cache<[u8; 32], ()>,
    throttle: FailureThrottle,
    /// Where logins are recorded (set once the server's audit log starts).
    audit: OnceLock<AuditSink>,
}

impl UserDirectory {
    pub fn new(meta: Arc<dyn MetaStore>) -> Self {
        UserDirectory {
            meta,
            verified: Cache::builder().max_capacity(10_000).time_to_live(Duration::from_secs(600)).build(),
            throttle: FailureThrottle::new(ThrottleConfig::default()),
            audit: OnceLock::new(),
        }
    }

    /// Records logins from now on: every failure (401, throttled 429), and
    /// a success when the password was checked — not a repeat of the same
    /// credentials served from the success cache, which Basic
    /// authentication on the API would otherwise log on every request.
    pub fn set_audit(&self, sink: AuditSink) {
        let _ = self.audit.set(sink);
    }

    fn audit_login(&self, name: &str, source: IpAddr, status: u16) {
        if let Some(sink) = self.audit.get() {
            crate::audit::login(sink, name, source, status);
        }
    }

    pub fn meta(&self) -> &Arc<dyn MetaStore> {
        &self.meta
    }

    /// The account, if `password` is its password (or secret) and it may
    /// log in now (enabled; a robot also unexpired).
    pub async fn login(&self, name: &str, password: &str, source: IpAddr) -> Result<Account, LoginError> {
        if let Err(wait) = self.throttle.check(name, source, Instant::now()) {
            self.audit_login(name, source, 429);
            return Err(LoginError::Throttled(wait));
        }
        let account = if is_robot_name(name) {
            self.meta.robot_by_name(name).await?.map(|r| Account::Robot(Arc::new(r)))
        } else {
            self.meta.user_by_name(name).await?.map(|u| Account::User(Arc::new(u)))
        };
        let mut cached = false;
        let ok = match &account {
            Some(a) => {
                let key = cache_key(a, password);
                if self.verified.contains_key(&key) {
                    cached = true;
                    true
                } else {
                    let (pw, hash) = (password.to_owned(), a.secret_hash().to_owned());
                    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash)).await.unwrap_or(false);
                    if ok {
                        self.verified.insert(key, ());
                    }
                    ok
                }
            }
            None => {
                let _ = tokio::task::spawn_blocking(verify_dummy).await;
                false
            }
        };
        match account {
            Some(a) if ok && a.usable(crate::state::now_ms()) => {
                self.throttle.succeeded(name, source);
                if !cached {
                    self.audit_login(name, source, 200);
                }
                Ok(a)
            }
            _ => {
                self.throttle.failed(name, source, Instant::now());
                self.audit_login(name, source, 401);
                Err(LoginError::Invalid)
            }
        }
    }

    /// The user named in a refresh token, if it still exists, is enabled,
    /// and has not changed its password since (`generation`).
    pub async fn current(&self, name: &str, generation: &str) -> Result<Option<Arc<User>>, MetaError> {
        let user = self.meta.user_by_name(name).await?;
        Ok(user.filter(|u| !u.disabled && u.generation.to_string() == generation).map(Arc::new))
    }
}

fn cache_key(a: &Account, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    let generation = a.generation().to_le_bytes();
    for part in [a.name().as_bytes(), password.as_bytes(), a.secret_hash().as_bytes(), &generation] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finalize().into()
}
