//! [`Podman`]: podman (and its image library, shared with skopeo and
//! buildah) with private storage: its own graph root, run root, tmpdir and
//! `vfs` driver, an empty registries.conf (no search registries, no mirror
//! of the host's), so it shares nothing with the host's podman. Daemonless:
//! nothing runs between commands. Plain HTTP needs `--tls-verify=false`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::berth::temp_dir;
use crate::dockerd::unmount_under;
use crate::process::{kill_processes_mentioning, run_bounded, CommandOutput};
use crate::{tools, Result};

/// Bound on one podman command.
pub const PODMAN_TIMEOUT: Duration = Duration::from_secs(180);

/// Private podman storage; removed on `Drop`.
#[derive(Debug)]
pub struct Podman {
    podman: PathBuf,
    dir: TempDir,
}

impl Podman {
    /// Prepares the private storage (nothing starts).
    pub fn new() -> Result<Self> {
        let podman = tools::require("podman", "podman")?;
        let dir = temp_dir("bp")?;
        let p = |name: &str| dir.path().join(name);
        let io = |e: std::io::Error| format!("podman config in {}: {e}", dir.path().display());
        std::fs::create_dir_all(p("tmp")).map_err(io)?;
        std::fs::write(p("auth.json"), "{\"auths\": {}}\n").map_err(io)?;
        std::fs::write(p("registries.conf"), "unqualified-search-registries = []\n").map_err(io)?;
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            p("root").display(),
            p("run").display()
        );
        std::fs::write(p("storage.conf"), storage).map_err(io)?;
        std::fs::write(p("containers.conf"), "[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n")
            .map_err(io)?;
        Ok(Self { podman, dir })
    }

    /// A `podman` command on the private storage.
    pub fn command(&self, args: &[&str]) -> Command {
        let p = |name: &str| self.dir.path().join(name);
        let mut cmd = Command::new(&self.podman);
        cmd.arg("--root")
            .arg(p("root"))
            .arg("--runroot")
            .arg(p("run"))
            .arg("--tmpdir")
            .arg(p("tmp"))
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_REGISTRIES_CONF", p("registries.conf"))
            .env("CONTAINERS_STORAGE_CONF", p("storage.conf"))
            .env("CONTAINERS_CONF", p("containers.conf"))
            .env("REGISTRY_AUTH_FILE", p("auth.json"))
            .env("TMPDIR", p("tmp"));
        cmd
    }

    /// Runs `podman ARGS`; the output whatever the exit code.
    pub fn podman(&self, args: &[&str]) -> Result<CommandOutput> {
        run_bounded(&mut self.command(args), PODMAN_TIMEOUT)
    }

    /// Runs `podman ARGS`; its trimmed stdout, or an error if it failed.
    pub fn podman_ok(&self, args: &[&str]) -> Result<String> {
        self.podman(args)?.ok()
    }

    /// A scratch dir that lives as long as the storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        kill_processes_mentioning(self.dir.path());
        unmount_under(self.dir.path());
    }
}
