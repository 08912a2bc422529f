//! Prometheus metrics under Distribution's names, so its dashboards and
//! Harbor's alert rules work unchanged, plus Berth's own under `berth_`.
//!
//! Distribution instruments each route with docker/go-metrics (promhttp):
//! `registry_http_requests_total{code,handler,method}`,
//! `registry_http_request_duration_seconds{handler,method}` (buckets .005…60),
//! `registry_http_in_flight_requests{handler}`, and
//! `registry_http_request_size_bytes{handler}` /
//! `registry_http_response_size_bytes{handler}` (go-metrics'
//! `NewDefaultHttpMetrics`: histograms without `method`, buckets 1 KiB × 2^0…21).
//! `method` is lower case, as promhttp writes it. `handler` is the route's
//! name, never the repository.
//!
//! The request path only touches atomics laid out once at start (one slot per
//! handler × method × status): about five relaxed atomic operations a
//! request, no lock, no allocation. `prometheus-client` encodes them at scrape
//! time through a [`Collector`], and holds the `berth_` counters and gauges,
//! which are single atomics too (its labelled `Family` and `Histogram` take a
//! lock, so the per-request metrics do not use them).

use crate::route::Endpoint;
use http::request::Parts;
use http::{Method, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Distribution's route names (registry/api/v2 `RouteName*`).
const HANDLERS: [&str; 8] =
    ["base", "catalog", "tags", "manifest", "blob", "blob_upload", "blob_upload_chunk", "referrers"];
/// promhttp's sanitised methods; anything else is counted as `other`.
const METHODS: [&str; 7] = ["get", "head", "put", "post", "patch", "delete", "other"];
/// go-metrics' default duration buckets, in seconds.
const BUCKETS: [f64; 13] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0];
/// go-metrics' size buckets: `prometheus.ExponentialBuckets(1024, 2, 22)`, 1 KiB to 2 GiB.
const SIZE_BUCKETS: [f64; 22] = {
    let mut b = [0.0; 22];
    let mut i = 0;
    while i < b.len() {
        b[i] = (1024u64 << i) as f64;
        i += 1;
    }
    b
};
/// Status codes 100..=599 each have a slot.
const FIRST_CODE: u16 = 100;
const CODES: usize = 500;

/// The route a request took, as Distribution names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handler(usize);

impl Handler {
    pub fn of(endpoint: &Endpoint<'_>) -> Self {
        Handler(match endpoint {
            Endpoint::Base => 0,
            Endpoint::Catalog => 1,
            Endpoint::Tags { .. } => 2,
            Endpoint::Manifest { .. } => 3,
            Endpoint::Blob { .. } => 4,
            Endpoint::UploadStart { .. } => 5,
            Endpoint::Upload { .. } => 6,
            Endpoint::Referrers { .. } => 7,
        })
    }
}

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::PUT => 2,
        Method::POST => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        _ => 6,
    }
}

/// The per-request metrics: flat arrays of atomics indexed by
/// (handler, method[, code | bucket]).
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Box<[AtomicU64]>,
    in_flight: [AtomicI64; HANDLERS.len()],
    durations: Box<[Histogram]>,
    /// One per handler, as go-metrics labels sizes by handler only.
    request_sizes: Box<[Histogram]>,
    response_sizes: Box<[Histogram]>,
}

fn atomics(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl HttpMetrics {
    fn new() -> Self {
        let series = HANDLERS.len() * METHODS.len();
        HttpMetrics {
            requests: atomics(series * CODES),
            in_flight: Default::default(),
            durations: (0..series).map(|_| Histogram::new(&BUCKETS)).collect(),
            request_sizes: HANDLERS.iter().map(|_| Histogram::bytes(&SIZE_BUCKETS)).collect(),
            response_sizes: HANDLERS.iter().map(|_| Histogram::bytes(&SIZE_BUCKETS)).collect(),
        }
    }

    /// Counts a request in flight until the returned guard is finished or dropped.
    pub fn begin(&self, handler: Handler) -> InFlight<'_> {
        self.in_flight[handler.0].fetch_add(1, Relaxed);
        InFlight { metrics: self, handler, started: Instant::now() }
    }

    fn record(&self, handler: Handler, method: &Method, status: StatusCode, elapsed: Duration, sizes: (u64, u64)) {
        let series = handler.0 * METHODS.len() + method_index(method);
        let code = usize::from(status.as_u16().clamp(FIRST_CODE, FIRST_CODE + CODES as u16 - 1) - FIRST_CODE);
        self.requests[series * CODES + code].fetch_add(1, Relaxed);
        self.durations[series].observe(elapsed);
        self.request_sizes[handler.0].observe_raw(sizes.0);
        self.response_sizes[handler.0].observe_raw(sizes.1);
    }
}

