//! Berth's own users and token service (`berth.auth`), black-box against
//! the real binary. Expected behaviour comes from the Docker token
//! authentication spec (challenge, `GET /token` response fields, OAuth2
//! grants) and Distribution's access table (reads `pull`, writes
//! `pull,push`, deletes `delete`, catalog `registry:catalog:*`).

mod common;

use base64::Engine;
use berth_meta::{NewUser, ProjectStore, Role, UserStore};
use common::{options, Reg};
use reqwest::blocking::Client;
use reqwest::StatusCode;
use serde_json::Value;
use std::path::PathBuf;

const ADMIN_PW: &str = "correct horse battery staple";
const DEV_PW: &str = "developer-password-1";

struct Auth {
    reg: Reg,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

fn start(extra: &[(&str, &str)]) -> Auth {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let mut opts = options()
        .delete_enabled(true)
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string());
    for (k, v) in extra {
        opts = opts.env(*k, *v);
    }
    let reg = Reg::start_with(opts);
    let db = reg.server.data_dir().join("berth").join("metadata.sqlite");
    Auth { reg, db, _dir: dir }
}

impl Auth {
    fn url(&self, path: &str) -> String {
        self.reg.url(path)
    }

    /// Adds a user straight to the database (the admin API comes later).
    fn add_user(&self, name: &str, password: &str, admin: bool) {
        let store = berth_meta::sqlite::SqliteStore::open(&self.db).unwrap();
        let hash = berth_auth::hash_password(password);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(store.create_user(&NewUser { name: name.into(), password_hash: hash, admin }, 1)).unwrap();
    }

    /// Gives `user` `role` in `project` straight in the database.
    fn set_role(&self, project: &str, user: &str, role: Role) {
        let store = self.store();
        block_on(async {
            let u = store.user_by_name(user).await.unwrap().expect("user exists");
            assert!(store.set_member(project, u.id, role).await.unwrap(), "project {project} exists");
        });
    }

    fn store(&self) -> berth_meta::sqlite::SqliteStore {
        berth_meta::sqlite::SqliteStore::open(&self.db).unwrap()
    }

    /// `GET /token` as docker sends it; the parsed body.
    fn token(&self, user: Option<(&str, &str)>, scopes: &[&str]) -> (StatusCode, Value) {
        let mut q: Vec<(&str, &str)> = vec![("service", "berth")];
        q.extend(scopes.iter().map(|s| ("scope", *s)));
        let mut req = self.reg.http.get(self.url("/token")).query(&q);
        if let Some((u, p)) = user {
            req = req.basic_auth(u, Some(p)).query(&[("account", u)]);
        }
        let resp = req.send().unwrap();
        let status = resp.status();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// From now on every request of `self.reg` carries `authorization`.
    fn act_as(&mut self, authorization: Option<String>) {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(a) = authorization {
            headers.insert("authorization", a.parse().unwrap());
        }
        self.reg.http =
            Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    }

    fn act_with_token(&mut self, user: Option<(&str, &str)>, scopes: &[&str]) -> Value {
        self.act_as(None);
        let (status, body) = self.token(user, scopes);
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["token"].as_str().unwrap().to_owned();
        self.act_as(Some(format!("Bearer {token}")));
        claims(&token)
    }
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWS compact token");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header(token: &str) -> Value {
    let head = token.split('.').next().unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head).unwrap()).unwrap()
}

