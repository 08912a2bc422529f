//! Harbor-style webhooks against the real binary: a policy made through the
//! admin API sends Harbor's documented payloads (Default and CloudEvents)
//! to local listeners, signed with HMAC-SHA256 over the body, retried after
//! failures with backoff until `maxattempts`, each outcome in the policy's
//! delivery log; a name that resolves to loopback is refused when sending.

mod common;

use common::admin::{start_admin, AdminApi, ADMIN, ADMIN_PW};
use common::receiver::{Received, Receiver};
use common::{options, OCI_MANIFEST};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn start(allow_loopback: bool, max_attempts: u32) -> AdminApi {
    let mut opts = options()
        .env("REGISTRY_BERTH_WEBHOOKS_BACKOFF", "200ms")
        .env("REGISTRY_BERTH_WEBHOOKS_MAXATTEMPTS", max_attempts.to_string())
        .env("REGISTRY_BERTH_WEBHOOKS_TIMEOUT", "3s");
    if allow_loopback {
        opts = opts.env("REGISTRY_BERTH_WEBHOOKS_ALLOWNETS", "[127.0.0.1/32]");
    }
    start_admin(opts)
}

/// HMAC-SHA256 of `body` under `secret`, as the receiver checks it (GitHub's scheme).
fn expected_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2_010::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn policy(a: &AdminApi, project: &str, targets: Value) -> i64 {
    let body = json!({
        "name": "ci",
        "enabled": true,
        "event_types": ["PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT", "QUOTA_EXCEED"],
        "targets": targets,
    });
    let v = a.ok(ADMIN, Method::POST, &format!("/projects/{project}/webhook/policies"), Some(body));
    v["id"].as_i64().unwrap_or_else(|| panic!("no id: {v}"))
}

fn deliveries(a: &AdminApi, project: &str, id: i64) -> Vec<Value> {
    let v = a.ok(ADMIN, Method::GET, &format!("/projects/{project}/webhook/policies/{id}/deliveries"), None);
    v.as_array().cloned().or_else(|| v["items"].as_array().cloned()).unwrap_or_else(|| panic!("{v}"))
}

