//! `berth admin login`: the CLI's own login to a running server. The
//! password is exchanged once, through the server's token service, for a
//! refresh token scoped to the admin API (`berth:api:*`); that is what is
//! kept (0600), never the password, and a password change revokes it. Each
//! command trades it for a five-minute access token.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SCOPE: &str = "berth:api:*";
const CLIENT_ID: &str = "berth-cli";

#[derive(Serialize, Deserialize)]
pub struct Session {
    /// The server's base URL, e.g. https://registry.example.com.
    pub url: String,
    pub username: String,
    /// Where tokens come from, and the service they are for (from the registry's challenge).
    pub realm: String,
    pub service: String,
    pub refresh_token: String,
    /// A PEM file of extra CA certificates to trust (a private CA).
    pub ca_cert: Option<PathBuf>,
}

/// `$BERTH_ADMIN_CONFIG`, else `$XDG_CONFIG_HOME/berth/admin.json`, else `~/.config/berth/admin.json`.
pub fn session_path() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_ADMIN_CONFIG") {
        return Ok(PathBuf::from(p));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x),
        _ => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set; set BERTH_ADMIN_CONFIG")?).join(".config")
        }
    };
    Ok(base.join("berth").join("admin.json"))
}

pub fn http_client(ca_cert: Option<&Path>) -> anyhow::Result<reqwest::blocking::Client> {
    let mut b = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).user_agent("berth-cli");
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in
            reqwest::Certificate::from_pem_bundle(&pem).with_context(|| format!("parsing {}", path.display()))?
        {
            b = b.add_root_certificate(cert);
        }
    }
    Ok(b.build()?)
}

/// Logs in and saves the session.
pub fn login(url: &str, username: &str, password: &str, ca_cert: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let url = url.trim_end_matches('/').to_owned();
    let http = http_client(ca_cert.as_deref())?;
    let (realm, service) = discover(&http, &url)?;
    let resp = http
        .post(&realm)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("service", service.as_str()),
            ("scope", SCOPE),
            ("client_id", CLIENT_ID),
            ("access_type", "offline"),
        ])
        .send()
        .with_context(|| format!("contacting {realm}"))?;
    let status = resp.status();
    let body: Value = resp.json().unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("login refused ({status}): {}", super::error_message(&body));
    }
    let Some(refresh_token) = body["refresh_token"].as_str() else {
        bail!("the token service returned no refresh token")
    };
    if !body["scope"].as_str().unwrap_or_default().split(' ').any(|s| s == SCOPE) {
        bail!("{username} may not use the admin API");
    }
    let session = Session {
        url,
        username: username.to_owned(),
        realm,
        service,
        refresh_token: refresh_token.to_owned(),
        ca_cert,
    };
    let path = session_path()?;
    save(&path, &session)?;
    Ok(path)
}

/// The token realm and service from the registry's `WWW-Authenticate` challenge.
fn discover(http: &reqwest::blocking::Client, url: &str) -> anyhow::Result<(String, String)> {
    let resp = http.get(format!("{url}/v2/")).send().with_context(|| format!("contacting {url}"))?;
    let challenge = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let param = |name: &str| {
        let key = format!("{name}=\"");
        let start = challenge.find(&key)? + key.len();
        let len = challenge[start..].find('"')?;
        Some(challenge[start..start + len].to_owned())
    };
    match (challenge.starts_with("Bearer "), param("realm"), param("service")) {
        (true, Some(realm), Some(service)) => Ok((realm, service)),
        _ => bail!("{url} does not run Berth's token service (berth.auth.enabled); its challenge: {challenge:?}"),
    }
}

fn save(path: &Path, session: &Session) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(session)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn load() -> anyhow::Result<Session> {
    let path = session_path()?;
    let bytes = std::fs::read(&path).with_context(|| {
        format!("not logged in ({} missing): run `berth admin login URL --username NAME`", path.display())
    })?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

pub fn logout() -> anyhow::Result<bool> {
    let path = session_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

impl Session {
    /// A fresh access token for the admin API.
    pub fn access_token(&self, http: &reqwest::blocking::Client) -> anyhow::Result<String> {
        let resp = http
            .post(&self.realm)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", self.refresh_token.as_str()),
                ("service", self.service.as_str()),
                ("scope", SCOPE),
                ("client_id", CLIENT_ID),
            ])
            .send()
            .with_context(|| format!("contacting {}", self.realm))?;
        let status = resp.status();
        let body: Value = resp.json().unwrap_or(Value::Null);
        match body["access_token"].as_str().or(body["token"].as_str()) {
            Some(t) if status.is_success() => Ok(t.to_owned()),
            _ => bail!("the session has expired or was revoked ({status}); run `berth admin login` again"),
        }
    }
}
