//! `berth.audit`: the tamper-evident audit log (docs/audit-log.md).

use crate::duration;
use crate::Config;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// `berth.audit`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Audit {
    /// Record pushes, pulls, deletes and logins. Default: on whenever the
    /// registry authenticates (`berth.auth.enabled`, `auth.htpasswd` or
    /// `auth.token`), since only then is there a "who"; off for an open
    /// registry. See [`Config::audit_enabled`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Entries older than this are deleted, oldest first, keeping the chain
    /// verifiable from an anchor. Default: kept forever.
    #[serde(with = "go_opt", skip_serializing_if = "Option::is_none")]
    pub retention: Option<Duration>,
}

impl Config {
    /// `berth.audit.enabled`, or its default (see [`Audit::enabled`]).
    pub fn audit_enabled(&self) -> bool {
        self.berth
            .audit
            .enabled
            .unwrap_or(self.berth.auth.enabled || self.auth.htpasswd.is_some() || self.auth.token.is_some())
    }
}

/// An optional Go duration.
mod go_opt {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration::go::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration::go::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use crate::{load_from_str, ConfigError, Loaded, Problem};
    use std::time::Duration;

    const MINIMAL: &str = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n";

    fn load(vars: &[(&str, &str)]) -> Result<Loaded, ConfigError> {
        load_from_str(MINIMAL, vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>())
    }

    fn ok(_: &str, vars: &[(&str, &str)]) -> Loaded {
        load(vars).unwrap_or_else(|e| panic!("should load: {e}"))
    }

    fn problems(_: &str, vars: &[(&str, &str)]) -> Vec<Problem> {
        match load(vars) {
            Err(ConfigError::Invalid(p)) => p,
            other => panic!("expected ConfigError::Invalid, got {other:?}"),
        }
    }

    #[test]
    fn audit_defaults_follow_authentication() {
        let open = ok(MINIMAL, &[]).config;
        assert!(!open.audit_enabled() && open.berth.audit.retention.is_none());
        let authed = ok(MINIMAL, &[("REGISTRY_BERTH_AUTH_ENABLED", "true")]).config;
        assert!(authed.audit_enabled());
        let off = ok(MINIMAL, &[("REGISTRY_BERTH_AUTH_ENABLED", "true"), ("REGISTRY_BERTH_AUDIT_ENABLED", "false")]);
        assert!(!off.config.audit_enabled());
        let kept =
            ok(MINIMAL, &[("REGISTRY_BERTH_AUDIT_ENABLED", "true"), ("REGISTRY_BERTH_AUDIT_RETENTION", "2160h")]);
        assert!(kept.config.audit_enabled());
        assert_eq!(kept.config.berth.audit.retention, Some(Duration::from_secs(2160 * 3600)));
        assert!(kept.config.to_masked_yaml().contains("retention: 2160h"), "{}", kept.config.to_masked_yaml());
        let p = problems(MINIMAL, &[("REGISTRY_BERTH_AUDIT_RETENTION", "90 days")]);
        assert_eq!(p[0].key, "berth.audit.retention");
    }
}
