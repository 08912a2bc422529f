//! Issue 18 with the real docker client: a robot account pushes, a push
//! over the project's quota and an overwrite of an immutable tag are
//! refused with the registry's message, and a retention dry run lists
//! exactly what the apply then removes. Projects, robots, quotas, rules and
//! retention are set through the admin API, as an operator would.

use std::net::SocketAddr;

use berth_testkit::{Dockerd, ImageContext};
use serde_json::{json, Value};

use crate::{ensure, Result};

const MIB: u64 = 1024 * 1024;

/// The admin API as the system administrator.
pub struct AdminApi {
    base: String,
    user: String,
    password: String,
    http: reqwest::blocking::Client,
}

impl AdminApi {
    pub fn new(registry: SocketAddr, user: &str, password: &str) -> Self {
        AdminApi {
            base: format!("http://{registry}/api/v1"),
            user: user.into(),
            password: password.into(),
            http: reqwest::blocking::Client::new(),
        }
    }

    pub fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .basic_auth(&self.user, Some(&self.password));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().map_err(|e| format!("{method} {path}: {e}"))?;
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {text}"));
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| format!("{path}: {e}: {text}"))?
        })
    }
}

/// Builds a fresh image (random layers, so new digests) tagged `image`.
fn build(docker: &Dockerd, image: &str, context: ImageContext) -> Result<()> {
    let ctx = context.build()?;
    docker.docker_ok(&["build", "-q", "-t", image, &ctx.dir().to_string_lossy()])?;
    Ok(())
}

fn refused_with(docker: &Dockerd, image: &str, needle: &str) -> Result<()> {
    let out = docker.docker(&["push", image])?;
    let text = format!("{}{}", out.stdout, out.stderr);
    ensure(!out.success() && text.contains(needle), || {
        format!("docker push {image} should be refused with {needle:?}:\n{text}")
    })
}

pub fn docker(docker: &Dockerd, registry: SocketAddr, api: &AdminApi) -> Result<()> {
    use reqwest::Method;
    let host = registry.to_string();
    api.call(Method::POST, "/projects", Some(json!({"name": "gov"})))?;
    let robot = api.call(
        Method::POST,
        "/projects/gov/robots",
        Some(json!({"name": "ci", "duration_days": -1,
            "permissions": [{"namespace": "gov", "access": [
                {"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}]})),
    )?;
    let (name, secret) = (robot["name"].as_str().unwrap_or_default(), robot["secret"].as_str().unwrap_or_default());
    ensure(name == "robot$gov+ci" && secret.len() >= 32, || format!("robot creation answered {robot}"))?;
    let login = docker.docker(&["login", &host, "-u", name, "-p", secret])?;
    ensure(login.success(), || login.describe_failure())?;

    // The robot pushes.
    let repo = format!("{host}/gov/app");
    build(docker, &format!("{repo}:v1"), ImageContext::new())?;
    docker.docker_ok(&["push", &format!("{repo}:v1")])?;

    // v* tags are immutable: a different image under v1 is refused, a new tag is not.
    api.call(
        Method::POST,
        "/projects/gov/immutable-rules",
        Some(json!({"tag_selectors": [{"decoration": "matches", "pattern": "v*"}],
            "scope_selectors": {"repository": [{"decoration": "repoMatches", "pattern": "**"}]}})),
    )?;
    build(docker, &format!("{repo}:v1"), ImageContext::new())?;
    refused_with(docker, &format!("{repo}:v1"), "immutable")?;
    docker.docker_ok(&["tag", &format!("{repo}:v1"), &format!("{repo}:v2")])?;
    docker.docker_ok(&["push", &format!("{repo}:v2")])?;

    // A quota just above what is stored refuses a 4 MiB layer, and counts nothing of it.
    let before = api.call(Method::GET, "/projects/gov/quota", None)?;
    let used = before["used"].as_u64().ok_or_else(|| format!("quota answered {before}"))?;
    api.call(Method::PUT, "/projects/gov/quota", Some(json!({"limit": used + MIB})))?;
    build(docker, &format!("{repo}:big"), ImageContext::new().data_layer("big.bin", 4 * MIB))?;
    refused_with(docker, &format!("{repo}:big"), "quota")?;
    let after = api.call(Method::GET, "/projects/gov/quota", None)?;
    ensure(after["used"].as_u64() == Some(used), || format!("usage changed by a refused push: {before} → {after}"))?;
    api.call(Method::PUT, "/projects/gov/quota", Some(json!({"limit": null})))?;

    // Retention: keep the newest dev-* artifact; the immutable v* tags stay whatever the rule says.
    for tag in ["dev-1", "dev-2"] {
        build(docker, &format!("{repo}:{tag}"), ImageContext::new())?;
        docker.docker_ok(&["push", &format!("{repo}:{tag}")])?;
    }
    let policy = json!({"algorithm": "or", "rules": [{"action": "retain", "template": "latestPushedK",
        "params": {"latestPushedK": 1},
        "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "dev-*"}],
        "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}]});
    api.call(Method::PUT, "/projects/gov/retention", Some(policy))?;
    let removed = |run: &Value| -> Result<Vec<String>> {
        let id = run["id"].as_i64().ok_or_else(|| format!("run answered {run}"))?;
        let detail = api.call(Method::GET, &format!("/projects/gov/retention/runs/{id}"), None)?;
        let items = detail["items"].as_array().ok_or_else(|| format!("run {id} answered {detail}"))?;
        let mut tags: Vec<String> = items
            .iter()
            .filter(|i| i["retained"] == false)
            .flat_map(|i| i["tags"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        tags.sort();
        Ok(tags)
    };
    let dry = api.call(Method::POST, "/projects/gov/retention/runs", Some(json!({"dry_run": true})))?;
    let planned = removed(&dry)?;
    ensure(planned == ["dev-1"], || format!("the dry run should remove only dev-1, lists {planned:?}"))?;
    docker.docker_ok(&["pull", &format!("{repo}:dev-1")])?;
    let applied = api.call(Method::POST, "/projects/gov/retention/runs", Some(json!({"dry_run": false})))?;
    let done = removed(&applied)?;
    ensure(done == planned, || format!("the apply removed {done:?}, the dry run listed {planned:?}"))?;
    docker.docker_ok(&["rmi", &format!("{repo}:dev-1")])?;
    let gone = docker.docker(&["pull", &format!("{repo}:dev-1")])?;
    ensure(!gone.success(), || "dev-1 can still be pulled after retention removed it".into())?;
    for kept in ["v1", "v2", "dev-2"] {
        docker.docker_ok(&["pull", &format!("{repo}:{kept}")])?;
    }
    docker.docker_ok(&["logout", &host])?;
    Ok(())
}
