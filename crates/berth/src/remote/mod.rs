//! `berth admin …` commands that talk to a running server through its admin
//! REST API (`/api/v1`), with a login of their own (`session.rs`). Tables
//! by default, the API's JSON with `--json`.

mod quotas;
mod readonly;
mod retention;
mod robots;
mod session;
mod table;
mod webhooks;

pub use quotas::{ImmutableCommand, QuotaCommand};
pub use readonly::ReadOnlyCommand;
pub use retention::RetentionCommand;
pub use robots::RobotsCommand;
pub use webhooks::WebhooksCommand;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::PathBuf;
use table::Column;

#[derive(Subcommand)]
pub enum UsersCommand {
    List,
    Show {
        name: String,
    },
    /// Creates a user; the password is read as one line from stdin.
    Create {
        name: String,
        #[arg(long)]
        admin: bool,
    },
    /// Grants or revokes administration, disables or enables.
    Set {
        name: String,
        #[arg(long)]
        admin: Option<bool>,
        #[arg(long)]
        disabled: Option<bool>,
    },
    /// Changes a password (read from stdin: the old one first when it is your own, then the new one).
    Passwd {
        name: String,
    },
    Delete {
        name: String,
    },
}

#[derive(Subcommand)]
pub enum ProjectsCommand {
    List,
    Show {
        name: String,
    },
    Create {
        name: String,
        #[arg(long)]
        public: bool,
    },
    Set {
        name: String,
        #[arg(long)]
        public: Option<bool>,
    },
    Delete {
        name: String,
    },
    /// The project's repositories.
    Repositories {
        name: String,
    },
    /// Deletes a repository whole (tags, manifests; the bytes go with the next GC).
    DeleteRepository {
        name: String,
        repository: String,
    },
}

#[derive(Subcommand)]
pub enum MembersCommand {
    List {
        project: String,
    },
    /// Gives USER ROLE (projectAdmin, maintainer, developer, guest, limitedGuest) in PROJECT.
    Set {
        project: String,
        user: String,
        role: String,
    },
    Remove {
        project: String,
        user: String,
    },
}

/// What to run against the server.
pub enum Remote {
    Login { url: String, username: String, ca_cert: Option<PathBuf> },
    Logout,
    Users(UsersCommand),
    Projects(ProjectsCommand),
    Members(MembersCommand),
    Quota(QuotaCommand),
    Immutable(ImmutableCommand),
    Robots(RobotsCommand),
    Retention(RetentionCommand),
    Webhooks(WebhooksCommand),
    ReadOnly(ReadOnlyCommand),
    AuditLogs { project: Option<String>, after: Option<i64>, limit: Option<usize> },
}

const USER_COLUMNS: &[Column] =
    &[("ID", "id"), ("USERNAME", "username"), ("ADMIN", "admin"), ("DISABLED", "disabled"), ("CREATED", "created_at")];
const PROJECT_COLUMNS: &[Column] =
    &[("ID", "id"), ("NAME", "name"), ("PUBLIC", "public"), ("YOUR ROLE", "role"), ("CREATED", "created_at")];
const REPOSITORY_COLUMNS: &[Column] = &[
    ("NAME", "name"),
    ("ARTIFACTS", "artifact_count"),
    ("TAGS", "tag_count"),
    ("PUSHED", "pushed_at"),
    ("PULLED", "pulled_at"),
];
const MEMBER_COLUMNS: &[Column] = &[("USER ID", "user_id"), ("USERNAME", "username"), ("ROLE", "role")];
const AUDIT_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("TIME", "time"),
    ("ACTOR", "actor"),
    ("SOURCE", "source"),
    ("ACTION", "action"),
    ("RESOURCE", "resource"),
    ("STATUS", "status"),
];

