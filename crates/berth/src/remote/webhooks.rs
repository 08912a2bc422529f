//! `berth admin webhooks …`: a project's webhook policies and their delivery
//! logs through the admin API (docs/events.md).

use super::table::Column;
use super::{Api, Output};
use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Read;

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// The project's policies.
    List {
        project: String,
    },
    /// One policy with its targets (secrets shown masked).
    Show {
        project: String,
        id: i64,
    },
    /// A policy sending EVENTS (comma-separated: PUSH_ARTIFACT, PULL_ARTIFACT,
    /// DELETE_ARTIFACT, QUOTA_EXCEED) to ADDRESS; the signing secret is read
    /// from stdin with `--secret-stdin`.
    Create {
        project: String,
        name: String,
        address: String,
        #[arg(long, value_delimiter = ',', default_value = "PUSH_ARTIFACT,DELETE_ARTIFACT")]
        events: Vec<String>,
        /// `Default` (Harbor's payload) or `CloudEvents`.
        #[arg(long, default_value = "Default")]
        format: String,
        /// Sent as the `Authorization` header.
        #[arg(long)]
        auth_header: Option<String>,
        #[arg(long)]
        secret_stdin: bool,
        #[arg(long)]
        skip_cert_verify: bool,
    },
    /// Replaces a policy with the JSON in FILE (or stdin with `-`), as `show --json` prints it.
    Update {
        project: String,
        id: i64,
        file: String,
    },
    /// Turns a policy on or off.
    Enable {
        project: String,
        id: i64,
    },
    Disable {
        project: String,
        id: i64,
    },
    Delete {
        project: String,
        id: i64,
    },
    /// The policy's delivery log, newest first.
    Deliveries {
        project: String,
        id: i64,
    },
}

const POLICY_COLUMNS: &[Column] =
    &[("ID", "id"), ("NAME", "name"), ("ENABLED", "enabled"), ("EVENTS", "events"), ("TARGETS", "addresses")];
const DELIVERY_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("EVENT", "event_type"),
    ("STATUS", "status"),
    ("ATTEMPTS", "attempts"),
    ("LAST STATUS", "last_status"),
    ("UPDATED", "updated_at"),
    ("LAST ERROR", "last_error"),
];

/// A policy as one table row: event types and target addresses joined
/// (`--json` prints the policy as the API gave it).
fn policy_row(p: &Value) -> Value {
    let join = |list: &Value, f: &dyn Fn(&Value) -> Option<String>| {
        list.as_array().map(|a| a.iter().filter_map(f).collect::<Vec<_>>().join(",")).unwrap_or_default()
    };
    let mut row = p.clone();
    row["events"] = json!(join(&p["event_types"], &|v| v.as_str().map(str::to_owned)));
    row["addresses"] = json!(join(&p["targets"], &|t| t["address"].as_str().map(str::to_owned)));
    row
}

fn items(v: &Value) -> Vec<Value> {
    v.as_array().or_else(|| v["items"].as_array()).cloned().unwrap_or_default()
}

fn show(out: &Output, policy: &Value) {
    if out.json {
        out.one(policy, POLICY_COLUMNS);
    } else {
        out.one(&policy_row(policy), POLICY_COLUMNS);
    }
}

pub fn webhooks(api: &Api, out: &Output, c: WebhooksCommand) -> anyhow::Result<bool> {
    let base = |p: &str| format!("/projects/{p}/webhook/policies");
    let enable = matches!(c, WebhooksCommand::Enable { .. });
    match c {
        WebhooksCommand::List { project } => {
            let v = api.call(Method::GET, &base(&project), None)?;
            let rows: Vec<Value> = if out.json { items(&v) } else { items(&v).iter().map(policy_row).collect() };
            out.list(&Value::Array(rows), POLICY_COLUMNS);
        }
        WebhooksCommand::Show { project, id } => {
            show(out, &api.call(Method::GET, &format!("{}/{id}", base(&project)), None)?);
        }
        WebhooksCommand::Create {
            project,
            name,
            address,
            events,
            format,
            auth_header,
            secret_stdin,
            skip_cert_verify,
        } => {
            let secret =
                if secret_stdin { Some(super::read_line("webhook secret (one line on stdin):")?) } else { None };
            let body = json!({
                "name": name,
                "enabled": true,
                "event_types": events,
                "targets": [{"type": "http", "address": address, "payload_format": format,
                             "auth_header": auth_header, "secret": secret, "skip_cert_verify": skip_cert_verify}],
            });
            show(out, &api.call(Method::POST, &base(&project), Some(body))?);
        }
        WebhooksCommand::Update { project, id, file } => {
            let mut text = String::new();
            if file == "-" {
                std::io::stdin().read_to_string(&mut text).context("reading the policy from stdin")?;
            } else {
                text = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
            }
            let mut body: Value = serde_json::from_str(&text).with_context(|| format!("{file} is not JSON"))?;
            // `show --json` prints a list of one.
            if let Value::Array(mut one) = body {
                anyhow::ensure!(one.len() == 1, "{file}: expected one policy");
                body = one.remove(0);
            }
            show(out, &api.call(Method::PUT, &format!("{}/{id}", base(&project)), Some(writable(body)))?);
        }
        WebhooksCommand::Enable { project, id } | WebhooksCommand::Disable { project, id } => {
            let path = format!("{}/{id}", base(&project));
            let mut policy = writable(api.call(Method::GET, &path, None)?);
            policy["enabled"] = json!(enable);
            show(out, &api.call(Method::PUT, &path, Some(policy))?);
        }
        WebhooksCommand::Delete { project, id } => {
            api.call(Method::DELETE, &format!("{}/{id}", base(&project)), None)?;
            out.done(&format!("webhook policy {id} of {project} deleted"));
        }
        WebhooksCommand::Deliveries { project, id } => {
            let v = api.call(Method::GET, &format!("{}/{id}/deliveries", base(&project)), None)?;
            out.list(&Value::Array(items(&v)), DELIVERY_COLUMNS);
        }
    }
    Ok(true)
}

/// What a PUT accepts of a policy as GET shows it: the writable fields
/// (masked secrets stay masked, which keeps the stored ones).
fn writable(p: Value) -> Value {
    let keep = ["name", "description", "enabled", "event_types", "targets"];
    Value::Object(
        p.as_object()
            .map(|o| {
                o.iter().filter(|(k, _)| keep.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
            })
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_reads_as_one_row() {
        let p = json!({"id": 3, "name": "ci", "enabled": true, "event_types": ["PUSH_ARTIFACT", "QUOTA_EXCEED"],
            "targets": [{"address": "https://a.example/x"}, {"address": "https://b.example/y"}]});
        let row = policy_row(&p);
        assert_eq!(row["events"], "PUSH_ARTIFACT,QUOTA_EXCEED");
        assert_eq!(row["addresses"], "https://a.example/x,https://b.example/y");
        assert_eq!(row["targets"], p["targets"], "the policy itself is not changed");
    }

    #[test]
    fn only_writable_fields_are_sent_back() {
        let p = json!({"id": 3, "name": "ci", "project": "p", "creator": "admin", "enabled": false, "event_types": [],
            "targets": [], "created_at": "x"});
        assert_eq!(writable(p), json!({"name": "ci", "enabled": false, "event_types": [], "targets": []}));
    }
}
