//! [`BerthServer`]: the real `berth serve` binary on 127.0.0.1, port 0, a
//! fresh data dir, configured by Distribution-style `REGISTRY_*` env vars.
//!
//! Readiness contract of the binary: exactly one stdout line
//! `berth listening on http://127.0.0.1:PORT` (`https://` with `http.tls`); logs go to stderr (kept in
//! a log file, see [`BerthServer::log`]); SIGTERM shuts it down gracefully.
//!
//! Which binary runs, first match wins (see [`locate_berth_binary`]):
//! 1. [`BerthOptions::bin`] (berth's own tests: `env!("CARGO_BIN_EXE_berth")`);
//! 2. runtime env `NEXTEST_BIN_EXE_berth` / `CARGO_BIN_EXE_berth`, then
//!    `BERTH_BIN` (`scripts/test` builds the workspace's binaries and sets it);
//! 3. `berth` next to the running test executable's `deps/` dir, i.e. the
//!    same target dir and profile the test was built in;
//! 4. `$CARGO_TARGET_DIR/debug/berth`.
//!
//! Cargo builds a package's binaries only for that package's own tests, so
//! outside `scripts/test` run `cargo build -p berth` first or 3./4. may find
//! a stale binary. A path asked for (1., 2.) that does not exist is an error.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::Supervised;
use crate::Result;

/// Prefix of berth's ready line on stdout (then `http://ADDR` or `https://ADDR`).
pub const READY_PREFIX: &str = "berth listening on ";
/// Prefix of the line berth prints before the ready line when `http.debug.addr` is set.
pub const DEBUG_PREFIX: &str = "berth debug listening on http://";

/// How to start a [`BerthServer`]. Builder style; `Default` is a plain
/// filesystem registry with deletes disabled (registry:2's default).
#[derive(Debug, Clone)]
pub struct BerthOptions {
    /// Explicit binary path (else see [`locate_berth_binary`]).
    pub bin: Option<PathBuf>,
    /// Config file passed as `berth serve CONFIG`.
    pub config_file: Option<PathBuf>,
    /// Extra env vars, applied after the harness's own (so they win).
    pub env: Vec<(String, String)>,
    /// `REGISTRY_STORAGE_DELETE_ENABLED`.
    pub delete_enabled: bool,
    /// Set `REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY` to the fresh data
    /// dir (default). Off for a server whose storage driver comes from the
    /// config file or `env` (`storage.s3`): Berth accepts exactly one driver.
    pub filesystem_root: bool,
    /// How long to wait for the ready line.
    pub ready_timeout: Duration,
    /// `REGISTRY_HTTP_ADDR`; default `127.0.0.1:0`.
    pub listen: String,
    /// A program and arguments to run berth under, e.g. `ip netns exec NS`.
    pub command_prefix: Vec<String>,
}

impl Default for BerthOptions {
    fn default() -> Self {
        Self {
            bin: None,
            config_file: None,
            env: Vec::new(),
            delete_enabled: false,
            filesystem_root: true,
            ready_timeout: Duration::from_secs(30),
            listen: "127.0.0.1:0".into(),
            command_prefix: Vec::new(),
        }
    }
}

impl BerthOptions {
    /// Use this binary.
    pub fn bin(mut self, path: impl Into<PathBuf>) -> Self {
        self.bin = Some(path.into());
        self
    }
    /// Pass `path` as the config file argument.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }
    /// Set an env var for the server.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    /// Enable or disable deletes.
    pub fn delete_enabled(mut self, on: bool) -> Self {
        self.delete_enabled = on;
        self
    }
    /// Whether to point `storage.filesystem` at the data dir; off when the
    /// config names another driver.
    pub fn filesystem_root(mut self, on: bool) -> Self {
        self.filesystem_root = on;
        self
    }

