//! Webhook policies through the admin API (`/api/v1/projects/{project}/webhook/policies`),
//! against the real binary. Expected behaviour is Harbor's (the swagger's
//! "webhook" tag, and rbac_role.go: ProjectAdmins change policies,
//! Maintainers list and read them, other roles nothing), with secrets and
//! auth headers never shown, and internal addresses refused.

mod common;

use common::admin::*;
use common::{header, next_link, options};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const MASK: &str = "********";

fn start() -> AdminApi {
    start_admin(options().env("REGISTRY_BERTH_AUDIT_ENABLED", "true"))
}

fn policies(project: &str) -> String {
    format!("/projects/{project}/webhook/policies")
}

fn policy(name: &str) -> Value {
    json!({
        "name": name,
        "description": "tell CI",
        "event_types": ["PUSH_ARTIFACT", "DELETE_ARTIFACT"],
        "targets": [
            {"type": "http", "address": "https://ci.example.com/hook", "auth_header": "Bearer abc",
             "secret": "hmac-key", "skip_cert_verify": true, "payload_format": "Default"},
            {"type": "http", "address": "http://chat.example.com/in", "payload_format": "CloudEvents"},
        ],
    })
}

/// A project `team-w` with a ProjectAdmin `padmin`; their credentials.
fn setup(a: &AdminApi) -> (&'static str, String) {
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team-w"})));
    ("padmin", a.user("padmin", Some(("team-w", "projectAdmin"))))
}

