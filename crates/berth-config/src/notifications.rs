//! `notifications` (Distribution's: endpoints that receive registry events)
//! and `berth.webhooks` (Harbor-style per-project webhook policies).

use crate::duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `notifications`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notifications {
    pub events: Events,
    pub endpoints: Vec<Endpoint>,
}

/// `notifications.events`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Events {
    /// Manifest events list the manifest's references.
    pub includereferences: bool,
}

/// One `notifications.endpoints[]` entry. Zero durations and threshold
/// take Distribution's defaults (1s, 10, 1s) where the endpoint is built.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Endpoint {
    pub name: String,
    pub disabled: bool,
    pub url: String,
    /// Header name to values, as Go's `http.Header`.
    pub headers: BTreeMap<String, Vec<String>>,
    #[serde(with = "duration::go")]
    pub timeout: Duration,
    pub threshold: u32,
    #[serde(with = "duration::go")]
    pub backoff: Duration,
    pub ignoredmediatypes: Vec<String>,
    pub ignore: Ignore,
}

/// `notifications.endpoints[].ignore`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ignore {
    pub mediatypes: Vec<String>,
    pub actions: Vec<String>,
}

/// `berth.webhooks`: delivery of projects' webhook policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Webhooks {
    /// Default true; false stops deliveries on this node (events are still queued).
    pub enabled: bool,
    /// CIDRs of internal addresses webhooks may nevertheless reach
    /// (loopback, link-local and metadata addresses are refused otherwise).
    pub allownets: Vec<String>,
    /// Per attempt. Default 10s.
    #[serde(with = "duration::go")]
    pub timeout: Duration,
    /// Attempts before a delivery is given up. Default 10.
    pub maxattempts: u32,
    /// Wait before the first retry, doubled for each further one (at most 1h). Default 10s.
    #[serde(with = "duration::go")]
    pub backoff: Duration,
    /// How long finished deliveries stay in the delivery log. Default 168h.
    #[serde(with = "duration::go")]
    pub keep: Duration,
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks {
            enabled: true,
            allownets: Vec::new(),
            timeout: Duration::from_secs(10),
            maxattempts: 10,
            backoff: Duration::from_secs(10),
            keep: Duration::from_secs(168 * 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{load_from_str, ConfigError};
    use std::time::Duration;

    const MINIMAL: &str = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n";

    // The example of Distribution's notifications documentation, plus its other keys.
    #[test]
    fn distributions_endpoint_example_is_read() {
        let yaml = format!(
            "{MINIMAL}notifications:\n  events:\n    includereferences: true\n  endpoints:\n    - name: alistener\n      url: https://mylistener.example.com/event\n      headers:\n        Authorization: [Bearer s3cr3t]\n      timeout: 500ms\n      threshold: 5\n      backoff: 1s\n      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        mediatypes: [application/vnd.oci.image.index.v1+json]\n        actions: [pull]\n    - name: off\n      disabled: true\n      url: http://x.example\n      timeout: 2000000000\n"
        );
        let none: Vec<(String, String)> = Vec::new();
        let c = load_from_str(&yaml, none).unwrap().config;
        assert!(c.notifications.events.includereferences);
        let e = &c.notifications.endpoints[0];
        assert_eq!(e.name, "alistener");
        assert_eq!(e.headers["Authorization"], ["Bearer s3cr3t"]);
        assert_eq!((e.timeout, e.threshold, e.backoff), (Duration::from_millis(500), 5, Duration::from_secs(1)));
        assert_eq!(e.ignoredmediatypes, ["application/octet-stream"]);
        assert_eq!(e.ignore.actions, ["pull"]);
        let off = &c.notifications.endpoints[1];
        assert!(off.disabled);
        assert_eq!(off.timeout, Duration::from_secs(2));
    }

    #[test]
    fn endpoint_mistakes_are_named() {
        let none: Vec<(String, String)> = Vec::new();
        let bad = format!("{MINIMAL}notifications:\n  endpoints:\n    - {{name: a, url: ftp://x, colour: red}}\n");
        let Err(ConfigError::Invalid(problems)) = load_from_str(&bad, none) else { panic!("accepted") };
        let text = format!("{problems:?}");
        assert!(text.contains("notifications.endpoints[0].url"), "{text}");
        assert!(text.contains("notifications.endpoints[0].colour"), "{text}");
    }

    #[test]
    fn webhook_delivery_settings_have_defaults() {
        let none: Vec<(String, String)> = Vec::new();
        let c = load_from_str(MINIMAL, none.clone()).unwrap().config;
        assert!(c.berth.webhooks.enabled);
        assert_eq!(c.berth.webhooks.maxattempts, 10);
        let yaml = format!("{MINIMAL}berth:\n  webhooks:\n    allownets: [127.0.0.0/8]\n    backoff: 200ms\n");
        let c = load_from_str(&yaml, none).unwrap().config;
        assert_eq!(c.berth.webhooks.allownets, ["127.0.0.0/8"]);
        assert_eq!(c.berth.webhooks.backoff, Duration::from_millis(200));
    }
}
