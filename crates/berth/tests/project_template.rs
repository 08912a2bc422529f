//! `berth.projects.template`: a project created by a first push starts with
//! the template's quota, immutable tags and retention policy; a template
//! that cannot work stops the start, naming the key.

mod common;

use common::{options, Reg};
use reqwest::blocking::Client;
use serde_json::Value;

const ADMIN_PW: &str = "correct horse battery staple";

const POLICY: &str = r#"{"algorithm":"or","rules":[{"action":"retain","template":"latestPushedK","params":{"latestPushedK":3},
 "tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"**"}],
 "scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}],
 "trigger":{"kind":"Schedule","settings":{"cron":"0 0 3 * * *"}}}"#;

fn config(dir: &std::path::Path, immutable: &str) -> std::path::PathBuf {
    let policy = dir.join("retention.json");
    std::fs::write(&policy, POLICY).unwrap();
    let path = dir.join("config.yml");
    std::fs::write(
        &path,
        format!(
            "version: 0.1\nberth:\n  projects:\n    autocreate: true\n    template:\n      storagelimit: 50000000\n      immutabletags: [\"{immutable}\"]\n      retention: {}\n",
            policy.display()
        ),
    )
    .unwrap();
    path
}

fn get(reg: &Reg, path: &str) -> Value {
    let resp =
        Client::new().get(reg.url(&format!("/api/v1{path}"))).basic_auth("admin", Some(ADMIN_PW)).send().unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().unwrap()
}

#[test]
fn a_first_push_creates_the_project_from_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let opts = options()
        .config_file(config(dir.path(), "v*"))
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string());
    let mut reg = Reg::start_with(opts);
    let mut headers = reqwest::header::HeaderMap::new();
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("admin:{ADMIN_PW}"));
    headers.insert("authorization", format!("Basic {basic}").parse().unwrap());
    reg.http = Client::builder().default_headers(headers).build().unwrap();
    reg.push_image("fresh/app", "v1");

    assert_eq!(get(&reg, "/projects/fresh/quota")["limit"], 50_000_000);
    let rules = get(&reg, "/projects/fresh/immutable-rules");
    let rules = rules.as_array().unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0]["tag_selectors"][0]["pattern"], "v*");
    let policy = get(&reg, "/projects/fresh/retention");
    assert_eq!(policy["rules"][0]["params"]["latestPushedK"], 3, "{policy}");
    // The template acts: v1 is now immutable.
    let again = common::Image::oci(&reg, "fresh/app");
    let resp = reg.put_manifest("fresh/app", "v1", common::OCI_MANIFEST, &again.manifest);
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);
    // library, created by the schema, is not a template project.
    assert_eq!(get(&reg, "/projects/library/quota")["limit"], Value::Null);
}

#[test]
fn a_template_that_cannot_work_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::var("BERTH_BIN").expect("BERTH_BIN"))
        .args(["serve", &config(dir.path(), "[").display().to_string()])
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("REGISTRY_HTTP_ADDR", "127.0.0.1:0")
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("berth.projects.template.immutabletags"), "{err}");
}
