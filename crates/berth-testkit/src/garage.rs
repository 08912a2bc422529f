//! [`Garage`]: a real S3 server (deuxfleurs Garage) for the S3 blob store's
//! tests: a single node on 127.0.0.1, free ports, a fresh temp dir, one
//! access key and one bucket created through the `garage` CLI, stopped by
//! PID on `Drop` like every other child here.
//!
//! Garage is not a Debian package: it is built once with
//! `cargo install garage --locked --root /var/tmp/berth-tools` (7–11 minutes
//! on 2 cores; `scripts/test` does it when the binary is missing). Which
//! binary runs, first match wins: `BERTH_GARAGE`, then
//! `/var/tmp/berth-tools/bin/garage`, then `garage` on `PATH`.
//!
//! Set-up, as ../shared/TESTING.md describes it: a config with lmdb,
//! `replication_factor = 1`, a random `rpc_secret`; `garage server`; wait
//! for `garage status`; `node id -q`, `layout assign`, `layout apply`;
//! `key create`; `bucket create`; `bucket allow`. Addressing is path-style
//! in region [`Garage::region`]. `AWS_*` variables are removed from the
//! children's environment: Garage needs none, and the tests must prove that
//! Berth's own client works whatever the caller's environment holds.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::berth::temp_dir;
use crate::process::Supervised;
use crate::{net, run_bounded, tools, Result};

/// Where `scripts/test` installs Garage.
pub const GARAGE_TOOLS_BIN: &str = "/var/tmp/berth-tools/bin/garage";
/// The S3 region the server is configured with.
pub const REGION: &str = "garage";
/// The bucket created at start.
pub const BUCKET: &str = "berth";
const KEY_NAME: &str = "berth-test";
/// Bound on each CLI call.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on the server's start (RPC answering).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running single-node Garage; stopped on `Drop`.
#[derive(Debug)]
pub struct Garage {
    // Field order: the process stops before its directory goes.
    process: Supervised,
    bin: PathBuf,
    config: PathBuf,
    s3_addr: SocketAddr,
    key_id: String,
    secret: String,
    dir: TempDir,
}

/// The Garage binary to run, or an error saying how to get one.
pub fn locate_garage_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_GARAGE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(format!("BERTH_GARAGE={} does not exist", p.display())) };
    }
    let tools_bin = Path::new(GARAGE_TOOLS_BIN);
    if tools_bin.is_file() {
        return Ok(tools_bin.to_owned());
    }
    tools::which("garage").ok_or_else(|| {
        format!(
            "garage not found (BERTH_GARAGE, {GARAGE_TOOLS_BIN}, PATH): \
             `cargo install garage --locked --root /var/tmp/berth-tools` (./scripts/test does)"
        )
    })
}

fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| format!("reading /dev/urandom: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn config_toml(dir: &Path, rpc: SocketAddr, s3: SocketAddr, secret: &str) -> String {
    let d = dir.display();
    format!(
        "metadata_dir = \"{d}/meta\"\n\
         data_dir = \"{d}/data\"\n\
         db_engine = \"lmdb\"\n\
         replication_factor = 1\n\
         rpc_bind_addr = \"{rpc}\"\n\
         rpc_public_addr = \"{rpc}\"\n\
         rpc_secret = \"{secret}\"\n\
         \n\
         [s3_api]\n\
         s3_region = \"{REGION}\"\n\
         api_bind_addr = \"{s3}\"\n"
    )
}

/// The value after `label` on the line that starts with it (`Key ID: GK…`).
fn field(output: &str, label: &str) -> Option<String> {
    output.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix(label).map(|v| v.trim_start_matches(':').trim().to_owned()).filter(|v| !v.is_empty())
    })
}

