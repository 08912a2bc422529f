//! Outbound HTTP for webhooks, which project administrators point anywhere:
//! addresses on loopback, link-local (cloud metadata lives there), the
//! unspecified address, multicast and known metadata addresses are refused
//! unless a CIDR of `berth.webhooks.allownets` covers them. The check runs
//! on every address a name resolves to, inside the resolver the client
//! connects with, so a name cannot pass validation and then resolve
//! (rebind) to a refused address. No redirects, no proxies from the
//! environment (either would step around the check), a timeout on every
//! call and a cap on how much of a response is read.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Most bytes of a response body read (to quote in the delivery log).
pub const RESPONSE_CAP: usize = 4096;

/// Which addresses webhooks may reach.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// Refuses the internal addresses except those in `allownets` (CIDRs or bare addresses).
    pub fn new(allownets: &[String]) -> Result<Self, String> {
        let allowed = allownets
            .iter()
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not an address or a CIDR"))
            })
            .collect::<Result<_, _>>()?;
        Ok(AddressPolicy { allowed })
    }

    /// `Err(why)` if webhooks may not reach `ip`.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let Some(why) = internal(ip) else { return Ok(()) };
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        Err(format!("{ip} is {why}; allow it in berth.webhooks.allownets if it is meant"))
    }

    /// Checks a URL before any request: scheme, and the host if it is an address.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, String> {
        let u = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(format!("{url:?}: only http and https addresses are allowed"));
        }
        let host = u.host_str().ok_or_else(|| format!("{url:?} has no host"))?;
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            self.check(ip)?;
        }
        Ok(u)
    }
}

/// Why `ip` is internal, if it is.
fn internal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => internal_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return internal_v4(v4);
            }
            if a.is_loopback() {
                Some("loopback")
            } else if a.is_unspecified() {
                Some("unspecified")
            } else if a.is_multicast() {
                Some("multicast")
            } else if (a.segments()[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if a == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
                Some("a cloud metadata address")
            } else {
                None
            }
        }
    }
}

fn internal_v4(a: Ipv4Addr) -> Option<&'static str> {
    if a.is_loopback() {
        Some("loopback")
    } else if a.is_link_local() {
        Some("link-local (cloud metadata lives there)")
    } else if a.is_unspecified() || a.octets()[0] == 0 {
        Some("unspecified")
    } else if a.is_multicast() || a.is_broadcast() {
        Some("multicast or broadcast")
    } else if a == Ipv4Addr::new(100, 100, 100, 200) {
        Some("a cloud metadata address")
    } else {
        None
    }
}

/// The resolver the client connects through: system resolution, then the policy.
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let ok: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refused = Some(why);
                        false
                    }
                })
                .collect();
            if ok.is_empty() {
                let why = refused.unwrap_or_else(|| format!("{host} has no address"));
                return Err(format!("refused: {host}: {why}").into());
            }
            Ok(Box::new(ok.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A client for webhook targets: guarded by `policy`, `timeout` per call.
pub fn guarded_client(
    policy: Arc<AddressPolicy>,
    timeout: Duration,
    skip_cert_verify: bool,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .danger_accept_invalid_certs(skip_cert_verify)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A client for Distribution's `notifications.endpoints`: the operator wrote
/// those, so they are not guarded (a registry:2 setup posting to a local
/// listener must keep working); still no redirects and a timeout.
pub fn endpoint_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// What one POST came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The start of the body (at most [`RESPONSE_CAP`] bytes), lossily decoded.
    pub body: String,
}

/// Sends a POST and reads at most [`RESPONSE_CAP`] bytes of the answer.
pub async fn post(req: reqwest::RequestBuilder) -> Result<Answer, String> {
    let mut resp = req.send().await.map_err(describe)?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while body.len() < RESPONSE_CAP {
        match resp.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_CAP - body.len())]),
            Ok(None) | Err(_) => break,
        }
    }
    Ok(Answer { status, body: String::from_utf8_lossy(&body).into_owned() })
}

/// reqwest's error with its causes (the refusal reason is one of them).
fn describe(e: reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let p = AddressPolicy::default();
        for refused in
            ["127.0.0.1", "::1", "169.254.169.254", "fe80::1", "0.0.0.0", "::", "224.0.0.1", "100.100.100.200"]
        {
            assert!(p.check(refused.parse().unwrap()).is_err(), "{refused}");
        }
        // IPv4-mapped IPv6 is the IPv4 address.
        assert!(p.check("::ffff:127.0.0.1".parse().unwrap()).is_err());
        assert!(p.check("fd00:ec2::254".parse().unwrap()).is_err());
        for fine in ["10.1.2.3", "192.168.1.1", "8.8.8.8", "2001:db8::1"] {
            assert!(p.check(fine.parse().unwrap()).is_ok(), "{fine}");
        }
        let allowing = AddressPolicy::new(&["127.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(allowing.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(allowing.check("::1".parse().unwrap()).is_ok());
        assert!(allowing.check("169.254.169.254".parse().unwrap()).is_err());
        assert!(AddressPolicy::new(&["nope".into()]).is_err());
    }

    proptest::proptest! {
        // An IPv4 address written as IPv4-mapped IPv6 must not slip past the check.
        #[test]
        fn mapped_addresses_get_the_ipv4_verdict(octets: [u8; 4]) {
            let p = AddressPolicy::default();
            let v4 = Ipv4Addr::from(octets);
            proptest::prop_assert_eq!(p.check(IpAddr::V4(v4)).is_ok(), p.check(IpAddr::V6(v4.to_ipv6_mapped())).is_ok());
        }

        #[test]
        fn all_of_loopback_and_link_local_is_refused(a: u8, b: u8, c: u8) {
            let p = AddressPolicy::default();
            proptest::prop_assert!(p.check(IpAddr::V4(Ipv4Addr::new(127, a, b, c))).is_err());
            proptest::prop_assert!(p.check(IpAddr::V4(Ipv4Addr::new(169, 254, a, b))).is_err());
        }
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let p = AddressPolicy::default();
        assert!(p.check_url("http://127.0.0.1:9/hook").is_err());
        assert!(p.check_url("http://[::1]/hook").is_err());
        assert!(p.check_url("ftp://example.com/").is_err());
        assert!(p.check_url("not a url").is_err());
        assert!(p.check_url("https://hooks.example.com/x").is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_when_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = guarded_client(Arc::new(AddressPolicy::default()), Duration::from_secs(2), false).unwrap();
        let err = post(client.post(format!("http://localhost:{port}/"))).await.unwrap_err();
        assert!(err.contains("loopback"), "{err}");
    }
}
