//! Metrics and health, black box: the debug listener (`http.debug.addr`)
//! serves Distribution's `/debug/health` and, with
//! `http.debug.prometheus.enabled`, the Prometheus text under Distribution's
//! names (`registry_http_requests_total{code,handler,method}` with promhttp's
//! lower-case methods and Distribution's route names as `handler`); the main
//! listener answers Kubernetes' `/healthz` and `/readyz`. Scrapes are read
//! with a real parser (`prometheus-parse`), and counters must move by exactly
//! the requests made. With `berth.metrics.token` the main listener serves the
//! same text at `/metrics` to requests bearing the token.

mod common;

use common::{options, Reg, OCI_MANIFEST};
use prometheus_parse::{Scrape, Value};
use std::collections::HashMap;

fn debug_options() -> berth_testkit::BerthOptions {
    options().env("REGISTRY_HTTP_DEBUG_ADDR", "127.0.0.1:0").env("REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED", "true")
}

fn debug_url(reg: &Reg, path: &str) -> String {
    let addr = reg.server.debug_addr().expect("berth printed its debug listener's address");
    format!("http://{addr}{path}")
}

fn scrape(reg: &Reg) -> Scrape {
    let resp = reg.http.get(debug_url(reg, "/metrics")).send().unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().unwrap();
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The value of the sample `name` whose labels include all of `labels`; 0 when absent.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let wanted: HashMap<&str, &str> = labels.iter().copied().collect();
    let matching: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && wanted.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            Value::Summary(_) => panic!("{name} is a summary"),
        })
        .collect();
    assert!(matching.len() <= 1, "{name}{labels:?} matches several series");
    matching.first().copied().unwrap_or(0.0)
}

const MANIFEST_GET_200: [(&str, &str); 3] = [("handler", "manifest"), ("method", "get"), ("code", "200")];

#[test]
fn counters_move_by_exactly_the_requests_made() {
    let reg = Reg::start_with(debug_options());
    let image = reg.push_image("team/app", "v1");

    let before = scrape(&reg);
    for _ in 0..3 {
        let r = reg.req(reqwest::Method::GET, "/v2/team/app/manifests/v1").header("accept", OCI_MANIFEST).send();
        assert_eq!(r.unwrap().status(), 200);
    }
    assert_eq!(reg.get("/v2/team/app/manifests/nope").status(), 404);
    assert_eq!(reg.get(&format!("/v2/team/app/blobs/{}", image.layer_digest)).status(), 200);
    assert_eq!(reg.head("/v2/").status(), 200);
    let after = scrape(&reg);

    let delta = |name: &str, labels: &[(&str, &str)]| value(&after, name, labels) - value(&before, name, labels);
    let total = "registry_http_requests_total";
    assert_eq!(delta(total, &MANIFEST_GET_200), 3.0);
    assert_eq!(delta(total, &[("handler", "manifest"), ("method", "get"), ("code", "404")]), 1.0);
    assert_eq!(delta(total, &[("handler", "blob"), ("method", "get"), ("code", "200")]), 1.0);
    assert_eq!(delta(total, &[("handler", "base"), ("method", "head"), ("code", "200")]), 1.0);
    // The push: two blobs through monolithic POST … PUT or a single POST, and one manifest PUT.
    assert_eq!(value(&before, total, &[("handler", "manifest"), ("method", "put"), ("code", "201")]), 1.0);

    let count = "registry_http_request_duration_seconds_count";
    assert_eq!(delta(count, &[("handler", "manifest"), ("method", "get")]), 4.0);
    // go-metrics' size histograms, by handler only: the blob GET sent the
    // layer's bytes; the HEAD of /v2/ sent no body.
    let blob = [("handler", "blob")];
    assert_eq!(delta("registry_http_response_size_bytes_sum", &blob), image.layer.len() as f64);
    assert_eq!(delta("registry_http_response_size_bytes_count", &[("handler", "manifest")]), 4.0);
    assert_eq!(delta("registry_http_response_size_bytes_sum", &[("handler", "base")]), 0.0);
    assert_eq!(delta("registry_http_request_size_bytes_count", &[("handler", "base")]), 1.0);
    assert_eq!(value(&after, "registry_http_in_flight_requests", &[("handler", "manifest")]), 0.0);

    // Distribution's storage timer: the blob GET opened one blob for reading.
    let reads = [("action", "Reader"), ("driver", "filesystem")];
    assert_eq!(delta("registry_storage_action_seconds_count", &reads), 1.0);

    // Of the four manifest reads, the tagged ones after the first come from the cache.
    let hits = delta("berth_manifest_cache_hits_total", &[]);
    let misses = delta("berth_manifest_cache_misses_total", &[]);
    assert_eq!(hits + misses, 4.0, "every manifest read is a hit or a miss");

    let text = reg.http.get(debug_url(&reg, "/metrics")).send().unwrap().text().unwrap();
    assert!(!text.contains("team/app"), "repository names never become labels");
}

