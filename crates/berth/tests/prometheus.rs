//! A real Prometheus (Debian's `prometheus`) scrapes a real Berth every
//! second, through the debug listener and through the main listener's
//! token-protected `/metrics` with the README's scrape configuration. Then
//! the registry panels of Harbor's Grafana dashboard (goharbor/harbor
//! `contrib/grafana-dashboard/metrics-example.json`), the usual
//! Distribution request-rate and latency queries, and every alert expression
//! in the README are evaluated through its HTTP API: each must parse, return
//! a vector, and name the handlers the traffic went through.
//!
//! Without Prometheus the test fails (scripts/test installs it), unless
//! `BERTH_SKIP_PROMETHEUS` is set.

mod common;

use berth_testkit::Prometheus;
use common::admin::{start_admin, ADMIN, ADMIN_PW};
use common::{options, OCI_MANIFEST};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const TOKEN: &str = "scrape-token-4f1c9b27d0";

/// Harbor's dashboard, row "Registry Metric", verbatim.
const HARBOR_PANELS: [&str; 5] = [
    "registry_http_in_flight_requests",
    "rate(registry_http_requests_total[5m])",
    "histogram_quantile(0.9, rate(registry_http_request_duration_seconds_bucket[10m]))",
    "histogram_quantile(0.9, rate(registry_http_request_size_bytes_bucket[10m]))",
    "histogram_quantile(0.9, rate(registry_http_response_size_bytes_bucket[10m]))",
];

struct Prom(Prometheus);

