//! `berth admin quota …` and `berth admin immutable …`: a project's storage
//! quota and its tag immutability rules, through the admin API.

use super::table::Column;
use super::{Api, Output};
use anyhow::bail;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum QuotaCommand {
    /// The project's limit and usage.
    Show { project: String },
    /// Sets the limit (e.g. 10GiB, 500MB, 1048576) or removes it (`none`);
    /// administrators only.
    Set {
        project: String,
        #[arg(value_parser = parse_limit)]
        limit: Limit,
    },
}

#[derive(Subcommand)]
pub enum ImmutableCommand {
    /// The project's rules.
    List {
        project: String,
    },
    /// Adds a rule: tags matching --tag in repositories matching --repo
    /// (doublestar patterns; the repository without its project) become immutable.
    Add {
        project: String,
        #[arg(long, default_value = "**")]
        repo: String,
        #[arg(long, default_value = "**")]
        tag: String,
        /// Select repositories NOT matching --repo.
        #[arg(long)]
        exclude_repo: bool,
        /// Select tags NOT matching --tag.
        #[arg(long)]
        exclude_tag: bool,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
    },
    Delete {
        project: String,
        id: i64,
    },
    Enable {
        project: String,
        id: i64,
    },
    Disable {
        project: String,
        id: i64,
    },
}

/// A quota limit on the command line: bytes, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub Option<u64>);

/// `none`, or a number of bytes with an optional unit: B, KB/MB/GB/TB/PB
/// (powers of 1000) or KiB/MiB/GiB/TiB/PiB (powers of 1024). Case-insensitive.
pub fn parse_limit(s: &str) -> Result<Limit, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(Limit(None));
    }
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (number, unit) = (&s[..split], s[split..].trim());
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "mb" | "m" => 1000_u64.pow(2),
        "gb" | "g" => 1000_u64.pow(3),
        "tb" | "t" => 1000_u64.pow(4),
        "pb" | "p" => 1000_u64.pow(5),
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        "pib" => 1 << 50,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB or none")),
    };
    let bad = || format!("{s:?} is not a size (e.g. 10GiB, 500MB, 1048576 or none)");
    let bytes = if number.contains('.') {
        let n: f64 = number.parse().map_err(|_| bad())?;
        let b = n * factor as f64;
        // Fractions only make sense with a unit; the result must be whole bytes in range.
        if !b.is_finite() || b < 0.0 || b >= u64::MAX as f64 {
            return Err(bad());
        }
        b.round() as u64
    } else {
        number.parse::<u64>().map_err(|_| bad())?.checked_mul(factor).ok_or_else(bad)?
    };
    Ok(Limit(Some(bytes)))
}

/// Bytes for people: binary units, one decimal.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

const QUOTA_COLUMNS: &[Column] =
    &[("LIMIT", "limit"), ("USED", "used"), ("SHARED", "shared"), ("EXCLUSIVE", "exclusive"), ("BLOBS", "blob_count")];

/// The quota with sizes made readable (the table only; `--json` keeps bytes).
fn readable_quota(v: &Value) -> Value {
    let mut out = v.clone();
    for key in ["limit", "used", "shared", "exclusive"] {
        out[key] = match v[key].as_u64() {
            Some(b) => json!(human(b)),
            None if key == "limit" => json!("none"),
            None => Value::Null,
        };
    }
    out
}

pub fn quota(api: &Api, out: &Output, c: QuotaCommand) -> anyhow::Result<bool> {
    let (path, v) = match c {
        QuotaCommand::Show { project } => {
            let path = format!("/projects/{project}/quota");
            let v = api.call(Method::GET, &path, None)?;
            (path, v)
        }
        QuotaCommand::Set { project, limit } => {
            let path = format!("/projects/{project}/quota");
            let v = api.call(Method::PUT, &path, Some(json!({"limit": limit.0})))?;
            (path, v)
        }
    };
    if v.is_null() {
        bail!("empty answer from {path}");
    }
    if out.json {
        out.one(&v, QUOTA_COLUMNS);
    } else {
        out.one(&readable_quota(&v), QUOTA_COLUMNS);
    }
    Ok(true)
}

