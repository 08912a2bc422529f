//! Quotas and tag immutability rules through the admin API (`/api/v1`) and
//! `berth admin quota|immutable`, against the real binary. Who may do what
//! is Harbor's matrix: every role sees the quota, only system
//! administrators change it; Maintainers and ProjectAdmins change
//! immutability rules. A rule of another project is invisible (404), and a
//! rule takes effect on the next push.

mod common;

use common::admin::*;

type Api = AdminApi;

use common::{expect_error, options, random_bytes, sha256, Image, Reg, OCI_MANIFEST};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;

const MIB: u64 = 1024 * 1024;

fn start() -> Api {
    start_admin(options())
}

/// Bytes an image counts: its layer, config and manifest.
fn size(image: &Image) -> u64 {
    (image.layer.len() + serde_json::to_vec(&image.config).unwrap().len() + image.manifest.len()) as u64
}

/// The same image again in `repo` (its blobs and its manifest).
fn copy(reg: &Reg, image: &Image, repo: &str, tag: &str) {
    reg.push_blob(repo, &image.layer);
    reg.push_blob(repo, &serde_json::to_vec(&image.config).unwrap());
    reg.push_manifest(repo, tag, OCI_MANIFEST, &image.manifest);
}

fn rule(repo: &str, tag: &str) -> Value {
    json!({
        "disabled": false,
        "tag_selectors": [{"decoration": "matches", "pattern": tag}],
        "scope_selectors": {"repository": [{"decoration": "repoMatches", "pattern": repo}]},
    })
}

#[test]
fn administrators_set_quotas_and_pushes_stop_at_them() {
    let mut a = start();
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team-q"})));
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team-o"})));
    let (dev_pw, padmin_pw) =
        (a.user("dev", Some(("team-q", "developer"))), a.user("padmin", Some(("team-q", "projectAdmin"))));
    let (dev, padmin) = (Some(("dev", dev_pw.as_str())), Some(("padmin", padmin_pw.as_str())));

    // No limit until an administrator sets one; a ProjectAdmin cannot.
    let q = a.ok(dev, Method::GET, "/projects/team-q/quota", None);
    assert_eq!(q, json!({"limit": null, "used": 0, "shared": 0, "exclusive": 0, "blob_count": 0}));
    let (s, v) = a.call(padmin, Method::PUT, "/projects/team-q/quota", Some(json!({"limit": MIB})));
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{v}");
    let q = a.ok(ADMIN, Method::PUT, "/projects/team-q/quota", Some(json!({"limit": MIB})));
    assert_eq!(q["limit"], MIB);

    // Bad bodies: unknown fields, no limit at all, a negative one.
    for body in [json!({"limit": MIB, "hard": 1}), json!({}), json!({"limit": -1})] {
        let (s, v) = a.call(ADMIN, Method::PUT, "/projects/team-q/quota", Some(body.clone()));
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{body}: {v}");
    }
    assert_eq!(a.ok(dev, Method::GET, "/projects/team-q/quota", None)["limit"], MIB);

    // A Developer pushes two images; one is also in another project (shared).
    a.push_as(("dev", &dev_pw), "team-q/app");
    let one = a.reg.push_image("team-q/app", "v1");
    let two = a.reg.push_image("team-q/app", "v2");
    a.push_as(("admin", ADMIN_PW), "team-o/app");
    copy(&a.reg, &one, "team-o/app", "v1");
    let q = a.ok(dev, Method::GET, "/projects/team-q/quota", None);
    assert_eq!(
        q,
        json!({"limit": MIB, "used": size(&one) + size(&two), "shared": size(&one), "exclusive": size(&two),
               "blob_count": 6})
    );

    // Past the limit the push is refused, naming the quota.
    a.push_as(("dev", &dev_pw), "team-q/app");
    let big = random_bytes(MIB as usize);
    let loc = a.reg.start_upload("team-q/app");
    let resp = a
        .reg
        .req(Method::PUT, &common::with_query(&loc, &format!("digest={}", sha256(&big))))
        .header("content-type", "application/octet-stream")
        .body(big)
        .send()
        .unwrap();
    let err = expect_error(resp, 403, "DENIED");
    assert!(err["message"].as_str().unwrap().contains("project team-q: storage quota 1.0 MiB exceeded"), "{err}");

    // A limit below the usage is allowed (Harbor's rule): a manifest whose
    // blobs were uploaded before is then refused; removing the limit lets it in.
    let three = Image::oci(&a.reg, "team-q/app");
    let q = a.ok(ADMIN, Method::PUT, "/projects/team-q/quota", Some(json!({"limit": 10})));
    assert_eq!((q["limit"].as_u64(), q["used"].as_u64()), (Some(10), Some(size(&one) + size(&two))));
    expect_error(a.reg.put_manifest("team-q/app", "v3", OCI_MANIFEST, &three.manifest), 403, "DENIED");
    assert_eq!(a.ok(ADMIN, Method::PUT, "/projects/team-q/quota", Some(json!({"limit": null})))["limit"], Value::Null);
    a.reg.push_manifest("team-q/app", "v3", OCI_MANIFEST, &three.manifest);
}

