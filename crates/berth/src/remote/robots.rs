//! `berth admin robots …`: robot accounts through the admin API. With
//! `--project` a project's robots (ProjectAdmins manage them); without, every
//! robot and system robots (administrators). A secret is printed once, on
//! creation and rotation: the server keeps only its hash.

use super::table::Column;
use super::{Api, Output};
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum RobotsCommand {
    /// A project's robots, or every robot (administrators).
    List {
        #[arg(long)]
        project: Option<String>,
    },
    /// Creates a robot and prints its secret, once. Without --project a
    /// system robot (administrators), its permissions in --namespace.
    Create {
        name: String,
        #[arg(long)]
        project: Option<String>,
        /// A system robot's namespace: a project or `*` (every project).
        #[arg(long, conflicts_with = "project")]
        namespace: Option<String>,
        #[arg(long)]
        pull: bool,
        #[arg(long)]
        push: bool,
        #[arg(long)]
        delete: bool,
        /// Days until it expires; -1 (the default): never.
        #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
        duration_days: i64,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Replaces a robot's secret and prints the new one, once; the old one stops working.
    Rotate {
        id: i64,
        #[arg(long)]
        project: Option<String>,
    },
    Disable {
        id: i64,
        #[arg(long)]
        project: Option<String>,
    },
    Enable {
        id: i64,
        #[arg(long)]
        project: Option<String>,
    },
    Delete {
        id: i64,
        #[arg(long)]
        project: Option<String>,
    },
}

const ROBOT_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("NAME", "name"),
    ("PERMISSIONS", "permissions"),
    ("DISABLED", "disabled"),
    ("EXPIRES", "expires_at"),
    ("CREATOR", "creator"),
];

/// A robot as a table row: permissions as `namespace:action,action`, no expiry as `never`.
fn robot_row(v: &Value) -> Value {
    let permissions: Vec<String> = v["permissions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let actions: Vec<&str> =
                p["access"].as_array().into_iter().flatten().filter_map(|a| a["action"].as_str()).collect();
            format!("{}:{}", p["namespace"].as_str().unwrap_or(""), actions.join(","))
        })
        .collect();
    json!({
        "id": v["id"],
        "name": v["name"],
        "permissions": permissions.join(" "),
        "disabled": v["disabled"],
        "expires_at": v["expires_at"].as_str().unwrap_or("never"),
        "creator": v["creator"],
    })
}

fn robots_out(out: &Output, v: &Value) {
    if out.json {
        out.list(v, ROBOT_COLUMNS);
    } else {
        let rows: Vec<Value> = v.as_array().map(|a| a.iter().map(robot_row).collect()).unwrap_or_default();
        out.list(&Value::Array(rows), ROBOT_COLUMNS);
    }
}

/// A robot with its secret, printed the one time the server answers it.
fn secret_out(out: &Output, v: &Value) {
    if out.json {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        println!("name:   {}", v["name"].as_str().unwrap_or(""));
        println!("secret: {}", v["secret"].as_str().unwrap_or(""));
        println!("Keep the secret now: it will not be shown again.");
    }
}

/// The collection a robot lives in: its project's, or the system one.
fn base(project: Option<&str>) -> String {
    match project {
        Some(p) => format!("/projects/{p}/robots"),
        None => "/robots".into(),
    }
}

pub fn robots(api: &Api, out: &Output, c: RobotsCommand) -> anyhow::Result<bool> {
    match c {
        RobotsCommand::List { project } => robots_out(out, &api.list(&base(project.as_deref()))?),
        RobotsCommand::Create { name, project, namespace, pull, push, delete, duration_days, description } => {
            let actions: Vec<&str> =
                [(pull, "pull"), (push, "push"), (delete, "delete")].into_iter().filter(|p| p.0).map(|p| p.1).collect();
            if actions.is_empty() {
                anyhow::bail!("give the robot at least one of --pull, --push, --delete");
            }
            let Some(namespace) = project.clone().or(namespace) else {
                anyhow::bail!("a system robot needs --namespace (a project or '*'); a project robot --project");
            };
            let access: Vec<Value> = actions.iter().map(|a| json!({"resource": "repository", "action": a})).collect();
            let body = json!({
                "name": name, "description": description, "duration_days": duration_days,
                "permissions": [{"namespace": namespace, "access": access}],
            });
            secret_out(out, &api.call(Method::POST, &base(project.as_deref()), Some(body))?);
        }
        RobotsCommand::Rotate { id, project } => {
            let path = format!("{}/{id}/secret", base(project.as_deref()));
            secret_out(out, &api.call(Method::POST, &path, None)?);
        }
        RobotsCommand::Disable { id, project } => set_disabled(api, out, project.as_deref(), id, true)?,
        RobotsCommand::Enable { id, project } => set_disabled(api, out, project.as_deref(), id, false)?,
        RobotsCommand::Delete { id, project } => {
            api.call(Method::DELETE, &format!("{}/{id}", base(project.as_deref())), None)?;
            out.done(&format!("robot {id} deleted"));
        }
    }
    Ok(true)
}

fn set_disabled(api: &Api, out: &Output, project: Option<&str>, id: i64, disabled: bool) -> anyhow::Result<()> {
    let v = api.call(Method::PATCH, &format!("{}/{id}", base(project)), Some(json!({"disabled": disabled})))?;
    robots_out(out, &Value::Array(vec![v]));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_summarise_permissions_and_expiry() {
        let v = json!({"id": 2, "name": "robot$team+ci", "disabled": false, "expires_at": null, "creator": "pa",
            "permissions": [{"kind": "project", "namespace": "team",
                "access": [{"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}]});
        assert_eq!(
            robot_row(&v),
            json!({"id": 2, "name": "robot$team+ci", "permissions": "team:pull,push", "disabled": false,
                "expires_at": "never", "creator": "pa"})
        );
    }
}
