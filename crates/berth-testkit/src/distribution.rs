//! [`Distribution`]: Debian's `docker-registry` (CNCF Distribution 2.8), the
//! reference registry Berth replaces, as a second registry and as an oracle.
//!
//! It cannot report a port it picked, so the harness picks a free loopback
//! port, writes a config (filesystem storage in a temp dir) and waits until
//! `GET /v2/` answers 200. Inherited `REGISTRY_*` and `AWS_*` vars are
//! cleared (Distribution reads both; its S3 client panics on `AWS_CA_BUNDLE`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::berth::{clear_registry_env, temp_dir};
use crate::process::Supervised;
use crate::{http, net, tools, Result};

/// How to start a [`Distribution`].
#[derive(Debug, Clone)]
pub struct DistributionOptions {
    /// `storage.delete.enabled`.
    pub delete_enabled: bool,
    /// How long to wait for `GET /v2/`.
    pub ready_timeout: Duration,
}

impl Default for DistributionOptions {
    fn default() -> Self {
        Self { delete_enabled: false, ready_timeout: Duration::from_secs(30) }
    }
}

/// A running `docker-registry serve`; stopped on `Drop`.
#[derive(Debug)]
pub struct Distribution {
    process: Supervised,
    addr: SocketAddr,
    dir: TempDir,
}

impl Distribution {
    /// Starts Distribution with default options.
    pub fn start() -> Result<Self> {
        Self::start_with(DistributionOptions::default())
    }

    /// Starts Distribution and waits until it answers `GET /v2/`. Retries
    /// on another port if the picked one was taken meanwhile.
    pub fn start_with(opts: DistributionOptions) -> Result<Self> {
        let bin = tools::require("docker-registry", "docker-registry")?;
        let dir = temp_dir("distribution-")?;
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let addr = net::free_loopback_addr()?;
            let config = dir.path().join("config.yml");
            std::fs::write(&config, config_yaml(addr, &dir.path().join("data"), opts.delete_enabled))
                .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
            let mut cmd = Command::new(&bin);
            cmd.arg("serve").arg(&config);
            clear_registry_env(&mut cmd);
            for (key, _) in std::env::vars_os() {
                if key.to_string_lossy().starts_with("AWS_") {
                    cmd.env_remove(key);
                }
            }
            let log = dir.path().join("registry.log");
            let mut process = Supervised::spawn("docker-registry", &mut cmd, &log, false)?;
            match wait_ready(&mut process, addr, opts.ready_timeout) {
                Ok(()) => return Ok(Self { process, addr, dir }),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The storage root.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.process.log_path()).unwrap_or_default()
    }
}

fn wait_ready(process: &mut Supervised, addr: SocketAddr, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if http::get_status(addr, "/v2/") == Some(200) {
            return Ok(());
        }
        if let Some(status) = process.exited() {
            return Err(format!("docker-registry exited ({status}) before answering\n{}", process.log_tail(30)));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "docker-registry did not answer GET /v2/ within {timeout:?}\n{}",
                process.log_tail(30)
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn config_yaml(addr: SocketAddr, root: &Path, delete_enabled: bool) -> String {
    let root = root.display();
    [
        "version: 0.1".to_owned(),
        "log:".into(),
        "  level: info".into(),
        "storage:".into(),
        "  filesystem:".into(),
        format!("    rootdirectory: {root}"),
        "  delete:".into(),
        format!("    enabled: {delete_enabled}"),
        "  maintenance:".into(),
        "    uploadpurging:".into(),
        "      enabled: false".into(),
        "http:".into(),
        format!("  addr: {addr}"),
        String::new(),
    ]
    .join("\n")
}