impl Garage {
    /// Starts a server and creates the key and the bucket. Retries on other
    /// ports if the picked ones were taken meanwhile.
    pub fn start() -> Result<Self> {
        let bin = locate_garage_binary()?;
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match Self::try_start(&bin) {
                Ok(g) => return Ok(g),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    fn try_start(bin: &Path) -> Result<Self> {
        let dir = temp_dir("garage-")?;
        let (rpc, s3_addr) = (net::free_loopback_addr()?, net::free_loopback_addr()?);
        let config = dir.path().join("garage.toml");
        std::fs::write(&config, config_toml(dir.path(), rpc, s3_addr, &random_hex(32)?))
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let mut cmd = Command::new(bin);
        cmd.arg("-c").arg(&config).arg("server").env("RUST_LOG", "garage=warn");
        clear_aws_env(&mut cmd);
        let log = dir.path().join("garage.log");
        let process = Supervised::spawn("garage", &mut cmd, &log, false)?;
        let mut g =
            Garage { process, bin: bin.to_owned(), config, s3_addr, key_id: String::new(), secret: String::new(), dir };
        g.wait_ready()?;
        let node = g.cli(&["node", "id", "-q"])?;
        let node = node.split('@').next().unwrap_or_default().trim().to_owned();
        g.cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node])?;
        g.cli(&["layout", "apply", "--version", "1"])?;
        // `key create` prints the id and the secret (as `key info --show-secret` would).
        let created = g.cli(&["key", "create", KEY_NAME])?;
        g.key_id = field(&created, "Key ID").ok_or_else(|| format!("no `Key ID` in garage's answer:\n{created}"))?;
        g.secret =
            field(&created, "Secret key").ok_or_else(|| format!("no `Secret key` in garage's answer:\n{created}"))?;
        g.create_bucket(BUCKET)?;
        g.wait_s3()?;
        Ok(g)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let status = self.command(&["status"]).and_then(|mut c| run_bounded(&mut c, CLI_TIMEOUT));
            if status.as_ref().is_ok_and(|o| o.success()) {
                return Ok(());
            }
            if let Some(exit) = self.process.exited() {
                return Err(format!("garage exited ({exit}) before answering\n{}", self.process.log_tail(30)));
            }
            if Instant::now() >= deadline {
                let last = status.map(|o| o.describe_failure()).unwrap_or_else(|e| e);
                return Err(format!(
                    "garage did not answer `garage status` within {READY_TIMEOUT:?}\n{last}\n{}",
                    self.process.log_tail(30)
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the S3 endpoint accepts connections.
    fn wait_s3(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while std::net::TcpStream::connect_timeout(&self.s3_addr, Duration::from_secs(1)).is_err() {
            if Instant::now() >= deadline {
                return Err(format!(
                    "garage's S3 API on {} never accepted\n{}",
                    self.s3_addr,
                    self.process.log_tail(30)
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    fn command(&self, args: &[&str]) -> Result<Command> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c").arg(&self.config).args(args);
        clear_aws_env(&mut cmd);
        Ok(cmd)
    }

    /// Runs `garage -c CONFIG ARGS…` against this server; its stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        run_bounded(&mut self.command(args)?, CLI_TIMEOUT)?.ok()
    }

    /// Creates another bucket the test key may read, write and own.
    pub fn create_bucket(&self, name: &str) -> Result<()> {
        self.cli(&["bucket", "create", name])?;
        self.cli(&["bucket", "allow", "--read", "--write", "--owner", name, "--key", KEY_NAME])?;
        Ok(())
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint (path-style).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.s3_addr)
    }

    /// The S3 endpoint's address.
    pub fn s3_addr(&self) -> SocketAddr {
        self.s3_addr
    }

    /// The signing region.
    pub fn region(&self) -> &str {
        REGION
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// Access key id of the test key.
    pub fn access_key(&self) -> &str {
        &self.key_id
    }

    /// Secret of the test key.
    pub fn secret_key(&self) -> &str {
        &self.secret
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's temp dir (config, metadata, data, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.process.log_path()).unwrap_or_default()
    }
}

fn clear_aws_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_fields() {
        let out = "Key name: berth-test\nKey ID: GK0123\nSecret key: abcdef\nCan create buckets: false\n";
        assert_eq!(field(out, "Key ID").as_deref(), Some("GK0123"));
        assert_eq!(field(out, "Secret key").as_deref(), Some("abcdef"));
        assert_eq!(field(out, "Nope"), None);
        assert_eq!(random_hex(32).unwrap().len(), 64);
    }
}