    /// Serve HTTPS with this certificate chain and key (`http.tls.certificate`, `.key`).
    pub fn tls(self, certificate: &Path, key: &Path) -> Self {
        self.env("REGISTRY_HTTP_TLS_CERTIFICATE", certificate.to_string_lossy())
            .env("REGISTRY_HTTP_TLS_KEY", key.to_string_lossy())
    }
    /// Require client certificates signed by one of these CAs (`http.tls.clientcas`).
    pub fn client_cas(self, cas: &[&Path]) -> Self {
        let list: Vec<String> = cas.iter().map(|p| format!("{:?}", p.to_string_lossy())).collect();
        self.env("REGISTRY_HTTP_TLS_CLIENTCAS", format!("[{}]", list.join(", ")))
    }
    /// Listen on `addr` (`REGISTRY_HTTP_ADDR`) instead of `127.0.0.1:0`.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }
    /// Run inside `ns`, listening on its address (port 0).
    pub fn in_netns(mut self, ns: &crate::netns::NetNs) -> Self {
        self.command_prefix = ns.command_prefix();
        self.listen(format!("{}:0", ns.ns_ip()))
    }

    /// Blobs in `garage`'s bucket under `root` (path-style, plain HTTP),
    /// read through the node (no redirects to presigned URLs).
    pub fn s3_storage(self, garage: &crate::Garage, root: &str) -> Self {
        self.filesystem_root(false)
            .env("REGISTRY_STORAGE", "s3")
            .env("REGISTRY_STORAGE_S3_ACCESSKEY", garage.access_key())
            .env("REGISTRY_STORAGE_S3_SECRETKEY", garage.secret_key())
            .env("REGISTRY_STORAGE_S3_REGION", garage.region())
            .env("REGISTRY_STORAGE_S3_REGIONENDPOINT", garage.endpoint())
            .env("REGISTRY_STORAGE_S3_BUCKET", garage.bucket())
            .env("REGISTRY_STORAGE_S3_ROOTDIRECTORY", root)
            .env("REGISTRY_STORAGE_S3_FORCEPATHSTYLE", "true")
            .env("REGISTRY_STORAGE_S3_SECURE", "false")
            .env("REGISTRY_STORAGE_REDIRECT_DISABLE", "true")
    }
}

/// A running `berth serve`; stopped (SIGTERM, then SIGKILL) on `Drop`.
#[derive(Debug)]
pub struct BerthServer {
    opts: BerthOptions,
    bin: PathBuf,
    // Field order matters: the process stops before its dirs are removed.
    process: Supervised,
    addr: SocketAddr,
    debug_addr: Option<SocketAddr>,
    https: bool,
    data: TempDir,
    scratch: TempDir,
}

impl BerthServer {
    /// Starts berth with a fresh data dir and waits for its ready line.
    pub fn start(opts: BerthOptions) -> Result<Self> {
        let bin = locate_berth_binary(opts.bin.as_deref())?;
        let data = temp_dir("berth-data-")?;
        let scratch = temp_dir("berth-run-")?;
        let (process, addr, debug_addr, https) = spawn(&bin, &opts, data.path(), &scratch.path().join("berth.log"))?;
        Ok(Self { opts, bin, process, addr, debug_addr, https, data, scratch })
    }

    /// `127.0.0.1:PORT`, as docker and skopeo want it.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The debug listener's address (`http.debug.addr`), when berth has one.
    pub fn debug_addr(&self) -> Option<SocketAddr> {
        self.debug_addr
    }

    /// `http://127.0.0.1:PORT`, or `https://…` when berth serves TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    /// The storage root (`REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY`).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The binary that runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Path of the server's log (its stderr), kept across restarts.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// Everything the server logged so far, across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// SIGKILL the server (a crash); [`restart`](Self::restart) brings it back.
    pub fn kill9(&mut self) {
        self.process.kill9();
    }

    /// Graceful stop: SIGTERM and wait; an error if it had to be killed or
    /// exited non-zero.
    pub fn stop(&mut self) -> Result<()> {
        let status = self.process.terminate(crate::process::STOP_GRACE)?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("berth exited with {status} on SIGTERM\n{}", self.process.log_tail(30))),
        }
    }

    /// Stops the server if it runs (SIGTERM) and starts it again on the same
    /// data dir with the same options; the port may change.
    pub fn restart(&mut self) -> Result<()> {
        // A failed graceful stop is the caller's business: they can call
        // `stop()` first to assert on it. Here we only need it gone.
        let _ = self.process.terminate(crate::process::STOP_GRACE);
        let log = self.process.log_path().to_owned();
        let (process, addr, debug_addr, https) = spawn(&self.bin, &self.opts, self.data.path(), &log)?;
        self.process = process;
        self.addr = addr;
        self.debug_addr = debug_addr;
        self.https = https;
        Ok(())
    }

    /// A private scratch dir that lives as long as the server.
    pub fn scratch_dir(&self) -> &Path {
        self.scratch.path()
    }
}