#[test]
fn maintainers_manage_immutability_rules_which_apply_at_once() {
    let mut a = start();
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team-i"})));
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team-o"})));
    let maint_pw = a.user("maint", Some(("team-i", "maintainer")));
    let dev_pw = a.user("dev", Some(("team-i", "developer")));
    let outsider_pw = a.user("outsider", Some(("team-o", "projectAdmin")));
    let (maint, dev, outsider) =
        (Some(("maint", maint_pw.as_str())), Some(("dev", dev_pw.as_str())), Some(("outsider", outsider_pw.as_str())));
    let rules = "/projects/team-i/immutable-rules";

    // A push first, so this node has the project's (empty) rules cached.
    a.push_as(("dev", &dev_pw), "team-i/app");
    let v1 = a.reg.push_image("team-i/app", "v1");

    // A Developer may see the rules but not add one; a Maintainer may.
    let (s, v) = a.call(dev, Method::POST, rules, Some(rule("**", "v*")));
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{v}");
    let (s, created) = a.call(maint, Method::POST, rules, Some(rule("**", "v*")));
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    let expected = json!({
        "id": id, "disabled": false,
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "v*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]},
    });
    assert_eq!(created, expected);
    assert_eq!(a.ok(dev, Method::GET, rules, None), json!([expected]));
    assert_eq!(a.ok(dev, Method::GET, &format!("{rules}/{id}"), None), expected);

    // The rule refuses moving v1 at once (no waiting for the cache).
    let other = Image::oci(&a.reg, "team-i/app");
    let err = expect_error(a.reg.put_manifest("team-i/app", "v1", OCI_MANIFEST, &other.manifest), 403, "DENIED");
    assert_eq!(err["message"], format!("tag v1 of team-i/app is immutable (rule {id})"));
    a.reg.push_manifest("team-i/app", "v1", OCI_MANIFEST, &v1.manifest);

    // Disabled, it no longer applies; enabled again, it does.
    let patched = a.ok(maint, Method::PATCH, &format!("{rules}/{id}"), Some(json!({"disabled": true})));
    assert_eq!((patched["disabled"].as_bool(), &patched["tag_selectors"]), (Some(true), &expected["tag_selectors"]));
    a.reg.push_manifest("team-i/app", "v1", OCI_MANIFEST, &other.manifest);
    a.ok(maint, Method::PUT, &format!("{rules}/{id}"), Some(rule("**", "v*")));
    expect_error(a.reg.put_manifest("team-i/app", "v1", OCI_MANIFEST, &v1.manifest), 403, "DENIED");
    assert_eq!(a.call(dev, Method::DELETE, &format!("{rules}/{id}"), None).0, StatusCode::FORBIDDEN);

    // Bad input: a pattern that does not compile, unknown fields, two selectors, a wrong decoration.
    let mut two_tags = rule("**", "v*");
    two_tags["tag_selectors"] =
        json!([{"decoration": "matches", "pattern": "a"}, {"decoration": "matches", "pattern": "b"}]);
    let mut extra = rule("**", "v*");
    extra["template"] = json!("immutable_template");
    for body in [rule("**", "v{1,2"), rule("[", "v*"), extra, two_tags, json!({"tag_selectors": []})] {
        let (s, v) = a.call(maint, Method::POST, rules, Some(body.clone()));
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{body}: {v}");
    }
    let (s, v) = a.call(maint, Method::PATCH, &format!("{rules}/{id}"), Some(json!({"disabled": true, "id": 9})));
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{v}");

    // A rule of another project is not found through this one, and stays untouched.
    let foreign = a.ok(ADMIN, Method::POST, "/projects/team-o/immutable-rules", Some(rule("**", "**")));
    let foreign_path = format!("{rules}/{}", foreign["id"]);
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(rule("**", "x"))),
        (Method::PATCH, Some(json!({"disabled": true}))),
        (Method::DELETE, None),
    ] {
        let (s, v) = a.call(maint, method.clone(), &foreign_path, body);
        assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{method} {foreign_path}: {v}");
    }
    assert_eq!(a.ok(ADMIN, Method::GET, "/projects/team-o/immutable-rules", None), json!([foreign]));

    // A member of another project sees nothing of this one.
    let rule_path = format!("{rules}/{id}");
    for (method, path, body) in [
        (Method::GET, "/projects/team-i/quota", None),
        (Method::PUT, "/projects/team-i/quota", Some(json!({"limit": 1}))),
        (Method::GET, rules, None),
        (Method::POST, rules, Some(rule("**", "**"))),
        (Method::GET, rule_path.as_str(), None),
        (Method::PUT, rule_path.as_str(), Some(rule("**", "**"))),
        (Method::PATCH, rule_path.as_str(), Some(json!({"disabled": true}))),
        (Method::DELETE, rule_path.as_str(), None),
    ] {
        let (s, v) = a.call(outsider, method.clone(), path, body);
        assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{method} {path}: {v}");
    }

    // Deleted, the rule stops applying at once.
    assert_eq!(a.call(maint, Method::DELETE, &rule_path, None).0, StatusCode::NO_CONTENT);
    assert_eq!(a.call(maint, Method::GET, &rule_path, None).0, StatusCode::NOT_FOUND);
    a.reg.push_manifest("team-i/app", "v1", OCI_MANIFEST, &v1.manifest);
}

