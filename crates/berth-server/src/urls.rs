//! `Location` URLs. Relative by default; absolute when `http.host` is set or
//! a reverse proxy says where the client came from (`X-Forwarded-Proto`,
//! `X-Forwarded-Host`), so that clients behind nginx follow the right URL.

use crate::settings::Settings;
use http::HeaderMap;

pub fn location(settings: &Settings, headers: &HeaderMap, path: &str) -> String {
    let prefixed;
    let path = if settings.prefix.is_empty() {
        path
    } else {
        prefixed = format!("{}{path}", settings.prefix);
        &prefixed
    };
    if settings.relative_urls {
        return path.to_owned();
    }
    if let Some(host) = &settings.host {
        return format!("{}{}", host.trim_end_matches('/'), path);
    }
    let header = |name: &str| first_value(headers, name);
    let proto = header("x-forwarded-proto");
    let host = header("x-forwarded-host");
    if proto.is_none() && host.is_none() {
        return path.to_owned();
    }
    match host.or_else(|| header("host")) {
        Some(host) => format!("{}://{}{}", proto.unwrap_or("http"), host, path),
        None => path.to_owned(),
    }
}

/// The first value of a header a chain of proxies appends to (the first
/// entry is the client's view), if not empty.
pub fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn relative_without_proxy_or_host() {
        let s = Settings::default();
        assert_eq!(location(&s, &headers(&[("host", "r:5000")]), "/v2/a"), "/v2/a");
    }

    #[test]
    fn configured_host_wins() {
        let s = Settings { host: Some("https://reg.example.com/".into()), ..Settings::default() };
        assert_eq!(location(&s, &headers(&[]), "/v2/a"), "https://reg.example.com/v2/a");
    }

    #[test]
    fn prefix_is_kept() {
        let s = Settings { prefix: "/registry".into(), ..Settings::default() };
        assert_eq!(location(&s, &headers(&[]), "/v2/a"), "/registry/v2/a");
    }

    #[test]
    fn forwarded_headers_from_a_proxy() {
        let s = Settings::default();
        let h = headers(&[
            ("host", "backend:5000"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "reg.example.com, inner"),
        ]);
        assert_eq!(location(&s, &h, "/v2/a"), "https://reg.example.com/v2/a");
        let h = headers(&[("host", "reg.example.com"), ("x-forwarded-proto", "https")]);
        assert_eq!(location(&s, &h, "/v2/a"), "https://reg.example.com/v2/a");
        let s = Settings { relative_urls: true, ..Settings::default() };
        assert_eq!(location(&s, &h, "/v2/a"), "/v2/a");
    }
}