#[test]
fn policies_round_trip_with_secrets_masked_and_kept() {
    let a = start();
    let (u, pw) = setup(&a);
    let padmin = Some((u, pw.as_str()));

    let resp = a
        .http
        .post(a.reg.url(&format!("/api/v1{}", policies("team-w"))))
        .basic_auth(u, Some(&pw))
        .json(&policy("ci"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let loc = header(&resp, "location");
    let created: Value = resp.json().unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(loc, format!("/api/v1/projects/team-w/webhook/policies/{id}"));
    assert_eq!(created["name"], "ci");
    assert_eq!(created["project"], "team-w");
    assert_eq!(created["creator"], "padmin");
    assert_eq!(created["enabled"], true, "enabled by default");
    assert_eq!(created["event_types"], json!(["PUSH_ARTIFACT", "DELETE_ARTIFACT"]));
    assert_eq!(
        created["targets"],
        json!([
            {"type": "http", "address": "https://ci.example.com/hook", "auth_header": MASK,
             "skip_cert_verify": true, "payload_format": "Default", "secret": MASK},
            {"type": "http", "address": "http://chat.example.com/in", "auth_header": null,
             "skip_cert_verify": false, "payload_format": "CloudEvents", "secret": null},
        ])
    );
    let text = created.to_string();
    assert!(!text.contains("hmac-key") && !text.contains("Bearer abc"), "{text}");

    let list = a.ok(padmin, Method::GET, &policies("team-w"), None);
    assert_eq!(list, json!([created.clone()]));
    let one_path = format!("{}/{id}", policies("team-w"));
    assert_eq!(a.ok(padmin, Method::GET, &one_path, None), created);

    // GET, modify, PUT the answer back: the masked values stay set.
    let mut edited = created.clone();
    edited["enabled"] = json!(false);
    edited["event_types"] = json!(["PULL_ARTIFACT"]);
    edited["targets"][1]["secret"] = json!("new-key");
    let updated = a.ok(padmin, Method::PUT, &one_path, Some(edited));
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["event_types"], json!(["PULL_ARTIFACT"]));
    assert_eq!(updated["creator"], "padmin");
    assert_eq!((&updated["targets"][0]["secret"], &updated["targets"][0]["auth_header"]), (&json!(MASK), &json!(MASK)));
    assert_eq!(updated["targets"][1]["secret"], MASK);
    // A masked value cannot follow the target to a new address.
    let mut moved = updated.clone();
    moved["targets"][0]["address"] = json!("https://other.example.com/");
    let (s, v) = a.call(padmin, Method::PUT, &one_path, Some(moved));
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{v}");
    // Null clears.
    let mut cleared = updated.clone();
    cleared["targets"][0]["secret"] = Value::Null;
    let cleared = a.ok(padmin, Method::PUT, &one_path, Some(cleared));
    assert_eq!((&cleared["targets"][0]["secret"], &cleared["targets"][0]["auth_header"]), (&Value::Null, &json!(MASK)));

    assert_eq!(a.call(padmin, Method::DELETE, &one_path, None).0, StatusCode::NO_CONTENT);
    assert_eq!(a.call(padmin, Method::GET, &one_path, None).0, StatusCode::NOT_FOUND);
    assert_eq!(a.call(padmin, Method::DELETE, &one_path, None).0, StatusCode::NOT_FOUND);
    assert_eq!(a.ok(padmin, Method::GET, &policies("team-w"), None), json!([]));

    // Changes are audited like every admin change (the body, with its secrets, is not).
    let deleted = "api DELETE /api/v1/projects/{project}/webhook/policies/{id}".to_owned();
    let mut actions = Vec::new();
    for _ in 0..50 {
        let log = a.ok(ADMIN, Method::GET, "/projects/team-w/audit-logs", None);
        assert!(!log.to_string().contains("hmac-key"), "{log}");
        actions = log.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
        if actions.contains(&deleted) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(actions.contains(&deleted), "{actions:?}");
    assert!(actions.contains(&"api POST /api/v1/projects/{project}/webhook/policies".to_owned()), "{actions:?}");
    assert!(actions.contains(&"api PUT /api/v1/projects/{project}/webhook/policies/{id}".to_owned()), "{actions:?}");

    let doc = a.ok(None, Method::GET, "/openapi.json", None);
    for p in [
        "/projects/{project}/webhook/policies",
        "/projects/{project}/webhook/policies/{id}",
        "/projects/{project}/webhook/policies/{id}/deliveries",
        "/projects/{project}/webhook/policies/{id}/deliveries/{delivery_id}",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from the OpenAPI document");
    }
}

#[test]
fn bad_policies_are_refused_and_names_are_unique() {
    let a = start();
    let (u, pw) = setup(&a);
    let padmin = Some((u, pw.as_str()));
    let path = policies("team-w");
    let cases: [(&str, Value); 9] = [
        ("/event_types", json!(["PUSH_ARTIFACT", "SCANNING_COMPLETED"])),
        ("/event_types", json!([])),
        ("/targets/0/type", json!("slack")),
        ("/targets/0/address", json!("ftp://ci.example.com/hook")),
        ("/targets/0/address", json!("http://127.0.0.1:9/x")),
        ("/targets/0/address", json!("http://169.254.169.254/")),
        ("/targets/0/address", json!("http://[::1]/")),
        ("/targets/0/payload_format", json!("Xml")),
        ("/name", json!("")),
    ];
    for (field, value) in cases {
        let mut body = policy("bad");
        *body.pointer_mut(field).unwrap() = value.clone();
        let (s, v) = a.call(padmin, Method::POST, &path, Some(body));
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{field} = {value}: {v}");
    }
    let message = |field: &str, value: Value| {
        let mut body = policy("bad");
        *body.pointer_mut(field).unwrap() = value;
        a.call(padmin, Method::POST, &path, Some(body)).1["errors"][0]["message"].as_str().unwrap().to_owned()
    };
    assert!(message("/targets/0/type", json!("slack")).contains("not supported"));
    assert!(message("/targets/0/address", json!("http://127.0.0.1:9/x")).contains("loopback"));
    assert!(message("/targets/0/address", json!("http://169.254.169.254/")).contains("link-local"));
    let mut unknown = policy("bad");
    unknown["targets"][0]["headers"] = json!({});
    assert_eq!(a.call(padmin, Method::POST, &path, Some(unknown)).0, StatusCode::BAD_REQUEST);
    assert_eq!(a.ok(padmin, Method::GET, &path, None), json!([]), "nothing was created");

    a.ok(padmin, Method::POST, &path, Some(policy("ci")));
    let (s, v) = a.call(padmin, Method::POST, &path, Some(policy("ci")));
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "CONFLICT"), "{v}");
    let other = a.ok(padmin, Method::POST, &path, Some(policy("chat")));
    let (s, v) = a.call(padmin, Method::PUT, &format!("{path}/{}", other["id"]), Some(policy("ci")));
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "CONFLICT"), "renamed onto another: {v}");
}

