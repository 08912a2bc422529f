//! The permission matrix: every admin API route and registry action, for
//! every kind of caller, on their own project and on another one.
//!
//! The expected cells are Harbor's documented "User Permissions By Role"
//! table (goharbor/website, docs/administration/managing-users/
//! user-permissions-by-role.md), copied into [`HARBOR`] by hand — never
//! derived from Berth's code. A refused call answers 401 without
//! credentials; 404 from the admin API when the caller may not even see
//! the project (a private project is invisible to outsiders); 403 otherwise.

mod common;

use common::{options, Reg};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const ADMIN_PW: &str = "correct horse battery staple";

/// Callers: anonymous, the five project roles in `own`, a system
/// administrator, and the ProjectAdmin of `other` (a member of another
/// project, as seen from `own`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Anonymous,
    LimitedGuest,
    Guest,
    Developer,
    Maintainer,
    ProjectAdmin,
    SystemAdmin,
    OtherProjectAdmin,
    /// Project robots of `own` holding one permission each (push with pull,
    /// as clients pull what they push).
    RobotPull,
    RobotPush,
    RobotDelete,
}

use Caller::*;
const CALLERS: [Caller; 11] = [
    Anonymous,
    LimitedGuest,
    Guest,
    Developer,
    Maintainer,
    ProjectAdmin,
    SystemAdmin,
    OtherProjectAdmin,
    RobotPull,
    RobotPush,
    RobotDelete,
];

/// Each robot's name and the actions it was given.
const ROBOTS: [(Caller, &str, &[&str]); 3] =
    [(RobotPull, "pull", &["pull"]), (RobotPush, "push", &["pull", "push"]), (RobotDelete, "delete", &["delete"])];

impl Caller {
    /// Users' credentials; robots' come from their creation ([`World::who`]).
    fn credentials(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Anonymous | RobotPull | RobotPush | RobotDelete => return None,
            LimitedGuest => ("lg", "limited-guest-pw"),
            Guest => ("gu", "guest-password-1"),
            Developer => ("dev", "developer-pw-12"),
            Maintainer => ("mt", "maintainer-pw-1"),
            ProjectAdmin => ("pa", "project-admin-1"),
            SystemAdmin => ("admin", ADMIN_PW),
            OtherProjectAdmin => ("op", "other-project-1"),
        })
    }

    /// The column of Harbor's table for the caller's role in `own`.
    fn column(self) -> Option<usize> {
        match self {
            LimitedGuest => Some(0),
            Guest => Some(1),
            Developer => Some(2),
            Maintainer => Some(3),
            ProjectAdmin => Some(4),
            _ => None,
        }
    }
}

/// Harbor's rows used here; columns Limited Guest, Guest, Developer,
/// Maintainer, Project Admin. System administrators hold every row.
const HARBOR: &[(&str, [bool; 5])] = &[
    ("See the project configurations", [true, true, true, true, true]),
    ("Edit the project configurations", [false, false, false, false, true]),
    ("See a list of project members", [false, true, true, true, true]),
    ("Create/edit/delete project members", [false, false, false, false, true]),
    ("Pull image", [true, true, true, true, true]),
    ("Push image", [false, false, true, true, true]),
    ("Scan/delete image", [false, false, false, true, true]),
    ("Delete Project", [false, false, false, false, true]),
    ("See a list of project robots", [false, false, false, true, true]),
    ("Create/edit/delete project robots", [false, false, false, false, true]),
    ("Create/delete tag immutability rules", [false, false, false, true, true]),
    ("See a list of project logs", [false, true, true, true, true]),
    ("See a list of repositories", [true, true, true, true, true]),
    ("Edit/delete repositories", [false, false, false, true, true]),
    ("Create/delete tag retention rules", [false, false, true, true, true]),
    ("See project quotas", [true, true, true, true, true]),
    // "Only the Harbor system administrator can edit project quotas."
    ("Edit project quotas", [false, false, false, false, false]),
    // Not in the documented table: goharbor/harbor src/common/rbac/project/
    // rbac_role.go, resource notification-policy (maintainer list/read, projectAdmin all).
    ("See webhook policies", [false, false, false, true, true]),
    ("Create/edit/delete webhook policies", [false, false, false, false, true]),
];

/// Registry rows and the robot permission each needs.
fn robot_action(row: &str) -> Option<&'static str> {
    match row {
        "Pull image" => Some("pull"),
        "Push image" => Some("push"),
        "Scan/delete image" => Some("delete"),
        _ => None,
    }
}

fn harbor(row: &str, caller: Caller) -> bool {
    let cells = HARBOR.iter().find(|(r, _)| *r == row).unwrap_or_else(|| panic!("no Harbor row {row:?}")).1;
    match caller {
        SystemAdmin => true,
        c => c.column().is_some_and(|i| cells[i]),
    }
}

