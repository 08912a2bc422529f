//! `berth.metrics`: the Prometheus metrics on the main listener, for
//! deployments whose monitoring cannot reach a second port. Off unless a
//! token is set.

use crate::model::Secret;
use serde::{Deserialize, Serialize};

/// `berth.metrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// With a token, `GET /metrics` on the main listener answers requests
    /// bearing it (`Authorization: Bearer <token>`); without, it is a 404.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
}

#[cfg(test)]
mod tests {
    use crate::load_from_str;

    const MINIMAL: &str = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n";

    #[test]
    fn metrics_token_is_off_by_default_read_from_yaml_or_env_and_masked() {
        let none: Vec<(String, String)> = Vec::new();
        assert_eq!(load_from_str(MINIMAL, none.clone()).unwrap().config.berth.metrics.token, None);

        let yaml = format!("{MINIMAL}berth:\n  metrics:\n    token: s3cr3t-scrape\n");
        let c = load_from_str(&yaml, none).unwrap().config;
        assert_eq!(c.berth.metrics.token.as_ref().map(|t| t.expose()), Some("s3cr3t-scrape"));
        let shown = c.to_masked_yaml();
        assert!(!shown.contains("s3cr3t-scrape") && shown.contains("token: '********'"), "{shown}");

        let env = vec![("REGISTRY_BERTH_METRICS_TOKEN".to_owned(), "from-env".to_owned())];
        let c = load_from_str(MINIMAL, env).unwrap().config;
        assert_eq!(c.berth.metrics.token.as_ref().map(|t| t.expose()), Some("from-env"));
    }
}
