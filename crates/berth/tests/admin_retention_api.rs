//! Tag retention through the admin API (`/api/v1/projects/{project}/retention`)
//! and `berth admin retention`, against the real binary. Harbor's matrix:
//! every role sees the policy and the runs, Developers, Maintainers and
//! ProjectAdmins change it and start runs. A dry run lists what the policy
//! would remove; applying it then removes exactly that, and the registry
//! stops serving it at once. Immutable tags are never removed (Harbor:
//! retention respects tag immutability).

mod common;

use common::admin::*;

type Api = AdminApi;

use berth_testkit::BerthOptions;
use common::OCI_MANIFEST;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

fn start() -> Api {
    start_admin(BerthOptions::default())
}

impl Api {
    fn send(&self, who: Who, method: Method, path: &str, body: Option<String>) -> (StatusCode, Value) {
        let mut r = self.http.request(method, self.reg.url(&format!("/api/v1{path}")));
        if let Some((u, p)) = who {
            r = r.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b);
        }
        let resp = r.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn manifest_status(&self, repo: &str, reference: &str) -> u16 {
        let path = format!("/v2/{repo}/manifests/{reference}");
        self.reg.req(Method::GET, &path).header("accept", OCI_MANIFEST).send().unwrap().status().as_u16()
    }
}

