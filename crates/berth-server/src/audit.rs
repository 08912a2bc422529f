//! The audit log, off the request path (docs/audit-log.md).
//!
//! Handlers never wait for the database: [`AuditSink::record`] puts an
//! event in a bounded queue (`try_send`, a few hundred nanoseconds) and a
//! background writer appends what accumulated, every [`AuditOptions::interval`]
//! or [`AuditOptions::batch`] events, in one metadata transaction that
//! chains them ([`berth_meta::AuditStore::append_audit`]). A full queue (the
//! database is down or far behind) drops the event: counted
//! ([`AuditSink::dropped`]) and warned about at most every
//! [`DROP_WARNING_INTERVAL`] — requests are never slowed or refused because
//! the audit log cannot keep up. On shutdown the writer appends what is
//! queued, for a bounded time ([`AuditWriter::shutdown`]).
//!
//! What is recorded: manifest pulls (GET/HEAD), pushes (PUT) and deletes,
//! blob deletes, each with its status ([`request`], called once from
//! dispatch), and password logins ([`crate::UserDirectory`]).

use crate::auth::Principal;
use crate::route::Endpoint;
use axum::response::Response;
use berth_meta::{action, AuditEvent, AuditStore};
use http::request::Parts;
use http::Method;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A dropped event is warned about at most this often.
pub const DROP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Events the queue holds. The default, 65,536, absorbs a stall of the
    /// database of about 6 s at 10,000 audited requests per second (several
    /// times what one node serves of manifest requests) in about 16 MiB
    /// (an event is ~250 bytes); beyond that, dropping beats growing
    /// without bound.
    pub capacity: usize,
    /// Most events per append transaction.
    pub batch: usize,
    /// How long the writer gathers events after the first before appending.
    pub interval: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { capacity: 65_536, batch: 1024, interval: Duration::from_millis(100) }
    }
}

/// Where handlers put audit events; cheap to clone. [`AuditSink::disabled`]
/// (the default) records nothing.
#[derive(Clone, Default)]
pub struct AuditSink {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    tx: mpsc::Sender<AuditEvent>,
    dropped: AtomicU64,
    last_warning_ms: AtomicI64,
}

/// The background writer; [`AuditWriter::shutdown`] flushes and stops it.
pub struct AuditWriter {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl AuditSink {
    pub fn disabled() -> Self {
        AuditSink { inner: None }
    }

