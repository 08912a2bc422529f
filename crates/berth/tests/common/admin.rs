//! Shared helpers of the admin API tests (`tests/admin_*.rs` and others): a
//! server with Berth's own users whose administrator `admin` comes from
//! `BERTH_ADMIN_PASSWORD_FILE`, admin API calls as a given user, and
//! `berth admin …` runs with a session file of their own.

use super::Reg;
use berth_testkit::BerthOptions;
use reqwest::blocking::Client;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

pub const ADMIN_PW: &str = "correct horse battery staple";
/// Basic credentials to call with; `None`: anonymous.
pub type Who<'a> = Option<(&'a str, &'a str)>;
pub const ADMIN: Who = Some(("admin", ADMIN_PW));

/// The binary under test: `BERTH_BIN` when set (a copy no other build
/// replaces), else this package's own.
pub fn berth_bin() -> String {
    std::env::var("BERTH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_berth").to_owned())
}

pub struct AdminApi {
    pub reg: Reg,
    pub http: Client,
    pub dir: tempfile::TempDir,
}

/// Starts `opts` with Berth's own users on and the administrator created.
pub fn start_admin(opts: BerthOptions) -> AdminApi {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let opts = opts
        .bin(berth_bin())
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string());
    AdminApi { reg: Reg::start_with(opts), http: Client::new(), dir }
}

/// Options for one node of a cluster: blobs under `root`, metadata in the
/// PostgreSQL at `database_url`, Berth's own users with the administrator's
/// password in `pwfile` (the first node creates the administrator).
pub fn cluster_node(root: &Path, database_url: &str, pwfile: &Path) -> BerthOptions {
    super::options()
        .bin(berth_bin())
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", root.display().to_string())
        .env("REGISTRY_BERTH_DATABASE_URL", database_url)
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string())
}

impl AdminApi {
    /// `method /api/v1{path}` as `who`: the status and the body (JSON, or the text as a string).
    pub fn call(&self, who: Who, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.http.request(method, self.reg.url(&format!("/api/v1{path}")));
        if let Some((u, p)) = who {
            r = r.basic_auth(u, Some(p));
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// [`call`](Self::call) that must succeed; the body.
    pub fn ok(&self, who: Who, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(who, method.clone(), path, body);
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v
    }

    /// A user, and (if given) their role in a project; their password.
    pub fn user(&self, name: &str, member_of: Option<(&str, &str)>) -> String {
        let pw = format!("{name}-password-1");
        self.ok(ADMIN, Method::POST, "/users", Some(json!({"username": name, "password": pw})));
        if let Some((project, role)) = member_of {
            let path = format!("/projects/{project}/members/{name}");
            self.ok(ADMIN, Method::PUT, &path, Some(json!({"role": role})));
        }
        pw
    }

    /// Registry requests from now on as `who` with push rights on `repo`.
    pub fn push_as(&mut self, who: (&str, &str), repo: &str) {
        let body: Value = self
            .http
            .get(self.reg.url("/token"))
            .basic_auth(who.0, Some(who.1))
            .query(&[("service", "berth"), ("scope", &format!("repository:{repo}:pull,push"))])
            .send()
            .unwrap()
            .json()
            .unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        let token = body["token"].as_str().unwrap_or_else(|| panic!("no token: {body}"));
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        self.reg.http =
            Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    }
}

/// The machine code of an admin API error body.
pub fn code(v: &Value) -> &str {
    v["errors"][0]["code"].as_str().unwrap_or("")
}

/// `berth admin ARGS` with `stdin`, its login kept in `session`.
pub fn berth_admin(session: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(berth_bin())
        .arg("admin")
        .args(args)
        .env("BERTH_ADMIN_CONFIG", session)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}
