//! `berth.limits`: what one client may hold of a node — connections, header
//! bytes and time, concurrent uploads, idle upload bodies.

use crate::duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `berth.limits`. Zero turns a limit off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Open connections per listener; beyond it new ones wait in the
    /// kernel's backlog. Default 10000.
    pub maxconnections: usize,
    /// Bytes of request line and headers (HTTP/1), of the header list (HTTP/2). Default 64 KiB.
    pub maxheaderbytes: usize,
    /// Time a client has to send a request's headers (slow clients hold a
    /// connection otherwise). Default 60s.
    #[serde(with = "duration::go")]
    pub headertimeout: Duration,
    /// Upload requests (PATCH, PUT, POST with data) in progress on a node;
    /// beyond it `429 TOOMANYREQUESTS`. Default 0: no limit.
    pub maxuploads: usize,
    /// An upload body that sends nothing for this long is cut off. Default 120s.
    #[serde(with = "duration::go")]
    pub uploadidletimeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            maxconnections: 10_000,
            maxheaderbytes: 64 << 10,
            headertimeout: Duration::from_secs(60),
            maxuploads: 0,
            uploadidletimeout: Duration::from_secs(120),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::load_from_str;
    use std::time::Duration;

    #[test]
    fn limits_have_defaults_and_are_read() {
        let minimal = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /data\n";
        let none: Vec<(String, String)> = Vec::new();
        let c = load_from_str(minimal, none.clone()).unwrap().config;
        assert_eq!(c.berth.limits.maxconnections, 10_000);
        assert_eq!(c.berth.limits.uploadidletimeout, Duration::from_secs(120));
        let env = vec![("REGISTRY_BERTH_LIMITS_MAXUPLOADS".to_owned(), "4".to_owned())];
        let yaml = format!("{minimal}berth:\n  limits:\n    headertimeout: 5s\n    maxheaderbytes: 16384\n");
        let c = load_from_str(&yaml, env).unwrap().config;
        assert_eq!((c.berth.limits.maxuploads, c.berth.limits.maxheaderbytes), (4, 16384));
        assert_eq!(c.berth.limits.headertimeout, Duration::from_secs(5));
    }
}