impl Prom {
    /// `/api/v1/query` at the present: the result vector; panics on an error.
    fn query(&self, expr: &str) -> Vec<Value> {
        let body = self.0.get("/api/v1/query", &[("query", expr)]).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{expr}: {e}: {body}"));
        assert_eq!(v["status"], "success", "{expr}: {v}");
        assert_eq!(v["data"]["resultType"], "vector", "{expr}: {v}");
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `expr` until `done` holds for its result (at most 60 s).
    fn wait_for(&self, expr: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let result = self.query(expr);
            if done(&result) {
                return result;
            }
            assert!(Instant::now() < deadline, "{expr} still {result:?}\n{}", self.0.log_tail(20));
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn value(sample: &Value) -> f64 {
    sample["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

fn labels(result: &[Value], name: &str) -> BTreeSet<String> {
    result.iter().filter_map(|s| s["metric"][name].as_str().map(str::to_owned)).collect()
}

/// The README's alert rules: (alert, expr) of each `- alert:` / `expr:` pair.
fn readme_alerts() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let mut alerts = Vec::new();
    let mut name = None;
    for line in readme.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("- alert:") {
            name = Some(n.trim().to_owned());
        } else if let (Some(expr), Some(n)) = (line.strip_prefix("expr:"), name.take()) {
            alerts.push((n, expr.trim().to_owned()));
        }
    }
    alerts
}

fn start_prometheus(scrape_configs: &str) -> Option<Prom> {
    match Prometheus::start(scrape_configs) {
        Ok(p) => Some(Prom(p)),
        Err(e) if std::env::var_os("BERTH_SKIP_PROMETHEUS").is_some() => {
            eprintln!("SKIPPED: Prometheus is not available here and BERTH_SKIP_PROMETHEUS is set: {e}");
            None
        }
        Err(e) => panic!("{e}\n(scripts/test installs Debian's `prometheus`; set BERTH_SKIP_PROMETHEUS=1 to skip)"),
    }
}

#[test]
fn harbor_dashboard_and_readme_alerts_evaluate_against_real_scrapes() {
    let opts = options()
        .env("REGISTRY_HTTP_DEBUG_ADDR", "127.0.0.1:0")
        .env("REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED", "true")
        .env("REGISTRY_BERTH_METRICS_TOKEN", TOKEN);
    let mut api = start_admin(opts);
    api.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team-a"})));
    api.push_as(("admin", ADMIN_PW), "team-a/app");
    let reg = &api.reg;
    // Before the first scrape: a push, one pull, and a quota the project
    // nearly fills (the project gauges are read once per 15 s).
    let image = reg.push_image("team-a/app", "v1");
    let pull = || reg.req(Method::GET, "/v2/team-a/app/manifests/v1").header("accept", OCI_MANIFEST).send().unwrap();
    assert_eq!(pull().status(), 200);
    let used = api.ok(ADMIN, Method::GET, "/projects/team-a/quota", None)["used"].as_u64().unwrap();
    api.ok(ADMIN, Method::PUT, "/projects/team-a/quota", Some(json!({"limit": used + 1})));

    let token_file = api.dir.path().join("berth-metrics-token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let (main, debug) = (reg.server.addr(), reg.server.debug_addr().unwrap());
    let Some(prom) = start_prometheus(&format!(
        "  - job_name: berth
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials_file: {}
    static_configs:
      - targets: [\"{main}\"]
  - job_name: berth-debug
    static_configs:
      - targets: [\"{debug}\"]
  - job_name: berth-wrong-token
    authorization:
      credentials: not-the-token
    static_configs:
      - targets: [\"{main}\"]
",
        token_file.display()
    )) else {
        return;
    };
    let up = prom.wait_for("up", |r| r.len() == 3);
    for s in &up {
        let expected = if s["metric"]["job"] == "berth-wrong-token" { 0.0 } else { 1.0 };
        assert_eq!(value(s), expected, "{s}: only the right token scrapes the main listener");
    }

    // Between scrapes: more pulls, a blob, the base endpoint and, last, a 404.
    for _ in 0..3 {
        assert_eq!(pull().status(), 200);
    }
    assert_eq!(reg.get(&format!("/v2/team-a/app/blobs/{}", image.layer_digest)).status(), 200);
    assert_eq!(reg.get("/v2/").status(), 200);
    assert_eq!(reg.get("/v2/team-a/app/manifests/nope").status(), 404);
    // Two scrapes of each target since the 404, so since all of the above.
    let missing = r#"count_over_time(registry_http_requests_total{handler="manifest",code="404"}[1m])"#;
    prom.wait_for(missing, |r| r.len() == 2 && r.iter().all(|s| value(s) >= 2.0));

    let traffic: BTreeSet<String> =
        ["base", "blob", "blob_upload", "blob_upload_chunk", "manifest"].map(String::from).into();
    let in_flight = prom.query(HARBOR_PANELS[0]);
    assert_eq!(labels(&in_flight, "handler").len(), 8, "every route has its gauge: {in_flight:?}");
    let rates = prom.query(HARBOR_PANELS[1]);
    assert!(labels(&rates, "handler").is_superset(&traffic), "{rates:?}");
    for (expr, handlers) in [
        (HARBOR_PANELS[2], &["manifest", "blob"][..]),
        (HARBOR_PANELS[3], &["manifest", "blob_upload_chunk"][..]),
        (HARBOR_PANELS[4], &["manifest", "blob"][..]),
    ] {
        let result = prom.query(expr);
        let seen = labels(&result, "handler");
        assert!(handlers.iter().all(|h| seen.contains(*h)), "{expr}: {result:?}");
    }

    // Distribution's request rate by route and status, and its p99 latency.
    let by_code = prom.query("sum(rate(registry_http_requests_total[1m])) by (handler, code)");
    let rate_of =
        |h: &str, c: &str| by_code.iter().find(|s| s["metric"]["handler"] == h && s["metric"]["code"] == c).map(value);
    assert!(rate_of("manifest", "200").is_some_and(|r| r > 0.0), "pulls between scrapes: {by_code:?}");
    for (h, c) in [("manifest", "404"), ("manifest", "201"), ("blob", "200"), ("base", "200")] {
        assert!(rate_of(h, c).is_some(), "{h} {c}: {by_code:?}");
    }
    let p99 = prom.query(
        "histogram_quantile(0.99, sum(rate(registry_http_request_duration_seconds_bucket[1m])) by (le, handler))",
    );
    let manifest = p99.iter().find(|s| s["metric"]["handler"] == "manifest").map(value);
    assert!(manifest.is_some_and(|v| v.is_finite() && v > 0.0), "{p99:?}");

    // The project gauges, read from the database.
    let stored = prom.query(r#"berth_project_storage_bytes{project="team-a"}"#);
    assert!(!stored.is_empty() && stored.iter().all(|s| value(s) == used as f64), "{stored:?}");

    let alerts = readme_alerts();
    assert!(alerts.len() >= 3, "the README's alert rules: {alerts:?}");
    for (alert, expr) in &alerts {
        let firing = prom.query(expr);
        match alert.as_str() {
            "RegistryServerErrors" => assert!(firing.is_empty(), "no 5xx was served: {firing:?}"),
            "RegistryProjectNearQuota" => assert_eq!(labels(&firing, "project"), ["team-a".to_owned()].into()),
            _ => {}
        }
    }
    assert!(alerts.iter().any(|(a, _)| a == "RegistryProjectNearQuota"));
}
