//! [`Postgres`]: a private PostgreSQL server (Debian's `postgresql`) on
//! 127.0.0.1 and a free port, trust authentication, user `postgres`.
//!
//! `initdb` and `postgres` refuse to run as root, so when the tests run as
//! root both run as the `postgres` system user: the child switches uid/gid
//! itself (no `runuser` in between), so the PID we hold is the postmaster's.
//! Its data directory lives in a temp dir that user owns.
//!
//! `initdb` costs about two seconds, so it runs once per machine and major
//! version into a template (`$TMPDIR/berth-pg-template-<major>-<uid>`, a
//! cache kept across runs, made under a file lock and moved into place by
//! rename, so it is complete or absent); each server starts from a copy. Durability is switched off (`fsync=off`):
//! these servers hold test data only.
//!
//! On `Drop` the postmaster gets SIGINT (fast shutdown: it does not wait for
//! clients, such as a pool the test still holds), then the usual bounded
//! SIGTERM/SIGKILL of [`Supervised`].

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::berth::temp_dir;
use crate::process::{log_tail, run_bounded, Supervised, STOP_GRACE};
use crate::{net, Result};

const READY_LINE: &str = "database system is ready to accept connections";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);

/// A running PostgreSQL server; stopped on `Drop`.
#[derive(Debug)]
pub struct Postgres {
    process: Supervised,
    port: u16,
    dir: TempDir,
}

/// The uid and gid the server runs as (`None`: the current user).
type Identity = Option<(u32, u32)>;

impl Postgres {
    /// Starts a fresh server (a copy of the cached `initdb` template) and
    /// waits until it accepts connections. Retries on another port if the
    /// picked one was taken meanwhile.
    pub fn start() -> Result<Self> {
        let bin = bin_dir()?;
        let who = identity()?;
        let template = template(&bin, who)?;
        let dir = temp_dir("postgres-")?;
        chown(dir.path(), who)?;
        let data = dir.path().join("data");
        let mut cp = Command::new("cp");
        cp.arg("-a").arg(&template).arg(&data);
        run_bounded(&mut cp, Duration::from_secs(60))?.ok()?;
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = net::free_loopback_addr()?.port();
            let mut cmd = Command::new(bin.join("postgres"));
            cmd.arg("-D").arg(&data).arg("-h").arg("127.0.0.1").arg("-p").arg(port.to_string()).arg("-k").arg("");
            for setting in [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
                "shared_buffers=16MB",
                "max_connections=100",
            ] {
                cmd.arg("-c").arg(setting);
            }
            cmd.current_dir(dir.path());
            if let Some((uid, gid)) = who {
                cmd.uid(uid).gid(gid);
            }
            let log = dir.path().join(format!("postgres-{port}.log"));
            let mut process = Supervised::spawn("postgres", &mut cmd, &log, false)?;
            match wait_ready(&mut process) {
                Ok(()) => return Ok(Self { process, port, dir }),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's PID.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE` (trust auth, no password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The temp dir holding the data directory and the server log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last lines of the server log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.process.exited().is_none() {
            // SAFETY: plain syscall; the child is not reaped, so the PID is ours.
            unsafe { libc::kill(self.process.pid() as i32, libc::SIGINT) };
        }
        if let Err(e) = self.process.terminate(STOP_GRACE) {
            eprintln!("testkit: {e}");
        }
    }
}

fn wait_ready(process: &mut Supervised) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if log_tail(process.log_path(), 200).contains(READY_LINE) {
            return Ok(());
        }
        if let Some(status) = process.exited() {
            return Err(format!("postgres exited ({status}) before it was ready:\n{}", process.log_tail(30)));
        }
        if Instant::now() >= deadline {
            return Err(format!("postgres not ready after {READY_TIMEOUT:?}:\n{}", process.log_tail(30)));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// `/usr/lib/postgresql/<major>/bin` of the newest installed major version.
fn bin_dir() -> Result<PathBuf> {
    let missing = || {
        "PostgreSQL server not found under /usr/lib/postgresql/*/bin: install Debian package `postgresql` (./scripts/test does)".to_owned()
    };
    let entries = std::fs::read_dir("/usr/lib/postgresql").map_err(|_| missing())?;
    entries
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
        .ok_or_else(missing)
}

/// As root: the `postgres` system user (the server refuses root).
fn identity() -> Result<Identity> {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy
    // the two integers out at once. Tests start servers rarely, and a racing
    // getpwnam elsewhere would only return the same entry.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if pw.is_null() {
        return Err("no `postgres` user: install Debian package `postgresql` (./scripts/test does)".into());
    }
    // SAFETY: checked non-null above.
    Ok(Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) }))
}

fn chown(path: &Path, who: Identity) -> Result<()> {
    if let Some((uid, gid)) = who {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown {} to postgres: {e}", path.display()))?;
    }
    Ok(())
}

/// The cached `initdb` output for this major version, created if missing.
fn template(bin: &Path, who: Identity) -> Result<PathBuf> {
    let major = bin.parent().and_then(Path::file_name).map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let uid = who.map_or_else(|| unsafe { libc::geteuid() }, |(uid, _)| uid);
    let path = std::env::temp_dir().join(format!("berth-pg-template-{major}-{uid}"));
    if path.join("PG_VERSION").is_file() {
        return Ok(path);
    }
    // One initdb at a time (many tests start at once on a fresh machine);
    // whoever waited finds the template made.
    let _lock = lock_file(&path.with_extension("lock"), INITDB_TIMEOUT + Duration::from_secs(10))?;
    if path.join("PG_VERSION").is_file() {
        return Ok(path);
    }
    let staging = temp_dir("pg-initdb-")?;
    chown(staging.path(), who)?;
    let data = staging.path().join("data");
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D").arg(&data).args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]);
    cmd.current_dir(staging.path());
    if let Some((uid, gid)) = who {
        cmd.uid(uid).gid(gid);
    }
    run_bounded(&mut cmd, INITDB_TIMEOUT)?.ok()?;
    std::fs::rename(&data, &path).map_err(|e| format!("cannot move the initdb template to {}: {e}", path.display()))?;
    Ok(path)
}

/// An exclusive `flock` on `path`, released when the file is dropped;
/// waits at most `timeout`.
fn lock_file(path: &Path, timeout: Duration) -> Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let deadline = Instant::now() + timeout;
    // SAFETY: plain syscall on a descriptor we own.
    while unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        if Instant::now() >= deadline {
            return Err(format!("{} still locked after {timeout:?}", path.display()));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(file)
}
