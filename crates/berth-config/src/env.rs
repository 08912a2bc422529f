//! `REGISTRY_*` environment overrides, applied the way Distribution's `configuration/parser.go`
//! applies them:
//!
//! - variables are applied in lexical order of their names, so `REGISTRY_STORAGE` comes before
//!   `REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY`;
//! - the name after `REGISTRY_` is the key path in upper case, `_` between levels; existing keys
//!   match case-insensitively, new ones are created lower case;
//! - the value is parsed as YAML, and replaces the whole value at that path. So
//!   `REGISTRY_STORAGE=s3` replaces the entire `storage` section (file-given `delete`,
//!   `maintenance`... are gone) with `{s3: {}}`: Distribution's `Storage` (and `Auth`) read a
//!   bare string as "this driver, no parameters";
//! - a numeric segment addresses a list element (`REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_0`, 3.x);
//! - a name that matches no known key is ignored with a warning, as Distribution does for
//!   unknown struct fields. Docker links set unrelated `REGISTRY_PORT`-style variables.

use crate::error::{Problem, ProblemKind};
use crate::keys::is_known_path;
use serde_norway::{Mapping, Value};

const PREFIX: &str = "REGISTRY_";

/// Go struct-field spellings Distribution also accepts from the environment, where the field
/// name differs from its YAML key.
const GO_FIELD_ALIASES: &[(&str, &str)] = &[
    ("notifications.eventconfig", "notifications.events"),
    ("health.filecheckers", "health.file"),
    ("health.httpcheckers", "health.http"),
    ("health.tcpcheckers", "health.tcp"),
    ("compatibility.schema1.trustkey", "compatibility.schema1.signingkeyfile"),
];

/// What applying the environment produced.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) warnings: Vec<String>,
    pub(crate) problems: Vec<Problem>,
    /// (dotted key path, variable name) for every variable applied, to attribute problems.
    pub(crate) sources: Vec<(String, String)>,
}

fn key_path(name: &str) -> Vec<String> {
    let mut dotted = name.to_lowercase().replace('_', ".");
    for (go, yaml) in GO_FIELD_ALIASES {
        if dotted == *go || dotted.starts_with(&format!("{go}.")) {
            dotted = format!("{yaml}{}", &dotted[go.len()..]);
        }
    }
    dotted.split('.').map(str::to_owned).collect()
}

/// Distribution's `Storage` and `Auth` accept a bare driver name.
fn normalise_named_section(path: &[String], value: Value) -> Value {
    match (path, value) {
        ([only], Value::String(name)) if only == "storage" || only == "auth" => {
            let mut m = Mapping::new();
            m.insert(Value::String(name), Value::Mapping(Mapping::new()));
            Value::Mapping(m)
        }
        (_, value) => value,
    }
}

/// Applies the overrides to `root` in place.
pub(crate) fn apply(root: &mut Value, env: impl IntoIterator<Item = (String, String)>) -> Applied {
    let mut vars: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
    vars.sort();
    let mut out = Applied::default();
    for (name, raw) in vars {
        let path = key_path(&name[PREFIX.len()..]);
        let dotted = path.join(".");
        if path == ["version"] {
            out.warnings.push(format!("{name} is ignored: the version cannot be set from the environment"));
            continue;
        }
        if path.iter().any(String::is_empty) || !is_known_path(&path) {
            out.warnings
                .push(format!("environment variable {name} does not name a configuration key ({dotted}); ignored"));
            continue;
        }
        // Values are YAML, as in Distribution; one that is not (`@daily`,
        // `*/5 * * * *`) is taken as the plain string it obviously is, and
        // the key's own check still decides whether a string is acceptable.
        let parsed = if raw.trim().is_empty() { Ok(Value::Null) } else { serde_norway::from_str::<Value>(&raw) };
        let value = normalise_named_section(&path, parsed.unwrap_or_else(|_| Value::String(raw.clone())));
        if dotted == "storage" {
            if let Some(Value::Mapping(old)) = root.get("storage") {
                let dropped: Vec<&str> = old.keys().filter_map(Value::as_str).collect();
                if !dropped.is_empty() {
                    out.warnings.push(format!(
                        "{name} replaces the whole storage section, as in Distribution; dropped: {}",
                        dropped.join(", ")
                    ));
                }
            }
        }
        match set(root, &path, value) {
            Ok(()) => out.sources.push((dotted, name)),
            Err(why) => out.problems.push(Problem::new(dotted, ProblemKind::InvalidValue, format!("{name}: {why}"))),
        }
    }
    out
}