fn ok(session: &Path, args: &[&str]) -> String {
    let out = berth_admin(session, args, "");
    assert!(out.status.success(), "berth admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_cli_sets_and_shows_quotas_and_manages_rules() {
    let a = start();
    let session = a.dir.path().join("cli").join("admin.json");
    let url = a.reg.server.url();
    let login = berth_admin(&session, &["login", &url, "-u", "admin"], &format!("{ADMIN_PW}\n"));
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    ok(&session, &["projects", "create", "team-c"]);

    // Quotas: binary and decimal units, `none`; a table, or the API's JSON.
    ok(&session, &["quota", "set", "team-c", "10GiB"]);
    let shown: Value = serde_json::from_str(&ok(&session, &["--json", "quota", "show", "team-c"])).unwrap();
    assert_eq!(shown[0]["limit"], 10 * 1024 * MIB, "one object, in an array as every `--json` answer");
    ok(&session, &["quota", "set", "team-c", "500MB"]);
    let table = ok(&session, &["quota", "show", "team-c"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("LIMIT") && lines[0].contains("USED") && lines[0].contains("EXCLUSIVE"), "{table}");
    assert!(lines[1].starts_with("476.8 MiB"), "500 MB is 476.8 MiB: {table}");
    ok(&session, &["quota", "set", "team-c", "none"]);
    let shown: Value = serde_json::from_str(&ok(&session, &["--json", "quota", "show", "team-c"])).unwrap();
    assert_eq!(shown[0]["limit"], Value::Null);
    let out = berth_admin(&session, &["quota", "set", "team-c", "10 parsecs"], "");
    assert!(!out.status.success());

    // Rules: add, list (table and JSON), disable, delete.
    let added: Value = serde_json::from_str(&ok(
        &session,
        &["--json", "immutable", "add", "team-c", "--repo", "api/**", "--tag", "latest", "--exclude-tag"],
    ))
    .unwrap();
    let id = added[0]["id"].as_i64().unwrap();
    let listed: Value = serde_json::from_str(&ok(&session, &["--json", "immutable", "list", "team-c"])).unwrap();
    assert_eq!(
        listed[0]["tag_selectors"][0],
        json!({"kind": "doublestar", "decoration": "excludes", "pattern": "latest"})
    );
    assert_eq!(listed[0]["scope_selectors"]["repository"][0]["pattern"], "api/**");
    let table = ok(&session, &["immutable", "list", "team-c"]);
    let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, [id.to_string().as_str(), "api/**", "not", "latest", "no"], "{table}");
    ok(&session, &["immutable", "disable", "team-c", &id.to_string()]);
    let listed: Value = serde_json::from_str(&ok(&session, &["--json", "immutable", "list", "team-c"])).unwrap();
    assert_eq!(listed[0]["disabled"], true);
    ok(&session, &["immutable", "delete", "team-c", &id.to_string()]);
    assert_eq!(ok(&session, &["immutable", "list", "team-c"]).lines().count(), 1, "only the header");
    let out = berth_admin(&session, &["immutable", "add", "team-c", "--tag", "v{1"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("INVALID_INPUT") && !out.status.success());
}
