//! `berth serve`: open the stores, bind, serve until SIGTERM/SIGINT.

use anyhow::Context;
use berth_blob::FsBlobStore;
use berth_meta::sqlite::SqliteStore;
use berth_server::purge::{self, PurgePolicy};
use berth_server::{App, Authenticator};
use std::future::IntoFuture;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

pub fn run(loaded: berth_config::Loaded) -> anyhow::Result<()> {
    let config = loaded.config;
    crate::logging::init(&config.log);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let root = &config.storage.filesystem.rootdirectory;
        let blobs = FsBlobStore::open(root).with_context(|| format!("opening blob storage at {}", root.display()))?;
        let db = config.database_path();
        let meta = SqliteStore::open(&db).with_context(|| format!("opening metadata database {}", db.display()))?;
        let settings = crate::settings::server_settings(&config)?;
        let auth = match &config.auth.htpasswd {
            None => Authenticator::Anonymous,
            Some(h) => Authenticator::Htpasswd(berth_auth::Htpasswd::open(&h.path, &h.realm).context("auth.htpasswd")?),
        };
        let app = App::new(settings, Arc::new(meta), Arc::new(blobs), auth);

        let purging = &config.storage.maintenance.uploadpurging;
        if purging.enabled {
            purge::spawn(
                app.clone(),
                PurgePolicy { age: purging.age, interval: purging.interval, dry_run: purging.dryrun },
            );
        }

        let addr = config.http.socket_addr()?;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        // Headers and a small body go out as separate writes: without
        // TCP_NODELAY the body can wait ~40 ms for the client's delayed ACK.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let local = axum::serve::Listener::local_addr(&listener)?;
        tracing::info!(addr = %local, root = %root.display(), database = %db.display(), "berth listening");
        // The one line on stdout: tests and scripts wait for it.
        println!("berth listening on http://{local}");
        std::io::stdout().flush()?;

        // On a signal, stop accepting and let requests in flight finish for
        // at most `http.draintimeout` (Distribution's meaning; 0 → a short
        // grace so a push in flight is not cut for nothing).
        let drain = if config.http.draintimeout.is_zero() { DEFAULT_DRAIN } else { config.http.draintimeout };
        let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
        let router = berth_server::app(app);
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(listener, service).with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!(drain_secs = drain.as_secs_f64(), "shutting down");
            let _ = signalled_tx.send(());
        });
        tokio::select! {
            result = server.into_future() => result.context("serving")?,
            _ = async { let _ = signalled_rx.await; tokio::time::sleep(drain).await } => {
                tracing::warn!("drain timeout reached; closing remaining connections");
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    // Do not wait forever for blocking tasks (a client stuck mid-download).
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