const RULE_COLUMNS: &[Column] =
    &[("ID", "id"), ("REPOSITORIES", "repositories"), ("TAGS", "tags"), ("DISABLED", "disabled")];

/// A rule as a table row: each selector as its pattern, `not ` before an excluding one.
fn rule_row(v: &Value) -> Value {
    let selector = |s: &Value| {
        let pattern = s["pattern"].as_str().unwrap_or("");
        match s["decoration"].as_str() {
            Some("excludes" | "repoExcludes") => format!("not {pattern}"),
            _ => pattern.to_owned(),
        }
    };
    json!({
        "id": v["id"],
        "repositories": selector(&v["scope_selectors"]["repository"][0]),
        "tags": selector(&v["tag_selectors"][0]),
        "disabled": v["disabled"],
    })
}

fn rules_out(out: &Output, v: &Value) {
    if out.json {
        out.list(v, RULE_COLUMNS);
    } else {
        let rows: Vec<Value> = v.as_array().map(|a| a.iter().map(rule_row).collect()).unwrap_or_default();
        out.list(&Value::Array(rows), RULE_COLUMNS);
    }
}

pub fn immutable(api: &Api, out: &Output, c: ImmutableCommand) -> anyhow::Result<bool> {
    let rules = |p: &str| format!("/projects/{p}/immutable-rules");
    match c {
        ImmutableCommand::List { project } => rules_out(out, &api.call(Method::GET, &rules(&project), None)?),
        ImmutableCommand::Add { project, repo, tag, exclude_repo, exclude_tag, disabled } => {
            let body = json!({
                "disabled": disabled,
                "tag_selectors": [{"decoration": if exclude_tag { "excludes" } else { "matches" }, "pattern": tag}],
                "scope_selectors": {"repository": [{
                    "decoration": if exclude_repo { "repoExcludes" } else { "repoMatches" }, "pattern": repo,
                }]},
            });
            let v = api.call(Method::POST, &rules(&project), Some(body))?;
            rules_out(out, &Value::Array(vec![v]));
        }
        ImmutableCommand::Delete { project, id } => {
            api.call(Method::DELETE, &format!("{}/{id}", rules(&project)), None)?;
            out.done(&format!("rule {id} of {project} deleted"));
        }
        ImmutableCommand::Enable { project, id } => set_disabled(api, out, &rules(&project), id, false)?,
        ImmutableCommand::Disable { project, id } => set_disabled(api, out, &rules(&project), id, true)?,
    }
    Ok(true)
}

fn set_disabled(api: &Api, out: &Output, rules: &str, id: i64, disabled: bool) -> anyhow::Result<()> {
    let v = api.call(Method::PATCH, &format!("{rules}/{id}"), Some(json!({"disabled": disabled})))?;
    rules_out(out, &Value::Array(vec![v]));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_limit("10GiB"), Ok(Limit(Some(10 * 1024 * 1024 * 1024))));
        assert_eq!(parse_limit("500MB"), Ok(Limit(Some(500_000_000))));
        assert_eq!(parse_limit("1048576"), Ok(Limit(Some(1_048_576))));
        assert_eq!(parse_limit("2 kib"), Ok(Limit(Some(2048))));
        assert_eq!(parse_limit("1.5GiB"), Ok(Limit(Some(1_610_612_736))));
        assert_eq!(parse_limit("none"), Ok(Limit(None)));
        assert_eq!(parse_limit("NONE"), Ok(Limit(None)));
        assert_eq!(parse_limit("0"), Ok(Limit(Some(0))));
    }

    #[test]
    fn bad_sizes_are_errors_not_panics() {
        for bad in ["", "GiB", "10XB", "-1", "1.2.3MB", "99999999999999999999", "20000000PiB", "ten"] {
            assert!(parse_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_read_back_in_binary_units() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(10 * 1024 * 1024 * 1024), "10.0 GiB");
        assert_eq!(human(1_572_864), "1.5 MiB");
    }

    #[test]
    fn rules_show_excluding_selectors_with_not() {
        let v = json!({"id": 3, "disabled": false,
            "tag_selectors": [{"kind": "doublestar", "decoration": "excludes", "pattern": "latest"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}});
        assert_eq!(rule_row(&v), json!({"id": 3, "repositories": "**", "tags": "not latest", "disabled": false}));
    }
}
