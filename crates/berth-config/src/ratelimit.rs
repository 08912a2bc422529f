//! `berth.ratelimit`: token buckets per client address and per account.
//! Both off unless configured.

use serde::{Deserialize, Serialize};

/// `berth.ratelimit`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimit {
    /// Per client address (the connection's peer), checked before
    /// authentication so floods cost little.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perip: Option<Bucket>,
    /// Per authenticated account name (users, robots, token subjects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peruser: Option<Bucket>,
}

/// A token bucket: refilled at `rate` requests per second, holding at
/// most `burst` (the default burst is the rate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    pub rate: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

impl Bucket {
    /// The burst, defaulting to the rate.
    pub fn burst(&self) -> u64 {
        self.burst.unwrap_or(self.rate)
    }
}

#[cfg(test)]
mod tests {
    use crate::{load_from_str, ConfigError};

    const MINIMAL: &str = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n";

    #[test]
    fn ratelimit_is_off_by_default_and_read_from_yaml() {
        let none: Vec<(String, String)> = Vec::new();
        let c = load_from_str(MINIMAL, none.clone()).unwrap().config;
        assert_eq!(c.berth.ratelimit.perip, None);
        assert_eq!(c.berth.ratelimit.peruser, None);
        let yaml =
            format!("{MINIMAL}berth:\n  ratelimit:\n    perip: {{rate: 100, burst: 200}}\n    peruser: {{rate: 5}}\n");
        let c = load_from_str(&yaml, none.clone()).unwrap().config;
        let ip = c.berth.ratelimit.perip.as_ref().unwrap();
        assert_eq!((ip.rate, ip.burst()), (100, 200));
        let user = c.berth.ratelimit.peruser.as_ref().unwrap();
        assert_eq!((user.rate, user.burst()), (5, 5));
        let bad = format!("{MINIMAL}berth:\n  ratelimit:\n    perip: {{rate: 1, refill: 2}}\n");
        assert!(matches!(load_from_str(&bad, none), Err(ConfigError::Invalid(_))));
    }
}
