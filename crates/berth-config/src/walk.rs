//! Walks the merged YAML tree against the key table: collects every problem and warning,
//! and keeps only the supported keys (normalised) for the typed model.

use crate::error::{Problem, ProblemKind};
use crate::keys::{lookup, Kind, OTHER_DRIVERS, STORAGE_SETTINGS};
use serde_norway::{Mapping, Value};

/// One step of a key path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// What the walk found.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    /// The supported keys only, normalised: what the typed model deserialises.
    pub(crate) supported: Mapping,
    pub(crate) problems: Vec<Problem>,
    pub(crate) warnings: Vec<String>,
}

#[derive(Default)]
struct Walker {
    path: Vec<Seg>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

/// Walks the whole configuration tree.
pub(crate) fn walk(root: &Value) -> Walked {
    let mut w = Walker::default();
    let supported = match root {
        Value::Mapping(map) => w.mapping(map, false),
        Value::Null => Mapping::new(),
        _ => {
            w.problem(ProblemKind::InvalidValue, "the configuration must be a YAML mapping");
            Mapping::new()
        }
    };
    if let Some(storage) = root.get("storage") {
        w.path.push(Seg::Key("storage".into()));
        w.storage_driver(storage);
        w.path.pop();
    }
    Walked { supported, problems: w.problems, warnings: w.warnings }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Mapping(m) => m.is_empty(),
        Value::Sequence(s) => s.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

impl Walker {
    fn display(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    fn pattern(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(_) => out.push_str("[]"),
            }
        }
        out
    }

    fn problem(&mut self, kind: ProblemKind, message: impl Into<String>) {
        let key = self.display();
        self.problems.push(Problem::new(key, kind, message));
    }

    fn not_yet(&mut self, what: &str) {
        self.problem(ProblemKind::NotYetSupported, format!("not supported yet in this version of Berth ({what})"));
    }

    /// Walks a mapping's children; returns the supported ones.
    fn mapping(&mut self, map: &Mapping, in_ignored: bool) -> Mapping {
        let mut out = Mapping::new();
        for (key, value) in map {
            let Some(key) = key.as_str() else {
                self.problem(ProblemKind::InvalidValue, format!("key {key:?} is not a string"));
                continue;
            };
            self.path.push(Seg::Key(key.to_owned()));
            if let Some(kept) = self.entry(value, in_ignored) {
                out.insert(Value::String(key.to_owned()), kept);
            }
            self.path.pop();
        }
        out
    }

    /// A value that must be a mapping (null counts as empty).
    fn as_mapping<'v>(&mut self, value: &'v Value) -> Option<&'v Mapping> {
        static EMPTY: std::sync::OnceLock<Mapping> = std::sync::OnceLock::new();
        match value {
            Value::Mapping(m) => Some(m),
            Value::Null => Some(EMPTY.get_or_init(Mapping::new)),
            _ => {
                self.problem(ProblemKind::InvalidValue, "expected a mapping of keys");
                None
            }
        }
    }

    /// Walks each element of a list of mappings.
    fn objects(&mut self, value: &Value, in_ignored: bool) -> Option<Vec<Value>> {
        let items = match value {
            Value::Sequence(items) => items,
            Value::Null => return Some(Vec::new()),
            _ => {
                self.problem(ProblemKind::InvalidValue, "expected a list");
                return None;
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            self.path.push(Seg::Index(i));
            if let Some(map) = self.as_mapping(item) {
                out.push(Value::Mapping(self.mapping(map, in_ignored)));
            }
            self.path.pop();
        }
        Some(out)
    }

    /// Classifies one key; returns its supported, normalised value if it has one.
    fn entry(&mut self, value: &Value, in_ignored: bool) -> Option<Value> {
        let Some(kind) = lookup(&self.pattern()) else {
            self.problem(ProblemKind::UnknownKey, "unknown configuration key (neither Distribution nor Berth has it)");
            return None;
        };
        match kind {
            Kind::Section => {
                let map = self.as_mapping(value)?;
                Some(Value::Mapping(self.mapping(map, in_ignored)))
            }
            Kind::Value(check) => match check.apply(value) {
                Ok(kept) => kept,
                Err((kind, message)) => {
                    self.problem(kind, message);
                    None
                }
            },
            Kind::Map(check) => {
                let map = self.as_mapping(value)?;
                let mut out = Mapping::new();
                for (k, v) in map {
                    let name = k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}"));
                    self.path.push(Seg::Key(name.clone()));
                    match check.apply(v) {
                        Ok(Some(kept)) => {
                            out.insert(Value::String(name), kept);
                        }
                        Ok(None) => {}
                        Err((kind, message)) => self.problem(kind, message),
                    }
                    self.path.pop();
                }
                Some(Value::Mapping(out))
            }
            Kind::Objects => self.objects(value, in_ignored).map(Value::Sequence),
            Kind::Ignored(why) | Kind::IgnoredOpen(why) => {
                let warn = !why.is_empty() && !in_ignored && !is_empty(value);
                if warn {
                    let key = self.display();
                    self.warnings.push(format!("{key} is accepted but ignored: {why}"));
                }
                // Below a warned key, further ignored keys stay silent.
                if matches!(kind, Kind::Ignored(_)) {
                    match value {
                        Value::Mapping(map) => {
                            self.mapping(map, in_ignored || warn);
                        }
                        Value::Sequence(_) => {
                            self.objects(value, in_ignored || warn);
                        }
                        _ => {}
                    }
                }
                None
            }
            Kind::NotYet(what) => {
                self.not_yet(what);
                None
            }
            Kind::NotYetIfNonEmpty(what) => {
                if !is_empty(value) {
                    self.not_yet(what);
                }
                None
            }
        }
    }

    /// Distribution requires exactly one storage driver.
    fn storage_driver(&mut self, storage: &Value) {
        let Value::Mapping(map) = storage else { return };
        let drivers: Vec<&str> = map
            .keys()
            .filter_map(Value::as_str)
            .filter(|k| !STORAGE_SETTINGS.contains(k))
            .filter(|k| *k == "filesystem" || OTHER_DRIVERS.contains(k))
            .collect();
        if drivers.len() > 1 {
            self.problem(
                ProblemKind::InvalidValue,
                format!("exactly one storage driver must be configured, found {}", drivers.join(", ")),
            );
        }
    }
}

/// Whether the tree names a storage driver at all (Distribution: "no storage configuration provided").
pub(crate) fn has_storage_driver(root: &Value) -> bool {
    match root.get("storage") {
        Some(Value::Mapping(map)) => map.keys().filter_map(Value::as_str).any(|k| !STORAGE_SETTINGS.contains(&k)),
        _ => false,
    }
}