/// promhttp's `computeApproximateRequestSize`: URL, method, protocol,
/// headers (`Host` among them) and the declared body length. A streamed
/// body without `Content-Length` counts as its head only, as there.
fn request_size(parts: &Parts) -> u64 {
    // "HTTP/1.1", "HTTP/2.0": Go's `Proto` is always eight bytes.
    const PROTO: usize = 8;
    let uri = parts.uri.authority().map_or(0, |a| a.as_str().len())
        + parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    let headers: usize = parts.headers.iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    let body = content_length(&parts.headers).unwrap_or(0);
    (uri + parts.method.as_str().len() + PROTO + headers) as u64 + body
}

/// The body bytes a response sends: promhttp counts what the handler
/// wrote, so nothing for `HEAD`. Read from the head, so a download cut
/// short still counts whole.
fn response_size<B: http_body::Body>(method: &Method, resp: &http::Response<B>) -> u64 {
    if *method == Method::HEAD {
        return 0;
    }
    content_length(resp.headers()).unwrap_or_else(|| {
        let hint = resp.body().size_hint();
        hint.exact().unwrap_or(hint.lower())
    })
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// A histogram on atomics: one relaxed add for the bucket, one for the sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Non-cumulative counts, one per bound and a last one for +Inf.
    counts: Box<[AtomicU64]>,
    /// In whole units observed (nanoseconds, bytes): integer adds stay exact.
    sum: AtomicU64,
    /// Observed units per exposed unit (1e9 nanoseconds a second).
    per_unit: f64,
}

impl Histogram {
    /// Durations, exposed in seconds.
    pub fn new(bounds: &'static [f64]) -> Self {
        Self::scaled(bounds, 1e9)
    }

    /// Sizes, exposed in bytes.
    pub fn bytes(bounds: &'static [f64]) -> Self {
        Self::scaled(bounds, 1.0)
    }

    fn scaled(bounds: &'static [f64], per_unit: f64) -> Self {
        Histogram { bounds, counts: atomics(bounds.len() + 1), sum: AtomicU64::new(0), per_unit }
    }

    pub fn observe(&self, elapsed: Duration) {
        self.observe_raw(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    /// `units` in the unit this histogram counts (nanoseconds or bytes).
    fn observe_raw(&self, units: u64) {
        let value = units as f64 / self.per_unit;
        // Prometheus buckets are `le`: the first bound not below the value.
        let bucket = self.bounds.partition_point(|&b| b < value);
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum.fetch_add(units, Relaxed);
    }

    /// Writes this series under `labels`; nothing while it is empty (as a
    /// labelled Prometheus histogram shows no series before its first use).
    pub fn encode(&self, family: &mut MetricEncoder<'_>, labels: &[(&str, &str)]) -> Result<(), std::fmt::Error> {
        // The encoder makes the counts cumulative itself.
        let buckets: Vec<(f64, u64)> = (self.counts.iter().enumerate())
            .map(|(i, c)| (self.bounds.get(i).copied().unwrap_or(f64::INFINITY), c.load(Relaxed)))
            .collect();
        let total = buckets.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return Ok(());
        }
        let sum = self.sum.load(Relaxed) as f64 / self.per_unit;
        family.encode_family(&labels)?.encode_histogram::<NoLabelSet>(sum, total, &buckets, None)
    }
}

/// A request being served; [`InFlight::finish`] records it.
pub struct InFlight<'a> {
    metrics: &'a HttpMetrics,
    handler: Handler,
    started: Instant,
}

impl InFlight<'_> {
    /// Records the request once its response head is ready.
    pub fn finish<B: http_body::Body>(self, parts: &Parts, resp: &http::Response<B>) {
        let sizes = (request_size(parts), response_size(&parts.method, resp));
        self.metrics.record(self.handler, &parts.method, resp.status(), self.started.elapsed(), sizes);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight[self.handler.0].fetch_sub(1, Relaxed);
    }
}

