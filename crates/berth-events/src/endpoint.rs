//! Distribution's notification endpoints (`notifications.endpoints`): each
//! has its own in-memory queue and sender task; events are POSTed one per
//! envelope, in order, each retried until the endpoint takes it (2xx or
//! 3xx). After `threshold` consecutive failures the sender waits `backoff`
//! between attempts (Distribution's breaker). Unlike Distribution the
//! queue is bounded: a listener down for long loses the oldest-pending
//! backlog's newcomers (counted as dropped and warned about) rather than
//! the registry's memory. On shutdown queued events get a bounded time.

use crate::distribution::{envelope, SourceRecord, ENVELOPE_MEDIA_TYPE};
use crate::event::Event;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// One configured endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    pub name: String,
    pub url: String,
    /// Sent with every request, in order (a name may repeat).
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// Consecutive failures before backing off.
    pub threshold: u32,
    pub backoff: Duration,
    /// `ignoredmediatypes` and `ignore.mediatypes`.
    pub ignored_media_types: Vec<String>,
    /// `ignore.actions`.
    pub ignored_actions: Vec<String>,
    /// Events the queue holds before new ones are dropped.
    pub queue: usize,
}

impl EndpointConfig {
    /// Distribution's defaults for what was left unset (zero).
    pub fn with_defaults(mut self) -> Self {
        if self.timeout.is_zero() {
            self.timeout = Duration::from_secs(1);
        }
        if self.threshold == 0 {
            self.threshold = 10;
        }
        if self.backoff.is_zero() {
            self.backoff = Duration::from_secs(1);
        }
        if self.queue == 0 {
            self.queue = 10_000;
        }
        self
    }

    fn ignores(&self, event: &Event) -> bool {
        let media_type = event.media_type().unwrap_or("");
        self.ignored_media_types.iter().any(|m| m == media_type)
            || self.ignored_actions.iter().any(|a| a == event.action.as_str())
    }
}

/// Counters of one endpoint, as Distribution's `EndpointMetrics` (plus drops).
#[derive(Debug, Default)]
pub struct EndpointStats {
    /// Events accepted into the queue.
    pub events: AtomicU64,
    pub successes: AtomicU64,
    /// Attempts the endpoint answered with another status.
    pub failures: AtomicU64,
    /// Attempts that got no answer.
    pub errors: AtomicU64,
    /// Events lost: queue full, or still queued at shutdown.
    pub dropped: AtomicU64,
    pub pending: AtomicI64,
    /// Attempts per HTTP status.
    pub statuses: Mutex<BTreeMap<u16, u64>>,
}

