//! [`Containerd`]: a private containerd (Debian 1.6), the runtime behind a
//! Kubernetes node, with its own root, state, sockets and a config that
//! disables the CRI plugin; driven with `ctr`. Stopped by PID on `Drop`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::berth::temp_dir;
use crate::dockerd::unmount_under;
use crate::process::{kill_processes_mentioning, run_bounded, CommandOutput, Supervised};
use crate::{tools, Result};

/// Bound on containerd answering `ctr version`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one `ctr` command.
pub const CTR_TIMEOUT: Duration = Duration::from_secs(120);

/// A running private containerd; stopped on `Drop`.
#[derive(Debug)]
pub struct Containerd {
    // Field order matters: the process stops before the dir is removed.
    process: Option<Supervised>,
    ctr: PathBuf,
    dir: TempDir,
}

impl Containerd {
    /// Starts containerd and waits (bounded) until `ctr version` answers.
    pub fn start() -> Result<Self> {
        let containerd = tools::require("containerd", "containerd")?;
        let ctr = tools::require("ctr", "containerd")?;
        // Short paths: unix sockets must stay under 108 bytes.
        let dir = temp_dir("bc")?;
        let p = |name: &str| dir.path().join(name);
        let config = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}\"\n[debug]\n  address = \"{}\"\n",
            p("root").display(),
            p("state").display(),
            p("c.sock").display(),
            p("c.sock.ttrpc").display(),
            p("d.sock").display()
        );
        std::fs::write(p("config.toml"), config).map_err(|e| format!("cannot write containerd config: {e}"))?;
        let mut cmd = Command::new(containerd);
        cmd.arg("--config").arg(p("config.toml"));
        let process = Supervised::spawn("containerd", &mut cmd, &p("containerd.log"), false)?;
        let mut this = Self { process: Some(process), ctr, dir };
        this.wait_ready()?;
        Ok(this)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let version = run_bounded(&mut self.command(&["version"]), Duration::from_secs(10));
            if matches!(&version, Ok(out) if out.success()) {
                return Ok(());
            }
            let process = self.process.as_mut().expect("running");
            if let Some(status) = process.exited() {
                return Err(format!("containerd exited ({status}) during startup\n{}", process.log_tail(40)));
            }
            if Instant::now() >= deadline {
                return Err(format!("containerd did not answer within {READY_TIMEOUT:?}\n{}", process.log_tail(40)));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// A `ctr` command aimed at this containerd.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("--address").arg(self.dir.path().join("c.sock")).args(args);
        cmd
    }

    /// Runs `ctr ARGS`; the output whatever the exit code.
    pub fn ctr(&self, args: &[&str]) -> Result<CommandOutput> {
        run_bounded(&mut self.command(args), CTR_TIMEOUT)
    }

    /// Runs `ctr ARGS`; its trimmed stdout, or an error if it failed.
    pub fn ctr_ok(&self, args: &[&str]) -> Result<String> {
        self.ctr(args)?.ok()
    }

    /// containerd's PID.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, Supervised::pid)
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// A scratch dir that lives as long as containerd.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            if let Err(e) = process.terminate(Duration::from_secs(15)) {
                eprintln!("testkit: {e}");
            }
        }
        kill_processes_mentioning(self.dir.path());
        unmount_under(self.dir.path());
    }
}