impl Collector for HttpMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "registry_http_requests",
            "Total number of HTTP requests made.",
            None,
            MetricType::Counter,
        )?;
        for (h, handler) in HANDLERS.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                let base = (h * METHODS.len() + m) * CODES;
                for (c, count) in self.requests[base..base + CODES].iter().enumerate() {
                    let n = count.load(Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let code = (c as u16 + FIRST_CODE).to_string();
                    let labels = [("code", code.as_str()), ("handler", handler), ("method", method)];
                    ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
                }
            }
        }

        let mut family = encoder.encode_descriptor(
            "registry_http_request_duration_seconds",
            "The HTTP request latencies in seconds.",
            None,
            MetricType::Histogram,
        )?;
        for (h, handler) in HANDLERS.iter().enumerate() {
            for (m, method) in METHODS.iter().enumerate() {
                let labels = [("handler", *handler), ("method", *method)];
                self.durations[h * METHODS.len() + m].encode(&mut family, &labels)?;
            }
        }

        for (name, help, sizes) in [
            ("registry_http_request_size_bytes", "The HTTP request sizes in bytes.", &self.request_sizes),
            ("registry_http_response_size_bytes", "The HTTP response sizes in bytes.", &self.response_sizes),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (h, handler) in HANDLERS.iter().enumerate() {
                sizes[h].encode(&mut family, &[("handler", *handler)])?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "registry_http_in_flight_requests",
            "The in-flight HTTP requests",
            None,
            MetricType::Gauge,
        )?;
        for (h, handler) in HANDLERS.iter().enumerate() {
            let labels = [("handler", *handler)];
            family.encode_family(&labels)?.encode_gauge(&self.in_flight[h].load(Relaxed))?;
        }
        Ok(())
    }
}

/// Berth's own metrics that are plain counters and gauges.
#[derive(Debug, Default, Clone)]
pub struct BerthMetrics {
    /// Upload requests (PATCH/PUT/… on a session) being served on this node.
    pub uploads_in_flight: Gauge,
    pub manifest_cache_hits: Counter,
    pub manifest_cache_misses: Counter,
    pub gc_runs: Counter,
    pub gc_bytes_freed: Counter,
}

impl BerthMetrics {
    /// A garbage collection inside this process finished.
    pub fn gc_finished(&self, bytes_freed: u64) {
        self.gc_runs.inc();
        self.gc_bytes_freed.inc_by(bytes_freed);
    }
}

/// A value read at scrape time from where it is already counted.
struct Sampled<F> {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    read: F,
}

impl<F> std::fmt::Debug for Sampled<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl<F: Fn() -> u64 + Send + Sync + 'static> Collector for Sampled<F> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let value = (self.read)();
        let metric = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        match self.kind {
            MetricType::Counter => ConstCounter::new(value).encode(metric),
            _ => prometheus_client::metrics::gauge::ConstGauge::new(value as i64).encode(metric),
        }
    }
}

/// Every metric, registered once when the [`crate::App`] is built.
#[derive(Debug)]
pub struct Metrics {
    pub http: Arc<HttpMetrics>,
    pub berth: BerthMetrics,
    /// Read from the metadata at scrape time ([`Metrics::refresh`]).
    projects: crate::db_gauges::DbGauges,
    registry: Registry,
}

