//! Robot accounts (Harbor's v2 robots) against the real binary with
//! `berth.auth` on. Expected behaviour comes from Harbor's robot account
//! docs (a project robot acts only in its project with exactly the
//! permissions it was given; a disabled or expired robot cannot
//! authenticate; refreshing the secret invalidates the old one) and the
//! Docker token spec (a token lists only the granted actions).

mod common;

use base64::Engine;
use berth_meta::{NewRobot, ProjectStore, RobotAction, RobotPermission, RobotStore, RobotUpdate};
use common::{options, Reg};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ADMIN_PW: &str = "correct horse battery staple";
const SECRET: &str = "robot-secret-0123456789";
const CI: &str = "robot$team+ci";

struct Auth {
    reg: Reg,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

fn start() -> Auth {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let opts = options()
        .delete_enabled(true)
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string());
    let reg = Reg::start_with(opts);
    let db = reg.server.data_dir().join("berth").join("metadata.sqlite");
    Auth { reg, db, _dir: dir }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn perms(project: &str, actions: &[RobotAction]) -> Vec<RobotPermission> {
    actions.iter().map(|a| RobotPermission::new(project, *a)).collect()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWS compact token");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn basic(name: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{name}:{secret}")))
}

impl Auth {
    fn store(&self) -> berth_meta::sqlite::SqliteStore {
        berth_meta::sqlite::SqliteStore::open(&self.db).unwrap()
    }

    fn add_project(&self, name: &str) {
        block_on(self.store().create_project(name, false, None, 1)).unwrap();
    }

    /// A robot straight in the database (the admin API comes later), its
    /// secret hashed as the server hashes passwords. Its id.
    fn add_robot(
        &self,
        name: &str,
        project: Option<&str>,
        permissions: Vec<RobotPermission>,
        expires_ms: Option<i64>,
    ) -> i64 {
        let robot = NewRobot {
            name: name.into(),
            project: project.map(str::to_owned),
            description: String::new(),
            secret_hash: berth_auth::hash_password(SECRET),
            expires_ms,
            creator: "admin".into(),
            permissions,
        };
        block_on(self.store().create_robot(&robot, now_ms())).unwrap().id
    }

    /// `GET /token` as docker sends it: (status, body).
    fn token(&self, user: (&str, &str), scopes: &[&str], offline: bool) -> (StatusCode, Value) {
        let mut q: Vec<(&str, &str)> = vec![("service", "berth"), ("account", user.0)];
        q.extend(scopes.iter().map(|s| ("scope", *s)));
        if offline {
            q.push(("offline_token", "true"));
        }
        let resp = self.reg.http.get(self.reg.url("/token")).query(&q).basic_auth(user.0, Some(user.1)).send().unwrap();
        let status = resp.status();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// The actions a token for `scope` lists for `repository`.
    fn granted(&self, user: (&str, &str), scope: &str) -> Value {
        let (status, body) = self.token(user, &[scope], false);
        assert_eq!(status, StatusCode::OK, "{body}");
        let c = claims(body["token"].as_str().unwrap());
        c["access"].get(0).map(|e| e["actions"].clone()).unwrap_or(serde_json::json!([]))
    }

    /// From now on every request of `self.reg` carries `authorization`.
    fn act_as(&mut self, authorization: &str) {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", authorization.parse().unwrap());
        self.reg.http =
            Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    }

    /// `GET /v2/<repo>/manifests/<tag>` with Basic credentials: the status.
    fn basic_pull(&self, user: (&str, &str), repo: &str, tag: &str) -> StatusCode {
        let url = self.reg.url(&format!("/v2/{repo}/manifests/{tag}"));
        let resp = reqwest::blocking::Client::new().get(url).basic_auth(user.0, Some(user.1)).send().unwrap();
        resp.status()
    }
}

#[test]
fn project_robot_tokens_list_exactly_its_permissions() {
    let a = start();
    a.add_project("team");
    a.add_project("other");
    a.add_robot(CI, Some("team"), perms("team", &[RobotAction::Pull, RobotAction::Push]), None);

    let (status, body) = a.token((CI, SECRET), &["repository:team/app:pull,push,delete,*"], true);
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = claims(body["token"].as_str().unwrap());
    assert_eq!(c["sub"], CI);
    assert_eq!(
        c["access"],
        serde_json::json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
    );
    assert!(body.get("refresh_token").is_none(), "no refresh token for a robot: {body}");
    // Another project, the catalog, a project that does not exist: nothing.
    assert_eq!(a.granted((CI, SECRET), "repository:other/app:pull,push"), serde_json::json!([]));
    assert_eq!(a.granted((CI, SECRET), "registry:catalog:*"), serde_json::json!([]));
    assert_eq!(a.granted((CI, SECRET), "repository:nope/app:pull"), serde_json::json!([]));
    // A wrong secret and an unknown robot are refused alike.
    assert_eq!(a.token((CI, "wrong"), &[], false).0, StatusCode::UNAUTHORIZED);
    assert_eq!(a.token(("robot$team+ghost", SECRET), &[], false).0, StatusCode::UNAUTHORIZED);
}

#[test]
fn system_robots_span_projects_but_never_create_them() {
    let a = start();
    a.add_project("team");
    let mut p = perms("*", &[RobotAction::Pull]);
    p.push(RobotPermission::new("team", RobotAction::Push));
    a.add_robot("robot$mirror", None, p, None);
    let who = ("robot$mirror", SECRET);
    assert_eq!(a.granted(who, "repository:team/app:pull,push,delete"), serde_json::json!(["pull", "push"]));
    assert_eq!(a.granted(who, "repository:library/busybox:pull,push"), serde_json::json!(["pull"]));
    assert_eq!(a.granted(who, "repository:newteam/app:pull,push"), serde_json::json!([]), "no such project");
    let resp = reqwest::blocking::Client::new()
        .post(a.reg.url("/v2/newteam/app/blobs/uploads/"))
        .basic_auth(who.0, Some(who.1))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(block_on(a.store().project_by_name("newteam")).unwrap().is_none());
}

#[test]
fn basic_push_and_pull_with_a_robot_then_disable_expire_rotate() {
    let mut a = start();
    a.add_project("team");
    a.add_project("other");
    let id = a.add_robot(CI, Some("team"), perms("team", &[RobotAction::Pull, RobotAction::Push]), None);

    a.act_as(&basic(CI, SECRET));
    let image = a.reg.push_image("team/app", "v1");
    assert_eq!(a.reg.get("/v2/team/app/manifests/v1").status(), StatusCode::OK);
    assert_eq!(a.reg.get(&format!("/v2/team/app/blobs/{}", image.layer_digest)).status(), StatusCode::OK);
    let resp = a.reg.req(reqwest::Method::POST, "/v2/other/app/blobs/uploads/").send().unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "another project");
    let del = a.reg.delete(&format!("/v2/team/app/manifests/{}", image.digest));
    assert_eq!(del.status(), StatusCode::FORBIDDEN, "no delete permission");

