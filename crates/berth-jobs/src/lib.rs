//! Background jobs over the metadata and blob stores: garbage collection
//! ([`gc`]), scrubbing ([`scrub`]), and the cron [`schedule`] that runs a
//! job in the server, once per cluster through a job lease
//! (`berth_meta::LeaseStore`). Each job is a plain async function taking an
//! injected [`Clock`]; the scheduler's [`schedule::Worker::run_once`] is what
//! tests call instead of waiting.
//!
//! Depends on `berth-meta` and `berth-blob` only: the server and the CLI
//! both drive it. The safety argument is in `docs/garbage-collection.md`.

pub mod gc;
pub mod retention;
pub mod schedule;
pub mod scrub;
pub mod uploads;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub use gc::{collect, GcError, GcOptions, GcReport};
pub use schedule::{Schedule, Worker};

/// Where jobs get the time (Unix milliseconds), so tests inject it.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        d.as_millis() as i64
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(now_ms)))
    }
    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