impl Metrics {
    pub fn new(
        audit: &crate::audit::AuditSink,
        storage: Arc<crate::timed_store::StorageMetrics>,
        events: &crate::events::Events,
    ) -> Self {
        let http = Arc::new(HttpMetrics::new());
        let berth = BerthMetrics::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(http.clone()));
        registry.register_collector(Box::new(storage));
        let b = &berth;
        registry.register("berth_uploads_in_flight", "Upload requests being served", b.uploads_in_flight.clone());
        registry.register(
            "berth_manifest_cache_hits",
            "Manifest reads answered from the cache",
            b.manifest_cache_hits.clone(),
        );
        registry.register(
            "berth_manifest_cache_misses",
            "Manifest reads that went to the database",
            b.manifest_cache_misses.clone(),
        );
        registry.register("berth_gc_runs", "Scheduled garbage collections finished by this process", b.gc_runs.clone());
        registry.register("berth_gc_freed_bytes", "Blob bytes removed by garbage collection", b.gc_bytes_freed.clone());
        let sink = audit.clone();
        registry.register_collector(Box::new(Sampled {
            name: "berth_audit_events_dropped",
            help: "Audit events dropped because the queue was full",
            kind: MetricType::Counter,
            read: move || sink.dropped(),
        }));
        registry.register_collector(Box::new(crate::event_metrics::EventMetrics(events.clone())));
        let projects = crate::db_gauges::DbGauges::default();
        registry.register_collector(Box::new(projects.clone()));
        Metrics { http, berth, projects, registry }
    }

    /// Brings the metrics read from the database up to date before a scrape.
    pub async fn refresh(&self, meta: &Arc<dyn berth_meta::MetaStore>) {
        self.projects.refresh(meta).await;
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(m: &Metrics) -> String {
        m.encode()
    }

    fn metrics() -> Metrics {
        Metrics::new(
            &crate::audit::AuditSink::disabled(),
            Arc::new(crate::timed_store::StorageMetrics::new("filesystem")),
            &crate::events::Events::default(),
        )
    }

    /// A request as dispatch sees it: (parts, response).
    fn exchange(method: Method, status: StatusCode, body: &str) -> (Parts, http::Response<String>) {
        let (parts, ()) =
            http::Request::builder().method(method).uri("/v2/a/b/manifests/latest").body(()).unwrap().into_parts();
        (parts, http::Response::builder().status(status).body(body.to_owned()).unwrap())
    }

    #[test]
    fn requests_are_counted_by_handler_method_and_code() {
        let m = metrics();
        let manifest = Handler::of(&Endpoint::Manifest { name: "a/b", reference: "latest" });
        for _ in 0..3 {
            let (parts, resp) = exchange(Method::GET, StatusCode::OK, "{}");
            m.http.begin(manifest).finish(&parts, &resp);
        }
        let (parts, resp) = exchange(Method::HEAD, StatusCode::NOT_FOUND, "");
        m.http.begin(manifest).finish(&parts, &resp);
        let text = scrape(&m);
        assert!(
            text.contains(r#"registry_http_requests_total{code="200",handler="manifest",method="get"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"registry_http_requests_total{code="404",handler="manifest",method="head"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"registry_http_request_duration_seconds_count{handler="manifest",method="get"} 3"#),
            "{text}"
        );
        // Buckets are cumulative: all three are under 60 s and under +Inf.
        for le in ["60.0", "+Inf"] {
            let line = format!(
                r#"registry_http_request_duration_seconds_bucket{{le="{le}",handler="manifest",method="get"}} 3"#
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(!text.contains("a/b"), "repository names never become labels");
    }

    #[test]
    fn sizes_follow_promhttp_by_handler_only() {
        let m = metrics();
        let blob = Handler::of(&Endpoint::Blob { name: "x", digest: "sha256:0" });
        let (mut parts, mut resp) = exchange(Method::PUT, StatusCode::CREATED, "");
        parts.headers.insert("content-length", http::HeaderValue::from_static("5000"));
        resp.headers_mut().insert("content-length", http::HeaderValue::from_static("3000"));
        m.http.begin(blob).finish(&parts, &resp);
        // promhttp: URL, method, "HTTP/1.1", each header's name and value, the body.
        let url = "/v2/a/b/manifests/latest".len();
        let put = url + "PUT".len() + 8 + "content-length".len() + "5000".len() + 5000;
        // A HEAD sends no body, whatever Content-Length says.
        let (parts, mut resp) = exchange(Method::HEAD, StatusCode::OK, "");
        resp.headers_mut().insert("content-length", http::HeaderValue::from_static("3000"));
        m.http.begin(blob).finish(&parts, &resp);
        let head = url + "HEAD".len() + 8;
        let text = scrape(&m);
        for line in [
            format!("registry_http_request_size_bytes_sum{{handler=\"blob\"}} {}.0", put + head),
            "registry_http_request_size_bytes_bucket{le=\"8192.0\",handler=\"blob\"} 2".to_owned(),
            "registry_http_response_size_bytes_sum{handler=\"blob\"} 3000.0".to_owned(),
            "registry_http_response_size_bytes_bucket{le=\"1024.0\",handler=\"blob\"} 1".to_owned(),
            "registry_http_response_size_bytes_bucket{le=\"4096.0\",handler=\"blob\"} 2".to_owned(),
            "registry_http_response_size_bytes_bucket{le=\"2147483648.0\",handler=\"blob\"} 2".to_owned(),
        ] {
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(!text.contains("registry_http_response_size_bytes_bucket{le=\"4294967296.0\""), "22 buckets");
    }

    #[test]
    fn in_flight_goes_back_down_when_a_request_ends() {
        let m = metrics();
        let blob = Handler::of(&Endpoint::Blob { name: "x", digest: "sha256:0" });
        let guard = m.http.begin(blob);
        assert!(scrape(&m).contains(r#"registry_http_in_flight_requests{handler="blob"} 1"#));
        drop(guard);
        assert!(scrape(&m).contains(r#"registry_http_in_flight_requests{handler="blob"} 0"#));
    }
}