/// Sets `value` at `path`, creating mappings on the way.
fn set(root: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("empty key path".into());
    };
    let mut node = root;
    for seg in parents {
        node = child(node, seg)?;
        if !matches!(node, Value::Mapping(_) | Value::Sequence(_)) {
            *node = Value::Mapping(Mapping::new());
        }
    }
    *child(node, last)? = value;
    Ok(())
}

/// The child `seg` of `node`, created (as null) when missing.
fn child<'a>(node: &'a mut Value, seg: &str) -> Result<&'a mut Value, String> {
    if matches!(node, Value::Sequence(_)) {
        let Value::Sequence(items) = node else {
            return Err("not a list".into());
        };
        let index: usize = seg.parse().map_err(|_| format!("{seg:?} is not a list index"))?;
        if index == items.len() {
            items.push(Value::Null);
        }
        let len = items.len();
        return items
            .get_mut(index)
            .ok_or_else(|| format!("list index {index} is past the end (the list has {len} items)"));
    }
    if !matches!(node, Value::Mapping(_)) {
        *node = Value::Mapping(Mapping::new());
    }
    let Value::Mapping(map) = node else {
        return Err("not a mapping".into());
    };
    let existing = map.keys().find(|k| k.as_str().is_some_and(|s| s.eq_ignore_ascii_case(seg))).cloned();
    let key = existing.unwrap_or_else(|| Value::String(seg.to_owned()));
    Ok(map.entry(key).or_insert(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> Value {
        serde_norway::from_str(yaml).unwrap_or(Value::Null)
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sets_nested_keys_matching_existing_case_insensitively() {
        let mut root = tree("http:\n  headers:\n    X-Frame-Options: [DENY]\n");
        let applied = apply(&mut root, env(&[("REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS", "[SAMEORIGIN]")]));
        assert!(applied.warnings.is_empty() && applied.problems.is_empty());
        assert_eq!(root, tree("http:\n  headers:\n    X-Frame-Options: [SAMEORIGIN]\n"));
    }

    #[test]
    fn storage_string_replaces_section_then_params_apply_in_order() {
        let mut root = tree("storage:\n  filesystem: {rootdirectory: /x}\n  delete: {enabled: true}\n");
        // Deliberately unsorted input: Distribution sorts by name.
        let applied = apply(&mut root, env(&[("REGISTRY_STORAGE_S3_BUCKET", "b"), ("REGISTRY_STORAGE", "s3")]));
        assert_eq!(root, tree("storage:\n  s3: {bucket: b}\n"));
        assert!(applied.warnings.iter().any(|w| w.contains("filesystem, delete")), "{:?}", applied.warnings);
    }

    #[test]
    fn list_index_sets_or_appends() {
        let mut root = tree("validation: {manifests: {urls: {allow: [a]}}}");
        apply(&mut root, env(&[("REGISTRY_VALIDATION_MANIFESTS_URLS_ALLOW_1", "b")]));
        assert_eq!(root, tree("validation: {manifests: {urls: {allow: [a, b]}}}"));
    }

    #[test]
    fn unknown_variables_warn_and_change_nothing() {
        let mut root = tree("http: {addr: ':5000'}");
        let applied = apply(&mut root, env(&[("REGISTRY_PORT", "tcp://172.17.0.2:5000"), ("OTHER", "x")]));
        assert_eq!(root, tree("http: {addr: ':5000'}"));
        assert_eq!(applied.warnings.len(), 1);
        assert!(applied.warnings[0].contains("REGISTRY_PORT"));
    }

    #[test]
    fn go_field_names_are_aliases() {
        assert_eq!(
            key_path("NOTIFICATIONS_EVENTCONFIG_INCLUDEREFERENCES"),
            ["notifications", "events", "includereferences"]
        );
    }
}