    /// Starts the writer appending to `store`.
    pub fn start(store: Arc<dyn AuditStore>, opts: AuditOptions) -> (AuditSink, AuditWriter) {
        let (tx, rx) = mpsc::channel(opts.capacity.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(write_loop(store, rx, stop_rx, opts));
        let inner = Inner { tx, dropped: AtomicU64::new(0), last_warning_ms: AtomicI64::new(i64::MIN) };
        (AuditSink { inner: Some(Arc::new(inner)) }, AuditWriter { stop: stop_tx, task })
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues `event` without waiting; drops (and counts) it if the queue is full.
    pub fn record(&self, event: AuditEvent) {
        let Some(inner) = &self.inner else { return };
        if inner.tx.try_send(event).is_ok() {
            return;
        }
        let dropped = inner.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = crate::state::now_ms();
        let last = inner.last_warning_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= DROP_WARNING_INTERVAL.as_millis() as i64;
        if due && inner.last_warning_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            tracing::warn!(dropped_total = dropped, "audit queue full: audit events dropped");
        }
    }

    /// Events dropped because the queue was full (or the writer stopped), since start.
    pub fn dropped(&self) -> u64 {
        self.inner.as_ref().map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }
}

impl AuditWriter {
    /// Appends what is queued and stops, waiting at most `wait`.
    pub async fn shutdown(self, wait: Duration) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(wait, &mut task).await.is_err() {
            task.abort();
            tracing::warn!(wait_ms = wait.as_millis() as u64, "audit events still queued at shutdown were lost");
        }
    }
}

async fn write_loop(
    store: Arc<dyn AuditStore>,
    mut rx: mpsc::Receiver<AuditEvent>,
    mut stop: oneshot::Receiver<()>,
    opts: AuditOptions,
) {
    let max = opts.batch.max(1);
    let mut stopping = false;
    while !stopping {
        let first = tokio::select! {
            biased;
            _ = &mut stop => break,
            e = rx.recv() => match e { Some(e) => e, None => break },
        };
        let mut batch = Vec::with_capacity(max.min(64));
        batch.push(first);
        let deadline = tokio::time::Instant::now() + opts.interval;
        while batch.len() < max {
            tokio::select! {
                biased;
                _ = &mut stop => { stopping = true; break }
                e = rx.recv() => match e { Some(e) => batch.push(e), None => { stopping = true; break } },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        append(&*store, &batch).await;
    }
    // Flush: whatever is queued now, in batches.
    rx.close();
    let mut batch = Vec::new();
    while let Ok(e) = rx.try_recv() {
        batch.push(e);
        if batch.len() == max {
            append(&*store, &std::mem::take(&mut batch)).await;
        }
    }
    append(&*store, &batch).await;
}

/// Appends `batch`, retrying with backoff until it succeeds (the queue
/// absorbs, then drops, what arrives meanwhile; shutdown's bound ends it).
async fn append(store: &dyn AuditStore, batch: &[AuditEvent]) {
    if batch.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        match store.append_audit(batch).await {
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), retry_ms = backoff.as_millis() as u64, "appending audit events failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// What `endpoint` and `method` do, if it is audited: (action, resource).
fn audited(endpoint: &Endpoint<'_>, method: &Method, resp: &Response) -> Option<(&'static str, String)> {
    let (action, name, reference) = match (endpoint, method) {
        (Endpoint::Manifest { name, reference }, &Method::GET | &Method::HEAD) => (action::PULL, name, reference),
        (Endpoint::Manifest { name, reference }, &Method::PUT) => (action::PUSH, name, reference),
        (Endpoint::Manifest { name, reference }, &Method::DELETE) => (action::DELETE, name, reference),
        (Endpoint::Blob { name, digest }, &Method::DELETE) => {
            return Some((action::DELETE_BLOB, format!("{name}@{digest}")));
        }
        _ => return None,
    };
    // Tags never contain ':', digests always do.
    if reference.contains(':') {
        return Some((action, format!("{name}@{reference}")));
    }
    // By tag: add the digest the response names (pulls and pushes).
    let digest = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok());
    Some(match digest {
        Some(d) if resp.status().is_success() || resp.status() == http::StatusCode::NOT_MODIFIED => {
            (action, format!("{name}:{reference}@{d}"))
        }
        _ => (action, format!("{name}:{reference}")),
    })
}

/// Records an audited request (see the module docs) once its response is known.
pub(crate) fn request(
    sink: &AuditSink,
    parts: &Parts,
    principal: &Principal,
    endpoint: &Endpoint<'_>,
    resp: &Response,
) {
    let Some((action, resource)) = audited(endpoint, &parts.method, resp) else { return };
    let status = resp.status();
    sink.record(AuditEvent {
        time_ms: crate::state::now_ms(),
        actor: principal.name().unwrap_or("anonymous").to_owned(),
        source: crate::auth::source(parts).to_string(),
        action: action.to_owned(),
        resource,
        success: status.as_u16() < 400,
        status: status.as_u16(),
    });
}

/// Records a refused registry request that carried credentials: a valid
/// account lacking the right (403), or a bearer token refused (401). A
/// request without credentials is not recorded: every client's first
/// request is one (the 401 challenge is how the token flow starts), and
/// refused passwords are recorded as failed logins already.
pub(crate) fn refusal(sink: &AuditSink, parts: &Parts, needed: &crate::auth::Needed<'_>, resp: &Response) {
    let Some(authorization) = parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let status = resp.status().as_u16();
    let actor = match status {
        // Past authentication, so the credential's name is proven.
        403 => credential_name(authorization).unwrap_or_else(|| "unknown".into()),
        _ if authorization.len() > 7 && authorization[..7].eq_ignore_ascii_case("bearer ") => "anonymous".into(),
        _ => return,
    };
    let (action, resource) = match needed {
        crate::auth::Needed::Authenticated => ("access".to_owned(), "/v2/".to_owned()),
        crate::auth::Needed::Catalog => ("catalog".to_owned(), "catalog".to_owned()),
        crate::auth::Needed::Repository { name, actions } => (actions.join(","), (*name).to_owned()),
    };
    sink.record(AuditEvent {
        time_ms: crate::state::now_ms(),
        actor,
        source: crate::auth::source(parts).to_string(),
        action: format!("denied {action}"),
        resource,
        success: false,
        status,
    });
}

/// The user of Basic credentials, or the subject of a bearer token (whose
/// signature the caller has verified).
fn credential_name(authorization: &str) -> Option<String> {
    if let Some((user, _)) = berth_auth::parse_basic(authorization) {
        return Some(user);
    }
    use base64::Engine;
    let token = authorization.get(7..)?.trim();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims["sub"].as_str().map(str::to_owned)
}

/// Records a password login (success 200, failure 401, throttled 429).
pub(crate) fn login(sink: &AuditSink, user: &str, source: std::net::IpAddr, status: u16) {
    sink.record(AuditEvent {
        time_ms: crate::state::now_ms(),
        actor: user.to_owned(),
        source: source.to_string(),
        action: action::LOGIN.to_owned(),
        resource: user.to_owned(),
        success: status == 200,
        status,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_meta::{AuditChain, AuditEntry, MetaError};
    use std::sync::Mutex;

    /// A store that records the batches the writer hands it and can be made
    /// to fail, to test batching and retries (the SQL side is tested against
    /// real SQLite and PostgreSQL in berth-meta's suite). The writer only
    /// appends; the other methods are never called.
    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<Vec<AuditEvent>>>,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl AuditStore for Recorder {
        async fn append_audit(&self, events: &[AuditEvent]) -> Result<Vec<AuditEntry>, MetaError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(MetaError::Database("down".into()));
            }
            self.batches.lock().unwrap().push(events.to_vec());
            Ok(Vec::new())
        }
        async fn audit_entries(&self, _: i64, _: usize) -> Result<Vec<AuditEntry>, MetaError> {
            unreachable!("the writer never reads entries")
        }
        async fn audit_chain(&self) -> Result<AuditChain, MetaError> {
            unreachable!("the writer never reads the chain head")
        }
        async fn prune_audit(&self, _: i64, _: usize) -> Result<u64, MetaError> {
            unreachable!("the writer never prunes")
        }
    }

    fn event(n: u16) -> AuditEvent {
        AuditEvent {
            time_ms: 1,
            actor: "a".into(),
            source: "::1".into(),
            action: "pull".into(),
            resource: "r".into(),
            success: true,
            status: n,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn batches_by_size_and_interval_and_flushes_on_shutdown() {
        let store = Arc::new(Recorder::default());
        let opts = AuditOptions { capacity: 100, batch: 3, interval: Duration::from_millis(100) };
        let (sink, writer) = AuditSink::start(store.clone(), opts);
        for n in 0..4 {
            sink.record(event(n));
        }
        // Three fill a batch at once; the fourth waits for the interval.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.batches.lock().unwrap().len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let sizes: Vec<usize> = store.batches.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 1]);
        sink.record(event(9));
        writer.shutdown(Duration::from_secs(1)).await;
        let all: Vec<u16> = store.batches.lock().unwrap().concat().iter().map(|e| e.status).collect();
        assert_eq!(all, [0, 1, 2, 3, 9], "in order, the last flushed at shutdown");
        assert_eq!(sink.dropped(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let store = Arc::new(Recorder::default());
        store.fail.store(true, Ordering::SeqCst);
        let opts = AuditOptions { capacity: 4, batch: 2, interval: Duration::from_millis(10) };
        let (sink, writer) = AuditSink::start(store.clone(), opts);
        for n in 0..20 {
            sink.record(event(n));
        }
        assert!(sink.dropped() >= 14, "{}", sink.dropped());
        // The database comes back: what was held is appended, in order.
        store.fail.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(10)).await;
        writer.shutdown(Duration::from_secs(1)).await;
        let kept = store.batches.lock().unwrap().concat().len() as u64;
        assert_eq!(kept + sink.dropped(), 20);
        assert!(AuditSink::disabled().dropped() == 0 && !AuditSink::disabled().enabled());
    }
}