pub fn run(command: Remote, json_out: bool) -> anyhow::Result<bool> {
    match command {
        Remote::Login { url, username, ca_cert } => {
            let password = read_line(&format!("password for {username} (one line on stdin):"))?;
            let path = session::login(&url, &username, &password, ca_cert)?;
            println!("logged in to {url} as {username} (session in {})", path.display());
            return Ok(true);
        }
        Remote::Logout => {
            if session::logout()? {
                println!("logged out");
            }
            return Ok(true);
        }
        _ => {}
    }
    let api = Api::connect()?;
    let out = Output { json: json_out };
    match command {
        Remote::Users(c) => users(&api, &out, c),
        Remote::Projects(c) => projects(&api, &out, c),
        Remote::Members(c) => members(&api, &out, c),
        Remote::Quota(c) => quotas::quota(&api, &out, c),
        Remote::Immutable(c) => quotas::immutable(&api, &out, c),
        Remote::Robots(c) => robots::robots(&api, &out, c),
        Remote::Retention(c) => retention::retention(&api, &out, c),
        Remote::Webhooks(c) => webhooks::webhooks(&api, &out, c),
        Remote::ReadOnly(c) => readonly::readonly(&api, &out, c),
        Remote::AuditLogs { project, after, limit } => {
            let base = project.map_or_else(|| "/audit-logs".to_owned(), |p| format!("/projects/{p}/audit-logs"));
            let mut path = format!("{base}?limit={}", limit.unwrap_or(100));
            if let Some(a) = after {
                path.push_str(&format!("&after={a}"));
            }
            out.list(&api.call(reqwest::Method::GET, &path, None)?, AUDIT_COLUMNS);
            Ok(true)
        }
        Remote::Login { .. } | Remote::Logout => unreachable!("handled above"),
    }
}

fn users(api: &Api, out: &Output, c: UsersCommand) -> anyhow::Result<bool> {
    use reqwest::Method;
    match c {
        UsersCommand::List => out.list(&api.list("/users")?, USER_COLUMNS),
        UsersCommand::Show { name } => out.one(&api.call(Method::GET, &format!("/users/{name}"), None)?, USER_COLUMNS),
        UsersCommand::Create { name, admin } => {
            let password = read_line(&format!("password for the new user {name} (one line on stdin):"))?;
            let body = json!({"username": name, "password": password, "admin": admin});
            out.one(&api.call(Method::POST, "/users", Some(body))?, USER_COLUMNS)
        }
        UsersCommand::Set { name, admin, disabled } => {
            let body = json!({"admin": admin, "disabled": disabled});
            out.one(&api.call(Method::PATCH, &format!("/users/{name}"), Some(strip_nulls(body)))?, USER_COLUMNS)
        }
        UsersCommand::Passwd { name } => {
            let own = name == api.session.username;
            let old = if own { Some(read_line("current password (one line on stdin):")?) } else { None };
            let new = read_line(&format!("new password for {name} (one line on stdin):"))?;
            let body = strip_nulls(json!({"old_password": old, "new_password": new}));
            api.call(Method::PUT, &format!("/users/{name}/password"), Some(body))?;
            out.done(&format!("password of {name} changed"));
        }
        UsersCommand::Delete { name } => {
            api.call(Method::DELETE, &format!("/users/{name}"), None)?;
            out.done(&format!("user {name} deleted"));
        }
    }
    Ok(true)
}

fn projects(api: &Api, out: &Output, c: ProjectsCommand) -> anyhow::Result<bool> {
    use reqwest::Method;
    match c {
        ProjectsCommand::List => out.list(&api.list("/projects")?, PROJECT_COLUMNS),
        ProjectsCommand::Show { name } => {
            out.one(&api.call(Method::GET, &format!("/projects/{name}"), None)?, PROJECT_COLUMNS)
        }
        ProjectsCommand::Create { name, public } => out
            .one(&api.call(Method::POST, "/projects", Some(json!({"name": name, "public": public})))?, PROJECT_COLUMNS),
        ProjectsCommand::Set { name, public } => {
            let body = strip_nulls(json!({"public": public}));
            out.one(&api.call(Method::PATCH, &format!("/projects/{name}"), Some(body))?, PROJECT_COLUMNS)
        }
        ProjectsCommand::Delete { name } => {
            api.call(Method::DELETE, &format!("/projects/{name}"), None)?;
            out.done(&format!("project {name} deleted"));
        }
        ProjectsCommand::Repositories { name } => {
            out.list(&api.list(&format!("/projects/{name}/repositories"))?, REPOSITORY_COLUMNS)
        }
        ProjectsCommand::DeleteRepository { name, repository } => {
            let encoded: String = form_urlencoded::byte_serialize(repository.as_bytes()).collect();
            api.call(Method::DELETE, &format!("/projects/{name}/repositories/{encoded}"), None)?;
            out.done(&format!("repository {repository} deleted from {name}"));
        }
    }
    Ok(true)
}

