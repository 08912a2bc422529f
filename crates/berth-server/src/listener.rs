//! The accept loop: HTTP/1.1 and HTTP/2 (h2c) on one port, each connection
//! wrapped for `sendfile` (see `sendfile.rs`), graceful shutdown with a
//! bounded drain. Replaces `axum::serve`, which cannot do the wrapping.

use crate::sendfile::{SendfileSlot, SendfileStream};
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests
/// in flight finish for at most `drain`.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>, drain: Duration) {
    let mut builder = Builder::new(TokioExecutor::new());
    // Vectored writes make hyper queue body buffers instead of copying them,
    // which the sendfile placeholders rely on.
    builder.http1().writev(true).timer(hyper_util::rt::TokioTimer::new());
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
