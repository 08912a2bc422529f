//! Errors: one `ConfigError` for the caller, carrying every `Problem` found in one pass.

use std::fmt;
use std::path::PathBuf;

/// What kind of problem a configuration key has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The key is known neither to Distribution nor to Berth.
    UnknownKey,
    /// Distribution knows the key; a later Berth version implements it.
    NotYetSupported,
    /// The key is known but its value is wrong.
    InvalidValue,
    /// A required key is absent.
    Missing,
}

/// One problem with one key, named by its full dotted path (`notifications.endpoints[0].url`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub kind: ProblemKind,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(key: impl Into<String>, kind: ProblemKind, message: impl Into<String>) -> Self {
        Problem { key: key.into(), kind, message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = if self.key.is_empty() { "(top level)" } else { &self.key };
        write!(f, "{key}: {}", self.message)
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin} is not valid YAML: {message}")]
    Syntax { origin: String, message: String },
    #[error("invalid configuration:{}", list(.0))]
    Invalid(Vec<Problem>),
    #[error("http.addr {addr:?}: {reason}")]
    Addr { addr: String, reason: String },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}
