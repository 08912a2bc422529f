//! Robot accounts through the admin API (`/api/v1`) and `berth admin
//! robots`, against the real binary. Expected behaviour is Harbor's (robot
//! accounts v2 and "User Permissions By Role"): ProjectAdmins create and
//! change a project's robots, Maintainers see them; system robots are for
//! system administrators; nobody grants a robot more than they hold; the
//! secret is shown once, on creation and on refresh, and a refreshed secret
//! replaces the old one; a disabled robot cannot log in.

mod common;

use common::admin::*;

type Api = AdminApi;

use base64::Engine;
use common::options;
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;

fn start() -> Api {
    start_admin(options().delete_enabled(true))
}

impl Api {
    fn project(&self, name: &str) {
        self.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": name})));
    }

    /// `GET /token` as `docker login` then a push asks it: the status and
    /// the actions granted on `repo` (empty when refused).
    fn token_actions(&self, who: (&str, &str), repo: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(self.reg.url("/token"))
            .basic_auth(who.0, Some(who.1))
            .query(&[("service", "berth"), ("scope", &format!("repository:{repo}:pull,push,delete"))])
            .send()
            .unwrap();
        let status = resp.status();
        let body: Value = resp.json().unwrap_or(Value::Null);
        let access = body["token"].as_str().map(|t| claims(t)["access"].clone()).unwrap_or(Value::Null);
        // A token granting nothing lists no access entry at all.
        (status, access.get(0).map_or(json!([]), |e| e["actions"].clone()))
    }

