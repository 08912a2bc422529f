//! `registry_storage_action_seconds{action,driver}`: Distribution times each
//! storage driver call under the driver method's name (`Stat`, `Reader`,
//! `Move`, …). Berth times each [`BlobStore`] call under the name of the
//! driver call Distribution makes for the same step, so its dashboards read
//! the same. Appends are not timed: their time is the client's upload, and
//! Distribution's `Writer` times only opening the writer.

use crate::metrics::Histogram;
use async_trait::async_trait;
use berth_blob::{Appended, BlobReader, BlobStore, ByteStream, StoreError};
use berth_oci::{Algorithm, ByteRange, Digest, Hasher};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// Distribution's storage driver method names, as its `action` label.
const ACTIONS: [&str; 7] = ["Reader", "Writer", "Stat", "List", "Move", "Delete", "RedirectURL"];
/// Prometheus' default buckets, which Distribution's storage timer uses.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Copy)]
enum Action {
    Reader,
    Writer,
    Stat,
    List,
    Move,
    Delete,
    RedirectUrl,
}

/// One histogram per action, for one driver.
#[derive(Debug)]
pub struct StorageMetrics {
    driver: &'static str,
    actions: Vec<Histogram>,
}

impl StorageMetrics {
    pub fn new(driver: &'static str) -> Self {
        StorageMetrics { driver, actions: ACTIONS.iter().map(|_| Histogram::new(BUCKETS)).collect() }
    }

    fn observe(&self, action: Action, started: Instant) {
        self.actions[action as usize].observe(started.elapsed());
    }
}

impl Collector for StorageMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "registry_storage_action_seconds",
            "The number of seconds that the storage action takes",
            None,
            MetricType::Histogram,
        )?;
        for (name, histogram) in ACTIONS.iter().zip(&self.actions) {
            let labels = [("action", *name), ("driver", self.driver)];
            histogram.encode(&mut family, &labels)?;
        }
        Ok(())
    }
}

/// A [`BlobStore`] that times each call of the store it wraps.
pub struct TimedBlobStore {
    inner: Arc<dyn BlobStore>,
    metrics: Arc<StorageMetrics>,
}

impl TimedBlobStore {
    pub fn new(inner: Arc<dyn BlobStore>, metrics: Arc<StorageMetrics>) -> Self {
        TimedBlobStore { inner, metrics }
    }

    async fn timed<T>(&self, action: Action, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = call.await;
        self.metrics.observe(action, started);
        out
    }
}

#[async_trait]
impl BlobStore for TimedBlobStore {
    fn driver_name(&self) -> &'static str {
        self.inner.driver_name()
    }

    async fn create_upload(&self, upload: &str) -> Result<(), StoreError> {
        self.timed(Action::Writer, self.inner.create_upload(upload)).await
    }

    async fn append(
        &self,
        upload: &str,
        offset: u64,
        state: &[u8],
        hasher: Hasher,
        body: ByteStream,
        limit: Option<u64>,
    ) -> Result<Appended, StoreError> {
        self.inner.append(upload, offset, state, hasher, body, limit).await
    }

    async fn hash_upload(
        &self,
        upload: &str,
        len: u64,
        state: &[u8],
        algorithm: Algorithm,
    ) -> Result<Digest, StoreError> {
        self.timed(Action::Reader, self.inner.hash_upload(upload, len, state, algorithm)).await
    }

    async fn commit_upload(&self, upload: &str, len: u64, state: &[u8], digest: &Digest) -> Result<(), StoreError> {
        self.timed(Action::Move, self.inner.commit_upload(upload, len, state, digest)).await
    }

    async fn delete_upload(&self, upload: &str) -> Result<(), StoreError> {
        self.timed(Action::Delete, self.inner.delete_upload(upload)).await
    }

    async fn staged_uploads(&self, before_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        self.timed(Action::List, self.inner.staged_uploads(before_ms, limit)).await
    }

    async fn stat(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        self.timed(Action::Stat, self.inner.stat(digest)).await
    }

    async fn open(&self, digest: &Digest, range: Option<ByteRange>) -> Result<BlobReader, StoreError> {
        let started = Instant::now();
        let out = self.inner.open(digest, range).await;
        let action = match out {
            Ok(BlobReader::Redirect { .. }) => Action::RedirectUrl,
            _ => Action::Reader,
        };
        self.metrics.observe(action, started);
        out
    }

    async fn delete(&self, digest: &Digest) -> Result<(), StoreError> {
        self.timed(Action::Delete, self.inner.delete(digest)).await
    }

    async fn delete_many(&self, digests: &[Digest]) -> Result<(), StoreError> {
        self.timed(Action::Delete, self.inner.delete_many(digests)).await
    }

    async fn quarantine(&self, digest: &Digest) -> Result<(), StoreError> {
        self.timed(Action::Move, self.inner.quarantine(digest)).await
    }
}
