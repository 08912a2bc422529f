//! Value checks for supported leaves: validate, and normalise to what the typed model reads.
//!
//! Normalising follows gopkg.in/yaml.v2, which Distribution uses: YAML 1.1 booleans (`yes`,
//! `on`...), any scalar read into a string field as its text, lower-cased log levels.

use crate::duration::parse_go_duration;
use crate::error::ProblemKind;
use serde_norway::Value;

/// The check a supported leaf's value must pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Bool,
    Str,
    /// A non-negative integer.
    UInt,
    /// `catalog.maxentries`: Distribution turns zero or negative into the default.
    PositiveOrDefault,
    /// A Go duration; `int_ns` also accepts a YAML integer of nanoseconds.
    Duration {
        int_ns: bool,
    },
    Version,
    LogLevel,
    Formatter,
    Net,
    ListenAddr,
    AbsoluteUrl,
    StrList,
    RegexList,
    Platforms,
    /// `http.tls.clientauth`: Distribution 3.x's client certificate modes.
    ClientAuth,
    /// `http.tls.minimumtls`: tls1.2 or tls1.3 (rustls implements nothing older).
    MinimumTls,
}

pub(crate) type CheckResult = Result<Option<Value>, (ProblemKind, String)>;

fn invalid<T>(message: impl Into<String>) -> Result<T, (ProblemKind, String)> {
    Err((ProblemKind::InvalidValue, message.into()))
}

/// YAML 1.1 booleans as yaml.v2 resolves them.
fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// A scalar as the string yaml.v2 would put into a Go `string` field.
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn one_of(v: &Value, allowed: &[&str], lower: bool) -> CheckResult {
    let Some(mut s) = scalar_text(v) else {
        return invalid(format!("expected one of {}", allowed.join(", ")));
    };
    if lower {
        s = s.to_lowercase();
    }
    if allowed.contains(&s.as_str()) {
        Ok(Some(Value::String(s)))
    } else {
        invalid(format!("{s:?} is not one of {}", allowed.join(", ")))
    }
}

fn str_list(v: &Value) -> Result<Vec<String>, (ProblemKind, String)> {
    let Value::Sequence(items) = v else {
        return invalid("expected a list of strings (e.g. [value])");
    };
    items
        .iter()
        .map(|item| scalar_text(item).ok_or((ProblemKind::InvalidValue, "expected a list of strings".into())))
        .collect()
}

/// Splits `host:port` as Go's `net.SplitHostPort` does, for the listen address.
pub(crate) fn split_host_port(addr: &str) -> Result<(&str, u16), String> {
    let (host, port) = addr.rsplit_once(':').ok_or("missing port (use HOST:PORT or :PORT)")?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').ok_or("unbalanced brackets")?,
        None if host.contains(':') => return Err("IPv6 addresses must be in brackets, e.g. [::1]:5000".into()),
        None => host,
    };
    let port = port.parse::<u16>().map_err(|_| format!("invalid port {port:?}"))?;
    Ok((host, port))
}

