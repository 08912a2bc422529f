//! `auth.htpasswd`, as Distribution does it: basic auth against a file of
//! bcrypt hashes, a `WWW-Authenticate: Basic realm=...` challenge and the
//! spec's UNAUTHORIZED error otherwise.

use berth_testkit::{BerthOptions, BerthServer};
use reqwest::blocking::Client;
use reqwest::StatusCode;

// `htpasswd -nbB -C 5 alice wonderland` (Apache's tool: an independent source).
const ALICE: &str = "alice:$2y$05$nKYozfQrMSDSI.DKzYiA9upiuzxe1Vte9VgAk8BrVakZmrCRmeTXu\n";

fn server(dir: &std::path::Path, htpasswd: &std::path::Path) -> BerthServer {
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n\
             auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            dir.join("data").display(),
            htpasswd.display()
        ),
    )
    .unwrap();
    BerthServer::start(BerthOptions::default().bin(env!("CARGO_BIN_EXE_berth")).config_file(config)).unwrap()
}

#[test]
fn basic_auth_guards_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    std::fs::write(&path, ALICE).unwrap();
    let s = server(dir.path(), &path);
    let http = Client::new();
    for url in ["/v2/", "/v2/_catalog", "/v2/a/tags/list", "/v2/a/manifests/latest"] {
        let resp = http.get(format!("{}{url}", s.url())).send().unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{url}");
        assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"basic-realm\"");
        let body: serde_json::Value = resp.json().unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    }
    let wrong = http.get(format!("{}/v2/", s.url())).basic_auth("alice", Some("nope")).send().unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let unknown = http.get(format!("{}/v2/", s.url())).basic_auth("bob", Some("wonderland")).send().unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let ok = http.get(format!("{}/v2/", s.url())).basic_auth("alice", Some("wonderland")).send().unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let catalog = http.get(format!("{}/v2/_catalog", s.url())).basic_auth("alice", Some("wonderland")).send().unwrap();
    assert_eq!(catalog.status(), StatusCode::OK);
}

#[test]
fn missing_htpasswd_file_is_created_with_a_generated_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth").join("htpasswd");
    let s = server(dir.path(), &path);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("docker:$2"), "{text}");
    assert!(s.log().contains("created it with a generated user"), "{}", s.log());
    let resp = Client::new().get(format!("{}/v2/", s.url())).send().unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // The generated password is in a private file beside it, never in the log.
    let secret = dir.path().join("auth").join("htpasswd.password");
    let password = std::fs::read_to_string(&secret).unwrap().trim().to_owned();
    assert_eq!(password.len(), 32);
    assert!(!s.log().contains(&password), "the generated password is in the log");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
    let ok = Client::new().get(format!("{}/v2/", s.url())).basic_auth("docker", Some(&password)).send().unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
}

#[test]
fn repeated_failures_are_throttled_per_user_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htpasswd");
    std::fs::write(&path, ALICE).unwrap();
    let s = server(dir.path(), &path);
    let http = Client::new();
    let get = |pw: &str| http.get(format!("{}/v2/", s.url())).basic_auth("alice", Some(pw)).send().unwrap();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(get("guess").status());
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    // Refused without checking the password, even the right one, for a while.
    let resp = get("wonderland");
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
}