fn challenge(resp: &reqwest::blocking::Response) -> String {
    resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

#[test]
fn challenge_names_realm_service_and_scope() {
    let a = start(&[]);
    let resp = a.reg.get("/v2/");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let realm = format!("{}/token", a.reg.server.url());
    assert_eq!(challenge(&resp), format!("Bearer realm=\"{realm}\",service=\"berth\""));
    let body: Value = resp.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    let resp = a.reg.get("/v2/team/app/manifests/v1");
    assert_eq!(
        challenge(&resp),
        format!("Bearer realm=\"{realm}\",service=\"berth\",scope=\"repository:team/app:pull\"")
    );
    let resp = a.reg.req(reqwest::Method::POST, "/v2/team/app/blobs/uploads/").send().unwrap();
    assert!(challenge(&resp).ends_with("scope=\"repository:team/app:pull,push\""), "{}", challenge(&resp));
    let resp = a.reg.get("/v2/_catalog");
    assert!(challenge(&resp).ends_with("scope=\"registry:catalog:*\""), "{}", challenge(&resp));
}

#[test]
fn docker_style_token_flow_push_pull_and_scopes() {
    let mut a = start(&[]);
    a.add_user("dev", DEV_PW, false);

    // The token for a push lists what was granted, signed with a key id.
    let (status, body) = a.token(Some(("admin", ADMIN_PW)), &["repository:team/app:pull,push"]);
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["access_token"], body["token"]);
    assert!(body["expires_in"].as_u64().unwrap() >= 60, "{body}");
    assert!(body["issued_at"].as_str().unwrap().contains('T'), "{body}");
    let h = header(token);
    assert_eq!(h["alg"], "ES256");
    assert!(h["kid"].as_str().is_some_and(|k| !k.is_empty()), "{h}");
    let c = claims(token);
    assert_eq!(
        (c["iss"].as_str(), c["sub"].as_str(), c["aud"].clone()),
        (Some("berth"), Some("admin"), c["aud"].clone())
    );
    assert!(c["aud"] == "berth" || c["aud"][0] == "berth", "{c}");
    assert_eq!(
        c["access"],
        serde_json::json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}])
    );

    a.act_with_token(Some(("admin", ADMIN_PW)), &["repository:team/app:pull,push"]);
    assert_eq!(a.reg.get("/v2/").status(), StatusCode::OK, "any valid token opens /v2/");
    let image = a.reg.push_image("team/app", "v1");
    assert_eq!(a.reg.get("/v2/team/app/manifests/v1").status(), StatusCode::OK);
    // Another repository is out of the token's scope.
    // A valid token lacking the scope: 403 DENIED (RFC 6750 §3.1, as Harbor), naming the scope.
    let other = a.reg.get("/v2/team/other/manifests/v1");
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&other).contains("error=\"insufficient_scope\""), "{}", challenge(&other));
    // pull+push does not include delete.
    let del = a.reg.delete(&format!("/v2/team/app/manifests/{}", image.digest));
    assert_eq!(del.status(), StatusCode::FORBIDDEN);
    let body: Value = a.reg.delete(&format!("/v2/team/app/manifests/{}", image.digest)).json().unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert!(challenge(&del).contains("scope=\"repository:team/app:delete\""), "{}", challenge(&del));

    // The admin's first push created project `team`; a Developer there,
    // asking for everything, gets pull and push only.
    a.set_role("team", "dev", Role::Developer);
    let c = a.act_with_token(Some(("dev", DEV_PW)), &["repository:team/app:pull,push,delete,*"]);
    assert_eq!(c["access"][0]["actions"], serde_json::json!(["pull", "push"]), "{c}");
    assert_eq!(a.reg.get("/v2/team/app/manifests/v1").status(), StatusCode::OK);
    let del = a.reg.delete(&format!("/v2/team/app/manifests/{}", image.digest));
    assert_eq!(del.status(), StatusCode::FORBIDDEN);
    // The catalog needs registry:catalog:*, which only administrators hold.
    let c = a.act_with_token(Some(("dev", DEV_PW)), &["registry:catalog:*"]);
    assert_eq!(c["access"], serde_json::json!([]), "{c}");
    assert_eq!(a.reg.get("/v2/_catalog").status(), StatusCode::FORBIDDEN);
    a.act_with_token(Some(("admin", ADMIN_PW)), &["registry:catalog:*", "repository:team/app:delete"]);
    let catalog: Value = a.reg.get("/v2/_catalog").json().unwrap();
    assert_eq!(catalog["repositories"], serde_json::json!(["team/app"]));
    assert_eq!(a.reg.delete(&format!("/v2/team/app/manifests/{}", image.digest)).status(), StatusCode::ACCEPTED);
}

