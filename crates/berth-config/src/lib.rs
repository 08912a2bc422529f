//! Berth's configuration: CNCF Distribution's `config.yml` format, read unchanged.
//!
//! Loading goes: the file (or, with none, `registry:2`'s built-in defaults) → `REGISTRY_*`
//! environment overrides exactly as Distribution applies them (`env.rs`) → every key checked
//! against one table of all keys Distribution 2.8 and 3.x know plus Berth's own `berth:`
//! section (`keys.rs`) → the supported keys deserialised into the typed [`Config`] (`model.rs`).
//!
//! Each key is supported, ignored (accepted, with a warning), not yet supported (a start-up
//! error), or unknown (a start-up error naming its full path). All problems are collected and
//! reported together in [`ConfigError::Invalid`].
//!
//! This crate depends on no other berth crate; the binary and the server depend on it.

mod audit;
mod auth;
mod duration;
mod env;
mod error;
mod keys;
mod limits;
mod mask;
mod metrics;
mod model;
mod notifications;
mod ratelimit;
mod values;
mod walk;

pub use audit::Audit;
pub use auth::{Auth, BerthAuth, HtpasswdAuth, ProjectCreation, ProjectTemplate, Projects, TokenAuth};
pub use duration::{format_go_duration, parse_go_duration, DurationError};
pub use error::{ConfigError, Problem, ProblemKind};
pub use limits::Limits;
pub use metrics::Metrics;
pub use model::*;
pub use notifications::{
    Endpoint as NotificationEndpoint, Events as NotificationEvents, Ignore as NotificationIgnore, Notifications,
    Webhooks,
};
pub use ratelimit::{Bucket, RateLimit};

use serde_norway::{Mapping, Value};
use std::path::Path;

/// A loaded configuration and the warnings to log at start-up.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Ignored keys, ignored environment variables, deprecated spellings.
    pub warnings: Vec<String>,
}

/// Loads the configuration file at `path` (or `registry:2`'s defaults when `None`), then
/// applies the `REGISTRY_*` variables found in `env` (pass `std::env::vars()`).
pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Loaded, ConfigError> {
    match path {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
            load_text(Some((&text, &path.display().to_string())), env)
        }
        None => load_text(None, env),
    }
}

/// Loads a configuration given as YAML text (a file's contents).
pub fn load_from_str(yaml: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Loaded, ConfigError> {
    load_text(Some((yaml, "configuration")), env)
}

/// What `registry:2` runs with when no file is given: every interface on port 5000, the
/// filesystem driver at /var/lib/registry.
fn default_tree() -> Value {
    let mut filesystem = Mapping::new();
    filesystem.insert("rootdirectory".into(), "/var/lib/registry".into());
    let mut storage = Mapping::new();
    storage.insert("filesystem".into(), Value::Mapping(filesystem));
    let mut http = Mapping::new();
    http.insert("addr".into(), ":5000".into());
    let mut root = Mapping::new();
    root.insert("version".into(), "0.1".into());
    root.insert("storage".into(), Value::Mapping(storage));
    root.insert("http".into(), Value::Mapping(http));
    Value::Mapping(root)
}

/// Parses the file text; Distribution's `storage: inmemory` short form becomes a mapping.
fn parse_file(yaml: &str, origin: &str) -> Result<Value, ConfigError> {
    let syntax = |e: serde_norway::Error| ConfigError::Syntax { origin: origin.to_owned(), message: e.to_string() };
    let mut root: Value =
        if yaml.trim().is_empty() { Value::Null } else { serde_norway::from_str(yaml).map_err(syntax)? };
    root.apply_merge().map_err(syntax)?; // `<<:` merge keys, which Go's yaml.v2 supports
    if let Value::Mapping(map) = &mut root {
        for section in ["storage", "auth"] {
            if let Some(Value::String(name)) = map.get(section) {
                let mut named = Mapping::new();
                named.insert(Value::String(name.clone()), Value::Mapping(Mapping::new()));
                map.insert(section.into(), Value::Mapping(named));
            }
        }
    }
    Ok(root)
}

fn load_text(
    file: Option<(&str, &str)>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded, ConfigError> {
    let mut problems = Vec::new();
    let mut root = match file {
        Some((yaml, origin)) => {
            let root = parse_file(yaml, origin)?;
            // Distribution reads the version from the file before any override.
            if root.get("version").is_none_or(Value::is_null) {
                problems.push(Problem::new("version", ProblemKind::Missing, "required (use version: 0.1)"));
            }
            root
        }
        None => default_tree(),
    };

    let applied = env::apply(&mut root, env);
    let walked = walk::walk(&root);
    let mut warnings = applied.warnings;
    warnings.extend(walked.warnings);
    problems.extend(applied.problems);
    problems.extend(walked.problems);
    if !walk::has_storage_driver(&root) {
        problems.push(Problem::new(
            "storage",
            ProblemKind::Missing,
            "no storage driver configured (Distribution requires one, e.g. storage.filesystem)",
        ));
    }

    let mut supported = walked.supported;
    if let Some(level) = supported.remove("loglevel") {
        warnings.push("loglevel is deprecated; use log.level".into());
        if let Some(Value::Mapping(log)) = supported.get_mut("log") {
            if !log.contains_key("level") {
                log.insert("level".into(), level);
            }
        } else {
            let mut log = Mapping::new();
            log.insert("level".into(), level);
            supported.insert("log".into(), Value::Mapping(log));
        }
    }

    if !problems.is_empty() {
        attribute_to_env(&mut problems, &applied.sources);
        return Err(ConfigError::Invalid(problems));
    }
    let config: Config = serde_norway::from_value(Value::Mapping(supported))
        .map_err(|e| ConfigError::Invalid(vec![Problem::new("", ProblemKind::InvalidValue, e.to_string())]))?;
    let mut problems = auth::check(&config);
    if !problems.is_empty() {
        attribute_to_env(&mut problems, &applied.sources);
        return Err(ConfigError::Invalid(problems));
    }
    Ok(Loaded { config, warnings })
}

/// Appends "(from REGISTRY_X)" to problems whose key an environment variable set.
fn attribute_to_env(problems: &mut [Problem], sources: &[(String, String)]) {
    for problem in problems {
        let source = sources
            .iter()
            .filter(|(path, _)| {
                let rest = problem.key.strip_prefix(path.as_str());
                rest.is_some_and(|r| r.is_empty() || r.starts_with('.') || r.starts_with('['))
            })
            .max_by_key(|(path, _)| path.len());
        if let Some((_, var)) = source {
            problem.message.push_str(&format!(" (from {var})"));
        }
    }
}

#[cfg(test)]
mod tests;
