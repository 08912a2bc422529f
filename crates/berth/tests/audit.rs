//! The audit log against the real binary: what a registry session records
//! (exported with `berth audit export`), and `berth audit verify` on an
//! intact chain, a tampered entry and a deleted one (docs/audit-log.md).

mod common;

use berth_meta::{AuditEvent, AuditStore};
use common::{options, Reg, OCI_MANIFEST};
use reqwest::StatusCode;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

const ADMIN_PW: &str = "correct horse battery staple";

/// `berth audit <args>` with the configuration a server on `data` uses.
fn audit_cli(data: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("audit")
        .args(args)
        .env_remove("REGISTRY_CONFIGURATION_PATH")
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", data)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn export(data: &Path, args: &[&str]) -> Vec<Value> {
    let out = audit_cli(data, &[&["export"], args].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// (actor, action, resource, outcome, status) of each exported entry.
fn summary(entries: &[Value]) -> Vec<(String, String, String, String, u64)> {
    entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("actor"), s("action"), s("resource"), s("outcome"), e["status"].as_u64().unwrap())
        })
        .collect()
}

fn row(actor: &str, action: &str, resource: &str, ok: bool, status: u64) -> (String, String, String, String, u64) {
    let outcome = if ok { "success" } else { "failure" };
    (actor.into(), action.into(), resource.into(), outcome.into(), status)
}

#[test]
fn pushes_pulls_deletes_and_logins_are_recorded_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let opts = options()
        .delete_enabled(true)
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string());
    let mut reg = Reg::start_with(opts);
    let token = |user: &str, pw: &str| {
        let scope = "repository:team/app:pull,push,delete";
        reg.http
            .get(reg.url("/token"))
            .query(&[("service", "berth"), ("scope", scope), ("account", user)])
            .basic_auth(user, Some(pw))
            .send()
            .unwrap()
    };
    assert_eq!(token("admin", "wrong password").status(), StatusCode::UNAUTHORIZED);
    let ok = token("admin", ADMIN_PW);
    assert_eq!(ok.status(), StatusCode::OK);
    let bearer = format!("Bearer {}", ok.json::<Value>().unwrap()["token"].as_str().unwrap());
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", bearer.parse().unwrap());
    reg.http = reqwest::blocking::Client::builder().default_headers(headers).build().unwrap();

    let image = reg.push_image("team/app", "v1");
    let d = &image.digest;
    let accept = ("accept", OCI_MANIFEST);
    let get = |path: &str| reg.http.get(reg.url(path)).header(accept.0, accept.1).send().unwrap().status();
    assert_eq!(get("/v2/team/app/manifests/v1"), StatusCode::OK);
    assert_eq!(reg.http.head(reg.url(&format!("/v2/team/app/manifests/{d}"))).send().unwrap().status(), 200);
    assert_eq!(get("/v2/team/app/manifests/nope"), StatusCode::NOT_FOUND);
    assert_eq!(get(&format!("/v2/team/app/blobs/{}", image.layer_digest)), StatusCode::OK, "not audited");
    assert_eq!(reg.delete(&format!("/v2/team/app/blobs/{}", image.layer_digest)).status(), StatusCode::ACCEPTED);
    assert_eq!(reg.delete(&format!("/v2/team/app/manifests/{d}")).status(), StatusCode::ACCEPTED);
    // A graceful stop appends what is still queued.
    reg.server.stop().unwrap();

    let data = reg.server.data_dir().to_owned();
    let entries = export(&data, &[]);
    assert_eq!(
        summary(&entries),
        [
            row("admin", "login", "admin", false, 401),
            row("admin", "login", "admin", true, 200),
            row("admin", "push", &format!("team/app:v1@{d}"), true, 201),
            row("admin", "pull", &format!("team/app:v1@{d}"), true, 200),
            row("admin", "pull", &format!("team/app@{d}"), true, 200),
            row("admin", "pull", "team/app:nope", false, 404),
            row("admin", "delete_blob", &format!("team/app@{}", image.layer_digest), true, 202),
            row("admin", "delete", &format!("team/app@{d}"), true, 202),
        ]
    );
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["id"], i as u64 + 1);
        assert_eq!(e["source"], "127.0.0.1");
        assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    assert_eq!(entries[0]["prev_hash"], berth_meta::GENESIS);
    assert_eq!(entries[1]["prev_hash"], entries[0]["hash"]);
    let head = entries.last().unwrap()["hash"].as_str().unwrap().to_owned();
    let out = audit_cli(&data, &["verify"]);
    assert!(out.status.success(), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out).trim(), format!("chain intact: 8 entries, head {head}"));

    // --since is inclusive, --until exclusive: split at entry 3's time, the
    // two halves are the whole log.
    let t = entries[2]["time"].as_str().unwrap();
    let (after, before) = (export(&data, &["--since", t]), export(&data, &["--until", t]));
    assert!(after.iter().all(|e| e["time"].as_str() >= Some(t)) && after.iter().any(|e| e["id"] == 3));
    assert!(before.iter().all(|e| e["time"].as_str() < Some(t)) && before.iter().all(|e| e["id"].as_u64() < Some(3)));
    assert_eq!([before, after].concat(), entries);
}