#[test]
fn refresh_tokens_and_oauth_grants() {
    let mut a = start(&[]);
    a.add_user("dev", DEV_PW, false);
    // docker login: GET with offline_token=true yields a refresh token.
    let resp = a
        .reg
        .http
        .get(a.url("/token"))
        .query(&[("service", "berth"), ("offline_token", "true"), ("client_id", "docker"), ("account", "dev")])
        .basic_auth("dev", Some(DEV_PW))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let body: Value = resp.json().unwrap();
    let refresh = body["refresh_token"].as_str().expect("refresh token").to_owned();
    // A refresh token is no access token.
    a.act_as(Some(format!("Bearer {refresh}")));
    assert_eq!(a.reg.get("/v2/").status(), StatusCode::UNAUTHORIZED);
    a.act_as(None);

    let post = |form: &[(&str, &str)]| {
        let resp = a.reg.http.post(a.url("/token")).form(form).send().unwrap();
        let status = resp.status();
        (status, resp.json::<Value>().unwrap_or(Value::Null))
    };
    let (status, body) = post(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &refresh),
        ("service", "berth"),
        ("client_id", "docker"),
        ("scope", "repository:x:pull repository:y:push repository:dev-own/y:push"),
    ]);
    assert_eq!(status, StatusCode::OK, "{body}");
    // `x` and `y` are in the public `library`: pull yes, push no; `dev-own`
    // does not exist yet, so whoever may create projects may push there.
    assert_eq!(body["scope"], "repository:x:pull repository:dev-own/y:push");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], "dev");
    // An access token is no refresh token.
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (status, _) = post(&[("grant_type", "refresh_token"), ("refresh_token", &access), ("service", "berth")]);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The password grant, and its refusal.
    let (status, body) = post(&[
        ("grant_type", "password"),
        ("username", "dev"),
        ("password", DEV_PW),
        ("service", "berth"),
        ("access_type", "offline"),
        ("scope", "repository:x:pull"),
    ]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["refresh_token"].is_string());
    let (status, _) =
        post(&[("grant_type", "password"), ("username", "dev"), ("password", "nope"), ("service", "berth")]);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(&[("grant_type", "client_credentials"), ("service", "berth")]);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A new password revokes every earlier refresh token.
    block_on(a.store().set_password("dev", &berth_auth::hash_password("another-password-2"))).unwrap();
    let (status, _) = post(&[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("service", "berth")]);
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[test]
fn bad_credentials_other_services_and_throttling() {
    let a = start(&[]);
    a.add_user("dev", DEV_PW, false);
    let (status, body) = a.token(Some(("dev", "wrong")), &["repository:x:pull"]);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = a.token(Some(("nobody", DEV_PW)), &["repository:x:pull"]);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A token for another service is not ours to give.
    let resp = a.reg.http.get(a.url("/token")).query(&[("service", "other")]).basic_auth("dev", Some(DEV_PW)).send();
    assert_eq!(resp.unwrap().status(), StatusCode::BAD_REQUEST);
    // Basic credentials on the API itself: right ones pass, wrong ones get the Bearer challenge.
    let ok = a.reg.http.get(a.url("/v2/")).basic_auth("dev", Some(DEV_PW)).send().unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let wrong = a.reg.http.get(a.url("/v2/")).basic_auth("dev", Some("wrong")).send().unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&wrong).starts_with("Bearer "), "{}", challenge(&wrong));
    // Repeated failures for one user from one address are refused for a while,
    // even with the right password.
    let mut throttled = None;
    for _ in 0..10 {
        let resp = a.reg.http.get(a.url("/token")).basic_auth("dev", Some("guess")).send().unwrap();
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(resp);
            break;
        }
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = throttled.expect("throttled after repeated failures");
    assert!(resp.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let body: Value = resp.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    let (status, _) = a.token(Some(("dev", DEV_PW)), &[]);
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another user is not affected.
    let (status, _) = a.token(Some(("admin", ADMIN_PW)), &[]);
    assert_eq!(status, StatusCode::OK);
    // A disabled user cannot log in.
    block_on(a.store().set_disabled("admin", true)).unwrap();
    let (status, _) = a.token(Some(("admin", ADMIN_PW)), &[]);
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[test]
fn anonymous_pull_only_where_configured() {
    let mut a = start(&[]);
    a.act_with_token(Some(("admin", ADMIN_PW)), &["repository:pub/app:pull,push"]);
    a.reg.push_image("pub/app", "v1");
    // Without anonymouspull an anonymous token carries nothing.
    let c = a.act_with_token(None, &["repository:pub/app:pull"]);
    assert_eq!(c["access"], serde_json::json!([]));
    assert_eq!(c["sub"], "");
    assert_eq!(a.reg.get("/v2/pub/app/manifests/v1").status(), StatusCode::FORBIDDEN);
    a.act_as(None);
    assert_eq!(a.reg.get("/v2/pub/app/manifests/v1").status(), StatusCode::UNAUTHORIZED);
    drop(a);
    let mut b = start(&[("REGISTRY_BERTH_AUTH_ANONYMOUSPULL", "true")]);
    b.act_with_token(Some(("admin", ADMIN_PW)), &["repository:pub/app:pull,push"]);
    b.reg.push_image("pub/app", "v1");
    b.act_as(None);
    assert_eq!(b.reg.get("/v2/pub/app/manifests/v1").status(), StatusCode::OK, "anonymous pull without a token");
    let c = b.act_with_token(None, &["repository:pub/app:pull,push"]);
    assert_eq!(c["access"][0]["actions"], serde_json::json!(["pull"]));
    assert_eq!(b.reg.get("/v2/pub/app/manifests/v1").status(), StatusCode::OK);
    let resp = b.reg.req(reqwest::Method::POST, "/v2/pub/app/blobs/uploads/").send().unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[test]
fn mount_needs_pull_on_the_source() {
    let mut a = start(&[]);
    a.add_user("dev", DEV_PW, false);
    a.act_with_token(Some(("admin", ADMIN_PW)), &["repository:secret/app:pull,push"]);
    let image = a.reg.push_image("secret/app", "v1");
    // A token with push on mine but nothing on the source: no mount, a plain upload.
    a.act_with_token(Some(("admin", ADMIN_PW)), &["repository:mine/app:pull,push"]);
    let url = format!("/v2/mine/app/blobs/uploads/?mount={}&from=secret/app", image.layer_digest);
    let resp = a.reg.req(reqwest::Method::POST, &url).send().unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let url = format!("/v2/mine/app/blobs/uploads/?mount={}", image.layer_digest);
    assert_eq!(a.reg.req(reqwest::Method::POST, &url).send().unwrap().status(), StatusCode::ACCEPTED);
    // With pull on the source, the mount happens.
    a.act_with_token(Some(("admin", ADMIN_PW)), &["repository:mine/app:pull,push", "repository:secret/app:pull"]);
    let url = format!("/v2/mine/app/blobs/uploads/?mount={}&from=secret/app", image.layer_digest);
    assert_eq!(a.reg.req(reqwest::Method::POST, &url).send().unwrap().status(), StatusCode::CREATED);
}

#[test]
fn no_secret_in_logs_or_bodies() {
    let mut a = start(&[]);
    let canary = "canary-Pw-7f3a9e1d";
    a.add_user("dev", canary, false);
    let (_, body) = a.token(Some(("dev", canary)), &["repository:c/app:pull,push"]);
    let token = body["token"].as_str().unwrap().to_owned();
    let (_, refused) = a.token(Some(("dev", "canary-wrong-5b2c")), &[]);
    assert!(!refused.to_string().contains("canary"), "{refused}");
    a.act_as(Some(format!("Bearer {token}x")));
    let resp = a.reg.get("/v2/c/app/tags/list");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(!resp.text().unwrap().contains(&token[..20]));
    a.act_as(Some(format!("Bearer {token}")));
    a.reg.push_image("c/app", "v1");
    let log = a.reg.server.log();
    for secret in [canary, "canary-wrong-5b2c", ADMIN_PW, &token[token.len() - 30..]] {
        assert!(!log.contains(secret), "a secret is in the log:\n{log}");
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(!log.contains(signature));
}

#[test]
fn no_administrator_until_bootstrapped() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Reg::start_with(options().env("REGISTRY_BERTH_AUTH_ENABLED", "true"));
    assert!(reg.server.log().contains("berth admin bootstrap"), "{}", reg.server.log());
    let resp = reg.http.get(reg.url("/token")).basic_auth("admin", Some("admin")).send().unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "no default password");
    let bin = env!("CARGO_BIN_EXE_berth");
    let pw = dir.path().join("pw");
    let root = ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", reg.server.data_dir().display().to_string());
    std::fs::write(&pw, "short\n").unwrap();
    let run = |args: &[&str]| std::process::Command::new(bin).args(args).env(root.0, &root.1).output().unwrap();
    let out = run(&["admin", "bootstrap", "--user", "root", "--password-file", pw.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12"), "{out:?}");
    std::fs::write(&pw, "a-long-enough-password\n").unwrap();
    let out = run(&["admin", "bootstrap", "--user", "root", "--password-file", pw.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&["admin", "bootstrap", "--user", "other", "--password-file", pw.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a second bootstrap changes nothing: {out:?}");
    let resp = reg.http.get(reg.url("/token")).basic_auth("root", Some("a-long-enough-password")).send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Several nodes on one PostgreSQL: one signing key (generated by whichever
/// node started first), one administrator however many nodes bootstrap, and
/// tokens and refresh tokens from one node accepted by the other.
#[test]
fn nodes_sharing_postgresql_share_keys_and_users() {
    let pg = berth_testkit::Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let node = || {
        Reg::start_with(
            options()
                .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
                .env("REGISTRY_BERTH_DATABASE_URL", pg.url("postgres"))
                .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string()),
        )
    };
    let (a, b) = (node(), node());
    let token_from = |reg: &Reg| -> Value {
        let resp = reg
            .http
            .get(reg.url("/token"))
            .query(&[("service", "berth"), ("scope", "repository:x:pull"), ("offline_token", "true")])
            .basic_auth("admin", Some(ADMIN_PW))
            .send()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().unwrap()
    };
    let from_a = token_from(&a);
    let from_b = token_from(&b);
    assert_eq!(header(from_a["token"].as_str().unwrap())["kid"], header(from_b["token"].as_str().unwrap())["kid"]);
    let on_b = b.http.get(b.url("/v2/")).bearer_auth(from_a["token"].as_str().unwrap()).send().unwrap();
    assert_eq!(on_b.status(), StatusCode::OK, "a token from node A works on node B");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", from_a["refresh_token"].as_str().unwrap()),
        ("service", "berth"),
    ];
    assert_eq!(b.http.post(b.url("/token")).form(&form).send().unwrap().status(), StatusCode::OK);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = rt
        .block_on(berth_meta::postgres::PostgresStore::connect(&berth_meta::postgres::PostgresOptions::new(
            pg.url("postgres"),
        )))
        .unwrap();
    assert_eq!(rt.block_on(store.count_admins()).unwrap(), 1, "two nodes bootstrapped one administrator");
}

/// Harbor's matrix on the registry: each role's token for pull,push,delete
/// in a private project; non-members get nothing; a public project lets
/// anyone pull; a first push creates the project for whoever may create
/// projects, and only for them.
#[test]
fn projects_and_roles_decide_registry_access() {
    let mut a = start(&[]);
    let roles = [
        ("lguest", Some(Role::LimitedGuest), vec!["pull"]),
        ("guest", Some(Role::Guest), vec!["pull"]),
        ("developer", Some(Role::Developer), vec!["pull", "push"]),
        ("maintainer", Some(Role::Maintainer), vec!["pull", "push", "delete"]),
        ("padmin", Some(Role::ProjectAdmin), vec!["pull", "push", "delete"]),
        ("outsider", None, vec![]),
    ];
    for (name, _, _) in &roles {
        a.add_user(name, DEV_PW, false);
    }
    a.act_with_token(Some(("admin", ADMIN_PW)), &["repository:private/app:pull,push"]);
    a.reg.push_image("private/app", "v1");
    for (name, role, _) in &roles {
        if let Some(role) = role {
            a.set_role("private", name, *role);
        }
    }
    for (name, _, expected) in &roles {
        let (status, body) = a.token(Some((name, DEV_PW)), &["repository:private/app:pull,push,delete,*"]);
        assert_eq!(status, StatusCode::OK);
        let got = claims(body["token"].as_str().unwrap())["access"]
            .get(0)
            .map(|e| e["actions"].clone())
            .unwrap_or(serde_json::json!([]));
        assert_eq!(got, serde_json::json!(expected), "{name}");
    }
    // Basic credentials straight on the API follow the same policy.
    let basic = |user: &str| {
        a.reg.http.get(a.url("/v2/private/app/manifests/v1")).basic_auth(user, Some(DEV_PW)).send().unwrap().status()
    };
    assert_eq!(basic("guest"), StatusCode::OK);
    assert_eq!(basic("outsider"), StatusCode::FORBIDDEN);

    // Private: invisible to anonymous clients; public: anyone pulls, nobody anonymous pushes.
    a.act_as(None);
    assert_eq!(a.reg.get("/v2/private/app/manifests/v1").status(), StatusCode::UNAUTHORIZED);
    block_on(a.store().set_project_public("private", true)).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(6)); // the policy caches projects for 5 s
    assert_eq!(a.reg.get("/v2/private/app/manifests/v1").status(), StatusCode::OK);
    let c = a.act_with_token(None, &["repository:private/app:pull,push"]);
    assert_eq!(c["access"][0]["actions"], serde_json::json!(["pull"]));

    // A developer's first push creates their project, with them as ProjectAdmin.
    a.act_with_token(Some(("developer", DEV_PW)), &["repository:devteam/tool:pull,push"]);
    a.reg.push_image("devteam/tool", "v1");
    let members = block_on(a.store().members("devteam")).unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].user_name.as_str(), members[0].role), ("developer", Role::ProjectAdmin));
    assert!(!block_on(a.store().project_by_name("devteam")).unwrap().unwrap().public, "created private");
    drop(a);

    // With creation restricted to administrators, a user's push into a new project is refused.
    let mut b = start(&[("REGISTRY_BERTH_PROJECTS_CREATION", "adminonly")]);
    b.add_user("dev", DEV_PW, false);
    let c = b.act_with_token(Some(("dev", DEV_PW)), &["repository:newteam/app:pull,push"]);
    assert_eq!(c["access"], serde_json::json!([]));
    let resp = b.reg.req(reqwest::Method::POST, "/v2/newteam/app/blobs/uploads/").send().unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(block_on(b.store().project_by_name("newteam")).unwrap().is_none());
}
