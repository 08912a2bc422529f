//! The load generator's HTTP/1.1 client: one keep-alive connection per
//! worker ([`Conn`]), like zb's one resty client per worker. Built on
//! hyper's connection-level client, so nothing pools, retries or parses
//! behind our back and the client's cost per request stays small.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

/// Bounds any single request; a stuck server fails the run instead of hanging it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A response whose body was read to the end.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Fails with the status and body unless the status is `want`.
    pub fn expect(self, want: u16, what: &str) -> Result<Self> {
        if self.status.as_u16() != want {
            bail!("{what}: expected {want}, got {}: {}", self.status, String::from_utf8_lossy(&self.body));
        }
        Ok(self)
    }
}

/// A response body that was only counted (and optionally hashed), never kept.
pub struct Sunk {
    pub status: StatusCode,
    pub bytes: u64,
    /// `sha256:<hex>` when hashing was asked for.
    pub digest: Option<String>,
}

/// One keep-alive HTTP/1.1 connection to one server; reconnects when the
/// server closed it between requests.
pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    /// `Authorization` sent with every request (`--auth`).
    auth: Option<HeaderValue>,
    tx: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        let host = HeaderValue::from_str(&addr.to_string()).expect("socket address is a valid header");
        Self { addr, host, auth: None, tx: None }
    }

    /// Sends `authorization` (e.g. `Bearer …`) with every request.
    pub fn with_auth(mut self, authorization: Option<&str>) -> Self {
        self.auth = authorization.and_then(|a| HeaderValue::from_str(a).ok());
        self
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        let alive = match self.tx.as_mut() {
            Some(tx) => tx.ready().await.is_ok(),
            None => false,
        };
        if !alive {
            let stream = TcpStream::connect(self.addr).await.with_context(|| format!("connect {}", self.addr))?;
            stream.set_nodelay(true)?;
            let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.tx = Some(tx);
        }
        Ok(self.tx.as_mut().expect("just set"))
    }

    fn build(
        &self,
        method: &Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<Request<Full<Bytes>>> {
        let mut req = Request::builder().method(method.clone()).uri(path).header(http::header::HOST, self.host.clone());
        if let Some(auth) = &self.auth {
            req = req.header(http::header::AUTHORIZATION, auth.clone());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if !body.is_empty() || matches!(*method, Method::PUT | Method::POST | Method::PATCH) {
            req = req.header(http::header::CONTENT_LENGTH, body.len());
        }
        Ok(req.body(Full::new(body.clone()))?)
    }

    /// Sends a request (retrying once on a fresh connection if the old one
    /// was closed under us) and returns the response head.
    async fn send(
        &mut self,
        method: &Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &Bytes,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        for attempt in 0..2 {
            let req = self.build(method, path, headers, body)?;
            let tx = self.sender().await?;
            match tx.send_request(req).await {
                Ok(resp) => return Ok(resp),
                Err(e) if attempt == 0 && (e.is_closed() || e.is_canceled() || e.is_incomplete_message()) => {
                    self.tx = None;
                }
                Err(e) => return Err(anyhow!(e).context(format!("{method} {path}"))),
            }
        }
        unreachable!("the second attempt returns")
    }

    /// A request whose response body is read into memory.
    pub async fn request(&mut self, method: Method, path: &str, headers: &[(&str, &str)], body: Bytes) -> Result<Resp> {
        let fut = async {
            let resp = self.send(&method, path, headers, &body).await?;
            let (parts, incoming) = resp.into_parts();
            let body = incoming.collect().await.with_context(|| format!("{method} {path}: body"))?.to_bytes();
            Ok(Resp { status: parts.status, headers: parts.headers, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut).await.map_err(|_| anyhow!("{method} {path}: timed out"))?
    }

    /// A GET whose body is counted, and hashed if `hash`, but not kept.
    pub async fn get_sink(&mut self, path: &str, hash: bool) -> Result<Sunk> {
        let fut = async {
            let resp = self.send(&Method::GET, path, &[], &Bytes::new()).await?;
            let status = resp.status();
            let mut body = resp.into_body();
            let mut hasher = hash.then(Sha256::new);
            let mut bytes = 0u64;
            while let Some(frame) = body.frame().await {
                let frame = frame.with_context(|| format!("GET {path}: body"))?;
                if let Some(data) = frame.data_ref() {
                    bytes += data.len() as u64;
                    if let Some(h) = hasher.as_mut() {
                        h.update(data);
                    }
                }
            }
            let digest = hasher.map(|h| format!("sha256:{}", hex::encode(h.finalize())));
            Ok(Sunk { status, bytes, digest })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut).await.map_err(|_| anyhow!("GET {path}: timed out"))?
    }
}

/// The path and query of a `Location` header (Distribution sends absolute URLs, Berth relative ones).
pub fn location_path(location: &str) -> String {
    match location.find("://") {
        Some(i) => {
            let rest = &location[i + 3..];
            rest.find('/').map(|j| rest[j..].to_owned()).unwrap_or_else(|| "/".into())
        }
        None => location.to_owned(),
    }
}

/// `path` with `key=value` appended to its query.
pub fn with_query(path: &str, key: &str, value: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{key}={value}")
}

/// The `rel="next"` target of a `Link` header, if any.
pub fn next_link(resp: &Resp) -> Option<String> {
    let link = resp.header("link")?;
    let start = link.find('<')? + 1;
    let end = link[start..].find('>')? + start;
    link[end..].contains("rel=\"next\"").then(|| location_path(&link[start..end]))
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}