/// Harbor's JSON: retain the `k` most recently pushed artifacts of `repo`.
fn latest_pushed(repo: &str, k: u64) -> Value {
    json!({"algorithm": "or", "rules": [{"disabled": false, "action": "retain", "template": "latestPushedK",
        "params": {"latestPushedK": k},
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": repo}]}}],
        "trigger": {"kind": "Schedule", "settings": {"cron": ""}}})
}

/// A run's decisions: (repository, digest, tags) of those removed, and of those retained.
type Artifact = (String, String, Vec<String>);
fn decisions(run: &Value) -> (BTreeSet<Artifact>, BTreeSet<Artifact>) {
    let mut removed = BTreeSet::new();
    let mut retained = BTreeSet::new();
    for i in run["items"].as_array().unwrap() {
        let tags = i["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()).collect();
        let a = (i["repository"].as_str().unwrap().to_owned(), i["digest"].as_str().unwrap().to_owned(), tags);
        let side = if i["retained"].as_bool().unwrap() { &mut retained } else { &mut removed };
        side.insert(a);
    }
    (removed, retained)
}

#[test]
fn developers_set_a_policy_dry_run_it_and_apply_exactly_that() {
    let mut a = start();
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team-r"})));
    a.ok(ADMIN, Method::POST, "/projects", Some(json!({"name": "team-x"})));
    let dev_pw = a.user("dev", Some(("team-r", "developer")));
    let guest_pw = a.user("guest", Some(("team-r", "guest")));
    let outsider_pw = a.user("outsider", Some(("team-x", "projectAdmin")));
    let (dev, guest, outsider) =
        (Some(("dev", dev_pw.as_str())), Some(("guest", guest_pw.as_str())), Some(("outsider", outsider_pw.as_str())));
    let policy_path = "/projects/team-r/retention";
    let runs_path = "/projects/team-r/retention/runs";

    // Five tags, pushed in order (distinct push times), and another repository.
    a.push_as(("dev", &dev_pw), "team-r/other");
    let other = a.reg.push_image("team-r/other", "old");
    a.push_as(("dev", &dev_pw), "team-r/app");
    let mut images = Vec::new();
    for i in 1..=5 {
        images.push(a.reg.push_image("team-r/app", &format!("v{i}")));
        std::thread::sleep(Duration::from_millis(10));
    }
    let artifact = |i: usize| ("team-r/app".to_owned(), images[i - 1].digest.clone(), vec![format!("v{i}")]);

    // No policy yet; a Guest sees that but may not set one; a Developer may.
    let (s, v) = a.call(guest, Method::GET, policy_path, None);
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{v}");
    let policy = latest_pushed("app", 2);
    let (s, v) = a.call(guest, Method::PUT, policy_path, Some(policy.clone()));
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{v}");
    assert_eq!(a.ok(dev, Method::PUT, policy_path, Some(policy.clone())), policy);
    assert_eq!(a.ok(guest, Method::GET, policy_path, None), policy);

    // Policies that do not parse or compile, and crons that do not parse, are refused, naming why.
    let mut bad_template = latest_pushed("app", 2);
    bad_template["rules"][0]["template"] = json!("keepEverythingForever");
    let mut bad_cron = latest_pushed("app", 2);
    bad_cron["trigger"]["settings"]["cron"] = json!("at noon");
    let mut bad_pattern = latest_pushed("app", 2);
    bad_pattern["rules"][0]["tag_selectors"][0]["pattern"] = json!("v{1");
    let mut bad_algorithm = latest_pushed("app", 2);
    bad_algorithm["algorithm"] = json!("and");
    for body in [
        "{\"rules\": [".to_owned(),
        bad_template.to_string(),
        bad_cron.to_string(),
        bad_pattern.to_string(),
        bad_algorithm.to_string(),
    ] {
        let (s, v) = a.send(dev, Method::PUT, policy_path, Some(body.clone()));
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{body}: {v}");
    }
    assert!(a.call(dev, Method::PUT, policy_path, Some(bad_cron)).1["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("at noon"));
    assert_eq!(a.ok(guest, Method::GET, policy_path, None), policy, "refused policies change nothing");
    // Harbor's six-field cron is accepted.
    let mut daily = latest_pushed("app", 2);
    daily["trigger"]["settings"]["cron"] = json!("0 0 0 * * *");
    assert_eq!(a.ok(dev, Method::PUT, policy_path, Some(daily.clone())), daily);
    a.ok(dev, Method::PUT, policy_path, Some(policy.clone()));

    // A Guest may not run it; a run body must say whether it is dry.
    let (s, v) = a.call(guest, Method::POST, runs_path, Some(json!({"dry_run": true})));
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "FORBIDDEN"), "{v}");
    for body in [json!({}), json!({"dry_run": true, "force": true})] {
        let (s, v) = a.call(dev, Method::POST, runs_path, Some(body.clone()));
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "INVALID_INPUT"), "{body}: {v}");
    }

    // Dry run: the two newest stay; v1–v3 would go; `other` is not selected by the rule.
    let (s, first) = a.call(dev, Method::POST, runs_path, Some(json!({"dry_run": true})));
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!((first["dry_run"].as_bool(), first["removed"].as_u64()), (Some(true), Some(3)), "{first}");
    let first_run = a.ok(guest, Method::GET, &format!("{runs_path}/{}", first["id"]), None);
    let (removed, retained) = decisions(&first_run);
    assert_eq!(removed, BTreeSet::from([artifact(1), artifact(2), artifact(3)]));
    assert!(retained.contains(&artifact(4)) && retained.contains(&artifact(5)), "{first_run}");
    assert_eq!(first["retained"].as_u64(), Some(retained.len() as u64));
    for i in 1..=5 {
        assert_eq!(a.manifest_status("team-r/app", &format!("v{i}")), 200, "a dry run removes nothing");
    }

    // v1 made immutable (Maintainer's right: the administrator here) is kept whatever the policy says.
    let rule = json!({"disabled": false, "tag_selectors": [{"decoration": "matches", "pattern": "v1"}],
        "scope_selectors": {"repository": [{"decoration": "repoMatches", "pattern": "**"}]}});
    a.ok(ADMIN, Method::POST, "/projects/team-r/immutable-rules", Some(rule));
    let second = a.ok(dev, Method::POST, runs_path, Some(json!({"dry_run": true})));
    let dry = a.ok(dev, Method::GET, &format!("{runs_path}/{}", second["id"]), None);
    let (dry_removed, dry_retained) = decisions(&dry);
    assert_eq!(dry_removed, BTreeSet::from([artifact(2), artifact(3)]));
    assert!(dry_retained.contains(&artifact(1)), "{dry}");

    // While another node's run holds the project's lease, a run is refused.
    let db = rusqlite::Connection::open(a.reg.server.data_dir().join("berth/metadata.sqlite")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute(
        "INSERT INTO job_leases (job, holder, expires_ms, acquired_ms) VALUES ('retention:team-r', 'other-node', ?1, 0)",
        [i64::MAX / 2],
    )
    .unwrap();
    let (s, v) = a.call(dev, Method::POST, runs_path, Some(json!({"dry_run": false})));
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "CONFLICT"), "{v}");
    db.execute("DELETE FROM job_leases WHERE job = 'retention:team-r'", []).unwrap();

    // Applied: exactly the dry run's removals; the registry serves 404 for them at once.
    let (s, applied) = a.call(dev, Method::POST, runs_path, Some(json!({"dry_run": false})));
    assert_eq!(s, StatusCode::CREATED, "{applied}");
    assert_eq!((applied["dry_run"].as_bool(), applied["removed"].as_u64()), (Some(false), Some(2)));
    let applied_run = a.ok(dev, Method::GET, &format!("{runs_path}/{}", applied["id"]), None);
    assert_eq!(decisions(&applied_run), (dry_removed, dry_retained));
    assert_eq!(applied_run["status"], "succeeded");
    for (tag, status) in [("v1", 200), ("v2", 404), ("v3", 404), ("v4", 200), ("v5", 200)] {
        assert_eq!(a.manifest_status("team-r/app", tag), status, "{tag}");
    }
    for (i, status) in [(2, 404), (3, 404), (4, 200)] {
        assert_eq!(a.manifest_status("team-r/app", &images[i - 1].digest), status, "v{i}'s digest");
    }
    a.push_as(("dev", &dev_pw), "team-r/other");
    assert_eq!(a.manifest_status("team-r/other", &other.digest), 200, "not selected by the rule");

    // Runs, newest first, paged by id.
    let runs = a.ok(guest, Method::GET, runs_path, None);
    let ids: Vec<&Value> = runs.as_array().unwrap().iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, [&applied["id"], &second["id"], &first["id"]]);
    assert_eq!(runs[0]["dry_run"], false);
    assert_eq!(runs[2]["dry_run"], true);
    let page = a.ok(guest, Method::GET, &format!("{runs_path}?limit=1&after={}", applied["id"]), None);
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["id"], second["id"]);

    // A run of another project is not found through this one.
    a.ok(ADMIN, Method::PUT, "/projects/team-x/retention", Some(latest_pushed("**", 1)));
    let foreign = a.ok(ADMIN, Method::POST, "/projects/team-x/retention/runs", Some(json!({"dry_run": true})));
    let (s, v) = a.call(ADMIN, Method::GET, &format!("{runs_path}/{}", foreign["id"]), None);
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{v}");
    let (s, v) = a.call(ADMIN, Method::GET, &format!("{runs_path}/{}", i64::MAX), None);
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{v}");

    // A member of another project sees nothing of this one.
    let run_path = format!("{runs_path}/{}", applied["id"]);
    for (method, path, body) in [
        (Method::GET, policy_path, None),
        (Method::PUT, policy_path, Some(policy.clone())),
        (Method::DELETE, policy_path, None),
        (Method::GET, runs_path, None),
        (Method::POST, runs_path, Some(json!({"dry_run": true}))),
        (Method::GET, run_path.as_str(), None),
    ] {
        let (s, v) = a.call(outsider, method.clone(), path, body);
        assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{method} {path}: {v}");
    }

    // Deleted (Guest may not): no policy, nothing to run; the runs stay.
    assert_eq!(a.call(guest, Method::DELETE, policy_path, None).0, StatusCode::FORBIDDEN);
    assert_eq!(a.call(dev, Method::DELETE, policy_path, None).0, StatusCode::NO_CONTENT);
    assert_eq!(a.call(dev, Method::GET, policy_path, None).0, StatusCode::NOT_FOUND);
    assert_eq!(a.call(dev, Method::DELETE, policy_path, None).0, StatusCode::NOT_FOUND);
    let (s, v) = a.call(dev, Method::POST, runs_path, Some(json!({"dry_run": true})));
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{v}");
    assert_eq!(a.ok(guest, Method::GET, runs_path, None).as_array().unwrap().len(), 3);
}

