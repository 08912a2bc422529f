//! Rate limits per client address and per account: one token bucket per
//! key, as GCRA (a bucket is one "theoretical arrival time" in an atomic,
//! so a check is a cache lookup and a compare-and-swap, no lock).
//!
//! Not `governor`: its keyed store grows until a sweep (`retain_recent`)
//! runs, so an address-spraying client can inflate it between sweeps.
//! Here the buckets live in a moka cache (already a dependency) with a hard
//! entry cap, and an idle bucket expires exactly when it would be full
//! again, so evicting it forgets nothing.

use crate::error::ApiError;
use berth_oci::ErrorCode;
use moka::sync::Cache;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Buckets kept per limiter (~100 bytes each). Past it the least recently
/// used go first: a flood of new keys can reset others' buckets, never
/// grow memory.
const MAX_KEYS: u64 = 100_000;

/// A bucket's shape: refilled at `rate` per second, holding `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub rate: u32,
    pub burst: u32,
}

/// The limits configured (`berth.ratelimit`); both off by default.
#[derive(Debug, Clone, Default)]
pub struct RateLimits {
    pub per_ip: Option<Bucket>,
    pub per_user: Option<Bucket>,
}

pub struct Limiter<K> {
    /// Nanoseconds one request costs.
    interval: u64,
    /// How far ahead of now the arrival time may run: `burst` requests.
    tolerance: u64,
    buckets: Cache<K, Arc<AtomicU64>>,
    epoch: Instant,
}

impl<K: Hash + Eq + Send + Sync + 'static> Limiter<K> {
    pub fn new(bucket: Bucket) -> Self {
        let interval = 1_000_000_000 / u64::from(bucket.rate.max(1));
        let tolerance = interval.saturating_mul(u64::from(bucket.burst.max(1)));
        let buckets = Cache::builder()
            .max_capacity(MAX_KEYS)
            .time_to_idle(Duration::from_nanos(tolerance).max(Duration::from_secs(1)))
            .build();
        Limiter { interval, tolerance, buckets, epoch: Instant::now() }
    }

    /// Takes one token from `key`'s bucket, or says how long until one is there.
    pub fn check<Q>(&self, key: &Q, now: Instant) -> Result<(), Duration>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let cell = match self.buckets.get(key) {
            Some(cell) => cell,
            None => self.buckets.get_with(key.to_owned(), Arc::default),
        };
        let now = u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        let mut tat = cell.load(Ordering::Relaxed);
        loop {
            let next = tat.max(now).saturating_add(self.interval);
            if next - now > self.tolerance {
                return Err(Duration::from_nanos(next - now - self.tolerance));
            }
            match cell.compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(current) => tat = current,
            }
        }
    }
}

/// The limiters of one server.
#[derive(Default)]
pub struct Limiters {
    pub per_ip: Option<Limiter<std::net::IpAddr>>,
    pub per_user: Option<Limiter<String>>,
}

impl Limiters {
    pub fn new(limits: &RateLimits) -> Self {
        Limiters { per_ip: limits.per_ip.map(Limiter::new), per_user: limits.per_user.map(Limiter::new) }
    }
}

/// `429 TOOMANYREQUESTS` with `Retry-After` in whole seconds (at least 1).
pub fn refusal(wait: Duration) -> ApiError {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(ErrorCode::TooManyRequests)
        .message("rate limit exceeded; retry later")
        .header("retry-after", crate::handlers::header_value(&secs.max(1).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_one_request_per_interval() {
        let limiter = Limiter::<String>::new(Bucket { rate: 10, burst: 3 });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", t0).is_ok());
        }
        // The fourth must wait one refill interval (100 ms at 10/s).
        let wait = limiter.check("a", t0).unwrap_err();
        assert!(wait > Duration::from_millis(99) && wait <= Duration::from_millis(100), "{wait:?}");
        // Other keys have their own bucket.
        assert!(limiter.check("b", t0).is_ok());
        assert!(limiter.check("a", t0 + Duration::from_millis(100)).is_ok());
        assert!(limiter.check("a", t0 + Duration::from_millis(100)).is_err());
        // After burst/rate seconds the bucket is full again.
        let later = t0 + Duration::from_millis(400);
        for _ in 0..3 {
            assert!(limiter.check("a", later).is_ok());
        }
        assert!(limiter.check("a", later).is_err());
    }

    #[test]
    fn refused_requests_take_no_token() {
        let limiter = Limiter::<String>::new(Bucket { rate: 1, burst: 1 });
        let t0 = Instant::now();
        assert!(limiter.check("a", t0).is_ok());
        for _ in 0..100 {
            assert!(limiter.check("a", t0).is_err());
        }
        assert!(limiter.check("a", t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn concurrent_checks_never_overspend() {
        let limiter = Arc::new(Limiter::<String>::new(Bucket { rate: 1, burst: 50 }));
        let t0 = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = limiter.clone();
                std::thread::spawn(move || (0..100).filter(|_| l.check("k", t0).is_ok()).count())
            })
            .collect();
        let passed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(passed, 50);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let r = refusal(Duration::from_millis(1));
        assert_eq!(r.headers[0].1, "1");
        let r = refusal(Duration::from_millis(2500));
        assert_eq!(r.headers[0].1, "3");
    }
}

#[cfg(test)]
mod cost {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    /// What a request pays: `cargo test -p berth-server --lib ratelimit::cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn cost_of_a_check() {
        const N: u32 = 1_000_000;
        let off: Option<Limiter<IpAddr>> = None;
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let t = Instant::now();
        let mut passed = 0u32;
        for _ in 0..N {
            passed +=
                u32::from(std::hint::black_box(&off).as_ref().is_none_or(|l| l.check(&ip, Instant::now()).is_ok()));
        }
        println!("off: {:.1} ns/request ({passed})", t.elapsed().as_nanos() as f64 / f64::from(N));
        let on = Limiter::<IpAddr>::new(Bucket { rate: u32::MAX, burst: u32::MAX });
        let t = Instant::now();
        for _ in 0..N {
            let _ = std::hint::black_box(on.check(&ip, Instant::now()));
        }
        println!("on, one address: {:.1} ns/request", t.elapsed().as_nanos() as f64 / f64::from(N));
        let t = Instant::now();
        for i in 0..N {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i % 10_000)));
            let _ = std::hint::black_box(on.check(&ip, Instant::now()));
        }
        println!("on, 10k addresses: {:.1} ns/request", t.elapsed().as_nanos() as f64 / f64::from(N));
        let users = Limiter::<String>::new(Bucket { rate: u32::MAX, burst: u32::MAX });
        let t = Instant::now();
        for _ in 0..N {
            let _ = std::hint::black_box(users.check("robot$team+ci", Instant::now()));
        }
        println!("on, one account: {:.1} ns/request", t.elapsed().as_nanos() as f64 / f64::from(N));
    }
}
