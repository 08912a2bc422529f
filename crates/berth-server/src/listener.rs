//! The accept loop: HTTP/1.1 and HTTP/2 (h2c) on one port, each connection
//! wrapped for `sendfile` (see `sendfile.rs`), graceful shutdown with a
//! bounded drain. Replaces `axum::serve`, which cannot do the wrapping.
//!
//! With TLS (`tls.rs`) the handshake runs in the connection's own task, bounded
//! by [`HANDSHAKE_TIMEOUT`], so a slow or silent client never holds up
//! `accept`; ALPN picks h2 or http/1.1. `sendfile` cannot write through TLS, so
//! those connections get no `SendfileSlot` and blobs are streamed instead.

use crate::sendfile::{SendfileSlot, SendfileStream};
use crate::tls::Tls;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// hyper's smallest HTTP/1 read buffer.
const MIN_HEADER_BYTES: usize = 8192;

/// What one listener lets clients hold (`berth.limits`; zero is no limit).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// Request head (HTTP/1) or header list (HTTP/2); larger gets 431.
    pub max_header_bytes: usize,
    /// Time to send a request's headers on HTTP/1.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: 10_000, max_header_bytes: 64 << 10, header_timeout: Duration::from_secs(60) }
    }
}

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown`
/// resolves, then lets requests in flight finish for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
    limits: Limits,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    // Vectored writes make hyper queue body buffers instead of copying them,
    // which the sendfile placeholders rely on.
    let mut http1 = builder.http1();
    http1.writev(true).timer(hyper_util::rt::TokioTimer::new());
    if limits.max_header_bytes > 0 {
        http1.max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
        builder.http2().max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    }
    if !limits.header_timeout.is_zero() {
        builder.http1().header_read_timeout(limits.header_timeout);
    }
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    // At the limit, stop accepting: new connections wait in the backlog.
    let slots = (limits.max_connections > 0).then(|| Arc::new(tokio::sync::Semaphore::new(limits.max_connections)));
    tokio::pin!(shutdown);
    loop {
        let permit = match &slots {
            Some(s) => tokio::select! {
                p = s.clone().acquire_owned() => p.ok(),
                () = &mut shutdown => break,
            },
            None => None,
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Headers and a small body go out as separate writes: without
        // TCP_NODELAY the body can wait ~40 ms for the client's delayed ACK.
        let _ = tcp.set_nodelay(true);
        if let Some(tls) = &tls {
            spawn_tls(tls.acceptor(), tcp, remote, app.clone(), builder.clone(), graceful.watcher(), permit);
            continue;
        }
        let slot = Arc::new(SendfileSlot::default());
        let io = TokioIo::new(SendfileStream::new(tcp, slot.clone()));
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(slot.clone());
            req.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = graceful.watch(builder.serve_connection(io, service).into_owned());
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, remote = %remote, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown()).await.is_err() {
        tracing::warn!("drain timeout reached; closing remaining connections");
    }
}

/// One HTTPS connection: handshake (bounded), then HTTP/1.1 or h2 as ALPN chose.
fn spawn_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    app: Router,
    builder: Arc<Builder<TokioExecutor>>,
    watcher: Watcher,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    tokio::spawn(async move {
        let _permit = permit;
        let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::info!(error = %e, remote = %remote, "tls handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(remote = %remote, timeout = ?HANDSHAKE_TIMEOUT, "tls handshake timed out");
                return;
            }
        };
        let service = hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        if let Err(e) = watcher.watch(conn).await {
            tracing::debug!(error = %e, remote = %remote, "connection ended with an error");
        }
    });
}
