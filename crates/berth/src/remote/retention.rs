//! `berth admin retention …`: a project's tag retention policy (Harbor's
//! JSON, docs/retention.md), runs made now, and the recorded runs with what
//! each kept or removed, through the admin API.

use super::table::Column;
use super::{Api, Output};
use anyhow::Context;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Read;

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// The project's policy: its rules and schedule (`--json`: the policy itself).
    Show { project: String },
    /// Sets the policy from FILE, or from stdin with `-` (Harbor's retention policy JSON).
    Set { project: String, file: String },
    /// Deletes the policy; recorded runs stay.
    Delete { project: String },
    /// Runs the policy now; `--dry-run` records what it would remove and removes nothing.
    Run {
        project: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// The project's recorded runs, newest first.
    Runs { project: String },
    /// What run ID kept or removed, and why.
    RunItems { project: String, id: i64 },
}

const RULE_COLUMNS: &[Column] = &[
    ("RULE", "index"),
    ("TEMPLATE", "template"),
    ("PARAM", "param"),
    ("REPOSITORIES", "repositories"),
    ("TAGS", "tags"),
    ("DISABLED", "disabled"),
];
const SUMMARY_COLUMNS: &[Column] =
    &[("RUN", "id"), ("DRY RUN", "dry_run"), ("RETAINED", "retained"), ("REMOVED", "removed")];
const RUN_COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("DRY RUN", "dry_run"),
    ("STARTED", "started_at"),
    ("FINISHED", "finished_at"),
    ("STATUS", "status"),
];
const ITEM_COLUMNS: &[Column] = &[
    ("REPOSITORY", "repository"),
    ("DIGEST", "digest"),
    ("TAGS", "tags"),
    ("RETAINED", "retained"),
    ("REASON", "reason"),
];

/// Selectors as one cell: patterns joined by `,`, `not ` before excluding ones.
fn selectors(list: &Value) -> String {
    let one = |s: &Value| {
        let pattern = s["pattern"].as_str().unwrap_or("");
        match s["decoration"].as_str() {
            Some("excludes" | "repoExcludes") => format!("not {pattern}"),
            _ => pattern.to_owned(),
        }
    };
    list.as_array().map(|a| a.iter().map(one).collect::<Vec<_>>().join(",")).unwrap_or_default()
}

/// A policy's rules as table rows.
fn rule_rows(policy: &Value) -> Value {
    let rows = policy["rules"].as_array().cloned().unwrap_or_default();
    let rows = rows.iter().enumerate().map(|(i, r)| {
        let template = r["template"].as_str().unwrap_or("");
        json!({
            "index": i + 1,
            "template": template,
            "param": r["params"].get(template).cloned().unwrap_or(Value::Null),
            "repositories": selectors(&r["scope_selectors"]["repository"]),
            "tags": selectors(&r["tag_selectors"]),
            "disabled": r["disabled"].as_bool().unwrap_or(false),
        })
    });
    Value::Array(rows.collect())
}

/// An item with its tags as one cell.
fn item_row(v: &Value) -> Value {
    let mut row = v.clone();
    let tags: Vec<&str> =
        v["tags"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    row["tags"] = if tags.is_empty() { Value::Null } else { json!(tags.join(",")) };
    row
}

/// The policy text from a file or stdin (`-`), checked to be JSON before it is sent.
fn read_policy(file: &str) -> anyhow::Result<Value> {
    let mut text = String::new();
    if file == "-" {
        std::io::stdin().read_to_string(&mut text).context("reading the policy from stdin")?;
    } else {
        text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    }
    serde_json::from_str(&text).with_context(|| format!("{file} is not JSON"))
}

pub fn retention(api: &Api, out: &Output, c: RetentionCommand) -> anyhow::Result<bool> {
    let base = |p: &str| format!("/projects/{p}/retention");
    match c {
        RetentionCommand::Show { project } => show(out, &api.call(Method::GET, &base(&project), None)?),
        RetentionCommand::Set { project, file } => {
            let v = api.call(Method::PUT, &base(&project), Some(read_policy(&file)?))?;
            show(out, &v);
        }
        RetentionCommand::Delete { project } => {
            api.call(Method::DELETE, &base(&project), None)?;
            out.done(&format!("retention policy of {project} deleted"));
        }
        RetentionCommand::Run { project, dry_run } => {
            let v = api.call(Method::POST, &format!("{}/runs", base(&project)), Some(json!({"dry_run": dry_run})))?;
            out.one(&v, SUMMARY_COLUMNS);
        }
        RetentionCommand::Runs { project } => out.list(&api.list(&format!("{}/runs", base(&project)))?, RUN_COLUMNS),
        RetentionCommand::RunItems { project, id } => {
            let v = api.call(Method::GET, &format!("{}/runs/{id}", base(&project)), None)?;
            if out.json {
                out.one(&v, ITEM_COLUMNS);
            } else {
                let rows: Vec<Value> =
                    v["items"].as_array().map(|a| a.iter().map(item_row).collect()).unwrap_or_default();
                out.list(&Value::Array(rows), ITEM_COLUMNS);
            }
        }
    }
    Ok(true)
}

fn show(out: &Output, policy: &Value) {
    if out.json {
        out.one(policy, RULE_COLUMNS);
        return;
    }
    out.list(&rule_rows(policy), RULE_COLUMNS);
    match policy["trigger"]["settings"]["cron"].as_str().filter(|c| !c.trim().is_empty()) {
        Some(cron) => println!("schedule: {cron}"),
        None => println!("schedule: none (run it with `berth admin retention run`)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_rows() {
        let policy = json!({"algorithm": "or", "rules": [{"template": "latestPushedK", "params": {"latestPushedK": 3},
            "tag_selectors": [{"kind": "doublestar", "decoration": "excludes", "pattern": "dev-*"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}]});
        assert_eq!(
            rule_rows(&policy),
            json!([{"index": 1, "template": "latestPushedK", "param": 3, "repositories": "**",
                "tags": "not dev-*", "disabled": false}])
        );
    }

    #[test]
    fn an_items_tags_are_one_cell() {
        let item =
            json!({"repository": "p/a", "digest": "sha256:00", "tags": ["v1", "v2"], "retained": true, "reason": "r"});
        assert_eq!(item_row(&item)["tags"], json!("v1,v2"));
        assert_eq!(item_row(&json!({"tags": []}))["tags"], Value::Null);
    }
}