type Spawned = (Supervised, SocketAddr, Option<SocketAddr>, bool);

fn spawn(bin: &Path, opts: &BerthOptions, data: &Path, log: &Path) -> Result<Spawned> {
    let mut cmd = match opts.command_prefix.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(bin);
            cmd
        }
        None => Command::new(bin),
    };
    cmd.arg("serve");
    if let Some(config) = &opts.config_file {
        cmd.arg(config);
    }
    clear_registry_env(&mut cmd);
    cmd.env("REGISTRY_HTTP_ADDR", &opts.listen).env("REGISTRY_STORAGE_DELETE_ENABLED", opts.delete_enabled.to_string());
    if opts.filesystem_root {
        cmd.env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", data);
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    let mut process = Supervised::spawn("berth", &mut cmd, log, true)?;
    let stdout = process.child_mut().stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    // Reads the ready line, then keeps draining stdout so berth never blocks on it.
    thread::spawn(move || {
        let mut tx = Some(tx);
        let mut debug = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.trim().strip_prefix(DEBUG_PREFIX) {
                debug = rest.parse::<SocketAddr>().ok();
            } else if let Some(rest) = line.trim().strip_prefix(READY_PREFIX) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send((rest.trim_end_matches('/').to_owned(), debug));
                }
            }
        }
    });
    let fail = |process: &Supervised, why: String| {
        format!("berth ({}) {why}\n--- last lines of {} ---\n{}", bin.display(), log.display(), process.log_tail(40))
    };
    match rx.recv_timeout(opts.ready_timeout) {
        Ok((url, debug_addr)) => {
            let (https, addr) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
                (Some(addr), _) => (true, addr),
                (None, Some(addr)) => (false, addr),
                (None, None) => return Err(fail(&process, format!("printed a ready line without a URL: {url:?}"))),
            };
            let addr = addr.parse().map_err(|e| fail(&process, format!("printed a bad address {addr:?}: {e}")))?;
            Ok((process, addr, debug_addr, https))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = process.exited().map(|s| s.to_string()).unwrap_or_else(|| "still running".into());
            Err(fail(&process, format!("closed stdout without a ready line ({status})")))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(fail(&process, format!("printed no ready line within {:?}", opts.ready_timeout)))
        }
    }
}

/// Removes inherited `REGISTRY_*` vars so the host's environment cannot
/// configure the server under test.
pub(crate) fn clear_registry_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(key);
        }
    }
}

pub(crate) fn temp_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| format!("cannot create temp dir in {}: {e}", std::env::temp_dir().display()))
}

/// Finds the `berth` binary; see the module docs for the order.
pub fn locate_berth_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    // Asked-for paths must exist: falling back would test another binary.
    let asked = explicit.map(Path::to_path_buf).or_else(|| {
        ["NEXTEST_BIN_EXE_berth", "CARGO_BIN_EXE_berth", "BERTH_BIN"]
            .into_iter()
            .find_map(|var| std::env::var_os(var).map(PathBuf::from))
    });
    if let Some(path) = asked {
        return match path.is_file() {
            true => Ok(path),
            false => Err(format!("berth binary {} (asked for explicitly) does not exist", path.display())),
        };
    }
    let mut tried = Vec::new();
    let mut candidates = Vec::new();
    // target/<profile>/deps/<test-exe> -> target/<profile>/berth
    if let Ok(exe) = std::env::current_exe() {
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join("berth"));
        }
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| "target".into());
    candidates.push(target.join("debug").join("berth"));
    candidates.dedup();
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(candidate.display().to_string());
    }
    Err(format!(
        "berth binary not found (tried: {}); build it with `cargo build -p berth` or set BERTH_BIN",
        tried.join(", ")
    ))
}