/// A database with `n` entries appended as a server would, at `path`.
fn chain_of(data: &Path, n: u16) -> std::path::PathBuf {
    let db = data.join("berth").join("metadata.sqlite");
    let store = berth_meta::sqlite::SqliteStore::open(&db).unwrap();
    let events: Vec<_> = (0..n)
        .map(|i| AuditEvent {
            time_ms: 1_700_000_000_000 + i64::from(i),
            actor: "alice".into(),
            source: "192.0.2.1".into(),
            action: "pull".into(),
            resource: format!("app:v{i}"),
            success: true,
            status: 200,
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(store.append_audit(&events)).unwrap();
    db
}

fn verify(data: &Path) -> (bool, String) {
    let out = audit_cli(data, &["verify"]);
    (out.status.success(), stdout(&out))
}

#[test]
fn verify_names_the_first_tampered_or_missing_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = chain_of(dir.path(), 6);
    let (ok, text) = verify(dir.path());
    assert!(ok && text.starts_with("chain intact: 6 entries, head "), "{text}");
    let sql = |s: &str| rusqlite::Connection::open(&db).unwrap().execute_batch(s).unwrap();

    // An edited actor: that entry's hash no longer matches.
    sql("UPDATE audit_log SET actor = 'mallory' WHERE id = 3");
    let (ok, text) = verify(dir.path());
    assert!(!ok, "{text}");
    assert!(text.starts_with("chain broken at entry 3: stored hash"), "{text}");
    sql("UPDATE audit_log SET actor = 'alice' WHERE id = 3");
    assert!(verify(dir.path()).0, "restored");

    // A deleted middle entry is named.
    sql("DELETE FROM audit_log WHERE id = 4");
    let (ok, text) = verify(dir.path());
    assert!(!ok);
    assert!(text.starts_with("chain broken at entry 4: entry 4 is missing"), "{text}");

    // So is a deleted tail (the head row remembers it), on a fresh chain.
    let dir = tempfile::tempdir().unwrap();
    let db = chain_of(dir.path(), 6);
    rusqlite::Connection::open(&db).unwrap().execute_batch("DELETE FROM audit_log WHERE id >= 5").unwrap();
    let (ok, text) = verify(dir.path());
    assert!(!ok && text.starts_with("chain broken at entry 5: entries 5..=6 are missing"), "{text}");
}

#[test]
fn prune_keeps_the_rest_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    chain_of(dir.path(), 5);
    // Entries from 2023 are older than a day.
    let out = audit_cli(dir.path(), &["prune", "--older-than", "24h"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out).trim(), "deleted 5 audit entries");
    let (ok, text) = verify(dir.path());
    assert!(ok && text.starts_with("chain intact: 0 entries, head "), "{text}");
    assert!(text.contains("entries up to 5 were deleted by retention"), "{text}");
    // Without a retention configured or given, prune refuses.
    let out = audit_cli(dir.path(), &["prune"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("berth.audit.retention"));
}