fn ok(session: &Path, args: &[&str], stdin: &str) -> String {
    let out = berth_admin(session, args, stdin);
    assert!(out.status.success(), "berth admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ok_json(session: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(session, &all, "")).unwrap()
}

#[test]
fn the_cli_sets_shows_runs_and_deletes_policies() {
    let mut a = start();
    let session = a.dir.path().join("cli").join("admin.json");
    let url = a.reg.server.url();
    let login = berth_admin(&session, &["login", &url, "-u", "admin"], &format!("{ADMIN_PW}\n"));
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    ok(&session, &["projects", "create", "team-c"], "");
    a.push_as(("admin", ADMIN_PW), "team-c/app");
    let old = a.reg.push_image("team-c/app", "old");
    std::thread::sleep(Duration::from_millis(10));
    a.reg.push_image("team-c/app", "new");

    // Set from a file and from stdin; shown as a table of rules, or the policy itself.
    let file = a.dir.path().join("policy.json");
    let mut policy = latest_pushed("**", 1);
    policy["trigger"]["settings"]["cron"] = json!("0 0 3 * * *");
    std::fs::write(&file, policy.to_string()).unwrap();
    ok(&session, &["retention", "set", "team-c", file.to_str().unwrap()], "");
    assert_eq!(ok_json(&session, &["retention", "show", "team-c"]), json!([policy]));
    let table = ok(&session, &["retention", "show", "team-c"], "");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("RULE") && lines[0].contains("TEMPLATE"), "{table}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["1", "latestPushedK", "1", "**", "**", "no"]);
    assert_eq!(lines[2], "schedule: 0 0 3 * * *");
    ok(&session, &["retention", "set", "team-c", "-"], &latest_pushed("**", 1).to_string());
    assert!(ok(&session, &["retention", "show", "team-c"], "").contains("schedule: none"));
    let out = berth_admin(&session, &["retention", "set", "team-c", "-"], "{\"algorithm\": \"xor\"}");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("INVALID_INPUT"));

    // Dry run, then its items, then the real run and the list of runs.
    let dry = ok_json(&session, &["retention", "run", "team-c", "--dry-run"]);
    assert_eq!((dry[0]["dry_run"].as_bool(), dry[0]["removed"].as_u64()), (Some(true), Some(1)), "{dry}");
    let id = dry[0]["id"].to_string();
    let items = ok(&session, &["retention", "run-items", "team-c", &id], "");
    let removed: Vec<&str> = items.lines().filter(|l| l.split_whitespace().nth(3) == Some("no")).collect();
    assert_eq!(removed.len(), 1, "{items}");
    assert!(removed[0].starts_with(&format!("team-c/app  {}  old", old.digest)), "{items}");
    let applied = ok(&session, &["retention", "run", "team-c"], "");
    assert_eq!(applied.lines().nth(1).unwrap().split_whitespace().skip(1).collect::<Vec<_>>(), ["no", "1", "1"]);
    assert_eq!(a.manifest_status("team-c/app", "old"), 404);
    assert_eq!(a.manifest_status("team-c/app", "new"), 200);
    let runs = ok_json(&session, &["retention", "runs", "team-c"]);
    assert_eq!(
        runs.as_array().unwrap().iter().map(|r| r["dry_run"].as_bool().unwrap()).collect::<Vec<_>>(),
        [false, true]
    );

    ok(&session, &["retention", "delete", "team-c"], "");
    let out = berth_admin(&session, &["retention", "show", "team-c"], "");
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NOT_FOUND"));
}