/// Waits (bounded) until the delivery log satisfies `done`.
fn wait_log(a: &AdminApi, project: &str, id: i64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let log = deliveries(a, project, id);
        if done(&log) {
            return log;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "delivery log: {log:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn accepted<'a>(all: &'a [Received], event: &str) -> Vec<&'a Received> {
    all.iter()
        .filter(|r| r.answered == 200 && r.headers.get("x-berth-event").map(String::as_str) == Some(event))
        .collect()
}

#[test]
fn pushes_pulls_and_quota_refusals_reach_the_policy_signed_and_retried() {
    let mut a = start(true, 5);
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team"})));
    let signed = Receiver::start(2);
    let cloud = Receiver::start(0);
    let id = policy(
        &a,
        "team",
        json!([
            {"type": "http", "address": signed.url("/hook"), "secret": "s3cr3t", "auth_header": "Bearer abc",
             "payload_format": "Default"},
            {"type": "http", "address": cloud.url("/ce"), "payload_format": "CloudEvents"},
        ]),
    );
    a.push_as(("admin", ADMIN_PW), "team/app");
    let image = a.reg.push_image("team/app", "v1");

    // The first two attempts are refused; the third, 200 ms and 400 ms later, is taken.
    let got = signed.wait_for(Duration::from_secs(30), |r| !accepted(r, "PUSH_ARTIFACT").is_empty());
    let pushes: Vec<&Received> = got.iter().filter(|r| r.headers["x-berth-event"] == "PUSH_ARTIFACT").collect();
    assert_eq!(pushes.iter().map(|r| r.answered).collect::<Vec<_>>(), [503, 503, 200]);
    assert!(pushes.iter().all(|r| r.body == pushes[0].body), "every attempt sends the same bytes");
    let push = pushes[2];
    assert_eq!(push.headers["x-berth-signature-256"], expected_signature("s3cr3t", &push.body));
    assert_eq!(push.headers["authorization"], "Bearer abc");
    assert_eq!(push.headers["content-type"], "application/json");
    // Harbor's documented Default payload.
    let v = push.json();
    assert_eq!(v["type"], "PUSH_ARTIFACT");
    assert_eq!(v["operator"], "admin");
    let age = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
        - v["occur_at"].as_i64().unwrap();
    assert!((0..60).contains(&age), "occur_at is a Unix time in seconds: {v}");
    let host = a.reg.server.addr().to_string();
    assert_eq!(
        v["event_data"]["resources"],
        json!([{"digest": image.digest, "tag": "v1", "resource_url": format!("{host}/team/app:v1")}])
    );
    let repo = &v["event_data"]["repository"];
    assert_eq!((repo["name"].as_str(), repo["namespace"].as_str()), (Some("app"), Some("team")));
    assert_eq!((repo["repo_full_name"].as_str(), repo["repo_type"].as_str()), (Some("team/app"), Some("private")));

    // The CloudEvents target: same data, CloudEvents' envelope, no signature without a secret.
    let got = cloud.wait_for(Duration::from_secs(10), |r| !accepted(r, "PUSH_ARTIFACT").is_empty());
    let ce = accepted(&got, "PUSH_ARTIFACT")[0];
    assert_eq!(ce.headers["content-type"], "application/cloudevents+json");
    assert!(!ce.headers.contains_key("x-berth-signature-256"));
    let c = ce.json();
    assert_eq!((c["specversion"].as_str(), c["type"].as_str()), (Some("1.0"), Some("harbor.artifact.pushed")));
    assert_eq!(c["source"], format!("/projects/team/webhook/policies/{id}"));
    assert_eq!(c["data"]["resources"], v["event_data"]["resources"]);

    // A GET of the manifest is a pull; a HEAD is not.
    let head = a.reg.req(Method::HEAD, "/v2/team/app/manifests/v1").header("accept", OCI_MANIFEST).send().unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    let get = a.reg.req(Method::GET, "/v2/team/app/manifests/v1").header("accept", OCI_MANIFEST).send().unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    let got = cloud.wait_for(Duration::from_secs(10), |r| !accepted(r, "PULL_ARTIFACT").is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(accepted(&cloud.all(), "PULL_ARTIFACT").len(), 1, "{got:?}");

    // Over the quota: refused with DENIED, and the policy hears QUOTA_EXCEED.
    a.ok(ADMIN, Method::PUT, "/projects/team/quota", Some(json!({"limit": 1})));
    let big = common::random_bytes(4096);
    let loc = a.reg.start_upload("team/app");
    let resp = a
        .reg
        .req(Method::PUT, &common::with_query(&loc, &format!("digest={}", common::sha256(&big))))
        .body(big)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let got = cloud.wait_for(Duration::from_secs(10), |r| !accepted(r, "QUOTA_EXCEED").is_empty());
    let q = accepted(&got, "QUOTA_EXCEED")[0].json();
    assert_eq!(q["type"], "harbor.quota.exceeded");
    assert!(q["data"]["custom_attributes"]["Details"].as_str().unwrap().contains("storage quota"), "{q}");

    // The delivery log: the signed target's push took three attempts.
    let log = wait_log(&a, "team", id, |l| l.iter().filter(|d| d["event_type"] == "PUSH_ARTIFACT").count() == 2);
    let mut push_log: Vec<&Value> = log.iter().filter(|d| d["event_type"] == "PUSH_ARTIFACT").collect();
    push_log.sort_by_key(|d| d["attempts"].as_u64());
    assert_eq!(push_log[0]["status"], "delivered");
    assert_eq!(push_log[0]["attempts"], 1);
    assert_eq!(push_log[1]["status"], "delivered");
    assert_eq!(push_log[1]["attempts"], 3);
    assert_eq!(push_log[1]["last_status"], 200);
}

#[test]
fn a_target_that_keeps_failing_is_given_up_after_maxattempts() {
    let a = start(true, 3);
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team"})));
    let down = Receiver::start(1000);
    let id = policy(&a, "team", json!([{"type": "http", "address": down.url("/hook")}]));
    let mut a = a;
    a.push_as(("admin", ADMIN_PW), "team/app");
    a.reg.push_image("team/app", "v1");
    let log = wait_log(&a, "team", id, |l| l.iter().any(|d| d["status"] == "failed"));
    let failed = log.iter().find(|d| d["status"] == "failed").unwrap();
    assert_eq!(failed["attempts"], 3);
    assert_eq!(failed["last_status"], 503);
    assert!(failed["last_error"].as_str().unwrap().contains("503"), "{failed}");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(down.all().len(), 3, "no attempt after the last");
}

#[test]
fn a_name_resolving_to_loopback_is_refused_when_sending() {
    let a = start(false, 2);
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team"})));
    let listener = Receiver::start(0);
    // A literal loopback address is refused when the policy is written…
    let literal = json!({"name": "x", "event_types": ["PUSH_ARTIFACT"],
                         "targets": [{"type": "http", "address": listener.url("/hook")}]});
    let (status, _) = a.call(ADMIN, Method::POST, "/projects/team/webhook/policies", Some(literal));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // …a name is resolved only when sending, and refused then (no rebinding around the check).
    let named = format!("http://localhost:{}/hook", listener.addr.port());
    let id = policy(&a, "team", json!([{"type": "http", "address": named}]));
    let mut a = a;
    a.push_as(("admin", ADMIN_PW), "team/app");
    a.reg.push_image("team/app", "v1");
    let log = wait_log(&a, "team", id, |l| l.iter().any(|d| d["status"] == "failed"));
    let failed = log.iter().find(|d| d["status"] == "failed").unwrap();
    assert!(failed["last_error"].as_str().unwrap().contains("loopback"), "{failed}");
    assert!(listener.all().is_empty(), "nothing reached the loopback listener");
}

/// Two nodes sharing PostgreSQL: events pushed through either are each
/// delivered once, whichever node's worker claims them (retries included).
#[test]
fn two_nodes_deliver_each_event_once() {
    let pg = berth_testkit::Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let root = dir.path().join("blobs");
    let node = || {
        common::Reg::start_with(
            common::admin::cluster_node(&root, &pg.url("postgres"), &pwfile)
                .env("REGISTRY_BERTH_WEBHOOKS_ALLOWNETS", "[127.0.0.1/32]")
                .env("REGISTRY_BERTH_WEBHOOKS_BACKOFF", "100ms"),
        )
    };
    let mut a = AdminApi { reg: node(), http: reqwest::blocking::Client::new(), dir };
    let mut b = node();
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team"})));
    let hooks = Receiver::start(4);
    let id = policy(&a, "team", json!([{"type": "http", "address": hooks.url("/hook")}]));
    // The other node reloads policies every 5 s.
    std::thread::sleep(Duration::from_secs(6));
    a.push_as(("admin", ADMIN_PW), "team/app");
    b.http = a.reg.http.clone();
    let image = a.reg.push_image("team/app", "t0");
    for i in 1..10 {
        let via = if i % 2 == 0 { &a.reg } else { &b };
        via.push_manifest("team/app", &format!("t{i}"), OCI_MANIFEST, &image.manifest);
    }
    let got = hooks.wait_for(Duration::from_secs(30), |r| accepted(r, "PUSH_ARTIFACT").len() >= 10);
    std::thread::sleep(Duration::from_secs(1));
    let all = hooks.all();
    let mut tags: Vec<String> = accepted(&all, "PUSH_ARTIFACT")
        .iter()
        .map(|r| r.json()["event_data"]["resources"][0]["tag"].as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    let want: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    assert_eq!(tags, want, "each event accepted exactly once: {got:?}");
    let log = deliveries(&a, "team", id);
    assert_eq!(log.len(), 10);
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:#?}");
    let attempts: u64 = log.iter().map(|d| d["attempts"].as_u64().unwrap()).sum();
    assert_eq!(attempts as usize, all.len(), "every attempt recorded once");
}

/// `berth admin webhooks`: create with a secret from stdin, list, disable,
/// and read the delivery log, against a server delivering to a listener.
#[test]
fn the_cli_manages_policies_and_shows_deliveries() {
    let mut a = start(true, 3);
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team"})));
    let hooks = Receiver::start(0);
    let session = a.dir.path().join("cli").join("admin.json");
    let cli = |args: &[&str], stdin: &str| {
        let out = common::admin::berth_admin(&session, args, stdin);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{args:?}: {text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    cli(&["login", &a.reg.server.url(), "-u", "admin"], &format!("{ADMIN_PW}\n"));
    let created = cli(
        &[
            "--json",
            "webhooks",
            "create",
            "team",
            "ci",
            &hooks.url("/hook"),
            "--events",
            "PUSH_ARTIFACT",
            "--secret-stdin",
        ],
        "cli-secret\n",
    );
    // `--json` prints rows, here one.
    let policy: Value = serde_json::from_str::<Value>(&created).unwrap_or_else(|e| panic!("{e}: {created}"))[0].clone();
    let id = policy["id"].as_i64().unwrap();
    assert_eq!(policy["targets"][0]["secret"], "********");
    let list = cli(&["webhooks", "list", "team"], "");
    assert!(list.contains("ci") && list.contains("PUSH_ARTIFACT") && list.contains(&hooks.url("/hook")), "{list}");

    a.push_as(("admin", ADMIN_PW), "team/app");
    a.reg.push_image("team/app", "v1");
    let got = hooks.wait_for(Duration::from_secs(15), |r| !accepted(r, "PUSH_ARTIFACT").is_empty());
    let push = accepted(&got, "PUSH_ARTIFACT")[0];
    assert_eq!(push.headers["x-berth-signature-256"], expected_signature("cli-secret", &push.body));
    wait_log(&a, "team", id, |l| l.iter().any(|d| d["status"] == "delivered"));
    let log = cli(&["webhooks", "deliveries", "team", &id.to_string()], "");
    assert!(log.contains("PUSH_ARTIFACT") && log.contains("delivered"), "{log}");

    // Disabled: the next push is not sent; the secret survived the round trip.
    cli(&["webhooks", "disable", "team", &id.to_string()], "");
    let shown = serde_json::from_str::<Value>(&cli(&["--json", "webhooks", "show", "team", &id.to_string()], ""))
        .unwrap()[0]
        .clone();
    assert_eq!((shown["enabled"].as_bool(), shown["targets"][0]["secret"].as_str()), (Some(false), Some("********")));
    a.reg.push_manifest("team/app", "v2", OCI_MANIFEST, &a.reg.get("/v2/team/app/manifests/v1").bytes().unwrap());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(accepted(&hooks.all(), "PUSH_ARTIFACT").len(), 1, "a disabled policy sends nothing");
}

/// A retention run through the API is announced as Harbor's `TAG_RETENTION`
/// with what it removed (here a dry run: what it would remove).
#[test]
fn a_retention_run_is_announced() {
    let mut a = start(true, 3);
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team"})));
    let hooks = Receiver::start(0);
    let body = json!({"name": "retention", "event_types": ["TAG_RETENTION"],
                      "targets": [{"type": "http", "address": hooks.url("/hook")}]});
    a.ok(ADMIN, Method::POST, "/projects/team/webhook/policies", Some(body));
    a.push_as(("admin", ADMIN_PW), "team/app");
    a.reg.push_image("team/app", "old");
    std::thread::sleep(Duration::from_millis(20));
    a.reg.push_image("team/app", "new");
    // Harbor's policy JSON: keep the most recently pushed artifact.
    let policy = json!({"algorithm": "or", "rules": [{"disabled": false, "action": "retain", "template": "latestPushedK",
        "params": {"latestPushedK": 1},
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}],
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}}});
    a.ok(ADMIN, Method::PUT, "/projects/team/retention", Some(policy));
    let run = a.ok(ADMIN, Method::POST, "/projects/team/retention/runs", Some(json!({"dry_run": true})));
    let got = hooks.wait_for(Duration::from_secs(15), |r| !accepted(r, "TAG_RETENTION").is_empty());
    let v = accepted(&got, "TAG_RETENTION")[0].json();
    assert_eq!(v["type"], "TAG_RETENTION");
    assert_eq!(v["operator"], "MANUAL");
    let r = &v["event_data"]["retention"];
    assert_eq!((r["total"].as_u64(), r["retained"].as_u64()), (Some(2), Some(1)));
    assert_eq!(r["project_name"], "team");
    assert_eq!(r["retention_run_id"], run["id"]);
    assert_eq!(r["dry_run"], true);
    let deleted = r["deleted_artifact"].as_array().unwrap();
    assert_eq!(deleted.len(), 1, "{r}");
    assert!(deleted[0]["name_tag"].as_str().unwrap().ends_with(":old"), "{r}");
}
