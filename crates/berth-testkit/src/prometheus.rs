//! [`Prometheus`]: Debian's `prometheus` server scraping targets on
//! loopback every second, so tests can evaluate real dashboard queries and
//! alert expressions against real scrapes through its HTTP API.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::berth::temp_dir;
use crate::process::Supervised;
use crate::{net, tools, Result};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Prometheus with its own TSDB in a temp dir; stopped on `Drop`.
#[derive(Debug)]
pub struct Prometheus {
    // Field order matters: the process stops before its dir is removed.
    process: Supervised,
    url: String,
    http: reqwest::blocking::Client,
    dir: TempDir,
}

impl Prometheus {
    /// Starts `prometheus` with `scrape_configs` (YAML list items, indented
    /// by two spaces) under a 1 s scrape interval, and waits for `/-/ready`.
    /// Retries on another port if the picked one was taken meanwhile.
    pub fn start(scrape_configs: &str) -> Result<Self> {
        let bin = tools::require("prometheus", "prometheus")?;
        let dir = temp_dir("prometheus-")?;
        let config = dir.path().join("prometheus.yml");
        let yaml =
            format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{scrape_configs}");
        std::fs::write(&config, yaml).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let http =
            reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
        let mut last_error = String::new();
        for attempt in 0..3 {
            let addr = net::free_loopback_addr()?;
            let mut cmd = Command::new(&bin);
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join(format!("data-{attempt}")).display()))
                .arg(format!("--web.listen-address={addr}"))
                .current_dir(dir.path());
            let log = dir.path().join(format!("prometheus-{attempt}.log"));
            let mut process = Supervised::spawn("prometheus", &mut cmd, &log, false)?;
            let url = format!("http://{addr}");
            match wait_ready(&mut process, &http, &url) {
                Ok(()) => return Ok(Self { process, url, http, dir }),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The body of `GET {url}{path}` with `query` parameters, whatever the status
    /// (the API answers errors as JSON too).
    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<String> {
        let resp = self.http.get(format!("{}{path}", self.url)).query(query).send().map_err(|e| e.to_string())?;
        resp.text().map_err(|e| e.to_string())
    }

    /// The directory holding the configuration, the TSDB and the logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the server log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }
}

fn wait_ready(process: &mut Supervised, http: &reqwest::blocking::Client, url: &str) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = process.exited() {
            return Err(format!("prometheus exited with {status} before it was ready\n{}", process.log_tail(20)));
        }
        if http.get(format!("{url}/-/ready")).send().is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(100));
    }
    Err(format!("prometheus not ready at {url} after {READY_TIMEOUT:?}\n{}", process.log_tail(20)))
}