/// Where an operation is answered: the admin API hides projects it refuses
/// to show, the registry API answers 401/403.
#[derive(Clone, Copy, PartialEq)]
enum Surface {
    Admin,
    Registry,
}

struct Op {
    harbor_row: &'static str,
    surface: Surface,
    /// Sends the operation against project `p`.
    send: fn(&World, Option<(&str, &str)>, &str) -> reqwest::blocking::Response,
}

struct World {
    reg: Reg,
    http: Client,
    _dir: tempfile::TempDir,
    _pg: Option<berth_testkit::Postgres>,
    robots: Vec<(Caller, String, String)>,
}

impl World {
    fn api(&self, who: Option<(&str, &str)>, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, self.reg.url(&format!("/api/v1{path}")));
        match who {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    fn registry(&self, who: Option<(&str, &str)>, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, self.reg.url(path));
        match who {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }
}

fn ops() -> Vec<Op> {
    vec![
        Op {
            harbor_row: "See the project configurations",
            surface: Surface::Admin,
            send: |w, who, p| w.api(who, Method::GET, &format!("/projects/{p}")).send().unwrap(),
        },
        // Idempotent: the projects stay private.
        Op {
            harbor_row: "Edit the project configurations",
            surface: Surface::Admin,
            send: |w, who, p| {
                w.api(who, Method::PATCH, &format!("/projects/{p}")).json(&json!({"public": false})).send().unwrap()
            },
        },
        Op {
            harbor_row: "See a list of project members",
            surface: Surface::Admin,
            send: |w, who, p| w.api(who, Method::GET, &format!("/projects/{p}/members")).send().unwrap(),
        },
        // Idempotent: `nobody` is (again) made a Guest.
        Op {
            harbor_row: "Create/edit/delete project members",
            surface: Surface::Admin,
            send: |w, who, p| {
                w.api(who, Method::PUT, &format!("/projects/{p}/members/nobody"))
                    .json(&json!({"role": "guest"}))
                    .send()
                    .unwrap()
            },
        },
        // The project holds a repository, so an allowed caller gets 412 and nothing is deleted.
        Op {
            harbor_row: "Delete Project",
            surface: Surface::Admin,
            send: |w, who, p| w.api(who, Method::DELETE, &format!("/projects/{p}")).send().unwrap(),
        },
        Op {
            harbor_row: "See a list of project robots",
            surface: Surface::Admin,
            send: |w, who, p| w.api(who, Method::GET, &format!("/projects/{p}/robots")).send().unwrap(),
        },
        // An invalid name: an allowed caller gets 400 and nothing is created.
        Op {
            harbor_row: "Create/edit/delete project robots",
            surface: Surface::Admin,
            send: |w, who, p| {
                let body = json!({"name": "Bad Name", "duration_days": -1, "permissions": []});
                w.api(who, Method::POST, &format!("/projects/{p}/robots")).json(&body).send().unwrap()
            },
        },
        // An invalid pattern: an allowed caller gets 400 and nothing is created.
        Op {
            harbor_row: "Create/delete tag immutability rules",
            surface: Surface::Admin,
            send: |w, who, p| {
                let body = json!({"tag_selectors": [{"decoration": "matches", "pattern": "["}],
                "scope_selectors": {"repository": [{"decoration": "repoMatches", "pattern": "**"}]}});
                w.api(who, Method::POST, &format!("/projects/{p}/immutable-rules")).json(&body).send().unwrap()
            },
        },
        Op {
            harbor_row: "See project quotas",
            surface: Surface::Admin,
            send: |w, who, p| w.api(who, Method::GET, &format!("/projects/{p}/quota")).send().unwrap(),
        },
        // Idempotent: no limit stays no limit.
        Op {
            harbor_row: "Edit project quotas",
            surface: Surface::Admin,
            send: |w, who, p| {
                w.api(who, Method::PUT, &format!("/projects/{p}/quota")).json(&json!({"limit": null})).send().unwrap()
            },
        },
        Op {
            harbor_row: "See a list of project logs",
            surface: Surface::Admin,
            send: |w, who, p| w.api(who, Method::GET, &format!("/projects/{p}/audit-logs")).send().unwrap(),
        },
        Op {
            harbor_row: "See a list of repositories",
            surface: Surface::Admin,
            send: |w, who, p| w.api(who, Method::GET, &format!("/projects/{p}/repositories")).send().unwrap(),
        },
        // A repository that does not exist: an allowed caller gets "repository … not found".
        Op {
            harbor_row: "Edit/delete repositories",
            surface: Surface::Admin,
            send: |w, who, p| {
                w.api(who, Method::DELETE, &format!("/projects/{p}/repositories/no-such-repo")).send().unwrap()
            },
        },
        // Harbor: "Create/delete tag retention rules" (Developer and up). An
        // invalid policy: an allowed caller gets 400 and nothing is stored.
        Op {
            harbor_row: "Create/delete tag retention rules",
            surface: Surface::Admin,
            send: |w, who, p| {
                w.api(who, Method::PUT, &format!("/projects/{p}/retention"))
                    .json(&json!({"rules": "none"}))
                    .send()
                    .unwrap()
            },
        },
        Op {
            harbor_row: "See webhook policies",
            surface: Surface::Admin,
            send: |w, who, p| w.api(who, Method::GET, &format!("/projects/{p}/webhook/policies")).send().unwrap(),
        },
        // An unknown event type: an allowed caller gets 400 and nothing is created.
        Op {
            harbor_row: "Create/edit/delete webhook policies",
            surface: Surface::Admin,
            send: |w, who, p| {
                let body = json!({"name": "hook", "event_types": ["NO_SUCH_EVENT"],
                    "targets": [{"type": "http", "address": "https://ci.example.com/hook"}]});
                w.api(who, Method::POST, &format!("/projects/{p}/webhook/policies")).json(&body).send().unwrap()
            },
        },
        Op {
            harbor_row: "Pull image",
            surface: Surface::Registry,
            send: |w, who, p| {
                w.registry(who, Method::GET, &format!("/v2/{p}/app/manifests/v1"))
                    .header("accept", "application/vnd.oci.image.manifest.v1+json")
                    .send()
                    .unwrap()
            },
        },
        // Starting an upload is the push; the session is left to expire.
        Op {
            harbor_row: "Push image",
            surface: Surface::Registry,
            send: |w, who, p| w.registry(who, Method::POST, &format!("/v2/{p}/app/blobs/uploads/")).send().unwrap(),
        },
        // A tag that does not exist: an allowed caller gets MANIFEST_UNKNOWN.
        Op {
            harbor_row: "Scan/delete image",
            surface: Surface::Registry,
            send: |w, who, p| {
                w.registry(who, Method::DELETE, &format!("/v2/{p}/app/manifests/no-such-tag")).send().unwrap()
            },
        },
    ]
}

/// The metadata backend the server runs on.
#[derive(Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

fn setup(backend: Backend) -> World {
    let dir = tempfile::tempdir().unwrap();
    let pwfile = dir.path().join("admin.pw");
    std::fs::write(&pwfile, format!("{ADMIN_PW}\n")).unwrap();
    let mut opts = options()
        .delete_enabled(true)
        .env("REGISTRY_BERTH_AUTH_ENABLED", "true")
        .env("BERTH_ADMIN_PASSWORD_FILE", pwfile.display().to_string());
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let pg = berth_testkit::Postgres::start().unwrap();
            opts = opts.env("REGISTRY_BERTH_DATABASE_URL", pg.url("postgres"));
            Some(pg)
        }
    };
    let mut w = World { reg: Reg::start_with(opts), http: Client::new(), _dir: dir, _pg: pg, robots: Vec::new() };
    let admin = SystemAdmin.credentials();
    let must = |resp: reqwest::blocking::Response| {
        let status = resp.status();
        assert!(status.is_success(), "setup: {status} {}", resp.text().unwrap_or_default());
    };
    for c in CALLERS.iter().filter(|c| c.credentials().is_some() && **c != SystemAdmin) {
        let (u, p) = c.credentials().unwrap();
        must(w.api(admin, Method::POST, "/users").json(&json!({"username": u, "password": p})).send().unwrap());
    }
    must(
        w.api(admin, Method::POST, "/users")
            .json(&json!({"username": "nobody", "password": "nobody-password"}))
            .send()
            .unwrap(),
    );
    for p in ["own", "other"] {
        must(w.api(admin, Method::POST, "/projects").json(&json!({"name": p})).send().unwrap());
    }
    for (c, role) in [
        (LimitedGuest, "limitedGuest"),
        (Guest, "guest"),
        (Developer, "developer"),
        (Maintainer, "maintainer"),
        (ProjectAdmin, "projectAdmin"),
    ] {
        let user = c.credentials().unwrap().0;
        must(
            w.api(admin, Method::PUT, &format!("/projects/own/members/{user}"))
                .json(&json!({"role": role}))
                .send()
                .unwrap(),
        );
    }
    must(
        w.api(admin, Method::PUT, "/projects/other/members/op").json(&json!({"role": "projectAdmin"})).send().unwrap(),
    );
    for (caller, name, actions) in ROBOTS {
        let access: Vec<Value> = actions.iter().map(|a| json!({"resource": "repository", "action": a})).collect();
        let body = json!({"name": name, "duration_days": -1, "permissions": [{"namespace": "own", "access": access}]});
        let resp = w.api(admin, Method::POST, "/projects/own/robots").json(&body).send().unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let robot: Value = resp.json().unwrap();
        w.robots.push((caller, robot["name"].as_str().unwrap().into(), robot["secret"].as_str().unwrap().into()));
    }
    // An image in each project, pushed by the administrator over Basic.
    let mut headers = reqwest::header::HeaderMap::new();
    let basic = format!("admin:{ADMIN_PW}");
    headers.insert("authorization", format!("Basic {}", b64(basic.as_bytes())).parse().unwrap());
    w.reg.http =
        Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for p in ["own", "other"] {
        w.reg.push_image(&format!("{p}/app"), "v1");
    }
    w
}

