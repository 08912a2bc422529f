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

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown`
/// resolves, then lets requests in flight finish for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Tls>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    // Vectored writes make hyper queue body buffers instead of copying them,
    // which the sendfile placeholders rely on.
    builder.http1().writev(true).timer(hyper_util::rt::TokioTimer::new());
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
            spawn_tls(tls.acceptor(), tcp, remote, app.clone(), builder.clone(), graceful.watcher());
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
) {
    tokio::spawn(async move {
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