fn members(api: &Api, out: &Output, c: MembersCommand) -> anyhow::Result<bool> {
    use reqwest::Method;
    match c {
        MembersCommand::List { project } => {
            out.list(&api.call(Method::GET, &format!("/projects/{project}/members"), None)?, MEMBER_COLUMNS)
        }
        MembersCommand::Set { project, user, role } => out.one(
            &api.call(Method::PUT, &format!("/projects/{project}/members/{user}"), Some(json!({"role": role})))?,
            MEMBER_COLUMNS,
        ),
        MembersCommand::Remove { project, user } => {
            api.call(Method::DELETE, &format!("/projects/{project}/members/{user}"), None)?;
            out.done(&format!("{user} removed from {project}"));
        }
    }
    Ok(true)
}

struct Output {
    json: bool,
}

impl Output {
    fn list(&self, v: &Value, columns: &[Column]) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        } else {
            print!("{}", table::render(v.as_array().map(Vec::as_slice).unwrap_or_default(), columns));
        }
    }

    fn one(&self, v: &Value, columns: &[Column]) {
        self.list(&Value::Array(vec![v.clone()]), columns);
    }

    fn done(&self, message: &str) {
        if self.json {
            println!("{}", json!({"ok": true, "message": message}));
        } else {
            println!("{message}");
        }
    }
}

/// A logged-in connection to the admin API.
struct Api {
    session: session::Session,
    http: reqwest::blocking::Client,
    token: String,
}

impl Api {
    fn connect() -> anyhow::Result<Api> {
        let session = session::load()?;
        let http = session::http_client(session.ca_cert.as_deref())?;
        let token = session.access_token(&http)?;
        Ok(Api { session, http, token })
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.call_page(method, path, body).map(|(v, _)| v)
    }

    /// The body and the `Link: rel="next"` path, if any.
    fn call_page(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(Value, Option<String>)> {
        let url = format!("{}/api/v1{path}", self.session.url);
        let mut req = self.http.request(method.clone(), &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let next = resp
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.strip_prefix("</api/v1"))
            .and_then(|l| l.split_once('>'))
            .map(|(p, _)| p.to_owned());
        let text = resp.text().unwrap_or_default();
        let v: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if !status.is_success() {
            bail!("{} ({status})", error_message(&v));
        }
        Ok((v, next))
    }

    /// Every page of a listing.
    fn list(&self, path: &str) -> anyhow::Result<Value> {
        let mut all = Vec::new();
        let mut next = Some(format!("{path}?limit=1000"));
        // Bounded: a million rows at most.
        for _ in 0..1000 {
            let Some(p) = next.take() else { break };
            let (v, n) = self.call_page(reqwest::Method::GET, &p, None)?;
            all.extend(v.as_array().cloned().unwrap_or_default());
            next = n;
        }
        Ok(Value::Array(all))
    }
}

/// The API's `{"errors":[{"code","message"}]}`, as one line.
pub fn error_message(v: &Value) -> String {
    match v["errors"][0].as_object() {
        Some(e) => format!("{}: {}", e["code"].as_str().unwrap_or("ERROR"), e["message"].as_str().unwrap_or("")),
        None => v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()),
    }
}

fn strip_nulls(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|_, x| !x.is_null());
    }
    v
}

pub(super) fn read_line(prompt: &str) -> anyhow::Result<String> {
    eprintln!("{prompt}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading stdin")?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("nothing read from stdin");
    }
    Ok(line)
}