#[test]
fn roles_follow_harbors_rbac_and_other_projects_are_closed() {
    let a = start();
    let (u, pw) = setup(&a);
    let padmin = Some((u, pw.as_str()));
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team-o"})));
    let pws: Vec<(&str, String)> =
        [("mt", "maintainer"), ("dev", "developer"), ("gu", "guest"), ("lg", "limitedGuest")]
            .into_iter()
            .map(|(name, role)| (name, a.user(name, Some(("team-w", role)))))
            .collect();
    let outsider_pw = a.user("outsider", None);
    let who = |name: &'static str| Some((name, pws.iter().find(|(n, _)| *n == name).unwrap().1.as_str()));
    let path = policies("team-w");
    let id = a.ok(padmin, Method::POST, &path, Some(policy("ci")))["id"].as_i64().unwrap();
    let one = format!("{path}/{id}");

    // Maintainers list and read, change nothing.
    let mt = who("mt");
    assert_eq!(a.ok(mt, Method::GET, &path, None).as_array().unwrap().len(), 1);
    assert_eq!(a.ok(mt, Method::GET, &one, None)["targets"][0]["secret"], MASK);
    assert_eq!(a.ok(mt, Method::GET, &format!("{one}/deliveries"), None), json!([]));
    assert_eq!(a.call(mt, Method::POST, &path, Some(policy("mine"))).0, StatusCode::FORBIDDEN);
    assert_eq!(a.call(mt, Method::PUT, &one, Some(policy("ci"))).0, StatusCode::FORBIDDEN);
    assert_eq!(a.call(mt, Method::DELETE, &one, None).0, StatusCode::FORBIDDEN);
    // Developers and guests: nothing.
    for name in ["dev", "gu", "lg"] {
        assert_eq!(a.call(who(name), Method::GET, &path, None).0, StatusCode::FORBIDDEN, "{name}");
        assert_eq!(a.call(who(name), Method::GET, &one, None).0, StatusCode::FORBIDDEN, "{name}");
    }
    // A private project is invisible to outsiders, and asks anonymous callers to log in.
    let outsider = Some(("outsider", outsider_pw.as_str()));
    let (s, v) = a.call(outsider, Method::GET, &path, None);
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    assert_eq!(a.call(outsider, Method::POST, &path, Some(policy("x"))).0, StatusCode::NOT_FOUND);
    assert_eq!(a.call(None, Method::GET, &path, None).0, StatusCode::UNAUTHORIZED);
    // System administrators may do everything.
    assert_eq!(a.call(ADMIN, Method::GET, &one, None).0, StatusCode::OK);
    // A policy is addressed within its project.
    let theirs = a.ok(ADMIN, Method::POST, &policies("team-o"), Some(policy("ci")))["id"].as_i64().unwrap();
    for m in [Method::GET, Method::DELETE] {
        let (s, v) = a.call(padmin, m.clone(), &format!("{path}/{theirs}"), None);
        assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{m}: {v}");
    }
    let (s, _) = a.call(ADMIN, Method::GET, &format!("{path}/{theirs}"), None);
    assert_eq!(s, StatusCode::NOT_FOUND, "wrong project, even for an administrator");
    assert_eq!(a.ok(ADMIN, Method::GET, &format!("{}/{theirs}", policies("team-o")), None)["name"], "ci");
}