    // Rotated: the old secret is refused at once, the new one works.
    let rotated = "rotated-secret-9876543210";
    block_on(a.store().rotate_robot_secret(id, &berth_auth::hash_password(rotated))).unwrap().unwrap();
    assert_eq!(a.basic_pull((CI, SECRET), "team/app", "v1"), StatusCode::UNAUTHORIZED);
    assert_eq!(a.token((CI, SECRET), &[], false).0, StatusCode::UNAUTHORIZED);
    assert_eq!(a.basic_pull((CI, rotated), "team/app", "v1"), StatusCode::OK);

    // Disabled while its secret is in the success cache: refused at once.
    let update = RobotUpdate {
        description: String::new(),
        disabled: true,
        expires_ms: None,
        permissions: perms("team", &[RobotAction::Pull, RobotAction::Push]),
    };
    assert!(block_on(a.store().update_robot(id, &update)).unwrap());
    assert_eq!(a.basic_pull((CI, rotated), "team/app", "v1"), StatusCode::UNAUTHORIZED);
    assert_eq!(a.token((CI, rotated), &[], false).0, StatusCode::UNAUTHORIZED);

    // Expired long ago: refused.
    a.add_robot("robot$team+old", Some("team"), perms("team", &[RobotAction::Pull]), Some(now_ms() - 60_000));
    assert_eq!(a.basic_pull(("robot$team+old", SECRET), "team/app", "v1"), StatusCode::UNAUTHORIZED);
    assert_eq!(a.token(("robot$team+old", SECRET), &[], false).0, StatusCode::UNAUTHORIZED);

    // Expiring while its secret is cached: refused once the time passes,
    // without any change to its row.
    let soon = now_ms() + 2_000;
    a.add_robot("robot$team+brief", Some("team"), perms("team", &[RobotAction::Pull]), Some(soon));
    assert_eq!(a.basic_pull(("robot$team+brief", SECRET), "team/app", "v1"), StatusCode::OK);
    std::thread::sleep(Duration::from_millis((soon - now_ms()).max(0) as u64 + 200));
    assert_eq!(a.basic_pull(("robot$team+brief", SECRET), "team/app", "v1"), StatusCode::UNAUTHORIZED);
}

/// `berth audit export` with the configuration a server on `data` uses.
fn audit_export(data: &Path) -> Vec<Value> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["audit", "export"])
        .env_remove("REGISTRY_CONFIGURATION_PATH")
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn robot_logins_are_audited() {
    let mut a = start();
    a.add_project("team");
    a.add_robot(CI, Some("team"), perms("team", &[RobotAction::Pull]), None);
    assert_eq!(a.token((CI, "wrong"), &[], false).0, StatusCode::UNAUTHORIZED);
    assert_eq!(a.token((CI, SECRET), &[], false).0, StatusCode::OK);
    a.reg.server.stop().unwrap();
    let logins: Vec<_> = audit_export(a.reg.server.data_dir())
        .into_iter()
        .filter(|e| e["action"] == "login")
        .map(|e| (e["actor"].clone(), e["resource"].clone(), e["outcome"].clone(), e["status"].clone()))
        .collect();
    let row =
        |outcome: &str, status: u64| (Value::from(CI), Value::from(CI), Value::from(outcome), Value::from(status));
    assert_eq!(logins, [row("failure", 401), row("success", 200)]);
}
