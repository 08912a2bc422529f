//! Read-only maintenance mode switched at run time through the admin API
//! (`/api/v1/system/readonly`) and `berth admin readonly`, against the real
//! binary. In read-only mode writes are refused as Distribution refuses them
//! (`405 UNSUPPORTED`), uploads already in progress included; reads go on.
//! Only system administrators see or switch it; the switch outlives a
//! restart (it is kept in the metadata database for every node).

mod common;

use common::admin::*;

type Api = AdminApi;

use common::{expect_error, options, with_query, Image, Reg, OCI_MANIFEST};
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;

fn start() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let opts = options()
        .bin(berth_bin())
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string());
    let mut reg = Reg::start_with(opts);
    // Registry requests as the administrator (Basic credentials on /v2/).
    let mut headers = reqwest::header::HeaderMap::new();
    use base64::Engine;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PW}")));
    headers.insert("authorization", basic.parse().unwrap());
    reg.http = Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Api { reg, http: Client::new(), dir }
}

#[test]
fn administrators_switch_read_only_mode_at_run_time() {
    let mut a = start();
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "ro"})));
    let pw = "bob-password-1";
    a.ok(ADMIN, Method::POST, "/users", Some(json!({"username": "bob", "password": pw})));
    let bob = Some(("bob", pw));

    assert_eq!(a.ok(ADMIN, Method::GET, "/system/readonly", None), json!({"enabled": false}));
    let image = a.reg.push_image("ro/app", "v1");
    // An upload begun before the switch.
    let pending = a.reg.start_upload("ro/app");

    // Only system administrators see or switch it.
    for (method, body) in [(Method::GET, None), (Method::PUT, Some(json!({"enabled": true})))] {
        let (s, v) = a.call(bob, method.clone(), "/system/readonly", body);
        assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{method}: {v}");
    }
    let (s, _) = a.call(None, Method::GET, "/system/readonly", None);
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = a.call(ADMIN, Method::PUT, "/system/readonly", Some(json!({"enabled": "yes"})));
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(a.ok(ADMIN, Method::GET, "/system/readonly", None), json!({"enabled": false}));

    assert_eq!(a.ok(ADMIN, Method::PUT, "/system/readonly", Some(json!({"enabled": true}))), json!({"enabled": true}));
    assert_eq!(a.ok(ADMIN, Method::GET, "/system/readonly", None), json!({"enabled": true}));
    let reg = &a.reg;
    // Writes: Distribution's read-only answer.
    expect_error(reg.req(Method::POST, "/v2/ro/app/blobs/uploads/").send().unwrap(), 405, "UNSUPPORTED");
    let patch = reg.req(Method::PATCH, &pending).body(vec![1u8; 16]).send().unwrap();
    expect_error(patch, 405, "UNSUPPORTED");
    expect_error(reg.put_manifest("ro/app", "v2", OCI_MANIFEST, &image.manifest), 405, "UNSUPPORTED");
    expect_error(reg.delete(&format!("/v2/ro/app/manifests/{}", image.digest)), 405, "UNSUPPORTED");
    // Reads go on.
    let m = reg.get("/v2/ro/app/manifests/v1");
    assert_eq!(m.status(), StatusCode::OK);
    assert_eq!(m.bytes().unwrap().as_ref(), image.manifest.as_slice());
    assert_eq!(reg.get(&format!("/v2/ro/app/blobs/{}", image.layer_digest)).status(), StatusCode::OK);
    assert_eq!(reg.get("/v2/ro/app/tags/list").status(), StatusCode::OK);

    // Retention would delete: only a dry run is possible.
    let policy = json!({"algorithm": "or", "rules": [{"disabled": false, "action": "retain",
        "template": "latestPushedK", "params": {"latestPushedK": 1},
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}],
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}}});
    a.ok(ADMIN, Method::PUT, "/projects/ro/retention", Some(policy));
    let (s, v) = a.call(ADMIN, Method::POST, "/projects/ro/retention/runs", Some(json!({"dry_run": false})));
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "CONFLICT"), "{v}");
    a.ok(ADMIN, Method::POST, "/projects/ro/retention/runs", Some(json!({"dry_run": true})));

    // It outlives a restart (kept in the metadata database).
    a.reg.server.restart().unwrap();
    assert_eq!(a.ok(ADMIN, Method::GET, "/system/readonly", None), json!({"enabled": true}));
    expect_error(a.reg.req(Method::POST, "/v2/ro/app/blobs/uploads/").send().unwrap(), 405, "UNSUPPORTED");

    // Off: pushes work again, the pending upload included.
    assert_eq!(
        a.ok(ADMIN, Method::PUT, "/system/readonly", Some(json!({"enabled": false}))),
        json!({"enabled": false})
    );
    let data = b"after read-only".to_vec();
    let digest = common::sha256(&data);
    let put = a.reg.req(Method::PUT, &with_query(&pending, &format!("digest={digest}"))).body(data).send().unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let image2 = Image::oci(&a.reg, "ro/app");
    a.reg.push_manifest("ro/app", "v2", OCI_MANIFEST, &image2.manifest);
}