    /// From now on every registry request of `self.reg` carries Basic `who`.
    fn act_as(&mut self, who: (&str, &str)) {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", who.0, who.1));
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", format!("Basic {basic}").parse().unwrap());
        self.reg.http =
            Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWS compact token");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Harbor's v2 robot body: `actions` on the repositories of `namespace`.
fn robot(name: &str, namespace: &str, actions: &[&str]) -> Value {
    let access: Vec<Value> = actions.iter().map(|a| json!({"resource": "repository", "action": a})).collect();
    json!({"name": name, "duration_days": -1, "permissions": [{"namespace": namespace, "access": access}]})
}

/// The generated secret of a creation or rotation answer.
fn secret(v: &Value) -> String {
    let s = v["secret"].as_str().unwrap_or_else(|| panic!("no secret in {v}")).to_owned();
    assert!(s.len() >= 32, "a secret of at least 32 characters: {s}");
    s
}

/// Listings and single views never carry a secret or its hash.
fn assert_no_secret(v: &Value) {
    let text = v.to_string();
    assert!(!text.contains("secret") && !text.contains("argon2"), "{text}");
}

#[test]
fn a_project_admins_robot_pushes_to_its_project_only() {
    let mut a = start();
    a.project("team-r");
    a.project("team-o");
    let padmin_pw = a.user("padmin", Some(("team-r", "projectAdmin")));
    let padmin = Some(("padmin", padmin_pw.as_str()));

    let (s, created) =
        a.call(padmin, Method::POST, "/projects/team-r/robots", Some(robot("ci", "team-r", &["pull", "push"])));
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!(created["name"], "robot$team-r+ci");
    assert_eq!(created["project"], "team-r");
    assert_eq!(created["creator"], "padmin");
    assert_eq!(created["expires_at"], Value::Null, "-1 days: never expires");
    let ci_secret = secret(&created);
    let ci = ("robot$team-r+ci", ci_secret.as_str());

    // docker login: a token lists exactly pull and push, in its project only.
    assert_eq!(a.token_actions(ci, "team-r/app"), (StatusCode::OK, json!(["pull", "push"])));
    assert_eq!(a.token_actions(ci, "team-o/app"), (StatusCode::OK, json!([])));
    // Basic credentials push to its project, not to another.
    a.act_as(ci);
    a.reg.push_image("team-r/app", "v1");
    assert_eq!(a.reg.get("/v2/team-r/app/manifests/v1").status(), StatusCode::OK);
    let resp = a.reg.req(Method::POST, "/v2/team-o/app/blobs/uploads/").send().unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "another project");

    // Listed and shown without its secret.
    let list = a.ok(padmin, Method::GET, "/projects/team-r/robots", None);
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["robot$team-r+ci"]);
    assert_no_secret(&list);
    let id = created["id"].as_i64().unwrap();
    let one = a.ok(padmin, Method::GET, &format!("/projects/team-r/robots/{id}"), None);
    assert_eq!(
        one["permissions"],
        json!([{"kind": "project", "namespace": "team-r",
            "access": [{"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}])
    );
    assert_no_secret(&one);
}

#[test]
fn roles_decide_who_sees_and_changes_robots_and_nobody_grants_more_than_they_hold() {
    let a = start();
    a.project("team-r");
    a.project("team-o");
    let pw = |n: &str, role: &str| a.user(n, Some(("team-r", role)));
    let (padmin_pw, maint_pw, dev_pw) =
        (pw("padmin", "projectAdmin"), pw("maint", "maintainer"), pw("dev", "developer"));
    let outsider_pw = a.user("outsider", Some(("team-o", "projectAdmin")));
    let padmin = Some(("padmin", padmin_pw.as_str()));
    let (maint, dev) = (Some(("maint", maint_pw.as_str())), Some(("dev", dev_pw.as_str())));
    let outsider = Some(("outsider", outsider_pw.as_str()));
    let robots = "/projects/team-r/robots";
    let pull = robot("ci", "team-r", &["pull"]);

    // "Create/edit/delete project robots": ProjectAdmin only.
    for who in [maint, dev] {
        let (s, v) = a.call(who, Method::POST, robots, Some(pull.clone()));
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{v}");
    }
    // "See a list of project robots": Maintainer and ProjectAdmin.
    assert!(a.ok(maint, Method::GET, robots, None).as_array().unwrap().is_empty());
    let (s, v) = a.call(dev, Method::GET, robots, None);
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{v}");
    // A ProjectAdmin elsewhere does not even see the private project.
    let (s, v) = a.call(outsider, Method::POST, robots, Some(pull.clone()));
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{v}");

    // Nobody grants beyond the project: not `*`, not another namespace; the refusal names it.
    for ns in ["*", "team-o"] {
        let (s, v) = a.call(padmin, Method::POST, robots, Some(robot("wide", ns, &["pull"])));
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{ns}: {v}");
        assert!(v["errors"][0]["message"].as_str().unwrap().contains(ns), "{v}");
    }
    // Bad bodies.
    let mut unknown = pull.clone();
    unknown["level"] = json!("system");
    let mut no_duration = pull.clone();
    no_duration.as_object_mut().unwrap().remove("duration_days");
    let mut zero_days = pull.clone();
    zero_days["duration_days"] = json!(0);
    for body in [
        robot("ci", "team-r", &["admin"]),
        robot("ci", "team-r", &[]),
        robot("a b", "team-r", &["pull"]),
        unknown,
        no_duration,
        zero_days,
    ] {
        let (s, v) = a.call(padmin, Method::POST, robots, Some(body.clone()));
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{body}: {v}");
    }
    assert!(a.ok(padmin, Method::GET, robots, None).as_array().unwrap().is_empty(), "nothing refused was created");

    let created = a.ok(padmin, Method::POST, robots, Some(pull.clone()));
    let (s, v) = a.call(padmin, Method::POST, robots, Some(pull.clone()));
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "CONFLICT"), "{v}");
    // A Maintainer sees one robot but changes nothing.
    let id = created["id"].as_i64().unwrap();
    assert_eq!(a.ok(maint, Method::GET, &format!("{robots}/{id}"), None)["name"], "robot$team-r+ci");
    let (s, _) = a.call(maint, Method::PATCH, &format!("{robots}/{id}"), Some(json!({"disabled": true})));
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = a.call(maint, Method::POST, &format!("{robots}/{id}/secret"), None);
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Widening through PATCH is refused as on creation.
    let wide = json!({"permissions": [{"namespace": "*", "access": [{"resource": "repository", "action": "pull"}]}]});
    let (s, v) = a.call(padmin, Method::PATCH, &format!("{robots}/{id}"), Some(wide));
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{v}");

    // A robot of another project, addressed through this one: 404, never touched.
    let other = a.ok(ADMIN, Method::POST, "/projects/team-o/robots", Some(robot("ci", "team-o", &["pull"])));
    let other_secret = secret(&other);
    let other_id = other["id"].as_i64().unwrap();
    let path = format!("{robots}/{other_id}");
    for (m, p, body) in [
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"disabled": true}))),
        (Method::POST, format!("{path}/secret"), None),
        (Method::DELETE, path.clone(), None),
    ] {
        for who in [padmin, ADMIN] {
            let (s, v) = a.call(who, m.clone(), &p, body.clone());
            assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{m} {p}: {v}");
        }
    }
    let still = a.ok(ADMIN, Method::GET, &format!("/projects/team-o/robots/{other_id}"), None);
    assert_eq!(still["disabled"], false);
    assert_eq!(a.token_actions(("robot$team-o+ci", &other_secret), "team-o/app"), (StatusCode::OK, json!(["pull"])));
}