#[test]
fn the_delivery_log_lists_newest_first_and_shows_one_with_its_payload() {
    let a = start();
    let (u, pw) = setup(&a);
    let padmin = Some((u, pw.as_str()));
    let id = a.ok(padmin, Method::POST, &policies("team-w"), Some(policy("ci")))["id"].as_i64().unwrap();
    let log = format!("{}/{id}/deliveries", policies("team-w"));
    assert_eq!(a.ok(padmin, Method::GET, &log, None), json!([]));
    let (s, v) = a.call(padmin, Method::GET, &format!("{log}/1"), None);
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    assert_eq!(
        a.call(padmin, Method::GET, &format!("{}/{}/deliveries", policies("team-w"), id + 100), None).0,
        StatusCode::NOT_FOUND
    );

    // The event router is not part of this API: deliveries go into the table directly.
    let db = rusqlite::Connection::open(a.reg.server.data_dir().join("berth/metadata.sqlite")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    // Recent, so a delivery router pruning old entries would keep them; the
    // pending one due far ahead, so none would attempt it.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let rows = [
        (0u32, r#"{"type":"PUSH_ARTIFACT","n":1}"#, "delivered", 1, 1_700_000_000_000i64, Some(200), None),
        (1, "not json", "failed", 10, now, Some(500), Some("server error")),
        (7, r#"{"type":"DELETE_ARTIFACT"}"#, "pending", 0, 4_102_444_800_000, None, None),
    ];
    for (target, payload, status, attempts, due_ms, last_status, last_error) in rows {
        db.execute(
            "INSERT INTO webhook_deliveries (policy_id, target, event_type, payload, status, attempts, due_ms,
                last_status, last_error, created_ms, updated_ms)
             VALUES (?1, ?2, 'PUSH_ARTIFACT', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            rusqlite::params![id, target, payload, status, attempts, due_ms, last_status, last_error, now],
        )
        .unwrap();
    }
    let all = a.ok(padmin, Method::GET, &log, None);
    let all = all.as_array().unwrap();
    let ids: Vec<i64> = all.iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert_eq!(all[0]["status"], "pending");
    assert_eq!(all[0]["target"], Value::Null, "a target index the policy no longer has");
    assert_eq!(all[1]["target"], "http://chat.example.com/in");
    assert_eq!(all[1]["last_status"], 500);
    assert_eq!(all[1]["last_error"], "server error");
    assert_eq!(all[2]["attempts"], 1);
    assert_eq!(all[2]["due_at"], "2023-11-14T22:13:20Z");
    assert_eq!(all[0]["due_at"], "2100-01-01T00:00:00Z");
    assert!(all[2]["updated_at"].as_str().unwrap().ends_with('Z'), "{}", all[2]);
    assert!(all.iter().all(|d| d.get("payload").is_none()), "no payloads in the list");

    // Pages of two, continued through `Link`.
    let resp = a.http.get(a.reg.url(&format!("/api/v1{log}?limit=2"))).basic_auth(u, Some(&pw)).send().unwrap();
    let next = next_link(&resp).expect("a Link to the next page");
    let first: Value = resp.json().unwrap();
    assert_eq!(first.as_array().unwrap().len(), 2);
    let rest: Value = a.http.get(a.reg.url(&next)).basic_auth(u, Some(&pw)).send().unwrap().json().unwrap();
    assert_eq!(rest.as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect::<Vec<_>>(), [ids[2]]);

    let one = a.ok(padmin, Method::GET, &format!("{log}/{}", ids[2]), None);
    assert_eq!(one["payload"], json!({"type": "PUSH_ARTIFACT", "n": 1}));
    assert_eq!(one["target"], "https://ci.example.com/hook");
    assert_eq!(a.ok(padmin, Method::GET, &format!("{log}/{}", ids[1]), None)["payload"], "not json");
    // Another policy's delivery is not this policy's.
    let other = a.ok(padmin, Method::POST, &policies("team-w"), Some(policy("chat")))["id"].as_i64().unwrap();
    let (s, _) = a.call(padmin, Method::GET, &format!("{}/{other}/deliveries/{}", policies("team-w"), ids[2]), None);
    assert_eq!(s, StatusCode::NOT_FOUND);
}
