//! `berth serve`: open the stores, bind, serve until SIGTERM/SIGINT.

use anyhow::Context;
use berth_jobs::uploads::{spawn_purge, PurgePolicy};
use berth_server::App;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_DRAIN: Duration = Duration::from_secs(10);
/// Longest wait at shutdown for queued audit events to be appended.
const AUDIT_FLUSH: Duration = Duration::from_secs(5);
/// Longest wait at shutdown for queued notifications (Distribution 3's queue purge timeout).
const NOTIFICATION_FLUSH: Duration = Duration::from_secs(5);

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
        let auth = crate::auth::authenticator(&config, &stores.meta).await?;
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
        let (audit, audit_writer) = crate::audit::start(&config, &stores.meta);
        let bus = peers.as_ref().map(|(bus, _)| bus.clone());
        // Bound before the app is built: events name this node's port.
        let addr = config.http.socket_addr()?;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        let endpoints = crate::notifications::start(&config, local.port()).context("notifications.endpoints")?;
        let webhooks = crate::notifications::start_webhooks(&config, &stores.meta, local.port())
            .await
            .context("starting webhooks")?;
        let events = berth_server::events::Events::new(endpoints.clone(), webhooks.clone());
        let app = App::new(settings, stores.meta, stores.blobs, auth, bus, audit, events);
        // Read-only mode as an administrator last switched it, before serving.
        app.read_only.refresh(app.meta.as_ref()).await.context("reading the read-only switch")?;
        berth_server::read_only::spawn_poller(app.clone());
        match peers {
            Some((bus, events)) => berth_server::peers::spawn(app.clone(), bus, events),
            // `berth gc` beside this server on the same SQLite file.
            None => drop(berth_server::peers::spawn_gc_watch(app.clone())),
        }

        if let Some(schedule) = &config.berth.gc.schedule {
            crate::gc::spawn_scheduled(&config, schedule, app.clone())?;
        }

        // Pull times for retention's pull-based rules, then the projects' schedules.
        berth_server::pull_stats::spawn_flusher(app.pull_stats.clone(), app.meta.clone());
        crate::retention::spawn_scheduler(app.clone());

        let purging = &config.storage.maintenance.uploadpurging;
        if purging.enabled {
            spawn_purge(
                stores_for_gc.0.clone(),
                stores_for_gc.1.clone(),
                PurgePolicy { age: purging.age, interval: purging.interval, dry_run: purging.dryrun },
                Arc::new(berth_jobs::SystemClock),
            );
        }

        let tls = tls_options(&config.http.tls)?.map(berth_server::tls::Tls::load).transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(addr = %local, scheme, blobs = %stores.blobs_at, metadata = %stores.meta_at, "berth listening");
        if let Some(tls) = &tls {
            tls.spawn_reloader();
        }
        let debug = match config.http.debug.socket_addr()? {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} (http.debug.addr)"))?;
                let prometheus = &config.http.debug.prometheus;
                let router =
                    berth_server::debug_app(app.clone(), prometheus.enabled.then_some(prometheus.path.as_str()));
                let local = listener.local_addr()?;
                tracing::info!(addr = %local, prometheus = prometheus.enabled, "debug listener");
                // Before the ready line, so whoever waits for that one knows both.
                println!("berth debug listening on http://{local}");
                Some(tokio::spawn(berth_server::serve(
                    listener,
                    router,
                    None,
                    std::future::pending(),
                    Duration::ZERO,
                    berth_server::Limits::default(),
                )))
            }
            None => None,
        };
        // The one line on stdout: tests and scripts wait for it.
        println!("berth listening on {scheme}://{local}");
        std::io::stdout().flush()?;

        // On a signal, stop accepting and let requests in flight finish for
        // at most `http.draintimeout` (Distribution's meaning; 0 → a short
        // grace so a push in flight is not cut for nothing).
        let drain = if config.http.draintimeout.is_zero() { DEFAULT_DRAIN } else { config.http.draintimeout };
        let router = berth_server::app(app);
        let limits = crate::settings::listener_limits(&config);
        berth_server::serve(listener, router, tls, shutdown_signal(), drain, limits).await;
        if let Some(debug) = debug {
            debug.abort();
        }
        if let Some(endpoints) = endpoints {
            endpoints.shutdown(NOTIFICATION_FLUSH).await;
        }
        if let Some(webhooks) = webhooks {
            webhooks.shutdown(NOTIFICATION_FLUSH).await;
        }
        if let Some(writer) = audit_writer {
            writer.shutdown(AUDIT_FLUSH).await;
        }
        tracing::info!("stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    // Do not wait forever for blocking tasks (a client stuck mid-download).
    runtime.shutdown_timeout(Duration::from_secs(5));
    Ok(())
}

/// `http.tls` as the server takes it; `None` without a certificate (plain HTTP, as in
/// Distribution). A key or client CAs without a certificate is an error: serving plain
/// HTTP to someone who asked for mutual TLS would be silently insecure.
fn tls_options(tls: &berth_config::Tls) -> anyhow::Result<Option<berth_server::tls::TlsOptions>> {
    use berth_server::tls::{ClientAuth, MinVersion, TlsOptions};
    let Some(certificate) = tls.certificate.clone().filter(|c| !c.as_os_str().is_empty()) else {
        if tls.key.is_some() || !tls.clientcas.is_empty() {
            anyhow::bail!("http.tls.certificate: required when http.tls.key or http.tls.clientcas is set");
        }
        return Ok(None);
    };
    let key = tls.key.clone().filter(|k| !k.as_os_str().is_empty());
    let key = key.context("http.tls.key: required with http.tls.certificate")?;
    let client_auth = match tls.clientauth {
        berth_config::ClientAuth::RequestClientCert => ClientAuth::Request,
        berth_config::ClientAuth::RequireAnyClientCert => ClientAuth::RequireAny,
        berth_config::ClientAuth::VerifyClientCertIfGiven => ClientAuth::VerifyIfGiven,
        berth_config::ClientAuth::RequireAndVerifyClientCert => ClientAuth::RequireAndVerify,
    };
    let min_version = match tls.minimumtls {
        berth_config::MinimumTls::Tls12 => MinVersion::Tls12,
        berth_config::MinimumTls::Tls13 => MinVersion::Tls13,
    };
    Ok(Some(TlsOptions {
        certificate,
        key,
        client_cas: tls.clientcas.clone(),
        client_auth,
        min_version,
        cipher_suites: tls.ciphersuites.clone(),
    }))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