#[test]
fn rotation_disabling_and_deletion_apply_to_the_next_login() {
    let mut a = start();
    a.project("team-r");
    let padmin_pw = a.user("padmin", Some(("team-r", "projectAdmin")));
    let padmin = Some(("padmin", padmin_pw.as_str()));
    let robots = "/projects/team-r/robots";
    let created = a.ok(padmin, Method::POST, robots, Some(robot("ci", "team-r", &["pull", "push"])));
    let (id, old) = (created["id"].as_i64().unwrap(), secret(&created));
    const CI: &str = "robot$team-r+ci";
    a.act_as((CI, &old));
    a.reg.push_image("team-r/app", "v1");

    // Rotation: the new secret once; the old one is refused at once.
    let rotated = a.ok(padmin, Method::POST, &format!("{robots}/{id}/secret"), None);
    let new = secret(&rotated);
    assert_ne!(new, old);
    assert_eq!(a.token_actions((CI, &old), "team-r/app").0, StatusCode::UNAUTHORIZED);
    assert_eq!(a.token_actions((CI, &new), "team-r/app"), (StatusCode::OK, json!(["pull", "push"])));

    // A permission added by PATCH counts at the next token.
    let all = json!({"permissions": [{"namespace": "team-r", "access": [
        {"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"},
        {"resource": "repository", "action": "delete"}]}], "description": "deploys"});
    let patched = a.ok(padmin, Method::PATCH, &format!("{robots}/{id}"), Some(all));
    assert_eq!(patched["description"], "deploys");
    assert_eq!(a.token_actions((CI, &new), "team-r/app"), (StatusCode::OK, json!(["pull", "push", "delete"])));

    // Expiry counts from creation (Harbor's duration).
    let patched = a.ok(padmin, Method::PATCH, &format!("{robots}/{id}"), Some(json!({"duration_days": 30})));
    assert!(patched["expires_at"].is_string() && patched["expired"] == false, "{patched}");

    // Disabled: refused; enabled again: accepted.
    a.ok(padmin, Method::PATCH, &format!("{robots}/{id}"), Some(json!({"disabled": true})));
    assert_eq!(a.token_actions((CI, &new), "team-r/app").0, StatusCode::UNAUTHORIZED);
    a.act_as((CI, &new));
    assert_eq!(a.reg.get("/v2/team-r/app/manifests/v1").status(), StatusCode::UNAUTHORIZED);
    a.ok(padmin, Method::PATCH, &format!("{robots}/{id}"), Some(json!({"disabled": false})));
    assert_eq!(a.reg.get("/v2/team-r/app/manifests/v1").status(), StatusCode::OK);

    // Deleted: gone from the listing and refused.
    let (s, _) = a.call(padmin, Method::DELETE, &format!("{robots}/{id}"), None);
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(a.token_actions((CI, &new), "team-r/app").0, StatusCode::UNAUTHORIZED);
    assert!(a.ok(padmin, Method::GET, robots, None).as_array().unwrap().is_empty());
    let (s, _) = a.call(padmin, Method::DELETE, &format!("{robots}/{id}"), None);
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[test]
fn system_robots_are_for_administrators_only() {
    let a = start();
    a.project("team-r");
    a.project("team-o");
    let padmin_pw = a.user("padmin", Some(("team-r", "projectAdmin")));
    let padmin = Some(("padmin", padmin_pw.as_str()));
    let mirror = robot("mirror", "*", &["pull"]);

    for (m, body) in [(Method::GET, None), (Method::POST, Some(mirror.clone()))] {
        let (s, v) = a.call(padmin, m.clone(), "/robots", body);
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{m}: {v}");
    }
    let (s, created) = a.call(ADMIN, Method::POST, "/robots", Some(mirror));
    assert_eq!(s, StatusCode::CREATED, "{created}");
    assert_eq!((created["name"].as_str(), &created["project"]), (Some("robot$mirror"), &Value::Null));
    let mirror_secret = secret(&created);
    for repo in ["team-r/app", "team-o/app"] {
        assert_eq!(a.token_actions(("robot$mirror", &mirror_secret), repo), (StatusCode::OK, json!(["pull"])));
    }
    let id = created["id"].as_i64().unwrap();
    for (m, p) in [(Method::GET, format!("/robots/{id}")), (Method::POST, format!("/robots/{id}/secret"))] {
        let (s, _) = a.call(padmin, m.clone(), &p, None);
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {p}");
    }
    // Every robot, both kinds, in the administrators' listing; no secrets.
    a.ok(padmin, Method::POST, "/projects/team-r/robots", Some(robot("ci", "team-r", &["pull"])));
    let all = a.ok(ADMIN, Method::GET, "/robots", None);
    let names: Vec<&str> = all.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["robot$mirror", "robot$team-r+ci"]);
    assert_no_secret(&all);
    // A namespace that is no project.
    let (s, v) = a.call(ADMIN, Method::POST, "/robots", Some(robot("ghost", "no-such-project", &["pull"])));
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // Robots, whatever they hold, do not administer.
    let (s, _) = a.call(Some(("robot$mirror", &mirror_secret)), Method::GET, "/robots", None);
    assert_eq!(s, StatusCode::FORBIDDEN);

    let doc = a.ok(None, Method::GET, "/openapi.json", None);
    for p in ["/projects/{project}/robots", "/projects/{project}/robots/{id}/secret", "/robots", "/robots/{id}/secret"]
    {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from the OpenAPI document");
    }
}