/// The running endpoints; [`Endpoints::publish`] never waits.
pub struct Endpoints {
    sinks: Vec<Sink>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

struct Sink {
    config: Arc<EndpointConfig>,
    tx: mpsc::Sender<Arc<Event>>,
    stats: Arc<EndpointStats>,
    warned: AtomicBool,
}

impl Endpoints {
    /// Starts a sender per endpoint (the caller leaves disabled ones out).
    pub fn start(
        configs: Vec<EndpointConfig>,
        source: SourceRecord,
        include_references: bool,
    ) -> reqwest::Result<Self> {
        let (stop, stopped) = watch::channel(false);
        let source = Arc::new(source);
        let mut sinks = Vec::new();
        let mut tasks = Vec::new();
        for config in configs {
            let config = Arc::new(config.with_defaults());
            let client = crate::outbound::endpoint_client(config.timeout)?;
            let (tx, rx) = mpsc::channel(config.queue);
            let stats = Arc::new(EndpointStats::default());
            let names: Vec<&str> = config.headers.iter().map(|(n, _)| n.as_str()).collect();
            tracing::info!(
                endpoint = %config.name, url = %config.url, timeout_ms = config.timeout.as_millis() as u64,
                threshold = config.threshold, backoff_ms = config.backoff.as_millis() as u64,
                headers = ?names, "configuring notification endpoint"
            );
            let sender = Sender {
                config: config.clone(),
                client,
                stats: stats.clone(),
                source: source.clone(),
                include_references,
                stopped: stopped.clone(),
            };
            tasks.push(tokio::spawn(sender.run(rx)));
            sinks.push(Sink { config, tx, stats, warned: AtomicBool::new(false) });
        }
        Ok(Endpoints { sinks, stop, tasks: Mutex::new(tasks) })
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Queues `event` for every endpoint that does not ignore it.
    pub fn publish(&self, event: &Arc<Event>) {
        for sink in &self.sinks {
            if sink.config.ignores(event) {
                continue;
            }
            if sink.tx.try_send(event.clone()).is_ok() {
                sink.stats.events.fetch_add(1, Ordering::Relaxed);
                sink.stats.pending.fetch_add(1, Ordering::Relaxed);
            } else {
                sink.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if !sink.warned.swap(true, Ordering::Relaxed) {
                    tracing::warn!(endpoint = %sink.config.name, "notification queue full: events dropped");
                }
            }
        }
    }

    /// Each endpoint's name and counters.
    pub fn stats(&self) -> Vec<(&str, &EndpointStats)> {
        self.sinks.iter().map(|s| (s.config.name.as_str(), &*s.stats)).collect()
    }

    /// Gives queued events one attempt each, for at most `wait` in all, then stops.
    pub async fn shutdown(&self, wait: Duration) {
        let _ = self.stop.send(true);
        crate::join_within(&self.tasks, wait).await;
        for sink in &self.sinks {
            let left = sink.stats.pending.swap(0, Ordering::Relaxed);
            if left > 0 {
                sink.stats.dropped.fetch_add(left as u64, Ordering::Relaxed);
                tracing::warn!(endpoint = %sink.config.name, events = left, "notifications still queued at shutdown were lost");
            }
        }
    }
}

struct Sender {
    config: Arc<EndpointConfig>,
    client: reqwest::Client,
    stats: Arc<EndpointStats>,
    source: Arc<SourceRecord>,
    include_references: bool,
    stopped: watch::Receiver<bool>,
}

impl Sender {
    async fn run(mut self, mut rx: mpsc::Receiver<Arc<Event>>) {
        loop {
            let event = if *self.stopped.borrow() {
                match rx.try_recv() {
                    Ok(e) => e,
                    Err(_) => return,
                }
            } else {
                tokio::select! {
                    e = rx.recv() => match e { Some(e) => e, None => return },
                    _ = self.stopped.changed() => continue,
                }
            };
            self.deliver(&event).await;
            self.stats.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Attempts until the endpoint takes the event; once when stopping.
    async fn deliver(&mut self, event: &Event) {
        let body = bytes::Bytes::from(envelope(event, &self.source, self.include_references));
        let mut failures = 0u32;
        loop {
            if self.attempt(body.clone()).await {
                return;
            }
            if *self.stopped.borrow() {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            failures += 1;
            if failures >= self.config.threshold {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.backoff) => {}
                    _ = self.stopped.changed() => {}
                }
            }
        }
    }

    async fn attempt(&self, body: bytes::Bytes) -> bool {
        let mut req = self.client.post(&self.config.url).header("content-type", ENVELOPE_MEDIA_TYPE).body(body);
        for (name, value) in &self.config.headers {
            req = req.header(name.as_str(), value.as_str());
        }
        match crate::outbound::post(req).await {
            Ok(answer) => {
                *self.stats.statuses.lock().unwrap_or_else(|p| p.into_inner()).entry(answer.status).or_default() += 1;
                if (200..400).contains(&answer.status) {
                    self.stats.successes.fetch_add(1, Ordering::Relaxed);
                    true
                } else {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(endpoint = %self.config.name, status = answer.status, "notification refused");
                    false
                }
            }
            Err(e) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(endpoint = %self.config.name, error = %e, "notification not delivered");
                false
            }
        }
    }
}