#[test]
fn the_configuration_forces_read_only_mode() {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let reg = Reg::start_with(
        options()
            .bin(berth_bin())
            .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
            .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string())
            .env("REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED", "true"),
    );
    let a = Api { reg, http: Client::new(), dir };
    assert_eq!(a.ok(ADMIN, Method::GET, "/system/readonly", None), json!({"enabled": true}));
    let (s, v) = a.call(ADMIN, Method::PUT, "/system/readonly", Some(json!({"enabled": false})));
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "CONFLICT"), "{v}");
    assert_eq!(a.ok(ADMIN, Method::GET, "/system/readonly", None), json!({"enabled": true}));
}

fn cli_ok(session: &Path, args: &[&str], stdin: &str) -> String {
    let out = berth_admin(session, args, stdin);
    assert!(out.status.success(), "berth admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_cli_switches_read_only_mode() {
    let a = start();
    let session = a.dir.path().join("cli").join("admin.json");
    cli_ok(&session, &["login", &a.reg.server.url(), "-u", "admin"], &format!("{ADMIN_PW}\n"));
    let status: Value = serde_json::from_str(&cli_ok(&session, &["--json", "readonly", "status"], "")).unwrap();
    assert_eq!(status, json!([{"enabled": false}]));
    let table = cli_ok(&session, &["readonly", "on"], "");
    assert!(table.contains("READ-ONLY") && table.contains("yes"), "{table}");
    assert_eq!(a.ok(ADMIN, Method::GET, "/system/readonly", None), json!({"enabled": true}));
    expect_error(a.reg.req(Method::POST, "/v2/ro2/app/blobs/uploads/").send().unwrap(), 405, "UNSUPPORTED");
    let table = cli_ok(&session, &["readonly", "off"], "");
    assert!(table.contains("no"), "{table}");
    assert_eq!(a.ok(ADMIN, Method::GET, "/system/readonly", None), json!({"enabled": false}));
}

/// Status of `POST /v2/<repo>/blobs/uploads/` (a write) on `base` as the administrator.
fn start_upload_status(c: &Client, base: &str) -> u16 {
    let r = c.post(format!("{base}/v2/shared/app/blobs/uploads/")).basic_auth("admin", Some(ADMIN_PW)).send();
    r.unwrap().status().as_u16()
}

/// Polls `base` until a write answers `want`; the time it took.
fn until_status(c: &Client, base: &str, want: u16) -> std::time::Duration {
    let t0 = std::time::Instant::now();
    while start_upload_status(c, base) != want {
        assert!(t0.elapsed() < std::time::Duration::from_secs(10), "node never answered {want}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    t0.elapsed()
}

#[test]
fn every_node_follows_the_switch_within_the_poll_interval() {
    let pg = berth_testkit::Postgres::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let root = dir.path().join("blobs");
    let node = || Reg::start_with(common::admin::cluster_node(&root, &pg.url("postgres"), &pwfile));
    let (a, b) = (Api { reg: node(), http: Client::new(), dir }, node());
    let c = Client::new();
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "shared"})));
    assert_eq!(start_upload_status(&c, &b.server.url()), 202);

    a.ok(ADMIN, Method::PUT, "/system/readonly", Some(json!({"enabled": true})));
    // The node that took the request at once; the other within its poll (3 s).
    assert_eq!(start_upload_status(&c, &a.reg.server.url()), 405);
    let waited = until_status(&c, &b.server.url(), 405);
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");

    a.ok(ADMIN, Method::PUT, "/system/readonly", Some(json!({"enabled": false})));
    let waited = until_status(&c, &b.server.url(), 202);
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
}