impl Check {
    /// Validates `v` and returns the normalised value, or `None` when the value means "unset".
    pub(crate) fn apply(self, v: &Value) -> CheckResult {
        if v.is_null() {
            return Ok(None);
        }
        match self {
            Check::Bool => match v {
                Value::Bool(_) => Ok(Some(v.clone())),
                Value::String(s) => match yaml11_bool(s) {
                    Some(b) => Ok(Some(Value::Bool(b))),
                    None => invalid(format!("expected true or false, got {s:?}")),
                },
                _ => invalid("expected true or false"),
            },
            Check::Str => match scalar_text(v) {
                Some(s) => Ok(Some(Value::String(s))),
                None => invalid("expected a string"),
            },
            Check::UInt => match v.as_u64() {
                Some(_) => Ok(Some(v.clone())),
                None => invalid("expected a non-negative integer"),
            },
            Check::PositiveOrDefault => match v.as_i64() {
                Some(n) if n > 0 => Ok(Some(v.clone())),
                Some(_) => Ok(None),
                None => invalid("expected an integer"),
            },
            Check::Duration { int_ns } => match v {
                Value::String(s) => match parse_go_duration(s) {
                    Ok(_) => Ok(Some(v.clone())),
                    Err(e) => invalid(e.to_string()),
                },
                Value::Number(n) if int_ns && n.as_u64().is_some() => Ok(Some(v.clone())),
                _ if int_ns => invalid("expected a duration such as \"10s\" or an integer of nanoseconds"),
                _ => invalid("expected a duration string such as \"24h\" (a unit is required)"),
            },
            Check::Version => match scalar_text(v).as_deref() {
                // `version: 0.1` is a YAML float; yaml.v2 reads its text.
                Some("0.1") => Ok(Some(Value::String("0.1".into()))),
                Some(other) => invalid(format!("unsupported version {other:?} (Distribution supports 0.1)")),
                None => invalid("expected 0.1"),
            },
            Check::LogLevel => one_of(v, &["error", "warn", "info", "debug"], true),
            Check::Formatter => one_of(v, &["text", "json", "logstash"], false),
            Check::Platforms => one_of(v, &["all", "none", "list"], true),
            Check::ClientAuth => one_of(
                v,
                &[
                    "request-client-cert",
                    "require-any-client-cert",
                    "verify-client-cert-if-given",
                    "require-and-verify-client-cert",
                ],
                false,
            ),
            Check::MinimumTls => match scalar_text(v).as_deref() {
                Some("tls1.0" | "tls1.1") => invalid(format!(
                    "{} is not supported: Berth's TLS (rustls) implements only tls1.2 and tls1.3",
                    scalar_text(v).unwrap_or_default()
                )),
                _ => one_of(v, &["tls1.2", "tls1.3"], false),
            },
            Check::Net => match scalar_text(v).as_deref() {
                Some("" | "tcp") => Ok(Some(Value::String("tcp".into()))),
                Some("unix") => Err((
                    ProblemKind::NotYetSupported,
                    "listening on a unix socket is not supported yet in this version of Berth".into(),
                )),
                _ => invalid("expected tcp or unix"),
            },
            Check::ListenAddr => match scalar_text(v) {
                Some(addr) => match split_host_port(&addr) {
                    Ok(_) => Ok(Some(Value::String(addr))),
                    Err(why) => invalid(format!("{addr:?}: {why}")),
                },
                None => invalid("expected HOST:PORT or :PORT"),
            },
            Check::AbsoluteUrl => match scalar_text(v) {
                Some(url) => {
                    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
                    match rest {
                        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(Some(Value::String(url))),
                        _ => invalid(format!(
                            "{url:?} is not an absolute http(s) URL such as https://registry.example.com"
                        )),
                    }
                }
                None => invalid("expected an absolute URL"),
            },
            Check::StrList => {
                let items = str_list(v)?;
                Ok(Some(Value::Sequence(items.into_iter().map(Value::String).collect())))
            }
            Check::RegexList => {
                let items = str_list(v)?;
                for (i, pattern) in items.iter().enumerate() {
                    if let Err(e) = regex::Regex::new(pattern) {
                        return invalid(format!("item {i}: invalid regular expression {pattern:?}: {e}"));
                    }
                }
                Ok(Some(Value::Sequence(items.into_iter().map(Value::String).collect())))
            }
        }
    }

    /// Whether the value is a list, so an environment variable may address one element
    /// (`REGISTRY_VALIDATION_MANIFESTS_URLS_ALLOW_0`).
    pub(crate) fn is_list(self) -> bool {
        matches!(self, Check::StrList | Check::RegexList)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(yaml: &str) -> Value {
        serde_norway::from_str(yaml).unwrap_or(Value::Null)
    }

    #[test]
    fn yaml11_booleans_like_go() {
        assert_eq!(Check::Bool.apply(&val("yes")), Ok(Some(Value::Bool(true))));
        assert_eq!(Check::Bool.apply(&val("off")), Ok(Some(Value::Bool(false))));
        assert!(Check::Bool.apply(&val("maybe")).is_err());
    }

    #[test]
    fn version_float_is_read_as_text() {
        assert_eq!(Check::Version.apply(&val("0.1")), Ok(Some(Value::String("0.1".into()))));
        assert!(Check::Version.apply(&val("0.2")).is_err());
    }

    #[test]
    fn listen_addresses() {
        for ok in [":5000", "localhost:5000", "127.0.0.1:0", "[::1]:5000", "0.0.0.0:5000"] {
            assert!(Check::ListenAddr.apply(&Value::String(ok.into())).is_ok(), "{ok}");
        }
        for bad in ["5000", "localhost", ":http", "::1:5000", ":70000"] {
            assert!(Check::ListenAddr.apply(&Value::String(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn log_level_is_lowercased() {
        assert_eq!(Check::LogLevel.apply(&val("DEBUG")), Ok(Some(Value::String("debug".into()))));
        assert!(Check::LogLevel.apply(&val("trace")).is_err());
    }

    #[test]
    fn unix_net_is_not_yet_supported() {
        let err = Check::Net.apply(&val("unix")).err().map(|(kind, _)| kind);
        assert_eq!(err, Some(ProblemKind::NotYetSupported));
    }

    #[test]
    fn tls_versions_older_than_1_2_are_refused_by_name() {
        assert_eq!(Check::MinimumTls.apply(&val("tls1.3")), Ok(Some(Value::String("tls1.3".into()))));
        let (_, why) = Check::MinimumTls.apply(&val("tls1.0")).unwrap_err();
        assert!(why.contains("tls1.0") && why.contains("tls1.2"), "{why}");
        assert!(Check::MinimumTls.apply(&val("1.2")).is_err());
        assert!(Check::ClientAuth.apply(&val("verify-client-cert-if-given")).is_ok());
        assert!(Check::ClientAuth.apply(&val("optional")).is_err());
    }

    #[test]
    fn header_values_must_be_lists() {
        assert!(Check::StrList.apply(&val("nosniff")).is_err());
        assert!(Check::StrList.apply(&val("[nosniff]")).is_ok());
    }
}