fn cli(session: &Path, args: &[&str]) -> String {
    let out = berth_admin(session, args, "");
    assert!(out.status.success(), "berth admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The secret line of `robots create` / `robots rotate`.
fn printed_secret(out: &str) -> String {
    assert!(out.contains("will not be shown again"), "{out}");
    let line = out.lines().find_map(|l| l.strip_prefix("secret:")).unwrap_or_else(|| panic!("{out}"));
    line.trim().to_owned()
}

#[test]
fn cli_creates_lists_rotates_disables_and_deletes_robots() {
    let a = start();
    let session = a.dir.path().join("cli").join("admin.json");
    let login = berth_admin(&session, &["login", &a.reg.server.url(), "-u", "admin"], &format!("{ADMIN_PW}\n"));
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    cli(&session, &["projects", "create", "team-c"]);

    let out = cli(&session, &["robots", "create", "--project", "team-c", "ci", "--pull", "--push"]);
    assert!(out.contains("robot$team-c+ci"), "{out}");
    let first = printed_secret(&out);
    assert_eq!(a.token_actions(("robot$team-c+ci", &first), "team-c/app"), (StatusCode::OK, json!(["pull", "push"])));

    let table = cli(&session, &["robots", "list", "--project", "team-c"]);
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("ID") && header.contains("NAME") && header.contains("PERMISSIONS"), "{table}");
    assert!(table.contains("team-c:pull,push") && table.contains("never"), "{table}");
    let listed: Value =
        serde_json::from_str(&cli(&session, &["--json", "robots", "list", "--project", "team-c"])).unwrap();
    assert_no_secret(&listed);
    let id = listed[0]["id"].as_i64().unwrap().to_string();

    let second = printed_secret(&cli(&session, &["robots", "rotate", "--project", "team-c", &id]));
    assert_eq!(a.token_actions(("robot$team-c+ci", &first), "team-c/app").0, StatusCode::UNAUTHORIZED);
    assert_eq!(a.token_actions(("robot$team-c+ci", &second), "team-c/app").0, StatusCode::OK);

    cli(&session, &["robots", "disable", "--project", "team-c", &id]);
    assert_eq!(a.token_actions(("robot$team-c+ci", &second), "team-c/app").0, StatusCode::UNAUTHORIZED);
    cli(&session, &["robots", "enable", "--project", "team-c", &id]);
    assert_eq!(a.token_actions(("robot$team-c+ci", &second), "team-c/app").0, StatusCode::OK);

    // A system robot: administrators, with a namespace.
    let out = cli(&session, &["robots", "create", "mirror", "--namespace", "*", "--pull", "--duration-days", "7"]);
    printed_secret(&out);
    let all: Value = serde_json::from_str(&cli(&session, &["--json", "robots", "list"])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    // No action: refused before asking the server.
    assert!(!berth_admin(&session, &["robots", "create", "--project", "team-c", "idle"], "").status.success());

    cli(&session, &["robots", "delete", "--project", "team-c", &id]);
    let listed: Value =
        serde_json::from_str(&cli(&session, &["--json", "robots", "list", "--project", "team-c"])).unwrap();
    assert_eq!(listed, json!([]));
    let out = berth_admin(&session, &["robots", "delete", "--project", "team-c", &id], "");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not found"));
}
