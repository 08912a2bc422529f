//! The access log (`log.accesslog`, on by default as in Distribution): one
//! line per request with its id, method, URI, status, duration and client, logged
//! under the target `berth::access` so operators can route or filter it.

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use std::net::SocketAddr;
use std::time::Instant;

pub struct AccessEntry {
    method: http::Method,
    uri: http::Uri,
    remote: Option<SocketAddr>,
    user_agent: Option<http::HeaderValue>,
    start: Instant,
}

impl AccessEntry {
    pub fn begin(req: &Request) -> Self {
        AccessEntry {
            method: req.method().clone(),
            uri: req.uri().clone(),
            remote: req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
            user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
            start: Instant::now(),
        }
    }

    pub fn finish(self, resp: &Response, id: &http::HeaderValue) {
        // Streamed bodies announce their length in a header; buffered ones in the size hint.
        let bytes = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .or_else(|| http_body::Body::size_hint(resp.body()).exact());
        tracing::info!(
            target: "berth::access",
            request_id = id.to_str().unwrap_or(""),
            method = %self.method,
            uri = %self.uri,
            status = resp.status().as_u16(),
            bytes = bytes.unwrap_or(0),
            duration_ms = self.start.elapsed().as_secs_f64() * 1000.0,
            remote = %self.remote.map(|r| r.to_string()).unwrap_or_default(),
            user_agent = self.user_agent.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
            "request"
        );
    }
}
