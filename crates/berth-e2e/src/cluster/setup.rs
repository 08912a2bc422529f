//! Starting the cluster: Garage and PostgreSQL, then the three nodes, each
//! started on a thread kept alive as long as it runs.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;

use berth_testkit::{BerthOptions, BerthServer, Garage, Postgres};

use super::{Timings, CHUNK_SIZE, DATABASE, NAMES, ROOT_DIRECTORY};
use crate::Result;

/// Keeps alive the thread that started some child processes: the testkit
/// sets `PR_SET_PDEATHSIG`, which fires when the *thread* that spawned a
/// child exits, so a server started on a short-lived thread would be killed
/// at once. Dropping this lets the thread end (after the servers stopped).
#[derive(Debug)]
pub struct KeepAlive {
    _stop: mpsc::Sender<()>,
}

/// Runs `start` on a new thread that stays alive until the returned
/// [`KeepAlive`] is dropped; `recv()` on the receiver gives its result
/// (an error if it panicked).
pub fn start_on_own_thread<T: Send + 'static>(
    start: impl FnOnce() -> T + Send + 'static,
) -> (mpsc::Receiver<T>, KeepAlive) {
    let (result_tx, result_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let _ = result_tx.send(start());
        // Returns when the KeepAlive is dropped.
        let _ = stop_rx.recv();
    });
    (result_rx, KeepAlive { _stop: stop_tx })
}

/// Waits for the result of [`start_on_own_thread`].
pub fn started<T>(rx: mpsc::Receiver<Result<T>>, what: &str) -> Result<T> {
    rx.recv().map_err(|_| format!("starting {what} panicked"))?.map_err(|e| format!("{what}: {e}"))
}

/// Garage, PostgreSQL and three Berth nodes. Field order is drop order:
/// the nodes stop before the servers they use, the starting threads last.
#[derive(Debug)]
pub struct Cluster {
    /// A, B, C.
    pub nodes: Vec<BerthServer>,
    pub garage: Garage,
    pub postgres: Postgres,
    _threads: Vec<KeepAlive>,
}

/// The `config.yml` nodes A and C share: S3 blobs, PostgreSQL metadata,
/// deletes on, redirects to presigned URLs on (Distribution's default).
/// `http.addr` is overridden by the harness (`REGISTRY_HTTP_ADDR`).
pub fn config_yml(garage: &Garage, database_url: &str) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: info\n\
         http:\n  addr: :5000\n\
         storage:\n\
         \x20 s3:\n\
         \x20   accesskey: {ak}\n\
         \x20   secretkey: {sk}\n\
         \x20   region: {region}\n\
         \x20   regionendpoint: {endpoint}\n\
         \x20   bucket: {bucket}\n\
         \x20   rootdirectory: {ROOT_DIRECTORY}\n\
         \x20   forcepathstyle: true\n\
         \x20   secure: false\n\
         \x20   chunksize: {CHUNK_SIZE}\n\
         \x20 delete:\n    enabled: true\n\
         \x20 redirect:\n    disable: false\n\
         berth:\n  database:\n    url: {database_url}\n",
        ak = garage.access_key(),
        sk = garage.secret_key(),
        region = garage.region(),
        endpoint = garage.endpoint(),
        bucket = garage.bucket(),
    )
}

impl Cluster {
    /// Starts Garage and PostgreSQL side by side, then the three nodes side
    /// by side (so their migrations race, as they would in a rollout).
    pub fn start(timings: &mut Timings) -> Result<Self> {
        let mut threads = Vec::new();
        let (garage, postgres) = timings.measure("start Garage and PostgreSQL (in parallel)", || {
            let (garage, keep) = start_on_own_thread(Garage::start);
            threads.push(keep);
            let postgres = Postgres::start();
            Ok((started(garage, "Garage")?, postgres?))
        })?;
        let url = postgres.url(DATABASE);
        let config = garage.dir().join("berth-config.yml");
        std::fs::write(&config, config_yml(&garage, &url)).map_err(|e| format!("{}: {e}", config.display()))?;
        let from_file = BerthOptions::default().config_file(&config).filesystem_root(false).delete_enabled(true);
        // Node B: configured by variables only, with redirects off.
        let from_env = BerthOptions::default()
            .s3_storage(&garage, ROOT_DIRECTORY)
            .delete_enabled(true)
            .env("REGISTRY_STORAGE_S3_CHUNKSIZE", CHUNK_SIZE.to_string())
            .env("REGISTRY_BERTH_DATABASE_URL", &url);
        let nodes = timings.measure("start nodes A, B, C (in parallel)", || {
            let pending: Vec<_> = [from_file.clone(), from_env, from_file]
                .into_iter()
                .map(|opts| start_on_own_thread(move || BerthServer::start(opts)))
                .collect();
            // Every result first, so that on an error the nodes that did
            // start are dropped (stopped, dirs removed) before we return.
            let results: Vec<_> = NAMES
                .iter()
                .zip(pending)
                .map(|(name, (rx, keep))| {
                    threads.push(keep);
                    started(rx, &format!("node {name}"))
                })
                .collect();
            let nodes = results.into_iter().collect::<Result<Vec<_>>>()?;
            Ok(nodes)
        })?;
        Ok(Self { nodes, garage, postgres, _threads: threads })
    }

    /// Current address of node `i` (A changes port when restarted).
    pub fn addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr()
    }

    /// The tail of every node's log, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        NAMES
            .iter()
            .zip(&self.nodes)
            .map(|(n, s)| format!("--- node {n} ({}) log (tail) ---\n{}", s.addr(), crate::tail(&s.log(), lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
