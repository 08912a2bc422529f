//! [`Oras`]: oras-py (PyPI `oras`), the OCI artifact client, driven through
//! a small Python helper (`oras_helper.py`, embedded here) in the virtualenv
//! that `scripts/test` creates outside the clone. oras-py is a library with
//! no command line; the helper prints a JSON result with a log of every
//! HTTP request it made, which the tests parse.
//!
//! The virtualenv: `BERTH_VENV` if set, else `/var/tmp/berth-venv`. A venv
//! without `oras` is an error telling to run `./scripts/test`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::berth::temp_dir;
use crate::process::run_bounded;
use crate::Result;

/// Default virtualenv, outside the clone so a fresh clone reuses it.
pub const DEFAULT_VENV: &str = "/var/tmp/berth-venv";
/// The PyPI version `scripts/test` installs.
pub const ORAS_VERSION: &str = "0.2.43";
/// Bound on one helper run (a chunked upload of 100+ MiB included).
pub const ORAS_TIMEOUT: Duration = Duration::from_secs(300);
const HELPER: &str = include_str!("oras_helper.py");
/// Marker of the helper's result line.
const RESULT_PREFIX: &str = "ORAS-HELPER-RESULT ";

/// The oras-py driver; its temp dir (the helper script) removed on `Drop`.
#[derive(Debug)]
pub struct Oras {
    python: PathBuf,
    dir: TempDir,
}

impl Oras {
    /// Finds the virtualenv's python and checks `import oras` works.
    pub fn locate() -> Result<Self> {
        let venv = std::env::var_os("BERTH_VENV").map(PathBuf::from).unwrap_or_else(|| DEFAULT_VENV.into());
        let python = venv.join("bin").join("python");
        let hint = format!("run ./scripts/test, which creates it with PyPI `oras=={ORAS_VERSION}`");
        if !python.is_file() {
            return Err(format!("no python virtualenv at {} (BERTH_VENV): {hint}", venv.display()));
        }
        let mut check = Command::new(&python);
        check.args(["-c", "import oras.version; print(oras.version.__version__)"]);
        let out = run_bounded(&mut check, Duration::from_secs(60))?;
        if !out.success() {
            return Err(format!("oras-py missing from {}: {hint}\n{}", venv.display(), out.describe_failure()));
        }
        let dir = temp_dir("oras-")?;
        std::fs::write(dir.path().join("oras_helper.py"), HELPER)
            .map_err(|e| format!("cannot write the oras helper: {e}"))?;
        Ok(Self { python, dir })
    }

    /// oras-py's version string.
    pub fn version(&self) -> Result<String> {
        let mut cmd = Command::new(&self.python);
        cmd.args(["-c", "import oras.version; print(oras.version.__version__)"]);
        run_bounded(&mut cmd, Duration::from_secs(60))?.ok()
    }

    /// Runs helper `command` with `json_args` (a JSON object); the JSON text
    /// of its result, or an error with its output.
    pub fn run(&self, command: &str, json_args: &str) -> Result<String> {
        let mut cmd = Command::new(&self.python);
        cmd.arg(self.dir.path().join("oras_helper.py")).arg(command).arg(json_args).current_dir(self.dir.path());
        let out = run_bounded(&mut cmd, ORAS_TIMEOUT)?;
        let result = out.stdout.lines().find_map(|l| l.strip_prefix(RESULT_PREFIX));
        match (out.success(), result) {
            (true, Some(json)) => Ok(json.to_owned()),
            _ => Err(format!("oras helper `{command}` failed\n{}", out.describe_failure())),
        }
    }

    /// A scratch dir that lives as long as this driver.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}
