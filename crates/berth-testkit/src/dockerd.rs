//! [`Dockerd`]: a private Docker engine per test, as TESTING.md prescribes:
//! `dockerd --iptables=false --bridge=none --storage-driver=vfs` with its own
//! data root, exec root, pidfile, socket and an empty `daemon.json`, so it
//! shares nothing with any other engine. Docker treats 127.0.0.0/8 as an
//! insecure registry, so it talks plain HTTP to registries on loopback.
//!
//! Startup takes seconds: start one per test and run a whole scenario on it.
//! On `Drop`: SIGTERM (dockerd stops its containerd), SIGKILL after a bound,
//! then SIGKILL any process still naming our temp dir (shims) and lazily
//! unmount anything left mounted under it, so the dir can be removed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::berth::temp_dir;
use crate::process::{kill_processes_mentioning, run_bounded, CommandOutput, Supervised};
use crate::{tools, Result};

/// Bound on `dockerd` becoming ready (`docker info` answering).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Default bound on one docker command (a push of a 100 MiB layer on vfs
/// takes seconds; use [`Dockerd::docker_with_timeout`] for more).
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(120);
/// Grace between SIGTERM and SIGKILL for dockerd.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// A private dockerd; stopped on `Drop`.
#[derive(Debug)]
pub struct Dockerd {
    // Field order matters: the process stops before the dir is removed.
    process: Option<Supervised>,
    docker: PathBuf,
    dir: TempDir,
}

impl Dockerd {
    /// Starts dockerd and waits (bounded) until `docker info` answers.
    pub fn start() -> Result<Self> {
        let dockerd = tools::require("dockerd", "docker.io")?;
        let docker = tools::require("docker", "docker.io")?;
        // Short paths: unix socket paths (ours and containerd's under the
        // exec root) must stay under 108 bytes.
        let dir = temp_dir("bd")?;
        if dir.path().as_os_str().len() > 40 {
            return Err(format!("temp dir {} too long for unix sockets; set TMPDIR=/tmp", dir.path().display()));
        }
        let p = |name: &str| dir.path().join(name);
        std::fs::create_dir_all(p("cfg")).map_err(|e| e.to_string())?;
        std::fs::write(p("daemon.json"), "{}\n").map_err(|e| e.to_string())?;
        let mut cmd = Command::new(dockerd);
        cmd.args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .arg("--data-root")
            .arg(p("d"))
            .arg("--exec-root")
            .arg(p("e"))
            .arg("--pidfile")
            .arg(p("pid"))
            .arg("--config-file")
            .arg(p("daemon.json"))
            .arg("-H")
            .arg(format!("unix://{}", p("s").display()));
        let process = Supervised::spawn("dockerd", &mut cmd, &p("dockerd.log"), false)?;
        let mut this = Self { process: Some(process), docker, dir };
        this.wait_ready()?;
        Ok(this)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let info = self.docker_with_timeout(&["info", "--format", "{{.ServerVersion}}"], Duration::from_secs(10));
            if matches!(&info, Ok(out) if out.success()) {
                return Ok(());
            }
            let process = self.process.as_mut().expect("running");
            if let Some(status) = process.exited() {
                return Err(format!("dockerd exited ({status}) during startup\n{}", process.log_tail(40)));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "dockerd did not answer `docker info` within {READY_TIMEOUT:?}\n{}",
                    process.log_tail(40)
                ));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// `unix://…` socket to put in `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("s").display())
    }

    /// dockerd's PID.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, Supervised::pid)
    }

    /// dockerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// A scratch dir that lives as long as the engine.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `docker` command aimed at this engine (own `DOCKER_HOST` and a
    /// private `DOCKER_CONFIG`, so no credentials of the host leak in). The
    /// classic builder (`DOCKER_BUILDKIT=0`) whatever the client's default,
    /// so builds behave the same with Debian's client and a newer one.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.docker);
        cmd.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("cfg"))
            .env("DOCKER_CLI_HINTS", "false")
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY");
        cmd
    }

    /// Runs `docker ARGS` with [`DOCKER_TIMEOUT`]; the output whatever the exit code.
    pub fn docker(&self, args: &[&str]) -> Result<CommandOutput> {
        self.docker_with_timeout(args, DOCKER_TIMEOUT)
    }

    /// Runs `docker ARGS` with a given bound.
    pub fn docker_with_timeout(&self, args: &[&str], timeout: Duration) -> Result<CommandOutput> {
        run_bounded(&mut self.command(args), timeout)
    }

    /// Runs `docker ARGS`; its trimmed stdout, or an error if it failed.
    pub fn docker_ok(&self, args: &[&str]) -> Result<String> {
        self.docker(args)?.ok()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            if let Err(e) = process.terminate(STOP_GRACE) {
                eprintln!("testkit: {e}");
            }
        }
        kill_processes_mentioning(self.dir.path());
        unmount_under(self.dir.path());
    }
}

/// Lazily unmounts every mount point under `dir` (netns bind mounts and the
/// like that a killed engine can leave), deepest first.
pub(crate) fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        if let Ok(c) = std::ffi::CString::new(point) {
            // SAFETY: plain syscall on a NUL-terminated path under our own temp dir.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}
