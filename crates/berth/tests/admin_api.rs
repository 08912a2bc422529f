//! The admin REST API (`/api/v1`) against the real binary: users, projects,
//! members, the audit log, and its OpenAPI document. Who may do what is
//! Harbor's documented matrix ("User Permissions By Role"); error bodies
//! carry stable codes.

mod common;

use common::admin::*;
use common::options;
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

type Api = AdminApi;

fn start() -> Api {
    start_admin(options().delete_enabled(true).env("REGISTRY_BERTH_AUDIT_ENABLED", "true"))
}

impl Api {
    fn req(&self, who: Who, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, self.reg.url(&format!("/api/v1{path}")));
        match who {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }
}

#[test]
fn users_are_managed_by_administrators_and_privileged_fields_are_refused() {
    let a = start();
    let alice_pw = a.user("alice", None);
    let alice = Some(("alice", alice_pw.as_str()));
    let (s, v) =
        a.call(ADMIN, Method::POST, "/users", Some(json!({"username": "alice", "password": "whatever-long-1"})));
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "CONFLICT"));
    let (s, v) =
        a.call(ADMIN, Method::POST, "/users", Some(json!({"username": "Bad Name", "password": "whatever-long-1"})));
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"));
    let (s, v) = a.call(ADMIN, Method::POST, "/users", Some(json!({"username": "short", "password": "1234567"})));
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{v}");

    // Not an administrator: no listing, no one else's account, no privileges.
    assert_eq!(a.call(alice, Method::GET, "/users", None).0, StatusCode::FORBIDDEN);
    assert_eq!(a.call(alice, Method::GET, "/users/admin", None).0, StatusCode::NOT_FOUND);
    assert_eq!(a.ok(alice, Method::GET, "/users/current", None)["username"], "alice");
    let (s, v) = a.call(alice, Method::PATCH, "/users/alice", Some(json!({"admin": true})));
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    let (s, v) = a.call(alice, Method::PATCH, "/users/alice", Some(json!({"id": 1})));
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "unknown fields are refused: {v}");
    assert_eq!(a.ok(ADMIN, Method::GET, "/users/alice", None)["admin"], false);

    // Own password: the old one is required and checked.
    let (s, _) = a.call(
        alice,
        Method::PUT,
        "/users/alice/password",
        Some(json!({"old_password": "wrong-one", "new_password": "new-password-2"})),
    );
    assert_eq!(s, StatusCode::FORBIDDEN);
    a.ok(
        alice,
        Method::PUT,
        "/users/alice/password",
        Some(json!({"old_password": alice_pw, "new_password": "new-password-2"})),
    );
    assert_eq!(a.call(alice, Method::GET, "/users/current", None).0, StatusCode::UNAUTHORIZED);
    let alice = Some(("alice", "new-password-2"));
    assert_eq!(
        a.call(alice, Method::PUT, "/users/admin/password", Some(json!({"new_password": "takeover-123"}))).0,
        StatusCode::NOT_FOUND
    );

    // The last administrator cannot be demoted, disabled or deleted.
    let (s, v) = a.call(ADMIN, Method::PATCH, "/users/admin", Some(json!({"admin": false})));
    assert_eq!((s, code(&v)), (StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED"));
    assert_eq!(a.call(ADMIN, Method::DELETE, "/users/admin", None).0, StatusCode::PRECONDITION_FAILED);
    a.ok(ADMIN, Method::PATCH, "/users/alice", Some(json!({"disabled": true})));
    assert_eq!(a.call(alice, Method::GET, "/users/current", None).0, StatusCode::UNAUTHORIZED);

    // Listing pages by name with a Link header.
    for n in ["u1", "u2", "u3"] {
        a.user(n, None);
    }
    let resp = a.req(ADMIN, Method::GET, "/users?limit=2").send().unwrap();
    let link = resp.headers()["link"].to_str().unwrap().to_owned();
    let names: Vec<String> =
        resp.json::<Vec<Value>>().unwrap().iter().map(|u| u["username"].as_str().unwrap().into()).collect();
    assert_eq!(names, ["admin", "alice"]);
    assert_eq!(link, "</api/v1/users?limit=2&after=alice>; rel=\"next\"");
    let next: Vec<Value> = a.req(ADMIN, Method::GET, "/users?limit=2&after=alice").send().unwrap().json().unwrap();
    assert_eq!(next.iter().map(|u| u["username"].as_str().unwrap()).collect::<Vec<_>>(), ["u1", "u2"]);
}

#[test]
fn projects_and_members_follow_harbors_roles() {
    let mut a = start();
    let (alice_pw, bob_pw, carol_pw) = (a.user("alice", None), a.user("bob", None), a.user("carol", None));
    let (alice, bob, carol) =
        (Some(("alice", alice_pw.as_str())), Some(("bob", bob_pw.as_str())), Some(("carol", carol_pw.as_str())));
    let p = a.ok(alice, Method::POST, "/projects", Some(json!({"name": "team-a"})));
    assert_eq!(
        (p["name"].as_str(), p["public"].as_bool(), p["role"].as_str()),
        (Some("team-a"), Some(false), Some("projectAdmin"))
    );
    let (s, v) = a.call(alice, Method::POST, "/projects", Some(json!({"name": "Team_A!"})));
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"));

    // A private project is invisible to non-members, as if it did not exist.
    let (s, v) = a.call(bob, Method::GET, "/projects/team-a", None);
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"));
    assert_eq!(
        a.call(bob, Method::GET, "/projects/no-such", None).1,
        json!({"errors":[{"code":"NOT_FOUND","message":"project no-such not found"}]})
    );
    assert_eq!(a.call(bob, Method::GET, "/projects/team-a/members", None).0, StatusCode::NOT_FOUND);
    let names =
        |v: Value| v.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(names(a.ok(None, Method::GET, "/projects", None)), ["library"]);
    assert_eq!(names(a.ok(bob, Method::GET, "/projects", None)), ["library"]);
    assert_eq!(names(a.ok(alice, Method::GET, "/projects", None)), ["library", "team-a"]);
    assert_eq!(names(a.ok(ADMIN, Method::GET, "/projects", None)), ["library", "team-a"]);

    // Members: the ProjectAdmin manages them; a Guest sees them; a LimitedGuest does not.
    a.ok(alice, Method::PUT, "/projects/team-a/members/bob", Some(json!({"role": "guest"})));
    a.ok(alice, Method::PUT, "/projects/team-a/members/carol", Some(json!({"role": "limitedGuest"})));
    let members = a.ok(bob, Method::GET, "/projects/team-a/members", None);
    let rows: Vec<(String, String, i64)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (m["username"].as_str().unwrap().into(), m["role"].as_str().unwrap().into(), m["role_id"].as_i64().unwrap())
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("alice".into(), "projectAdmin".into(), 1),
            ("bob".into(), "guest".into(), 3),
            ("carol".into(), "limitedGuest".into(), 5)
        ]
    );
    let (s, v) = a.call(carol, Method::GET, "/projects/team-a/members", None);
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{v}");
    assert_eq!(a.ok(carol, Method::GET, "/projects/team-a", None)["role"], "limitedGuest");
    let (s, v) = a.call(bob, Method::PUT, "/projects/team-a/members/bob", Some(json!({"role": "projectAdmin"})));
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "a guest cannot promote themself");
    let (s, v) = a.call(alice, Method::PUT, "/projects/team-a/members/bob", Some(json!({"role": "owner"})));
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"));
    assert_eq!(a.call(bob, Method::PATCH, "/projects/team-a", Some(json!({"public": true}))).0, StatusCode::FORBIDDEN);
    assert_eq!(a.call(bob, Method::DELETE, "/projects/team-a", None).0, StatusCode::FORBIDDEN);

    // Public: everyone sees it, even anonymously; still only members change it.
    a.ok(alice, Method::PATCH, "/projects/team-a", Some(json!({"public": true})));
    assert_eq!(names(a.ok(None, Method::GET, "/projects", None)), ["library", "team-a"]);
    a.ok(ADMIN, Method::DELETE, "/projects/team-a/members/bob", None);
    assert_eq!(a.ok(bob, Method::GET, "/projects/team-a", None)["role"], Value::Null);
    assert_eq!(a.call(bob, Method::GET, "/projects/team-a/members", None).0, StatusCode::FORBIDDEN);

    // A project with repositories is not deleted; library never is.
    assert_eq!(a.call(ADMIN, Method::DELETE, "/projects/library", None).0, StatusCode::PRECONDITION_FAILED);
    let token: Value = a
        .http
        .get(a.reg.url("/token"))
        .basic_auth("alice", Some(&alice_pw))
        .query(&[("service", "berth"), ("scope", "repository:team-a/app:pull,push")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    a.reg.http = bearer_client(token["token"].as_str().unwrap());
    a.reg.push_image("team-a/app", "v1");
    let (s, v) = a.call(alice, Method::DELETE, "/projects/team-a", None);
    assert_eq!((s, code(&v)), (StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED"), "{v}");
    // Emptying it: the repository goes whole, after its immutable tags are freed.
    let repos = a.ok(bob, Method::GET, "/projects/team-a/repositories", None);
    assert_eq!(repos[0]["name"], "team-a/app", "{repos}");
    assert_eq!((repos[0]["artifact_count"].as_u64(), repos[0]["tag_count"].as_u64()), (Some(1), Some(1)));
    assert_eq!(a.call(bob, Method::DELETE, "/projects/team-a/repositories/app", None).0, StatusCode::FORBIDDEN);
    let rule = a.ok(
        alice,
        Method::POST,
        "/projects/team-a/immutable-rules",
        Some(json!({"tag_selectors": [{"decoration": "matches", "pattern": "v*"}],
            "scope_selectors": {"repository": [{"decoration": "repoMatches", "pattern": "**"}]}})),
    );
    let (s, v) = a.call(alice, Method::DELETE, "/projects/team-a/repositories/app", None);
    assert_eq!(s, StatusCode::FORBIDDEN, "an immutable tag holds it: {v}");
    a.ok(alice, Method::DELETE, &format!("/projects/team-a/immutable-rules/{}", rule["id"]), None);
    a.ok(alice, Method::DELETE, "/projects/team-a/repositories/team-a%2Fapp", None);
    assert_eq!(a.call(alice, Method::DELETE, "/projects/team-a/repositories/app", None).0, StatusCode::NOT_FOUND);
    assert_eq!(a.reg.get("/v2/team-a/app/manifests/v1").status(), StatusCode::NOT_FOUND);
    a.ok(alice, Method::DELETE, "/projects/team-a", None);
    a.ok(alice, Method::POST, "/projects", Some(json!({"name": "empty"})));
    a.ok(alice, Method::DELETE, "/projects/empty", None);
    assert_eq!(a.call(alice, Method::GET, "/projects/empty", None).0, StatusCode::NOT_FOUND);
}

fn token(a: &Api, who: (&str, &str), scope: &str) -> String {
    let body: Value = a
        .http
        .get(a.reg.url("/token"))
        .basic_auth(who.0, Some(who.1))
        .query(&[("service", "berth"), ("scope", scope)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    body["token"].as_str().unwrap().to_owned()
}

#[test]
fn bearer_tokens_need_the_api_scope() {
    let a = start();
    let pw = a.user("dev", None);
    let api = token(&a, ("dev", &pw), "berth:api:*");
    let resp = a.http.get(a.reg.url("/api/v1/users/current")).bearer_auth(&api).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().unwrap()["username"], "dev");
    // A registry token (say, one given to a CI job) is not an API credential.
    let pull = token(&a, ("dev", &pw), "repository:library/x:pull");
    let resp = a.http.get(a.reg.url("/api/v1/users/current")).bearer_auth(&pull).send().unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = a.http.get(a.reg.url("/api/v1/users/current")).bearer_auth("not.a.token").send().unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    let resp = a.req(Some(("dev", "wrong-password")), Method::GET, "/users/current").send().unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn the_openapi_document_describes_every_route_and_only_those() {
    let a = start();
    let doc = a.ok(None, Method::GET, "/openapi.json", None);
    assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.")), Some(true));
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/users",
        "/users/current",
        "/users/{name}",
        "/projects",
        "/projects/{project}/members/{username}",
        "/audit-logs",
    ] {
        assert!(paths.contains_key(expected), "{expected} missing from {:?}", paths.keys());
    }
    // Every documented operation is routed (never the API's "no such route").
    for (path, ops) in paths {
        let concrete = path
            .replace("{name}", "nobody")
            .replace("{project}", "nothing")
            .replace("{username}", "nobody")
            .replace("{id}", "0")
            .replace("{delivery_id}", "0");
        for method in ops.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = a.call(ADMIN, m.clone(), &concrete, Some(json!({})));
            let unrouted = status == StatusCode::NOT_FOUND && body["errors"][0]["message"] == "no such admin API route";
            assert!(!unrouted && status != StatusCode::METHOD_NOT_ALLOWED, "{m} {path}: {status} {body}");
        }
    }
    let (s, v) = a.call(ADMIN, Method::GET, "/no-such-thing", None);
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"));
}

#[test]
fn changes_and_refusals_are_audited() {
    let a = start();
    let pw = a.user("eve", None);
    let eve = Some(("eve", pw.as_str()));
    assert_eq!(
        a.call(eve, Method::POST, "/users", Some(json!({"username": "mallory", "password": "12345678x"}))).0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(a.call(eve, Method::PATCH, "/users/eve", Some(json!({"admin": true}))).0, StatusCode::FORBIDDEN);
    // A registry refusal of valid credentials (eve is no member of library) is recorded too.
    let resp = a.http.post(a.reg.url("/v2/library/x/blobs/uploads/")).basic_auth("eve", Some(&pw)).send().unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // The writer batches: poll (bounded) until the entries are there.
    let mut rows = Vec::new();
    for _ in 0..50 {
        let entries = a.ok(ADMIN, Method::GET, "/audit-logs?limit=1000", None);
        rows = entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                e["action"].as_str().unwrap().starts_with("api ")
                    || e["action"].as_str().unwrap().starts_with("denied ")
            })
            .map(|e| {
                (
                    e["actor"].as_str().unwrap().to_owned(),
                    e["action"].as_str().unwrap().to_owned(),
                    e["resource"].as_str().unwrap().to_owned(),
                    e["status"].as_u64().unwrap(),
                )
            })
            .collect::<Vec<_>>();
        if rows.len() >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let row = |a: &str, b: &str, c: &str, d: u64| (a.to_owned(), b.to_owned(), c.to_owned(), d);
    assert_eq!(
        rows,
        [
            row("admin", "api POST /api/v1/users", "/users", 201),
            row("eve", "api POST /api/v1/users", "/users", 403),
            row("eve", "api PATCH /api/v1/users/{name}", "/users/eve", 403),
            row("eve", "denied pull,push", "library/x", 403),
        ]
    );
    // The project's own log: what touched library, not the user changes.
    let library = a.ok(ADMIN, Method::GET, "/projects/library/audit-logs", None);
    let actions: Vec<&str> = library.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["denied pull,push"]);
    assert_eq!(a.call(eve, Method::GET, "/projects/library/audit-logs", None).0, StatusCode::FORBIDDEN);
}

fn bearer_client(token: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}