#[test]
fn health_endpoints_answer_when_healthy() {
    let reg = Reg::start_with(debug_options());
    let r = reg.get("/healthz");
    assert_eq!(r.status(), 200);
    let r = reg.get("/readyz");
    assert_eq!(r.status(), 200);
    let r = reg.http.get(debug_url(&reg, "/debug/health")).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().unwrap(), "{}", "Distribution's healthy answer");
    // The main listener serves no metrics and the debug one no registry.
    assert_eq!(reg.get("/metrics").status(), 404);
    assert_eq!(reg.http.get(debug_url(&reg, "/v2/")).send().unwrap().status(), 404);
}

#[test]
fn the_debug_listener_is_off_unless_configured_and_metrics_only_when_enabled() {
    let reg = Reg::start();
    assert_eq!(reg.server.debug_addr(), None);

    let reg = Reg::start_with(options().env("REGISTRY_HTTP_DEBUG_ADDR", "127.0.0.1:0"));
    assert_eq!(reg.http.get(debug_url(&reg, "/debug/health")).send().unwrap().status(), 200);
    assert_eq!(reg.http.get(debug_url(&reg, "/metrics")).send().unwrap().status(), 404);

    let reg = Reg::start_with(debug_options().env("REGISTRY_HTTP_DEBUG_PROMETHEUS_PATH", "/prom"));
    assert_eq!(reg.http.get(debug_url(&reg, "/prom")).send().unwrap().status(), 200);
}

#[test]
fn the_main_listener_serves_metrics_only_with_the_token() {
    let token = "scrape-0f9e8d";
    let reg = Reg::start_with(
        debug_options().env("REGISTRY_BERTH_METRICS_TOKEN", token).env("REGISTRY_HTTP_PREFIX", "/registry/"),
    );
    let metrics = |auth: Option<&str>| {
        let mut r = reg.http.get(reg.url("/metrics"));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send().unwrap()
    };
    for refused in [None, Some("Bearer wrong"), Some("Bearer "), Some("Basic c2NyYXBlOnNjcmFwZS0wZjllOGQ=")] {
        let r = metrics(refused);
        assert_eq!(r.status(), 401, "{refused:?}");
        assert_eq!(r.headers()["www-authenticate"], r#"Bearer realm="metrics""#);
    }
    let before = scrape(&reg);
    let r = metrics(Some(&format!("bearer {token}")));
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    // The same text as the debug listener, read by a real parser; outside
    // `http.prefix`, and not a registry request itself.
    let text = r.text().unwrap();
    let main = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let after = scrape(&reg);
    let total = |s: &Scrape| s.samples.iter().filter(|s| s.metric == "registry_http_requests_total").count();
    assert_eq!((total(&before), total(&main), total(&after)), (0, 0, 0), "no registry request was made");
    assert!(main.docs.contains_key("registry_http_request_size_bytes"), "{text}");
    let library = main.samples.iter().find(|s| s.metric == "berth_project_storage_bytes");
    assert_eq!(library.map(|s| (s.labels.get("project"), &s.value)), Some((Some("library"), &Value::Gauge(0.0))));
    assert_eq!(reg.get("/registry/v2/").status(), 200);

    // Without a token there is no /metrics on the main listener.
    let plain = Reg::start();
    assert_eq!(plain.http.get(plain.url("/metrics")).bearer_auth(token).send().unwrap().status(), 404);
}

#[test]
fn readiness_fails_naming_the_database_when_postgresql_stops() {
    let pg = berth_testkit::Postgres::start().unwrap();
    let reg = Reg::start_with(debug_options().env("REGISTRY_BERTH_DATABASE_URL", pg.url("postgres")));
    assert_eq!(reg.get("/readyz").status(), 200);
    drop(pg);

    let r = reg.get("/readyz");
    assert_eq!(r.status(), 503);
    let body = r.text().unwrap();
    assert!(body.contains("database"), "{body}");
    assert!(!body.contains("storage"), "the storage still answers: {body}");
    let r = reg.http.get(debug_url(&reg, "/debug/health")).send().unwrap();
    assert_eq!(r.status(), 503);
    let checks: serde_json::Value = r.json().unwrap();
    assert!(checks.get("database").is_some(), "{checks}");
    assert_eq!(reg.get("/healthz").status(), 200, "alive, though not ready");
}
