//! Slowing down password guessing. Failed logins are counted per (user,
//! source address) and per source address; past a few failures in a window,
//! attempts are refused without checking the password (so a guess costs the
//! attacker a round trip and us no argon2/bcrypt work) until a backoff has
//! passed that doubles with every further failure, up to a cap. A success
//! clears that user's counter for that source only: an attacker cannot reset
//! the per-source counter with an account of their own.
//!
//! IPv6 sources count per /64, the block one host usually controls. Time is a
//! parameter so tests need no sleeps; memory is bounded (moka, idle entries
//! dropped after the window and the longest backoff).

use moka::sync::Cache;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures of one user from one source before attempts are refused.
    pub max_failures: u32,
    /// Failures from one source, over all users (password spraying).
    pub max_failures_per_source: u32,
    /// Counters are forgotten after this long without a failure or a block.
    pub window: Duration,
    /// The first refusal lasts this long, then doubles per further failure…
    pub base_backoff: Duration,
    /// …up to this.
    pub max_backoff: Duration,
    /// Entries kept per table.
    pub capacity: u64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures: 5,
            max_failures_per_source: 50,
            window: Duration::from_secs(15 * 60),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(15 * 60),
            capacity: 100_000,
        }
    }
}

#[derive(Debug)]
struct State {
    failures: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

type Entry = Arc<Mutex<State>>;

pub struct FailureThrottle {
    cfg: ThrottleConfig,
    pairs: Cache<([u8; 32], IpAddr), Entry>,
    sources: Cache<IpAddr, Entry>,
}

/// The address failures are counted under: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

/// User names are hashed: bounded key size, and no names kept in memory.
fn user_key(user: &str) -> [u8; 32] {
    Sha256::digest(user.as_bytes()).into()
}

fn blocked(entry: Option<Entry>, now: Instant) -> Option<Duration> {
    let state = entry?;
    let state = state.lock().unwrap_or_else(|e| e.into_inner());
    state.blocked_until.filter(|&until| until > now).map(|until| until - now)
}

impl FailureThrottle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        let idle = cfg.window + cfg.max_backoff;
        FailureThrottle {
            pairs: Cache::builder().max_capacity(cfg.capacity).time_to_idle(idle).build(),
            sources: Cache::builder().max_capacity(cfg.capacity).time_to_idle(idle).build(),
            cfg,
        }
    }

    /// `Err(retry_after)` if attempts of `user` from `ip` are refused at `now`.
    pub fn check(&self, user: &str, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let ip = source(ip);
        let pair = blocked(self.pairs.get(&(user_key(user), ip)), now);
        let src = blocked(self.sources.get(&ip), now);
        match pair.max(src) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Records a failed login of `user` from `ip` at `now`.
    pub fn failed(&self, user: &str, ip: IpAddr, now: Instant) {
        let ip = source(ip);
        let fresh = || Arc::new(Mutex::new(State { failures: 0, last: now, blocked_until: None }));
        self.record(&self.pairs.get_with((user_key(user), ip), fresh), self.cfg.max_failures, now);
        self.record(&self.sources.get_with(ip, fresh), self.cfg.max_failures_per_source, now);
    }

    /// Records a successful login: clears the (user, source) counter.
    pub fn succeeded(&self, user: &str, ip: IpAddr) {
        self.pairs.invalidate(&(user_key(user), source(ip)));
    }

    fn record(&self, entry: &Entry, limit: u32, now: Instant) {
        let mut s = entry.lock().unwrap_or_else(|e| e.into_inner());
        let quiet_since = s.blocked_until.map_or(s.last, |b| b.max(s.last));
        if now.saturating_duration_since(quiet_since) > self.cfg.window {
            s.failures = 0;
            s.blocked_until = None;
        }
        s.failures = s.failures.saturating_add(1);
        s.last = now;
        if s.failures >= limit {
            let doublings = (s.failures - limit).min(31);
            let backoff = self.cfg.base_backoff.saturating_mul(1 << doublings).min(self.cfg.max_backoff);
            s.blocked_until = Some(now + backoff);
        }
    }
}

#[cfg(test)]
mod tests;
