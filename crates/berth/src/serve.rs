//! `berth serve`: open the stores, bind, serve until SIGTERM/SIGINT.

use anyhow::Context;
use berth_jobs::uploads::{spawn_purge, PurgePolicy};
use berth_server::{App, Authenticator};
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
        let stores = crate::stores::open(&config).await?;
        let settings = crate::settings::server_settings(&config)?;
        let auth = match &config.auth.htpasswd {
            None => Authenticator::Anonymous,
            Some(h) => Authenticator::Htpasswd(berth_auth::Htpasswd::open(&h.path, &h.realm).context("auth.htpasswd")?),
        };
        let stores_for_gc = (stores.meta.clone(), stores.blobs.clone());
        // Several nodes sharing PostgreSQL keep their caches true through
        // acknowledged invalidations (berth_meta::postgres::invalidation).
        let peers = match &config.berth.database.url {
            Some(url) => Some(
                berth_meta::postgres::InvalidationBus::start(&berth_meta::postgres::PostgresOptions::new(url.expose()))
                    .await
                    .context("berth.database.url: cache invalidation")?,
            ),
            None => None,
        };
        let app = App::new(settings, stores.meta, stores.blobs, auth, peers.as_ref().map(|(bus, _)| bus.clone()));
        if let Some((bus, events)) = peers {
            berth_server::peers::spawn(app.clone(), bus, events);
        }

        if let Some(schedule) = &config.berth.gc.schedule {
            crate::gc::spawn_scheduled(&config, schedule, stores_for_gc.0.clone(), stores_for_gc.1.clone())?;
        }

        let purging = &config.storage.maintenance.uploadpurging;
        if purging.enabled {
            spawn_purge(
                stores_for_gc.0.clone(),
                stores_for_gc.1.clone(),
                PurgePolicy { age: purging.age, interval: purging.interval, dry_run: purging.dryrun },
                Arc::new(berth_jobs::SystemClock),
            );
        }

        let addr = config.http.socket_addr()?;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, blobs = %stores.blobs_at, metadata = %stores.meta_at, "berth listening");
        // The one line on stdout: tests and scripts wait for it.
        println!("berth listening on http://{local}");
        std::io::stdout().flush()?;

        // On a signal, stop accepting and let requests in flight finish for
        // at most `http.draintimeout` (Distribution's meaning; 0 → a short
        // grace so a push in flight is not cut for nothing).
        let drain = if config.http.draintimeout.is_zero() { DEFAULT_DRAIN } else { config.http.draintimeout };
        let router = berth_server::app(app);
        berth_server::serve(listener, router, shutdown_signal(), drain).await;
        tracing::info!("stopped");
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