impl World {
    fn who(&self, caller: Caller) -> Option<(&str, &str)> {
        match self.robots.iter().find(|(c, _, _)| *c == caller) {
            Some((_, name, secret)) => Some((name.as_str(), secret.as_str())),
            None => caller.credentials(),
        }
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// What the cell expects: allowed (anything but a refusal), or the refusal's status.
fn expected(op: &Op, caller: Caller, project: &str) -> Result<(), StatusCode> {
    if let Some((_, _, actions)) = ROBOTS.iter().find(|(c, _, _)| *c == caller) {
        // Robots hold exactly their permissions, in `own`, on the registry;
        // the admin API is not for them.
        let allowed = project == "own" && robot_action(op.harbor_row).is_some_and(|a| actions.contains(&a));
        return if allowed { Ok(()) } else { Err(StatusCode::FORBIDDEN) };
    }
    // The five roles are members of `own`; OtherProjectAdmin is the
    // ProjectAdmin of `other`. Both projects are private.
    let role = match (project, caller) {
        ("other", OtherProjectAdmin) => ProjectAdmin,
        ("other", _) | (_, OtherProjectAdmin) => Anonymous, // no role here
        (_, c) => c,
    };
    let allowed = caller == SystemAdmin || harbor(op.harbor_row, role);
    if allowed {
        return Ok(());
    }
    if caller == Anonymous {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let sees_project = role.column().is_some();
    Err(match op.surface {
        Surface::Admin if !sees_project => StatusCode::NOT_FOUND,
        _ => StatusCode::FORBIDDEN,
    })
}

fn is_refusal(status: StatusCode, body: &Value, surface: Surface) -> bool {
    match surface {
        Surface::Registry => matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN),
        Surface::Admin => {
            let code = body["errors"][0]["code"].as_str().unwrap_or("");
            matches!(code, "UNAUTHORIZED" | "FORBIDDEN")
                || (code == "NOT_FOUND" && body["errors"][0]["message"].as_str().unwrap_or("").starts_with("project "))
        }
    }
}

#[test]
fn every_route_for_every_caller_on_own_and_other_projects_sqlite() {
    matrix(Backend::Sqlite);
}

#[test]
fn every_route_for_every_caller_on_own_and_other_projects_postgres() {
    matrix(Backend::Postgres);
}

fn matrix(backend: Backend) {
    let w = setup(backend);
    let mut wrong = Vec::new();
    let mut cells = 0;
    for op in ops() {
        for caller in CALLERS {
            for project in ["own", "other"] {
                cells += 1;
                let resp = (op.send)(&w, w.who(caller), project);
                let status = resp.status();
                let body: Value = resp.json().unwrap_or(Value::Null);
                let refused = is_refusal(status, &body, op.surface);
                let ok = match expected(&op, caller, project) {
                    Ok(()) => !refused,
                    Err(want) => refused && status == want,
                };
                if !ok {
                    wrong.push(format!(
                        "{:<38} {caller:<18?} {project:<5}: got {status} {body}, expected {:?}",
                        op.harbor_row,
                        expected(&op, caller, project)
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {cells} cells wrong:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn system_routes_are_for_administrators_only() {
    let w = setup(Backend::Sqlite);
    for caller in CALLERS {
        let who = w.who(caller);
        let list = w.api(who, Method::GET, "/users").send().unwrap().status();
        // An existing name: an administrator gets past authorization to 409.
        let create = w
            .api(who, Method::POST, "/users")
            .json(&json!({"username": "nobody", "password": "twelve-chars-pw"}))
            .send()
            .unwrap()
            .status();
        let audit = w.api(who, Method::GET, "/audit-logs").send().unwrap().status();
        let catalog = w.registry(who, Method::GET, "/v2/_catalog").send().unwrap().status();
        let want = match caller {
            SystemAdmin => (StatusCode::OK, StatusCode::CONFLICT, StatusCode::OK, StatusCode::OK),
            // Robots: refused by the admin API; no catalog on the registry.
            Anonymous => {
                (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
            }
            _ => (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN, StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
        };
        assert_eq!((list, create, audit, catalog), want, "{caller:?}");
    }
}
