//! The S3 client's HTTP stack: reqwest (hyper + rustls) behind the SDK's
//! `HttpConnector` seam, instead of the SDK's own client, because the
//! SDK's client can neither skip certificate verification (`skipverify`)
//! nor take extra roots without also compiling aws-lc. Trust: the system's
//! roots, plus the PEM bundle named by `AWS_CA_BUNDLE` when it is set and
//! readable (a broken bundle is logged and ignored, never fatal: this
//! machine sets the variable for every process, and some S3 clients refuse
//! to start with it). Redirects are never followed (S3 does not send them
//! to signed requests; following one would re-send a signed body).

use super::S3Config;
use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::body::SdkBody;
use std::time::Duration;

/// Connection establishment, TLS included.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while a response is being read (reset by every frame,
/// and only counting while the body is polled: a slow client pulling
/// through us is backpressure, not a timeout).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
struct ReqwestConnector {
    client: reqwest::Client,
}

/// Builds the HTTP client the SDK will use for every request.
pub(super) fn client(cfg: &S3Config) -> Result<SharedHttpClient, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60))
        .tcp_nodelay(true);
    if cfg.skipverify {
        tracing::warn!("s3: skipverify is set: TLS certificates of the S3 endpoint are not verified");
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some(path) = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty()) {
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string()))
        {
            Ok(certs) => {
                for cert in certs {
                    builder = builder.add_root_certificate(cert);
                }
            }
            Err(e) => tracing::warn!(path = %path.to_string_lossy(), error = %e, "s3: ignoring unusable AWS_CA_BUNDLE"),
        }
    }
    let connector = ReqwestConnector { client: builder.build().map_err(|e| format!("s3: building HTTP client: {e}"))? };
    Ok(http_client_fn(move |_: &HttpConnectorSettings, _: &RuntimeComponents| {
        SharedHttpConnector::new(connector.clone())
    }))
}

/// Retry classification happens in the SDK from the error kind: connect
/// failures and broken connections are I/O (retried), timeouts likewise.
fn classify(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        HttpConnectorFuture::new(async move {
            let request = request.try_into_http1x().map_err(|e| ConnectorError::user(e.into()))?;
            let (parts, body) = request.into_parts();
            let url = reqwest::Url::parse(&parts.uri.to_string()).map_err(|e| ConnectorError::user(e.into()))?;
            let mut req = reqwest::Request::new(parts.method, url);
            *req.headers_mut() = parts.headers;
            *req.body_mut() = Some(reqwest::Body::wrap(body));
            let resp = client.execute(req).await.map_err(classify)?;
            let resp: http::Response<reqwest::Body> = resp.into();
            let (parts, body) = resp.into_parts();
            Response::try_from(http::Response::from_parts(parts, SdkBody::from_body_1_x(body)))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}
